//! Every first-party plugin runs the same as a built-in, as a native
//! library and as a WebAssembly component: same description, same output.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::{Build, build, reference};
use fjord_plugin_host::{
    Capabilities, DirGrant, HostConfig, InstanceOptions, PluginHost, PluginInstance,
};
use fjord_sdk::{Config, PluginKind, Record};

/// The three builds of one plugin, in the order built-in, native, wasm.
fn three_ways(
    host: &PluginHost,
    builtin: &str,
    package: &str,
    kind: PluginKind,
    options: impl Fn(&str) -> InstanceOptions,
) -> Vec<PluginInstance> {
    let refs = [
        ("builtin", builtin.to_owned()),
        ("native", reference(&build(package, Build::Native))),
        ("wasm", reference(&build(package, Build::Wasm))),
    ];
    let instances: Vec<PluginInstance> = refs
        .iter()
        .map(|(how, r)| {
            let plugin = host
                .load_kind(r, kind)
                .unwrap_or_else(|e| panic!("{package} {how}: {e}"));
            host.instantiate(&plugin, options(how))
                .unwrap_or_else(|e| panic!("{package} {how}: {e}"))
        })
        .collect();
    for i in &instances[1..] {
        assert_eq!(
            i.info(),
            instances[0].info(),
            "{package}: descriptions differ"
        );
    }
    instances
}

fn host() -> PluginHost {
    PluginHost::new(
        HostConfig {
            cache_dir: Some(tempfile::tempdir().unwrap().keep()),
            policy: common::test_policy(),
            ..Default::default()
        },
        fjord_builtins::all(),
    )
    .unwrap()
}

fn config(pairs: &[(&str, &str)]) -> impl Fn(&str) -> InstanceOptions {
    let c = Config::from_pairs(pairs.iter().copied());
    move |_| InstanceOptions::new(c.clone())
}

#[test]
fn serializers() {
    let host = host();
    for mut p in three_ways(
        &host,
        "json",
        "fjord-plugin-json",
        PluginKind::Serializer,
        config(&[]),
    ) {
        assert_eq!(
            p.serialize(b"{ \"a\" : [1, 2] }").unwrap(),
            b"{\"a\":[1,2]}"
        );
        let err = p.serialize(b"{oops").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
    let csv = config(&[("columns", "host,status")]);
    for mut p in three_ways(
        &host,
        "csv",
        "fjord-plugin-csv",
        PluginKind::Serializer,
        csv,
    ) {
        let json = p.serialize(b"web-1,503").unwrap();
        assert_eq!(json, br#"{"host":"web-1","status":"503"}"#);
        assert_eq!(p.deserialize(&json).unwrap(), b"web-1,503");
        assert!(p.serialize(b"only-one-field").is_err());
    }
}

#[test]
fn partitioners() {
    let host = host();
    // Kafka's murmur2 vectors: "21" → -973932308 → partition 0 of 3 etc.
    let keys: [&[u8]; 4] = [b"21", b"foobar", b"abc", b"kafka"];
    let mut results = Vec::new();
    for mut p in three_ways(
        &host,
        "murmur2",
        "fjord-plugin-murmur2",
        PluginKind::Partitioner,
        config(&[]),
    ) {
        results.push(
            keys.iter()
                .map(|k| p.partition(Some(k), None, 7).unwrap())
                .collect::<Vec<_>>(),
        );
    }
    assert!(results.iter().all(|r| *r == results[0]));
    assert_eq!(results[0][2], 4, "murmur2(\"abc\") % 7");

    for mut p in three_ways(
        &host,
        "round-robin",
        "fjord-plugin-round-robin",
        PluginKind::Partitioner,
        config(&[]),
    ) {
        let got: Vec<u32> = (0..5)
            .map(|_| p.partition(None, None, 3).unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2, 0, 1]);
    }

    let field = config(&[("field", "user.id")]);
    let mut results = Vec::new();
    for mut p in three_ways(
        &host,
        "json-field",
        "fjord-plugin-json-field",
        PluginKind::Partitioner,
        field,
    ) {
        let v = br#"{"user":{"id":"u-42"},"x":1}"#;
        let same = br#"{"x":2,"user":{"id":"u-42"}}"#;
        let a = p.partition(None, Some(v), 12).unwrap();
        assert_eq!(
            a,
            p.partition(None, Some(same), 12).unwrap(),
            "same field, same partition"
        );
        results.push(a);
    }
    assert!(results.iter().all(|r| *r == results[0]));
}

#[test]
fn file_sink_and_source_through_granted_directories() {
    let host = host();
    let dir = tempfile::tempdir().unwrap();
    // The WebAssembly build sees the directory as /data; the others use the
    // host path.
    let grant = |read_only| Capabilities {
        dirs: vec![DirGrant {
            host: dir.path().to_owned(),
            guest: "/data".into(),
            read_only,
        }],
        ..Capabilities::default()
    };
    let host_path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let options = |name: &'static str, read_only: bool| {
        let host_path = host_path(name);
        let grant = grant(read_only);
        move |how: &str| {
            let path = if how == "wasm" {
                format!("/data/{name}")
            } else {
                host_path.clone()
            };
            let mut o = InstanceOptions::new(Config::from_pairs([("path", path)]));
            o.capabilities = grant.clone();
            o
        }
    };

    let sinks = three_ways(
        &host,
        "file",
        "fjord-plugin-file-sink",
        PluginKind::Sink,
        options("out.log", false),
    );
    for (i, mut sink) in sinks.into_iter().enumerate() {
        let batch = fjord_sdk::encode(&[
            Record::new(format!("line {i}a")),
            Record::new(format!("line {i}b")),
        ]);
        sink.write(&batch).unwrap();
        sink.flush().unwrap();
    }
    let written = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    assert_eq!(
        written,
        "line 0a\nline 0b\nline 1a\nline 1b\nline 2a\nline 2b\n"
    );

    let sources = three_ways(
        &host,
        "file",
        "fjord-plugin-file-source",
        PluginKind::Source,
        options("out.log", true),
    );
    let mut positions = Vec::new();
    for mut source in sources {
        let (batch, position) = source.poll(4).unwrap();
        let values: Vec<String> = fjord_sdk::decode(&batch)
            .unwrap()
            .iter()
            .map(|r| r.value_str().unwrap_or("").to_owned())
            .collect();
        assert_eq!(values, ["line 0a", "line 0b", "line 1a", "line 1b"]);
        positions.push(position);
    }
    // Built-in and native agree on the position; WebAssembly has no inode
    // (see the file-source docs) but resumes the same way.
    assert_eq!(positions[0], positions[1]);
}

