//! Pending transactional offsets: a commit marker makes them committed, an
//! abort drops them, only the producer's offsets on the marker's partition
//! are completed, and a later plain commit wins over the transaction's.

use super::*;
use crate::group::GroupSettings;

fn offset(n: i64) -> CommittedOffset {
    CommittedOffset {
        offset: n,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 1,
    }
}

fn pend(c: &GroupCoordinator, pid: i64, group: &str, partition: i32, n: i64) {
    c.txn_offsets
        .lock()
        .add(pid, group, partition, [(("t".to_owned(), 0), offset(n))]);
}

#[tokio::test]
async fn commit_marker_makes_pending_offsets_committed() {
    let c = GroupCoordinator::new(GroupSettings::for_tests());
    c.set_offset("g", ("t".to_owned(), 0), Some(offset(5)));
    pend(&c, 7, "g", 3, 10);
    assert!(c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(c.committed("g", "t", 0), Some(offset(5)));
    // Another partition's marker, or another producer's, leaves it pending.
    c.complete_transaction(4, 7, 0, true).await;
    c.complete_transaction(3, 8, 0, true).await;
    assert!(c.has_pending_txn_offset("g", "t", 0));
    c.complete_transaction(3, 7, 0, true).await;
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(c.committed("g", "t", 0), Some(offset(10)));
}

#[tokio::test]
async fn abort_marker_drops_pending_offsets() {
    let c = GroupCoordinator::new(GroupSettings::for_tests());
    c.set_offset("g", ("t".to_owned(), 0), Some(offset(5)));
    pend(&c, 7, "g", 3, 10);
    c.complete_transaction(3, 7, 0, false).await;
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(c.committed("g", "t", 0), Some(offset(5)));
    // A second marker finds nothing left.
    c.complete_transaction(3, 7, 0, true).await;
    assert_eq!(c.committed("g", "t", 0), Some(offset(5)));
}

#[tokio::test]
async fn later_plain_commit_wins_over_the_transaction() {
    let c = GroupCoordinator::new(GroupSettings::for_tests());
    pend(&c, 7, "g", 3, 10);
    c.txn_offsets.lock().supersede("g", &("t".to_owned(), 0));
    c.set_offset("g", ("t".to_owned(), 0), Some(offset(20)));
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    c.complete_transaction(3, 7, 0, true).await;
    assert_eq!(c.committed("g", "t", 0), Some(offset(20)));
}

#[test]
fn txn_batch_is_one_transactional_unsequenced_batch() {
    let records = vec![
        (Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))),
        (Bytes::from_static(b"k2"), None),
    ];
    let batch = encode_txn_batch(42, 3, &records, 1_000).unwrap();
    let header = fjord_log::validate_batch(&batch).unwrap();
    assert_eq!(header.size(), batch.len());
    assert_eq!(header.records_count, 2);
    assert_eq!(header.producer_id, 42);
    assert_eq!(header.producer_epoch, 3);
    assert_eq!(header.base_sequence, -1);
    assert_ne!(header.attributes & 0x10, 0);
    assert!(!header.is_control());
}

