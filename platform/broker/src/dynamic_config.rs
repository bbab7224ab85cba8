//! Dynamic broker configs (Kafka's IncrementalAlterConfigs / AlterConfigs
//! on BROKER resources): which broker settings can change while the
//! broker runs, and what they mean.
//!
//! Those in [`DYNAMIC_KEYS`] are the broker-wide defaults of topic configs
//! (Kafka's synonyms: `log.retention.ms` is the default of `retention.ms`,
//! …): a change applies at once to every topic that does not override the
//! key, on every broker once it has applied the change. Those in
//! [`BROKER_KEYS`] are the broker's own settings that Kafka lets change
//! live: the connection quotas (new connections see a change at once;
//! open ones over a lowered limit stay, as in Kafka) and the log cleaner
//! (its next pass; its threads are added or retired). Whoever uses them
//! registers with the registry (`TopicRegistry::on_dynamic`) and gets the
//! broker's config with them applied ([`DynamicDefaults::broker_config`])
//! at once and on every change. Both kinds are set for the
//! whole cluster (resource name `""`, DYNAMIC_DEFAULT_BROKER_CONFIG) or for
//! one broker (its id, DYNAMIC_BROKER_CONFIG, which wins). Every other
//! broker setting is read-only: altering it is INVALID_CONFIG naming the
//! key. Where they are kept is the metadata frontend's (a file on a single
//! node, the quorum's metadata in a cluster); both survive a restart.

use std::collections::BTreeMap;

use fjord_log::LogConfig;
use parking_lot::Mutex;

use crate::config::BrokerConfig;
use crate::topic_config::{
    SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT_BROKER, TYPE_DOUBLE, TYPE_INT, TYPE_LONG,
    TYPE_STRING, TopicConfigs,
};

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

/// Every dynamic broker config that is a setting of the broker itself
/// (not a topic config's default), as Kafka names it.
pub(crate) const BROKER_KEYS: &[&str] = &[
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.threads",
    "max.connection.creation.rate",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
];

/// The least dedupe buffer a cleaner thread may have (Kafka's rule).
const MIN_DEDUPE_PER_THREAD: usize = 1 << 20;

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

/// Whether broker config `key` can change while the broker runs.
pub(crate) fn is_dynamic(key: &str) -> bool {
    topic_key(key).is_some() || BROKER_KEYS.contains(&key)
}

/// Checks a dynamic broker config's value; returns it normalised. A key
/// that cannot change live is refused, naming it.
pub(crate) fn check(key: &str, value: &str) -> Result<String, String> {
    if BROKER_KEYS.contains(&key) {
        return set_setting(&mut BrokerConfig::default(), key, value);
    }
    let topic = topic_key(key).ok_or_else(|| {
        let mut all: Vec<&str> = DYNAMIC_KEYS.iter().map(|(b, _)| *b).collect();
        all.extend(BROKER_KEYS);
        all.sort_unstable();
        format!("broker config {key:?} cannot be changed while the broker runs (read-only or unknown); dynamic ones: {}",
            all.join(", "))
    })?;
    crate::topic_config::validate(topic, value).map_err(|e| e.replace(topic, key))
}

/// Sets broker setting `key` (one of [`BROKER_KEYS`]) of `config` from
/// its text; returns the text normalised.
fn set_setting(config: &mut BrokerConfig, key: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    let number = |min: u64| -> Result<u64, String> {
        match value.parse::<u64>() {
            Ok(n) if n >= min && n <= i64::MAX as u64 => Ok(n),
            _ => Err(format!(
                "{key}: {value:?} is not a whole number of at least {min}"
            )),
        }
    };
    match key {
        "max.connections" => config.max_connections = number(1)?,
        "max.connection.creation.rate" => config.max_connection_creation_rate = number(1)?,
        "max.connections.per.ip" => config.max_connections_per_ip = number(0)?,
        "max.connections.per.ip.overrides" => {
            let entries: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            crate::connection_limits::parse_overrides(&entries).map_err(|e| e.to_string())?;
            config.max_connections_per_ip_overrides = entries;
        }
        "log.cleaner.threads" => config.log_cleaner_threads = number(1)? as usize,
        "log.cleaner.dedupe.buffer.size" => {
            config.log_cleaner_dedupe_buffer_size = number(MIN_DEDUPE_PER_THREAD as u64)? as usize
        }
        "log.cleaner.backoff.ms" => config.log_cleaner_backoff_ms = number(0)?,
        "log.cleaner.io.max.bytes.per.second" => match value.parse::<f64>() {
            Ok(rate) if rate.is_finite() && rate > 0.0 => {
                // Kafka's default, the largest double, is no limit.
                config.log_cleaner_io_max_bytes_per_second = (rate < f64::MAX).then_some(rate)
            }
            _ => return Err(format!("{key}: {value:?} is not a number above 0")),
        },
        _ => return Err(format!("{key} is not a dynamic broker setting")),
    }
    Ok(describe_setting(config, key).0)
}

