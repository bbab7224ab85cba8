//! [`CommittedFilter`]: what a read_committed reader of the log keeps —
//! committed and non-transactional batches — and what it passes over:
//! aborted transactions' batches and every marker, with transactions of
//! several producers interleaved.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::txn::{marker, producer_batch};
use fjord_log::{CommittedFilter, Log, LogConfig};

/// A batch of `count` records of producer `pid` (transactional or only
/// idempotent).
fn batch(pid: i64, sequence: i32, count: usize, transactional: bool) -> Vec<u8> {
    producer_batch(pid, sequence, &vec![("k", "v"); count], transactional)
}

/// The base offsets of the batches `filter` keeps, reading `log` whole.
fn kept(log: &Log) -> Vec<i64> {
    let end = log.log_end_offset();
    let mut filter = CommittedFilter::new(log.aborted_transactions(0, end));
    let read = log.read(0, 1 << 20, end).unwrap();
    let bytes = read.slice.unwrap().bytes().unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let header = fjord_log::validate_batch(&bytes[pos..]).unwrap();
        if filter.keeps(&header, &bytes[pos..pos + header.size()]) {
            out.push(header.base_offset);
        }
        pos += header.size();
    }
    out
}

#[test]
fn aborted_batches_and_markers_are_passed_over_committed_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut batch(7, 0, 2, true), 0).unwrap(); // 0-1 aborted
    log.append(&mut batch(8, 0, 1, true), 0).unwrap(); // 2 committed
    log.append(&mut batch(9, 0, 1, false), 0).unwrap(); // 3 idempotent
    log.append(&mut batch(7, 2, 1, true), 0).unwrap(); // 4 aborted
    log.append_control(&marker(7, false), 0).unwrap(); // 5
    log.append(&mut batch(7, 3, 1, true), 0).unwrap(); // 6 committed
    log.append_control(&marker(8, true), 0).unwrap(); // 7
    log.append_control(&marker(7, true), 0).unwrap(); // 8
    log.append(&mut batch(8, 1, 1, true), 0).unwrap(); // 9 aborted
    log.append_control(&marker(8, false), 0).unwrap(); // 10
    assert_eq!(kept(&log), vec![2, 3, 6]);
}

#[test]
fn without_aborted_transactions_only_markers_are_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append(&mut batch(7, 0, 2, true), 0).unwrap();
    log.append_control(&marker(7, true), 0).unwrap();
    log.append(&mut batch(9, 0, 1, false), 0).unwrap();
    assert_eq!(kept(&log), vec![0, 3]);
}
