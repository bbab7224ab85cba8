//! Owned copies of what the coordinator holds, for the requests and admin
//! calls that only look (ListGroups, DescribeGroups, the admin API): they
//! are taken under the coordinator's lock and read after it is released,
//! so nobody outside the coordinator holds its lock.

use bytes::Bytes;

use std::collections::BTreeMap;

use uuid::Uuid;

use super::assignor::Assignment;
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
    /// A KIP-848 group (its members are in [`ConsumerGroupView`]).
    pub consumer: bool,
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
        let protocol = group.protocol_name.clone().unwrap_or_default();
        GroupView {
            id: group.id.clone(),
            state: group.state,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            leader: group.leader.clone(),
            consumer: group.is_consumer(),
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
                })
                .collect(),
        })
    }

    /// One group with its members, if this coordinator has it.
    pub(crate) fn describe(&self, group_id: &str) -> Option<GroupView> {
        self.lock().get(group_id).map(GroupView::of)
    }
}
