//! `fjord bench produce|consume`: load generators in the spirit of
//! kafka-producer-perf-test and kafka-consumer-perf-test, built on
//! librdkafka so the figures are what a real client sees.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::ClientArgs;

/// `fjord bench …`
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce records as fast as possible (or at --throughput) and report
    /// records/s, MB/s and delivery latency percentiles.
    Produce(ProduceBench),
    /// Read a topic from the beginning and report records/s and MB/s.
    Consume(ConsumeBench),
    /// Synchronous offset commits from parallel clients; reports commits/s.
    Commits(crate::bench_commits::CommitBench),
    /// A reconnect storm: parallel clients each opening a connection and
    /// logging in (SASL), again and again; reports logins/s and latency.
    Logins(crate::bench_logins::LoginBench),
}

/// `fjord bench produce` flags.
#[derive(clap::Args, Debug)]
pub struct ProduceBench {
    /// Topic to write to (auto-created when the broker allows it).
    #[arg(short, long, default_value = "fjord-bench")]
    pub topic: String,
    /// Records to send.
    #[arg(short = 'n', long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(short = 's', long, default_value_t = 100)]
    pub record_size: usize,
    /// Acknowledgements: 0, 1 or all.
    #[arg(long, default_value = "1", value_parser = ["0", "1", "all", "-1"])]
    pub acks: String,
    /// librdkafka `batch.size` in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    pub batch_size: usize,
    /// librdkafka `linger.ms`.
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub compression: String,
    /// Cap on records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub throughput: u64,
    /// Distinct keys, `key-0` … `key-(N-1)` in turn (0: every record has
    /// the empty key) — a keyed load for compacted topics.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Idempotent producer (`enable.idempotence=true`): the baseline that
    /// transactional produce is measured against.
    #[arg(long)]
    pub idempotent: bool,
    /// Produce in transactions under this `transactional.id`: begin, send,
    /// commit every --transaction-records records or --transaction-ms,
    /// whichever comes first, and a final commit; commits/s and commit
    /// latency are reported too.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// Records per transaction (with --transactional-id).
    #[arg(long, default_value_t = 1000, requires = "transactional_id")]
    pub transaction_records: u64,
    /// Longest a transaction stays open, in ms (with --transactional-id).
    #[arg(long, default_value_t = 100, requires = "transactional_id")]
    pub transaction_ms: u64,
    /// Any other librdkafka producer property, as kcat's `-X`
    /// (`-X topic.metadata.refresh.interval.ms=250`); applied last.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::client::key_value)]
    pub property: Vec<(String, String)>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `fjord bench consume` flags.
#[derive(clap::Args, Debug)]
pub struct ConsumeBench {
    /// Topic to read.
    #[arg(short, long, default_value = "fjord-bench")]
    pub topic: String,
    /// Stop after this many records (default: at the end of every partition).
    #[arg(short = 'n', long)]
    pub records: Option<u64>,
    /// `fetch.max.bytes` (and per partition).
    #[arg(long, default_value_t = 52_428_800)]
    pub fetch_max_bytes: usize,
    /// The consumer: `librdkafka` (what applications use), or `fjord`, a
    /// wire-protocol fetch loop that decodes every record and nothing more,
    /// to see what the broker delivers beyond librdkafka's own limit.
    #[arg(long, default_value = "librdkafka", value_parser = ["librdkafka", "fjord"])]
    pub consumer: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Produce(args) => produce(args),
        BenchCommand::Consume(args) => consume(args),
        BenchCommand::Commits(args) => crate::bench_commits::run(args),
        BenchCommand::Logins(args) => crate::bench_logins::run(args),
    }
}

/// Delivery latencies in microseconds, and failures.
struct Deliveries {
    latency_us: Mutex<Histogram<u64>>,
    failed: Mutex<(u64, Option<String>)>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Instant>;
    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: Box<Instant>) {
        match result {
            Ok(_) => {
                let us = sent_at.elapsed().as_micros() as u64;
                let mut hist = self.latency_us.lock();
                let _ = hist.record(us.max(1));
            }
            Err((err, _)) => {
                let mut failed = self.failed.lock();
                failed.0 += 1;
                failed.1.get_or_insert_with(|| err.to_string());
            }
        }
    }
}

