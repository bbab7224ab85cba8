//! What the validator of produced batches costs an append, measured
//! against the append without it in the same run: `Log::append` (a
//! producer's batch: header, CRC, then every record checked, decompressed
//! when compressed) next to `Log::append_as_follower` of the same bytes
//! (header, sizes and CRC only: the checks a producer's append made before
//! the validator existed).
//!
//! Batches of 100-byte values (`fjord bench produce`'s record size), 10
//! and 1000 records, uncompressed and LZ4 (librdkafka's common codec).
//! Run with `cargo bench -p fjord-log --bench validate`; figures in
//! `docs/benchmarks.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use fjord_log::{Log, LogConfig};
use kafka_protocol::records::Compression;

/// A log is started afresh past this size, so the page cache stays warm.
const RESET_BYTES: u64 = 256 << 20;

fn fresh_log(dir: &Path) -> Log {
    if dir.exists() {
        std::fs::remove_dir_all(dir).expect("remove bench dir");
    }
    Log::open(dir, LogConfig::default()).expect("open log")
}

/// Times `append` of a fresh copy of `batch` per iteration (an append
/// patches offsets in place), into a log in `dir`.
fn timed_appends(
    b: &mut criterion::Bencher<'_>,
    dir: &Path,
    batch: &[u8],
    append: impl Fn(&Log, &mut [u8]),
) {
    let mut log = fresh_log(dir);
    let mut buf = batch.to_vec();
    b.iter_custom(|iters| {
        if log.size_bytes() > RESET_BYTES {
            log = fresh_log(dir);
        }
        let start = Instant::now();
        for _ in 0..iters {
            buf.copy_from_slice(batch);
            append(&log, &mut buf);
        }
        start.elapsed()
    });
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let root = tempfile::Builder::new()
        .prefix("fjord-validate-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("bench dir under the target dir");
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        for records in [10, 1000] {
            let batch = common::rich_batch(records, 100, 1_700_000_000_000, compression, 7);
            let mut g = c.benchmark_group(format!("validate_100B_{name}_{records}"));
            g.throughput(Throughput::Bytes(batch.len() as u64));
            let dir = root.path().join(format!("{name}-{records}"));
            g.bench_function("leader_append_validated", |b| {
                timed_appends(b, &dir, &batch, |log, buf| {
                    black_box(log.append(buf, 0).expect("append"));
                })
            });
            g.bench_function("follower_append_crc_only", |b| {
                timed_appends(b, &dir, &batch, |log, buf| {
                    let end = log.log_end_offset();
                    buf[..8].copy_from_slice(&end.to_be_bytes());
                    black_box(log.append_as_follower(buf).expect("append"));
                })
            });
            g.finish();
        }
    }
}
