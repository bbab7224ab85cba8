//! `fjord-builtins`: the first-party plugins compiled into `fjord`.
//!
//! Each is a crate under `plugins/`, written against `fjord-sdk` like any
//! plugin. This crate lists them as [`Builtin`]s for
//! `fjord_plugin_host::PluginHost::new`, so the host itself depends on no
//! plugin and a binary (or a test) chooses what it compiles in.
//!
//! ```
//! use fjord_plugin_host::{HostConfig, PluginHost};
//!
//! let host = PluginHost::new(HostConfig::default(), fjord_builtins::all())?;
//! assert_eq!(host.load("filter")?.info().name, "filter");
//! # Ok::<(), fjord_plugin_host::PluginError>(())
//! ```
//!
//! Not for: running plugins — that is `fjord-plugin-host`.

use fjord_plugin_host::Builtin;

/// Every built-in plugin.
pub fn all() -> Vec<Builtin> {
    vec![
        Builtin::processor::<fjord_plugin_filter::Filter>(),
        Builtin::processor::<fjord_plugin_regex_parse::RegexParse>(),
        Builtin::processor::<fjord_plugin_redact::Redact>(),
        Builtin::processor::<fjord_plugin_parse::Parse>(),
        Builtin::processor::<fjord_plugin_aggregate::Aggregate>(),
        Builtin::processor::<fjord_plugin_validate::Validate>(),
        Builtin::serializer::<fjord_plugin_json::Json>(),
        Builtin::serializer::<fjord_plugin_csv::Csv>(),
        Builtin::partitioner::<fjord_plugin_murmur2::Murmur2>(),
        Builtin::partitioner::<fjord_plugin_round_robin::RoundRobin>(),
        Builtin::partitioner::<fjord_plugin_json_field::JsonField>(),
        Builtin::source::<fjord_plugin_file_source::FileSource>(),
        Builtin::source::<fjord_plugin_generator::Generator>(),
        Builtin::source::<fjord_plugin_syslog::Syslog>(),
        Builtin::source::<fjord_plugin_http_source::HttpSource>(),
        Builtin::sink::<fjord_plugin_file_sink::FileSink>(),
        Builtin::sink::<fjord_plugin_stdout::Stdout>(),
        Builtin::sink::<fjord_plugin_http_sink::HttpSink>(),
        Builtin::sink::<fjord_plugin_prometheus::Prometheus>(),
    ]
}

#[cfg(test)]
mod tests {
    use fjord_plugin_host::{HostConfig, PluginHost};
    use fjord_sdk::PluginKind;

    #[test]
    fn names_are_unique_per_kind() {
        let mut seen = std::collections::HashSet::new();
        for b in super::all() {
            let info = b.info();
            assert!(
                seen.insert((info.name.clone(), info.kind)),
                "{} {} registered twice",
                info.name,
                info.kind
            );
        }
    }

    #[test]
    fn a_shared_name_needs_a_kind_or_a_qualified_name() {
        let host = PluginHost::new(HostConfig::default(), super::all()).unwrap();
        let err = host.load("file").unwrap_err().to_string();
        assert!(err.contains("file-source, file-sink"), "{err}");
        let kind = |r: &str, k| host.load_kind(r, k).map(|p| p.info().kind);
        assert_eq!(kind("file", PluginKind::Sink).unwrap(), PluginKind::Sink);
        assert_eq!(
            host.load("file-source").unwrap().info().kind,
            PluginKind::Source
        );
        assert!(kind("json", PluginKind::Sink).is_err());
        // `http` is the sink here; `http-sink` names it whatever else
        // takes the name.
        assert_eq!(kind("http", PluginKind::Sink).unwrap(), PluginKind::Sink);
        assert_eq!(
            host.load("http-sink").unwrap().info().kind,
            PluginKind::Sink
        );
    }
}
