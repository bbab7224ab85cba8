//! Plugins through the host, built-in vs native vs WebAssembly, in one run:
//! the filter and regex-parse processors over 100-byte records; the two
//! ways of passing a batch into a component; instantiation from the cache.
//!
//! `cargo bench -p fjord-plugin-host --bench plugins`. Figures and their
//! reading are in docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;
mod inputs;

use common::{Build, build, reference};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fjord_plugin_host::{HostConfig, InstanceOptions, PluginHost};
use fjord_sdk::Config;
use inputs::{BATCH, FILTER, REGEX, instances, json_records, log_lines};
use std::time::Duration;

fn processors(c: &mut Criterion) {
    let host = PluginHost::new(
        HostConfig {
            cache_dir: Some(std::env::temp_dir().join("fjord-bench-cache")),
            policy: common::test_policy(),
            ..Default::default()
        },
        fjord_builtins::all(),
    )
    .expect("host");
    let cases = [
        (
            "filter",
            "fjord-plugin-filter",
            vec![("expr", FILTER)],
            fjord_sdk::encode(&json_records()),
        ),
        (
            "regex-parse",
            "fjord-plugin-regex-parse",
            vec![("pattern", REGEX)],
            fjord_sdk::encode(&log_lines()),
        ),
    ];
    for (name, package, config, batch) in cases {
        let mut group = c.benchmark_group(name);
        group
            .throughput(Throughput::Elements(BATCH as u64))
            .measurement_time(Duration::from_secs(4));
        let mut expected = None;
        for (origin, mut instance) in instances(&host, name, package, &config) {
            // All three builds must agree before their speed means anything.
            let out = instance.process(0, &batch).expect("process");
            assert_eq!(
                *expected.get_or_insert_with(|| out.clone()),
                out,
                "{name} {origin} differs"
            );
            group.bench_function(BenchmarkId::from_parameter(origin), |b| {
                b.iter(|| instance.process(0, &batch).expect("process"))
            });
        }
        group.finish();
    }
}

mod probe {
    wasmtime::component::bindgen!({ path: "tests/fixtures/repr-probe/wit", world: "probe" });
}

/// Typed `list<rec>` against one encoded `list<u8>`, same records, same
/// filter, same component.
fn batch_encoding(c: &mut Criterion) {
    use wasmtime::component::{Component, Linker};
    let engine = wasmtime::Engine::default();
    let wasm = std::fs::read(build("fjord-test-repr-probe", Build::Wasm)).expect("probe");
    let component = Component::new(&engine, wasm).expect("compile probe");
    let mut linker = Linker::<State>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
    let mut store = wasmtime::Store::new(&engine, State::default());
    let probe = probe::Probe::instantiate(&mut store, &component, &linker).expect("instantiate");

    let records = json_records();
    let typed: Vec<probe::Rec> = records
        .iter()
        .map(|r| probe::Rec {
            key: r.key.clone(),
            value: r.value.clone(),
            headers: vec![probe::Header {
                name: "source".into(),
                value: Some(b"web-7".to_vec()),
            }],
            timestamp: r.timestamp,
            offset: r.offset,
        })
        .collect();
    let encoded = fjord_sdk::encode(
        &records
            .iter()
            .map(|r| r.clone().with_header("source", b"web-7".to_vec()))
            .collect::<Vec<_>>(),
    );
    let kept_typed = probe
        .call_keep_typed(&mut store, &typed)
        .expect("typed")
        .len();
    let kept_encoded = fjord_sdk::validate(
        &probe
            .call_keep_encoded(&mut store, &encoded)
            .expect("encoded"),
    )
    .expect("valid");
    assert_eq!(kept_typed, kept_encoded as usize);

    let mut group = c.benchmark_group("batch-encoding");
    group
        .throughput(Throughput::Elements(BATCH as u64))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("typed-list", |b| {
        b.iter(|| probe.call_keep_typed(&mut store, &typed).expect("typed"))
    });
    group.bench_function("encoded-buffer", |b| {
        b.iter(|| {
            probe
                .call_keep_encoded(&mut store, &encoded)
                .expect("encoded")
        })
    });
    group.finish();
}

#[derive(Default)]
struct State {
    table: wasmtime::component::ResourceTable,
    wasi: Option<wasmtime_wasi::WasiCtx>,
}

impl wasmtime_wasi::WasiView for State {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let ctx = self
            .wasi
            .get_or_insert_with(|| wasmtime_wasi::WasiCtxBuilder::new().build());
        wasmtime_wasi::WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// Load (from the on-disk cache) + instantiate + init, as a restarted
/// broker does for each pipeline task.
fn instantiation(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("cache dir");
    let host = PluginHost::new(
        HostConfig {
            cache_dir: Some(cache.path().to_owned()),
            policy: common::test_policy(),
            ..Default::default()
        },
        fjord_builtins::all(),
    )
    .expect("host");
    let wasm = reference(&build("fjord-plugin-filter", Build::Wasm));
    host.load(&wasm).expect("first load compiles and caches");
    let config = Config::from_pairs([("expr", FILTER)]);
    let mut group = c.benchmark_group("instantiate");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("wasm-filter-from-cache", |b| {
        b.iter(|| {
            let plugin = host.load(&wasm).expect("load");
            assert!(plugin.compiled_from_cache());
            host.instantiate(&plugin, InstanceOptions::new(config.clone()))
                .expect("instantiate")
        })
    });
    group.finish();
}

criterion_group!(benches, processors, batch_encoding, instantiation);
criterion_main!(benches);
