//! Online conversion of a live group between the classic protocol and
//! KIP-848's, as Kafka 4 does (`group.consumer.migration.policy`).
//!
//! Upgrade: a consumer-protocol member joining (epoch 0) a classic group of
//! protocol type `consumer` turns it into a consumer group. Each classic
//! member becomes a member of it that still speaks the classic protocol: its
//! subscription and the partitions it owns come from its
//! ConsumerProtocolSubscription and ConsumerProtocolAssignment, its epoch is
//! the classic generation, and the target starts as what everyone owns, so
//! nothing moves until the newcomer joins and the target is recomputed.
//!
//! Classic members of a consumer group are answered at once: JoinGroup
//! reconciles the member with the partitions its subscription says it
//! still owns (an eager client revoked everything before joining, a
//! cooperative one lists what it kept) and gives its new epoch as the
//! generation; SyncGroup answers its assignment; Heartbeat answers
//! REBALANCE_IN_PROGRESS while it has something to revoke or could take
//! more, so it rejoins. A partition therefore reaches another member only
//! after its classic owner rejoined without it.
//!
//! Downgrade: when the last consumer-protocol member leaves or is fenced
//! and classic members remain, the group becomes classic again with their
//! current assignments, generation = group epoch, and a rebalance starts so
//! they rejoin as a classic generation.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;

use super::assignor::Assignment;
use super::classic::JoinRequest;
use super::consumer::{ConsumerGroup, ConsumerMember, MemberState, TopicsSnapshot};
use super::coordinator::GroupCoordinator;
use super::reconcile::{compute_target, reconcile, resolve_subscriptions};
use super::state::{Group, GroupState, JoinResult, Member, SyncResult};
use super::views::classic_assignment;
use crate::error::GroupError;

/// `group.consumer.migration.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum MigrationPolicy {
    /// A group holds members of one protocol at a time.
    Disabled,
    /// Only classic → consumer.
    Upgrade,
    /// Only consumer → classic.
    Downgrade,
    /// Both ways (Kafka's default).
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// The policy named `name` (case-insensitive, as Kafka's).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }

    fn upgrades(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    fn downgrades(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

/// What a classic member of a consumer group keeps of the classic protocol.
#[derive(Debug, Clone)]
pub(crate) struct ClassicProtocol {
    pub session_timeout_ms: i32,
    /// `(name, metadata)` as its last JoinGroup sent them.
    pub protocols: Vec<(String, Bytes)>,
}

/// A consumer protocol's subscription: topics, and owned partitions by
/// topic name.
struct Subscription {
    topics: Vec<String>,
    owned: Vec<(String, Vec<i32>)>,
}

/// Splits the version prefix off classic consumer-protocol bytes; newer
/// versions are supersets, decoded as the newest the crate knows.
fn versioned(bytes: &[u8]) -> Option<(i16, Bytes)> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.len() < 2 {
        return None;
    }
    let version = buf.get_i16();
    Some((version.clamp(0, 3), buf))
}

fn decode_subscription(metadata: &[u8]) -> Option<Subscription> {
    let (version, mut buf) = versioned(metadata)?;
    let s = ConsumerProtocolSubscription::decode(&mut buf, version).ok()?;
    Some(Subscription {
        topics: s.topics.into_iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .into_iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions))
            .collect(),
    })
}

/// The partitions of a classic assignment (empty bytes: none).
fn decode_assignment(bytes: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let (version, mut buf) = versioned(bytes)?;
    let a = ConsumerProtocolAssignment::decode(&mut buf, version).ok()?;
    Some(
        a.assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions))
            .collect(),
    )
}

