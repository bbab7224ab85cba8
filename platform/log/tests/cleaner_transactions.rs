//! The log cleaner with transactional data (Kafka's
//! CleanedTransactionMetadata): the records of aborted transactions are
//! removed, markers go `delete.retention.ms` after nothing of their
//! transaction is left (with their `.txnindex` entries), nothing past the
//! first open transaction is touched, and the read_committed view of the
//! log is the same before and after every pass, kills included.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::txn::{keyed, marker, now_ms as now};
use fjord_log::{CleanerConfig, CleanupPolicy, CommittedFilter, Log, LogConfig};

fn compact(segment_bytes: u64) -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes,
        ..LogConfig::default()
    }
}

/// Every stored batch from the log start: (base offset, records count,
/// control, whole bytes).
fn batches(log: &Log) -> Vec<(i64, i32, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, i64::MAX).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let header = fjord_log::validate_batch(&bytes[pos..]).unwrap();
            let whole = bytes[pos..pos + header.size()].to_vec();
            if header.base_offset >= offset {
                out.push((
                    header.base_offset,
                    header.records_count,
                    header.is_control(),
                    whole,
                ));
            }
            offset = offset.max(header.next_offset());
            pos += header.size();
        }
    }
    out
}

/// What a read_committed reader sees up to the last stable offset:
/// (offset, key, value) in offset order.
fn committed_view(log: &Log) -> Vec<(i64, String, String)> {
    let lso = log.first_unstable_offset().unwrap_or(log.log_end_offset());
    let mut filter = CommittedFilter::new(log.aborted_transactions(0, lso));
    let mut out = Vec::new();
    for (base, _, _, bytes) in batches(log) {
        if base >= lso {
            break;
        }
        let header = fjord_log::validate_batch(&bytes).unwrap();
        if !filter.keeps(&header, &bytes) {
            continue;
        }
        for r in common::decode_all(&bytes) {
            let text = |b: Option<bytes::Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
            out.push((r.offset, text(r.key), text(r.value)));
        }
    }
    out
}

/// Committed, aborted and open transactions interleaved with plain
/// records, in small segments. No committed key is written twice, so a
/// clean may only remove aborted records and the committed view stays
/// the same record for record; the aborted records reuse committed keys. Returns the offset of the open
/// transaction's first record.
fn write_history(log: &Log) -> i64 {
    log.append(&mut keyed("a", "plain-1", -1, 0), 0).unwrap(); // 0
    log.append(&mut keyed("b", "committed", 7, 0), 0).unwrap(); // 1
    log.append(&mut keyed("a", "aborted", 8, 0), 0).unwrap(); // 2
    log.append(&mut keyed("c", "aborted", 8, 1), 0).unwrap(); // 3
    log.append_control(&marker(7, true), 0).unwrap(); // 4
    log.append_control(&marker(8, false), 0).unwrap(); // 5
    log.append(&mut keyed("c", "plain", -1, 0), 0).unwrap(); // 6
    log.append(&mut keyed("d", "aborted", 9, 0), 0).unwrap(); // 7
    log.append(&mut keyed("h", "plain", -1, 0), 0).unwrap(); // 8
    log.append_control(&marker(9, false), 0).unwrap(); // 9
    log.append(&mut keyed("i", "plain", -1, 0), 0).unwrap(); // 10
    let open = log
        .append(&mut keyed("e", "open", 10, 0), 0)
        .unwrap()
        .first_offset; // 11
    log.append(&mut keyed("j", "after-open", -1, 0), 0).unwrap(); // 12
    log.append(&mut keyed("d", "after-open", 11, 0), 0).unwrap(); // 13 aborted below
    log.append_control(&marker(11, false), 0).unwrap(); // 14
    for i in 0..4 {
        log.append(&mut keyed(&format!("f{i}"), "plain", -1, 0), 0)
            .unwrap();
    }
    open
}

#[test]
fn the_committed_view_is_the_same_after_a_clean_and_aborted_records_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), compact(150)).unwrap();
    let open = write_history(&log);
    log.set_config(compact(1 << 20));
    let before = committed_view(&log);
    let past_open_before: Vec<_> = batches(&log).into_iter().filter(|b| b.0 >= open).collect();
    let stats = log
        .clean_until(now(), &CleanerConfig::default(), None)
        .unwrap();
    assert!(stats.records_removed > 0, "{stats:?}");
    assert_eq!(committed_view(&log), before);
    let after = batches(&log);
    // Aborted records below the open transaction are gone: only empty
    // batches (a producer's last, for its state) may remain of them.
    for (base, count, _, _) in &after {
        if [2, 3, 7].contains(base) {
            assert_eq!(*count, 0, "aborted batch at {base} kept its records");
        }
    }
    // Markers stay.
    for m in [4, 5, 9] {
        assert!(after.iter().any(|b| b.0 == m && b.2), "marker {m} removed");
    }
    // Nothing from the open transaction on is touched.
    let past_open_after: Vec<_> = after.into_iter().filter(|b| b.0 >= open).collect();
    assert_eq!(past_open_after, past_open_before);
    assert_eq!(log.first_unstable_offset(), Some(open));
}

