//! `fjord produce TOPIC`: one record per line of standard input.

use std::io::BufRead;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
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
            let mut first = self
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            first.get_or_insert_with(|| err.to_string());
        }
    }
}

pub fn run(args: ProduceArgs) -> Result<()> {
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
    let mut sent = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading standard input")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.to_string()), v.to_string()),
                None => (None, line.clone()),
            },
            None => (None, line.clone()),
        };
        let mut record = BaseRecord::<String, String>::to(&args.topic)
            .payload(&value)
            .headers(headers.clone());
        if let Some(key) = &key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
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
        let first = report
            .first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .unwrap_or_default();
        bail!("{failed} of {sent} records were not delivered; first error: {first}");
    }
    eprintln!("produced {sent} records to {}", args.topic);
    Ok(())
}
