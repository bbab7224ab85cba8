//! Transactions as the log keeps them: transactional batches open a
//! producer's transaction, markers close it, ABORT markers are indexed in
//! the segment's `.txnindex` (Kafka's 34-byte entries), and all of it
//! survives a reopen (with and without the checkpoint), follows a
//! follower's copy, a truncation and the removal of segments.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::txn::{marker, now_ms as fjord_log_now, txn_batch};
use common::{RawHeader, raw_batch, raw_record};
use fjord_log::{AbortedTxn, Log, LogConfig, TRANSACTION_STATE_CHECKPOINT};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 150,
        ..LogConfig::default()
    }
}

/// Offsets: pid 7 commits [0,2) at 2; pid 7 aborts [3,5) at 5; pid 8 opens at 6.
fn write_history(log: &Log) {
    assert!(!log.has_open_transaction(7));
    log.append(&mut txn_batch(7, 0, 2), 0).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert!(log.has_open_transaction(7));
    log.append_control(&marker(7, true), 0).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    assert!(!log.has_open_transaction(7));
    log.append(&mut txn_batch(7, 2, 2), 0).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(3));
    log.append_control(&marker(7, false), 0).unwrap();
    log.append(&mut txn_batch(8, 0, 1), 0).unwrap();
}

const ABORTED: AbortedTxn = AbortedTxn {
    producer_id: 7,
    first_offset: 3,
    last_offset: 5,
    last_stable_offset: 6,
};

fn check_history(log: &Log) {
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(log.first_unstable_offset(), Some(6));
    assert_eq!(log.open_transactions(), vec![(8, 6)]);
    assert!(log.has_open_transaction(8) && !log.has_open_transaction(7));
    assert_eq!(log.aborted_transactions(0, 7), vec![ABORTED]);
    assert_eq!(log.aborted_transactions(0, 3), vec![]);
    assert_eq!(log.aborted_transactions(6, 7), vec![]);
    assert_eq!(log.aborted_transactions(4, 5), vec![ABORTED]);
}

/// The `.txnindex` entries on disk, all segments.
fn txnindex_entries(dir: &std::path::Path) -> Vec<(i16, i64, i64, i64, i64)> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txnindex"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(bytes.len() % 34, 0);
        for e in bytes.chunks_exact(34) {
            let i64_at = |at: usize| i64::from_be_bytes(e[at..at + 8].try_into().unwrap());
            out.push((
                i16::from_be_bytes([e[0], e[1]]),
                i64_at(2),
                i64_at(10),
                i64_at(18),
                i64_at(26),
            ));
        }
    }
    out
}

#[test]
fn markers_close_transactions_and_aborts_are_indexed_in_kafkas_format() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    write_history(&log);
    check_history(&log);
    assert_eq!(txnindex_entries(dir.path()), vec![(0, 7, 3, 5, 6)]);
}

#[test]
fn a_reopen_keeps_open_transactions_and_the_index_with_or_without_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), small_segments()).unwrap();
        write_history(&log);
        log.close().unwrap();
    }
    assert!(dir.path().join(TRANSACTION_STATE_CHECKPOINT).exists());
    let log = Log::open(dir.path(), small_segments()).unwrap();
    check_history(&log);
    drop(log);
    // Without the checkpoint (never written, or lost) the log is scanned.
    std::fs::remove_file(dir.path().join(TRANSACTION_STATE_CHECKPOINT)).unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    check_history(&log);
    assert_eq!(txnindex_entries(dir.path()), vec![(0, 7, 3, 5, 6)]);
    // A checkpoint taken mid-history: the rest is scanned after it.
    log.truncate_to(5).unwrap();
    log.checkpoint().unwrap();
    let mut marker_and_after = read_from(&source_log_copy(), 5);
    log.append_as_follower(&mut marker_and_after).unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_segments()).unwrap();
    check_history(&log);
}

/// A fresh log holding the history (the leader's).
fn source_log_copy() -> Log {
    let dir = tempfile::tempdir().unwrap().keep();
    let log = Log::open(dir, small_segments()).unwrap();
    write_history(&log);
    log
}

/// The stored batches of `log` from `offset` to its end.
fn read_from(log: &Log, mut offset: i64) -> Vec<u8> {
    let mut out = Vec::new();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, log.log_end_offset()).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let header = fjord_log::validate_batch(&bytes[pos..]).unwrap();
            offset = header.next_offset();
            pos += header.size();
        }
        out.extend_from_slice(&bytes);
    }
    out
}

#[test]
fn a_follower_copy_tracks_the_same_transactions() {
    let leader = source_log_copy();
    let dir = tempfile::tempdir().unwrap();
    let follower = Log::open(dir.path(), small_segments()).unwrap();
    let mut copy = read_from(&leader, 0);
    follower.append_as_follower(&mut copy).unwrap();
    check_history(&follower);
    assert_eq!(txnindex_entries(dir.path()), vec![(0, 7, 3, 5, 6)]);
}

