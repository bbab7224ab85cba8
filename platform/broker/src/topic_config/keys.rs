//! The table of topic configs: every key Kafka 4.x lists for a topic
//! (`kafka-configs --describe --all`), its type, how a value is checked,
//! and its built-in default; plus the keys Kafka 4.0 removed, which are
//! accepted and ignored as Kafka 4.0 does so that older tools still work.

use fjord_log::{LogConfig, TimestampType};

use super::{TYPE_BOOLEAN, TYPE_DOUBLE, TYPE_INT, TYPE_LIST, TYPE_LONG, TYPE_STRING};

#[derive(Clone, Copy)]
pub(super) enum Kind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// One of these, matched without case and stored as spelled here.
    Choice(&'static [&'static str]),
    /// A comma-separated list of these.
    List(&'static [&'static str]),
    /// A number in [0, 1].
    Ratio,
    /// Free text (Kafka's lists of `partition:broker` pairs).
    Text,
}

impl Kind {
    /// The DescribeConfigs `config_type`.
    pub(super) fn config_type(self) -> i8 {
        match self {
            Kind::Long { .. } => TYPE_LONG,
            Kind::Int { .. } => TYPE_INT,
            Kind::Bool => TYPE_BOOLEAN,
            Kind::Choice(_) => TYPE_STRING,
            Kind::List(_) | Kind::Text => TYPE_LIST,
            Kind::Ratio => TYPE_DOUBLE,
        }
    }
}

const I32_MAX: i64 = i32::MAX as i64;

/// Every topic config Fjord accepts, with its kind (Kafka's names, types
/// and lower bounds).
pub(super) const KEYS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::List(&["delete", "compact"])),
    ("compression.gzip.level", Kind::Int { min: -1, max: 9 }),
    ("compression.lz4.level", Kind::Int { min: 1, max: 17 }),
    (
        "compression.type",
        Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    ),
    (
        "compression.zstd.level",
        Kind::Int {
            min: -131_072,
            max: 22,
        },
    ),
    ("delete.retention.ms", Kind::Long { min: 0 }),
    ("file.delete.delay.ms", Kind::Long { min: 0 }),
    ("flush.messages", Kind::Long { min: 1 }),
    ("flush.ms", Kind::Long { min: 0 }),
    ("follower.replication.throttled.replicas", Kind::Text),
    (
        "index.interval.bytes",
        Kind::Int {
            min: 0,
            max: I32_MAX,
        },
    ),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("local.retention.bytes", Kind::Long { min: -2 }),
    ("local.retention.ms", Kind::Long { min: -2 }),
    ("max.compaction.lag.ms", Kind::Long { min: 1 }),
    (
        "max.message.bytes",
        Kind::Int {
            min: 0,
            max: I32_MAX,
        },
    ),
    ("message.timestamp.after.max.ms", Kind::Long { min: 0 }),
    ("message.timestamp.before.max.ms", Kind::Long { min: 0 }),
    (
        "message.timestamp.type",
        Kind::Choice(&["CreateTime", "LogAppendTime"]),
    ),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", Kind::Long { min: 0 }),
    (
        "min.insync.replicas",
        Kind::Int {
            min: 1,
            max: I32_MAX,
        },
    ),
    ("preallocate", Kind::Bool),
    ("remote.log.copy.disable", Kind::Bool),
    ("remote.log.delete.on.disable", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long { min: -1 }),
    ("retention.ms", Kind::Long { min: -1 }),
    (
        "segment.bytes",
        Kind::Int {
            min: 14,
            max: I32_MAX,
        },
    ),
    (
        "segment.index.bytes",
        Kind::Int {
            min: 4,
            max: I32_MAX,
        },
    ),
    ("segment.jitter.ms", Kind::Long { min: 0 }),
    ("segment.ms", Kind::Long { min: 1 }),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// Topic configs Kafka 4.0 removed (KIP-724, KIP-937) but still accepts
/// and ignores: a tool that sets them keeps working; they are neither
/// stored nor described.
pub(super) const REMOVED: &[&str] = &[
    "message.downconversion.enable",
    "message.format.version",
    "message.timestamp.difference.max.ms",
];

