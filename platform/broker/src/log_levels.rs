//! Log levels at run time: Kafka's BROKER_LOGGER config resource (type 8).
//! DescribeConfigs lists loggers — Rust targets (crate and module paths,
//! `fjord_broker::connection`) and `root`, the default — with their level;
//! IncrementalAlterConfigs SET gives one a level, DELETE takes its own
//! away (back to what the `--log` filter says). As in Kafka the change is
//! this process's only and is not persisted.
//!
//! The process that owns the tracing subscriber (`fjord server`) installs
//! a [`LogControl`] that swaps its filter; without one (an embedded broker,
//! the tests' in-process brokers) BROKER_LOGGER is refused as unsupported.
//! One per process, as the subscriber is.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Swaps the process's log filter (tracing `EnvFilter` directives).
pub trait LogControl: Send + Sync {
    /// Applies `directives` (`warn,fjord_broker::connection=debug`).
    fn apply(&self, directives: &str) -> Result<(), String>;
}

/// The most loggers given a level of their own: each costs a directive
/// in the filter every event goes through.
const MAX_OVERRIDES: usize = 256;
/// The longest logger name accepted.
const MAX_NAME: usize = 200;

/// Kafka's name of the default logger.
const ROOT: &str = "root";

/// Loggers always listed, whether or not the filter names them.
const KNOWN: &[&str] = &[
    "fjord",
    "fjord_broker",
    "fjord_controller",
    "fjord_log",
    "fjord_pipeline",
    "fjord_plugin_host",
    "openraft",
];

struct Levels {
    /// The filter the process started with.
    base: String,
    /// Levels set at run time, by logger (`root` included).
    overrides: BTreeMap<String, &'static str>,
    control: Arc<dyn LogControl>,
}

static LEVELS: OnceLock<Mutex<Levels>> = OnceLock::new();

/// Installs the process's log control, `base` being the filter it started
/// with. Only the first call counts.
pub fn install_log_control(base: &str, control: Arc<dyn LogControl>) {
    let _ = LEVELS.set(Mutex::new(Levels {
        base: base.to_owned(),
        overrides: BTreeMap::new(),
        control,
    }));
}

/// Kafka's level names (and `ALL`, `FATAL`) as tracing's.
fn level(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_uppercase().as_str() {
        "OFF" => "off",
        "FATAL" | "ERROR" => "error",
        "WARN" => "warn",
        "INFO" => "info",
        "DEBUG" => "debug",
        "TRACE" | "ALL" => "trace",
        _ => return None,
    })
}

/// `(target, level)` of each directive of `filter`; the target of a bare
/// level is `root`.
fn directives(filter: &str) -> Vec<(String, String)> {
    filter
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((target, level)) => (target.to_owned(), level.to_owned()),
            None => (ROOT.to_owned(), d.to_owned()),
        })
        .collect()
}

impl Levels {
    /// The filter of the base with the overrides after it (a later
    /// directive for the same target wins), the root level first.
    fn filter(&self) -> String {
        let mut parts = Vec::new();
        if let Some(root) = self.overrides.get(ROOT) {
            parts.push((*root).to_owned());
        }
        for (target, level) in directives(&self.base) {
            if target == ROOT {
                if !self.overrides.contains_key(ROOT) {
                    parts.push(level);
                }
            } else {
                parts.push(format!("{target}={level}"));
            }
        }
        parts.extend(
            self.overrides
                .iter()
                .filter(|(t, _)| t.as_str() != ROOT)
                .map(|(t, l)| format!("{t}={l}")),
        );
        parts.join(",")
    }

    /// The level `logger` logs at: the most specific target that covers
    /// it, as tracing matches them (module path prefixes).
    fn level_of(&self, logger: &str) -> String {
        let all = directives(&self.filter());
        let covers = |target: &str| {
            logger == target
                || logger
                    .strip_prefix(target)
                    .is_some_and(|rest| rest.starts_with("::"))
        };
        all.iter()
            .filter(|(t, _)| t != ROOT && covers(t))
            .max_by_key(|(t, _)| t.len())
            .or_else(|| all.iter().rev().find(|(t, _)| t == ROOT))
            .map_or_else(|| "error".to_owned(), |(_, l)| l.clone())
            .to_ascii_uppercase()
    }
}