/// Broker setting `key` (one of [`BROKER_KEYS`]) of `config` as
/// DescribeConfigs reports it: its value and type.
pub(crate) fn describe_setting(config: &BrokerConfig, key: &str) -> (String, i8) {
    match key {
        "max.connections" => (config.max_connections.to_string(), TYPE_INT),
        "max.connection.creation.rate" => {
            (config.max_connection_creation_rate.to_string(), TYPE_INT)
        }
        "max.connections.per.ip" => (config.max_connections_per_ip.to_string(), TYPE_INT),
        "max.connections.per.ip.overrides" => (
            config.max_connections_per_ip_overrides.join(","),
            TYPE_STRING,
        ),
        "log.cleaner.threads" => (config.log_cleaner_threads.to_string(), TYPE_INT),
        "log.cleaner.dedupe.buffer.size" => {
            (config.log_cleaner_dedupe_buffer_size.to_string(), TYPE_LONG)
        }
        "log.cleaner.backoff.ms" => (config.log_cleaner_backoff_ms.to_string(), TYPE_LONG),
        "log.cleaner.io.max.bytes.per.second" => (
            match config.log_cleaner_io_max_bytes_per_second {
                Some(rate) => rate.to_string(),
                // No limit, written as Kafka writes its default (the
                // largest double).
                None => "1.7976931348623157E308".to_owned(),
            },
            TYPE_DOUBLE,
        ),
        _ => (String::new(), TYPE_STRING),
    }
}

/// Checks the broker settings a change leads to, `next`, as a whole and
/// against those in force, `current` (Kafka's rules): the connection
/// limits must let some client in, and the cleaner's threads change by at
/// most a factor of two in one step, each keeping 1 MiB of dedupe buffer.
pub(crate) fn check_change(current: &BrokerConfig, next: &BrokerConfig) -> Result<(), String> {
    next.validate_connection_limits()
        .map_err(|e| e.to_string())?;
    let (now, then) = (current.log_cleaner_threads.max(1), next.log_cleaner_threads);
    if then > now * 2 {
        return Err(format!(
            "log.cleaner.threads: {then} is more than double the current value {now} (raise it in steps)"
        ));
    }
    if then < now / 2 {
        return Err(format!(
            "log.cleaner.threads: {then} is less than half the current value {now} (lower it in steps)"
        ));
    }
    let changed = current.log_cleaner_threads != next.log_cleaner_threads
        || current.log_cleaner_dedupe_buffer_size != next.log_cleaner_dedupe_buffer_size;
    if changed && next.log_cleaner_dedupe_buffer_size / then.max(1) < MIN_DEDUPE_PER_THREAD {
        return Err(format!(
            "log.cleaner.dedupe.buffer.size: {} is less than 1 MiB for each of the {then} log.cleaner.threads",
            next.log_cleaner_dedupe_buffer_size
        ));
    }
    Ok(())
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
    /// The broker settings set here ([`BROKER_KEYS`]): value and source,
    /// the broker's own winning over the cluster default.
    settings: BTreeMap<String, (String, i8)>,
}

