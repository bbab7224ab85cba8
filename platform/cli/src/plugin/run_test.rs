//! `fjord plugin test PLUGIN --input FILE.jsonl`: run a plugin outside any
//! pipeline, on records from a file, and print what it does with them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use fjord_plugin_host::{InstanceOptions, PluginInstance};
use fjord_sdk::jsonl::{record_to_json, records_from_jsonl};
use fjord_sdk::{Config, PluginKind, Record};

use crate::client::key_value;

/// `fjord plugin test` flags.
#[derive(clap::Args, Debug)]
#[command(after_help = "What it does per kind:
  processor    runs the records as one batch (partition 0), prints each output record as JSON
  sink         writes the records, flushes, reports how many
  serializer   prints serialize(value) of each record, or deserialize(value) with --deserialize
  partitioner  prints {\"key\":…,\"partition\":N} per record, for --partitions N
  source       polls --max records, prints them as JSON, then the position on standard error

Input: one record per line, either {\"key\":…,\"value\":…,\"headers\":{…},\"timestamp\":…}
or any other JSON value, which becomes the record's value.")]
pub struct TestArgs {
    /// A built-in name, a `.wasm` component or a native library.
    pub plugin: String,
    /// Records as JSON Lines (not needed for a source).
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Plugin configuration, `key=value` (repeatable).
    #[arg(short, long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// Serializer: run `deserialize` instead of `serialize`.
    #[arg(long)]
    pub deserialize: bool,
    /// Partitioner: the topic's partition count.
    #[arg(long, default_value_t = 3)]
    pub partitions: u32,
    /// Source: how many records to poll for.
    #[arg(long, default_value_t = 10)]
    pub max: u32,
    /// Source: resume from this position (as printed by an earlier run).
    #[arg(long)]
    pub position: Option<String>,
}

pub fn run(args: TestArgs) -> Result<()> {
    let host = super::host()?;
    let plugin = super::load(&host, &args.plugin)?;
    let kind = plugin.info().kind;
    let records = match (&args.input, kind) {
        (_, PluginKind::Source) => Vec::new(),
        (Some(path), _) => read_records(path)?,
        (None, kind) => bail!("--input FILE.jsonl is needed to test a {kind}"),
    };
    let mut options = InstanceOptions::new(Config::from_pairs(args.config.iter().cloned()));
    options.position = args.position.as_ref().map(|p| p.as_bytes().to_vec());
    let mut instance = host.instantiate(&plugin, options)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match kind {
        PluginKind::Processor => process(&mut instance, records, &mut out)?,
        PluginKind::Sink => {
            let n = records.len();
            instance.write(&fjord_sdk::encode(&records))?;
            instance.flush()?;
            eprintln!("wrote {n} records");
        }
        PluginKind::Serializer => {
            for (i, r) in records.iter().enumerate() {
                let value = r.value.as_deref().unwrap_or_default();
                let result = if args.deserialize {
                    instance.deserialize(value)
                } else {
                    instance.serialize(value)
                };
                let bytes = result.with_context(|| format!("record {}", i + 1))?;
                out.write_all(&bytes)?;
                out.write_all(b"\n")?;
            }
        }
        PluginKind::Partitioner => {
            if args.partitions == 0 {
                bail!("--partitions must be at least 1");
            }
            for r in &records {
                let partition =
                    instance.partition(r.key.as_deref(), r.value.as_deref(), args.partitions)?;
                let key = r
                    .key
                    .as_deref()
                    .map(|k| serde_json::Value::String(String::from_utf8_lossy(k).into_owned()));
                let line = serde_json::json!({ "key": key, "partition": partition });
                writeln!(out, "{line}")?;
            }
        }
        PluginKind::Source => {
            let (batch, position) = instance.poll(args.max)?;
            let polled = fjord_sdk::decode(&batch).map_err(|e| anyhow!("{e}"))?;
            for r in &polled {
                writeln!(out, "{}", record_to_json(r))?;
            }
            out.flush()?;
            eprintln!(
                "polled {} records; position: {}",
                polled.len(),
                super::printable(&position)
            );
        }
    }
    out.flush()?;
    Ok(())
}

fn read_records(path: &PathBuf) -> Result<Vec<Record>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // fjord_sdk::Error is not a std error (it converts from any), so it
    // cannot be a source here; its message already names the line.
    let mut records = records_from_jsonl(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    // As the broker would hand them over: numbered offsets of one partition.
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
    }
    Ok(records)
}

fn process(
    instance: &mut PluginInstance,
    records: Vec<Record>,
    out: &mut impl Write,
) -> Result<()> {
    let batch = instance.process(0, &fjord_sdk::encode(&records))?;
    let output = fjord_sdk::decode(&batch).map_err(|e| anyhow!("{e}"))?;
    for r in &output {
        writeln!(out, "{}", record_to_json(r))?;
    }
    Ok(())
}
