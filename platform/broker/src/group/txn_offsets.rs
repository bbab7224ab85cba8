//! Offsets committed inside a transaction (TxnOffsetCommit, KIP-98 / KIP-447):
//! stored in `__consumer_offsets` as a transactional batch right away, but
//! pending until the transaction coordinator writes its marker to the same
//! offsets partition. A COMMIT marker turns them into the group's committed
//! offsets, as if they had been committed at that point of the log; an ABORT
//! marker drops them. Until then OffsetFetch with `require_stable` answers
//! UNSTABLE_OFFSET_COMMIT for their partitions.
//!
//! Pending offsets are kept per producer id and group, with the offsets
//! partition they were written to: a marker completes exactly the producer's
//! offsets on the partition it was written to.
//!
//! Ordering as Kafka's: a plain commit (or a tombstone) of the same
//! partition written after the transactional one wins over it even when the
//! transaction commits later — the log order decides, not the marker's.
//! Here the later write marks the pending offset `superseded`, which the
//! commit then skips.
//!
//! Lock order: the groups' lock (`GroupCoordinator::lock`) before this one.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use fjord_log::LogError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::commits::Committer;
use super::coordinator::GroupCoordinator;
use super::offsets_topic::{self, OffsetsTopic, offset_key, offset_value};
use super::state::{CommittedOffset, Group, GroupState};
use crate::error::GroupError;

/// Offsets of one group by partition.
type PendingOffsets = HashMap<(String, i32), PendingOffset>;

/// One offset waiting for its transaction's marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingOffset {
    pub offset: CommittedOffset,
    /// A later non-transactional write (commit or tombstone) of the same
    /// partition: this offset must not overwrite it when the transaction
    /// commits.
    pub superseded: bool,
}

/// One producer's pending offsets of one group.
#[derive(Debug, Default)]
struct PendingGroup {
    /// The `__consumer_offsets` partition they were written to.
    offsets_partition: i32,
    offsets: PendingOffsets,
}

/// Every pending transactional offset: producer id → group → offsets.
#[derive(Debug, Default)]
pub(crate) struct TxnOffsets {
    by_producer: HashMap<i64, HashMap<String, PendingGroup>>,
}

impl TxnOffsets {
    /// Records `offsets` of `group`, written by `producer_id` to
    /// `offsets_partition`; a later one of the same partition replaces an
    /// earlier one of the same transaction.
    pub(crate) fn add(
        &mut self,
        producer_id: i64,
        group: &str,
        offsets_partition: i32,
        offsets: impl IntoIterator<Item = ((String, i32), CommittedOffset)>,
    ) {
        let pending = self
            .by_producer
            .entry(producer_id)
            .or_default()
            .entry(group.to_owned())
            .or_default();
        pending.offsets_partition = offsets_partition;
        for (key, offset) in offsets {
            pending.offsets.insert(
                key,
                PendingOffset {
                    offset,
                    superseded: false,
                },
            );
        }
    }

    /// Takes out every offset of `producer_id` written to
    /// `offsets_partition`, by group.
    pub(crate) fn take(
        &mut self,
        offsets_partition: i32,
        producer_id: i64,
    ) -> Vec<(String, PendingOffsets)> {
        let Some(groups) = self.by_producer.get_mut(&producer_id) else {
            return Vec::new();
        };
        let ids: Vec<String> = groups
            .iter()
            .filter(|(_, g)| g.offsets_partition == offsets_partition)
            .map(|(id, _)| id.clone())
            .collect();
        let taken = ids
            .into_iter()
            .filter_map(|id| groups.remove(&id).map(|g| (id, g.offsets)))
            .collect();
        if groups.is_empty() {
            self.by_producer.remove(&producer_id);
        }
        taken
    }

