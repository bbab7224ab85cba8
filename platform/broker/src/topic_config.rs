//! Topic-level configs (Kafka's names): which keys exist, how their values
//! are checked, and how a topic's overrides turn into a [`LogConfig`].

use std::collections::BTreeMap;

use fjord_log::{CleanupPolicy, LogConfig};

/// Kafka's `ConfigResource.Type` for a topic.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` for a broker.
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// DescribeConfigs `config_source`: set on the topic.
pub(crate) const SOURCE_TOPIC: i8 = 1;
/// DescribeConfigs `config_source`: static broker config.
pub(crate) const SOURCE_STATIC_BROKER: i8 = 4;
/// DescribeConfigs `config_source`: built-in default.
pub(crate) const SOURCE_DEFAULT: i8 = 5;

/// DescribeConfigs `config_type` values.
pub(crate) const TYPE_BOOLEAN: i8 = 1;
pub(crate) const TYPE_STRING: i8 = 2;
pub(crate) const TYPE_INT: i8 = 3;
pub(crate) const TYPE_LONG: i8 = 5;
pub(crate) const TYPE_LIST: i8 = 7;
pub(crate) const TYPE_DOUBLE: i8 = 6;

#[derive(Clone, Copy)]
enum Kind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    Choice(&'static [&'static str]),
    List(&'static [&'static str]),
    /// A number in [0, 1].
    Ratio,
}

/// Every topic config Fjord knows, with its kind.
const KEYS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::List(&["delete", "compact"])),
    (
        "compression.type",
        Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
    ("delete.retention.ms", Kind::Long { min: 0 }),
    ("flush.messages", Kind::Long { min: 1 }),
    ("flush.ms", Kind::Long { min: 0 }),
    ("max.compaction.lag.ms", Kind::Long { min: 1 }),
    ("max.message.bytes", Kind::Int { min: 0 }),
    ("min.compaction.lag.ms", Kind::Long { min: 0 }),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.insync.replicas", Kind::Int { min: 1 }),
    ("retention.bytes", Kind::Long { min: -1 }),
    ("retention.ms", Kind::Long { min: -1 }),
    ("segment.bytes", Kind::Int { min: 14 }),
    ("segment.ms", Kind::Long { min: 1 }),
];

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

    /// Sets one config after validating it.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = validate(name, value)?;
        self.overrides.insert(name.to_string(), value);
        Ok(())
    }

    /// Removes an override (back to the broker default). Unknown names are
    /// an error, as in Kafka.
    pub fn remove(&mut self, name: &str) -> Result<(), String> {
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
        config
    }

    /// Every known config of the topic as `(name, value, source, type)`,
    /// explicit ones with [`SOURCE_TOPIC`], the rest with their default.
    pub(crate) fn describe(&self, defaults: &LogConfig) -> Vec<(String, String, i8, i8)> {
        KEYS.iter()
            .map(|(name, kind)| {
                let config_type = match kind {
                    Kind::Long { .. } => TYPE_LONG,
                    Kind::Int { .. } => TYPE_INT,
                    Kind::Choice(_) => TYPE_STRING,
                    Kind::List(_) => TYPE_LIST,
                    Kind::Ratio => TYPE_DOUBLE,
                };
                match self.get(name) {
                    Some(v) => (name.to_string(), v.to_string(), SOURCE_TOPIC, config_type),
                    None => (
                        name.to_string(),
                        default_value(name, defaults),
                        SOURCE_DEFAULT,
                        config_type,
                    ),
                }
            })
            .collect()
    }
}

fn default_value(name: &str, d: &LogConfig) -> String {
    let opt = |v: Option<i64>| v.unwrap_or(-1).to_string();
    match name {
        "cleanup.policy" => "delete".to_string(),
        "compression.type" => "producer".to_string(),
        "delete.retention.ms" => d.delete_retention_ms.to_string(),
        "min.compaction.lag.ms" => d.min_compaction_lag_ms.to_string(),
        "min.cleanable.dirty.ratio" => d.min_cleanable_dirty_ratio.to_string(),
        "max.compaction.lag.ms" => d.max_compaction_lag_ms.to_string(),
        "flush.messages" => d.flush_messages.unwrap_or(i64::MAX as u64).to_string(),
        "flush.ms" => d.flush_ms.unwrap_or(i64::MAX).to_string(),
        "max.message.bytes" => d.max_message_bytes.to_string(),
        "min.insync.replicas" => "1".to_string(),
        "retention.bytes" => opt(d.retention_bytes.map(|b| b as i64)),
        "retention.ms" => opt(d.retention_ms),
        "segment.bytes" => d.segment_bytes.to_string(),
        "segment.ms" => d.segment_ms.unwrap_or(604_800_000).to_string(),
        _ => String::new(),
    }
}

fn kind_of(name: &str) -> Result<Kind, String> {
    KEYS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| {
            let known: Vec<&str> = KEYS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown topic config {name:?}; Fjord supports {}",
                known.join(", ")
            )
        })
}

/// Checks one `name=value` pair; returns the value normalised.
pub(crate) fn validate(name: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    match kind_of(name)? {
        Kind::Long { min } | Kind::Int { min } => {
            let max = match kind_of(name)? {
                Kind::Int { .. } => i64::from(i32::MAX),
                _ => i64::MAX,
            };
            let v: i64 = value
                .parse()
                .map_err(|_| format!("{name} must be an integer, not {value:?}"))?;
            if v < min || v > max {
                return Err(format!("{name} must be in [{min}, {max}], not {v}"));
            }
            Ok(v.to_string())
        }
        Kind::Ratio => match value.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v.to_string()),
            _ => Err(format!("{name} must be a number in [0, 1], not {value:?}")),
        },
        Kind::Choice(choices) => {
            let v = value.to_ascii_lowercase();
            if choices.contains(&v.as_str()) {
                Ok(v)
            } else {
                Err(format!("{name} must be one of {}", choices.join(", ")))
            }
        }
        Kind::List(choices) => {
            let items: Vec<String> = value
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() || items.iter().any(|i| !choices.contains(&i.as_str())) {
                return Err(format!(
                    "{name} must be a list of {}, not {value:?}",
                    choices.join(", ")
                ));
            }
            Ok(items.join(","))
        }
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