/// Whether `name` is a config Kafka 4.0 removed (accepted, ignored).
pub(super) fn is_removed(name: &str) -> bool {
    REMOVED.contains(&name)
}

pub(super) fn kind_of(name: &str) -> Result<Kind, String> {
    KEYS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| format!("unknown topic config {name:?}"))
}

/// The value a topic has for `name` when it does not set it, given the
/// broker's defaults `d` for the log settings.
pub(super) fn default_value(name: &str, d: &LogConfig) -> String {
    let opt = |v: Option<i64>| v.unwrap_or(-1).to_string();
    match name {
        "cleanup.policy" => match d.cleanup_policy {
            fjord_log::CleanupPolicy::Delete => "delete",
            fjord_log::CleanupPolicy::Compact => "compact",
            fjord_log::CleanupPolicy::CompactDelete => "compact,delete",
        }
        .to_string(),
        "compression.gzip.level" => "-1".to_string(),
        "compression.lz4.level" => "9".to_string(),
        "compression.type" => "producer".to_string(),
        "compression.zstd.level" => "3".to_string(),
        "delete.retention.ms" => d.delete_retention_ms.to_string(),
        "file.delete.delay.ms" => d.file_delete_delay_ms.to_string(),
        "flush.messages" => d.flush_messages.unwrap_or(i64::MAX as u64).to_string(),
        "flush.ms" => d.flush_ms.unwrap_or(i64::MAX).to_string(),
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => {
            String::new()
        }
        "index.interval.bytes" => d.index_interval_bytes.to_string(),
        "local.retention.bytes" | "local.retention.ms" => "-2".to_string(),
        "max.compaction.lag.ms" => d.max_compaction_lag_ms.to_string(),
        "max.message.bytes" => d.max_message_bytes.to_string(),
        "message.timestamp.after.max.ms" => d.timestamp_after_max_ms.to_string(),
        "message.timestamp.before.max.ms" => d.timestamp_before_max_ms.to_string(),
        "message.timestamp.type" => match d.timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
        .to_string(),
        "min.cleanable.dirty.ratio" => d.min_cleanable_dirty_ratio.to_string(),
        "min.compaction.lag.ms" => d.min_compaction_lag_ms.to_string(),
        "min.insync.replicas" => "1".to_string(),
        "preallocate" => d.preallocate.to_string(),
        "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "remote.storage.enable"
        | "unclean.leader.election.enable" => "false".to_string(),
        "retention.bytes" => opt(d.retention_bytes.map(|b| b as i64)),
        "retention.ms" => opt(d.retention_ms),
        "segment.bytes" => d.segment_bytes.to_string(),
        "segment.index.bytes" => d.segment_index_bytes.to_string(),
        "segment.jitter.ms" => d.segment_jitter_ms.to_string(),
        "segment.ms" => d.segment_ms.unwrap_or(604_800_000).to_string(),
        _ => String::new(),
    }
}

/// Checks one `name=value` pair; returns the value normalised.
pub(crate) fn validate(name: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    match kind_of(name)? {
        Kind::Long { min } | Kind::Int { min, .. } => {
            let max = match kind_of(name)? {
                Kind::Int { max, .. } => max,
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
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => Ok(v.to_string()),
            _ => Err(format!("{name} must be true or false, not {value:?}")),
        },
        Kind::Ratio => match value.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Ok(v.to_string()),
            _ => Err(format!("{name} must be a number in [0, 1], not {value:?}")),
        },
        Kind::Choice(choices) => choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(value))
            .map(|c| c.to_string())
            .ok_or_else(|| format!("{name} must be one of {}", choices.join(", "))),
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
        Kind::Text => {
            // Kafka's throttled-replica lists: `*` or `partition:broker`
            // pairs. Bounded: a config value is echoed in every describe.
            if value.len() > 64 * 1024 {
                return Err(format!("{name} is longer than 64 KiB"));
            }
            let pair = |item: &str| {
                item.split_once(':').is_some_and(|(p, b)| {
                    p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                })
            };
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            if value.is_empty() || value == "*" || items.iter().all(|i| pair(i)) {
                Ok(items.join(","))
            } else {
                Err(format!(
                    "{name} must be * or a list of partition:broker pairs, not {value:?}"
                ))
            }
        }
    }
}