    /// A non-transactional write of `group`'s `key` (commit or tombstone)
    /// came after every pending offset of it: those must not overwrite it.
    pub(crate) fn supersede(&mut self, group: &str, key: &(String, i32)) {
        for groups in self.by_producer.values_mut() {
            if let Some(offset) = groups.get_mut(group).and_then(|g| g.offsets.get_mut(key)) {
                offset.superseded = true;
            }
        }
    }

    /// Whether any open transaction has an offset of `group` for `key`.
    pub(crate) fn is_pending(&self, group: &str, key: &(String, i32)) -> bool {
        self.by_producer.values().any(|groups| {
            groups
                .get(group)
                .is_some_and(|g| g.offsets.get(key).is_some_and(|o| !o.superseded))
        })
    }

    /// Drops every pending offset of `group` (DeleteGroups) and returns
    /// their partitions: as Kafka, a deleted group's open transactions
    /// leave no offsets behind when they commit, and the deletion writes
    /// tombstones for them too so a reload does not bring them back.
    pub(crate) fn remove_group(&mut self, group: &str) -> Vec<(String, i32)> {
        let mut keys = Vec::new();
        for groups in self.by_producer.values_mut() {
            if let Some(pending) = groups.remove(group) {
                keys.extend(pending.offsets.into_keys());
            }
        }
        self.by_producer.retain(|_, groups| !groups.is_empty());
        keys.sort();
        keys.dedup();
        keys
    }

    /// Drops everything pending on `offsets_partition` (its groups moved
    /// to another coordinator, which reloads them from the log).
    pub(crate) fn remove_partition(&mut self, offsets_partition: i32) {
        for groups in self.by_producer.values_mut() {
            groups.retain(|_, g| g.offsets_partition != offsets_partition);
        }
        self.by_producer.retain(|_, groups| !groups.is_empty());
    }
}

