//! Topic-level configs (Kafka's names): which keys exist and how their
//! values are checked (`keys`), and how a topic's overrides turn into a
//! [`LogConfig`] and a DescribeConfigs answer.
//!
//! Of Kafka 4.x's topic configs, these are stored and described but have
//! no effect here (docs/storage.md says so too): `compression.*.level`,
//! the replication throttles, and
//! the tiered-storage ones (`local.retention.*`, `remote.*`) kept for
//! later. `unclean.leader.election.enable` is read by the controller
//! quorum of a cluster.

mod keys;

use std::collections::BTreeMap;

use fjord_log::{CleanupPolicy, LogConfig, TimestampType};

use crate::dynamic_config::DynamicDefaults;

pub(crate) use keys::validate;

/// The value a topic without an override of `name` has under `defaults`,
/// and the DescribeConfigs type of `name` (STRING for an unknown name).
pub(crate) fn default_of(name: &str, defaults: &LogConfig) -> (String, i8) {
    let kind = kind_of(name).map_or(TYPE_STRING, |k| k.config_type());
    (default_value(name, defaults), kind)
}
use keys::{default_value, is_removed, kind_of};

/// Kafka's `ConfigResource.Type` for a topic.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` for a broker.
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// Kafka's `ConfigResource.Type` for a broker's loggers.
pub(crate) const RESOURCE_BROKER_LOGGER: i8 = 8;

