//! Deleting what the coordinator keeps: a whole group (DeleteGroups; only
//! an empty one) and single committed offsets (OffsetDelete; not of a
//! topic a live member is subscribed to). Either is removed from memory
//! under the lock and then made durable with tombstones in
//! `__consumer_offsets`, so a restart or a new coordinator does not bring
//! it back.

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

use super::coordinator::GroupCoordinator;
use super::metadata_record::group_key;
use super::offsets_topic::{self, OffsetsTopic, offset_key};
use super::state::{Group, GroupState};
use crate::error::GroupError;

/// Records with a null value: what is deleted.
type Tombstones = Vec<(Bytes, Option<Bytes>)>;

/// The result of deleting one partition's offset.
pub(crate) type OffsetDeleted = Result<(), GroupError>;

impl GroupCoordinator {
    /// Deletes `group_id` with its offsets, when it is empty: GROUP_ID_NOT_FOUND
    /// for a group this coordinator does not have, NON_EMPTY_GROUP while it has
    /// members or rebalances.
    pub(crate) async fn delete_group(
        &self,
        offsets_topic: &OffsetsTopic,
        group_id: &str,
    ) -> Result<(), GroupError> {
        let tombstones = self.remove_empty(group_id)?;
        offsets_topic::append(offsets_topic, group_id, &tombstones).await
    }

    /// Deletes the committed offsets of `group_id` for `topics` (with their
    /// partitions). A topic the group's live members are subscribed to keeps
    /// its offsets (GROUP_SUBSCRIBED_TO_TOPIC, per partition); a partition
    /// without a commit is deleted trivially. The results follow `topics`.
    pub(crate) async fn delete_offsets(
        &self,
        offsets_topic: &OffsetsTopic,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<Vec<OffsetDeleted>>, GroupError> {
        let (results, tombstones) = self.remove_offsets(group_id, topics)?;
        offsets_topic::append(offsets_topic, group_id, &tombstones).await?;
        Ok(results)
    }
}

impl GroupCoordinator {
    fn remove_empty(&self, group_id: &str) -> Result<Tombstones, GroupError> {
        let mut groups = self.lock();
        match groups.get(group_id) {
            None => return Err(GroupError::GroupIdNotFound),
            Some(g) if !g.has_no_members() || g.state != GroupState::Empty => {
                return Err(GroupError::NonEmptyGroup);
            }
            Some(_) => {}
        }
        let Some(group) = groups.remove(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        // As Kafka: open transactions do not block the deletion; their
        // offsets of the group go with it (`txn_offsets.rs`).
        let mut pending = self.txn_offsets.lock().remove_group(group_id);
        pending.retain(|key| !group.offsets.contains_key(key));
        let mut records: Tombstones = group
            .offsets
            .keys()
            .chain(&pending)
            .map(|(topic, p)| (offset_key(&group.id, topic, *p), None))
            .collect();
        records.push((group_key(&group.id), None));
        tracing::info!(group = %group_id, "group deleted");
        Ok(records)
    }

    fn remove_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<(Vec<Vec<OffsetDeleted>>, Tombstones), GroupError> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(GroupError::GroupIdNotFound);
        };
        let subscribed: Vec<bool> = topics
            .iter()
            .map(|(topic, _)| subscribed(group, topic))
            .collect();
        let mut tombstones = Tombstones::new();
        let results = topics
            .iter()
            .zip(subscribed)
            .map(|((topic, partitions), subscribed)| {
                partitions
                    .iter()
                    .map(|p| {
                        if subscribed {
                            return Err(GroupError::SubscribedToTopic);
                        }
                        let key = (topic.clone(), *p);
                        // A pending transactional offset of it is deleted
                        // too, as in Kafka (the tombstone comes later in
                        // the log than the transaction's record).
                        let pending = {
                            let mut txn = self.txn_offsets.lock();
                            let pending = txn.is_pending(group_id, &key);
                            txn.supersede(group_id, &key);
                            pending
                        };
                        if group.offsets.remove(&key).is_some() || pending {
                            tombstones.push((offset_key(&group.id, topic, *p), None));
                        }
                        Ok(())
                    })
                    .collect()
            })
            .collect();
        Ok((results, tombstones))
    }
}

/// Whether a live member of `group` is subscribed to `topic` (a member
/// whose subscription does not decode counts as subscribed to everything).
fn subscribed(group: &Group, topic: &str) -> bool {
    if let Some(consumer) = &group.consumer {
        return consumer.members.values().any(|m| m.topics.contains(topic));
    }
    if group.state == GroupState::Empty {
        return false;
    }
    let protocol = group.protocol_name.clone().unwrap_or_default();
    group.members.values().any(|m| {
        subscription_topics(&m.metadata(&protocol))
            .is_none_or(|topics| topics.iter().any(|t| t == topic))
    })
}

/// The topics of a consumer-protocol subscription (`None` when it does not
/// decode).
fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    // Newer subscription versions are supersets; decode as the newest
    // the crate knows.
    let version = version.clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .ok()
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
}
