//! `preallocate`: a new active segment file is as long as `segment.bytes`
//! from its creation, is trimmed to its data when it rolls and when the log
//! closes, and a log killed mid-write reopens with every record it held,
//! the zeros after the data trimmed away.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;
use std::sync::Arc;

use fjord_log::{FileCache, Log, LogConfig};
use kafka_protocol::records::Compression;

const SEGMENT_BYTES: u64 = 64 * 1024;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: SEGMENT_BYTES,
        preallocate: true,
        ..LogConfig::default()
    }
}

fn open(dir: &Path) -> Log {
    Log::open_with(dir, config(), &FileCache::new(16)).unwrap()
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Appends batches of 10 records of 100 bytes until `count` records are in.
fn append_records(log: &Log, count: usize) {
    for _ in 0..count / 10 {
        let mut batch = common::batch(10, 100, 1_700_000_000_000, Compression::None);
        log.append(&mut batch, 0).unwrap();
    }
}

#[test]
fn active_segment_is_preallocated_and_trimmed_when_it_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let first = common::segment_files(dir.path());
    assert_eq!(first.len(), 1);
    assert_eq!(
        len(&first[0]),
        SEGMENT_BYTES,
        "new active segment preallocated"
    );
    append_records(&log, 50);
    let data = log.size_bytes();
    assert!(data > 0 && data < SEGMENT_BYTES);
    assert_eq!(
        len(&first[0]),
        SEGMENT_BYTES,
        "active segment keeps its length"
    );
    // Enough for a few rolls.
    append_records(&log, 1500);
    assert!(log.segment_count() >= 3, "{} segments", log.segment_count());
    let files = common::segment_files(dir.path());
    let (closed, active) = files.split_at(files.len() - 1);
    let total_closed: u64 = closed.iter().map(|f| len(f)).sum();
    let active_data = log.size_bytes() - total_closed;
    assert!(
        closed.iter().all(|f| len(f) < SEGMENT_BYTES),
        "closed segments trimmed"
    );
    assert!(active_data < SEGMENT_BYTES);
    assert_eq!(
        len(&active[0]),
        SEGMENT_BYTES,
        "the new active one preallocated"
    );
    assert_eq!(common::read_all(&log, 1 << 20).len(), 1550);
    log.close().unwrap();
    assert_eq!(
        len(&active[0]),
        active_data,
        "close trims the active segment"
    );
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.log_end_offset(), 1550);
    assert_eq!(common::read_all(&log, 1 << 20).len(), 1550);
}

#[test]
fn a_killed_log_recovers_every_record_and_trims_the_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    append_records(&log, 1200);
    // A checkpoint makes the next open trust the indexes (a light scan that
    // then meets the zeros); the appends after it are past the recovery point.
    log.checkpoint().unwrap();
    append_records(&log, 30);
    let end = log.log_end_offset();
    let size = log.size_bytes();
    // kill -9: the files as they are now, with no close.
    let crashed = common::copy_dir(dir.path());
    let files = common::segment_files(crashed.path());
    let active = files.last().unwrap().clone();
    assert_eq!(len(&active), SEGMENT_BYTES, "copied mid-write, untrimmed");
    drop(log);

    let log = open(crashed.path());
    assert_eq!(log.log_end_offset(), end, "no record lost");
    assert_eq!(log.size_bytes(), size);
    let records = common::read_all(&log, 1 << 20);
    assert_eq!(records.len() as i64, end);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as i64)
    );
    let closed: u64 = files[..files.len() - 1].iter().map(|f| len(f)).sum();
    assert_eq!(len(&active), size - closed, "recovery trims the zeros");
    // Appends continue at the log end, right after the data.
    append_records(&log, 10);
    assert_eq!(log.log_end_offset(), end + 10);
    assert_eq!(common::read_all(&log, 1 << 20).len() as i64, end + 10);
    // The crash left no corruption behind: nothing was deleted.
    assert_eq!(common::segment_files(crashed.path()).len(), files.len());
}

#[test]
fn without_preallocate_files_grow_with_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open_with(
        dir.path(),
        LogConfig {
            preallocate: false,
            ..config()
        },
        &FileCache::new(16),
    )
    .unwrap();
    append_records(&log, 50);
    let files = common::segment_files(dir.path());
    assert_eq!(len(&files[0]), log.size_bytes());
}

/// Zeros after a closed segment's data (a preallocated file not yet
/// trimmed) end its data: the later segments, which a torn or corrupt tail
/// would have deleted, are kept with every record, with a whole header of
/// zeros and with less than one.
#[test]
fn zeros_after_a_closed_segment_are_its_end_not_damage() {
    for zeros in [1000u64, 30] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        append_records(&log, 1500);
        let end = log.log_end_offset();
        let segments = log.segment_count();
        assert!(segments >= 3);
        drop(log);
        let files = common::segment_files(dir.path());
        let closed = &files[0];
        let data = len(closed);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(closed)
            .unwrap();
        file.set_len(data + zeros).unwrap();
        drop(file);

        let log = open(dir.path());
        assert_eq!(
            log.segment_count(),
            segments,
            "{zeros} zeros: segments kept"
        );
        assert_eq!(len(closed), data, "zeros trimmed");
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(common::read_all(&log, 1 << 20).len() as i64, end);
    }
}
