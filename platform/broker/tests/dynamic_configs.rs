//! Dynamic broker configs on a real server: AlterConfigs through librdkafka
//! on this broker's resource, IncrementalAlterConfigs on the cluster
//! default (`""`, which librdkafka cannot name) over the wire; the change
//! applies live to topics without an override, shows in DescribeConfigs
//! with its source, and survives a restart; read-only keys are refused.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as AlterResource, AlterableConfig as AlterConfig_,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, IncrementalAlterConfigsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, Timestamp};
use rdkafka::producer::{FutureProducer, FutureRecord};

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

/// IncrementalAlterConfigs of one BROKER resource: `(key, op, value)`;
/// the error code and message.
fn incremental(
    broker: &TestBroker,
    resource: &str,
    changes: &[(&str, i8, &str)],
) -> (i16, Option<String>) {
    let mut raw = Raw::connect(broker.addr);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(resource.to_string()))
            .with_configs(
                changes
                    .iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(*op)
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            ),
    ]);
    match raw.call(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(request),
    ) {
        ResponseKind::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0].error_message.as_ref().map(|m| m.to_string()),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// The value and source of `name` in the description of `resource`.
fn described(
    broker: &TestBroker,
    resource: ResourceSpecifier<'_>,
    name: &str,
) -> Option<(String, ConfigSource)> {
    let admin = admin(broker);
    let found = broker
        .runtime
        .block_on(admin.describe_configs([&resource], &options()))
        .expect("describe");
    let resource = found[0].as_ref().expect("resource");
    resource
        .get(name)
        .map(|e| (e.value.clone().unwrap_or_default(), source(&e.source)))
}

/// `ConfigSource` is neither `Copy` nor `Clone`.
fn source(s: &ConfigSource) -> ConfigSource {
    match s {
        ConfigSource::DynamicTopic => ConfigSource::DynamicTopic,
        ConfigSource::DynamicBroker => ConfigSource::DynamicBroker,
        ConfigSource::DynamicDefaultBroker => ConfigSource::DynamicDefaultBroker,
        ConfigSource::StaticBroker => ConfigSource::StaticBroker,
        ConfigSource::Default => ConfigSource::Default,
        _ => ConfigSource::Unknown,
    }
}

/// Produces one record to `topic` and consumes it back: its timestamp.
fn round_trip(broker: &TestBroker, topic: &str, group: &str) -> Timestamp {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    broker
        .runtime
        .block_on(
            producer.send(
                FutureRecord::to(topic)
                    .key("k")
                    .payload("v")
                    .timestamp(1_700_000_000_000),
                Duration::from_secs(10),
            ),
        )
        .expect("produced");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    let mut assignment = rdkafka::TopicPartitionList::new();
    let end = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .1;
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(end - 1))
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "nothing consumed from {topic}");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            return message.expect("message").timestamp();
        }
    }
}

