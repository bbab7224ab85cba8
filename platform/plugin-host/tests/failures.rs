//! A plugin that traps, panics, loops, exhausts its memory, returns an
//! error or malformed output, or is not a plugin at all, fails one call or
//! one load with a typed error naming it — and the host carries on, with a
//! fresh instance where the old one cannot be trusted.

mod common;

use common::{Build, build, build_with, reference};
use fjord_plugin_host::{
    ErrorKind, HostConfig, InstanceOptions, PluginHost, PluginInstance, WasmLimits,
};
use fjord_sdk::{Config, PluginKind, Record};
use std::path::Path;
use std::time::{Duration, Instant};

fn host(deadline: Duration) -> PluginHost {
    host_allowing(deadline, &[])
}

/// A host that also loads native libraries from `native_dirs`.
fn host_allowing(deadline: Duration, native_dirs: &[&Path]) -> PluginHost {
    let cache = tempfile::tempdir().expect("tempdir").keep();
    let mut policy = common::test_policy();
    policy
        .native_dirs
        .extend(native_dirs.iter().map(|d| d.to_path_buf()));
    PluginHost::new(
        HostConfig {
            cache_dir: Some(cache),
            wasm: WasmLimits {
                memory_bytes: 32 << 20,
                deadline,
                max_instances: 16,
            },
            policy,
        },
        fjord_builtins::all(),
    )
    .expect("host")
}

fn misbehave(host: &PluginHost, how: Build, mode: &str) -> PluginInstance {
    let plugin = host
        .load(&reference(&build("fjord-test-misbehave", how)))
        .expect("load");
    host.instantiate(
        &plugin,
        InstanceOptions::new(Config::from_pairs([("mode", mode)])),
    )
    .expect("instantiate")
}

fn batch(values: &[&str]) -> Vec<u8> {
    fjord_sdk::encode(&values.iter().map(|v| Record::new(*v)).collect::<Vec<_>>())
}

fn values(out: &[u8]) -> Vec<String> {
    fjord_sdk::decode(out)
        .expect("valid batch")
        .iter()
        .map(|r| r.value_str().unwrap_or("").to_owned())
        .collect()
}

/// After a failure the same instance handle works again, and state (kept
/// by the host, not the instance) carries on.
fn still_works(instance: &mut PluginInstance, expected_seen: &str) {
    let out = instance
        .process(0, &batch(&["fine"]))
        .expect("a later call succeeds");
    assert_eq!(values(&out), [expected_seen]);
}

#[test]
fn wasm_infinite_loop_hits_the_deadline_and_the_instance_is_replaced() {
    let host = host(Duration::from_millis(200));
    let mut p = misbehave(&host, Build::Wasm, "loop");
    still_works(&mut p, "1");
    let started = Instant::now();
    let err = p.process(0, &batch(&["boom"])).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Deadline(Duration::from_millis(200)),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("misbehave"), "{err}");
    still_works(&mut p, "2");
}

#[test]
fn wasm_allocation_bomb_hits_the_memory_limit() {
    let host = host(Duration::from_secs(5));
    let mut p = misbehave(&host, Build::Wasm, "alloc");
    let err = p.process(0, &batch(&["boom"])).unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfMemory(32 << 20), "{err}");
    still_works(&mut p, "1");
}

