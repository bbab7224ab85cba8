//! `file.delete.delay.ms`: segments removed by retention (and DeleteRecords)
//! are renamed `.deleted` and deleted only once the delay has passed; a
//! delay of 0 deletes at once; `.deleted` files a restart finds are deleted.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;

use fjord_log::{FileCache, Log, LogConfig};
use kafka_protocol::records::Compression;

const DELAY_MS: i64 = 60_000;

fn open(dir: &Path, delay_ms: i64) -> Log {
    let config = LogConfig {
        segment_bytes: 4096,
        retention_bytes: Some(1),
        retention_ms: None,
        file_delete_delay_ms: delay_ms,
        ..LogConfig::default()
    };
    Log::open_with(dir, config, &FileCache::new(16)).unwrap()
}

/// Appends until the log has at least three segments.
fn fill(log: &Log) {
    while log.segment_count() < 3 {
        let mut batch = common::batch(10, 100, 1_700_000_000_000, Compression::None);
        log.append(&mut batch, 0).unwrap();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn deleted(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".deleted"))
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn retention_renames_segments_and_deletes_them_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), DELAY_MS);
    fill(&log);
    let first = format!("{:020}", log.segment_base_offsets()[0]);
    let start = now_ms();
    let removed = log.enforce_retention(start).unwrap();
    assert!(removed >= 2);
    let left = deleted(dir.path());
    assert_eq!(left.len(), removed * 3, "log and both indexes: {left:?}");
    assert!(left.contains(&format!("{first}.log.deleted")));
    assert!(!dir.path().join(format!("{first}.log")).exists());
    // The log serves what it kept meanwhile.
    assert_eq!(
        common::read_all(&log, 1 << 20).len() as i64,
        log.log_end_offset() - log.log_start_offset()
    );
    // Before the delay has passed: kept.
    assert_eq!(log.delete_expired_files(start + 1000).unwrap(), 0);
    assert_eq!(deleted(dir.path()).len(), removed * 3);
    // The next retention round after it: gone.
    log.enforce_retention(now_ms() + DELAY_MS + 1).unwrap();
    assert_eq!(deleted(dir.path()), Vec::<String>::new());
}

#[test]
fn delete_records_also_waits_for_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), DELAY_MS);
    fill(&log);
    let second = log.segment_base_offsets()[1];
    log.delete_records_before(second).unwrap();
    assert_eq!(deleted(dir.path()).len(), 3);
}

#[test]
fn a_delay_of_zero_deletes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), 0);
    fill(&log);
    let before = log.segment_count();
    let removed = log.enforce_retention(now_ms()).unwrap();
    assert!(removed >= 2);
    assert_eq!(deleted(dir.path()), Vec::<String>::new());
    assert_eq!(common::segment_files(dir.path()).len(), before - removed);
}

#[test]
fn deleted_files_left_by_a_restart_are_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), DELAY_MS);
    fill(&log);
    let removed = log.enforce_retention(now_ms()).unwrap();
    let end = log.log_end_offset();
    let start = log.log_start_offset();
    log.close().unwrap();
    drop(log);
    assert_eq!(deleted(dir.path()).len(), removed * 3);
    let log = open(dir.path(), DELAY_MS);
    assert_eq!(deleted(dir.path()), Vec::<String>::new());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (start, end));
}
