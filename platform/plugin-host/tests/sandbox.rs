//! What a WebAssembly plugin can reach: only what its capabilities grant.
//! And the component cache: a second host (a restart) does not recompile.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::{Build, build, reference};
use fjord_plugin_host::{
    Capabilities, DirGrant, ErrorKind, HostConfig, InstanceOptions, PluginHost, PluginInstance,
    WasmLimits,
};
use fjord_sdk::{Config, Record};
use std::time::Duration;

fn host() -> PluginHost {
    PluginHost::new(
        HostConfig {
            cache_dir: Some(tempfile::tempdir().unwrap().keep()),
            wasm: WasmLimits {
                deadline: Duration::from_secs(5),
                ..WasmLimits::default()
            },
            policy: common::test_policy(),
        },
        fjord_builtins::all(),
    )
    .unwrap()
}

fn probe(host: &PluginHost, mode: &str, capabilities: Capabilities) -> PluginInstance {
    let plugin = host
        .load(&reference(&build("fjord-test-misbehave", Build::Wasm)))
        .unwrap();
    let mut options = InstanceOptions::new(Config::from_pairs([("mode", mode)]));
    options.capabilities = capabilities;
    host.instantiate(&plugin, options).unwrap()
}

fn run(p: &mut PluginInstance) -> Result<String, fjord_plugin_host::PluginError> {
    let out = p.process(0, &fjord_sdk::encode(&[Record::new("boom")]))?;
    Ok(fjord_sdk::decode(&out).unwrap()[0]
        .value_str()
        .unwrap_or("")
        .to_owned())
}

#[test]
fn files_are_reachable_only_under_granted_directories() {
    let host = host();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "secret").unwrap();

    let err = run(&mut probe(
        &host,
        "read:/data/in.txt",
        Capabilities::default(),
    ))
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Failed(_)), "{err}");

    let read_only = Capabilities {
        dirs: vec![DirGrant {
            host: dir.path().to_owned(),
            guest: "/data".into(),
            read_only: true,
        }],
        ..Capabilities::default()
    };
    assert_eq!(
        run(&mut probe(&host, "read:/data/in.txt", read_only.clone())).unwrap(),
        "secret"
    );
    // Read-only means read-only.
    assert!(run(&mut probe(&host, "write:/data/out.txt", read_only)).is_err());
    assert!(!dir.path().join("out.txt").exists());

    let read_write = Capabilities {
        dirs: vec![DirGrant {
            host: dir.path().to_owned(),
            guest: "/data".into(),
            read_only: false,
        }],
        ..Capabilities::default()
    };
    run(&mut probe(&host, "write:/data/out.txt", read_write)).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "written by a plugin"
    );
}

#[test]
fn environment_variables_are_only_those_granted() {
    let host = host();
    // SAFETY-free: the host process has PATH; the plugin must not see it.
    assert_eq!(
        run(&mut probe(&host, "env:PATH", Capabilities::default())).unwrap(),
        "<unset>"
    );
    let caps = Capabilities {
        env: vec![("REGION".into(), "eu-1".into())],
        ..Capabilities::default()
    };
    assert_eq!(run(&mut probe(&host, "env:REGION", caps)).unwrap(), "eu-1");
}

#[test]
fn outbound_connections_only_to_listed_hosts() {
    let host = host();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mode = format!("connect:{addr}");

    let err = run(&mut probe(&host, &mode, Capabilities::default())).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Failed(_)), "{err}");

    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wrong = Capabilities {
        network: vec![other.local_addr().unwrap().to_string()],
        ..Capabilities::default()
    };
    assert!(run(&mut probe(&host, &mode, wrong)).is_err());

    let granted = Capabilities {
        network: vec![addr.clone()],
        ..Capabilities::default()
    };
    run(&mut probe(&host, &mode, granted)).unwrap();
    listener.set_nonblocking(false).unwrap();
    assert!(listener.accept().is_ok());
}

#[test]
fn a_restarted_host_loads_the_compiled_component_from_its_cache() {
    let cache = tempfile::tempdir().unwrap();
    let config = || HostConfig {
        cache_dir: Some(cache.path().to_owned()),
        ..HostConfig::default()
    };
    let wasm = reference(&build("fjord-test-misbehave", Build::Wasm));

    let first = PluginHost::new(config(), fjord_builtins::all())
        .unwrap()
        .load(&wasm)
        .unwrap();
    assert!(!first.compiled_from_cache());
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "one compiled component in the cache");

    let second = PluginHost::new(config(), fjord_builtins::all())
        .unwrap()
        .load(&wasm)
        .unwrap();
    assert!(second.compiled_from_cache());
    assert_eq!(second.info(), first.info());

    // A damaged cache entry is ignored and replaced, not fatal.
    let entry = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    let third = PluginHost::new(config(), fjord_builtins::all())
        .unwrap()
        .load(&wasm)
        .unwrap();
    assert!(!third.compiled_from_cache());
    assert_eq!(third.info().name, "misbehave");
}