#[test]
fn dynamic_broker_configs_apply_live_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let admin_client = admin(&broker);
    let topic = NewTopic::new("plain", 1, TopicReplication::Fixed(1));
    let created = broker
        .runtime
        .block_on(admin_client.create_topics([&topic], &options()))
        .expect("create");
    assert!(created[0].is_ok(), "{created:?}");
    assert!(matches!(
        round_trip(&broker, "plain", "g1"),
        Timestamp::CreateTime(1_700_000_000_000)
    ));

    // The cluster default: every topic without an override stamps
    // LogAppendTime from now on, and keeps a day.
    let (code, message) = incremental(
        &broker,
        "",
        &[
            ("log.message.timestamp.type", 0, "LogAppendTime"),
            ("log.retention.ms", 0, "86400000"),
        ],
    );
    assert_eq!(code, 0, "{message:?}");
    assert!(matches!(
        round_trip(&broker, "plain", "g2"),
        Timestamp::LogAppendTime(_)
    ));
    assert_eq!(
        described(&broker, ResourceSpecifier::Topic("plain"), "retention.ms"),
        Some(("86400000".into(), ConfigSource::DynamicDefaultBroker))
    );

    // This broker's own value wins over the cluster default (AlterConfigs
    // through librdkafka replaces its set).
    let alter = AlterConfig::new(ResourceSpecifier::Broker(0)).set("log.retention.ms", "3600000");
    let results = broker
        .runtime
        .block_on(admin_client.alter_configs([&alter], &options()))
        .expect("alter");
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(
        described(&broker, ResourceSpecifier::Topic("plain"), "retention.ms"),
        Some(("3600000".into(), ConfigSource::DynamicBroker))
    );
    assert_eq!(
        described(&broker, ResourceSpecifier::Broker(0), "log.retention.ms"),
        Some(("3600000".into(), ConfigSource::DynamicBroker))
    );
    assert_eq!(
        described(
            &broker,
            ResourceSpecifier::Broker(0),
            "log.message.timestamp.type"
        ),
        Some(("LogAppendTime".into(), ConfigSource::DynamicDefaultBroker))
    );

    // Read-only and unknown keys, and bad values, are INVALID_CONFIG
    // naming the key; nothing of the request is applied.
    for (key, value) in [
        ("node.id", "7"),
        ("log.dir", "/tmp/elsewhere"),
        ("no.such.thing", "1"),
        ("log.retention.ms", "soon"),
    ] {
        let (code, message) = incremental(&broker, "", &[(key, 0, value)]);
        assert_eq!(code, 40, "{key}: INVALID_CONFIG");
        assert!(message.unwrap_or_default().contains(key), "{key}");
    }
    // AlterConfigs too (over the wire: rust-rdkafka 0.39 drops the
    // per-resource errors of an AlterConfigs answer).
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str("0"))
            .with_configs(vec![
                AlterConfig_::default()
                    .with_name(StrBytes::from_static_str("num.partitions"))
                    .with_value(Some(StrBytes::from_static_str("9"))),
            ]),
    ]);
    match Raw::connect(broker.addr).call(
        ApiKey::AlterConfigs,
        2,
        RequestKind::AlterConfigs(request),
    ) {
        ResponseKind::AlterConfigs(r) => {
            assert_eq!(r.responses[0].error_code, 40);
            let message = r.responses[0].error_message.as_deref().unwrap_or("");
            assert!(message.contains("num.partitions"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The refused replacement left this broker's set as it was.
    assert_eq!(
        described(&broker, ResourceSpecifier::Broker(0), "log.retention.ms"),
        Some(("3600000".into(), ConfigSource::DynamicBroker))
    );
    drop(admin_client);
    broker.stop();

    // After a restart the dynamic configs are still in force.
    let broker = TestBroker::start(dir.path());
    assert_eq!(
        described(&broker, ResourceSpecifier::Topic("plain"), "retention.ms"),
        Some(("3600000".into(), ConfigSource::DynamicBroker))
    );
    assert!(matches!(
        round_trip(&broker, "plain", "g3"),
        Timestamp::LogAppendTime(_)
    ));
    // DELETE brings the static default back.
    let (code, _) = incremental(&broker, "", &[("log.message.timestamp.type", 1, "")]);
    assert_eq!(code, 0);
    assert!(matches!(
        round_trip(&broker, "plain", "g4"),
        Timestamp::CreateTime(1_700_000_000_000)
    ));
    broker.stop();
}

/// The broker's own dynamic settings (connection quotas, the cleaner) are
/// checked as Kafka checks them: each bad value, and a change whose
/// result is unusable, is INVALID_CONFIG naming the key, and nothing of
/// the request is applied; a good one on the cluster default shows as
/// such, and DELETE brings the default back. A read-only key's refusal
/// lists them among the dynamic ones.
#[test]
fn broker_settings_are_checked_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    for (key, value) in [
        ("log.cleaner.threads", "0"),
        // More than double the current 1 in one step.
        ("log.cleaner.threads", "3"),
        ("log.cleaner.threads", "many"),
        ("log.cleaner.io.max.bytes.per.second", "-1"),
        ("log.cleaner.dedupe.buffer.size", "1000"),
        ("log.cleaner.backoff.ms", "-5"),
        ("max.connections", "0"),
        ("max.connection.creation.rate", "0"),
        // No client could connect.
        ("max.connections.per.ip", "0"),
        ("max.connections.per.ip.overrides", "127.0.0.1"),
    ] {
        let (code, message) = incremental(
            &broker,
            "",
            &[("log.cleaner.backoff.ms", 0, "100"), (key, 0, value)],
        );
        assert_eq!(code, 40, "{key}={value}: INVALID_CONFIG");
        let message = message.unwrap_or_default();
        assert!(message.contains(key), "{key}={value}: {message}");
    }
    assert_eq!(
        described(
            &broker,
            ResourceSpecifier::Broker(0),
            "log.cleaner.backoff.ms"
        ),
        Some(("15000".into(), ConfigSource::Default)),
        "nothing of a refused request is applied"
    );
    let (_, message) = incremental(&broker, "", &[("node.id", 0, "3")]);
    let message = message.unwrap_or_default();
    for key in ["log.cleaner.threads", "max.connections.per.ip.overrides"] {
        assert!(message.contains(key), "{message}");
    }

    let (code, message) = incremental(
        &broker,
        "",
        &[
            ("log.cleaner.threads", 0, "2"),
            ("max.connections", 0, "1000"),
            (
                "max.connections.per.ip.overrides",
                0,
                "127.0.0.2:5, [::1]:6",
            ),
        ],
    );
    assert_eq!(code, 0, "{message:?}");
    for (key, value) in [
        ("log.cleaner.threads", "2"),
        ("max.connections", "1000"),
        ("max.connections.per.ip.overrides", "127.0.0.2:5,[::1]:6"),
    ] {
        assert_eq!(
            described(&broker, ResourceSpecifier::Broker(0), key),
            Some((value.into(), ConfigSource::DynamicDefaultBroker)),
            "{key}"
        );
    }
    let (code, _) = incremental(
        &broker,
        "",
        &[("log.cleaner.threads", 1, ""), ("max.connections", 1, "")],
    );
    assert_eq!(code, 0);
    assert_eq!(
        described(&broker, ResourceSpecifier::Broker(0), "log.cleaner.threads"),
        Some(("1".into(), ConfigSource::Default))
    );
    assert_eq!(
        described(&broker, ResourceSpecifier::Broker(0), "max.connections"),
        Some(("2048".into(), ConfigSource::Default))
    );
    broker.stop();
}
