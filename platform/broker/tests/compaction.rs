//! Compacted topics and DeleteRecords with real clients (librdkafka): the
//! broker's cleaner compacts a `cleanup.policy=compact` topic and a
//! consumer reads it from offset 0 without errors; keyless records are
//! refused with INVALID_RECORD; DeleteRecords moves the low watermark.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestBroker;
use fjord_broker::BrokerConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin")
}

fn create(broker: &TestBroker, topic: &NewTopic<'_>) {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = broker
        .runtime
        .block_on(admin(broker).create_topics([topic], &options))
        .expect("create");
    assert!(results[0].is_ok(), "{results:?}");
}

/// Every record of partition 0 from the beginning up to the high watermark.
fn consume_all(bootstrap: &str, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while out
        .last()
        .is_none_or(|r: &(i64, String, Option<String>)| r.0 + 1 < high)
    {
        assert!(
            Instant::now() < deadline,
            "consumed {} records, high watermark {high}",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.offset(),
                String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap(),
                m.payload().map(|p| String::from_utf8(p.to_vec()).unwrap()),
            )),
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    out
}

#[test]
fn compacted_topic_is_cleaned_and_consumed_without_errors() {
    cleaned_and_consumed("none");
}

/// librdkafka's LZ4 frames, decompressed, filtered and recompressed by the
/// cleaner, then read back by librdkafka.
#[test]
fn lz4_compacted_topic_is_cleaned_and_consumed_without_errors() {
    cleaned_and_consumed("lz4");
}

