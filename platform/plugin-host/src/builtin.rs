//! Plugins compiled into the binary, addressable by name.
//!
//! Each is a first-party plugin crate from `plugins/`, built with
//! `fjord-sdk`'s `embedded` feature so their C ABI symbols stay out.
//!
//! A name may belong to two kinds (`file` is a source and a sink);
//! `NAME-KIND` (`file-source`) always names one, and a caller that knows the
//! kind it needs passes it.

use fjord_sdk::PluginKind;
use fjord_sdk::dispatch::{
    Builtin, PartitionerAdapter, ProcessorAdapter, SerializerAdapter, SinkAdapter, SourceAdapter,
};

/// Every built-in plugin.
pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin::of::<ProcessorAdapter<fjord_plugin_filter::Filter>>(),
        Builtin::of::<ProcessorAdapter<fjord_plugin_regex_parse::RegexParse>>(),
        Builtin::of::<ProcessorAdapter<fjord_plugin_redact::Redact>>(),
        Builtin::of::<ProcessorAdapter<fjord_plugin_parse::Parse>>(),
        Builtin::of::<ProcessorAdapter<fjord_plugin_aggregate::Aggregate>>(),
        Builtin::of::<ProcessorAdapter<fjord_plugin_validate::Validate>>(),
        Builtin::of::<SerializerAdapter<fjord_plugin_json::Json>>(),
        Builtin::of::<SerializerAdapter<fjord_plugin_csv::Csv>>(),
        Builtin::of::<PartitionerAdapter<fjord_plugin_murmur2::Murmur2>>(),
        Builtin::of::<PartitionerAdapter<fjord_plugin_round_robin::RoundRobin>>(),
        Builtin::of::<PartitionerAdapter<fjord_plugin_json_field::JsonField>>(),
        Builtin::of::<SourceAdapter<fjord_plugin_file_source::FileSource>>(),
        Builtin::of::<SourceAdapter<fjord_plugin_generator::Generator>>(),
        Builtin::of::<SourceAdapter<fjord_plugin_syslog::Syslog>>(),
        Builtin::of::<SourceAdapter<fjord_plugin_http_source::HttpSource>>(),
        Builtin::of::<SinkAdapter<fjord_plugin_file_sink::FileSink>>(),
        Builtin::of::<SinkAdapter<fjord_plugin_stdout::Stdout>>(),
        Builtin::of::<SinkAdapter<fjord_plugin_http_sink::HttpSink>>(),
        Builtin::of::<SinkAdapter<fjord_plugin_prometheus::Prometheus>>(),
    ]
}

/// What looking a name up found.
pub enum Lookup {
    Found(Builtin),
    None,
    /// Several kinds share the name; the qualified names of each.
    Ambiguous(Vec<String>),
}

/// The built-in called `name` (or `name-kind`), of `kind` when given.
pub fn find(name: &str, kind: Option<PluginKind>) -> Lookup {
    let mut matches: Vec<(Builtin, String)> = builtins()
        .into_iter()
        .filter_map(|b| {
            let info = (b.describe)();
            let qualified = format!("{}-{}", info.name, info.kind);
            let named = info.name == name || qualified == name;
            (named && kind.is_none_or(|k| k == info.kind)).then_some((b, qualified))
        })
        .collect();
    match matches.len() {
        0 => Lookup::None,
        1 => Lookup::Found(matches.remove(0).0),
        _ => Lookup::Ambiguous(matches.into_iter().map(|(_, q)| q).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_kind() {
        let mut seen = std::collections::HashSet::new();
        for b in builtins() {
            let info = (b.describe)();
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
        assert!(
            matches!(find("file", None), Lookup::Ambiguous(q) if q == ["file-source", "file-sink"])
        );
        assert!(matches!(
            find("file", Some(PluginKind::Sink)),
            Lookup::Found(_)
        ));
        assert!(matches!(find("file-source", None), Lookup::Found(_)));
        assert!(matches!(find("json", Some(PluginKind::Sink)), Lookup::None));
        // `http` is the sink here; `http-sink` names it whatever else
        // takes the name.
        assert!(matches!(
            find("http", Some(PluginKind::Sink)),
            Lookup::Found(b) if (b.describe)().kind == PluginKind::Sink
        ));
        assert!(matches!(find("http-sink", None), Lookup::Found(_)));
    }
}
