//! What the cleaner does with transactional batches (Kafka's
//! `CleanedTransactionMetadata`): one walk per pass, from the log start
//! through every group it rewrites, in offset order.
//!
//! - The records of an aborted transaction go (the walk enters an aborted
//!   transaction at its `.txnindex` entry's first offset and leaves it at
//!   its ABORT marker, as a read_committed reader does).
//! - A marker whose transaction has no batch left before it in the log is
//!   *removable*: an ABORT marker whose records were all removed by earlier
//!   passes, a COMMIT marker whose records were all compacted away. The
//!   rewrite stamps it with a delete horizon (KIP-534, as tombstones) and a
//!   pass after the horizon removes it. A marker whose data this pass
//!   still met stays as it is, and so does its `.txnindex` entry.
//! - The `.txnindex` of a rewritten group holds the entries of the ABORT
//!   markers whose data the walk met: an aborted transaction with no
//!   record left needs none (a reader has nothing to skip).
//!
//! The walk covers the whole log from its start, so "no batch before the
//! marker" holds for the whole log: a transactional batch without its
//! marker (which would reopen the transaction at a recovery scan and stop
//! the last stable offset) never remains.

use std::collections::{HashMap, HashSet};

use crate::batch::BatchHeader;
use crate::control::{TRANSACTIONAL_ATTRIBUTE, TxnMarker};
use crate::error::LogError;
use crate::transactions::AbortedTxn;

/// The state of the walk (see the module documentation).
#[derive(Debug)]
pub(crate) struct CleanedTxns {
    /// Aborted transactions not entered yet, latest first.
    pending: Vec<AbortedTxn>,
    /// Producer → the aborted transaction the walk is inside of, and
    /// whether a batch of it was met.
    aborting: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers with a transactional batch met since their last marker.
    committing: HashSet<i64>,
    /// Entries for the `.txnindex` of the group being rewritten.
    entries: Vec<AbortedTxn>,
}

impl CleanedTxns {
    /// A walk over a log whose aborted transactions are `aborted`.
    pub(crate) fn new(mut aborted: Vec<AbortedTxn>) -> CleanedTxns {
        aborted.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
        CleanedTxns {
            pending: aborted,
            aborting: HashMap::new(),
            committing: HashSet::new(),
            entries: Vec::new(),
        }
    }

    /// Enters the aborted transactions begun at or before `last_offset`
    /// (Kafka's `consumeAbortedTxnsUpTo`).
    fn enter_up_to(&mut self, last_offset: i64) {
        while self
            .pending
            .last()
            .is_some_and(|a| a.first_offset <= last_offset)
        {
            if let Some(a) = self.pending.pop() {
                self.aborting.insert(a.producer_id, (a, false));
            }
        }
    }

    /// Takes a data batch: whether its records belong to an aborted
    /// transaction (and go).
    pub(crate) fn data_is_aborted(&mut self, header: &BatchHeader) -> bool {
        if header.producer_id < 0 || header.attributes & TRANSACTIONAL_ATTRIBUTE == 0 {
            return false;
        }
        self.enter_up_to(header.last_offset());
        if let Some((_, met)) = self.aborting.get_mut(&header.producer_id) {
            *met = true;
            return true;
        }
        self.committing.insert(header.producer_id);
        false
    }

    /// Takes a control batch (whole bytes `batch`): whether it may be
    /// removed once its delete horizon has passed.
    pub(crate) fn marker_is_removable(
        &mut self,
        header: &BatchHeader,
        batch: &[u8],
    ) -> Result<bool, LogError> {
        self.enter_up_to(header.last_offset());
        if header.records_count == 0 {
            // A marker emptied by an earlier pass (kept as a producer's
            // last batch): nothing of it is left to keep.
            return Ok(true);
        }
        let Some(marker) = TxnMarker::parse(batch)? else {
            // A control record of a type we do not know: left alone.
            return Ok(false);
        };
        let met_data = self.committing.remove(&header.producer_id);
        if marker.commit {
            return Ok(!met_data);
        }
        match self.aborting.remove(&header.producer_id) {
            Some((entry, true)) => {
                // Its records go in this pass: the marker and its entry
                // stay until a later pass finds nothing before it.
                self.entries.push(entry);
                Ok(false)
            }
            Some((_, false)) => Ok(!met_data),
            None => Ok(!met_data),
        }
    }

    /// The `.txnindex` entries of the group walked since the last call.
    pub(crate) fn take_entries(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.entries)
    }
}
