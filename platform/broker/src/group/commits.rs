//! Offset commits as the coordinator sees them: which offsets may be
//! committed at all (an existing partition, metadata within Kafka's
//! limit), who may commit (a member of the current generation — of a
//! consumer-protocol group: at its member epoch — or anyone while the
//! group is empty), storing the commit in `__consumer_offsets`
//! before it becomes visible, and reading committed offsets back. The
//! record format is `offsets_topic.rs`; the wire format is
//! `apis/offsets.rs`. OffsetCommit and the in-process `LocalBroker::commit`
//! both commit through [`commit_offsets`].

use std::collections::BTreeMap;
use std::time::Instant;

use super::coordinator::GroupCoordinator;
use super::offsets_topic::{self, OffsetsTopic, offset_key, offset_value};
use super::state::{CommittedOffset, Group, GroupState};
use crate::error::GroupError;
use crate::topic_registry::TopicRegistry;

/// Who commits: a member of a generation, or nobody (a simple commit, as
/// admin tools and the in-process pipeline runtime make).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Committer<'a> {
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation: i32,
}

impl Committer<'static> {
    /// A commit without member and generation, accepted only while the
    /// group has no members.
    pub(crate) const SIMPLE: Committer<'static> = Committer {
        member_id: "",
        instance_id: None,
        generation: -1,
    };
}

/// Offsets by topic, each with its partitions in order.
pub(crate) type CommittedByTopic = BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>>;

impl GroupCoordinator {
    /// Whether an offset for `topic`/`partition` with `metadata` can be
    /// committed at all. In a cluster the coordinator need not host the
    /// partition: it only has to exist.
    pub(crate) fn check_offset(
        &self,
        registry: &TopicRegistry,
        topic: &str,
        partition: i32,
        metadata: &str,
    ) -> Result<(), GroupError> {
        let known = registry.get(topic);
        if known.is_none_or(|t| !(0..t.partition_count()).contains(&partition)) {
            return Err(GroupError::UnknownTopicOrPartition);
        }
        if metadata.len() > self.settings().offset_metadata_max_bytes {
            return Err(GroupError::OffsetMetadataTooLarge);
        }
        Ok(())
    }

    /// Commits `offsets` of `group_id` for `by`: authorised by the
    /// coordinator, written to `__consumer_offsets` and, once stored,
    /// visible to OffsetFetch. The membership check runs even when
    /// `offsets` is empty, so a member learns of a rebalance from any
    /// commit.
    pub(crate) async fn commit_offsets(
        &self,
        offsets_topic: &OffsetsTopic,
        group_id: &str,
        by: Committer<'_>,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Result<(), GroupError> {
        self.authorise_commit(group_id, by)?;
        let records: Vec<_> = offsets
            .iter()
            .map(|((topic, p), o)| (offset_key(group_id, topic, *p), Some(offset_value(o))))
            .collect();
        offsets_topic::append(offsets_topic, group_id, &records).await?;
        for (key, offset) in offsets {
            self.set_offset(group_id, key, Some(offset));
        }
        Ok(())
    }
}

impl GroupCoordinator {
    /// Checks that `by` may commit offsets for `group_id` (creating the
    /// group for a simple commit); a member's commit counts as a sign of
    /// life.
    fn authorise_commit(&self, group_id: &str, by: Committer<'_>) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        if let Some(consumer) = group.consumer.as_mut() {
            // KIP-848: the member epoch instead of the generation.
            return Self::check_consumer_member(
                consumer,
                by.member_id,
                by.generation,
                Some(Instant::now()),
            );
        }
        // A commit without generation (admin tools, manual assignment) is
        // allowed only while nobody is a member.
        let simple = by.generation < 0 && by.member_id.is_empty();
        if simple {
            if !group.members.is_empty() {
                return Err(GroupError::UnknownMember);
            }
        } else {
            Self::check_member(group, by.member_id, by.instance_id, by.generation)?;
            if group.state == GroupState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            if let Some(member) = group.members.get_mut(by.member_id) {
                member.last_seen = Instant::now();
            }
        }
        Ok(())
    }

    /// Sets (or with `None` removes) a committed offset without membership
    /// checks: loading `__consumer_offsets`, or applying a commit that
    /// [`commit_offsets`] authorised and the log stored.
    pub(crate) fn set_offset(
        &self,
        group_id: &str,
        key: (String, i32),
        value: Option<CommittedOffset>,
    ) {
        let mut groups = self.lock();
        // Written after any transactional offset of the same partition:
        // the transaction must not overwrite it (`txn_offsets.rs`).
        self.txn_offsets.lock().supersede(group_id, &key);
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        match value {
            Some(v) => {
                group.offsets.insert(key, v);
            }
            None => {
                group.offsets.remove(&key);
            }
        }
    }

    /// The offset `group_id` committed for `topic`/`partition`, if any.
    pub(crate) fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.lock()
            .get(group_id)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// One group's committed offsets for the asked `topics` and partitions
    /// (`None`: every offset it has, partitions in order). An asked
    /// partition without a commit is there with `None`.
    pub(crate) fn committed_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> CommittedByTopic {
        let groups = self.lock();
        let offsets = groups.get(group_id).map(|g| &g.offsets);
        let mut out = CommittedByTopic::new();
        match topics {
            Some(topics) => {
                for (name, partitions) in topics {
                    let found = partitions.into_iter().map(|p| {
                        let key = (name.clone(), p);
                        (p, offsets.and_then(|o| o.get(&key).cloned()))
                    });
                    out.entry(name.clone()).or_default().extend(found);
                }
            }
            None => {
                for ((topic, p), offset) in offsets.into_iter().flatten() {
                    out.entry(topic.clone())
                        .or_default()
                        .push((*p, Some(offset.clone())));
                }
                for partitions in out.values_mut() {
                    partitions.sort_by_key(|(p, _)| *p);
                }
            }
        }
        out
    }
}
