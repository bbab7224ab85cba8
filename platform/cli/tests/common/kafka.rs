//! Kafka client helpers for tests against a [`Cluster`]: create topics,
//! read partition metadata (leader, replicas, ISR), produce a numbered
//! stream while recording every acknowledgement, read a partition back,
//! send a raw Produce to one broker, and read a replica's log files.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::cluster::{Cluster, NodeState, WAIT};

/// A partition as a Metadata answer describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Creates `name` through whichever broker `bootstrap` reaches (Kafka
/// CreateTopics), with replication factor `rf` and topic `configs`.
pub fn create_topic(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    rf: i32,
    configs: &[(&str, &str)],
) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(15)));
    // The admin client's futures are completed by its own thread; any
    // executor can wait on them.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime to wait on the admin client");
    let results = runtime
        .block_on(admin.create_topics([&topic], &options))
        .map_err(|e| format!("CreateTopics {name}: {e}"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err((topic, code))) => Err(format!("CreateTopics {topic}: {code:?}")),
        None => Err(format!("CreateTopics {name}: no result")),
    }
}

/// Partition `partition` of `topic` as the broker that `bootstrap` reaches
/// reports it; `Err` says why there is none (yet).
pub fn partition_info(
    bootstrap: &str,
    topic: &str,
    partition: i32,
) -> Result<PartitionInfo, String> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("metadata client: {e}"))?;
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(3))
        .map_err(|e| format!("Metadata via {bootstrap}: {e}"))?;
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("Metadata has no topic {topic}"))?;
    if let Some(e) = t.error() {
        return Err(format!("topic {topic}: {e:?}"));
    }
    let p = t
        .partitions()
        .iter()
        .find(|p| p.id() == partition)
        .ok_or_else(|| format!("Metadata has no partition {topic}-{partition}"))?;
    if let Some(e) = p.error() {
        return Err(format!("partition {topic}-{partition}: {e:?}"));
    }
    Ok(PartitionInfo {
        leader: p.leader(),
        replicas: p.replicas().to_vec(),
        isr: p.isr().to_vec(),
    })
}

impl Cluster {
    /// `topic`-`partition` as a reachable broker reports it.
    pub fn partition(&self, topic: &str, partition: i32) -> Result<PartitionInfo, String> {
        partition_info(&self.bootstrap(), topic, partition)
    }

    /// `topic`-`partition` as each running node's broker sees it, asked on
    /// its real port (one line per node): where brokers disagree on the
    /// leader or the ISR, this shows it.
    pub fn partition_views(&self, topic: &str, partition: i32) -> String {
        self.ids()
            .into_iter()
            .filter(|&id| self.node(id).state() == NodeState::Running)
            .map(|id| {
                let view = match partition_at(self.node(id).kafka, topic, partition) {
                    Ok(info) => format!("{info:?}"),
                    Err(e) => e,
                };
                format!("  broker {id} sees {topic}-{partition}: {view}\n")
            })
            .collect()
    }

    /// Waits until Metadata for `topic`-`partition` satisfies `check`.
    pub fn wait_for_partition(
        &self,
        what: &str,
        topic: &str,
        partition: i32,
        check: impl Fn(&PartitionInfo) -> bool,
    ) -> PartitionInfo {
        self.wait_for_explained(
            what,
            |c| {
                let info = c.partition(topic, partition)?;
                if check(&info) {
                    Ok(info)
                } else {
                    Err(format!("{topic}-{partition}: {info:?}"))
                }
            },
            |c| c.partition_views(topic, partition),
        )
    }

    /// Waits for a leader of `topic`-`partition` that is a reachable node;
    /// returns its id.
    pub fn wait_for_leader(&self, topic: &str, partition: i32) -> u64 {
        let info = self.wait_for_partition(
            &format!("a reachable leader of {topic}-{partition}"),
            topic,
            partition,
            |info| u64::try_from(info.leader).is_ok_and(|l| self.reachable(l)),
        );
        info.leader as u64
    }