#[test]
fn aborted_records_are_removed_once_the_transaction_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), compact(150)).unwrap();
    write_history(&log);
    // The open transaction commits: the whole log is cleanable.
    log.append_control(&marker(10, true), 0).unwrap();
    for i in 0..4 {
        log.append(&mut keyed(&format!("g{i}"), "plain", -1, 0), 0)
            .unwrap();
    }
    log.set_config(compact(1 << 20));
    let before = committed_view(&log);
    log.clean_until(now(), &CleanerConfig::default(), None)
        .unwrap();
    assert_eq!(committed_view(&log), before);
    let after = batches(&log);
    for (base, count, _, _) in &after {
        if [2, 3, 7, 13].contains(base) {
            assert_eq!(*count, 0, "aborted batch at {base} kept its records");
        }
    }
    assert!(before.contains(&(11, "e".into(), "open".into())));
    assert_eq!(log.first_unstable_offset(), None);
}

/// DeleteRecords (and retention) may remove the start of an open
/// transaction: as in Kafka, the transaction stays open with its first
/// offset below the log start, so the last stable offset stays where it
/// was — also across a reopen — until its marker comes.
#[test]
fn removing_the_start_of_an_open_transaction_keeps_it_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 150,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    log.append(&mut keyed("a", "plain", -1, 0), 0).unwrap(); // 0
    log.append(&mut keyed("b", "open", 7, 0), 0).unwrap(); // 1
    for i in 0..6 {
        log.append(&mut keyed(&format!("p{i}"), "plain", -1, 0), 0)
            .unwrap();
    }
    assert_eq!(log.first_unstable_offset(), Some(1));
    let start = log.delete_records_before(4).unwrap();
    assert!(start >= 4, "log start {start}");
    assert!(log.log_start_offset() > 1);
    assert_eq!(log.first_unstable_offset(), Some(1));
    assert_eq!(log.open_transactions(), vec![(7, 1)]);
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(1));
    log.append(&mut keyed("b", "more", 7, 1), 0).unwrap();
    log.append_control(&marker(7, true), 0).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
}

/// The control batches still holding their marker record, and those
/// stamped with a delete horizon (KIP-534 attribute bit 6).
fn markers(log: &Log) -> (Vec<i64>, Vec<i64>) {
    let all = batches(log);
    let with_record = all.iter().filter(|b| b.2 && b.1 > 0).map(|b| b.0).collect();
    let stamped = all
        .iter()
        .filter(|b| b.2 && b.1 > 0)
        .filter(|b| fjord_log::validate_batch(&b.3).unwrap().attributes & 0x40 != 0)
        .map(|b| b.0)
        .collect();
    (with_record, stamped)
}

