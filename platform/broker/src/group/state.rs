//! The data of one classic consumer group: its state, generation, members
//! and committed offsets. Pure data plus small helpers; the rules that move
//! a group between states live in `classic.rs`.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::error::GroupError;

/// Kafka's classic group states, named as DescribeGroups and ListGroups
/// report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join before a new generation.
    PreparingRebalance,
    /// A generation exists; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Deleted; kept only while requests still hold it.
    Dead,
}

impl GroupState {
    /// The name Kafka uses on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup is answered with, before it is shaped into the
/// response of the client's version.
#[derive(Debug, Default)]
pub(crate) struct JoinResult {
    /// Why the join failed (`None`: it did not). The member id is set
    /// with some errors too (MEMBER_ID_REQUIRED gives the id to use).
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// `(member id, group instance id, metadata)`: only the leader gets them.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub(crate) fn error(error: GroupError, member_id: &str) -> Self {
        JoinResult {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinResult::default()
        }
    }
}

/// What a SyncGroup is answered with.
#[derive(Debug, Default)]
pub(crate) struct SyncResult {
    /// Why the sync failed (`None`: it did not).
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub(crate) fn error(error: GroupError) -> Self {
        SyncResult {
            error: Some(error),
            ..SyncResult::default()
        }
    }
}

/// One member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// `(name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Its part of the leader's assignment in the current generation.
    pub assignment: Bytes,
    /// Set while the member's JoinGroup waits for the rebalance to complete.
    pub join_waiter: Option<oneshot::Sender<JoinResult>>,
    /// Set while the member's SyncGroup waits for the leader's assignment.
    pub sync_waiter: Option<oneshot::Sender<SyncResult>>,
    /// Last sign of life (join, sync, heartbeat, commit).
    pub last_seen: Instant,
}

impl Member {
    /// The metadata the member sent for `protocol`.
    pub(crate) fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether the session has run out: members parked in a JoinGroup or
    /// SyncGroup cannot heartbeat, so they are not timed out while parked
    /// (the rebalance timeout covers them).
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now.duration_since(self.last_seen).as_millis()
                > u128::from(self.session_timeout_ms.max(0) as u32)
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// Wall-clock ms of the commit (for `offsets.retention.minutes`).
    pub commit_timestamp_ms: i64,
}

impl CommittedOffset {
    /// The commits of an in-process caller (a pipeline's task): for each
    /// `(topic, partition, next offset to read)`, that offset with no
    /// leader epoch or metadata, stamped `now_ms`.
    pub(crate) fn from_positions(
        offsets: &[(&str, i32, i64)],
        now_ms: i64,
    ) -> Vec<((String, i32), CommittedOffset)> {
        offsets
            .iter()
            .map(|(topic, partition, offset)| {
                (
                    ((*topic).to_owned(), *partition),
                    CommittedOffset {
                        offset: *offset,
                        leader_epoch: -1,
                        metadata: String::new(),
                        commit_timestamp_ms: now_ms,
                    },
                )
            })
            .collect()
    }
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Ordered so the leader choice and answers are deterministic.
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pub pending: HashMap<String, Instant>,
    /// When a PreparingRebalance completes even if members are missing.
    pub rebalance_deadline: Option<Instant>,
    /// The first rebalance of an empty group does not complete before this.
    pub initial_delay_until: Option<Instant>,
    pub offsets: HashMap<(String, i32), CommittedOffset>,
    /// Wall-clock ms since which the group has been empty (seen by the
    /// timer tick): offset retention counts from the later of this and the
    /// commit, as Kafka's does, so a live group's rarely-updated offsets do
    /// not expire the moment it empties.
    pub empty_since_ms: Option<i64>,
    /// A new generation not yet written to `__consumer_offsets`.
    pub metadata_dirty: bool,
    /// Set while the group uses the consumer protocol (KIP-848,
    /// `consumer.rs`); its classic fields then stay empty.
    pub consumer: Option<super::consumer::ConsumerGroup>,
}

impl Group {
    pub(crate) fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            offsets: HashMap::new(),
            empty_since_ms: None,
            metadata_dirty: false,
            consumer: None,
        }
    }

    /// The member id of the static member `instance_id`.
    pub(crate) fn static_member(&self, instance_id: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.clone())
    }

    /// Whether every member supports `protocol_type` and one of `protocols`
    /// (an empty group accepts anything).
    pub(crate) fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocols.is_empty();
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// The protocol every member supports that most members prefer (ties go
    /// to the first member's preference), as Kafka's vote does.
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for candidate in candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| {
                            self.members
                                .values()
                                .all(|o| o.protocols.iter().any(|(x, _)| x == *n))
                        })
                        .is_some_and(|n| n == candidate)
                })
                .count();
            if best.is_none_or(|(_, b)| votes > b) {
                best = Some((candidate, votes));
            }
        }
        best.map(|(name, _)| name.clone())
    }
}