impl GroupCoordinator {
    /// Called after the transaction coordinator wrote a marker of
    /// `producer_id` to partition `offsets_partition` of
    /// `__consumer_offsets`: with `commit`, that producer's pending offsets
    /// of the groups on that partition become committed offsets (unless a
    /// later plain commit of the same partition superseded them); without,
    /// they are dropped. The epoch is not checked: the marker is already in
    /// the log, and the log is what a reload replays.
    // Called by the transaction coordinator (branch txcoord) once its
    // marker is written; until that is merged only tests call it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn complete_transaction(
        &self,
        offsets_partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) {
        tracing::debug!(
            offsets_partition,
            producer_id,
            producer_epoch,
            commit,
            "transaction marker written to __consumer_offsets"
        );
        self.complete_txn(offsets_partition, producer_id, commit);
    }

    /// [`Self::complete_transaction`] without waiting: also what loading
    /// `__consumer_offsets` does at each marker.
    pub(crate) fn complete_txn(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        // Groups first, then the pending offsets (the lock order): an
        // OffsetFetch never sees an offset neither pending nor committed.
        let mut groups = self.lock();
        let taken = self.txn_offsets.lock().take(offsets_partition, producer_id);
        let count: usize = taken.iter().map(|(_, o)| o.len()).sum();
        tracing::debug!(
            offsets_partition,
            producer_id,
            commit,
            offsets = count,
            "transactional offsets completed"
        );
        if !commit {
            return;
        }
        for (group_id, offsets) in taken {
            let group = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id));
            for (key, pending) in offsets {
                if !pending.superseded {
                    group.offsets.insert(key, pending.offset);
                }
            }
        }
    }

    /// TxnOffsetCommit: checks that `by` may commit for `group_id`, writes
    /// `offsets` as one transactional batch of `producer_id`/`producer_epoch`
    /// to the group's partition of `__consumer_offsets` and keeps them
    /// pending until the transaction's marker (`complete_transaction`).
    pub(crate) async fn commit_txn_offsets(
        &self,
        offsets_topic: &OffsetsTopic,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        by: Committer<'_>,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), GroupError> {
        self.authorise_txn_commit(group_id, by)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<_> = offsets
            .iter()
            .map(|((topic, p), o)| (offset_key(group_id, topic, *p), Some(offset_value(o))))
            .collect();
        let index = offsets_topic::append_batch(offsets_topic, group_id, |now| {
            encode_txn_batch(producer_id, producer_epoch, &records, now)
        })
        .await?;
        let partition = offsets_topic::topic(offsets_topic)
            .await?
            .partition(index)
            .ok_or(GroupError::NotCoordinator)?;
        self.add_pending(&partition, producer_id, group_id, offsets);
        Ok(())
    }

    /// Makes `offsets`, just stored in `partition` by `producer_id`,
    /// pending — unless the transaction ended after they were stored. Its
    /// client does not end it before this request is answered, but the
    /// coordinator may (the producer killed while the batch was being
    /// replicated, and its next incarnation's InitProducerId aborting it,
    /// or its timeout): then the marker is in the log after them and was
    /// applied when nothing was pending yet, so they would be pending for
    /// ever (OffsetFetch with require_stable answering
    /// UNSTABLE_OFFSET_COMMIT). The log, read under the groups' lock that
    /// completing a marker takes, tells: the producer has no transaction
    /// open there any more. (Only an abort ends it so: a commit needs this
    /// request answered first.)
    pub(crate) fn add_pending(
        &self,
        partition: &crate::partition::Partition,
        producer_id: i64,
        group_id: &str,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) {
        let _groups = self.lock();
        if !partition.log().has_open_transaction(producer_id) {
            tracing::debug!(
                group_id,
                producer_id,
                "transactional offsets not pending: their transaction ended while they were stored"
            );
            return;
        }
        self.txn_offsets
            .lock()
            .add(producer_id, group_id, partition.index(), offsets);
    }

    /// Kafka's checks of a transactional commit: a producer without group
    /// membership (generation -1, no member id nor instance id: TxnOffsetCommit
    /// v0–2, or a producer not in a group) may always commit; otherwise the
    /// member must be the group's at its generation (v3+, KIP-447):
    /// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION. Unlike a
    /// plain commit, a rebalance in progress does not refuse it.
    fn authorise_txn_commit(&self, group_id: &str, by: Committer<'_>) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        if group.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let anonymous = by.generation < 0 && by.member_id.is_empty() && by.instance_id.is_none();
        if anonymous || (by.generation < 0 && group.has_no_members()) {
            return Ok(());
        }
        if let Some(consumer) = group.consumer.as_mut() {
            // Kafka answers a stale member epoch of a transactional commit
            // with ILLEGAL_GENERATION, the error producers know.
            return Self::check_consumer_member(
                consumer,
                by.member_id,
                by.generation,
                Some(Instant::now()),
            )
            .map_err(|e| match e {
                GroupError::StaleMemberEpoch => GroupError::IllegalGeneration,
                e => e,
            });
        }
        Self::check_member(group, by.member_id, by.instance_id, by.generation)?;
        if let Some(member) = group.members.get_mut(by.member_id) {
            member.last_seen = Instant::now();
        }
        Ok(())
    }

    /// Whether `group`'s offset of `topic`/`partition` waits for a
    /// transaction (OffsetFetch with `require_stable`).
    pub(crate) fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets
            .lock()
            .is_pending(group, &(topic.to_owned(), partition))
    }
}

/// One transactional batch of offset records, as Kafka's coordinator writes
/// them: producer id and epoch of the transaction, no sequence (-1), so the
/// partition does not check one.
pub(crate) fn encode_txn_batch(
    producer_id: i64,
    producer_epoch: i16,
    records: &[(Bytes, Option<Bytes>)],
    now_ms: i64,
) -> Result<Vec<u8>, LogError> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence is the same for all, so the encoder keeps
            // them in one batch, whose base sequence is then -1.
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::InvalidRecord {
        reason: format!("cannot encode the batch: {e}"),
        record_errors: Vec::new(),
    })?;
    Ok(Vec::from(buf))
}

#[cfg(test)]
#[path = "txn_offsets_tests.rs"]
mod tests;