impl DynamicDefaults {
    /// The configs of broker `node_id` in `table`. Values that no longer
    /// check (written by a newer version) are skipped with a warning.
    pub(crate) fn new(table: BrokerConfigTable, node_id: i32) -> DynamicDefaults {
        let as_topic = |resource: &str| {
            let mut configs = TopicConfigs::default();
            for (key, value) in table.get(resource).into_iter().flatten() {
                if BROKER_KEYS.contains(&key.as_str()) {
                    continue;
                }
                let applied = topic_key(key)
                    .ok_or_else(|| format!("{key} is not a dynamic broker config"))
                    .and_then(|topic| configs.set(topic, value));
                if let Err(e) = applied {
                    tracing::warn!(resource, key, error = %e, "dynamic broker config ignored");
                }
            }
            configs
        };
        let mut settings = BTreeMap::new();
        for (resource, source) in [
            (String::new(), SOURCE_DYNAMIC_DEFAULT_BROKER),
            (node_id.to_string(), SOURCE_DYNAMIC_BROKER),
        ] {
            let values = table.get(&resource).into_iter().flatten();
            for (key, value) in values.filter(|(k, _)| BROKER_KEYS.contains(&k.as_str())) {
                match check(key, value) {
                    Ok(value) => {
                        settings.insert(key.clone(), (value, source));
                    }
                    Err(e) => {
                        tracing::warn!(resource, key, error = %e, "dynamic broker config ignored")
                    }
                }
            }
        }
        DynamicDefaults {
            cluster: as_topic(""),
            broker: as_topic(&node_id.to_string()),
            settings,
            table,
        }
    }

    /// The broker's config `base` (its config file's) with the dynamic
    /// broker settings applied.
    pub(crate) fn broker_config(&self, base: &BrokerConfig) -> BrokerConfig {
        let mut config = base.clone();
        for (key, (value, _)) in &self.settings {
            // Checked when read.
            let _ = set_setting(&mut config, key, value);
        }
        config
    }

    /// Where broker setting `key` comes from, when a dynamic config sets
    /// it: its value and source.
    pub(crate) fn setting_source(&self, key: &str) -> Option<(&str, i8)> {
        self.settings.get(key).map(|(v, s)| (v.as_str(), *s))
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

/// Called with the dynamic configs in force, at once and on every change
/// (under the registry's admin lock: it must not take it).
pub(crate) type DynamicHook = Box<dyn Fn(&DynamicDefaults) + Send + Sync>;

/// The hooks of the registry's dynamic configs.
#[derive(Default)]
pub(crate) struct DynamicHooks(Mutex<Vec<DynamicHook>>);

impl DynamicHooks {
    pub(crate) fn add(&self, hook: DynamicHook) {
        self.0.lock().push(hook);
    }

    pub(crate) fn call(&self, dynamic: &DynamicDefaults) {
        for hook in self.0.lock().iter() {
            hook(dynamic);
        }
    }
}

impl std::fmt::Debug for DynamicHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DynamicHooks({})", self.0.lock().len())
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

    #[test]
    fn broker_settings_are_checked_alone_and_as_a_whole() {
        assert_eq!(check("log.cleaner.threads", " 4 ").as_deref(), Ok("4"));
        assert!(
            check("log.cleaner.threads", "0")
                .unwrap_err()
                .contains("log.cleaner.threads")
        );
        assert_eq!(
            check("max.connections.per.ip.overrides", "a:1, b:2").as_deref(),
            Ok("a:1,b:2")
        );
        assert!(check("log.cleaner.io.max.bytes.per.second", "NaN").is_err());
        assert_eq!(
            check(
                "log.cleaner.io.max.bytes.per.second",
                "1.7976931348623157E308"
            )
            .as_deref(),
            Ok("1.7976931348623157E308")
        );
        let current = BrokerConfig::default();
        let with = |key: &str, value: &str| {
            let mut next = current.clone();
            set_setting(&mut next, key, value).unwrap();
            check_change(&current, &next)
        };
        assert!(with("log.cleaner.threads", "2").is_ok());
        assert!(
            with("log.cleaner.threads", "3")
                .unwrap_err()
                .contains("double")
        );
        assert!(with("max.connections.per.ip", "0").is_err());
        let mut four = current.clone();
        four.log_cleaner_threads = 4;
        assert!(
            check_change(&four, &current).is_err(),
            "4 to 1 is below half"
        );
        // Another broker's own value does not touch this one's.
        let table: BrokerConfigTable = [(
            "2".to_string(),
            [("max.connections".to_string(), "5".to_string())].into(),
        )]
        .into();
        let one = DynamicDefaults::new(table.clone(), 1).broker_config(&current);
        assert_eq!(one.max_connections, current.max_connections);
        let two = DynamicDefaults::new(table, 2);
        assert_eq!(two.broker_config(&current).max_connections, 5);
        assert_eq!(
            two.setting_source("max.connections"),
            Some(("5", SOURCE_DYNAMIC_BROKER))
        );
    }
}
