//! End-to-end tests with librdkafka (the `rdkafka` crate) as a real client:
//! every codec and acks level, byte-identical round trips with keys,
//! headers and timestamps, offsets by time, restart, topic admin.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const BASE_TS: i64 = 1_700_000_000_000;

#[derive(Default)]
struct Deliveries {
    ok: AtomicUsize,
    failed: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn key(i: usize) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// Varied, partly compressible payloads.
fn payload(i: usize) -> Vec<u8> {
    let len = 10 + (i * 7919) % 90;
    (0..len)
        .map(|j| b"abcdefgh"[(i + j / 8) % 8] ^ (j as u8 & 1))
        .collect()
}

fn produce(bootstrap: &str, topic: &str, codec: &str, acks: &str, n: usize, partitions: i32) {
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", codec)
        .set("acks", acks)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "60000")
        .create_with_context(Deliveries::default())
        .expect("producer");
    for i in 0..n {
        let (k, v) = (key(i), payload(i));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "index",
                value: Some(&(i as u64).to_be_bytes()),
            })
            .insert(Header {
                key: "codec",
                value: Some(codec),
            });
        let mut record = BaseRecord::to(topic)
            .key(&k)
            .payload(&v)
            .partition(i as i32 % partitions)
            .timestamp(BASE_TS + i as i64)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(_), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let ctx = producer.context();
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0, "{codec} acks={acks}");
    assert_eq!(ctx.ok.load(Ordering::Relaxed), n, "{codec} acks={acks}");
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // assign() needs a group id; offsets are explicit, nothing is committed.
        .set("group.id", "fjord-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// Reads `n` records from `partitions` partitions (record `i` went to
/// partition `i % partitions`) and checks each one byte for byte.
fn consume_and_check(bootstrap: &str, topic: &str, codec: &str, n: usize, partitions: i32) {
    let consumer = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut next = vec![0usize; partitions as usize];
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < n {
        assert!(
            Instant::now() < deadline,
            "{topic}: only {seen} of {n} consumed"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("consume");
        let p = message.partition();
        let i = next[p as usize] * partitions as usize + p as usize;
        assert_eq!(message.offset() as usize, next[p as usize], "{topic}");
        assert_eq!(message.key(), Some(&key(i)[..]), "{topic} key {i}");
        assert_eq!(
            message.payload(),
            Some(&payload(i)[..]),
            "{topic} value {i}"
        );
        assert_eq!(
            message.timestamp().to_millis(),
            Some(BASE_TS + i as i64),
            "{topic} timestamp {i}"
        );
        let headers = message.headers().expect("headers");
        assert_eq!(headers.count(), 2);
        let index = headers.get(0);
        assert_eq!(index.key, "index");
        assert_eq!(index.value, Some(&(i as u64).to_be_bytes()[..]));
        assert_eq!(headers.get(1).value, Some(codec.as_bytes()));
        next[p as usize] += 1;
        seen += 1;
    }
}

fn codec_round_trip(codec: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let bootstrap = broker.bootstrap();
    for acks in ["0", "1", "all"] {
        let n = 100_000;
        let topic = format!("{codec}-acks-{acks}");
        produce(&bootstrap, &topic, codec, acks, n, 1);
        // librdkafka gates lz4 on the broker advertising FindCoordinator
        // (rdkafka_feature.c); with the group APIs it compresses with lz4.
        assert_eq!(stored_codec(&broker, &topic), codec_id(codec), "{topic}");
        consume_and_check(&bootstrap, &topic, codec, n, 1);
    }
    broker.stop();
}

fn codec_id(codec: &str) -> i16 {
    ["none", "gzip", "snappy", "lz4", "zstd"]
        .iter()
        .position(|c| *c == codec)
        .expect("known codec") as i16
}

/// The highest codec id among the first stored batches, read with a raw Fetch: the
/// broker must store batches as sent, compressed.
fn stored_codec(broker: &TestBroker, topic: &str) -> i16 {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{ApiKey, FetchRequest, RequestKind, ResponseKind, TopicName};
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(topic.to_string().into()))
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let mut raw = common::Raw::connect(broker.addr);
    match raw.call(ApiKey::Fetch, 12, RequestKind::Fetch(request)) {
        ResponseKind::Fetch(r) => {
            let records = r.responses[0].partitions[0]
                .records
                .clone()
                .expect("records");
            // librdkafka sends a batch uncompressed when compression does
            // not make it smaller, so look at every batch of the answer.
            let (mut at, mut codecs) = (0, Vec::new());
            while at + 23 <= records.len() {
                codecs.push(i16::from_be_bytes([records[at + 21], records[at + 22]]) & 7);
                let len = i32::from_be_bytes([
                    records[at + 8],
                    records[at + 9],
                    records[at + 10],
                    records[at + 11],
                ]);
                at += 12 + len as usize;
            }
            codecs.into_iter().max().expect("a batch")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn round_trip_uncompressed() {
    codec_round_trip("none");
}

#[test]
fn round_trip_gzip() {
    codec_round_trip("gzip");
}

#[test]
fn round_trip_snappy() {
    codec_round_trip("snappy");
}

#[test]
fn round_trip_lz4() {
    codec_round_trip("lz4");
}

#[test]
fn round_trip_zstd() {
    codec_round_trip("zstd");
}

#[test]
fn restart_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fjord_broker::BrokerConfig::ephemeral(dir.path());
    config.num_partitions = 3;
    config.segment_bytes = 64 * 1024; // several segments per partition
    config.durability = fjord_broker::DurabilityConfig::Fsync;
    let broker = TestBroker::start_with(config.clone());
    produce(&broker.bootstrap(), "durable", "lz4", "all", 30_000, 3);
    broker.stop();
    // A graceful stop leaves recovery checkpoints behind.
    for p in 0..3 {
        let checkpoint = dir
            .path()
            .join(format!("durable-{p}"))
            .join(fjord_log::RECOVERY_POINT_CHECKPOINT);
        assert!(checkpoint.exists(), "{}", checkpoint.display());
    }

    let broker = TestBroker::start_with(config);
    consume_and_check(&broker.bootstrap(), "durable", "lz4", 30_000, 3);
    // Offsets go on where they stopped.
    let consumer = consumer(&broker.bootstrap());
    let (low, high) = consumer
        .fetch_watermarks("durable", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 10_000));
    broker.stop();
}

#[test]
fn offsets_for_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    produce(&broker.bootstrap(), "timed", "none", "1", 5_000, 1);
    let consumer = consumer(&broker.bootstrap());
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("timed", 0, Offset::Offset(BASE_TS + 1_234))
        .expect("tpl");
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .expect("offsets_for_times");
    let element = found.find_partition("timed", 0).expect("partition");
    assert_eq!(element.offset(), Offset::Offset(1_234));
    let (low, high) = consumer
        .fetch_watermarks("timed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 5_000));
    broker.stop();
}

#[test]
fn topic_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let rt = &broker.runtime;

    let topic = NewTopic::new("admin-t", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "delete");
    let results = rt
        .block_on(admin.create_topics([&topic], &options))
        .expect("create");
    assert!(results[0].is_ok(), "{results:?}");
    let again = rt
        .block_on(admin.create_topics([&topic], &options))
        .expect("create again");
    assert!(again[0].is_err(), "duplicate create must fail");
    let bad = NewTopic::new("bad topic", 1, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics([&bad], &options))
        .expect("create bad");
    assert!(results[0].is_err());
    let three = NewTopic::new("rf3", 1, TopicReplication::Fixed(3));
    let results = rt
        .block_on(admin.create_topics([&three], &options))
        .expect("create rf3");
    assert!(results[0].is_err(), "replication factor 3 on one node");

    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("admin-t")).set("retention.ms", "7200000");
    let results = rt
        .block_on(admin.alter_configs([&alter], &options))
        .expect("alter");
    assert!(results[0].is_ok(), "{results:?}");
    let described = rt
        .block_on(admin.describe_configs([&ResourceSpecifier::Topic("admin-t")], &options))
        .expect("describe");
    let resource = described[0].as_ref().expect("resource");
    let retention = resource.get("retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    let policy = resource.get("cleanup.policy").expect("cleanup.policy");
    assert_eq!(policy.value.as_deref(), Some("delete"));

    let grow = NewPartitions::new("admin-t", 4);
    let results = rt
        .block_on(admin.create_partitions([&grow], &options))
        .expect("partitions");
    assert!(results[0].is_ok(), "{results:?}");
    let metadata = admin
        .inner()
        .fetch_metadata(Some("admin-t"), Duration::from_secs(10))
        .expect("metadata");
    assert_eq!(metadata.topics()[0].partitions().len(), 4);

    let results = rt
        .block_on(admin.delete_topics(&["admin-t"], &options))
        .expect("delete");
    assert!(results[0].is_ok(), "{results:?}");
    assert!(!dir.path().join("admin-t-0").exists());
    assert!(!dir.path().join("topics").join("admin-t.yaml").exists());
    drop(admin);
    broker.stop();
}

#[test]
fn concurrent_producers_with_fsync_durability() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fjord_broker::BrokerConfig::ephemeral(dir.path());
    config.durability = fjord_broker::DurabilityConfig::Fsync;
    let broker = TestBroker::start_with(config);
    let bootstrap = broker.bootstrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let bootstrap = bootstrap.clone();
            std::thread::spawn(move || produce(&bootstrap, "shared", "snappy", "all", 5_000, 1))
        })
        .collect();
    for thread in threads {
        thread.join().expect("producer thread");
    }
    let consumer = consumer(&bootstrap);
    let (low, high) = consumer
        .fetch_watermarks("shared", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 20_000));
    broker.stop();
}
