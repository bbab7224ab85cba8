//! KIP-848 group configs (the GROUP config resource, type 32) on a real
//! server over the raw protocol: described with their sources and
//! synonyms, changed by IncrementalAlterConfigs and AlterConfigs
//! (validate_only honoured, unknown keys and bad values refused by name),
//! authorized on the group, used by the coordinator (the heartbeat
//! interval members are told, the session after which they are fenced)
//! and kept across a restart.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use fjord_controller::Acl;
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request as incremental;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const GROUP: i8 = 32;
const SESSION: &str = "consumer.session.timeout.ms";
const HEARTBEAT: &str = "consumer.heartbeat.interval.ms";
const SET: i8 = 0;
const DELETE: i8 = 1;
const INVALID_CONFIG: i16 = 40;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const UNKNOWN_MEMBER_ID: i16 = 25;
const SOURCE_GROUP: i8 = 8;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Bounds low enough that a test can wait out a group's session.
fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        group_consumer_min_session_timeout_ms: 1_000,
        group_consumer_min_heartbeat_interval_ms: 100,
        ..BrokerConfig::ephemeral(dir)
    }
}

fn describe(broker: &TestBroker, group: &str, synonyms: bool) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(synonyms)
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(GROUP)
                .with_resource_name(text(group)),
        ]);
    match Raw::connect(broker.addr).call(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(request),
    ) {
        ResponseKind::DescribeConfigs(mut r) => r.results.remove(0),
        other => panic!("unexpected {other:?}"),
    }
}

/// The value and source of `key` in `group`'s description.
fn value(broker: &TestBroker, group: &str, key: &str) -> (String, i8) {
    let result = describe(broker, group, false);
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    let entry = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} described"));
    (
        entry.value.as_deref().unwrap_or("").to_string(),
        entry.config_source,
    )
}

/// IncrementalAlterConfigs of group `group`: `(key, op, value)`; the error
/// code and message.
fn alter_incremental(
    broker: &TestBroker,
    group: &str,
    changes: &[(&str, i8, &str)],
    validate_only: bool,
) -> (i16, String) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            incremental::AlterConfigsResource::default()
                .with_resource_type(GROUP)
                .with_resource_name(text(group))
                .with_configs(
                    changes
                        .iter()
                        .map(|(k, op, v)| {
                            incremental::AlterableConfig::default()
                                .with_name(text(k))
                                .with_config_operation(*op)
                                .with_value(Some(text(v)))
                        })
                        .collect(),
                ),
        ]);
    match Raw::connect(broker.addr).call(
        ApiKey::IncrementalAlterConfigs,
        1,
        RequestKind::IncrementalAlterConfigs(request),
    ) {
        ResponseKind::IncrementalAlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0]
                .error_message
                .as_deref()
                .unwrap_or("")
                .to_string(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// AlterConfigs of group `group` (its whole set): the error code and
/// message.
fn alter_all(broker: &TestBroker, group: &str, values: &[(&str, &str)]) -> (i16, String) {
    let request = AlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(text(group))
            .with_configs(
                values
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            ),
    ]);
    match Raw::connect(broker.addr).call(
        ApiKey::AlterConfigs,
        2,
        RequestKind::AlterConfigs(request),
    ) {
        ResponseKind::AlterConfigs(r) => (
            r.responses[0].error_code,
            r.responses[0]
                .error_message
                .as_deref()
                .unwrap_or("")
                .to_string(),
        ),
        other => panic!("unexpected {other:?}"),
    }
}

