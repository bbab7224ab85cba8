//! Owned copies of what the coordinator holds, for the requests and admin
//! calls that only look (ListGroups, DescribeGroups, the admin API): they
//! are taken under the coordinator's lock and read after it is released,
//! so nobody outside the coordinator holds its lock.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, TopicName, consumer_protocol_assignment,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::ConsumerGroup;
use super::coordinator::GroupCoordinator;
use super::state::{Group, GroupState};

/// A group as ListGroups lists it.
#[derive(Debug, Clone)]
pub(crate) struct GroupSummary {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    /// `classic` or `consumer` (KIP-848), as ListGroups v5 names it.
    pub group_type: &'static str,
    /// The state name of the group's type.
    pub state_name: &'static str,
}

/// A KIP-848 group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerGroupView {
    pub state: &'static str,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    /// In member id order.
    pub members: Vec<ConsumerMemberView>,
    /// Topic names by id, for the assignments.
    pub topic_names: BTreeMap<Uuid, String>,
}

/// One member of a [`ConsumerGroupView`].
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMemberView {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    pub assigned: Assignment,
    pub target: Assignment,
    /// Whether it speaks the classic protocol (JoinGroup, SyncGroup and
    /// Heartbeat) inside the consumer group, since an online upgrade.
    pub classic: bool,
}

/// A group with its members, as DescribeGroups and the admin API show it.
#[derive(Debug, Clone)]
pub(crate) struct GroupView {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    /// The protocol (assignor) of the current generation.
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// In member id order.
    pub members: Vec<MemberView>,
    /// A KIP-848 group: its members' assignments are encoded as the
    /// classic consumer protocol's, with topic names, so the admin API and
    /// console read both kinds alike.
    pub consumer: bool,
    /// The state name of the group's type (Kafka's, of either protocol).
    pub state_name: &'static str,
}

/// One member of a [`GroupView`].
#[derive(Debug, Clone)]
pub(crate) struct MemberView {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// What the member sent for the group's protocol.
    pub metadata: Bytes,
    /// Its part of the leader's assignment in the current generation.
    pub assignment: Bytes,
}

impl GroupView {
    fn of(group: &Group) -> Self {
        if let Some(cg) = &group.consumer {
            return Self::of_consumer(group, cg);
        }
        let protocol = group.protocol_name.clone().unwrap_or_default();
        GroupView {
            id: group.id.clone(),
            state: group.state,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader.clone(),
            consumer: false,
            state_name: group.state.name(),
            members: group
                .members
                .values()
                .map(|m| MemberView {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}

impl GroupView {
    fn of_consumer(group: &Group, cg: &ConsumerGroup) -> Self {
        let names: BTreeMap<Uuid, &str> = cg
            .topics
            .iter()
            .map(|(name, info)| (info.id, name.as_str()))
            .collect();
        GroupView {
            id: group.id.clone(),
            state: group.state,
            generation: cg.epoch,
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some(cg.assignor.clone()),
            leader: None,
            consumer: true,
            state_name: cg.state_name(),
            members: cg
                .members
                .values()
                .map(|m| MemberView {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: Bytes::new(),
                    assignment: classic_assignment(&m.assigned, &names),
                })
                .collect(),
        }
    }
}

/// `assigned` as a classic ConsumerProtocolAssignment (v0, with its
/// version prefix); topics without a name are left out.
pub(super) fn classic_assignment(assigned: &Assignment, names: &BTreeMap<Uuid, &str>) -> Bytes {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assigned
            .iter()
            .filter_map(|(id, ps)| {
                let name = names.get(id)?;
                Some(
                    consumer_protocol_assignment::TopicPartition::default()
                        .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(ps.iter().copied().collect()),
                )
            })
            .collect(),
    );
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    if assignment.encode(&mut buf, 0).is_err() {
        return Bytes::new();
    }
    buf.freeze()
}

impl GroupCoordinator {
    /// Every group this coordinator has (Dead ones included), in no order.
    pub(crate) fn list(&self) -> Vec<GroupSummary> {
        self.lock()
            .values()
            .map(|g| GroupSummary {
                id: g.id.clone(),
                state: g.state,
                protocol_type: g.protocol_type.clone(),
                group_type: if g.is_consumer() {
                    "consumer"
                } else {
                    "classic"
                },
                state_name: g
                    .consumer
                    .as_ref()
                    .map_or(g.state.name(), |c| c.state_name()),
            })
            .collect()
    }

    /// One KIP-848 group (`Err(false)`: no such group, `Err(true)`: a
    /// classic group).
    pub(crate) fn describe_consumer(&self, group_id: &str) -> Result<ConsumerGroupView, bool> {
        let groups = self.lock();
        let group = groups.get(group_id).ok_or(false)?;
        let cg = group.consumer.as_ref().ok_or(true)?;
        Ok(ConsumerGroupView {
            state: cg.state_name(),
            epoch: cg.epoch,
            assignment_epoch: cg.assignment_epoch,
            assignor: cg.assignor.clone(),
            topic_names: cg
                .topics
                .iter()
                .map(|(name, info)| (info.id, name.clone()))
                .collect(),
            members: cg
                .members
                .values()
                .map(|m| ConsumerMemberView {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_names: m.subscribed_names.clone(),
                    subscribed_regex: m.subscribed_regex.clone(),
                    assigned: m.assigned.clone(),
                    target: cg.target.get(&m.id).cloned().unwrap_or_default(),
                    classic: m.classic.is_some(),
                })
                .collect(),
        })
    }

    /// One group with its members, if this coordinator has it.
    pub(crate) fn describe(&self, group_id: &str) -> Option<GroupView> {
        self.lock().get(group_id).map(GroupView::of)
    }
}
