//! Topic configs with librdkafka as the client: a topic created with every
//! config Kafka 4.x lists for a topic (and the three Kafka 4.0 removed),
//! described with each config's source; LogAppendTime as a consumer and
//! a (plain or idempotent) producer see it; timestamps outside `message.timestamp.before/after.max.ms` refused
//! with INVALID_TIMESTAMP.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestBroker;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Every topic config `kafka-configs --describe --all` lists for a topic
/// in Kafka 4.1, each with a non-default value a tool could send, and the
/// removed ones Kafka 4.0 still accepts.
const FULL_SET: &[(&str, &str)] = &[
    ("cleanup.policy", "compact,delete"),
    ("compression.gzip.level", "5"),
    ("compression.lz4.level", "10"),
    ("compression.type", "producer"),
    ("compression.zstd.level", "4"),
    ("delete.retention.ms", "86400001"),
    ("file.delete.delay.ms", "60001"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("follower.replication.throttled.replicas", ""),
    ("index.interval.bytes", "4097"),
    ("leader.replication.throttled.replicas", ""),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.4"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("remote.log.copy.disable", "false"),
    ("remote.log.delete.on.disable", "false"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800001"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485761"),
    ("segment.jitter.ms", "1000"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
    // Removed in Kafka 4.0: accepted and ignored.
    ("message.downconversion.enable", "true"),
    ("message.format.version", "3.0-IV1"),
    ("message.timestamp.difference.max.ms", "9223372036854775807"),
];

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

fn create(broker: &TestBroker, name: &str, configs: &[(&str, &str)]) -> Result<(), String> {
    let admin = admin(broker);
    let mut topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = broker
        .runtime
        .block_on(admin.create_topics([&topic], &options()))
        .expect("create_topics");
    results[0]
        .clone()
        .map(|_| ())
        .map_err(|(_, code)| format!("{code:?}"))
}

fn producer(broker: &TestBroker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer")
}

/// Produces one record with `timestamp`; the broker's answer.
fn send(broker: &TestBroker, topic: &str, timestamp: i64) -> Result<i64, KafkaError> {
    let producer = producer(broker);
    broker
        .runtime
        .block_on(
            producer.send(
                FutureRecord::to(topic)
                    .key("k")
                    .payload("v")
                    .timestamp(timestamp),
                Duration::from_secs(10),
            ),
        )
        .map(|delivery| delivery.offset)
        .map_err(|(e, _)| e)
}

#[test]
fn a_full_kafka_config_set_is_accepted_and_described_with_sources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fjord_broker::BrokerConfig::ephemeral(dir.path());
    // A broker default changed by the broker's config: STATIC_BROKER_CONFIG.
    config.retention_bytes = Some(1 << 30);
    let broker = TestBroker::start_with(config);
    create(&broker, "full", FULL_SET).expect("every Kafka topic config is accepted");
    create(&broker, "plain", &[]).expect("plain");

    let admin = admin(&broker);
    let rt = &broker.runtime;
    let described = rt
        .block_on(admin.describe_configs(
            [
                &ResourceSpecifier::Topic("full"),
                &ResourceSpecifier::Topic("plain"),
            ],
            &options(),
        ))
        .expect("describe");
    let full = described[0].as_ref().expect("full");
    for (name, value) in FULL_SET.iter().take(FULL_SET.len() - 3) {
        let entry = full.get(name).unwrap_or_else(|| panic!("{name} described"));
        assert_eq!(entry.value.as_deref().unwrap_or(""), *value, "{name}");
        assert_eq!(entry.source, ConfigSource::DynamicTopic, "{name}");
    }
    // The removed ones are ignored, not stored.
    assert!(full.get("message.format.version").is_none());
    let plain = described[1].as_ref().expect("plain");
    for (name, _) in FULL_SET.iter().take(FULL_SET.len() - 3) {
        assert!(plain.get(name).is_some(), "{name} described by default");
    }
    let entry = |name: &str| plain.get(name).expect(name);
    assert_eq!(entry("retention.bytes").source, ConfigSource::StaticBroker);
    assert_eq!(
        entry("retention.bytes").value.as_deref(),
        Some("1073741824")
    );
    assert_eq!(entry("retention.ms").source, ConfigSource::Default);
    assert_eq!(
        entry("message.timestamp.after.max.ms").value.as_deref(),
        Some("3600000")
    );
    assert_eq!(
        entry("message.timestamp.before.max.ms").value.as_deref(),
        Some("9223372036854775807")
    );
    assert_eq!(
        entry("message.timestamp.type").value.as_deref(),
        Some("CreateTime")
    );
    assert_eq!(
        entry("message.timestamp.type").source,
        ConfigSource::Default
    );

    // Bad values are refused with INVALID_CONFIG; so are unknown keys.
    for bad in [
        ("message.timestamp.type", "WallClock"),
        ("segment.index.bytes", "3"),
        ("preallocate", "maybe"),
        ("leader.replication.throttled.replicas", "0:x"),
        ("no.such.config", "1"),
    ] {
        let refused = create(&broker, "bad", &[bad]).expect_err("refused");
        assert!(refused.contains("InvalidConfig"), "{bad:?}: {refused}");
    }
    // And through IncrementalAlterConfigs-free AlterConfigs too.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("plain"))
        .set("message.timestamp.type", "LogAppendTime")
        .set("message.format.version", "2.8");
    let results = rt
        .block_on(admin.alter_configs([&alter], &options()))
        .expect("alter");
    assert!(results[0].is_ok(), "{results:?}");
    drop(admin);
    broker.stop();
}

#[test]
fn log_append_time_is_what_a_consumer_sees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create(
        &broker,
        "appended",
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .expect("create");
    let before = now_ms();
    // A producer timestamp from 2023, replaced by the broker's clock.
    send(&broker, "appended", 1_700_000_000_000).expect("produced");
    let after = now_ms();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "lat")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["appended"]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let timestamp = loop {
        assert!(std::time::Instant::now() < deadline, "no record consumed");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            break message.expect("message").timestamp();
        }
    };
    match timestamp {
        Timestamp::LogAppendTime(t) => assert!(
            (before..=after).contains(&t),
            "append time {t} not within [{before}, {after}]"
        ),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
    drop(consumer);

    // The producer learns the stamp from the Produce answer's
    // log_append_time_ms, an idempotent one too (its batches carry a
    // producer id and go through the sequence checks).
    let idempotent: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("idempotent producer");
    let before = now_ms();
    let delivery = broker
        .runtime
        .block_on(
            idempotent.send(
                FutureRecord::to("appended")
                    .key("k")
                    .payload("v")
                    .timestamp(1_700_000_000_000),
                Duration::from_secs(10),
            ),
        )
        .expect("idempotent produce");
    let after = now_ms();
    match delivery.timestamp {
        Timestamp::LogAppendTime(t) => assert!(
            (before..=after).contains(&t),
            "append time {t} not within [{before}, {after}]"
        ),
        other => panic!("idempotent delivery: expected LogAppendTime, got {other:?}"),
    }
    drop(idempotent);
    broker.stop();
}

#[test]
fn timestamps_out_of_range_are_invalid_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create(&broker, "defaults", &[]).expect("create");
    create(
        &broker,
        "recent",
        &[("message.timestamp.before.max.ms", "60000")],
    )
    .expect("create");
    let invalid = |r: Result<i64, KafkaError>| {
        matches!(
            r,
            Err(KafkaError::MessageProduction(
                RDKafkaErrorCode::InvalidTimestamp
            ))
        )
    };
    // Kafka 4.0's defaults: any past, at most an hour ahead.
    assert!(send(&broker, "defaults", 1_000).is_ok());
    assert!(send(&broker, "defaults", now_ms() + 60_000).is_ok());
    let ahead = send(&broker, "defaults", now_ms() + 2 * 3_600_000);
    assert!(invalid(ahead.clone()), "{ahead:?}");
    let old = send(&broker, "recent", now_ms() - 3_600_000);
    assert!(invalid(old.clone()), "{old:?}");
    assert!(send(&broker, "recent", now_ms()).is_ok());
    broker.stop();
}