    /// Waits until every running node's broker, asked on its real port,
    /// sees `topic`-`partition` satisfy `check`. A broker that was paused
    /// answers from what it knew before the pause until it catches up on
    /// the metadata (as a Kafka broker does), so a test that reads right
    /// after resuming one waits for this rather than for any one view.
    pub fn wait_for_every_view(
        &self,
        what: &str,
        topic: &str,
        partition: i32,
        check: impl Fn(&PartitionInfo) -> bool,
    ) {
        self.wait_for_explained(
            what,
            |c| {
                for id in c.ids() {
                    if c.node(id).state() != NodeState::Running {
                        continue;
                    }
                    let info = partition_at(c.node(id).kafka, topic, partition)
                        .map_err(|e| format!("broker {id}: {e}"))?;
                    if !check(&info) {
                        return Err(format!("broker {id} sees {topic}-{partition}: {info:?}"));
                    }
                }
                Ok(())
            },
            |c| c.partition_views(topic, partition),
        )
    }

    /// Waits until `topic`-`partition` has `size` replicas in its ISR.
    pub fn wait_for_isr(&self, topic: &str, partition: i32, size: usize) -> PartitionInfo {
        self.wait_for_partition(
            &format!("{topic}-{partition} with {size} in-sync replicas"),
            topic,
            partition,
            |info| info.isr.len() == size && info.leader >= 0,
        )
    }
}

/// What an [`AckedProducer`] produced.
#[derive(Debug, Default)]
pub struct ProduceReport {
    /// Records handed to the client.
    pub sent: u64,
    /// `(offset, value)` of every record whose delivery report succeeded,
    /// in the order the reports came.
    pub acked: Vec<(i64, String)>,
    /// `(value, error)` of every record whose delivery failed.
    pub failed: Vec<(String, String)>,
    /// The client's fatal error, if it hit one (an idempotent producer
    /// stops on e.g. an out-of-order sequence it cannot recover).
    pub fatal: Option<String>,
}

#[derive(Default)]
struct Reports {
    acked: Mutex<Vec<(i64, String)>>,
    failed: Mutex<Vec<(String, String)>>,
    /// The last error `send` returned (the record was not queued).
    send_error: Mutex<Option<String>>,
}

struct Recorder(Arc<Reports>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let text = |m: &rdkafka::message::BorrowedMessage<'_>| {
            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()
        };
        match result {
            Ok(m) => self.0.acked.lock().push((m.offset(), text(m))),
            Err((e, m)) => self.0.failed.lock().push((text(m), e.to_string())),
        }
    }
}

/// Records in flight at once: the most an idempotent producer keeps
/// ordered (`max.in.flight.requests.per.connection` ≤ 5).
const WINDOW: i32 = 5;

/// A thread producing "0", "1", "2", … to partition 0 of a topic with
/// `acks=all` and idempotence, a few records in flight at a time,
/// recording every delivery report.
pub struct AckedProducer {
    topic: String,
    stop: Arc<AtomicBool>,
    reports: Arc<Reports>,
    thread: Option<JoinHandle<(u64, Option<String>)>>,
}