#[test]
fn truncation_reopens_what_its_cut_markers_closed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    write_history(&log);
    log.checkpoint().unwrap();
    log.truncate_to(5).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(3));
    assert_eq!(log.aborted_transactions(0, 7), vec![]);
    assert_eq!(txnindex_entries(dir.path()), vec![]);
    log.truncate_to(2).unwrap();
    assert_eq!(log.open_transactions(), vec![(7, 0)]);
    // The lock-free summary follows the rebuild.
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert!(log.has_open_transaction(7));
    // A follower starting over past its end has nothing open.
    log.restart_at(100).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    assert!(!log.has_open_transaction(7));
}

#[test]
fn removed_segments_take_their_index_along() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_segments()).unwrap();
    write_history(&log);
    let mut plain = raw_batch(
        RawHeader::new(1, 0, fjord_log_now()),
        &raw_record(0, 0, Some(b"k"), Some(b"v")),
    );
    log.append(&mut plain, 0).unwrap();
    assert_eq!(
        log.active_base_offset(),
        7,
        "{:?}",
        log.segment_base_offsets()
    );
    log.delete_records_before(7).unwrap();
    assert_eq!(log.aborted_transactions(0, 7), vec![]);
    assert_eq!(txnindex_entries(dir.path()), vec![]);
    assert_eq!(log.first_unstable_offset(), Some(6));
}

#[test]
fn the_cleaner_stops_at_an_open_transaction_and_keeps_the_index_through_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let compact = |segment_bytes| LogConfig {
        cleanup_policy: fjord_log::CleanupPolicy::Compact,
        segment_bytes,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), compact(150)).unwrap();
    write_history(&log);
    let plain = || {
        raw_batch(
            RawHeader::new(1, 0, fjord_log_now()),
            &raw_record(0, 0, Some(b"k"), Some(b"v")),
        )
    };
    for _ in 0..4 {
        log.append(&mut plain(), 0).unwrap();
    }
    let now = fjord_log_now();
    // The open transaction at 6 bounds what may be cleaned.
    let bases = log.segment_base_offsets();
    let unstable_base = bases.iter().copied().rfind(|&b| b <= 6).unwrap();
    assert_eq!(log.cleanability(now).unwrap().cleanable_end, unstable_base);
    // Once it is decided, the cleaner merges the segments (larger ones
    // now), the aborted transaction's marker among them.
    log.append_control(&marker(8, true), 0).unwrap();
    log.append(&mut plain(), 0).unwrap();
    log.set_config(compact(1 << 20));
    log.append(&mut plain(), 0).unwrap();
    log.clean_until(now, &fjord_log::CleanerConfig::default(), None)
        .unwrap();
    let after = log.segment_base_offsets();
    assert!(after.len() < bases.len(), "{bases:?} -> {after:?}");
    assert!(!after.contains(&5), "{after:?}");
    assert_eq!(log.aborted_transactions(0, 7), vec![ABORTED]);
    assert_eq!(txnindex_entries(dir.path()), vec![(0, 7, 3, 5, 6)]);
    drop(log);
    let log = Log::open(dir.path(), compact(1 << 20)).unwrap();
    assert_eq!(log.aborted_transactions(0, 7), vec![ABORTED]);
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn an_aborted_value_does_not_displace_the_committed_one_in_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let compact = |segment_bytes| LogConfig {
        cleanup_policy: fjord_log::CleanupPolicy::Compact,
        segment_bytes,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), compact(150)).unwrap();
    let keyed = |key, v, pid| common::txn::keyed(key, v, pid, 0);
    log.append(&mut keyed("a", "committed", -1), 0).unwrap(); // 0
    log.append(&mut keyed("a", "aborted", 9), 0).unwrap(); // 1
    log.append_control(&marker(9, false), 0).unwrap(); // 2
    // A key written twice, so the clean has something to remove.
    for (key, v) in [("x", "1"), ("x", "2"), ("y", "1"), ("z", "1")] {
        log.append(&mut keyed(key, v, -1), 0).unwrap();
    }
    log.set_config(compact(1 << 20));
    let stats = log
        .clean_until(fjord_log_now(), &fjord_log::CleanerConfig::default(), None)
        .unwrap();
    let kept: Vec<(i64, Vec<u8>)> = common::read_all(&log, 1 << 20)
        .into_iter()
        .map(|r| (r.offset, r.value.unwrap().to_vec()))
        .collect();
    // The clean ran (the first "x" went) and kept the committed "a".
    assert!(!kept.iter().any(|(o, _)| *o == 3), "{stats:?} {kept:?}");
    assert!(kept.contains(&(0, b"committed".to_vec())), "{kept:?}");
}
