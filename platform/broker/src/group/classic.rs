//! The classic group protocol's rules: JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup, and the rebalance they drive (prepare, complete the
//! join, hand out the leader's assignment). Not for the timers that
//! expire members (`coordinator`'s tick) nor for KIP-848 (`consumer`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::coordinator::{GroupCoordinator, Pending};
use super::state::{Group, GroupState, JoinResult, Member, SyncResult};
use crate::error::GroupError;

/// A JoinGroup as the coordinator sees it.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join without a member id is answered MEMBER_ID_REQUIRED.
    pub require_member_id: bool,
}

impl GroupCoordinator {
    /// JoinGroup.
    pub(crate) fn join(&self, request: JoinRequest) -> Pending<JoinResult> {
        let now = Instant::now();
        let error = |e: GroupError| Pending::Ready(JoinResult::error(e, &request.member_id));
        if request.group_id.is_empty() {
            return error(GroupError::InvalidGroupId);
        }
        if request.session_timeout_ms < self.settings().min_session_timeout_ms
            || request.session_timeout_ms > self.settings().max_session_timeout_ms
        {
            return error(GroupError::InvalidSessionTimeout);
        }
        let metadata_bytes: usize = request
            .protocols
            .iter()
            .map(|(name, metadata)| name.len() + metadata.len())
            .sum();
        if metadata_bytes > self.settings().protocol_metadata_max_bytes {
            tracing::info!(
                group = %request.group_id,
                client = %request.client_id,
                host = %request.client_host,
                bytes = metadata_bytes,
                "JoinGroup refused: protocol metadata over group.protocol.metadata.max.bytes"
            );
            return error(GroupError::ProtocolMetadataTooLarge);
        }
        let mut groups = self.lock();
        let group = groups
            .entry(request.group_id.clone())
            .or_insert_with(|| Group::new(&request.group_id));
        if group.state == GroupState::Dead {
            return error(GroupError::Dead);
        }
        if let Some(consumer) = &group.consumer {
            // A live consumer group takes classic members as members that
            // keep the classic protocol (`migration.rs`); an empty one
            // becomes a classic group again.
            if !consumer.members.is_empty() {
                return Pending::Ready(self.classic_join(group, &request, now));
            }
            tracing::info!(group = %group.id, "empty consumer-protocol group taken over by a classic member");
            group.consumer = None;
            group.protocol_type = None;
        }
        if !group.accepts(&request.protocol_type, &request.protocols) {
            return error(GroupError::InconsistentGroupProtocol);
        }
        let (tx, rx) = oneshot::channel();
        if request.member_id.is_empty() {
            // A restarted static member takes its old place; if the group
            // is stable and the protocol it would select is the same,
            // nothing else has to change, so it gets the current generation
            // back at once — the leader too, as Kafka's classic coordinator
            // does: told the *old* leader id, it does not take itself for
            // the leader (a stable group would not pass on a new
            // assignment), and its SyncGroup returns what it had.
            if let Some(instance) = &request.instance_id
                && let Some(old_id) = group.static_member(instance)
            {
                let new_id = self.new_member_id(&request.client_id);
                let Some(mut member) = group.members.remove(&old_id) else {
                    return error(GroupError::StaticMemberMissing);
                };
                tracing::info!(group = %group.id, %instance, old = %old_id, new = %new_id, "static member rejoined");
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncResult::error(GroupError::FencedInstance));
                }
                if let Some(waiter) = member.join_waiter.take() {
                    let _ = waiter.send(JoinResult::error(GroupError::FencedInstance, &old_id));
                }
                member.id = new_id.clone();
                member.last_seen = now;
                member.client_id = request.client_id.clone();
                member.client_host = request.client_host.clone();
                member.session_timeout_ms = request.session_timeout_ms;
                member.rebalance_timeout_ms = request.rebalance_timeout_ms;
                member.protocols = request.protocols.clone();
                let was_leader = group.leader.as_deref() == Some(old_id.as_str());
                if was_leader {
                    group.leader = Some(new_id.clone());
                }
                group.members.insert(new_id.clone(), member);
                if group.state == GroupState::Stable
                    && group.select_protocol() == group.protocol_name
                {
                    let mut answer = current_generation(group, &new_id);
                    if was_leader {
                        answer.leader = old_id;
                        answer.members = Vec::new();
                    }
                    return Pending::Ready(answer);
                }
                if let Some(member) = group.members.get_mut(&new_id) {
                    member.join_waiter = Some(tx);
                }
                self.prepare_rebalance(group, now);
                self.try_complete_join(group, now);
                return Pending::Wait(rx);
            }
            if group.members.len() + group.pending.len() >= self.settings().max_size {
                tracing::info!(
                    group = %group.id,
                    client = %request.client_id,
                    host = %request.client_host,
                    max = self.settings().max_size,
                    "JoinGroup refused: the group has group.max.size members"
                );
                return error(GroupError::GroupMaxSizeReached);
            }
            let new_id = self.new_member_id(&request.client_id);
            if request.require_member_id && request.instance_id.is_none() {
                // KIP-394: the client retries with this id, so a client that
                // dies between the two calls leaves no member behind.
                let lapse = now + Duration::from_millis(request.session_timeout_ms as u64);
                group.pending.insert(new_id.clone(), lapse);
                return Pending::Ready(JoinResult::error(GroupError::MemberIdRequired, &new_id));
            }
            self.add_member(group, new_id, &request, tx, now);
            return Pending::Wait(rx);
        }
        if group.pending.remove(&request.member_id).is_some() {
            self.add_member(group, request.member_id.clone(), &request, tx, now);
            return Pending::Wait(rx);
        }
        if Self::fenced(group, &request.member_id, request.instance_id.as_deref()) {
            return error(GroupError::FencedInstance);
        }
        let Some(member) = group.members.get_mut(&request.member_id) else {
            return error(GroupError::UnknownMember);
        };
        member.last_seen = now;
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        let changed = member.protocols != request.protocols;
        member.protocols = request.protocols.clone();
        let is_leader = group.leader.as_deref() == Some(request.member_id.as_str());
        tracing::debug!(group = %group.id, member = %request.member_id, state = group.state.name(), changed, is_leader, "known member rejoins");
        match group.state {
            GroupState::PreparingRebalance => {
                if let Some(old) = member.join_waiter.replace(tx) {
                    // A duplicate join: the earlier one is superseded.
                    let _ = old.send(JoinResult::error(
                        GroupError::RebalanceInProgress,
                        &request.member_id,
                    ));
                }
                self.try_complete_join(group, now);
                Pending::Wait(rx)
            }
            GroupState::CompletingRebalance | GroupState::Stable if !changed && !is_leader => {
                Pending::Ready(current_generation(group, &request.member_id))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.join_waiter = Some(tx);
                self.prepare_rebalance(group, now);
                self.try_complete_join(group, now);
                Pending::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => error(GroupError::UnknownMember),
        }
    }

    fn add_member(
        &self,
        group: &mut Group,
        id: String,
        request: &JoinRequest,
        waiter: oneshot::Sender<JoinResult>,
        now: Instant,
    ) {
        tracing::debug!(group = %group.id, member = %id, "member joins");
        if group.members.is_empty() {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        group.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocols: request.protocols.clone(),
                assignment: Bytes::new(),
                join_waiter: Some(waiter),
                sync_waiter: None,
                last_seen: now,
            },
        );
        self.prepare_rebalance(group, now);
        self.try_complete_join(group, now);
    }

    /// Moves the group to PreparingRebalance (once per rebalance): parked
    /// SyncGroups learn a rebalance started; the deadline is the largest
    /// rebalance timeout of the members.
    pub(super) fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::PreparingRebalance {
            return;
        }
        for member in group.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(GroupError::RebalanceInProgress));
            }
        }
        let timeout = group
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as u64)
            .max()
            .unwrap_or(0);
        group.initial_delay_until = (group.state == GroupState::Empty)
            .then(|| now + self.settings().initial_rebalance_delay);
        group.rebalance_deadline = Some(now + Duration::from_millis(timeout));
        tracing::debug!(group = %group.id, from = group.state.name(), "rebalance starts");
        group.state = GroupState::PreparingRebalance;
    }

    /// Completes the join phase once every member has rejoined (and the
    /// initial delay is over), or the rebalance timeout passed (members that
    /// did not rejoin are dropped).
    pub(super) fn try_complete_join(&self, group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if group.initial_delay_until.is_some_and(|t| now < t) {
            return;
        }
        let all_joined = group.members.values().all(|m| m.join_waiter.is_some());
        let timed_out = group.rebalance_deadline.is_some_and(|t| now >= t);
        if !all_joined && !timed_out {
            return;
        }
        let missing: Vec<String> = group
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %group.id, member = %id, "member did not rejoin in time; removed");
            group.members.remove(&id);
        }
        group.generation += 1;
        group.metadata_dirty = true;
        group.rebalance_deadline = None;
        group.initial_delay_until = None;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.leader = None;
            group.protocol_name = None;
            group.protocol_type = None;
            return;
        }
        group.protocol_name = group.select_protocol();
        if !group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.contains_key(l))
        {
            group.leader = group.members.keys().next().cloned();
        }
        group.state = GroupState::CompletingRebalance;
        let leader = group.leader.clone().unwrap_or_default();
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let all: Vec<(String, Option<String>, Bytes)> = group
            .members
            .values()
            .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
            .collect();
        tracing::info!(group = %group.id, generation = group.generation, members = all.len(), %leader, "generation formed");
        for member in group.members.values_mut() {
            member.assignment = Bytes::new();
            member.last_seen = now;
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult {
                    error: None,
                    generation: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: member.id.clone(),
                    members: if member.id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    /// Whether a request naming `member_id` and `instance_id` comes from a
    /// fenced static member: as in Kafka, only a request that carries an
    /// instance id can be — one held by another member id, or not the
    /// member's own. Requests of versions without the field (aiokafka
    /// joins with JoinGroup v5 and an instance id, then heartbeats with
    /// Heartbeat v1 and commits with OffsetCommit v3) are checked by
    /// member id alone.
    fn fenced(group: &Group, member_id: &str, instance_id: Option<&str>) -> bool {
        let Some(instance) = instance_id else {
            return false;
        };
        if group
            .static_member(instance)
            .is_some_and(|owner| owner != member_id)
        {
            return true;
        }
        group
            .members
            .get(member_id)
            .and_then(|m| m.instance_id.as_deref())
            .is_some_and(|own| own != instance)
    }

    /// Checks a member and generation of a group.
    pub(super) fn check_member(
        group: &Group,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if Self::fenced(group, member_id, instance_id) {
            return Err(GroupError::FencedInstance);
        }
        if !group.members.contains_key(member_id) {
            return Err(GroupError::UnknownMember);
        }
        if generation != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> Pending<SyncResult> {
        let now = Instant::now();
        let error = |e: GroupError| Pending::Ready(SyncResult::error(e));
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return error(GroupError::UnknownMember);
        };
        if group.consumer.is_some() {
            return Pending::Ready(Self::classic_sync(
                group,
                member_id,
                instance_id,
                generation,
                protocol_type,
                protocol_name,
            ));
        }
        if let Err(e) = Self::check_member(group, member_id, instance_id, generation) {
            return error(e);
        }
        if protocol_type.is_some_and(|t| group.protocol_type.as_deref() != Some(t))
            || protocol_name.is_some_and(|n| group.protocol_name.as_deref() != Some(n))
        {
            return error(GroupError::InconsistentGroupProtocol);
        }
        let answer = |group: &Group, assignment: Bytes| SyncResult {
            error: None,
            protocol_type: group.protocol_type.clone(),
            protocol_name: group.protocol_name.clone(),
            assignment,
        };
        match group.state {
            GroupState::PreparingRebalance => error(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let Some(member) = group.members.get_mut(member_id) else {
                    return error(GroupError::UnknownMember);
                };
                member.last_seen = now;
                let assignment = member.assignment.clone();
                Pending::Ready(answer(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let is_leader = group.leader.as_deref() == Some(member_id);
                if !is_leader {
                    let (tx, rx) = oneshot::channel();
                    if let Some(member) = group.members.get_mut(member_id) {
                        member.last_seen = now;
                        member.sync_waiter = Some(tx);
                    }
                    return Pending::Wait(rx);
                }
                let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                let (protocol_type, protocol_name) =
                    (group.protocol_type.clone(), group.protocol_name.clone());
                let mut mine = Bytes::new();
                for member in group.members.values_mut() {
                    member.assignment = by_member.remove(&member.id).unwrap_or_default();
                    member.last_seen = now;
                    if member.id == member_id {
                        mine = member.assignment.clone();
                    }
                    if let Some(waiter) = member.sync_waiter.take() {
                        let _ = waiter.send(SyncResult {
                            error: None,
                            protocol_type: protocol_type.clone(),
                            protocol_name: protocol_name.clone(),
                            assignment: member.assignment.clone(),
                        });
                    }
                }
                group.state = GroupState::Stable;
                tracing::debug!(group = %group.id, generation = group.generation, "group stable");
                Pending::Ready(answer(group, mine))
            }
            GroupState::Empty | GroupState::Dead => error(GroupError::UnknownMember),
        }
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            // Kafka's classic coordinator: no such group, so no such member.
            return Err(GroupError::UnknownMember);
        };
        if group.consumer.is_some() {
            return Self::classic_heartbeat(group, member_id, instance_id, generation);
        }
        Self::check_member(group, member_id, instance_id, generation)?;
        if let Some(member) = group.members.get_mut(member_id) {
            member.last_seen = Instant::now();
        }
        match group.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMember),
            _ => Ok(()),
        }
    }

    /// LeaveGroup: one result per `(member id, instance id)`, or the
    /// group-level error.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMember);
        };
        if group.consumer.is_some() {
            return Ok(Self::classic_leave(group, leaving));
        }
        let mut codes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance_id) in leaving {
            let id = match (member_id.is_empty(), instance_id) {
                (true, Some(instance)) => group.static_member(instance),
                _ => Some(member_id.clone()),
            };
            let Some(id) = id.filter(|id| group.members.contains_key(id)) else {
                codes.push(Err(GroupError::UnknownMember));
                continue;
            };
            if let (Some(instance), Some(member)) = (instance_id, group.members.get(&id))
                && member.instance_id.as_deref() != Some(instance.as_str())
            {
                codes.push(Err(GroupError::FencedInstance));
                continue;
            }
            tracing::info!(group = %group.id, member = %id, "member left");
            self.remove_member(group, &id, now);
            removed = true;
            codes.push(Ok(()));
        }
        if removed {
            self.member_gone(group, now);
        }
        Ok(codes)
    }

    pub(super) fn remove_member(&self, group: &mut Group, id: &str, _now: Instant) {
        if let Some(mut member) = group.members.remove(id) {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult::error(GroupError::UnknownMember, id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(GroupError::UnknownMember));
            }
        }
    }

    /// After members left or expired: rebalance the rest, or become Empty.
    pub(super) fn member_gone(&self, group: &mut Group, now: Instant) {
        match group.state {
            GroupState::Empty | GroupState::Dead => {}
            _ if group.members.is_empty() && group.state != GroupState::PreparingRebalance => {
                group.generation += 1;
                group.metadata_dirty = true;
                group.state = GroupState::Empty;
                group.leader = None;
                group.protocol_name = None;
                group.protocol_type = None;
            }
            _ => {
                self.prepare_rebalance(group, now);
                // The remaining members may all be parked already.
                group.initial_delay_until = None;
                self.try_complete_join(group, now);
            }
        }
    }
}

/// The answer to a join that needs no rebalance: the current generation.
fn current_generation(group: &Group, member_id: &str) -> JoinResult {
    let leader = group.leader.clone().unwrap_or_default();
    let protocol = group.protocol_name.clone().unwrap_or_default();
    JoinResult {
        error: None,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: group.protocol_name.clone(),
        members: if leader == member_id {
            group
                .members
                .values()
                .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                .collect()
        } else {
            Vec::new()
        },
        leader,
        member_id: member_id.to_string(),
    }
}