#[test]
fn wasm_panic_is_a_trap_with_the_panic_message() {
    let host = host(Duration::from_secs(5));
    let mut p = misbehave(&host, Build::Wasm, "panic");
    let err = p.process(0, &batch(&["boom"])).unwrap_err();
    match &err.kind {
        ErrorKind::Trap(msg) => assert!(msg.contains("boom from the misbehave plugin"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(err.recycled_instance());
    still_works(&mut p, "1");
}

#[test]
fn native_panic_is_caught_at_the_abi() {
    let host = host(Duration::from_secs(5));
    let mut p = misbehave(&host, Build::Native, "panic");
    still_works(&mut p, "1");
    let err = p.process(0, &batch(&["boom"])).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::Panic("boom from the misbehave plugin".into()),
        "{err}"
    );
    still_works(&mut p, "2");
}

#[test]
fn a_returned_error_fails_the_call_and_keeps_the_instance() {
    let host = host(Duration::from_secs(5));
    for how in [Build::Wasm, Build::Native] {
        let mut p = misbehave(&host, how, "error");
        let err = p.process(0, &batch(&["fine", "boom"])).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Failed("this record is rejected".into()),
            "{how:?}"
        );
        assert!(!err.recycled_instance());
        // The first record of the failed batch was counted before the error.
        still_works(&mut p, "2");
    }
}

#[test]
fn init_errors_name_the_plugin_and_the_reason() {
    let host = host(Duration::from_secs(5));
    for how in [Build::Wasm, Build::Native] {
        let plugin = host
            .load(&reference(&build("fjord-test-misbehave", how)))
            .unwrap();
        let err = host
            .instantiate(
                &plugin,
                InstanceOptions::new(Config::from_pairs([("mode", "init-error")])),
            )
            .unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Init("refusing to start: mode is init-error".into()),
            "{how:?}"
        );
        assert_eq!(err.plugin, "misbehave");
    }
}

#[test]
fn wrong_abi_version_is_refused_before_any_other_call() {
    let host = host(Duration::from_secs(5));
    let lib = build_with("fjord-test-raw-abi", Build::Native, &["wrong-abi"]);
    let err = host.load(&reference(&lib)).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::AbiMismatch {
            found: 999,
            expected: 1
        }
    );
}

#[test]
fn malformed_output_is_refused() {
    let host = host(Duration::from_secs(5));
    let plugin = host
        .load(&reference(&build("fjord-test-raw-abi", Build::Native)))
        .unwrap();
    let mut p = host
        .instantiate(&plugin, InstanceOptions::new(Config::default()))
        .unwrap();
    let err = p.process(0, &batch(&["x"])).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::MalformedOutput(_)), "{err}");
}

#[test]
fn files_that_are_not_plugins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Where the libraries below are, so that what refuses them is their
    // content, not where they are.
    let host = host_allowing(
        Duration::from_secs(5),
        &[dir.path(), Path::new("/lib"), Path::new("/usr/lib")],
    );
    // An empty core module: valid WebAssembly, not a component.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let err = host.load(&reference(&core)).unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::NotAPlugin(m) if m.contains("core WebAssembly module")),
        "{err}"
    );
    // A truncated component.
    let full = std::fs::read(build("fjord-test-misbehave", Build::Wasm)).unwrap();
    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    assert!(matches!(
        host.load(&reference(&truncated)).unwrap_err().kind,
        ErrorKind::NotAPlugin(_)
    ));
    // A native library that is not a library at all.
    let fake = dir.path().join("libfake.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    assert!(matches!(
        host.load(&reference(&fake)).unwrap_err().kind,
        ErrorKind::NotAPlugin(_)
    ));
    // A real shared library without the ABI.
    let libc = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    if let Some(libm) = libc {
        let err = host.load(libm).unwrap_err();
        assert!(
            matches!(&err.kind, ErrorKind::NotAPlugin(m) if m.contains("fjord_plugin_abi_version")),
            "{err}"
        );
    }
    // Missing file, unknown built-in.
    assert!(matches!(
        host.load("/nonexistent/x.wasm").unwrap_err().kind,
        ErrorKind::NotFound(_)
    ));
    let err = host.load("no-such-builtin").unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::NotFound(m) if m.contains("stdout")),
        "{err}"
    );
}

#[test]
fn calling_the_wrong_kind_is_an_error() {
    let host = host(Duration::from_secs(5));
    let mut p = misbehave(&host, Build::Wasm, "ok");
    let err = p.poll(10).unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::WrongKind {
            expected: PluginKind::Source,
            found: PluginKind::Processor
        }
    );
}
