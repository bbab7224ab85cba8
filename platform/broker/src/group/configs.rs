//! Dynamic group configs (KIP-848's GROUP config resource, Kafka 4.0's
//! `GroupConfig`): what a group may set for itself, how a change is
//! checked, and the values the coordinator uses in place of the broker's
//! `group.consumer.*` defaults.
//!
//! A group sets `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms`, each held within the broker's
//! `group.consumer.min.*`/`max.*` bounds, and the heartbeat interval in
//! force must stay below the session timeout in force (as Kafka's
//! `GroupConfig.validateValues`). Where they are kept is the metadata
//! frontend's (`crate::metadata`); the coordinator holds the table it was
//! last given ([`GroupCoordinator::set_group_configs`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::coordinator::{GroupCoordinator, GroupSettings};

/// A group's session timeout key.
pub(crate) const SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
/// A group's heartbeat interval key.
pub(crate) const HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";
/// Kafka's defaults of `group.consumer.session.timeout.ms` and
/// `group.consumer.heartbeat.interval.ms` (a broker value that differs
/// was set in its config).
pub(crate) const KAFKA_DEFAULT_SESSION_TIMEOUT_MS: i32 = 45_000;
pub(crate) const KAFKA_DEFAULT_HEARTBEAT_INTERVAL_MS: i32 = 5_000;

/// Every group's dynamic configs: by group id, each key's value (what is
/// stored).
pub(crate) type GroupConfigTable = BTreeMap<String, BTreeMap<String, String>>;

/// A change to one group's configs: `Some` sets a key, `None` removes it.
pub(crate) type GroupConfigChanges = BTreeMap<String, Option<String>>;

/// One group's values, parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GroupValues {
    pub session_timeout_ms: Option<i32>,
    pub heartbeat_interval_ms: Option<i32>,
}

/// The table as the coordinator uses it.
#[derive(Debug, Default)]
pub(crate) struct AppliedGroupConfigs {
    table: GroupConfigTable,
    parsed: HashMap<String, GroupValues>,
}

fn parse(key: &str, value: &str) -> Result<i32, String> {
    value
        .trim()
        .parse::<i32>()
        .map_err(|_| format!("{key} must be a whole number of milliseconds, not {value:?}"))
}

fn values_of(values: &BTreeMap<String, String>) -> Result<GroupValues, String> {
    let mut parsed = GroupValues::default();
    for (key, value) in values {
        match key.as_str() {
            SESSION_TIMEOUT => parsed.session_timeout_ms = Some(parse(key, value)?),
            HEARTBEAT_INTERVAL => parsed.heartbeat_interval_ms = Some(parse(key, value)?),
            other => return Err(unknown(other)),
        }
    }
    Ok(parsed)
}

fn unknown(key: &str) -> String {
    format!(
        "{key:?} is not a group config; group configs: {}",
        fjord_controller::GROUP_CONFIG_KEYS.join(", ")
    )
}

/// Checks the group resource's name: Kafka has no default group resource.
pub(crate) fn check_group_name(group: &str) -> Result<(), String> {
    if group.is_empty() {
        Err("a group config resource names a group (there is no default group resource)".into())
    } else {
        Ok(())
    }
}

/// Checks `changes` to a group whose configs are `current` (with
/// `replace`, `current` is dropped first): each key is a group config, each
/// value within the broker's bounds, and the heartbeat interval in force
/// below the session timeout in force. Returns the group's values after.
pub(crate) fn check(
    settings: &GroupSettings,
    current: Option<&BTreeMap<String, String>>,
    changes: &GroupConfigChanges,
    replace: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut after = match current {
        Some(values) if !replace => values.clone(),
        _ => BTreeMap::new(),
    };
    for (key, value) in changes {
        let bounds = match key.as_str() {
            SESSION_TIMEOUT => (
                "group.consumer.min.session.timeout.ms",
                settings.consumer_min_session_timeout_ms,
                "group.consumer.max.session.timeout.ms",
                settings.consumer_max_session_timeout_ms,
            ),
            HEARTBEAT_INTERVAL => (
                "group.consumer.min.heartbeat.interval.ms",
                settings.consumer_min_heartbeat_interval_ms,
                "group.consumer.max.heartbeat.interval.ms",
                settings.consumer_max_heartbeat_interval_ms,
            ),
            other => return Err(unknown(other)),
        };
        let Some(value) = value else {
            after.remove(key);
            continue;
        };
        let (min_name, min, max_name, max) = bounds;
        let ms = parse(key, value)?;
        if !(min..=max).contains(&ms) {
            return Err(format!(
                "{key} must be between {min_name} ({min}) and {max_name} ({max}), not {ms}"
            ));
        }
        after.insert(key.clone(), ms.to_string());
    }
    let values = values_of(&after)?;
    let session = values
        .session_timeout_ms
        .unwrap_or(settings.consumer_session_timeout_ms);
    let interval = values
        .heartbeat_interval_ms
        .unwrap_or(settings.consumer_heartbeat_interval_ms);
    if interval >= session {
        return Err(format!(
            "{HEARTBEAT_INTERVAL} ({interval}) must be below {SESSION_TIMEOUT} ({session}) of the group"
        ));
    }
    Ok(after)
}

