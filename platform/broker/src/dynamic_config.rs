//! Dynamic broker configs (Kafka's IncrementalAlterConfigs / AlterConfigs
//! on BROKER resources): which broker settings can change while the
//! broker runs, and what they mean.
//!
//! Those here are the broker-wide defaults of topic configs (Kafka's
//! synonyms: `log.retention.ms` is the default of `retention.ms`, …): a
//! change applies at once to every topic that does not override the key,
//! on every broker once it has applied the change. They are set for the
//! whole cluster (resource name `""`, DYNAMIC_DEFAULT_BROKER_CONFIG) or for
//! one broker (its id, DYNAMIC_BROKER_CONFIG, which wins). Every other
//! broker setting is read-only: altering it is INVALID_CONFIG naming the
//! key. Where they are kept is the metadata frontend's (a file on a single
//! node, the quorum's metadata in a cluster); both survive a restart.

use std::collections::BTreeMap;

use fjord_log::LogConfig;

use crate::topic_config::{SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT_BROKER, TopicConfigs};

/// Every dynamic broker config: its broker name and the topic config it
/// is the default of (Kafka's synonyms).
pub(crate) const DYNAMIC_KEYS: &[(&str, &str)] = &[
    ("log.cleaner.delete.retention.ms", "delete.retention.ms"),
    ("log.cleaner.max.compaction.lag.ms", "max.compaction.lag.ms"),
    (
        "log.cleaner.min.cleanable.ratio",
        "min.cleanable.dirty.ratio",
    ),
    ("log.cleaner.min.compaction.lag.ms", "min.compaction.lag.ms"),
    ("log.cleanup.policy", "cleanup.policy"),
    ("log.flush.interval.messages", "flush.messages"),
    ("log.flush.interval.ms", "flush.ms"),
    ("log.index.interval.bytes", "index.interval.bytes"),
    ("log.index.size.max.bytes", "segment.index.bytes"),
    (
        "log.message.timestamp.after.max.ms",
        "message.timestamp.after.max.ms",
    ),
    (
        "log.message.timestamp.before.max.ms",
        "message.timestamp.before.max.ms",
    ),
    ("log.message.timestamp.type", "message.timestamp.type"),
    ("log.retention.bytes", "retention.bytes"),
    ("log.retention.ms", "retention.ms"),
    ("log.roll.jitter.ms", "segment.jitter.ms"),
    ("log.roll.ms", "segment.ms"),
    ("log.segment.bytes", "segment.bytes"),
    ("message.max.bytes", "max.message.bytes"),
];

/// Dynamic broker configs by resource name (`""`: the cluster default;
/// a broker id), each key's value (broker names).
pub(crate) type BrokerConfigTable = BTreeMap<String, BTreeMap<String, String>>;

/// The topic config `broker_key` is the default of, if it is dynamic.
pub(crate) fn topic_key(broker_key: &str) -> Option<&'static str> {
    DYNAMIC_KEYS
        .iter()
        .find(|(b, _)| *b == broker_key)
        .map(|(_, t)| *t)
}

/// Checks a dynamic broker config's value; returns it normalised. A key
/// that cannot change live is refused, naming it.
pub(crate) fn check(key: &str, value: &str) -> Result<String, String> {
    let topic = topic_key(key).ok_or_else(|| {
        format!("broker config {key:?} cannot be changed while the broker runs (read-only or unknown); dynamic ones: {}",
            DYNAMIC_KEYS.iter().map(|(b, _)| *b).collect::<Vec<_>>().join(", "))
    })?;
    crate::topic_config::validate(topic, value).map_err(|e| e.replace(topic, key))
}

/// Checks a resource name: `""` or a broker id.
pub(crate) fn check_resource(name: &str) -> Result<(), String> {
    if name.is_empty() || name.parse::<u32>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "a broker resource is \"\" (the cluster default) or a broker id, not {name:?}"
        ))
    }
}

/// The dynamic configs that apply to one broker: the cluster default and
/// its own, as topic configs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DynamicDefaults {
    /// The table they were read from (what is stored).
    pub table: BrokerConfigTable,
    cluster: TopicConfigs,
    broker: TopicConfigs,
}

impl DynamicDefaults {
    /// The configs of broker `node_id` in `table`. Values that no longer
    /// check (written by a newer version) are skipped with a warning.
    pub(crate) fn new(table: BrokerConfigTable, node_id: i32) -> DynamicDefaults {
        let as_topic = |resource: &str| {
            let mut configs = TopicConfigs::default();
            for (key, value) in table.get(resource).into_iter().flatten() {
                let applied = topic_key(key)
                    .ok_or_else(|| format!("{key} is not a dynamic broker config"))
                    .and_then(|topic| configs.set(topic, value));
                if let Err(e) = applied {
                    tracing::warn!(resource, key, error = %e, "dynamic broker config ignored");
                }
            }
            configs
        };
        DynamicDefaults {
            cluster: as_topic(""),
            broker: as_topic(&node_id.to_string()),
            table,
        }
    }

    /// The broker's defaults of topics' log settings: `base` (from its
    /// config file), then the cluster default, then its own.
    pub(crate) fn apply(&self, base: &LogConfig) -> LogConfig {
        self.broker.log_config(&self.cluster.log_config(base))
    }

    /// Where the default of topic config `topic_key` comes from, when a
    /// dynamic config sets it: its value and source.
    pub(crate) fn source(&self, topic_key: &str) -> Option<(&str, i8)> {
        if let Some(v) = self.broker.get(topic_key) {
            return Some((v, SOURCE_DYNAMIC_BROKER));
        }
        self.cluster
            .get(topic_key)
            .map(|v| (v, SOURCE_DYNAMIC_DEFAULT_BROKER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_s_own_config_wins_over_the_cluster_default() {
        let table: BrokerConfigTable = [
            (
                String::new(),
                [
                    ("log.retention.ms".to_string(), "60000".to_string()),
                    ("log.segment.bytes".to_string(), "1048576".to_string()),
                ]
                .into(),
            ),
            (
                "2".to_string(),
                [("log.retention.ms".to_string(), "1000".to_string())].into(),
            ),
        ]
        .into();
        let one = DynamicDefaults::new(table.clone(), 1).apply(&LogConfig::default());
        assert_eq!(one.retention_ms, Some(60_000));
        assert_eq!(one.segment_bytes, 1 << 20);
        let two = DynamicDefaults::new(table, 2);
        assert_eq!(two.apply(&LogConfig::default()).retention_ms, Some(1000));
        assert_eq!(
            two.source("retention.ms"),
            Some(("1000", SOURCE_DYNAMIC_BROKER))
        );
        assert_eq!(
            two.source("segment.bytes"),
            Some(("1048576", SOURCE_DYNAMIC_DEFAULT_BROKER))
        );
    }

    #[test]
    fn read_only_and_bad_values_are_refused_by_name() {
        assert!(check("node.id", "3").unwrap_err().contains("node.id"));
        assert!(check("log.dir", "/x").is_err());
        assert!(
            check("log.retention.ms", "soon")
                .unwrap_err()
                .contains("log.retention.ms")
        );
        assert_eq!(
            check("log.message.timestamp.type", "logappendtime").as_deref(),
            Ok("LogAppendTime")
        );
        assert!(check_resource("").is_ok() && check_resource("7").is_ok());
        assert!(check_resource("broker-1").is_err());
    }
}
