//! The leader-epoch cache and the high-watermark checkpoint across
//! restarts and truncations, and follower appends.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use fjord_log::{Log, LogConfig, LogError};
use kafka_protocol::records::Compression;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    }
}

/// Appends batches of three records with epochs 0, 0, 2, 5: offsets 0–2
/// and 3–5 in epoch 0, 6–8 in epoch 2, 9–11 in epoch 5.
fn leader_log(dir: &std::path::Path) -> Log {
    let log = Log::open(dir, config()).unwrap();
    for (i, epoch) in [0, 0, 2, 5].into_iter().enumerate() {
        let mut b = common::batch(3, 100, 1_000 * i as i64, Compression::Lz4);
        let info = log.append(&mut b, epoch).unwrap();
        assert_eq!(info.first_offset, 3 * i as i64);
    }
    log
}

/// OffsetForLeaderEpoch as Kafka answers it (`LeaderEpochFileCache.endOffsetFor`),
/// from `(epoch, start offset)` entries; `None` stands for Kafka's
/// UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
fn kafka_end_offset(entries: &[(i32, i64)], requested: i32, log_end: i64) -> Option<(i32, i64)> {
    if requested < 0 {
        return None;
    }
    if entries.last().is_some_and(|&(e, _)| e == requested) {
        return Some((requested, log_end));
    }
    let higher = entries.iter().find(|&&(e, _)| e > requested)?;
    match entries.iter().rev().find(|&&(e, _)| e <= requested) {
        None => Some((requested, higher.1)),
        Some(&(floor, _)) => Some((floor, higher.1)),
    }
}

fn check_epochs(log: &Log, entries: &[(i32, i64)], ctx: &str) {
    assert_eq!(log.epoch_entries(), entries, "{ctx}");
    assert_eq!(log.latest_epoch(), entries.last().map(|e| e.0), "{ctx}");
    for requested in -1..9 {
        assert_eq!(
            log.end_offset_for_epoch(requested),
            kafka_end_offset(entries, requested, log.log_end_offset()),
            "{ctx}: epoch {requested}"
        );
    }
}

#[test]
fn epochs_0_0_2_5() {
    let dir = tempfile::tempdir().unwrap();
    let log = leader_log(dir.path());
    let entries = [(0, 0), (2, 6), (5, 9)];
    check_epochs(&log, &entries, "appended");
    // Spelled out: the latest epoch ends at the log end; an epoch the log
    // never saw answers with the latest one before it; one past the latest
    // is unknown.
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 6)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 6)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 9)));
    assert_eq!(log.end_offset_for_epoch(4), Some((2, 9)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 12)));
    assert_eq!(log.end_offset_for_epoch(6), None);
    // The stored batches carry their epoch.
    for (offset, epoch) in [(0, 0i32), (3, 0), (6, 2), (9, 5)] {
        let bytes = log
            .read(offset, 1, i64::MAX)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(bytes[12..16], epoch.to_be_bytes());
    }

    // Clean and unclean reopen.
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check_epochs(&log, &entries, "reopened");
    drop(log);
    std::fs::remove_file(dir.path().join(fjord_log::RECOVERY_POINT_CHECKPOINT)).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    check_epochs(&log, &entries, "unclean reopen");

    // Truncation drops the epochs that started at or after the new end.
    log.truncate_to(10).unwrap();
    assert_eq!(log.log_end_offset(), 9);
    check_epochs(&log, &[(0, 0), (2, 6)], "truncated to 9");
    log.truncate_to(7).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    check_epochs(&log, &[(0, 0)], "truncated to 6");
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check_epochs(&log, &[(0, 0)], "truncated, reopened");
    // A new leader epoch starts where the log now ends.
    let mut b = common::batch(2, 10, 9_000, Compression::None);
    log.append(&mut b, 7).unwrap();
    check_epochs(&log, &[(0, 0), (7, 6)], "epoch 7");
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check_epochs(&log, &[(0, 0), (7, 6)], "epoch 7, reopened");
}

#[test]
fn epochs_after_delete_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = leader_log(dir.path());
    log.delete_records_before(7).unwrap();
    // Epoch 0 ended before the log start; epoch 2 now starts at it.
    let entries = [(2, 7), (5, 9)];
    check_epochs(&log, &entries, "start at 7");
    // Older than anything known: the start of the first known epoch.
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 7)));
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check_epochs(&log, &entries, "reopened");
}

#[test]
fn high_watermark_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = leader_log(dir.path());
    assert_eq!(log.read_high_watermark().unwrap(), None);
    log.write_high_watermark(7).unwrap();
    assert_eq!(log.read_high_watermark().unwrap(), Some(7));
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.read_high_watermark().unwrap(), Some(7));
    log.write_high_watermark(12).unwrap();
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.read_high_watermark().unwrap(), Some(12));
}

