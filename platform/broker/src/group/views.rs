//! Owned copies of what the coordinator holds, for the requests and admin
//! calls that only look (ListGroups, DescribeGroups, the admin API): they
//! are taken under the coordinator's lock and read after it is released,
//! so nobody outside the coordinator holds its lock.

use bytes::Bytes;

use super::coordinator::GroupCoordinator;
use super::state::{Group, GroupState};

/// A group as ListGroups lists it.
#[derive(Debug, Clone)]
pub(crate) struct GroupSummary {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
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
            })
            .collect()
    }

    /// One group with its members, if this coordinator has it.
    pub(crate) fn describe(&self, group_id: &str) -> Option<GroupView> {
        self.lock().get(group_id).map(GroupView::of)
    }
}
