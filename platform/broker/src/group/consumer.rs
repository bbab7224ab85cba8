//! KIP-848 consumer groups (the `consumer` protocol): the coordinator owns
//! the assignment. Every change of membership, subscription or subscribed
//! topic metadata bumps the group epoch and recomputes the target
//! assignment at once (`assignor.rs`); each member then reconciles towards
//! its target at its own heartbeats. A partition goes to its new owner only
//! after the previous owner revoked it: a member that must give partitions
//! up keeps its epoch and is told its smaller assignment first
//! (UNREVOKED_PARTITIONS), and moves to the new epoch only once a
//! heartbeat shows it no longer owns them; a member whose new partitions
//! are still owned elsewhere gets them at a later heartbeat
//! (UNRELEASED_PARTITIONS).
//!
//! Consumer groups live in the same map and under the same lock as the
//! classic ones (`Group::consumer`), so committed offsets, ownership in a
//! cluster and retention are shared. As in Kafka 4, a live group converts
//! between the protocols (`migration.rs`, `group.consumer.migration.policy`):
//! a consumer-protocol member joining a classic group turns it into a
//! consumer group whose classic members keep speaking JoinGroup, SyncGroup
//! and Heartbeat (`ConsumerMember::classic`), and when the last
//! consumer-protocol member leaves, the classic members left form a classic
//! group again. With the policy `disabled`, a group holds members of one
//! protocol at a time: mixing live members is refused (GROUP_ID_NOT_FOUND
//! for the consumer heartbeat, INCONSISTENT_GROUP_PROTOCOL for JoinGroup).
//! Members are not persisted: after a coordinator restart or failover they
//! are unknown (UNKNOWN_MEMBER_ID) and rejoin from their committed offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use regex::Regex;
use uuid::Uuid;

use super::assignor::{ASSIGNORS, Assignment};
use super::coordinator::GroupCoordinator;
pub(crate) use super::reconcile::TopicFilter;
use super::reconcile::{compute_target, is_subset, reconcile, resolve_subscriptions};
use super::state::Group;
use crate::error::GroupError;

/// The bytes a subscription regex may have, and the compiled program size
/// it may reach: a client's regex must not make the coordinator build an
/// unbounded automaton.
const REGEX_MAX_LEN: usize = 1024;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One topic as consumer groups see the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
    /// Internal topics never match a subscription regex.
    pub internal: bool,
}

/// The cluster's topics by name, as of a heartbeat.
pub(crate) type TopicsSnapshot = BTreeMap<String, TopicInfo>;

/// Where a member is in reconciling towards its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// It has its target (at the group's assignment epoch).
    Stable,
    /// It must revoke partitions before it can move on.
    UnrevokedPartitions,
    /// Partitions of its target are still owned by others.
    UnreleasedPartitions,
}

/// One member of a consumer group.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Vec<String>,
    pub subscribed_regex: Option<String>,
    /// `subscribed_regex` compiled (once, when it is set).
    pub regex: Option<Regex>,
    pub server_assignor: Option<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    /// What it owns now.
    pub assigned: Assignment,
    /// What it was told to revoke and has not yet.
    pub revoking: Assignment,
    pub last_seen: Instant,
    /// When a member that does not revoke is fenced.
    pub revoke_deadline: Option<Instant>,
    /// A static member that left with epoch -2: it keeps its partitions
    /// until it returns or its session runs out.
    pub left_static: bool,
    /// The topics its names and regex resolve to.
    pub topics: BTreeSet<String>,
    /// What its principal may DESCRIBE, as of its latest heartbeat: its
    /// regex resolves to those topics only.
    pub may_describe: TopicFilter,
    /// Set for a member that speaks the classic protocol (`migration.rs`).
    pub classic: Option<super::migration::ClassicProtocol>,
}

impl ConsumerMember {
    /// A member that owns nothing yet.
    pub(super) fn new(
        id: String,
        instance_id: Option<String>,
        rebalance_timeout_ms: i32,
        now: Instant,
    ) -> Self {
        ConsumerMember {
            id,
            instance_id,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms,
            subscribed_names: Vec::new(),
            subscribed_regex: None,
            regex: None,
            server_assignor: None,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            last_seen: now,
            revoke_deadline: None,
            left_static: false,
            topics: BTreeSet::new(),
            may_describe: TopicFilter::all(),
            classic: None,
        }
    }
}