/// Loading `__consumer_offsets`: a transaction's offsets become committed
/// at its COMMIT marker, are dropped at ABORT, stay pending without one,
/// and lose to a plain commit written after them.
#[tokio::test]
async fn load_applies_markers_in_log_order() {
    use super::offsets_topic::{load_partition, offset_key, offset_value};
    use crate::partition::Partition;
    use fjord_log::{BatchBuilder, Log, LogConfig};

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let partition = Partition::new("__consumer_offsets", 0, log, 0);
    let record = |p: i32, n: i64| (offset_key("g", "t", p), Some(offset_value(&offset(n))));
    let plain = |p: i32, n: i64| {
        let (k, v) = record(p, n);
        let mut b = BatchBuilder::new();
        b.push(1, Some(k), v);
        b.build().unwrap()
    };
    let txn = |pid: i64, p: i32, n: i64| encode_txn_batch(pid, 0, &[record(p, n)], 1).unwrap();
    partition.append(plain(0, 5)).await.unwrap();
    partition.append(txn(7, 0, 10)).await.unwrap();
    partition.append(txn(8, 1, 20)).await.unwrap();
    partition.append(txn(9, 2, 30)).await.unwrap();
    partition.append(txn(10, 3, 40)).await.unwrap();
    partition.append(plain(3, 50)).await.unwrap();
    for (pid, commit) in [(7, true), (8, false), (10, true)] {
        partition.write_txn_marker(pid, 0, commit, 0).await.unwrap();
    }

    let c = GroupCoordinator::new(GroupSettings::for_tests());
    load_partition(&c, &partition, partition.log().log_end_offset());
    assert_eq!(c.committed("g", "t", 0), Some(offset(10)));
    assert_eq!(c.committed("g", "t", 1), None);
    assert!(!c.has_pending_txn_offset("g", "t", 1));
    assert_eq!(c.committed("g", "t", 2), None);
    assert!(c.has_pending_txn_offset("g", "t", 2));
    assert_eq!(c.committed("g", "t", 3), Some(offset(50)));
    // The marker of the transaction still open may come later.
    c.complete_transaction(0, 9, 0, true).await;
    assert_eq!(c.committed("g", "t", 2), Some(offset(30)));
    assert!(!c.has_pending_txn_offset("g", "t", 2));
}

/// Offset retention spares an offset an open transaction is replacing.
#[tokio::test]
async fn retention_spares_offsets_with_a_pending_transaction() {
    let settings = GroupSettings {
        offsets_retention_ms: 10,
        ..GroupSettings::for_tests()
    };
    let c = GroupCoordinator::new(settings);
    c.set_offset("g", ("t".to_owned(), 0), Some(offset(5)));
    c.set_offset("g", ("t".to_owned(), 1), Some(offset(6)));
    pend(&c, 7, "g", 3, 10);
    c.tick(std::time::Instant::now(), 1_000);
    c.tick(std::time::Instant::now(), 2_000);
    assert_eq!(c.committed("g", "t", 0), Some(offset(5)));
    assert_eq!(c.committed("g", "t", 1), None);
    c.complete_transaction(3, 7, 0, true).await;
    assert_eq!(c.committed("g", "t", 0), Some(offset(10)));
}

/// Offsets whose transaction the coordinator aborted while they were being
/// stored (their producer killed mid-TxnOffsetCommit): the ABORT marker is
/// in the log after them and found nothing pending, so they must not
/// become pending after it — nothing would ever complete them.
#[tokio::test]
async fn offsets_stored_before_an_abort_that_came_first_are_not_left_pending() {
    use super::offsets_topic::{offset_key, offset_value};
    use crate::partition::Partition;
    use fjord_log::{Log, LogConfig};

    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let partition = Partition::new("__consumer_offsets", 0, log, 0);
    let c = GroupCoordinator::new(GroupSettings::for_tests());
    let records = [(offset_key("g", "t", 0), Some(offset_value(&offset(10))))];
    // Stored (the request still waits for the replicas), then aborted.
    partition
        .append(encode_txn_batch(7, 0, &records, 1).unwrap())
        .await
        .unwrap();
    partition.write_txn_marker(7, 1, false, 0).await.unwrap();
    c.complete_transaction(0, 7, 1, false).await;
    c.add_pending(&partition, 7, "g", vec![(("t".to_owned(), 0), offset(10))]);
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    assert_eq!(c.committed("g", "t", 0), None);

    // A transaction still open: pending until its marker.
    partition
        .append(encode_txn_batch(8, 0, &records, 1).unwrap())
        .await
        .unwrap();
    c.add_pending(&partition, 8, "g", vec![(("t".to_owned(), 0), offset(10))]);
    assert!(c.has_pending_txn_offset("g", "t", 0));
}
