//! Which groups this broker coordinates. On a single node: all of them. In
//! a cluster: the groups whose partition of `__consumer_offsets` this
//! broker leads, once that partition's records are loaded, as in Kafka —
//! so when the partition's leadership moves, coordination moves with it
//! and the new coordinator starts from the committed offsets.

use std::collections::HashSet;

use parking_lot::Mutex;

use super::coordinator::GroupCoordinator;
use super::offsets_topic::{OFFSETS_TOPIC, partition_for};
use crate::error::GroupError;
use crate::partition::Partition;
use crate::quorum_link::ClusterLink;
use crate::topic_registry::TopicRegistry;

/// The partitions of `__consumer_offsets` whose groups are loaded here.
#[derive(Debug, Default)]
pub(crate) struct LoadedPartitions(Mutex<HashSet<i32>>);

/// Whether this broker (with `registry` and `groups`, in the cluster of
/// `link` if any) coordinates `group` now: when it does not (or not yet),
/// the client asks FindCoordinator again.
pub(crate) fn check(
    registry: &TopicRegistry,
    groups: &GroupCoordinator,
    link: Option<&ClusterLink>,
    group: &str,
) -> Result<(), GroupError> {
    if link.is_none() {
        return Ok(());
    }
    let Some(topic) = registry.get(OFFSETS_TOPIC) else {
        return Err(GroupError::NotCoordinator);
    };
    let index = partition_for(group, topic.partition_count());
    match topic.partition(index) {
        Some(partition) if partition.is_replicated() && partition.is_leader() => {
            if groups.loaded.0.lock().contains(&index) {
                Ok(())
            } else {
                Err(GroupError::LoadInProgress)
            }
        }
        _ => Err(GroupError::NotCoordinator),
    }
}

/// This broker now leads `partition` of `__consumer_offsets`: forget what
/// it knew of its groups (it may be from an earlier term) and load them
/// from the log, up to its end (the new leader's log is the truth).
pub(crate) fn took_over(
    registry: &TopicRegistry,
    groups: &GroupCoordinator,
    partition: &Partition,
) {
    let count = registry
        .get(OFFSETS_TOPIC)
        .map_or(1, |t| t.partition_count());
    let index = partition.index();
    forget(groups, index, count);
    let records =
        super::offsets_topic::load_partition(groups, partition, partition.log().log_end_offset());
    groups.loaded.0.lock().insert(index);
    tracing::info!(
        partition = index,
        records,
        "coordinating the groups of __consumer_offsets partition"
    );
}

/// This broker no longer leads `partition` of `__consumer_offsets`: its
/// groups are coordinated elsewhere.
pub(crate) fn gave_up(registry: &TopicRegistry, groups: &GroupCoordinator, partition: i32) {
    let count = registry
        .get(OFFSETS_TOPIC)
        .map_or(1, |t| t.partition_count());
    if groups.loaded.0.lock().remove(&partition) {
        tracing::info!(
            partition,
            "no longer coordinating the groups of __consumer_offsets partition"
        );
    }
    forget(groups, partition, count);
}

fn forget(groups: &GroupCoordinator, partition: i32, count: i32) {
    // Dropping a group drops its members' parked oneshots: their JoinGroup
    // and SyncGroup answer with an error and the clients find the new
    // coordinator.
    let mut kept = groups.lock();
    kept.retain(|id, _| partition_for(id, count) != partition);
    // Pending transactional offsets too: a reload rebuilds them from the
    // log, with whatever markers it has by then.
    groups.txn_offsets.lock().remove_partition(partition);
}
