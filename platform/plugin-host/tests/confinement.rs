//! The operator's policy: a native library loads only from an allowed
//! directory and only when it exports the ABI (its constructor never runs
//! otherwise), built-in connectors reach only allowed files and
//! addresses, and WebAssembly grants stay inside the same allow-list.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::{Path, PathBuf};

use common::{Build, build, build_with, reference};
use fjord_plugin_host::{
    Capabilities, DirGrant, ErrorKind, HostConfig, HostPolicy, InstanceOptions, PluginError,
    PluginHost,
};
use fjord_sdk::{Config, PluginKind, Record};

fn host(policy: HostPolicy) -> PluginHost {
    PluginHost::new(
        HostConfig {
            cache_dir: Some(tempfile::tempdir().unwrap().keep()),
            policy,
            ..HostConfig::default()
        },
        fjord_builtins::all(),
    )
    .unwrap()
}

fn refusal(e: &PluginError) -> &str {
    match &e.kind {
        ErrorKind::NotAllowed { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?} ({e})"),
    }
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent().unwrap().to_owned()
}

/// One test, as the marker variable is the process's: every step that must
/// not load the library runs before the one that does.
#[test]
fn a_native_library_is_loaded_only_from_an_allowed_directory_and_with_the_abi() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("constructor-ran");
    // SAFETY: set before anything in this test binary reads the environment
    // concurrently that could observe a torn value (Rust's own env access
    // is locked); the only reader is the library's constructor.
    unsafe { std::env::set_var("FJORD_TEST_CONSTRUCTOR_MARKER", &marker) };
    let no_abi = build("fjord-test-constructor", Build::Native);
    let with_abi = build_with("fjord-test-constructor", Build::Native, &["abi"]);
    assert_ne!(dir_of(&no_abi), dir_of(&with_abi));
    let nothing = Config::default();
    let none = Capabilities::default();

    // No directory allowed (the default): refused, by check and by load.
    let default = host(HostPolicy::default());
    for lib in [&no_abi, &with_abi] {
        let r = reference(lib);
        let e = default
            .check(&r, PluginKind::Processor, &nothing, &none)
            .unwrap_err();
        assert!(refusal(&e).contains("outside plugin.native.dirs"), "{e}");
        let e = default.load(&r).unwrap_err();
        assert!(
            refusal(&e).contains("add its directory to plugin.native.dirs"),
            "{e}"
        );
    }

    // Through `..` or a symbolic link from an allowed directory: the real
    // path is what counts.
    let allowed = tempfile::tempdir().unwrap();
    let link = allowed.path().join("libplugin.so");
    std::os::unix::fs::symlink(&with_abi, &link).unwrap();
    let dotted = allowed.path().join(pathdiff(allowed.path(), &with_abi));
    let linked = host(HostPolicy {
        native_dirs: vec![allowed.path().to_owned()],
        ..HostPolicy::default()
    });
    for r in [reference(&link), reference(&dotted)] {
        let e = linked.load(&r).unwrap_err();
        assert!(
            refusal(&e).contains("outside plugin.native.dirs"),
            "{r}: {e}"
        );
    }

    // Its directory allowed but no ABI symbol: refused from the file alone.
    let no_abi_dir = host(HostPolicy {
        native_dirs: vec![dir_of(&no_abi)],
        ..HostPolicy::default()
    });
    let e = no_abi_dir
        .check(&reference(&no_abi), PluginKind::Processor, &nothing, &none)
        .unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::NotAPlugin(m) if m.contains("fjord_plugin_abi_version")),
        "{e}"
    );
    let e = no_abi_dir.load(&reference(&no_abi)).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NotAPlugin(_)), "{e}");
    assert!(!marker.exists(), "a refused library's constructor ran");

    // Allowed and a plugin: it loads (its constructor runs) and works.
    let allowed = host(HostPolicy {
        native_dirs: vec![dir_of(&with_abi)],
        ..HostPolicy::default()
    });
    allowed
        .check(
            &reference(&with_abi),
            PluginKind::Processor,
            &nothing,
            &none,
        )
        .unwrap();
    assert!(!marker.exists(), "checking loaded the library");
    let plugin = allowed.load(&reference(&with_abi)).unwrap();
    assert!(marker.exists());
    let mut instance = allowed
        .instantiate(&plugin, InstanceOptions::new(Config::default()))
        .unwrap();
    let out = instance
        .process(0, &fjord_sdk::encode(&[Record::new("through")]))
        .unwrap();
    assert_eq!(
        fjord_sdk::decode(&out).unwrap()[0].value_str(),
        Some("through")
    );
}

/// `target` relative to `from`, through `..`.
fn pathdiff(from: &Path, target: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for _ in from.components().skip(1) {
        out.push("..");
    }
    out.join(target.strip_prefix("/").unwrap())
}

fn builtin_options(pairs: &[(&str, &str)]) -> InstanceOptions {
    InstanceOptions::new(Config::from_pairs(pairs.iter().copied()))
}

