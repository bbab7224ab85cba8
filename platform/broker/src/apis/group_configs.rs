//! The GROUP resource (type 32, KIP-848) of DescribeConfigs, AlterConfigs
//! and IncrementalAlterConfigs: a group's `consumer.session.timeout.ms`
//! and `consumer.heartbeat.interval.ms`, translated between the wire and
//! the coordinator (values) and the metadata frontend (changes). Checking
//! and storing are theirs (`crate::group::configs`, `crate::metadata`).

use kafka_protocol::messages::describe_configs_response::DescribeConfigsSynonym;
use kafka_protocol::protocol::StrBytes;

use crate::broker_state::BrokerState;
use crate::group::configs::{
    GroupConfigChanges, HEARTBEAT_INTERVAL, KAFKA_DEFAULT_HEARTBEAT_INTERVAL_MS,
    KAFKA_DEFAULT_SESSION_TIMEOUT_MS, SESSION_TIMEOUT,
};
use crate::topic_config::{SOURCE_DEFAULT, SOURCE_STATIC_BROKER, TYPE_INT};

/// ConfigResource type GROUP.
pub(crate) const RESOURCE_GROUP: i8 = 32;
/// ConfigSource GROUP_CONFIG: the group's own value.
pub(crate) const SOURCE_GROUP: i8 = 8;

/// `(group key, broker key, broker value, Kafka's default)` of each group
/// config, in name order.
fn keys(state: &BrokerState) -> [(&'static str, &'static str, i32, i32); 2] {
    let c = state.config();
    [
        (
            HEARTBEAT_INTERVAL,
            "group.consumer.heartbeat.interval.ms",
            c.group_consumer_heartbeat_interval_ms,
            KAFKA_DEFAULT_HEARTBEAT_INTERVAL_MS,
        ),
        (
            SESSION_TIMEOUT,
            "group.consumer.session.timeout.ms",
            c.group_consumer_session_timeout_ms,
            KAFKA_DEFAULT_SESSION_TIMEOUT_MS,
        ),
    ]
}

/// Where the broker's value of a group config comes from.
fn broker_source(value: i32, default: i32) -> i8 {
    if value == default {
        SOURCE_DEFAULT
    } else {
        SOURCE_STATIC_BROKER
    }
}

/// `(name, value, source, type, read_only)` of each group config of
/// `group`: its own value (GROUP_CONFIG) or the broker's.
pub(super) fn entries(state: &BrokerState, group: &str) -> Vec<(String, String, i8, i8, bool)> {
    let own = state.groups().group_configs(group);
    keys(state)
        .into_iter()
        .map(|(key, _, broker, default)| match own.get(key) {
            Some(v) => (key.to_string(), v.clone(), SOURCE_GROUP, TYPE_INT, false),
            None => (
                key.to_string(),
                broker.to_string(),
                broker_source(broker, default),
                TYPE_INT,
                false,
            ),
        })
        .collect()
}

/// The synonyms of group config `key`, as Kafka lists them: the group's
/// value, the broker's (when its config sets one) and the default.
pub(super) fn synonyms(state: &BrokerState, group: &str, key: &str) -> Vec<DescribeConfigsSynonym> {
    let own = state.groups().group_configs(group);
    let synonym = |name: &str, value: String, source: i8| {
        DescribeConfigsSynonym::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_value(Some(StrBytes::from_string(value)))
            .with_source(source)
    };
    let Some((_, broker_key, broker, default)) = keys(state).into_iter().find(|k| k.0 == key)
    else {
        return Vec::new();
    };
    let mut list = Vec::new();
    if let Some(v) = own.get(key) {
        list.push(synonym(key, v.clone(), SOURCE_GROUP));
    }
    if broker != default {
        list.push(synonym(
            broker_key,
            broker.to_string(),
            SOURCE_STATIC_BROKER,
        ));
    }
    list.push(synonym(broker_key, default.to_string(), SOURCE_DEFAULT));
    list
}

/// The changes of an IncrementalAlterConfigs (`replace` false) or an
/// AlterConfigs (every item a SET, `replace` true): SET and DELETE only
/// (the group configs are not lists).
pub(super) fn changes<'a>(
    items: impl Iterator<Item = (&'a str, i8, Option<&'a str>)>,
) -> Result<GroupConfigChanges, String> {
    let mut changes = GroupConfigChanges::new();
    for (key, op, value) in items {
        let change = match op {
            super::configs::OP_SET => Some(value.unwrap_or("").to_string()),
            super::configs::OP_DELETE => None,
            op => {
                return Err(format!(
                    "operation {op} is not valid for group config {key}"
                ));
            }
        };
        changes.insert(key.to_string(), change);
    }
    Ok(changes)
}