impl AckedProducer {
    /// Starts producing; `overrides` are extra client settings.
    pub fn start(bootstrap: &str, topic: &str, overrides: &[(&str, &str)]) -> AckedProducer {
        let reports = Arc::new(Reports::default());
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "0")
            // Find a new leader quickly after a kill.
            .set("topic.metadata.refresh.interval.ms", "1000")
            .set("retry.backoff.ms", "100");
        for (key, value) in overrides {
            config.set(*key, *value);
        }
        let producer: BaseProducer<Recorder> = config
            .create_with_context(Recorder(Arc::clone(&reports)))
            .expect("create the producer");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let topic = topic.to_owned();
            let reports = Arc::clone(&reports);
            std::thread::Builder::new()
                .name("acked-producer".into())
                .spawn(move || produce_loop(&producer, &topic, &stop, &reports))
                .expect("spawn the producer thread")
        };
        AckedProducer {
            topic: topic.to_owned(),
            stop,
            reports,
            thread: Some(thread),
        }
    }

    /// Acknowledged so far.
    pub fn acked(&self) -> usize {
        self.reports.acked.lock().len()
    }

    /// Failed deliveries so far, and the last one.
    pub fn failures(&self) -> (usize, Option<(String, String)>) {
        let failed = self.reports.failed.lock();
        (failed.len(), failed.last().cloned())
    }

    /// Waits until `more` records beyond `from` acknowledged are; panics
    /// after 60 s with what went wrong.
    pub fn wait_acked(&self, cluster: &Cluster, from: usize, more: usize, what: &str) -> usize {
        cluster.wait_for_explained(
            what,
            |_| {
                let acked = self.acked();
                if acked >= from + more {
                    return Ok(acked);
                }
                let (failed, last) = self.failures();
                let send_error = self.reports.send_error.lock().clone();
                Err(format!(
                    "{acked} acknowledged (wanted {}), {failed} failed, last failure {last:?}, \
                 last send error {send_error:?}",
                    from + more
                ))
            },
            |c| c.partition_views(&self.topic, 0),
        )
    }

    /// Stops producing, waits for every outstanding delivery report (up to
    /// the message timeout), and returns what happened.
    pub fn stop(mut self) -> ProduceReport {
        self.stop.store(true, Ordering::SeqCst);
        let (sent, fatal) = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("the producer thread panicked");
        ProduceReport {
            sent,
            acked: take(&self.reports.acked),
            failed: take(&self.reports.failed),
            fatal,
        }
    }
}

impl Drop for AckedProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn produce_loop(
    producer: &BaseProducer<Recorder>,
    topic: &str,
    stop: &AtomicBool,
    reports: &Reports,
) -> (u64, Option<String>) {
    let mut next: u64 = 0;
    let fatal = || {
        producer
            .client()
            .fatal_error()
            .map(|(code, text)| format!("{code:?}: {text}"))
    };
    while !stop.load(Ordering::SeqCst) {
        if let Some(f) = fatal() {
            return (next, Some(f));
        }
        if producer.in_flight_count() >= WINDOW {
            producer.poll(Duration::from_millis(10));
            continue;
        }
        let value = next.to_string();
        match producer.send(
            BaseRecord::<(), str>::to(topic)
                .partition(0)
                .payload(&value),
        ) {
            Ok(()) => next += 1,
            Err((e, _)) => {
                // Queue full or similar: serve callbacks, then try again
                // with the same value, so values stay consecutive. Kept
                // for `wait_acked`'s message in case it never clears.
                *reports.send_error.lock() = Some(e.to_string());
                producer.poll(Duration::from_millis(10));
                continue;
            }
        }
        // A few hundred records a second at most: enough to see every
        // failover, small enough that reading back and comparing logs is
        // quick on a shared 2-core machine.
        producer.poll(Duration::from_millis(2));
    }
    let _ = producer.flush(Duration::from_secs(60));
    (next, fatal())
}

/// Produces `values` to `topic`-`partition` with `acks=all` and
/// idempotence, and waits for every delivery report (up to 30 s).
pub fn produce_to(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    values: &[String],
) -> ProduceReport {
    let reports = Arc::new(Reports::default());
    let producer: BaseProducer<Recorder> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "0")
        .create_with_context(Recorder(Arc::clone(&reports)))
        .expect("create the producer");
    let mut sent = 0;
    for value in values {
        let mut record = BaseRecord::<(), str>::to(topic)
            .partition(partition)
            .payload(value.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // Queue full: serve callbacks, then send the same record.
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        sent += 1;
    }
    let _ = producer.flush(Duration::from_secs(30));
    let fatal = producer
        .client()
        .fatal_error()
        .map(|(code, text)| format!("{code:?}: {text}"));
    ProduceReport {
        sent,
        acked: take(&reports.acked),
        failed: take(&reports.failed),
        fatal,
    }
}