#[test]
fn file_connectors_reach_only_allowed_paths() {
    let data = tempfile::tempdir().unwrap();
    let pipelines = data.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let outside = data.path().join("authorized_keys");
    let host = host(HostPolicy {
        paths: vec![pipelines.clone()],
        ..HostPolicy::default()
    });
    let sink = host.load_kind("file", PluginKind::Sink).unwrap();
    let source = host.load_kind("file", PluginKind::Source).unwrap();

    let e = host
        .instantiate(
            &sink,
            builtin_options(&[("path", outside.to_str().unwrap())]),
        )
        .unwrap_err();
    let reason = refusal(&e);
    assert!(
        reason.contains("file sink `path`")
            && reason.contains("is outside pipeline.allowed.paths")
            && reason.contains("add its directory to pipeline.allowed.paths"),
        "{reason}"
    );
    assert!(!outside.exists(), "the refused sink created its file");
    // The same through `..`, and checked without instantiating.
    let dotted = pipelines.join("../authorized_keys");
    let e = host
        .check(
            "file",
            PluginKind::Sink,
            &Config::from_pairs([("path", dotted.to_str().unwrap())]),
            &Capabilities::default(),
        )
        .unwrap_err();
    assert!(matches!(&e.kind, ErrorKind::NotAllowed { field, .. } if field == "config.path"));

    std::fs::write(&outside, "secret\n").unwrap();
    let e = host
        .instantiate(
            &source,
            builtin_options(&[("path", outside.to_str().unwrap())]),
        )
        .unwrap_err();
    assert!(refusal(&e).contains("file source `path`"), "{e}");

    let inside = pipelines.join("out.log");
    let mut writer = host
        .instantiate(
            &sink,
            builtin_options(&[("path", inside.to_str().unwrap())]),
        )
        .unwrap();
    writer
        .write(&fjord_sdk::encode(&[Record::new("a line")]))
        .unwrap();
    writer.flush().unwrap();
    let mut reader = host
        .instantiate(
            &source,
            builtin_options(&[("path", inside.to_str().unwrap())]),
        )
        .unwrap();
    let (batch, _) = reader.poll(10).unwrap();
    assert_eq!(
        fjord_sdk::decode(&batch).unwrap()[0].value_str(),
        Some("a line")
    );
}

#[test]
fn listeners_and_destinations_are_loopback_unless_allowed() {
    let host = host(HostPolicy::default());
    let http = host.load_kind("http", PluginKind::Source).unwrap();
    let e = host
        .instantiate(&http, builtin_options(&[("listen", "0.0.0.0:0")]))
        .unwrap_err();
    assert!(
        refusal(&e).contains("is outside pipeline.allowed.listen"),
        "{e}"
    );
    host.instantiate(&http, builtin_options(&[("listen", "127.0.0.1:0")]))
        .unwrap();

    let syslog = host.load_kind("syslog", PluginKind::Source).unwrap();
    let e = host
        .instantiate(&syslog, builtin_options(&[("listen", "0.0.0.0:0")]))
        .unwrap_err();
    assert!(refusal(&e).contains("pipeline.allowed.listen"), "{e}");

    // The default listen address counts when the key is left out.
    let prometheus = host.load_kind("prometheus", PluginKind::Sink).unwrap();
    let e = host
        .instantiate(
            &prometheus,
            builtin_options(&[("listen", "127.0.0.1:0"), ("bound_file", "/tmp/x")]),
        )
        .unwrap_err();
    assert!(refusal(&e).contains("prometheus sink `bound_file`"), "{e}");

    let sink = host.load_kind("http", PluginKind::Sink).unwrap();
    let e = host
        .instantiate(
            &sink,
            builtin_options(&[("url", "http://10.1.2.3:8080/in")]),
        )
        .unwrap_err();
    assert!(
        refusal(&e).contains("is outside pipeline.allowed.connect"),
        "{e}"
    );
    host.instantiate(&sink, builtin_options(&[("url", "http://localhost:9/in")]))
        .unwrap();

    let open = self::host(HostPolicy {
        listen: vec!["0.0.0.0".into()],
        connect: vec!["10.1.2.3:8080".into()],
        ..HostPolicy::default()
    });
    open.instantiate(&http, builtin_options(&[("listen", "0.0.0.0:0")]))
        .unwrap();
    open.instantiate(
        &sink,
        builtin_options(&[("url", "http://10.1.2.3:8080/in")]),
    )
    .unwrap();
}

#[test]
fn webassembly_grants_stay_inside_the_allow_lists() {
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let host = host(HostPolicy {
        paths: vec![allowed.path().to_owned()],
        ..HostPolicy::default()
    });
    let plugin = host
        .load(&reference(&build("fjord-test-misbehave", Build::Wasm)))
        .unwrap();
    let grant = |dir: &Path, network: &[&str]| {
        let mut o = InstanceOptions::new(Config::default());
        o.capabilities = Capabilities {
            dirs: vec![DirGrant {
                host: dir.to_owned(),
                guest: "/data".into(),
                read_only: true,
            }],
            network: network.iter().map(|s| s.to_string()).collect(),
            ..Capabilities::default()
        };
        o
    };
    let e = host
        .instantiate(&plugin, grant(elsewhere.path(), &[]))
        .unwrap_err();
    assert!(
        matches!(&e.kind, ErrorKind::NotAllowed { field, reason }
            if field == "capabilities.dirs[0].host" && reason.contains("pipeline.allowed.paths")),
        "{e}"
    );
    let e = host
        .instantiate(&plugin, grant(allowed.path(), &["192.0.2.1:443"]))
        .unwrap_err();
    assert!(refusal(&e).contains("pipeline.allowed.connect"), "{e}");
    host.instantiate(&plugin, grant(allowed.path(), &["127.0.0.1:9"]))
        .unwrap();
}