fn produce(args: ProduceBench) -> Result<()> {
    let context = Deliveries {
        latency_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        failed: Mutex::new((0, None)),
    };
    let mut config = args.client.config();
    config
        .set("acks", &args.acks)
        .set("compression.codec", &args.compression)
        .set("batch.size", args.batch_size.to_string())
        .set("linger.ms", args.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576");
    if args.idempotent {
        config.set("enable.idempotence", "true");
    }
    if let Some(id) = &args.transactional_id {
        config.set("transactional.id", id);
    }
    for (key, value) in &args.property {
        config.set(key, value);
    }
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(context)
        .context("could not create the producer")?;
    let value: Vec<u8> = (0..args.record_size)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let progress = progress_bar(args.records);
    let start = Instant::now();
    let mut txn = match &args.transactional_id {
        Some(_) => Some(Transactions::begin(&producer, &args)?),
        None => None,
    };
    for i in 0..args.records {
        if let Some(txn) = txn.as_mut() {
            txn.maybe_commit(&producer)?;
        }
        if args.throughput > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.throughput as f64);
            let now = Instant::now();
            if due > now {
                producer.poll(due - now);
            }
        }
        let key = if args.keys > 0 {
            format!("key-{}", i % args.keys)
        } else {
            String::new()
        };
        let mut record = BaseRecord::with_opaque_to(&args.topic, Box::new(Instant::now()))
            .payload(value.as_slice())
            .key(key.as_str());
        loop {
            match producer.send::<str, [u8]>(record) {
                Ok(()) => {
                    if let Some(txn) = txn.as_mut() {
                        txn.records += 1;
                    }
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
            progress.set_position(i);
        }
    }
    match txn.as_mut() {
        // Committing flushes: every record is acknowledged once it returns.
        Some(txn) => txn.commit(&producer)?,
        None => producer
            .flush(Duration::from_secs(120))
            .context("timed out waiting for acknowledgements")?,
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    let context = producer.context();
    let failed = context.failed.lock().clone();
    if failed.0 > 0 {
        bail!(
            "{} records failed; first error: {}",
            failed.0,
            failed.1.unwrap_or_default()
        );
    }
    let hist = context.latency_us.lock();
    report(args.records, args.record_size, elapsed);
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "latency ms: p50 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
    if let Some(txn) = txn {
        txn.report(elapsed);
    }
    Ok(())
}

/// The transactional side of `bench produce`: when to commit, and how
/// commits went.
struct Transactions {
    max_records: u64,
    max_age: Duration,
    /// Records sent in the open transaction.
    records: u64,
    opened: Instant,
    commits: u64,
    aborted: u64,
    /// Commit (EndTxn, including the flush before it) latency, µs.
    commit_us: Histogram<u64>,
    /// Of which the flush (the transaction's last records acknowledged), µs.
    flush_us: Histogram<u64>,
}

/// Long enough for a loaded broker; a commit this slow is a failure.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

impl Transactions {
    fn begin(producer: &BaseProducer<Deliveries>, args: &ProduceBench) -> Result<Self> {
        producer
            .init_transactions(TXN_TIMEOUT)
            .context("init_transactions failed")?;
        producer
            .begin_transaction()
            .context("begin_transaction failed")?;
        Ok(Self {
            max_records: args.transaction_records.max(1),
            max_age: Duration::from_millis(args.transaction_ms),
            records: 0,
            opened: Instant::now(),
            commits: 0,
            aborted: 0,
            commit_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            flush_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        })
    }

    /// Commits and opens the next transaction once this one is full or old.
    fn maybe_commit(&mut self, producer: &BaseProducer<Deliveries>) -> Result<()> {
        if self.records >= self.max_records
            || (self.records > 0 && self.opened.elapsed() >= self.max_age)
        {
            self.commit(producer)?;
            producer
                .begin_transaction()
                .context("begin_transaction failed")?;
            self.opened = Instant::now();
        }
        Ok(())
    }

    /// Commits the open transaction; one that must be aborted (an abortable
    /// error) is aborted and counted, and the run goes on.
    fn commit(&mut self, producer: &BaseProducer<Deliveries>) -> Result<()> {
        let at = Instant::now();
        flush_now(producer)?;
        let _ = self
            .flush_us
            .record((at.elapsed().as_micros() as u64).max(1));
        match producer.commit_transaction(TXN_TIMEOUT) {
            Ok(()) => {
                self.commits += 1;
                let _ = self
                    .commit_us
                    .record((at.elapsed().as_micros() as u64).max(1));
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                producer
                    .abort_transaction(TXN_TIMEOUT)
                    .context("abort_transaction failed")?;
                self.aborted += 1;
            }
            Err(e) => bail!("commit_transaction failed: {e}"),
        }
        self.records = 0;
        Ok(())
    }

    fn report(&self, elapsed: Duration) {
        let ms = |q: f64| self.commit_us.value_at_quantile(q) as f64 / 1000.0;
        let flush_ms = |q: f64| self.flush_us.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "commit: flush ms p50 {:.2}, p99 {:.2} (then EndTxn)",
            flush_ms(0.5),
            flush_ms(0.99)
        );
        println!(
            "transactions: {} committed ({:.1}/s), {} aborted; commit ms: p50 {:.2}, p99 {:.2}, max {:.2}",
            self.commits,
            self.commits as f64 / elapsed.as_secs_f64().max(1e-9),
            self.aborted,
            ms(0.5),
            ms(0.99),
            self.commit_us.max() as f64 / 1000.0
        );
    }
}

/// Waits for every record sent to be acknowledged, as librdkafka's own
/// commit does (`rd_kafka_flush`: sent at once, linger.ms disregarded).
///
/// The rdkafka crate's commit flushes first, in a loop of a zero-timeout
/// `rd_kafka_flush` — whose "send now" lasts only as long as the call, so
/// the last batch waits for linger.ms — and of 100 ms polls that each run to
/// their end: every commit would cost ≥ 100 ms on the client alone, which
/// is the crate's doing, not the broker's nor librdkafka's. Here
/// `rd_kafka_flush` waits on a thread of its own while this one serves the
/// delivery reports (which it needs: a message counts until its report is
/// served), so the crate's flush then finds nothing left.
fn flush_now(producer: &BaseProducer<Deliveries>) -> Result<()> {
    struct Handle(*mut rdkafka::bindings::rd_kafka_t);
    // SAFETY: librdkafka's handle is thread-safe (rd_kafka_flush may be
    // called from any thread), and the thread using it is joined before
    // `producer`, which owns it, can be dropped.
    unsafe impl Send for Handle {}
    let handle = Handle(producer.client().native_ptr());
    let timeout_ms = i32::try_from(TXN_TIMEOUT.as_millis()).unwrap_or(i32::MAX);
    let flushed = std::thread::scope(|scope| {
        let flusher = scope.spawn(move || {
            let handle = handle;
            // SAFETY: a live handle (see `Handle`).
            unsafe { rdkafka::bindings::rd_kafka_flush(handle.0, timeout_ms) }
        });
        let start = Instant::now();
        while producer.in_flight_count() > 0 && start.elapsed() < TXN_TIMEOUT {
            producer.poll(Duration::from_millis(1));
        }
        flusher.join()
    });
    match flushed {
        Ok(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR) => Ok(()),
        Ok(e) => bail!("flush before commit failed: {e:?}"),
        Err(_) => bail!("the flushing thread panicked"),
    }
}

fn consume(args: ConsumeBench) -> Result<()> {
    if args.consumer == "fjord" {
        let (count, bytes, elapsed) = crate::bench_fetch::consume(
            &args.client.bootstrap_server,
            &args.topic,
            args.records,
            i32::try_from(args.fetch_max_bytes).unwrap_or(i32::MAX),
        )?;
        report(
            count,
            bytes.checked_div(count).unwrap_or(0) as usize,
            elapsed,
        );
        return Ok(());
    }
    let consumer: BaseConsumer = args
        .client
        .assigning_consumer_config()
        .set("fetch.max.bytes", args.fetch_max_bytes.to_string())
        .set(
            "max.partition.fetch.bytes",
            args.fetch_max_bytes.to_string(),
        )
        // librdkafka pauses fetching for fetch.queue.backoff.ms (1 s) once
        // its prefetch queue is full; a load generator must keep it fed.
        .set("queued.max.messages.kbytes", "1048576")
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "1")
        .create()
        .context("could not create the consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .context("Metadata request failed")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        bail!("topic {} has no partitions", args.topic);
    }
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let progress = progress_bar(args.records.unwrap_or(0));
    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut at_end = HashSet::new();
    while args.records.is_none_or(|n| count < n) {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                count += 1;
                bytes += message.payload_len() as u64;
                if count % 4096 == 0 {
                    progress.set_position(count);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                if args.records.is_none() && at_end.len() == partitions.len() {
                    break;
                }
            }
            Some(Err(e)) => bail!("consume failed: {e}"),
            None => {}
        }
    }
    let elapsed = start.elapsed();
    progress.finish_and_clear();
    let size = bytes.checked_div(count).unwrap_or(0) as usize;
    report(count, size, elapsed);
    Ok(())
}

fn report(records: u64, record_size: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!("records: {records} of {record_size} B in {secs:.2} s");
    println!(
        "throughput: {:.0} records/s, {:.1} MB/s",
        records as f64 / secs,
        (records as f64 * record_size as f64) / secs / 1e6
    );
}

fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec}") {
        bar.set_style(style);
    }
    bar
}
