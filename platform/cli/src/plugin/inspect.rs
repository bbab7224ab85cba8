//! `fjord plugin inspect PLUGIN`: what a plugin says about itself.

use anyhow::{Context, Result};

/// `fjord plugin inspect` flags.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// A built-in name (`stdout`), a `.wasm` component or a native library.
    pub plugin: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let host = super::host()?;
    let plugin = super::load(&host, &args.plugin)?;
    let info = plugin.info();
    if args.json {
        let mut json = serde_json::to_value(info).context("encoding the description")?;
        if let Some(object) = json.as_object_mut() {
            object.insert("origin".into(), plugin.origin().to_string().into());
        }
        println!("{json}");
        return Ok(());
    }
    println!("name:        {}", info.name);
    println!("kind:        {}", info.kind);
    println!("version:     {}", info.version);
    println!("origin:      {}", plugin.origin());
    println!("description: {}", info.description);
    if info.config_keys.is_empty() {
        println!("config keys: none");
        return Ok(());
    }
    println!("config keys:");
    let rows: Vec<[String; 4]> = info
        .config_keys
        .iter()
        .map(|k| {
            [
                k.name.clone(),
                if k.required { "yes" } else { "no" }.to_owned(),
                k.default_value.clone().unwrap_or_else(|| "-".to_owned()),
                k.description.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "REQUIRED", "DEFAULT", "DESCRIPTION"].map(str::to_owned);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        println!(
            "  {:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
    }
    Ok(())
}