#[test]
fn follower_keeps_offsets_and_epochs() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = leader_log(leader_dir.path());
    let end = leader.log_end_offset();
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = Log::open(follower_dir.path(), config()).unwrap();

    // Replicate as a fetcher would: whatever one read returns.
    let mut offset = 0;
    while offset < end {
        let bytes = leader
            .read(offset, 500, end)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap();
        let mut copy = bytes.to_vec();
        let info = follower.append_as_follower(&mut copy).unwrap();
        assert_eq!(info.first_offset, offset);
        assert_eq!(
            copy, bytes,
            "a follower append changes nothing in the batches"
        );
        offset = info.last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), end);
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    for o in 0..end {
        let a = leader
            .read(o, 1, end)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap();
        let b = follower
            .read(o, 1, end)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(a, b, "offset {o}");
    }

    // Below the log end: refused, nothing written.
    let old = leader
        .read(6, 1, end)
        .unwrap()
        .slice
        .unwrap()
        .bytes()
        .unwrap();
    let files = common::dir_snapshot(follower_dir.path());
    match follower.append_as_follower(&mut old.to_vec()) {
        Err(LogError::InvalidRecord { .. }) => {}
        other => panic!("replicated batch below the log end: {other:?}"),
    }
    assert_eq!(follower.log_end_offset(), end);
    assert_eq!(common::dir_snapshot(follower_dir.path()), files);
    // Two batches whose offsets go backwards: refused as a whole.
    let mut two = leader
        .read(9, 1, end)
        .unwrap()
        .slice
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    fjord_log_set_base(&mut two, end + 5);
    let mut both = two.clone();
    fjord_log_set_base(&mut two, end);
    both.extend_from_slice(&two);
    assert!(matches!(
        follower.append_as_follower(&mut both),
        Err(LogError::InvalidRecord { .. })
    ));
    assert_eq!(follower.log_end_offset(), end);

    // A gap (a compacted leader) is allowed; offsets and epoch are kept.
    let mut gap = common::batch(2, 10, 50_000, Compression::Zstd);
    fjord_log_set_base(&mut gap, end + 10);
    gap[12..16].copy_from_slice(&6i32.to_be_bytes());
    let info = follower.append_as_follower(&mut gap).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (end + 10, end + 11));
    assert_eq!(follower.log_end_offset(), end + 12);
    assert_eq!(follower.latest_epoch(), Some(6));
    assert_eq!(follower.epoch_entries().last(), Some(&(6, end + 10)));
    // Reading inside the gap serves the batch after it.
    let read = follower.read(end + 3, 1, i64::MAX).unwrap();
    let recs = common::decode_all(&read.slice.unwrap().bytes().unwrap());
    assert_eq!(recs[0].offset, end + 10);

    // All of it survives a reopen.
    drop(follower);
    let follower = Log::open(follower_dir.path(), config()).unwrap();
    assert_eq!(follower.log_end_offset(), end + 12);
    assert_eq!(follower.epoch_entries().last(), Some(&(6, end + 10)));
    let read = follower.read(end + 10, 1, i64::MAX).unwrap();
    assert_eq!(
        common::decode_all(&read.slice.unwrap().bytes().unwrap()).len(),
        2
    );
}

/// Writes a base offset into a stored batch (not covered by the CRC).
fn fjord_log_set_base(batch: &mut [u8], base: i64) {
    batch[0..8].copy_from_slice(&base.to_be_bytes());
}

/// A follower that fell behind its leader's log start starts over there:
/// its old records and epochs are gone, it takes the leader's batches from
/// that offset on, and the same holds after a reopen.
#[test]
fn a_follower_restarts_at_its_leaders_log_start() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = leader_log(leader_dir.path());
    let end = leader.log_end_offset();
    // The leader keeps only offsets 6 on.
    assert_eq!(leader.delete_records_before(6).unwrap(), 6);
    let follower_dir = tempfile::tempdir().unwrap();
    let follower = Log::open(follower_dir.path(), config()).unwrap();
    let mut first = common::batch(3, 100, 0, Compression::None);
    follower.append(&mut first, 0).unwrap();
    assert_eq!(follower.log_end_offset(), 3);

    assert!(follower.restart_at(3).is_err(), "only past the end");
    follower.restart_at(6).unwrap();
    assert_eq!(follower.log_start_offset(), 6);
    assert_eq!(follower.log_end_offset(), 6);
    assert_eq!(
        follower.latest_epoch(),
        None,
        "the old epochs went with the records"
    );
    let mut offset = 6;
    while offset < end {
        let mut copy = leader
            .read(offset, 500, end)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap()
            .to_vec();
        offset = follower.append_as_follower(&mut copy).unwrap().last_offset + 1;
    }
    assert_eq!(follower.log_end_offset(), end);
    assert_eq!(follower.epoch_entries(), leader.epoch_entries());
    follower.close().unwrap();
    drop(follower);
    let reopened = Log::open(follower_dir.path(), config()).unwrap();
    assert_eq!(reopened.log_start_offset(), 6);
    assert_eq!(reopened.log_end_offset(), end);
    assert_eq!(reopened.epoch_entries(), leader.epoch_entries());
}
