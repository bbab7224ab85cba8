//! The example plugins users copy (examples/plugins) are built and run
//! through the real host: every Rust example as a WebAssembly component and
//! as a native library, with the same output; the Python example as the
//! component componentize-py makes of it.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::{Build, build, build_python, reference};
use fjord_plugin_host::{HostConfig, InstanceOptions, PluginHost, PluginInstance};
use fjord_sdk::{Config, PluginKind, Record};

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

fn options(pairs: &[(&str, &str)]) -> InstanceOptions {
    InstanceOptions::new(Config::from_pairs(pairs.iter().copied()))
}

/// The example `package` built natively and as wasm, in that order,
/// instantiated with `config`; both must describe themselves the same.
fn both_builds(
    host: &PluginHost,
    package: &str,
    kind: PluginKind,
    config: &[(&str, &str)],
) -> Vec<(Build, PluginInstance)> {
    let instances: Vec<(Build, PluginInstance)> = [Build::Native, Build::Wasm]
        .into_iter()
        .map(|how| {
            let plugin = host
                .load_kind(&reference(&build(package, how)), kind)
                .unwrap_or_else(|e| panic!("{package} {how:?}: {e}"));
            let instance = host
                .instantiate(&plugin, options(config))
                .unwrap_or_else(|e| panic!("{package} {how:?}: {e}"));
            (how, instance)
        })
        .collect();
    assert_eq!(
        instances[0].1.info(),
        instances[1].1.info(),
        "{package}: native and wasm describe themselves differently"
    );
    instances
}

/// Runs `run` on each build and checks they produced the same result.
fn same_on_both<T: PartialEq + std::fmt::Debug>(
    instances: Vec<(Build, PluginInstance)>,
    mut run: impl FnMut(Build, PluginInstance) -> T,
) -> T {
    let mut results: Vec<T> = instances
        .into_iter()
        .map(|(how, instance)| run(how, instance))
        .collect();
    assert_eq!(results[0], results[1], "native and wasm differ");
    results.remove(0)
}

fn decode(batch: &[u8]) -> Vec<Record> {
    fjord_sdk::decode(batch).unwrap()
}

fn values(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.value_str().unwrap_or("<not text>").to_owned())
        .collect()
}

fn at(ts: i64) -> Record {
    Record::new("x").with_timestamp(ts)
}

