//! `fjord pipeline`: pipeline manifests. Today: `validate`, which checks
//! manifests before anything runs — the YAML, every field, the plugins
//! (against the built-ins and plugin files this binary can load) and cycles
//! of topics across all the files given.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fjord_pipeline::{HostResolver, Pipeline, validate_set};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Check manifests; every error names the file, line, column and field.
    Validate {
        /// Manifest files (YAML); cycles are checked across all of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: PipelineCommand) -> Result<()> {
    match command {
        PipelineCommand::Validate { files } => validate(&files),
    }
}

fn validate(files: &[PathBuf]) -> Result<()> {
    let host = crate::plugin::host()?;
    let resolver = HostResolver::new(&host);
    let mut pipelines = Vec::new();
    let mut failed = false;
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        match Pipeline::load(&file.display().to_string(), &text, &resolver) {
            Ok(p) => pipelines.push(p),
            Err(errors) => {
                eprintln!("{errors}");
                failed = true;
            }
        }
    }
    if let Err(errors) = validate_set(&pipelines) {
        eprintln!("{errors}");
        failed = true;
    }
    if failed {
        bail!("invalid pipeline manifest");
    }
    for p in &pipelines {
        println!("{}: pipeline {} is valid", p.file_name(), p.metadata.name);
    }
    Ok(())
}