/// A ConsumerGroupHeartbeat of member `member` at `epoch` (0: joins),
/// subscribed to topic `t`.
fn heartbeat(
    raw: &mut Raw,
    group: &str,
    member: &str,
    epoch: i32,
) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 5000 } else { -1 })
        .with_subscribed_topic_names((epoch == 0).then(|| vec![TopicName(text("t"))]))
        .with_topic_partitions((epoch == 0).then(Vec::new));
    match raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        0,
        RequestKind::ConsumerGroupHeartbeat(request),
    ) {
        ResponseKind::ConsumerGroupHeartbeat(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn group_configs_are_described_altered_checked_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));

    // Unset: the broker's values, Kafka's defaults (DEFAULT_CONFIG), with
    // the broker key as synonym.
    assert_eq!(
        value(&broker, "g", SESSION),
        ("45000".into(), SOURCE_DEFAULT)
    );
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("5000".into(), SOURCE_DEFAULT)
    );
    let described = describe(&broker, "g", true);
    let session = described
        .configs
        .iter()
        .find(|c| c.name.as_str() == SESSION)
        .expect("session described");
    assert_eq!(session.config_type, 3, "INT");
    assert_eq!(
        session
            .synonyms
            .iter()
            .map(|s| (s.name.to_string(), s.source))
            .collect::<Vec<_>>(),
        [(
            "group.consumer.session.timeout.ms".to_string(),
            SOURCE_DEFAULT
        )]
    );

    // validate_only checks and changes nothing.
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, SET, "50000")], true).0,
        0
    );
    assert_eq!(
        value(&broker, "g", SESSION),
        ("45000".into(), SOURCE_DEFAULT)
    );

    // Set: the group's value, GROUP_CONFIG, first of its synonyms.
    let (code, message) = alter_incremental(
        &broker,
        "g",
        &[(SESSION, SET, "50000"), (HEARTBEAT, SET, "7000")],
        false,
    );
    assert_eq!(code, 0, "{message}");
    assert_eq!(value(&broker, "g", SESSION), ("50000".into(), SOURCE_GROUP));
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("7000".into(), SOURCE_GROUP)
    );
    let described = describe(&broker, "g", true);
    let heartbeat_entry = described
        .configs
        .iter()
        .find(|c| c.name.as_str() == HEARTBEAT)
        .expect("heartbeat described");
    assert_eq!(
        heartbeat_entry
            .synonyms
            .iter()
            .map(|s| (s.name.to_string(), s.source))
            .collect::<Vec<_>>(),
        [
            (HEARTBEAT.to_string(), SOURCE_GROUP),
            (
                "group.consumer.heartbeat.interval.ms".to_string(),
                SOURCE_DEFAULT
            )
        ]
    );
    // Another group is untouched.
    assert_eq!(
        value(&broker, "other", SESSION),
        ("45000".into(), SOURCE_DEFAULT)
    );

    // Unknown keys, bad values, values out of the broker's bounds and a
    // heartbeat not below the session: INVALID_CONFIG naming the key, and
    // nothing of the request applied.
    for (key, v, named) in [
        ("session.timeout.ms", "10000", "session.timeout.ms"),
        (
            "group.consumer.session.timeout.ms",
            "10000",
            "group.consumer.session.timeout.ms",
        ),
        (SESSION, "soon", SESSION),
        (SESSION, "999", "group.consumer.min.session.timeout.ms"),
        (SESSION, "60001", "group.consumer.max.session.timeout.ms"),
        (
            HEARTBEAT,
            "15001",
            "group.consumer.max.heartbeat.interval.ms",
        ),
        (SESSION, "6000", "must be below"),
    ] {
        let (code, message) = alter_incremental(
            &broker,
            "g",
            &[(HEARTBEAT, SET, "8000"), (key, SET, v)],
            false,
        );
        assert_eq!(code, INVALID_CONFIG, "{key}={v}: {message}");
        assert!(message.contains(named), "{key}={v}: {message}");
    }
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("7000".into(), SOURCE_GROUP)
    );
    // APPEND is not for these configs.
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, 2, "1")], false).0,
        INVALID_CONFIG
    );
    // AlterConfigs replaces the group's set: the session goes back to
    // the broker's; a bad key refuses the whole set.
    let (code, message) = alter_all(&broker, "g", &[(HEARTBEAT, "6000"), ("nope", "1")]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(message.contains("nope"), "{message}");
    assert_eq!(alter_all(&broker, "g", &[(HEARTBEAT, "6000")]).0, 0);
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("6000".into(), SOURCE_GROUP)
    );
    assert_eq!(
        value(&broker, "g", SESSION),
        ("45000".into(), SOURCE_DEFAULT)
    );
    // DELETE then SET again, for the restart.
    assert_eq!(
        alter_incremental(&broker, "g", &[(HEARTBEAT, DELETE, "")], false).0,
        0
    );
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("5000".into(), SOURCE_DEFAULT)
    );
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, SET, "55000")], false).0,
        0
    );
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    assert_eq!(value(&broker, "g", SESSION), ("55000".into(), SOURCE_GROUP));
    assert_eq!(
        value(&broker, "g", HEARTBEAT),
        ("5000".into(), SOURCE_DEFAULT)
    );
    broker.stop();
}

#[test]
fn a_broker_value_set_in_its_config_is_a_static_synonym() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        group_consumer_session_timeout_ms: 50_000,
        ..config(dir.path())
    });
    assert_eq!(
        value(&broker, "g", SESSION),
        ("50000".into(), SOURCE_STATIC_BROKER)
    );
    let described = describe(&broker, "g", true);
    let session = described
        .configs
        .iter()
        .find(|c| c.name.as_str() == SESSION)
        .expect("session described");
    assert_eq!(
        session
            .synonyms
            .iter()
            .map(|s| (
                s.name.to_string(),
                s.value.as_deref().unwrap_or("").to_string(),
                s.source
            ))
            .collect::<Vec<_>>(),
        [
            (
                "group.consumer.session.timeout.ms".to_string(),
                "50000".to_string(),
                SOURCE_STATIC_BROKER
            ),
            (
                "group.consumer.session.timeout.ms".to_string(),
                "45000".to_string(),
                SOURCE_DEFAULT
            )
        ]
    );
    broker.stop();
}

