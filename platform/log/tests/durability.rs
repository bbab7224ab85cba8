//! Durability modes and the flush policy, and segment rolls by time and by
//! full index.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::sync::Arc;

use fjord_log::{Durability, Log, LogConfig};
use kafka_protocol::records::Compression;

#[test]
fn fsync_mode_with_eight_concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Fsync,
        segment_bytes: 8_000,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir.path(), config.clone()).unwrap());
    const THREADS: usize = 8;
    const APPENDS: usize = 25;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..APPENDS)
                    .map(|i| {
                        let records: Vec<_> = (0..1 + (i % 3))
                            .map(|r| {
                                let key = format!("{t}/{i}/{r}");
                                common::record(Some(key.as_bytes()), b"v", i as i64)
                            })
                            .collect();
                        let mut b = common::encode(&records, Compression::Snappy);
                        let info = log.append(&mut b, 0).unwrap();
                        // Returned only once fsynced.
                        assert!(log.flushed_offset() > info.last_offset);
                        (info.first_offset, info.last_offset, t, i)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ranges: Vec<(i64, i64, usize, usize)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(ranges.len(), THREADS * APPENDS);
    ranges.sort();
    let mut next = 0;
    for &(first, last, t, i) in &ranges {
        assert_eq!(first, next, "offsets unique and contiguous");
        assert_eq!(last - first, (i % 3) as i64, "thread {t} append {i}");
        next = last + 1;
    }
    assert_eq!(log.log_end_offset(), next);
    assert!(log.segment_count() > 1);
    // Each append's records sit at the offsets it was given.
    let check = |log: &Log| {
        let records = common::read_all(log, 4_096);
        assert_eq!(records.len() as i64, next);
        for &(first, last, t, i) in &ranges {
            for o in first..=last {
                let key = format!("{t}/{i}/{}", o - first);
                assert_eq!(records[o as usize].key.as_deref(), Some(key.as_bytes()));
            }
        }
    };
    check(&log);
    // No close, no checkpoint: the full recovery finds everything.
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), next);
    check(&log);
}

#[test]
fn flush_messages_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: Some(10),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let append = |log: &Log| {
        let mut b = common::batch(3, 10, 0, Compression::None);
        log.append(&mut b, 0).unwrap();
    };
    // 3, 6, 9 records: not yet; 12: fsynced.
    for _ in 0..3 {
        append(&log);
        assert_eq!(log.flushed_offset(), 0);
    }
    append(&log);
    assert_eq!(log.flushed_offset(), 12);
    // The count starts again after the fsync.
    for _ in 0..3 {
        append(&log);
        assert_eq!(log.flushed_offset(), 12);
    }
    append(&log);
    assert_eq!(log.flushed_offset(), 24);

    // Without a policy nothing is fsynced until asked.
    log.set_config(LogConfig::default());
    for _ in 0..10 {
        append(&log);
    }
    assert_eq!(log.flushed_offset(), 24);
    log.flush().unwrap();
    assert_eq!(log.flushed_offset(), 54);
}

#[test]
fn flush_ms_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_ms: Some(60_000),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let mut b = common::batch(3, 10, 0, Compression::None);
    log.append(&mut b, 0).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    log.maybe_flush(now).unwrap();
    assert_eq!(log.flushed_offset(), 0, "flush.ms has not passed");
    log.maybe_flush(now + 120_000).unwrap();
    assert_eq!(log.flushed_offset(), 3);
    // A checkpoint covers everything too.
    let mut b = common::batch(2, 10, 0, Compression::None);
    log.append(&mut b, 0).unwrap();
    log.checkpoint().unwrap();
    assert_eq!(log.flushed_offset(), 5);
}

fn one(log: &Log, ts: i64) -> i64 {
    let mut b = common::batch_with_timestamps(&[ts], Compression::None);
    log.append(&mut b, 0).unwrap().first_offset
}

#[test]
fn segment_ms_rolls_by_batch_timestamps() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: Some(1_000),
            // An index entry on every batch: the open-time check restarts
            // from the last batch, not the first.
            index_interval_bytes: 1,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), config.clone()).unwrap();
        one(&log, 10_000);
        one(&log, 10_500);
        one(&log, 9_000); // older: no roll
        one(&log, 11_000); // exactly segment.ms after the first: no roll
        assert_eq!(log.segment_base_offsets(), vec![0]);
        let o = one(&log, 11_001);
        assert_eq!(log.segment_base_offsets(), vec![0, o]);
        one(&log, 11_500);
        one(&log, 12_000);
        // The span is measured from the segment's first batch, also after
        // a reopen.
        if clean {
            log.close().unwrap();
        }
        drop(log);
        let log = Log::open(dir.path(), config.clone()).unwrap();
        let p = one(&log, 12_001);
        assert_eq!(log.segment_base_offsets(), vec![0, o], "clean {clean}");
        let q = one(&log, 12_002);
        assert_eq!(log.segment_base_offsets(), vec![0, o, q], "clean {clean}");
        assert_eq!(q, p + 1);
        // segment.ms off: never by time.
        log.set_config(LogConfig {
            segment_ms: None,
            ..config
        });
        one(&log, 1_000_000);
        assert_eq!(log.segment_count(), 3);
    }
}

#[test]
fn segment_rolls_when_its_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let max_entries = 3;
    let config = LogConfig {
        segment_index_bytes: 12 * max_entries,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    for i in 0..30 {
        one(&log, i);
    }
    let segments = log.segment_count();
    assert!(segments >= 5, "{segments} segments");
    let files = common::segment_files(dir.path());
    for file in &files[..files.len() - 1] {
        let entries = std::fs::metadata(file.with_extension("index"))
            .unwrap()
            .len()
            / 8;
        assert_eq!(entries, max_entries as u64, "{}", file.display());
    }
    assert_eq!(log.log_end_offset(), 30);
    assert_eq!(common::read_all(&log, 1 << 20).len(), 30);
}

#[test]
fn readers_never_see_half_a_batch_while_appends_roll_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 3_000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    };
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut rng = common::Rng::new(seed + 1);
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Acquire) || reads < 100 {
                    let end = log.log_end_offset();
                    if end == 0 {
                        continue;
                    }
                    let o = rng.below(end as u64) as i64;
                    let read = log.read(o, rng.below(5_000) as usize, i64::MAX).unwrap();
                    let bytes = read.slice.expect("data below the log end").bytes().unwrap();
                    let ranges = common::check_batches(&bytes);
                    assert!(ranges[0].0 <= o && o <= ranges[0].1);
                    for w in ranges.windows(2) {
                        assert_eq!(w[0].1 + 1, w[1].0);
                    }
                    let records = common::decode_all(&bytes);
                    assert_eq!(records.last().unwrap().offset, ranges.last().unwrap().1);
                    reads += 1;
                }
            })
        })
        .collect();
    for i in 0..1_000 {
        let mut b = common::rich_batch(1 + i % 4, 60, i as i64, common::CODECS[i % 5], i as u64);
        log.append(&mut b, 0).unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for r in readers {
        r.join().unwrap();
    }
    assert!(log.segment_count() > 10);
}