/// Every record of `topic`-`partition` from offset 0 to the high watermark,
/// as `(offset, value)`.
pub fn consume_all(bootstrap: &str, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cluster-harness-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("create the consumer");
    let deadline = Instant::now() + WAIT;
    let high = loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(3)) {
            Ok((_, high)) => break high,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no watermarks for {topic}-{partition}: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut out: Vec<(i64, String)> = Vec::new();
    if high == 0 {
        return out;
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut last_error = None;
    while out.last().is_none_or(|(offset, _)| *offset < high - 1) {
        assert!(
            Instant::now() < deadline,
            "reading {topic}-{partition}: {} records read, last offset {:?}, high watermark \
             {high}, last error {last_error:?}",
            out.len(),
            out.last().map(|(o, _)| *o)
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(e)) => last_error = Some(e.to_string()),
            None => {}
        }
    }
    out
}

/// Every record of `topic`/`partition` a read_committed consumer sees, up
/// to the partition's end as of the read (its last stable offset): what a
/// transactional writer committed, without what it aborted, and without
/// waiting for offsets that control records take (`consume_all` would).
#[allow(dead_code, reason = "used by some of the test binaries")]
pub fn consume_committed(bootstrap: &str, topic: &str, partition: i32) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cluster-harness-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("create the consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut out: Vec<(i64, String)> = Vec::new();
    let mut last_error = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {topic}-{partition} committed: {} records read, last error {last_error:?}",
            out.len(),
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => last_error = Some(e.to_string()),
            None => {}
        }
    }
}

/// Checks a partition read back (`consume_all`) against what an
/// [`AckedProducer`] was told: offsets contiguous from 0, no value twice,
/// every acknowledged record at its acknowledged offset, acknowledged
/// values in produce order. Panics saying which held not.
pub fn check_acked_log(log: &[(i64, String)], report: &ProduceReport) {
    // Offsets are contiguous from 0.
    for (i, (offset, _)) in log.iter().enumerate() {
        assert_eq!(
            *offset, i as i64,
            "offsets are contiguous from 0: offset {offset} at position {i}"
        );
    }
    // No value twice: retries of an idempotent producer are deduplicated.
    let mut seen = HashSet::new();
    for (offset, value) in log {
        assert!(
            seen.insert(value.as_str()),
            "value {value:?} appears twice (again at offset {offset})"
        );
    }
    // Every acknowledged record is where its acknowledgement said.
    for (offset, value) in &report.acked {
        let found = usize::try_from(*offset).ok().and_then(|i| log.get(i));
        assert_eq!(
            found.map(|(_, v)| v.as_str()),
            Some(value.as_str()),
            "acknowledged record {value:?} at offset {offset} is in the log \
             ({} records read, {} acknowledged)",
            log.len(),
            report.acked.len()
        );
    }
    // Acknowledged values are in the log in the order they were produced.
    let mut acked: Vec<(i64, u64)> = report
        .acked
        .iter()
        .map(|(o, v)| (*o, v.parse().expect("numeric value")))
        .collect();
    acked.sort_unstable();
    for pair in acked.windows(2) {
        assert!(
            pair[0].1 < pair[1].1,
            "acknowledged values out of produce order: {:?} before {:?}",
            pair[0],
            pair[1]
        );
    }
}

/// How a raw request was answered.
#[derive(Debug)]
pub enum RawAnswer {
    /// The partition's error code in a Produce answer (0: success).
    ErrorCode(i16),
    /// No answer: the connection closed or the read timed out.
    NoAnswer(String),
}