#[test]
fn window_count_processor() {
    let host = host();
    let instances = both_builds(
        &host,
        "fjord-example-window-count",
        PluginKind::Processor,
        &[("window_ms", "1000")],
    );
    assert_eq!(instances[0].1.info().name, "window-count");
    let out = same_on_both(instances, |how, mut p| {
        let batch = fjord_sdk::encode(&[at(10), at(20), at(1500)]);
        assert!(decode(&p.process(0, &batch).unwrap()).is_empty());
        // Partitions have their own state, hence their own windows.
        p.process(1, &fjord_sdk::encode(&[at(30)])).unwrap();

        // A new instance on the same state, as after a restart: the counts
        // are in the host's state store, not in the old instance.
        let plugin = host
            .load(&reference(&build("fjord-example-window-count", how)))
            .unwrap();
        let mut o = options(&[("window_ms", "1000")]);
        o.services = Some(p.services().clone());
        let mut restarted = host.instantiate(&plugin, o).unwrap();
        restarted.process(0, &fjord_sdk::encode(&[at(40)])).unwrap();

        let mut emitted = Vec::new();
        for (partition, now) in [(0, 999), (0, 1000), (1, 1000), (0, 3000), (0, 9000)] {
            let out = decode(&restarted.on_timer(partition, now).unwrap());
            emitted.push((partition, now, values(&out)));
        }
        // A record for a window already emitted is late: dropped, counted.
        restarted.process(0, &fjord_sdk::encode(&[at(50)])).unwrap();
        let late = restarted
            .services()
            .metrics
            .counter("window-count", "late_records");
        (emitted, late)
    });
    assert_eq!(
        out,
        (
            vec![
                (0, 999, vec![]),
                (0, 1000, vec![r#"{"window_start":0,"count":3}"#.to_owned()]),
                (1, 1000, vec![r#"{"window_start":0,"count":1}"#.to_owned()]),
                (
                    0,
                    3000,
                    vec![r#"{"window_start":1000,"count":1}"#.to_owned()]
                ),
                (0, 9000, vec![]),
            ],
            1
        )
    );
}

#[test]
fn window_count_refuses_a_bad_window() {
    let host = host();
    for how in [Build::Native, Build::Wasm] {
        let plugin = host
            .load(&reference(&build("fjord-example-window-count", how)))
            .unwrap();
        let err = host
            .instantiate(&plugin, options(&[("window_ms", "-5")]))
            .unwrap_err();
        assert!(err.to_string().contains("window_ms"), "{how:?}: {err}");
    }
}

#[test]
fn counter_source() {
    let host = host();
    let instances = both_builds(
        &host,
        "fjord-example-counter",
        PluginKind::Source,
        &[("per_poll", "3"), ("limit", "5")],
    );
    let polls = same_on_both(instances, |how, mut s| {
        let (batch, position) = s.poll(10).unwrap();
        let first = (values(&decode(&batch)), position.clone());

        // Resumed from the stored position by a new instance.
        let plugin = host
            .load(&reference(&build("fjord-example-counter", how)))
            .unwrap();
        let mut o = options(&[("per_poll", "3"), ("limit", "5")]);
        o.position = Some(position);
        let mut resumed = host.instantiate(&plugin, o).unwrap();
        let (batch, position) = resumed.poll(10).unwrap();
        let second = (values(&decode(&batch)), position);
        let (batch, position) = resumed.poll(10).unwrap();
        let third = (values(&decode(&batch)), position);
        [first, second, third]
    });
    assert_eq!(
        polls,
        [
            (vec!["0".into(), "1".into(), "2".into()], b"3".to_vec()),
            (vec!["3".into(), "4".into()], b"5".to_vec()),
            (vec![], b"5".to_vec()),
        ]
    );
}

#[test]
fn log_sink() {
    let host = host();
    let instances = both_builds(&host, "fjord-example-log-sink", PluginKind::Sink, &[]);
    let counts = same_on_both(instances, |_, mut s| {
        let batch = fjord_sdk::encode(&[
            Record::new("hello").with_key("k"),
            Record::new(vec![0xff, 0x00]),
        ]);
        s.write(&batch).unwrap();
        s.flush().unwrap();
        let m = &s.services().metrics;
        (
            m.counter("log-sink", "records"),
            m.counter("log-sink", "bytes"),
        )
    });
    assert_eq!(counts, (2, 1 + 5 + 2));
}

#[test]
fn first_byte_partitioner() {
    let host = host();
    let instances = both_builds(
        &host,
        "fjord-example-first-byte",
        PluginKind::Partitioner,
        &[],
    );
    let keys: [Option<&[u8]>; 5] = [Some(b"a"), Some(b"b-key"), Some(&[7, 1]), Some(b""), None];
    let partitions = same_on_both(instances, |_, mut p| {
        keys.iter()
            .map(|k| p.partition(*k, Some(b"v"), 4).unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        partitions,
        [u32::from(b'a') % 4, u32::from(b'b') % 4, 3, 0, 0]
    );
}

#[test]
fn hex_serializer() {
    let host = host();
    let instances = both_builds(&host, "fjord-example-hex", PluginKind::Serializer, &[]);
    let results = same_on_both(instances, |_, mut s| {
        let stored = s.serialize(b"48 69 ff").unwrap();
        let shown = s.deserialize(&stored).unwrap();
        let err = s.serialize(b"4g").unwrap_err().to_string();
        (stored, shown, err)
    });
    assert_eq!(results.0, [0x48, 0x69, 0xff]);
    assert_eq!(results.1, b"4869ff");
    assert!(
        results.2.contains("`g` is not a hexadecimal digit"),
        "{}",
        results.2
    );
}

#[test]
fn python_uppercase_processor() {
    let path = build_python("uppercase");
    let host = host();
    let plugin = host
        .load_kind(&reference(&path), PluginKind::Processor)
        .unwrap();
    let info = plugin.info();
    assert_eq!(info.name, "uppercase");
    assert_eq!(info.kind, PluginKind::Processor);
    assert!(!info.description.is_empty());
    assert_eq!(
        info.config_keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>(),
        ["prefix"]
    );

    let mut p = host
        .instantiate(&plugin, options(&[("prefix", "> ")]))
        .unwrap();
    let input = [
        Record::new("hello, wörld")
            .with_key("k1")
            .with_header("h", "v")
            .with_timestamp(42),
        Record {
            key: Some(b"no value".to_vec()),
            ..Record::default()
        },
        Record::new(vec![0xff, 0xfe]).to_topic("elsewhere"),
    ];
    let out = decode(&p.process(3, &fjord_sdk::encode(&input)).unwrap());
    assert_eq!(out.len(), 3);
    // Only the values change: key, headers, timestamp and topic are kept,
    // which checks the Python batch encoder field by field.
    let mut expected = input.to_vec();
    expected[0].value = Some("> HELLO, WÖRLD".as_bytes().to_vec());
    assert_eq!(out, expected);
    assert_eq!(p.services().metrics.counter("uppercase", "uppercased"), 1);

    assert!(decode(&p.on_timer(3, 1_000).unwrap()).is_empty());
    let err = p.process(0, b"\x05\0\0\0junk").unwrap_err();
    assert!(err.to_string().contains("malformed batch"), "{err}");

    let err = host
        .instantiate(&plugin, options(&[("prefx", "typo")]))
        .unwrap_err();
    assert!(
        err.to_string().contains("unknown config key `prefx`"),
        "{err}"
    );
}
