//! What the plugin benches run: ~100-byte records, the two processors'
//! configurations, and one instance of a plugin per way of running it.

// Each bench uses part of this.
#![allow(dead_code)]

use crate::common::{Build, build, reference};
use fjord_plugin_host::{InstanceOptions, PluginHost, PluginInstance};
use fjord_sdk::{Config, Record};

pub const BATCH: usize = 1024;

/// ~100-byte JSON log records; one in four is an error with status ≥ 500.
pub fn json_records() -> Vec<Record> {
    (0..BATCH)
        .map(|i| {
            let (level, status) = if i % 4 == 0 { ("error", 503) } else { ("info", 200) };
            let v = format!(
                r#"{{"ts":1763800000{:03},"level":"{level}","status":{status},"path":"/api/v1/items/{:05}","ms":{}}}"#,
                i % 1000,
                i,
                i % 97
            );
            Record::new(v).with_timestamp(1_763_800_000_000 + i as i64)
        })
        .collect()
}

/// ~100-byte access-log lines.
pub fn log_lines() -> Vec<Record> {
    (0..BATCH)
        .map(|i| {
            Record::new(format!(
                r#"203.0.113.{} - - [22/Nov/2026:10:00:{:02} +0000] "GET /api/v1/items/{:05} HTTP/1.1" {} {}"#,
                i % 250,
                i % 60,
                i,
                if i % 4 == 0 { 503 } else { 200 },
                100 + i % 900
            ))
        })
        .collect()
}

pub const FILTER: &str = r#"level == "error" && status >= 500"#;
pub const REGEX: &str = r#"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d+) (?P<bytes>\d+)$"#;

pub fn instances(
    host: &PluginHost,
    builtin: &str,
    package: &str,
    config: &[(&str, &str)],
) -> Vec<(&'static str, PluginInstance)> {
    let config = Config::from_pairs(config.iter().copied());
    let refs = [
        ("built-in", builtin.to_owned()),
        ("native", reference(&build(package, Build::Native))),
        ("wasm", reference(&build(package, Build::Wasm))),
    ];
    refs.into_iter()
        .map(|(origin, r)| {
            let plugin = host.load(&r).expect("load");
            (
                origin,
                host.instantiate(&plugin, InstanceOptions::new(config.clone()))
                    .expect("instantiate"),
            )
        })
        .collect()
}
