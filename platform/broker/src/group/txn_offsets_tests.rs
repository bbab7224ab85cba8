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
fn control_keys_parse() {
    assert_eq!(control_type(&[0, 0, 0, 1]), Some(true));
    assert_eq!(control_type(&[0, 0, 0, 0]), Some(false));
    assert_eq!(control_type(&[0, 0, 0, 5]), None);
    assert_eq!(control_type(&[0, 0]), None);
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