/// Every logger listed and its level, or `None` without a log control.
pub(crate) fn describe() -> Option<Vec<(String, String)>> {
    let levels = LEVELS.get()?.lock();
    let mut names: Vec<String> = KNOWN.iter().map(|s| s.to_string()).collect();
    names.push(ROOT.to_owned());
    names.extend(directives(&levels.base).into_iter().map(|(t, _)| t));
    names.extend(levels.overrides.keys().cloned());
    names.sort();
    names.dedup();
    Some(
        names
            .into_iter()
            .map(|name| {
                let level = levels.level_of(&name);
                (name, level)
            })
            .collect(),
    )
}

/// Whether this process can change its log levels.
pub(crate) fn supported() -> bool {
    LEVELS.get().is_some()
}

fn check_name(logger: &str) -> Result<(), String> {
    let ok = !logger.is_empty()
        && logger.len() <= MAX_NAME
        && logger
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !logger.starts_with(':');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "logger {logger:?} is not a Rust target (letters, digits, _ and ::, at most {MAX_NAME} bytes) or root"
        ))
    }
}

/// Applies a batch of changes, all or nothing: `(logger, Some(level))`
/// sets a level, `(logger, None)` removes the logger's own.
pub(crate) fn change(
    changes: &[(String, Option<String>)],
    validate_only: bool,
) -> Result<(), String> {
    let Some(levels) = LEVELS.get() else {
        return Err("this broker's log levels cannot be changed at run time".to_owned());
    };
    let mut levels = levels.lock();
    let mut overrides = levels.overrides.clone();
    for (logger, value) in changes {
        check_name(logger)?;
        match value {
            Some(v) => {
                let l = level(v).ok_or_else(|| {
                    format!("{v:?} is not a log level of {logger} (OFF, ERROR, WARN, INFO, DEBUG, TRACE)")
                })?;
                overrides.insert(logger.clone(), l);
            }
            None => {
                overrides.remove(logger);
            }
        }
    }
    if overrides.len() > MAX_OVERRIDES {
        return Err(format!(
            "at most {MAX_OVERRIDES} loggers may have a level of their own"
        ));
    }
    if validate_only {
        return Ok(());
    }
    let previous = std::mem::replace(&mut levels.overrides, overrides);
    let filter = levels.filter();
    if let Err(e) = levels.control.apply(&filter) {
        levels.overrides = previous;
        return Err(e);
    }
    tracing::info!(filter = %filter, "log levels changed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ignore;
    impl LogControl for Ignore {
        fn apply(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn the_filter_puts_overrides_last_and_levels_follow_targets() {
        let mut levels = Levels {
            base: "warn,openraft=off".to_owned(),
            overrides: BTreeMap::new(),
            control: Arc::new(Ignore),
        };
        assert_eq!(levels.level_of("fjord_broker::connection"), "WARN");
        levels
            .overrides
            .insert("fjord_broker::connection".to_owned(), "debug");
        levels.overrides.insert(ROOT.to_owned(), "info");
        assert_eq!(
            levels.filter(),
            "info,openraft=off,fjord_broker::connection=debug"
        );
        assert_eq!(levels.level_of("fjord_broker::connection"), "DEBUG");
        assert_eq!(levels.level_of("fjord_broker::connection::x"), "DEBUG");
        assert_eq!(levels.level_of("fjord_broker::connections"), "INFO");
        assert_eq!(levels.level_of("openraft"), "OFF");
        assert_eq!(level("all"), Some("trace"));
        assert!(check_name("fjord_broker::apis").is_ok());
        assert!(check_name("a=b").is_err() && check_name("").is_err());
    }
}