/// Named partitions by topic id; topics the cluster does not know are left
/// out.
fn by_id(named: &[(String, Vec<i32>)], topics: &TopicsSnapshot) -> Assignment {
    let mut a = Assignment::new();
    for (name, ps) in named {
        if let Some(info) = topics.get(name) {
            a.entry(info.id)
                .or_default()
                .extend(ps.iter().filter(|p| (0..info.partitions).contains(*p)));
        }
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

fn intersection(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(other) = b.get(t) {
            let common: BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !common.is_empty() {
                out.insert(*t, common);
            }
        }
    }
    out
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

/// `assigned` as a classic assignment, with the group's topic names.
fn encode(cg: &ConsumerGroup, assigned: &Assignment) -> Bytes {
    let names = cg
        .topics
        .iter()
        .map(|(name, info)| (info.id, name.as_str()))
        .collect();
    classic_assignment(assigned, &names)
}

/// Whether classic member `id` must rejoin: it has partitions to revoke, a
/// newer epoch to take, or target partitions nobody holds any more.
fn needs_rejoin(cg: &ConsumerGroup, id: &str) -> bool {
    let Some(member) = cg.members.get(id) else {
        return false;
    };
    if member.epoch != cg.assignment_epoch || member.state == MemberState::UnrevokedPartitions {
        return true;
    }
    let Some(target) = cg.target.get(id) else {
        return false;
    };
    target.iter().any(|(t, ps)| {
        ps.iter().any(|p| {
            !member.assigned.get(t).is_some_and(|a| a.contains(p))
                && !cg.members.values().any(|m| {
                    m.id != id
                        && (m.assigned.get(t).is_some_and(|a| a.contains(p))
                            || m.revoking.get(t).is_some_and(|a| a.contains(p)))
                })
        })
    })
}

impl GroupCoordinator {
    /// Converts the live classic `group` into a consumer group for a
    /// joining consumer-protocol member, when the policy, its protocol type,
    /// its size and its members' subscriptions allow; otherwise
    /// GROUP_ID_NOT_FOUND, as without conversion.
    pub(super) fn upgrade(
        &self,
        group: &mut Group,
        topics: &TopicsSnapshot,
    ) -> Result<(), GroupError> {
        let settings = self.settings();
        if !settings.migration_policy.upgrades()
            || group.protocol_type.as_deref() != Some("consumer")
            || group.state == GroupState::Dead
            || group.members.len() >= settings.max_size
        {
            return Err(GroupError::NotConsumerGroup);
        }
        let mut cg = ConsumerGroup {
            epoch: group.generation,
            assignment_epoch: group.generation,
            assignor: "uniform".to_string(),
            topics: topics.clone(),
            ..ConsumerGroup::default()
        };
        let mut taken = Assignment::new();
        for member in group.members.values() {
            let protocol = group
                .protocol_name
                .clone()
                .or_else(|| member.protocols.first().map(|(n, _)| n.clone()))
                .unwrap_or_default();
            let subscription = decode_subscription(&member.metadata(&protocol))
                .ok_or(GroupError::NotConsumerGroup)?;
            let mut owned =
                decode_assignment(&member.assignment).ok_or(GroupError::NotConsumerGroup)?;
            // Mid-rebalance a cooperative member still owns what its last
            // JoinGroup listed, though its assignment was reset.
            owned.extend(subscription.owned);
            // Never two owners, whatever the classic members claimed.
            let mut owned = by_id(&owned, topics);
            for (t, ps) in owned.iter_mut() {
                let held = taken.entry(*t).or_default();
                ps.retain(|p| held.insert(*p));
            }
            owned.retain(|_, ps| !ps.is_empty());
            let mut m = ConsumerMember::new(
                member.id.clone(),
                member.instance_id.clone(),
                member.rebalance_timeout_ms,
                member.last_seen,
            );
            m.client_id = member.client_id.clone();
            m.client_host = member.client_host.clone();
            m.subscribed_names = sorted(subscription.topics);
            m.epoch = group.generation;
            m.previous_epoch = group.generation;
            m.assigned = owned.clone();
            m.classic = Some(ClassicProtocol {
                session_timeout_ms: member.session_timeout_ms,
                protocols: member.protocols.clone(),
            });
            cg.target.insert(member.id.clone(), owned);
            cg.members.insert(member.id.clone(), m);
        }
        resolve_subscriptions(&mut cg, None);
        tracing::info!(group = %group.id, members = cg.members.len(), generation = group.generation, "classic group upgraded to the consumer protocol");
        // Parked classic calls learn that the group moved on; they rejoin.
        for mut member in std::mem::take(&mut group.members).into_values() {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinResult::error(
                    GroupError::RebalanceInProgress,
                    &member.id,
                ));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult::error(GroupError::RebalanceInProgress));
            }
        }
        group.pending.clear();
        group.state = GroupState::Empty;
        group.leader = None;
        group.protocol_name = None;
        group.rebalance_deadline = None;
        group.initial_delay_until = None;
        group.consumer = Some(cg);
        Ok(())
    }

    /// After a consumer-protocol member left or was fenced: a group whose
    /// members are all classic becomes a classic group again, if the policy
    /// allows, and rebalances so they rejoin.
    pub(super) fn maybe_downgrade(&self, group: &mut Group, now: Instant) {
        if !self.settings().migration_policy.downgrades() {
            return;
        }
        let Some(cg) = group.consumer.as_ref() else {
            return;
        };
        if cg.members.is_empty() || cg.members.values().any(|m| m.classic.is_none()) {
            return;
        }
        let Some(cg) = group.consumer.take() else {
            return;
        };
        for m in cg.members.values() {
            let Some(classic) = &m.classic else { continue };
            group.members.insert(
                m.id.clone(),
                Member {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: classic.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: classic.protocols.clone(),
                    assignment: encode(&cg, &m.assigned),
                    join_waiter: None,
                    sync_waiter: None,
                    last_seen: now,
                },
            );
        }
        tracing::info!(group = %group.id, members = group.members.len(), epoch = cg.epoch, "consumer group downgraded to the classic protocol");
        group.generation = cg.epoch;
        group.protocol_type = Some("consumer".to_string());
        group.protocol_name = group.select_protocol();
        group.leader = group.members.keys().next().cloned();
        group.metadata_dirty = true;
        group.state = GroupState::Stable;
        self.prepare_rebalance(group, now);
    }

    /// JoinGroup of a classic member into a consumer group: answered at
    /// once with its epoch after reconciling what it still owns.
    pub(super) fn classic_join(
        &self,
        group: &mut Group,
        request: &JoinRequest,
        now: Instant,
    ) -> JoinResult {
        let error = |e: GroupError| JoinResult::error(e, &request.member_id);
        if self.settings().migration_policy == MigrationPolicy::Disabled {
            return error(GroupError::InconsistentGroupProtocol);
        }
        let Some((protocol, subscription)) = (request.protocol_type == "consumer")
            .then(|| request.protocols.first())
            .flatten()
            .and_then(|(name, metadata)| Some((name.clone(), decode_subscription(metadata)?)))
        else {
            return error(GroupError::InconsistentGroupProtocol);
        };
        let max_size = self.settings().max_size;
        let Some(cg) = group.consumer.as_mut() else {
            return error(GroupError::UnknownMember);
        };
        let mut id = request.member_id.clone();
        let static_id = request.instance_id.as_ref().and_then(|instance| {
            cg.members
                .values()
                .find(|m| m.instance_id.as_ref() == Some(instance))
                .map(|m| m.id.clone())
        });
        let mut replaced_consumer = false;
        let new = if id.is_empty() {
            id = self.new_member_id(&request.client_id);
            if let Some(old) = static_id {
                // A restarted static member takes its old place.
                let Some(mut member) = cg.members.remove(&old) else {
                    return error(GroupError::UnknownMember);
                };
                if member.classic.is_none() && !member.left_static {
                    cg.members.insert(old, member);
                    return error(GroupError::UnreleasedInstanceId);
                }
                // A consumer-protocol static member that left for a while
                // came back speaking the classic protocol.
                replaced_consumer = member.classic.is_none();
                member.left_static = false;
                tracing::info!(group = %group.id, old = %old, new = %id, "static classic member rejoined");
                member.id = id.clone();
                if let Some(target) = cg.target.remove(&old) {
                    cg.target.insert(id.clone(), target);
                }
                cg.members.insert(id.clone(), member);
                false
            } else if request.require_member_id && request.instance_id.is_none() {
                let lapse = now + Duration::from_millis(request.session_timeout_ms.max(0) as u64);
                group.pending.insert(id.clone(), lapse);
                return JoinResult::error(GroupError::MemberIdRequired, &id);
            } else {
                true
            }
        } else if group.pending.remove(&id).is_some() {
            true
        } else {
            match cg.members.get(&id) {
                Some(m) if m.classic.is_none() => return error(GroupError::UnknownMember),
                Some(m)
                    if request.instance_id.is_some() && m.instance_id != request.instance_id =>
                {
                    return error(GroupError::FencedInstance);
                }
                Some(_) => false,
                None => return error(GroupError::UnknownMember),
            }
        };
        if new {
            if cg.members.len() >= max_size {
                return error(GroupError::GroupMaxSizeReached);
            }
            tracing::info!(group = %group.id, member = %id, "classic member joins a consumer group");
            cg.members.insert(
                id.clone(),
                ConsumerMember::new(
                    id.clone(),
                    request.instance_id.clone(),
                    request.rebalance_timeout_ms,
                    now,
                ),
            );
        }
        let Some(member) = cg.members.get_mut(&id) else {
            return error(GroupError::UnknownMember);
        };
        member.last_seen = now;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.classic = Some(ClassicProtocol {
            session_timeout_ms: request.session_timeout_ms,
            protocols: request.protocols.clone(),
        });
        let names = sorted(subscription.topics);
        let mut bump = new;
        if names != member.subscribed_names {
            member.subscribed_names = names;
            bump = true;
        }
        // What it does not list, it gave up (eager clients list nothing).
        let owned = by_id(&subscription.owned, &cg.topics);
        let kept = intersection(&member.assigned, &owned);
        if kept != member.assigned {
            member.assigned = kept;
            if member.state == MemberState::Stable {
                member.state = MemberState::UnreleasedPartitions;
            }
        }
        member.revoking = intersection(&member.revoking, &owned);
        if resolve_subscriptions(cg, Some(&id)) || bump {
            cg.epoch += 1;
            compute_target(cg);
        }
        reconcile(cg, &id, Some(&owned), now);
        let epoch = cg.members.get(&id).map_or(-1, |m| m.epoch);
        if replaced_consumer {
            // That was the last consumer-protocol member, perhaps.
            self.maybe_downgrade(group, now);
        }
        JoinResult {
            error: None,
            generation: epoch,
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some(protocol),
            leader: String::new(),
            member_id: id,
            members: Vec::new(),
        }
    }

    /// SyncGroup of a classic member of a consumer group: its assignment.
    pub(super) fn classic_sync(
        group: &mut Group,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
    ) -> SyncResult {
        let Some(cg) = group.consumer.as_mut() else {
            return SyncResult::error(GroupError::UnknownMember);
        };
        if let Err(e) = check_classic(cg, member_id, instance_id, generation) {
            return SyncResult::error(e);
        }
        let Some(member) = cg.members.get_mut(member_id) else {
            return SyncResult::error(GroupError::UnknownMember);
        };
        let protocols = member.classic.as_ref().map(|c| &c.protocols);
        if protocol_type.is_some_and(|t| t != "consumer")
            || protocol_name
                .is_some_and(|n| !protocols.is_some_and(|ps| ps.iter().any(|(p, _)| p == n)))
        {
            return SyncResult::error(GroupError::InconsistentGroupProtocol);
        }
        let name = protocol_name
            .map(str::to_string)
            .or_else(|| protocols.and_then(|ps| ps.first()).map(|(n, _)| n.clone()));
        member.last_seen = Instant::now();
        let assigned = member.assigned.clone();
        SyncResult {
            error: None,
            protocol_type: Some("consumer".to_string()),
            protocol_name: name,
            assignment: encode(cg, &assigned),
        }
    }

    /// Heartbeat of a classic member of a consumer group:
    /// REBALANCE_IN_PROGRESS when it should rejoin.
    pub(super) fn classic_heartbeat(
        group: &mut Group,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let Some(cg) = group.consumer.as_mut() else {
            return Err(GroupError::UnknownMember);
        };
        check_classic(cg, member_id, instance_id, generation)?;
        if let Some(member) = cg.members.get_mut(member_id) {
            member.last_seen = Instant::now();
        }
        if needs_rejoin(cg, member_id) {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup of classic members of a consumer group.
    pub(super) fn classic_leave(
        group: &mut Group,
        leaving: &[(String, Option<String>)],
    ) -> Vec<Result<(), GroupError>> {
        let Some(cg) = group.consumer.as_mut() else {
            return leaving
                .iter()
                .map(|_| Err(GroupError::UnknownMember))
                .collect();
        };
        let mut codes = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance_id) in leaving {
            let found = cg.members.values().find(|m| {
                m.classic.is_some()
                    && if member_id.is_empty() {
                        instance_id.is_some() && m.instance_id == *instance_id
                    } else {
                        m.id == *member_id
                    }
            });
            let Some(member) = found else {
                codes.push(Err(GroupError::UnknownMember));
                continue;
            };
            if instance_id.is_some() && member.instance_id != *instance_id {
                codes.push(Err(GroupError::FencedInstance));
                continue;
            }
            let id = member.id.clone();
            tracing::info!(group = %group.id, member = %id, "classic member left a consumer group");
            cg.members.remove(&id);
            cg.target.remove(&id);
            removed = true;
            codes.push(Ok(()));
        }
        if removed {
            cg.epoch += 1;
            resolve_subscriptions(cg, Some(""));
            compute_target(cg);
        }
        codes
    }
}

/// A classic member of a consumer group at its epoch (its generation).
fn check_classic(
    cg: &ConsumerGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), GroupError> {
    let member = cg
        .members
        .get(member_id)
        .filter(|m| m.classic.is_some())
        .ok_or(GroupError::UnknownMember)?;
    if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
        return Err(GroupError::FencedInstance);
    }
    if generation != member.epoch {
        return Err(GroupError::IllegalGeneration);
    }
    Ok(())
}