/// The consumer-protocol part of a group.
#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Id and partition count of every subscribed topic, as the target
    /// was computed from.
    pub subscribed: BTreeMap<String, (Uuid, i32)>,
    /// The cluster's topics at the last heartbeat (the timer recomputes
    /// targets from it).
    pub topics: TopicsSnapshot,
    /// The assignor of the current target.
    pub assignor: String,
}

impl ConsumerGroup {
    /// Kafka's consumer group state names.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }
}

impl Group {
    /// Whether the group is of the consumer protocol.
    pub(crate) fn is_consumer(&self) -> bool {
        self.consumer.is_some()
    }

    /// Whether the group has no members of either protocol.
    pub(crate) fn has_no_members(&self) -> bool {
        self.members.is_empty()
            && self.pending.is_empty()
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }
}

/// A ConsumerGroupHeartbeat as the coordinator sees it. `None` fields were
/// not sent (unchanged since the last heartbeat).
#[derive(Debug)]
pub(crate) struct ConsumerHeartbeat {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_names: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, when it says.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What a heartbeat is answered with.
#[derive(Debug, PartialEq)]
pub(crate) struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed or the member's view differs.
    pub assignment: Option<Assignment>,
}

/// Compiles a subscription regex as Kafka matches it (the whole name).
pub(crate) fn compile_regex(regex: &str) -> Result<Regex, GroupError> {
    if regex.len() > REGEX_MAX_LEN {
        return Err(GroupError::InvalidRegex(format!(
            "the regex is longer than {REGEX_MAX_LEN} bytes"
        )));
    }
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| GroupError::InvalidRegex(e.to_string()))
}

fn check_request(req: &ConsumerHeartbeat) -> Result<(), GroupError> {
    let invalid = |why: &str| Err(GroupError::InvalidRequest(why.to_string()));
    if req.group_id.is_empty() {
        return Err(GroupError::InvalidGroupId);
    }
    if req.member_epoch < -2 {
        return invalid("MemberEpoch must be -2, -1, 0 or a member epoch");
    }
    if req.member_epoch == -2 && req.instance_id.is_none() {
        return invalid("InstanceId can't be null when MemberEpoch is -2");
    }
    if req.member_epoch == 0 {
        if req.rebalance_timeout_ms < 0 {
            return invalid("RebalanceTimeoutMs must be provided in the first request");
        }
        if req.subscribed_names.is_none() && req.subscribed_regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in the first request",
            );
        }
        if req.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining");
        }
    }
    if let Some(assignor) = &req.server_assignor
        && !ASSIGNORS.contains(&assignor.as_str())
    {
        return Err(GroupError::UnsupportedAssignor(assignor.clone()));
    }
    Ok(())
}

impl GroupCoordinator {
    /// [`GroupCoordinator::consumer_heartbeat_as`] from a member that may
    /// see every topic.
    #[cfg(test)]
    pub(crate) fn consumer_heartbeat(
        &self,
        req: ConsumerHeartbeat,
        topics: TopicsSnapshot,
    ) -> Result<HeartbeatAnswer, GroupError> {
        self.consumer_heartbeat_as(req, topics, TopicFilter::all())
    }