#[test]
fn members_get_the_group_s_heartbeat_interval_and_are_fenced_after_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);

    // Before: the broker's interval.
    let joined = heartbeat(&mut raw, "short", "", 0);
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    assert_eq!(joined.heartbeat_interval_ms, 5000);
    let member = joined.member_id.clone().expect("member id").to_string();

    let (code, message) = alter_incremental(
        &broker,
        "short",
        &[(SESSION, SET, "1500"), (HEARTBEAT, SET, "300")],
        false,
    );
    assert_eq!(code, 0, "{message}");
    // The next heartbeat tells the member the group's interval.
    let beat = heartbeat(&mut raw, "short", &member, joined.member_epoch);
    assert_eq!(beat.error_code, 0, "{:?}", beat.error_message);
    assert_eq!(beat.heartbeat_interval_ms, 300);

    // A member of a group without configs keeps the broker's 45 s
    // session; this group's member is fenced after its 1.5 s.
    let other = heartbeat(&mut raw, "long", "", 0);
    assert_eq!(other.error_code, 0, "{:?}", other.error_message);
    assert_eq!(other.heartbeat_interval_ms, 5000);
    let silent_since = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let late = heartbeat(&mut raw, "short", &member, beat.member_epoch);
    assert_eq!(
        late.error_code,
        UNKNOWN_MEMBER_ID,
        "fenced after the group's session ({:?} silent)",
        silent_since.elapsed()
    );
    let kept = heartbeat(
        &mut raw,
        "long",
        other.member_id.as_deref().expect("member id"),
        other.member_epoch,
    );
    assert_eq!(kept.error_code, 0, "{:?}", kept.error_message);

    // Deleting the (now empty) group keeps its configs, as Kafka does: a
    // group re-created under the id has them again.
    let deleted = match raw.call(
        ApiKey::DeleteGroups,
        2,
        RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("short"))]),
        ),
    ) {
        ResponseKind::DeleteGroups(r) => r,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(deleted.results[0].error_code, 0, "group deleted");
    assert_eq!(
        value(&broker, "short", HEARTBEAT),
        ("300".into(), SOURCE_GROUP)
    );
    let again = heartbeat(&mut raw, "short", "", 0);
    assert_eq!(again.error_code, 0, "{:?}", again.error_message);
    assert_eq!(again.heartbeat_interval_ms, 300);
    broker.stop();
}

fn acl(name: &str, operation: i8) -> Acl {
    Acl {
        resource_type: 3,
        resource_name: name.into(),
        pattern_type: 3,
        principal: "User:ANONYMOUS".into(),
        host: "*".into(),
        operation,
        permission_type: 3,
    }
}

#[test]
fn group_configs_need_describe_configs_and_alter_configs_on_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        authorizer_class_name: Some(
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        ),
        ..config(dir.path())
    });
    let described = describe(&broker, "g", false);
    assert_eq!(described.error_code, GROUP_AUTHORIZATION_FAILED);
    assert!(described.configs.is_empty());
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, SET, "50000")], false).0,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        alter_all(&broker, "g", &[(SESSION, "50000")]).0,
        GROUP_AUTHORIZATION_FAILED
    );

    // DESCRIBE_CONFIGS (10) lets it describe, not alter.
    broker
        .runtime
        .block_on(broker.local().create_acls(&[acl("g", 10)]))
        .expect("ACLs created");
    assert_eq!(
        value(&broker, "g", SESSION),
        ("45000".into(), SOURCE_DEFAULT)
    );
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, SET, "50000")], true).0,
        GROUP_AUTHORIZATION_FAILED
    );
    assert_eq!(
        describe(&broker, "h", false).error_code,
        GROUP_AUTHORIZATION_FAILED
    );

    // ALTER_CONFIGS (11) lets it alter.
    broker
        .runtime
        .block_on(broker.local().create_acls(&[acl("g", 11)]))
        .expect("ACLs created");
    assert_eq!(
        alter_incremental(&broker, "g", &[(SESSION, SET, "50000")], false).0,
        0
    );
    assert_eq!(value(&broker, "g", SESSION), ("50000".into(), SOURCE_GROUP));
    broker.stop();
}
