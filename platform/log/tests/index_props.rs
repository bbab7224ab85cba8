//! Property tests of the offset and time indexes: lookups agree with a
//! linear scan of everything appended, also after the index files were
//! deleted or damaged and rebuilt on open.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;

use common::{CODECS, Rng};
use fjord_log::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, Log, LogConfig, MAX_TIMESTAMP};
use proptest::prelude::*;

/// The model: every appended batch as (base offset, record timestamps).
type Model = Vec<(i64, Vec<i64>)>;

fn batch_of(log: &Log, offset: i64) -> (i64, i64) {
    let read = log.read(offset, 1, i64::MAX).unwrap();
    let bytes = read.slice.expect("a batch").bytes().unwrap();
    let ranges = common::check_batches(&bytes);
    assert_eq!(
        ranges.len(),
        1,
        "max_bytes 1 serves exactly the first batch"
    );
    ranges[0]
}

/// Linear scan: first record with timestamp >= t.
fn scan_time(model: &Model, t: i64) -> Option<(i64, i64)> {
    model
        .iter()
        .flat_map(|(base, ts)| {
            ts.iter()
                .enumerate()
                .map(move |(i, &t)| (base + i as i64, t))
        })
        .find(|&(_, ts)| ts >= t)
}

fn check(log: &Log, model: &Model, probes: &[i64], when: &str) {
    let end = model.last().map_or(0, |(b, ts)| b + ts.len() as i64);
    assert_eq!(log.log_end_offset(), end, "{when}");
    for (base, ts) in model {
        let last = base + ts.len() as i64 - 1;
        for o in [*base, last, (base + last) / 2] {
            assert_eq!(batch_of(log, o), (*base, last), "{when}: read at {o}");
        }
    }
    for &o in probes {
        let o = o.rem_euclid(end.max(1));
        let want = model
            .iter()
            .map(|(b, ts)| (*b, b + ts.len() as i64 - 1))
            .find(|&(b, l)| b <= o && o <= l)
            .unwrap();
        assert_eq!(batch_of(log, o), want, "{when}: read at {o}");
    }
    let mut targets: Vec<i64> = model
        .iter()
        .flat_map(|(_, ts)| ts.iter().copied())
        .collect();
    let max = targets.iter().copied().max().unwrap();
    let min = targets.iter().copied().min().unwrap();
    targets.extend(targets.clone().iter().map(|t| t + 1));
    targets.extend([0, min - 1, max + 1, max + 1_000]);
    // Negative values are ListOffsets' special queries, checked below.
    for t in targets.into_iter().filter(|&t| t >= 0) {
        let got = log
            .offset_for_timestamp(t)
            .unwrap()
            .map(|f| (f.offset, f.timestamp));
        assert_eq!(got, scan_time(model, t), "{when}: timestamp {t}");
    }
    let got = log.offset_for_timestamp(MAX_TIMESTAMP).unwrap().unwrap();
    assert_eq!(
        Some((got.offset, got.timestamp)),
        scan_time(model, max),
        "{when}: MAX"
    );
    let got = log
        .offset_for_timestamp(EARLIEST_TIMESTAMP)
        .unwrap()
        .unwrap();
    assert_eq!((got.offset, got.timestamp), (0, -1), "{when}: EARLIEST");
    let got = log.offset_for_timestamp(LATEST_TIMESTAMP).unwrap().unwrap();
    assert_eq!((got.offset, got.timestamp), (end, -1), "{when}: LATEST");
}

fn index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
        })
        .collect();
    files.sort();
    files
}

/// Damages the index files of every segment: both replaced by garbage, one
/// of them replaced by garbage, or the offset index cut short (a torn
/// index). Index files carry no checksum; damage that keeps an index
/// plausible (say, a monotonic overwrite inside an fsynced file) is out of
/// reach of any open-time check short of a full scan, as in Kafka.
fn damage_indexes(dir: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    for log_file in common::segment_files(dir) {
        let index = log_file.with_extension("index");
        let time_index = log_file.with_extension("timeindex");
        let garbage = |path: &Path, rng: &mut Rng| {
            let len = rng.below(200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            std::fs::write(path, bytes).unwrap();
        };
        match rng.below(4) {
            0 => {
                garbage(&index, &mut rng);
                garbage(&time_index, &mut rng);
            }
            1 => garbage(&index, &mut rng),
            2 => garbage(&time_index, &mut rng),
            _ => {
                let mut bytes = std::fs::read(&index).unwrap();
                bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
                std::fs::write(&index, bytes).unwrap();
            }
        }
    }
}

fn batches() -> impl Strategy<Value = Vec<(Vec<i64>, usize)>> {
    // Each batch: record timestamps (jumping back and forth between and
    // within batches) and a codec.
    prop::collection::vec((prop::collection::vec(0i64..5_000, 1..8), 0usize..5), 5..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn lookups_agree_with_a_linear_scan(
        batches in batches(),
        segment_bytes in 600u64..3_000,
        index_interval_bytes in 1usize..600,
        probes in prop::collection::vec(any::<i64>(), 20),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes,
            segment_ms: None,
            ..LogConfig::default()
        };
        let mut model: Model = Vec::new();
        {
            let log = Log::open(dir.path(), config.clone()).unwrap();
            for (ts, codec) in &batches {
                let mut b = common::batch_with_timestamps(ts, CODECS[*codec]);
                let info = log.append(&mut b, 0).unwrap();
                model.push((info.first_offset, ts.clone()));
            }
            check(&log, &model, &probes, "appended");
            log.close().unwrap();
        }
        {
            let log = Log::open(dir.path(), config.clone()).unwrap();
            check(&log, &model, &probes, "reopened");
            log.close().unwrap();
        }
        for path in index_files(dir.path()) {
            std::fs::remove_file(path).unwrap();
        }
        {
            let log = Log::open(dir.path(), config.clone()).unwrap();
            check(&log, &model, &probes, "indexes deleted");
            log.close().unwrap();
        }
        // Twice: once on indexes written by a rebuild, once after more
        // appends on top of them.
        for round in 0..2 {
            damage_indexes(dir.path(), seed.wrapping_add(round));
            let log = Log::open(dir.path(), config.clone()).unwrap();
            check(&log, &model, &probes, &format!("indexes damaged, round {round}"));
            let mut b = common::batch_with_timestamps(&[4_000, 10], CODECS[round as usize]);
            let info = log.append(&mut b, 0).unwrap();
            model.push((info.first_offset, vec![4_000, 10]));
            check(&log, &model, &probes, &format!("appended after damage, round {round}"));
            log.close().unwrap();
        }
    }
}

#[test]
fn a_lost_time_index_is_rebuilt() {
    // Only the `.timeindex` files go missing after a clean close: the open
    // must not take the empty files for the segments' time history.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 800,
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let mut model: Model = Vec::new();
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..40i64 {
            // The newest record of each segment sits early in it.
            let ts = vec![10_000 - i * 100, 50, 60];
            let mut b = common::batch_with_timestamps(&ts, CODECS[i as usize % 5]);
            let info = log.append(&mut b, 0).unwrap();
            model.push((info.first_offset, ts));
        }
        assert!(log.segment_count() > 3);
        log.close().unwrap();
    }
    for path in index_files(dir.path()) {
        if path.extension().is_some_and(|e| e == "timeindex") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let log = Log::open(dir.path(), config).unwrap();
    check(&log, &model, &[], "time indexes deleted");
}