    /// ConsumerGroupHeartbeat: join (epoch 0), heartbeat, leave (-1) or a
    /// static member's temporary leave (-2), from a member whose principal
    /// may DESCRIBE the topics `may_describe` allows.
    pub(crate) fn consumer_heartbeat_as(
        &self,
        mut req: ConsumerHeartbeat,
        topics: TopicsSnapshot,
        may_describe: TopicFilter,
    ) -> Result<HeartbeatAnswer, GroupError> {
        check_request(&req)?;
        let regex = match req.subscribed_regex.as_deref() {
            Some(r) if !r.is_empty() => Some(compile_regex(r)?),
            _ => None,
        };
        let now = Instant::now();
        let interval = self.consumer_heartbeat_interval_ms(&req.group_id);
        let mut groups = self.lock();
        if req.member_epoch < 0 {
            let group = groups
                .get_mut(&req.group_id)
                .filter(|g| g.is_consumer())
                .ok_or(GroupError::GroupIdNotFound)?;
            let Some(cg) = group.consumer.as_mut() else {
                return Err(GroupError::GroupIdNotFound);
            };
            let Some(member) = cg.members.get_mut(&req.member_id) else {
                return Err(GroupError::UnknownMember);
            };
            if req.member_epoch == -2 {
                tracing::info!(group = %req.group_id, member = %req.member_id, "static member left temporarily");
                member.left_static = true;
                member.last_seen = now;
            } else {
                tracing::info!(group = %req.group_id, member = %req.member_id, "member left");
                cg.members.remove(&req.member_id);
                cg.target.remove(&req.member_id);
                cg.epoch += 1;
                resolve_subscriptions(cg, Some(""));
                compute_target(cg);
                self.maybe_downgrade(group, now);
            }
            return Ok(HeartbeatAnswer {
                member_id: req.member_id,
                member_epoch: req.member_epoch,
                heartbeat_interval_ms: interval,
                assignment: None,
            });
        }
        let group = groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(&req.group_id));
        if group.consumer.is_none() && (!group.members.is_empty() || !group.pending.is_empty()) {
            if req.member_epoch != 0 {
                return Err(GroupError::NotConsumerGroup);
            }
            // A live classic group: converted, or refused as before.
            self.upgrade(group, &topics)?;
        }
        if group.consumer.is_none() {
            tracing::info!(group = %req.group_id, "group uses the consumer protocol");
            group.protocol_type = Some("consumer".to_string());
            group.protocol_name = None;
            group.leader = None;
        }
        let max_size = self.settings().max_size;
        let cg = group.consumer.get_or_insert_with(ConsumerGroup::default);
        // Subscriptions are resolved again only when the topics or a
        // subscription changed (and a regex member's own at its heartbeat,
        // below): matching every member's regex against every topic at
        // every heartbeat would not scale.
        let mut resolve_all = false;
        if cg.topics != topics {
            cg.topics = topics;
            resolve_all = true;
        }
        let mut bump = false;
        if req.member_id.is_empty() {
            // v0: the coordinator names new members.
            if req.member_epoch != 0 {
                return Err(GroupError::UnknownMember);
            }
            req.member_id = self.new_member_id(&req.client_id);
        }
        if req.member_epoch == 0 {
            let old_static = req.instance_id.as_ref().and_then(|instance| {
                cg.members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance))
                    // A classic static member does not leave when it
                    // closes: its instance restarted with this protocol.
                    .map(|m| (m.id.clone(), m.left_static || m.classic.is_some()))
            });
            match old_static {
                Some((old_id, left)) if old_id != req.member_id && !left => {
                    return Err(GroupError::UnreleasedInstanceId);
                }
                Some((old_id, _)) => {
                    // A static member returns: it takes its old place,
                    // assignment and epoch, and nothing else moves.
                    if let Some(mut member) = cg.members.remove(&old_id) {
                        tracing::info!(group = %req.group_id, old = %old_id, new = %req.member_id, "static member returned");
                        member.id = req.member_id.clone();
                        member.left_static = false;
                        member.classic = None;
                        if let Some(target) = cg.target.remove(&old_id) {
                            cg.target.insert(req.member_id.clone(), target);
                        }
                        cg.members.insert(req.member_id.clone(), member);
                    }
                }
                None => {
                    if cg.members.remove(&req.member_id).is_some() {
                        // Rejoining after being fenced: it owns nothing.
                        cg.target.remove(&req.member_id);
                    } else if cg.members.len() >= max_size {
                        return Err(GroupError::GroupMaxSizeReached);
                    }
                    tracing::info!(group = %req.group_id, member = %req.member_id, "member joins");
                    cg.members.insert(
                        req.member_id.clone(),
                        ConsumerMember::new(
                            req.member_id.clone(),
                            req.instance_id.clone(),
                            req.rebalance_timeout_ms,
                            now,
                        ),
                    );
                    bump = true;
                }
            }
        } else {
            let member = cg
                .members
                .get(&req.member_id)
                .filter(|m| !m.left_static && m.classic.is_none())
                .ok_or(GroupError::UnknownMember)?;
            if req.instance_id.is_some() && member.instance_id != req.instance_id {
                return Err(GroupError::FencedInstance);
            }
            if req.member_epoch > member.epoch {
                return Err(GroupError::FencedMemberEpoch);
            }
            if req.member_epoch < member.epoch {
                // Only a lost response is forgiven: the previous epoch,
                // owning nothing it was not given.
                let lost_response = req.member_epoch == member.previous_epoch
                    && req
                        .owned
                        .as_ref()
                        .is_some_and(|o| is_subset(o, &member.assigned));
                if !lost_response {
                    return Err(GroupError::FencedMemberEpoch);
                }
            }
        }
        let Some(member) = cg.members.get_mut(&req.member_id) else {
            return Err(GroupError::UnknownMember);
        };
        member.last_seen = now;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        if req.rebalance_timeout_ms >= 0 {
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.rack_id.is_some() {
            member.rack_id = req.rack_id;
        }
        if let Some(mut names) = req.subscribed_names {
            names.sort();
            names.dedup();
            if names != member.subscribed_names {
                member.subscribed_names = names;
                bump = true;
            }
        }
        if let Some(r) = req.subscribed_regex {
            let r = (!r.is_empty()).then_some(r);
            if r != member.subscribed_regex {
                member.subscribed_regex = r;
                member.regex = regex;
                bump = true;
            }
        }
        if req.server_assignor.is_some() && req.server_assignor != member.server_assignor {
            member.server_assignor = req.server_assignor;
            bump = true;
        }
        member.may_describe = may_describe;
        // A regex is resolved again at each of its member's heartbeats, so
        // an ACL granted or revoked since is seen at the next one.
        let regex_member = member.regex.is_some();
        let only = (!resolve_all).then_some(req.member_id.as_str());
        if (bump || resolve_all || regex_member) && resolve_subscriptions(cg, only) {
            bump = true;
        }
        if bump {
            cg.epoch += 1;
            compute_target(cg);
        }
        let before = cg
            .members
            .get(&req.member_id)
            .map(|m| (m.epoch, m.assigned.clone()));
        reconcile(cg, &req.member_id, req.owned.as_ref(), now);
        let Some(member) = cg.members.get(&req.member_id) else {
            return Err(GroupError::UnknownMember);
        };
        let changed = before.as_ref() != Some(&(member.epoch, member.assigned.clone()));
        let stale_view = req.owned.as_ref().is_some_and(|o| *o != member.assigned);
        let send = changed || stale_view || req.member_epoch == 0;
        Ok(HeartbeatAnswer {
            member_id: member.id.clone(),
            member_epoch: member.epoch,
            heartbeat_interval_ms: interval,
            assignment: send.then(|| member.assigned.clone()),
        })
    }

    /// Timers of consumer groups: members whose session ran out, or that
    /// did not revoke within their rebalance timeout, are removed and the
    /// target recomputed.
    pub(super) fn tick_consumer(&self, group: &mut Group, now: Instant) {
        let session =
            Duration::from_millis(self.consumer_session_timeout_ms(&group.id).max(0) as u64);
        let Some(cg) = group.consumer.as_mut() else {
            return;
        };
        let gone: Vec<String> = cg
            .members
            .values()
            .filter(|m| {
                // A classic member keeps the session timeout it joined with.
                let session = m.classic.as_ref().map_or(session, |c| {
                    Duration::from_millis(c.session_timeout_ms.max(0) as u64)
                });
                now.duration_since(m.last_seen) > session
                    || m.revoke_deadline.is_some_and(|d| now >= d)
            })
            .map(|m| m.id.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            tracing::info!(group = %group.id, member = %id, "member fenced: session or revocation timed out");
            cg.members.remove(id);
            cg.target.remove(id);
        }
        cg.epoch += 1;
        resolve_subscriptions(cg, Some(""));
        compute_target(cg);
        self.maybe_downgrade(group, now);
    }

    /// Checks a member of a consumer group committing or fetching offsets
    /// with `epoch` (`member_id` empty and a negative epoch: a commit
    /// from outside the group, accepted only while it has no members).
    pub(super) fn check_consumer_member(
        cg: &mut ConsumerGroup,
        member_id: &str,
        epoch: i32,
        now: Option<Instant>,
    ) -> Result<(), GroupError> {
        if epoch < 0 && member_id.is_empty() {
            return if cg.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::UnknownMember)
            };
        }
        let member = cg
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMember)?;
        if epoch != member.epoch {
            // A classic member knows its epoch as its generation.
            return Err(if member.classic.is_some() {
                GroupError::IllegalGeneration
            } else {
                GroupError::StaleMemberEpoch
            });
        }
        if let Some(now) = now {
            member.last_seen = now;
        }
        Ok(())
    }

    /// OffsetFetch v9 from a member: in a consumer group it must be a
    /// member at its epoch.
    pub(crate) fn check_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        epoch: i32,
    ) -> Result<(), GroupError> {
        let member_id = member_id.unwrap_or("");
        if epoch < 0 && member_id.is_empty() {
            // Admin tools and clients outside the group may always read.
            return Ok(());
        }
        let mut groups = self.lock();
        let Some(cg) = groups.get_mut(group_id).and_then(|g| g.consumer.as_mut()) else {
            return Ok(());
        };
        Self::check_consumer_member(cg, member_id, epoch, None)
    }
}