fn cleaned_and_consumed(codec: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        log_cleaner_backoff_ms: 50,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let topic = NewTopic::new("table", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096");
    create(&broker, &topic);

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "2")
        .set("batch.num.messages", "50")
        .set("compression.type", codec)
        .create()
        .expect("producer");
    let mut latest = HashMap::new();
    for i in 0..3_000 {
        let key = format!("k{}", i % 30);
        let value = format!("v{i}");
        latest.insert(key.clone(), value.clone());
        producer
            .send(
                BaseRecord::to("table")
                    .partition(0)
                    .key(&key)
                    .payload(&value),
            )
            .expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    // The cleaner runs in the background: wait until it has shrunk the log.
    let deadline = Instant::now() + Duration::from_secs(30);
    let records = loop {
        let records = consume_all(&broker.bootstrap(), "table");
        if records.len() < 1_500 {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "never cleaned: {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut seen = HashMap::new();
    let mut previous = -1;
    for (offset, key, value) in records {
        assert!(offset > previous);
        previous = offset;
        seen.insert(key, value.expect("no tombstones produced"));
    }
    assert_eq!(seen, latest);
    broker.stop();
}

/// Keyless records are refused whatever the codec the client compresses
/// with (the broker reads the keys inside librdkafka's compressed batches).
#[test]
fn keyless_records_to_a_compacted_topic_are_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create(
        &broker,
        &NewTopic::new("keyed", 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact,delete"),
    );
    for codec in ["none", "lz4", "zstd", "gzip", "snappy"] {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("message.timeout.ms", "5000")
            .set("compression.type", codec)
            .create()
            .expect("producer");
        let keyless = broker.runtime.block_on(
            producer.send(
                FutureRecord::<(), str>::to("keyed")
                    .partition(0)
                    .payload("x"),
                Duration::from_secs(5),
            ),
        );
        match keyless {
            Err((KafkaError::MessageProduction(code), _)) => {
                assert_eq!(code, RDKafkaErrorCode::InvalidRecord, "{codec}")
            }
            other => panic!("keyless produce ({codec}) to a compacted topic: {other:?}"),
        }
        let keyed = broker.runtime.block_on(producer.send(
            FutureRecord::to("keyed").partition(0).key("k").payload("x"),
            Duration::from_secs(5),
        ));
        assert!(keyed.is_ok(), "{codec}: {keyed:?}");
    }
    broker.stop();
}

#[test]
fn delete_records_moves_the_low_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create(
        &broker,
        &NewTopic::new("trim", 1, TopicReplication::Fixed(1)),
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("producer");
    for i in 0..100 {
        let value = format!("v{i}");
        producer
            .send(
                BaseRecord::<(), str>::to("trim")
                    .partition(0)
                    .payload(&value),
            )
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("trim", 0, Offset::Offset(40))
        .unwrap();
    let result = broker
        .runtime
        .block_on(admin(&broker).delete_records(&tpl, &options))
        .expect("delete records");
    let element = result
        .find_partition("trim", 0)
        .expect("partition in result");
    assert!(element.error().is_ok(), "{:?}", element.error());
    assert_eq!(element.offset(), Offset::Offset(40));

    // Past the high watermark: OFFSET_OUT_OF_RANGE.
    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("trim", 0, Offset::Offset(1_000))
        .unwrap();
    let result = broker
        .runtime
        .block_on(admin(&broker).delete_records(&beyond, &options))
        .expect("delete records");
    assert!(result.find_partition("trim", 0).unwrap().error().is_err());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("consumer");
    let (low, high) = consumer
        .fetch_watermarks("trim", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (40, 100));
    let records = consume_all(&broker.bootstrap(), "trim");
    assert_eq!(records.first().map(|r| r.0), Some(40));
    broker.stop();
}

#[test]
fn consumer_offsets_stay_small_under_a_commit_storm() {
    use rdkafka::consumer::CommitMode;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || BrokerConfig {
        log_cleaner_backoff_ms: 50,
        segment_bytes: 8 << 10,
        offsets_topic_num_partitions: 1,
        ..BrokerConfig::ephemeral(dir.path())
    };
    let broker = TestBroker::start_with(config());
    create(
        &broker,
        &NewTopic::new("storm", 1, TopicReplication::Fixed(1)),
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "stormy")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    const COMMITS: i64 = 2_000;
    for i in 1..=COMMITS {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("storm", 0, Offset::Offset(i))
            .unwrap();
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    let offsets_dir = dir.path().join("__consumer_offsets-0");
    let size = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = size(&offsets_dir);
    // Uncompacted, 2 000 commits take well over 100 KiB.
    while last > 40 << 10 {
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets still {last} bytes"
        );
        std::thread::sleep(Duration::from_millis(100));
        last = size(&offsets_dir);
    }
    drop(consumer);
    broker.stop();

    // The compacted offsets topic still yields the last commit after a restart.
    let broker = TestBroker::start_with(config());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "stormy")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("storm", 0);
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    assert_eq!(
        committed.find_partition("storm", 0).unwrap().offset(),
        Offset::Offset(COMMITS)
    );
    broker.stop();
}

#[test]
fn a_rolled_segment_is_cleaned_without_waiting_for_the_backoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        log_cleaner_backoff_ms: 600_000,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let topic = NewTopic::new("rolled", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096");
    create(&broker, &topic);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    // Thirty flushed rounds: thirty batches of about 2 KB, so the 4 KiB
    // segments roll (one batch of everything would fill a single segment).
    for round in 0..30 {
        for i in round * 100..(round + 1) * 100 {
            let key = format!("k{}", i % 30);
            let value = format!("v{i}");
            producer
                .send(
                    BaseRecord::to("rolled")
                        .partition(0)
                        .key(&key)
                        .payload(&value),
                )
                .expect("enqueue");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records = consume_all(&broker.bootstrap(), "rolled");
        if records.len() < 1_500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not cleaned: {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    broker.stop();
}

/// The names of this process's threads (Linux: /proc/self/task).
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// Waits until a thread named `name` runs (or, with `running` false, none
/// does).
fn wait_for_thread(name: &str, running: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while thread_names().iter().any(|n| n == name) != running {
        assert!(Instant::now() < deadline, "{name} running: not {running}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes 3,000 records over 30 keys to `topic` in 30 flushed rounds (its
/// 4 KiB segments roll), and waits until the cleaner has shrunk it.
fn fill_and_wait_cleaned(broker: &TestBroker, topic: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "2")
        .create()
        .expect("producer");
    for round in 0..30 {
        for i in round * 100..(round + 1) * 100 {
            let key = format!("k{}", i % 30);
            let value = format!("v{i}");
            producer
                .send(BaseRecord::to(topic).partition(0).key(&key).payload(&value))
                .expect("enqueue");
        }
        producer.flush(Duration::from_secs(10)).expect("flush");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let records = consume_all(&broker.bootstrap(), topic);
        if records.len() < 1_500 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} not cleaned: {} records",
            records.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The value, source and read-only flag of broker 0's config `name`.
fn broker_config(broker: &TestBroker, name: &str) -> (String, String, bool) {
    use rdkafka::admin::ResourceSpecifier;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let described = broker
        .runtime
        .block_on(admin(broker).describe_configs([&ResourceSpecifier::Broker(0)], &options))
        .expect("describe");
    let resource = described[0].as_ref().expect("resource");
    let entry = resource.get(name).expect("listed");
    (
        entry.value.clone().unwrap_or_default(),
        format!("{:?}", entry.source),
        entry.is_read_only,
    )
}

/// The cleaner's settings change while the broker runs (AlterConfigs on
/// the broker through librdkafka): a second cleaner thread starts, both
/// clean (two compacted topics, one each), DescribeConfigs shows the
/// values as this broker's dynamic configs, and after a restart they are
/// still in force; lowered again, the second thread retires.
#[test]
fn cleaner_settings_change_live_and_survive_a_restart() {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let alter = |broker: &TestBroker, configs: &[(&str, &str)]| {
        let mut alter = AlterConfig::new(ResourceSpecifier::Broker(0));
        for (key, value) in configs {
            alter = alter.set(key, value);
        }
        let results = broker
            .runtime
            .block_on(admin(broker).alter_configs([&alter], &options))
            .expect("alter");
        assert!(results[0].is_ok(), "{results:?}");
    };
    assert_eq!(
        broker_config(&broker, "log.cleaner.threads"),
        ("1".into(), "Default".into(), false)
    );
    alter(
        &broker,
        &[
            ("log.cleaner.threads", "2"),
            ("log.cleaner.io.max.bytes.per.second", "50000000"),
            ("log.cleaner.backoff.ms", "100"),
        ],
    );
    wait_for_thread("fjord-cleaner-1", true);
    for (name, value) in [
        ("log.cleaner.threads", "2"),
        ("log.cleaner.io.max.bytes.per.second", "50000000"),
        ("log.cleaner.backoff.ms", "100"),
    ] {
        assert_eq!(
            broker_config(&broker, name),
            (value.into(), "DynamicBroker".into(), false),
            "{name}"
        );
    }
    for name in ["table-a", "table-b"] {
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact")
            .set("segment.bytes", "4096");
        create(&broker, &topic);
        fill_and_wait_cleaned(&broker, name);
    }
    broker.stop();
    wait_for_thread("fjord-cleaner-1", false);

    let broker = TestBroker::start(dir.path());
    assert_eq!(
        broker_config(&broker, "log.cleaner.threads"),
        ("2".into(), "DynamicBroker".into(), false)
    );
    wait_for_thread("fjord-cleaner-1", true);
    let topic = NewTopic::new("table-c", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "4096");
    create(&broker, &topic);
    fill_and_wait_cleaned(&broker, "table-c");
    // AlterConfigs replaces the set: back to the one thread of the default.
    alter(&broker, &[("log.cleaner.backoff.ms", "100")]);
    wait_for_thread("fjord-cleaner-1", false);
    assert_eq!(
        broker_config(&broker, "log.cleaner.threads"),
        ("1".into(), "Default".into(), false)
    );
    broker.stop();
}