/// Kafka's marker removal: a marker whose transaction has nothing left
/// before it is stamped with a delete horizon by one pass and removed by
/// the first pass after it; `.txnindex` entries go once their records are
/// gone; the read_committed view is the same after every pass (also across
/// a reopen); an open transaction still bounds the cleaner.
#[test]
fn markers_go_after_delete_retention_and_the_committed_view_never_changes() {
    const RETENTION: i64 = 60_000;
    let config = |segment_bytes| LogConfig {
        delete_retention_ms: RETENTION,
        ..compact(segment_bytes)
    };
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(150)).unwrap();
    write_history(&log);
    let commit_10 = log
        .append_control(&marker(10, true), 0)
        .unwrap()
        .first_offset;
    // A committed transaction whose only record a later plain one
    // supersedes: its COMMIT marker becomes removable too.
    log.append(&mut keyed("g", "old", 12, 0), 0).unwrap();
    let commit_12 = log
        .append_control(&marker(12, true), 0)
        .unwrap()
        .first_offset;
    log.append(&mut keyed("g", "new", -1, 0), 0).unwrap();
    // Open to the end: nothing from its segment on may be cleaned.
    let open = log
        .append(&mut keyed("o", "open", 13, 0), 0)
        .unwrap()
        .first_offset;
    for i in 0..4 {
        log.append(&mut keyed(&format!("q{i}"), "plain", -1, 0), 0)
            .unwrap();
    }
    let open_segment = log
        .segment_base_offsets()
        .into_iter()
        .rfind(|&b| b <= open)
        .unwrap();
    let untouched = |log: &Log| -> Vec<_> {
        batches(log)
            .into_iter()
            .filter(|b| b.0 >= open_segment)
            .collect()
    };
    let untouched_before = untouched(&log);
    log.set_config(config(1 << 20));
    // The view a compaction may give: each key's last committed value
    // (only "g" is written twice).
    let mut view = committed_view(&log);
    assert!(view.iter().any(|r| r.2 == "committed") && !view.iter().any(|r| r.2 == "aborted"));
    view.retain(|r| r.2 != "old");
    let all_markers = [4, 5, 9, 14, commit_10, commit_12];
    assert_eq!(markers(&log).0, all_markers);
    let t = now();
    let clean = |log: &Log, at: i64| {
        log.clean_until(at, &CleanerConfig::default(), None)
            .unwrap();
        assert_eq!(
            committed_view(log),
            view,
            "read_committed view changed at {at}"
        );
        assert_eq!(untouched(log), untouched_before);
        assert_eq!(log.first_unstable_offset(), Some(open));
    };

    // Pass 1 removes the aborted records and the superseded committed one;
    // their markers and `.txnindex` entries stay (a reader behind may still
    // meet the records' batches in a segment it already holds).
    clean(&log, t);
    let uncommitted: Vec<_> = common::read_all(&log, 1 << 20)
        .into_iter()
        .filter(|r| r.value.as_deref() == Some(b"aborted".as_slice()))
        .collect();
    assert_eq!(uncommitted, vec![], "aborted records left");
    assert_eq!(markers(&log), (all_markers.to_vec(), vec![]));
    assert_eq!(log.aborted_transactions(0, open).len(), 3);

    // Pass 2 finds nothing before those markers: stamped with the horizon,
    // their entries gone (nothing left to skip).
    clean(&log, t);
    assert_eq!(
        markers(&log),
        (all_markers.to_vec(), vec![5, 9, 14, commit_12])
    );
    assert_eq!(log.aborted_transactions(0, open), vec![]);

    // The horizon lives in the batches: a reopen knows when the log is due.
    drop(log);
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(committed_view(&log), view);
    assert_eq!(log.first_unstable_offset(), Some(open));
    let stats = log
        .clean(t + RETENTION - 1, &CleanerConfig::default())
        .unwrap();
    assert_eq!(stats, None, "cleaned before the horizon");
    clean(&log, t + RETENTION - 1);
    assert_eq!(markers(&log).0, all_markers, "removed before the horizon");
    assert!(log.cleanability(t + RETENTION).unwrap().due);

    // The pass after the horizon removes them (a producer's last batch
    // stays, emptied, as in Kafka); the committed ones with records left
    // stay for good.
    clean(&log, t + RETENTION);
    assert_eq!(markers(&log).0, vec![4, commit_10]);
    assert_eq!(log.aborted_transactions(0, log.log_end_offset()), vec![]);
    let txnindex = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("txnindex".as_ref()))
        .count();
    assert_eq!(txnindex, 0);

    // A recovery from scratch (no transaction checkpoint) finds no
    // transaction open but the real one, and the same view.
    drop(log);
    std::fs::remove_file(dir.path().join(fjord_log::TRANSACTION_STATE_CHECKPOINT)).unwrap();
    let log = Log::open(dir.path(), config(1 << 20)).unwrap();
    assert_eq!(log.open_transactions(), vec![(13, open)]);
    assert_eq!(committed_view(&log), view);
}

/// A kill at any step of a swap (the group's `.txnindex` is swapped with
/// its log): reopened, the read_committed view is the one before, with or
/// without the cleaning, and a clean then still gives the same view.
#[test]
fn a_kill_at_any_swap_step_keeps_the_committed_view() {
    use fjord_log::SwapStep;
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), compact(150)).unwrap();
        write_history(&log);
        log.append_control(&marker(10, true), 0).unwrap();
        for i in 0..4 {
            log.append(&mut keyed(&format!("g{i}"), "plain", -1, 0), 0)
                .unwrap();
        }
        log.close().unwrap();
    }
    let big = compact(1 << 20);
    let reference = common::copy_dir(dir.path());
    let view = committed_view(&Log::open(reference.path(), big.clone()).unwrap());
    for step in [
        SwapStep::WriteCleaned,
        SwapStep::RenameIndexesToSwap,
        SwapStep::RenameLogToSwap,
        SwapStep::DeleteOld,
        SwapStep::RenameIndexesFromSwap,
        SwapStep::RenameLogFromSwap,
        SwapStep::Checkpoint,
    ] {
        let copy = common::copy_dir(dir.path());
        {
            let log = Log::open(copy.path(), big.clone()).unwrap();
            // Twice, so that the killed pass is one that removes markers'
            // entries (the first removes their records).
            log.clean_until(now(), &CleanerConfig::default(), None)
                .unwrap();
            assert!(
                log.clean_until(now(), &CleanerConfig::default(), Some(step))
                    .is_err()
            );
        }
        let log = Log::open(copy.path(), big.clone()).unwrap();
        assert_eq!(committed_view(&log), view, "{step:?}");
        log.clean_until(now(), &CleanerConfig::default(), None)
            .unwrap();
        assert_eq!(committed_view(&log), view, "{step:?}, cleaned again");
        assert_eq!(log.first_unstable_offset(), None);
    }
}
