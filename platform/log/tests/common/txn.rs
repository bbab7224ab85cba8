//! Transactional batches and markers for the log's transaction tests.

use fjord_log::TxnMarker;

use super::{RawHeader, raw_batch, raw_record};

/// The wall clock in ms (the log's stamps and the cleaner's clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One batch of `records` (key, value) from producer `pid` (epoch 0),
/// transactional or only idempotent; `pid` -1 for a plain batch.
pub fn producer_batch(
    pid: i64,
    sequence: i32,
    records: &[(&str, &str)],
    transactional: bool,
) -> Vec<u8> {
    let body: Vec<u8> = records
        .iter()
        .enumerate()
        .flat_map(|(i, (k, v))| raw_record(i as i64, 0, Some(k.as_bytes()), Some(v.as_bytes())))
        .collect();
    let mut h = RawHeader::new(records.len() as i32, 0, now_ms());
    if pid >= 0 {
        if transactional {
            h.attributes |= 0x10;
        }
        h.producer_id = pid;
        h.producer_epoch = 0;
        h.base_sequence = sequence;
    }
    raw_batch(h, &body)
}

/// A transactional batch of `count` records `k` = `v` of producer `pid`.
pub fn txn_batch(pid: i64, sequence: i32, count: usize) -> Vec<u8> {
    producer_batch(pid, sequence, &vec![("k", "v"); count], true)
}

/// One record `key` = `value` of producer `pid` in a transaction, or
/// plain with `pid` -1.
pub fn keyed(key: &str, value: &str, pid: i64, sequence: i32) -> Vec<u8> {
    producer_batch(pid, sequence, &[(key, value)], true)
}

/// The COMMIT (or ABORT) marker of producer `pid` (epoch 0).
pub fn marker(pid: i64, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: 0,
        commit,
        coordinator_epoch: 1,
    }
}
