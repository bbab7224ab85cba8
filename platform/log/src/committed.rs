//! What a read_committed reader passes over: the batches of aborted
//! transactions, found as Kafka's consumers find them — from the aborted
//! transactions a read returned (the `.txnindex` entries overlapping it)
//! and the ABORT markers met on the way. Every in-process reader that
//! must not see aborted records (pipelines) walks its batches through one
//! [`CommittedFilter`].

use std::collections::HashSet;

use crate::batch::BatchHeader;
use crate::control::{TRANSACTIONAL_ATTRIBUTE, TxnMarker};
use crate::transactions::AbortedTxn;

/// Walks the batches of one read, in offset order, and says which hold
/// committed (or non-transactional) records.
#[derive(Debug)]
pub struct CommittedFilter {
    /// Aborted transactions not reached yet, latest first (popped from
    /// the end).
    pending: Vec<AbortedTxn>,
    /// Producers whose aborted transaction the walk is inside of.
    aborting: HashSet<i64>,
}

impl CommittedFilter {
    /// A filter over a read that came with `aborted` (any order).
    pub fn new(mut aborted: Vec<AbortedTxn>) -> CommittedFilter {
        aborted.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
        CommittedFilter {
            pending: aborted,
            aborting: HashSet::new(),
        }
    }

    /// Whether the records of the batch `header` (whole bytes `batch`)
    /// are to be read: false for control batches and for a batch of an
    /// aborted transaction. Batches must come in offset order.
    pub fn keeps(&mut self, header: &BatchHeader, batch: &[u8]) -> bool {
        if header.producer_id >= 0 {
            // Transactions that began at or before this batch's end are
            // entered (Kafka's consumeAbortedTransactionsUpTo).
            while self
                .pending
                .last()
                .is_some_and(|a| a.first_offset < header.next_offset())
            {
                if let Some(a) = self.pending.pop() {
                    self.aborting.insert(a.producer_id);
                }
            }
            if header.is_control() {
                // An ABORT marker ends that producer's aborted transaction.
                if let Ok(Some(TxnMarker { commit: false, .. })) = TxnMarker::parse(batch) {
                    self.aborting.remove(&header.producer_id);
                }
                return false;
            }
            if header.attributes & TRANSACTIONAL_ATTRIBUTE != 0
                && self.aborting.contains(&header.producer_id)
            {
                return false;
            }
        }
        !header.is_control()
    }
}