impl GroupCoordinator {
    /// Takes `table` as every group's dynamic configs (at start, after a
    /// change on a single node, and as a broker of a cluster follows the
    /// quorum's metadata). A group whose values no longer parse (written
    /// by a newer version) keeps the broker defaults, with a warning.
    pub(crate) fn set_group_configs(&self, table: &GroupConfigTable) {
        if self.group_configs.read().table == *table {
            return;
        }
        let mut parsed = HashMap::new();
        for (group, values) in table {
            match values_of(values) {
                Ok(v) => {
                    parsed.insert(group.clone(), v);
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "group configs ignored");
                }
            }
        }
        *self.group_configs.write() = Arc::new(AppliedGroupConfigs {
            table: table.clone(),
            parsed,
        });
    }

    /// The dynamic configs `group` has set (empty: none).
    pub(crate) fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.group_configs
            .read()
            .table
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Every group's dynamic configs.
    pub(crate) fn all_group_configs(&self) -> GroupConfigTable {
        self.group_configs.read().table.clone()
    }

    fn values(&self, group: &str) -> GroupValues {
        self.group_configs
            .read()
            .parsed
            .get(group)
            .copied()
            .unwrap_or_default()
    }

    /// The session timeout of `group`'s KIP-848 members: its own, else the
    /// broker's `group.consumer.session.timeout.ms`.
    pub(crate) fn consumer_session_timeout_ms(&self, group: &str) -> i32 {
        self.values(group)
            .session_timeout_ms
            .unwrap_or(self.settings().consumer_session_timeout_ms)
    }

    /// The heartbeat interval `group`'s KIP-848 members are told: its own,
    /// else the broker's `group.consumer.heartbeat.interval.ms`.
    pub(crate) fn consumer_heartbeat_interval_ms(&self, group: &str) -> i32 {
        self.values(group)
            .heartbeat_interval_ms
            .unwrap_or(self.settings().consumer_heartbeat_interval_ms)
    }

    /// The settings a group's configs are checked against.
    pub(crate) fn group_settings(&self) -> &GroupSettings {
        self.settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> GroupSettings {
        crate::broker_state::group_settings(&crate::BrokerConfig::default())
    }

    fn set(key: &str, value: &str) -> GroupConfigChanges {
        [(key.to_string(), Some(value.to_string()))].into()
    }

    #[test]
    fn values_are_held_within_the_broker_bounds_and_below_the_session() {
        let s = settings();
        assert!(check(&s, None, &set(SESSION_TIMEOUT, "50000"), false).is_ok());
        let low = check(&s, None, &set(SESSION_TIMEOUT, "1000"), false).unwrap_err();
        assert!(
            low.contains("group.consumer.min.session.timeout.ms"),
            "{low}"
        );
        let word = check(&s, None, &set(HEARTBEAT_INTERVAL, "soon"), false).unwrap_err();
        assert!(word.contains(HEARTBEAT_INTERVAL), "{word}");
        let other = check(&s, None, &set("session.timeout.ms", "1"), false).unwrap_err();
        assert!(other.contains("session.timeout.ms"), "{other}");
        // Within bounds but not below the group's session timeout.
        let mut s = s;
        s.consumer_max_heartbeat_interval_ms = 60_000;
        let current: BTreeMap<String, String> =
            [(SESSION_TIMEOUT.to_string(), "45000".to_string())].into();
        let above =
            check(&s, Some(&current), &set(HEARTBEAT_INTERVAL, "50000"), false).unwrap_err();
        assert!(above.contains("must be below"), "{above}");
        // Replacing drops what was there: the broker default applies.
        let after = check(&s, Some(&current), &set(HEARTBEAT_INTERVAL, "6000"), true).unwrap();
        assert_eq!(after.len(), 1);
    }
}