/// Sends one Produce v9 of a single record `value` to the broker at `addr`
/// (its real port, bypassing any proxy) and reads the answer.
pub fn raw_produce(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
    value: &str,
    acks: i16,
    timeout_ms: i32,
) -> RawAnswer {
    const VERSION: i16 = 9;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default(),
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    let mut records = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut records,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records.freeze())),
                ]),
        ]);
    let response: ProduceResponse =
        match raw_call(addr, ApiKey::Produce, VERSION, &request, timeout_ms) {
            Ok(r) => r,
            Err(e) => return RawAnswer::NoAnswer(e),
        };
    let code = response
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .find(|p| p.index == partition)
        .map(|p| p.error_code);
    match code {
        Some(code) => RawAnswer::ErrorCode(code),
        None => RawAnswer::NoAnswer(format!("no partition {partition} in {response:?}")),
    }
}

/// One request to the broker at `addr` on a fresh connection, and its
/// decoded answer; `Err` says why there is none. The read waits
/// `timeout_ms` plus a margin for a slow machine.
pub fn raw_call<Req: Encodable, Resp: Decodable>(
    addr: SocketAddr,
    api_key: ApiKey,
    version: i16,
    request: &Req,
    timeout_ms: i32,
) -> Result<Resp, String> {
    use std::io::{Read, Write};
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("cluster-harness-raw")));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header
        .encode(&mut frame, api_key.request_header_version(version))
        .expect("header encodes");
    request
        .encode(&mut frame, version)
        .expect("request encodes");
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());

    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(
        Duration::from_millis(timeout_ms.max(0) as u64) + Duration::from_secs(15),
    ));
    stream
        .write_all(&frame)
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let mut body = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, api_key.response_header_version(version))
        .map_err(|e| format!("response header from {addr}: {e}"))?;
    Resp::decode(&mut body, version).map_err(|e| format!("response from {addr}: {e}"))
}

/// `topic`-`partition` as the broker at `addr` itself sees it (a raw
/// Metadata v9 to that broker alone, unlike a client that may ask any).
pub fn partition_at(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
) -> Result<PartitionInfo, String> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_owned())),
        ))]));
    let response: MetadataResponse = raw_call(addr, ApiKey::Metadata, 9, &request, 0)?;
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| format!("no topic {topic}"))?;
    if t.error_code != 0 {
        return Err(format!("topic error {}", t.error_code));
    }
    let p = t
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .ok_or_else(|| format!("no partition {partition}"))?;
    if p.error_code != 0 {
        return Err(format!("partition error {}", p.error_code));
    }
    Ok(PartitionInfo {
        leader: p.leader_id.0,
        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
    })
}

/// The bytes of a replica's log for `topic`-`partition` in `data_dir`: its
/// `*.log` segment files concatenated in name order (names are zero-padded
/// base offsets, so name order is offset order).
pub fn log_bytes(data_dir: &Path, topic: &str, partition: i32) -> Vec<u8> {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let mut out = Vec::new();
    for segment in segments {
        out.extend(
            std::fs::read(&segment).unwrap_or_else(|e| panic!("{}: {e}", segment.display())),
        );
    }
    out
}

fn take<T>(m: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *m.lock())
}

/// ApiVersions v0, correlation id 1.
pub const API_VERSIONS: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0];

/// A connection from the loopback address `source`, or `None` when the
/// broker reset it (as it resets refused connections) before the connect
/// was seen through.
pub fn attempt_from(source: &str, to: &str) -> Option<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(source.parse().unwrap(), 0))
            .unwrap();
        socket.connect(to.parse().unwrap()).await
    });
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("connect: {e}"),
    };
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    Some(stream)
}

/// A connection from the loopback address `source` that is accepted.
pub fn connect_from(source: &str, to: &str) -> TcpStream {
    attempt_from(source, to).expect("connection reset")
}

/// Sends ApiVersions: true when answered within `wait`, false when the
/// connection is closed or silent.
pub fn served(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    if stream.write_all(&API_VERSIONS).is_err() {
        return false;
    }
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).is_ok()
}
