//! `fjord produce TOPIC`: one record per line of standard input.
//!
//! With `--serializer` each value goes through a serializer plugin first;
//! with `--partitioner` a partitioner plugin picks each record's partition
//! and the record is sent to it explicitly.

use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fjord_plugin_host::PluginInstance;
use fjord_sdk::PluginKind;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::client::{ClientArgs, key_value};

/// `fjord produce` flags.
#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    /// Split each line at the first occurrence of this into key and value.
    #[arg(short = 'K', long)]
    pub key_separator: Option<String>,
    /// Header added to every record, `key=value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = key_value)]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition (default: the key's hash, or spread).
    #[arg(short, long)]
    pub partition: Option<i32>,
    /// Serializer plugin (built-in name, .wasm or native library): each
    /// value is produced as what its `serialize` returns. A line it refuses
    /// stops the command with an error naming the line; the lines before it
    /// are produced.
    #[arg(long, value_name = "PLUGIN")]
    pub serializer: Option<String>,
    /// Configuration of the --serializer plugin, `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value, requires = "serializer")]
    pub serializer_config: Vec<(String, String)>,
    /// Partitioner plugin (built-in name, .wasm or native library): picks
    /// each record's partition from its key, its (serialized) value and the
    /// topic's partition count.
    #[arg(long, value_name = "PLUGIN", conflicts_with = "partition")]
    pub partitioner: Option<String>,
    /// Configuration of the --partitioner plugin, `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value, requires = "partitioner")]
    pub partitioner_config: Vec<(String, String)>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all", "-1"])]
    pub acks: String,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Counts failed deliveries and keeps the first error to report.
#[derive(Default)]
struct DeliveryReport {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryReport {}

impl ProducerContext for DeliveryReport {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first_error.lock();
            first.get_or_insert_with(|| err.to_string());
        }
    }
}

pub fn run(args: ProduceArgs) -> Result<()> {
    // Plugins first: a wrong name or config should fail before connecting.
    let mut serializer = args
        .serializer
        .as_deref()
        .map(|s| crate::plugin::instance(s, PluginKind::Serializer, &args.serializer_config))
        .transpose()?;
    let mut partitioner = args
        .partitioner
        .as_deref()
        .map(|p| crate::plugin::instance(p, PluginKind::Partitioner, &args.partitioner_config))
        .transpose()?;
    let producer: ThreadedProducer<DeliveryReport> = args
        .client
        .config()
        .set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("linger.ms", "5")
        .create_with_context(DeliveryReport::default())
        .context("could not create the producer")?;
    let mut headers = OwnedHeaders::new();
    for (k, v) in &args.headers {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        });
    }
    let partition_count = match &partitioner {
        Some(_) => Some(partition_count(&producer, &args.topic)?),
        None => None,
    };
    let mut sent = 0u64;
    // A plugin's refusal of one line: reported once what was sent is flushed.
    let mut refused = None;
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("reading standard input")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k), v),
                None => (None, line.as_str()),
            },
            None => (None, line.as_str()),
        };
        let prepared = through_plugins(
            serializer.as_mut(),
            partitioner.as_mut().zip(partition_count),
            key,
            value,
        )
        .with_context(|| format!("line {}", index + 1));
        let (value, partition) = match prepared {
            Ok((value, partition)) => (value, partition.or(args.partition)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        };
        let mut record = BaseRecord::<str, [u8]>::to(&args.topic)
            .payload(&value[..])
            .headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        let mut record = record;
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                    record = back;
                }
                Err((e, _)) => bail!("could not send record: {e}"),
            }
        }
        sent += 1;
    }
    producer
        .flush(Duration::from_secs(30))
        .context("timed out waiting for acknowledgements")?;
    let report = producer.context();
    let failed = report.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = report.first_error.lock().clone().unwrap_or_default();
        bail!("{failed} of {sent} records were not delivered; first error: {first}");
    }
    if let Some(refused) = refused {
        return Err(refused.context(format!(
            "stopped at a line a plugin refused; {sent} records before it were produced to {}",
            args.topic
        )));
    }
    eprintln!("produced {sent} records to {}", args.topic);
    Ok(())
}

/// The topic's partition count, for a partitioner. A topic just
/// auto-created by the metadata request may show no partitions for a moment.
fn partition_count(producer: &ThreadedProducer<DeliveryReport>, topic: &str) -> Result<u32> {
    let mut last_error = String::new();
    for _ in 0..20 {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .context("Metadata request failed")?;
        if let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) {
            match t.error() {
                None if !t.partitions().is_empty() => {
                    return u32::try_from(t.partitions().len())
                        .context("partition count out of range");
                }
                None => last_error = "no partitions".into(),
                Some(e) => last_error = format!("{e:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("cannot find the partitions of topic {topic} for the partitioner: {last_error}")
}

/// The value to store — the serializer's output, when there is one — and
/// the partitioner's choice of partition for it, when there is one.
fn through_plugins(
    serializer: Option<&mut PluginInstance>,
    partitioner: Option<(&mut PluginInstance, u32)>,
    key: Option<&str>,
    value: &str,
) -> Result<(Vec<u8>, Option<i32>)> {
    let value = match serializer {
        Some(s) => s.serialize(value.as_bytes())?,
        None => value.as_bytes().to_vec(),
    };
    let partition = match partitioner {
        Some((p, count)) => {
            let chosen = p.partition(key.map(str::as_bytes), Some(&value), count)?;
            Some(i32::try_from(chosen).context("partition number out of range")?)
        }
        None => None,
    };
    Ok((value, partition))
}
