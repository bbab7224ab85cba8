//! Throughput of the log cleaner, in MB/s of input (the bytes of the
//! segments it cleans), next to a baseline measured in the same run:
//! reading and CRC-32C checking the same bytes.
//!
//! The input: 64 MiB of keyed updates (batches of 10 records with 100-byte
//! values, 10 000 keys, uncompressed, and the same with lz4) rolled into
//! 8 MiB segments. Each iteration cleans a fresh copy of that log, fully
//! (map over the whole dirty section, rewrite of every closed segment,
//! swap and checkpoint); the copy is made outside the timing.
//!
//! Then `produce_p99_while_cleaning` (printed, not a criterion group):
//! p99 latency of 1 KiB `Log::append`s to another log (page cache), paced
//! at one per 100 µs for 2 s, without and then with a thread cleaning
//! copies of the uncompressed input back to back, in the same run: once
//! with no I/O limit and once with `log.cleaner.io.max.bytes.per.second`
//! at 100 MiB/s (read plus written).
//!
//! Run with `cargo bench -p fjord-log --bench cleaner`.
#![allow(
    clippy::unwrap_used,
    reason = "bench helpers: a failed setup panics with its location"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use fjord_log::{CleanerConfig, CleanupPolicy, Log, LogConfig};
use kafka_protocol::records::Compression;

const INPUT_BYTES: u64 = 64 << 20;
const KEYS: usize = 10_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 8 << 20,
        cleanup_policy: CleanupPolicy::Compact,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Writes the input log into `dir`; returns the bytes of its closed segments.
fn write_input(dir: &Path, compression: Compression) -> u64 {
    let log = Log::open(dir, config()).expect("open");
    let mut n = 0usize;
    let value = vec![b'v'; 100];
    while log.size_bytes() < INPUT_BYTES {
        let records: Vec<_> = (0..10)
            .map(|i| {
                let key = format!("key-{:06}", (n + i) * 7919 % KEYS);
                common::record(Some(key.as_bytes()), &value, n as i64)
            })
            .collect();
        log.append(&mut common::encode(&records, compression), 0)
            .expect("append");
        n += 10;
    }
    log.close().expect("close");
    let active = *log.segment_base_offsets().last().unwrap();
    drop(log);
    common::segment_files(dir)
        .iter()
        .filter(|p| !p.to_string_lossy().contains(&format!("{active:020}")))
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

fn copy(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let root = tempfile::Builder::new()
        .prefix("fjord-cleaner-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("bench dir");
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let input = root.path().join(format!("input-{name}"));
        let bytes = write_input(&input, compression);
        let work = root.path().join("work");
        let mut g = c.benchmark_group(format!("clean_64MiB_{name}"));
        g.throughput(Throughput::Bytes(bytes))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(10));
        g.bench_function("log_clean", |b| {
            b.iter_batched(
                || {
                    copy(&input, &work);
                    Log::open(&work, config()).expect("open copy")
                },
                |log| {
                    let stats = log
                        .clean_until(0, &CleanerConfig::default(), None)
                        .expect("clean");
                    assert!(stats.records_removed > 0);
                    log
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("baseline_read_crc32c", |b| {
            let files = common::segment_files(&input);
            b.iter(|| {
                let mut crc = 0;
                for file in &files {
                    crc = crc32c::crc32c_append(crc, &fs::read(file).unwrap());
                }
                crc
            })
        });
        g.finish();
    }
    c.final_summary();
    produce_p99_while_cleaning(root.path(), None);
    produce_p99_while_cleaning(root.path(), Some(100.0 * 1024.0 * 1024.0));
}

fn p99_of_appends(log: &Log) -> Duration {
    let batch = common::batch(10, 90, 0, Compression::None);
    let mut latencies = Vec::new();
    let start = std::time::Instant::now();
    let mut next = start;
    while start.elapsed() < Duration::from_secs(2) {
        let mut bytes = batch.clone();
        let t = std::time::Instant::now();
        log.append(&mut bytes, 0).expect("append");
        latencies.push(t.elapsed());
        next += Duration::from_micros(100);
        if let Some(wait) = next.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    latencies.sort();
    latencies[latencies.len() * 99 / 100]
}

fn produce_p99_while_cleaning(root: &Path, io_max_bytes_per_second: Option<f64>) {
    let cleaner_config = CleanerConfig {
        io_max_bytes_per_second,
        ..CleanerConfig::default()
    };
    let input = root.join("input-none");
    let _ = fs::remove_dir_all(root.join("other"));
    let other = Log::open(root.join("other"), LogConfig::default()).expect("open");
    let quiet = p99_of_appends(&other);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cleaner = {
        let stop = std::sync::Arc::clone(&stop);
        let input = input.clone();
        let work = root.join("work-p99");
        std::thread::spawn(move || {
            let mut cleaned = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                copy(&input, &work);
                let log = Log::open(&work, config()).expect("open copy");
                let stats = log.clean_until(0, &cleaner_config, None).expect("clean");
                cleaned += stats.bytes_read;
            }
            cleaned
        })
    };
    let busy = p99_of_appends(&other);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let cleaned = cleaner.join().expect("cleaner thread");
    println!(
        "produce_p99_while_cleaning (cleaner I/O limit {}): p99 append {quiet:?} without the \
         cleaner, {busy:?} with it ({:.2}x; the cleaner read {} MiB meanwhile)",
        io_max_bytes_per_second.map_or("none".to_string(), |r| format!(
            "{:.0} MiB/s",
            r / 1048576.0
        )),
        busy.as_secs_f64() / quiet.as_secs_f64(),
        cleaned >> 20
    );
}
