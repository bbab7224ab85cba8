//! One transactional id's state and the rules of its transitions, as
//! Kafka's TransactionMetadata keeps them (the classic protocol,
//! transaction.version 1): pure functions of the current state and a
//! request, so they are tested without a broker. The coordinator persists
//! the state a rule returns before it takes it.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::TxnError;

/// Kafka's transaction states, with the ids its log records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnStatus {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnStatus {
    /// The state of a record's status id.
    pub(crate) fn from_id(id: i8) -> Option<Self> {
        Some(match id {
            0 => TxnStatus::Empty,
            1 => TxnStatus::Ongoing,
            2 => TxnStatus::PrepareCommit,
            3 => TxnStatus::PrepareAbort,
            4 => TxnStatus::CompleteCommit,
            5 => TxnStatus::CompleteAbort,
            6 => TxnStatus::Dead,
            7 => TxnStatus::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use (Kafka's
    /// TransactionState names).
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
            TxnStatus::Dead => "Dead",
            TxnStatus::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Every state, for ListTransactions' filter check.
    pub(crate) const ALL: [TxnStatus; 8] = [
        TxnStatus::Empty,
        TxnStatus::Ongoing,
        TxnStatus::PrepareCommit,
        TxnStatus::PrepareAbort,
        TxnStatus::CompleteCommit,
        TxnStatus::CompleteAbort,
        TxnStatus::Dead,
        TxnStatus::PrepareEpochFence,
    ];

    /// A commit or abort whose markers are being written.
    pub(crate) fn is_preparing(self) -> bool {
        matches!(self, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort)
    }
}

/// A transactional id's producer, state and partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1: none), so a retried
    /// InitProducerId (KIP-360) that lost its answer gets the same one.
    /// Not persisted, as in Kafka's version 0 records.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the transaction began (its first partition); -1 before.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// What EndTxn does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EndStep {
    /// Persist this PrepareCommit / PrepareAbort, then write the markers.
    Prepare(TxnMetadata),
    /// A retry of an end that completed: answer success.
    Done,
}

/// The highest epoch a producer may have: past it the id changes (Kafka
/// keeps `Short.MaxValue` unused).
const MAX_EPOCH: i16 = i16::MAX - 1;

impl TxnMetadata {
    /// A new id's first producer: epoch 0, no transaction.
    pub(crate) fn new(id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnMetadata {
            transactional_id: id.to_owned(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            status: TxnStatus::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// The partitions grouped by topic, in order.
    pub(crate) fn topics(&self) -> BTreeMap<String, Vec<i32>> {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            topics.entry(topic.clone()).or_default().push(*p);
        }
        topics
    }

    /// Whether a request of `producer_id` at `epoch` speaks for the
    /// current producer: another id is INVALID_PRODUCER_ID_MAPPING, another
    /// epoch PRODUCER_FENCED (a newer producer took over).
    pub(crate) fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// InitProducerId for an id that exists, with `new_id` to use if the
    /// epoch is exhausted. `expected` is the (id, epoch) a v3+ client
    /// names (KIP-360), if any. An open transaction is not bumped here:
    /// the coordinator aborts it first ([`TxnMetadata::fence`]).
    pub(crate) fn bump(
        &self,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        new_id: impl FnOnce() -> i64,
        now_ms: i64,
    ) -> Result<TxnMetadata, TxnError> {
        if let Some((id, epoch)) = expected {
            // The epoch before the last bump counts too: the producer whose
            // open transaction the coordinator aborted (and fenced) asks
            // again with the epoch it had, as Kafka's isValidProducerId.
            let current = id == self.producer_id
                && (epoch == self.producer_epoch
                    || (self.last_producer_epoch >= 0 && epoch == self.last_producer_epoch));
            if !current {
                return Err(TxnError::ProducerFenced);
            }
        }
        if self.status.is_preparing() || self.status == TxnStatus::PrepareEpochFence {
            return Err(TxnError::ConcurrentTransactions);
        }
        if self.status == TxnStatus::Ongoing {
            return Err(TxnError::ConcurrentTransactions);
        }
        let mut next = self.clone();
        if self.producer_epoch >= MAX_EPOCH {
            next.producer_id = new_id();
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
        } else {
            next.producer_epoch = self.producer_epoch + 1;
            next.last_producer_epoch = self.producer_epoch;
        }
        next.timeout_ms = timeout_ms;
        next.status = TxnStatus::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        Ok(next)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the state with `partitions`
    /// added (the transaction begins with its first), or `None` when
    /// nothing changes.
    pub(crate) fn add_partitions(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match self.status {
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => {
                return Err(TxnError::ConcurrentTransactions);
            }
            TxnStatus::Dead | TxnStatus::PrepareEpochFence => {
                return Err(TxnError::InvalidTxnState);
            }
            TxnStatus::Ongoing
                if partitions
                    .iter()
                    .all(|p| self.partitions.contains(&(p.0.clone(), p.1))) =>
            {
                return Ok(None);
            }
            _ => {}
        }
        let mut next = self.clone();
        if self.status != TxnStatus::Ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
            next.status = TxnStatus::Ongoing;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// EndTxn of the current producer.
    pub(crate) fn end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match (self.status, commit) {
            (TxnStatus::Ongoing, _) => {
                let mut next = self.clone();
                next.status = if commit {
                    TxnStatus::PrepareCommit
                } else {
                    TxnStatus::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(EndStep::Prepare(next))
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => {
                Ok(EndStep::Done)
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The coordinator's own abort of an open transaction (a new producer
    /// of the id, or the timeout): the epoch is bumped first, so the
    /// markers fence the old producer at every partition and its next
    /// request to the coordinator is PRODUCER_FENCED.
    pub(crate) fn fence(&self, now_ms: i64) -> Option<TxnMetadata> {
        if self.status != TxnStatus::Ongoing || self.producer_epoch >= MAX_EPOCH {
            return None;
        }
        let mut next = self.clone();
        next.last_producer_epoch = self.producer_epoch;
        next.producer_epoch = self.producer_epoch + 1;
        next.status = TxnStatus::PrepareAbort;
        next.last_update_ms = now_ms;
        Some(next)
    }

    /// The completed state after the markers of a prepared end.
    pub(crate) fn complete(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.status = match self.status {
            TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
            _ => TxnStatus::CompleteAbort,
        };
        next.partitions.clear();
        next.last_update_ms = now_ms;
        next
    }

    /// An open transaction past its timeout.
    pub(crate) fn timed_out(&self, now_ms: i64) -> bool {
        self.status == TxnStatus::Ongoing
            && self.start_ms >= 0
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    fn ongoing() -> TxnMetadata {
        let txn = TxnMetadata::new("tx", 10, 60_000, 0);
        txn.add_partitions(10, 0, &parts(&[("t", 0)]), 5)
            .expect("adds")
            .expect("changes")
    }

    #[test]
    fn a_transaction_begins_with_its_first_partition() {
        let txn = ongoing();
        assert_eq!((txn.status, txn.start_ms), (TxnStatus::Ongoing, 5));
        // Adding a partition already in it changes nothing.
        assert_eq!(txn.add_partitions(10, 0, &parts(&[("t", 0)]), 6), Ok(None));
        let more = txn
            .add_partitions(10, 0, &parts(&[("u", 1)]), 7)
            .expect("adds")
            .expect("changes");
        assert_eq!(more.partitions.len(), 2);
        assert_eq!(more.start_ms, 5);
    }

    #[test]
    fn requests_of_another_producer_are_refused() {
        let txn = ongoing();
        assert_eq!(
            txn.add_partitions(11, 0, &parts(&[("t", 1)]), 6),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(
            txn.end(10, 1, true, 6),
            Err(TxnError::ProducerFenced),
            "a newer epoch than the coordinator's is no producer of it"
        );
    }

    #[test]
    fn end_prepares_completes_and_answers_retries() {
        let txn = ongoing();
        let EndStep::Prepare(prepared) = txn.end(10, 0, true, 8).expect("ends") else {
            panic!("not prepared");
        };
        assert_eq!(prepared.status, TxnStatus::PrepareCommit);
        assert_eq!(
            prepared.end(10, 0, true, 9),
            Err(TxnError::ConcurrentTransactions)
        );
        assert_eq!(
            prepared.end(10, 0, false, 9),
            Err(TxnError::InvalidTxnState)
        );
        assert_eq!(
            prepared.add_partitions(10, 0, &parts(&[("t", 1)]), 9),
            Err(TxnError::ConcurrentTransactions)
        );
        let done = prepared.complete(10);
        assert_eq!(done.status, TxnStatus::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(done.end(10, 0, true, 11), Ok(EndStep::Done));
        assert_eq!(done.end(10, 0, false, 11), Err(TxnError::InvalidTxnState));
        // The next transaction begins afresh.
        let next = done
            .add_partitions(10, 0, &parts(&[("u", 2)]), 12)
            .expect("adds")
            .expect("changes");
        assert_eq!((next.status, next.start_ms), (TxnStatus::Ongoing, 12));
        assert_eq!(next.partitions.len(), 1);
        // Ending nothing is an invalid state.
        let empty = TxnMetadata::new("tx", 1, 1000, 0);
        assert_eq!(empty.end(1, 0, true, 1), Err(TxnError::InvalidTxnState));
    }

    #[test]
    fn init_bumps_the_epoch_and_checks_kip_360_ids() {
        let txn = TxnMetadata::new("tx", 10, 60_000, 0);
        let bumped = txn.bump(None, 30_000, || 99, 1).expect("bumps");
        assert_eq!((bumped.producer_id, bumped.producer_epoch), (10, 1));
        assert_eq!(bumped.timeout_ms, 30_000);
        let twice = bumped.bump(None, 30_000, || 99, 2).expect("bumps");
        assert_eq!(
            twice.bump(Some((10, 0)), 1, || 99, 2),
            Err(TxnError::ProducerFenced),
            "an epoch older than the one before the last bump"
        );
        assert_eq!(
            bumped.bump(Some((11, 1)), 1, || 99, 2),
            Err(TxnError::ProducerFenced)
        );
        assert!(bumped.bump(Some((10, 1)), 1, || 99, 2).is_ok());
        // An open transaction is aborted before the producer changes.
        assert_eq!(
            ongoing().bump(None, 1, || 99, 2),
            Err(TxnError::ConcurrentTransactions)
        );
        // An exhausted epoch gets a new id.
        let mut old = txn.clone();
        old.producer_epoch = MAX_EPOCH;
        let renewed = old.bump(None, 1, || 99, 2).expect("renews");
        assert_eq!((renewed.producer_id, renewed.producer_epoch), (99, 0));
    }

    #[test]
    fn fencing_aborts_with_a_bumped_epoch_and_timeouts_count_from_the_start() {
        let txn = ongoing();
        assert!(!txn.timed_out(60_005));
        assert!(txn.timed_out(60_006));
        let fenced = txn.fence(60_006).expect("fences");
        assert_eq!(
            (fenced.status, fenced.producer_epoch),
            (TxnStatus::PrepareAbort, 1)
        );
        assert!(txn.end(10, 0, true, 1).is_ok());
        assert_eq!(fenced.end(10, 0, true, 1), Err(TxnError::ProducerFenced));
        let aborted = fenced.complete(2);
        assert_eq!(aborted.status, TxnStatus::CompleteAbort);
        // The aborted producer may initialize again (KIP-360), past the
        // fencing epoch; an older epoch may not.
        let again = aborted.bump(Some((10, 0)), 1, || 99, 3).expect("bumps");
        assert_eq!((again.producer_id, again.producer_epoch), (10, 2));
        let mut older = aborted.clone();
        older.last_producer_epoch = 5;
        assert_eq!(
            older.bump(Some((10, 0)), 1, || 99, 3),
            Err(TxnError::ProducerFenced)
        );
        assert!(TxnMetadata::new("tx", 1, 1, 0).fence(5).is_none());
    }
}
