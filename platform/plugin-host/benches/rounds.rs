//! The filter processor built in, native and WebAssembly, timed in
//! alternating rounds in one process: `cargo bench -p fjord-plugin-host
//! --bench rounds [-- ROUNDS]`.
//!
//! Criterion (`--bench plugins`) measures the three one after another, so
//! on a shared 2-core machine a burst of outside load lands on one of them
//! and moves the ratio. Here each round runs 100 batches of each, back to
//! back, and the wasm ÷ native ratio is taken per round: load that lasts
//! longer than a round weighs on both sides of it. Prints each origin's
//! fastest and median round and the median ratio (docs/benchmarks.md).

#[path = "../tests/common/mod.rs"]
mod common;
mod inputs;

use fjord_plugin_host::{HostConfig, PluginHost};
use inputs::{BATCH, FILTER, instances, json_records};
use std::time::Instant;

const BATCHES_PER_ROUND: usize = 100;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(41);
    let host = PluginHost::new(
        HostConfig {
            cache_dir: Some(std::env::temp_dir().join("fjord-bench-cache")),
            policy: common::test_policy(),
            ..Default::default()
        },
        fjord_builtins::all(),
    )
    .expect("host");
    let mut runs = instances(&host, "filter", "fjord-plugin-filter", &[("expr", FILTER)]);
    let batch = fjord_sdk::encode(&json_records());
    let expected = runs[0].1.process(0, &batch).expect("process");
    for (origin, instance) in &mut runs {
        assert_eq!(
            instance.process(0, &batch).expect("process"),
            expected,
            "{origin} differs"
        );
    }

    // ns per record, per origin, per round.
    let mut times = vec![Vec::with_capacity(rounds); runs.len()];
    for _ in 0..rounds {
        for ((_, instance), t) in runs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            for _ in 0..BATCHES_PER_ROUND {
                std::hint::black_box(instance.process(0, &batch).expect("process"));
            }
            t.push(start.elapsed().as_nanos() as f64 / (BATCHES_PER_ROUND * BATCH) as f64);
        }
    }
    println!("filter, {rounds} rounds of {BATCHES_PER_ROUND} batches of {BATCH} records each:");
    for ((origin, _), t) in runs.iter().zip(&times) {
        let fastest = t.iter().copied().fold(f64::INFINITY, f64::min);
        let mid = median(t.clone());
        println!(
            "  {origin:>8}: median {mid:6.1} ns/record ({:.2} M rec/s), fastest {fastest:6.1} ns ({:.2} M rec/s)",
            1e3 / mid,
            1e3 / fastest
        );
    }
    let index = |name: &str| runs.iter().position(|(o, _)| *o == name).expect(name);
    let (wasm, native) = (&times[index("wasm")], &times[index("native")]);
    let ratios = wasm.iter().zip(native).map(|(w, n)| w / n).collect();
    println!(
        "  wasm ÷ native, median of the per-round ratios: {:.2}",
        median(ratios)
    );
}