/// DescribeConfigs `config_source`: set on the topic.
pub(crate) const SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs `config_source`: a broker's own dynamic config.
pub(crate) const SOURCE_DYNAMIC_BROKER: i8 = 2;
/// DescribeConfigs `config_source`: the cluster-wide dynamic default.
pub(crate) const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
/// DescribeConfigs `config_source`: static broker config.
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_source`: a broker logger's level.
pub(crate) const SOURCE_DYNAMIC_BROKER_LOGGER: i8 = 6;
/// DescribeConfigs `config_source`: built-in default.
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// DescribeConfigs `config_type` values.
pub(crate) const TYPE_BOOLEAN: i8 = 1;
pub(crate) const TYPE_STRING: i8 = 2;
pub(crate) const TYPE_INT: i8 = 3;
pub(crate) const TYPE_LONG: i8 = 5;
pub(crate) const TYPE_LIST: i8 = 7;
pub(crate) const TYPE_DOUBLE: i8 = 6;

/// The explicitly set configs of one topic (its overrides of the broker
/// defaults), keyed by Kafka name. Every value in it has been validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfigs {
    overrides: BTreeMap<String, String>,
}

impl TopicConfigs {
    /// Builds the set from `(name, value)` pairs, rejecting unknown names
    /// and bad values with a message for the client.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut configs = TopicConfigs::default();
        for (name, value) in pairs {
            configs.set(name, value)?;
        }
        Ok(configs)
    }

    /// Sets one config after validating it. A config Kafka 4.0 removed is
    /// accepted and ignored, as there.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        if is_removed(name) {
            return Ok(());
        }
        let value = validate(name, value)?;
        self.overrides.insert(name.to_string(), value);
        Ok(())
    }

    /// Removes an override (back to the broker default). Unknown names are
    /// an error, as in Kafka.
    pub fn remove(&mut self, name: &str) -> Result<(), String> {
        if is_removed(name) {
            return Ok(());
        }
        kind_of(name)?;
        self.overrides.remove(name);
        Ok(())
    }

    /// The explicit value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.overrides.get(name).map(String::as_str)
    }

    /// The overrides, by name.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// `min.insync.replicas` (default 1).
    pub fn min_insync_replicas(&self) -> i64 {
        self.long("min.insync.replicas").unwrap_or(1)
    }

    fn long(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.parse::<i64>().ok())
    }

    /// The log settings of a topic with these overrides.
    pub fn log_config(&self, defaults: &LogConfig) -> LogConfig {
        let mut config = defaults.clone();
        if let Some(v) = self.long("retention.ms") {
            config.retention_ms = (v >= 0).then_some(v);
        }
        if let Some(v) = self.long("retention.bytes") {
            config.retention_bytes = (v >= 0).then_some(v as u64);
        }
        if let Some(v) = self.long("segment.bytes") {
            config.segment_bytes = v as u64;
        }
        if let Some(v) = self.long("segment.ms") {
            config.segment_ms = Some(v);
        }
        if let Some(v) = self.long("segment.jitter.ms") {
            config.segment_jitter_ms = v;
        }
        if let Some(v) = self.long("segment.index.bytes") {
            config.segment_index_bytes = v as usize;
        }
        if let Some(v) = self.long("index.interval.bytes") {
            config.index_interval_bytes = v as usize;
        }
        if let Some(v) = self.get("message.timestamp.type") {
            config.timestamp_type = if v == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            };
        }
        if let Some(v) = self.long("message.timestamp.before.max.ms") {
            config.timestamp_before_max_ms = v;
        }
        if let Some(v) = self.long("message.timestamp.after.max.ms") {
            config.timestamp_after_max_ms = v;
        }
        if let Some(v) = self.long("flush.messages") {
            config.flush_messages = Some(v as u64);
        }
        if let Some(v) = self.long("flush.ms") {
            config.flush_ms = Some(v);
        }
        if let Some(v) = self.long("max.message.bytes") {
            config.max_message_bytes = v as usize;
        }
        if let Some(policy) = self.get("cleanup.policy") {
            let has = |p: &str| policy.split(',').any(|i| i.trim() == p);
            config.cleanup_policy = match (has("compact"), has("delete")) {
                (true, true) => CleanupPolicy::CompactDelete,
                (true, false) => CleanupPolicy::Compact,
                _ => CleanupPolicy::Delete,
            };
        }
        if let Some(v) = self
            .get("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse::<f64>().ok())
        {
            config.min_cleanable_dirty_ratio = v;
        }
        if let Some(v) = self.long("delete.retention.ms") {
            config.delete_retention_ms = v;
        }
        if let Some(v) = self.long("min.compaction.lag.ms") {
            config.min_compaction_lag_ms = v;
        }
        if let Some(v) = self.long("max.compaction.lag.ms") {
            config.max_compaction_lag_ms = v;
        }
        if let Some(v) = self.long("file.delete.delay.ms") {
            config.file_delete_delay_ms = v;
        }
        if let Some(v) = self.get("preallocate") {
            config.preallocate = v == "true";
        }
        config
    }

    /// Every known config of the topic as `(name, value, source, type)`:
    /// explicit ones with [`SOURCE_TOPIC`]; the rest with the broker's
    /// default: a dynamic broker config's with its source, else one whose
    /// source is [`SOURCE_STATIC_BROKER`] where the broker's
    /// config changed it from the built-in one and [`SOURCE_DEFAULT`]
    /// otherwise.
    pub(crate) fn describe(
        &self,
        defaults: &LogConfig,
        dynamic: &DynamicDefaults,
    ) -> Vec<(String, String, i8, i8)> {
        let builtin = LogConfig::default();
        keys::KEYS
            .iter()
            .map(|(name, kind)| {
                let config_type = kind.config_type();
                match self.get(name) {
                    Some(v) => (name.to_string(), v.to_string(), SOURCE_TOPIC, config_type),
                    None if dynamic.source(name).is_some() => {
                        let (value, source) = dynamic.source(name).unwrap_or_default();
                        (name.to_string(), value.to_string(), source, config_type)
                    }
                    None => {
                        let value = default_value(name, defaults);
                        let source = if value == default_value(name, &builtin) {
                            SOURCE_DEFAULT
                        } else {
                            SOURCE_STATIC_BROKER
                        };
                        (name.to_string(), value, source, config_type)
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_become_log_config() {
        let configs = TopicConfigs::from_pairs([
            ("retention.ms", "-1"),
            ("segment.bytes", "1048576"),
            ("max.message.bytes", "2000"),
        ])
        .unwrap_or_default();
        let log = configs.log_config(&LogConfig::default());
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.segment_bytes, 1 << 20);
        assert_eq!(log.max_message_bytes, 2000);
    }

    #[test]
    fn bad_names_and_values_are_rejected() {
        assert!(TopicConfigs::from_pairs([("no.such", "1")]).is_err());
        assert!(TopicConfigs::from_pairs([("segment.bytes", "abc")]).is_err());
        assert!(TopicConfigs::from_pairs([("segment.bytes", "99999999999")]).is_err());
        assert!(TopicConfigs::from_pairs([("cleanup.policy", "shred")]).is_err());
        assert!(TopicConfigs::from_pairs([("min.cleanable.dirty.ratio", "1.5")]).is_err());
        let compacted = TopicConfigs::from_pairs([
            ("cleanup.policy", "compact,delete"),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("delete.retention.ms", "5"),
        ])
        .unwrap()
        .log_config(&LogConfig::default());
        assert_eq!(compacted.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(compacted.min_cleanable_dirty_ratio, 0.1);
        assert_eq!(compacted.delete_retention_ms, 5);
        assert!(TopicConfigs::from_pairs([("cleanup.policy", "compact, delete")]).is_ok());
    }
}