fn values(out: &[u8]) -> Vec<String> {
    fjord_sdk::decode(out)
        .unwrap()
        .iter()
        .map(|r| r.value_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn processors() {
    let host = host();
    let batch = fjord_sdk::encode(&[
        Record::new(r#"{"level":"error","status":503,"msg":"card 4111 1111 1111 1111"}"#),
        Record::new(r#"{"level":"info","status":200,"msg":"ok"}"#),
        Record::new("not json"),
    ]);
    let filter = config(&[("expr", r#"level == "error" && status >= 500"#)]);
    for mut p in three_ways(
        &host,
        "filter",
        "fjord-plugin-filter",
        PluginKind::Processor,
        filter,
    ) {
        assert_eq!(values(&p.process(0, &batch).unwrap()).len(), 1);
    }
    let parse = config(&[
        ("pattern", r"card (?P<card>[\d ]+)"),
        ("field", "msg"),
        ("on_mismatch", "drop"),
    ]);
    for mut p in three_ways(
        &host,
        "regex-parse",
        "fjord-plugin-regex-parse",
        PluginKind::Processor,
        parse,
    ) {
        let out = values(&p.process(0, &batch).unwrap());
        assert_eq!(out.len(), 1);
        assert!(
            out[0].contains(r#""card":"4111 1111 1111 1111""#),
            "{out:?}"
        );
    }
    let redact = config(&[("pattern", r"\d{4}( \d{4}){3}")]);
    for mut p in three_ways(
        &host,
        "redact",
        "fjord-plugin-redact",
        PluginKind::Processor,
        redact,
    ) {
        let out = values(&p.process(0, &batch).unwrap());
        assert_eq!(out[0], r#"{"level":"error","status":503,"msg":"card ***"}"#);
        assert_eq!(out[2], "not json");
    }
}

#[test]
fn parse_processor_same_output_everywhere() {
    let host = host();
    let logs = fjord_sdk::encode(&[
        Record::new(
            r#"203.0.113.9 - - [22/Nov/2026:10:00:00 +0000] "GET /api/users?id=7 HTTP/1.1" 503 512 "-" "curl/8.4.0" 0.042"#,
        ),
        Record::new(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - An application event",
        ),
        Record::new("not a log line"),
    ]);
    let mut outputs = Vec::new();
    for mut p in three_ways(
        &host,
        "parse",
        "fjord-plugin-parse",
        PluginKind::Processor,
        config(&[("on_error", "drop")]),
    ) {
        let out = values(&p.process(0, &logs).unwrap());
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].contains(r#""status":503"#), "{out:?}");
        assert!(out[0].contains(r#""service":"api""#), "{out:?}");
        assert!(out[1].contains(r#""level":"notice""#), "{out:?}");
        outputs.push(out);
    }
    assert!(outputs.iter().all(|o| *o == outputs[0]), "{outputs:?}");
}

/// The network sinks are built-in (and native) only: WebAssembly
/// components get no sockets.
#[test]
fn network_sinks_are_built_in() {
    let host = host();
    for (name, config) in [
        ("http-sink", vec![("url", "http://127.0.0.1:9/")]),
        ("prometheus", vec![("listen", "127.0.0.1:0")]),
    ] {
        let plugin = host
            .load_kind(name, PluginKind::Sink)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut sink = host
            .instantiate(&plugin, InstanceOptions::new(Config::from_pairs(config)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sink.info().kind, PluginKind::Sink);
        // Nothing buffered: flushing touches no network.
        sink.flush().unwrap();
    }
}

#[test]
fn stdout_sink_runs_everywhere() {
    let host = host();
    for mut p in three_ways(
        &host,
        "stdout",
        "fjord-plugin-stdout",
        PluginKind::Sink,
        config(&[]),
    ) {
        p.write(&fjord_sdk::encode(&[Record::new("to standard output")]))
            .unwrap();
        p.flush().unwrap();
    }
}
