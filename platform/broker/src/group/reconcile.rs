//! How a KIP-848 group moves (`consumer.rs` decides when): subscriptions
//! resolved against the cluster's topics, the target computed by the
//! assignor, and one member reconciled towards its target — revoking
//! first, then taking only what nobody else holds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::assignor::{self, ASSIGNORS, Assignment, AssignorMember};
use super::consumer::{ConsumerGroup, MemberState};

/// Which topics a member's principal may DESCRIBE: its regex resolves
/// to those only, so an assignment never names a topic the operator did
/// not let it see (Kafka's KAFKA-18813). The handler makes it from the
/// requester's authorization; the group logic only asks it.
#[derive(Clone)]
pub(crate) struct TopicFilter(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl TopicFilter {
    pub(crate) fn new(allows: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        TopicFilter(Arc::new(allows))
    }

    /// Every topic: no authorizer, or a member that names its topics.
    pub(crate) fn all() -> Self {
        Self::new(|_| true)
    }

    pub(crate) fn allows(&self, topic: &str) -> bool {
        (self.0)(topic)
    }
}

impl std::fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopicFilter")
    }
}

fn pairs(a: &Assignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
}

fn contains(a: &Assignment, topic: Uuid, p: i32) -> bool {
    a.get(&topic).is_some_and(|ps| ps.contains(&p))
}

fn insert(a: &mut Assignment, topic: Uuid, p: i32) {
    a.entry(topic).or_default().insert(p);
}

pub(super) fn is_subset(small: &Assignment, big: &Assignment) -> bool {
    pairs(small).all(|(t, p)| contains(big, t, p))
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    pairs(a).any(|(t, p)| contains(b, t, p))
}

/// Resolves the subscription of member `only` (`None`: of every member)
/// against the group's topic snapshot — a regex to the topics the
/// member's principal may DESCRIBE, as of its latest heartbeat — then the
/// subscribed topics' metadata: whether a resolved member's topics or
/// that metadata changed.
pub(super) fn resolve_subscriptions(cg: &mut ConsumerGroup, only: Option<&str>) -> bool {
    let topics = &cg.topics;
    let mut changed = false;
    for member in cg.members.values_mut() {
        if only.is_some_and(|id| id != member.id) {
            continue;
        }
        let mut resolved: BTreeSet<String> = member
            .subscribed_names
            .iter()
            .filter(|n| topics.contains_key(*n))
            .cloned()
            .collect();
        if let Some(r) = &member.regex {
            resolved.extend(
                topics
                    .iter()
                    .filter(|(name, info)| {
                        !info.internal && r.is_match(name) && member.may_describe.allows(name)
                    })
                    .map(|(name, _)| name.clone()),
            );
        }
        changed |= resolved != member.topics;
        member.topics = resolved;
    }
    let subscribed: BTreeMap<String, (Uuid, i32)> = cg
        .members
        .values()
        .flat_map(|m| m.topics.iter())
        .filter_map(|name| {
            topics
                .get(name)
                .map(|info| (name.clone(), (info.id, info.partitions)))
        })
        .collect();
    changed |= subscribed != cg.subscribed;
    cg.subscribed = subscribed;
    changed
}

/// A new target for every member, at the group's epoch. The assignor is
/// the one most members ask for (ties and none: the default, `uniform`).
pub(super) fn compute_target(cg: &mut ConsumerGroup) {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in cg.members.values() {
        if let Some(a) = &m.server_assignor {
            *votes.entry(a.as_str()).or_default() += 1;
        }
    }
    let assignor = ASSIGNORS
        .iter()
        .copied()
        .max_by_key(|a| {
            (
                votes.get(a).copied().unwrap_or(0),
                std::cmp::Reverse(ASSIGNORS.iter().position(|x| x == a)),
            )
        })
        .unwrap_or("uniform");
    let partitions: BTreeMap<Uuid, i32> = cg.subscribed.values().copied().collect();
    let members: Vec<AssignorMember<'_>> = cg
        .members
        .values()
        .map(|m| AssignorMember {
            id: &m.id,
            topics: m
                .topics
                .iter()
                .filter_map(|t| cg.subscribed.get(t).map(|(id, _)| *id))
                .collect(),
            previous: cg.target.get(&m.id),
        })
        .collect();
    let target = assignor::assign(assignor, &members, &partitions);
    cg.target = target;
    cg.assignor = assignor.to_string();
    cg.assignment_epoch = cg.epoch;
}

/// Moves member `id` towards its target: revoke first, then take only
/// what nobody else owns.
pub(super) fn reconcile(
    cg: &mut ConsumerGroup,
    id: &str,
    owned: Option<&Assignment>,
    now: Instant,
) {
    let target = cg.target.get(id).cloned().unwrap_or_default();
    let mut taken = Assignment::new();
    for (other, m) in &cg.members {
        if other != id {
            for (t, p) in pairs(&m.assigned).chain(pairs(&m.revoking)) {
                insert(&mut taken, t, p);
            }
        }
    }
    let assignment_epoch = cg.assignment_epoch;
    let Some(member) = cg.members.get_mut(id) else {
        return;
    };
    if member.state == MemberState::UnrevokedPartitions {
        match owned {
            Some(o) if !intersects(o, &member.revoking) => {
                member.revoking.clear();
                member.revoke_deadline = None;
            }
            _ => return,
        }
    }
    if member.state == MemberState::Stable && member.epoch == assignment_epoch {
        return;
    }
    let mut kept = Assignment::new();
    let mut revoke = Assignment::new();
    for (t, p) in pairs(&member.assigned) {
        if contains(&target, t, p) {
            insert(&mut kept, t, p);
        } else {
            insert(&mut revoke, t, p);
        }
    }
    if !revoke.is_empty() {
        member.assigned = kept;
        member.revoking = revoke;
        member.state = MemberState::UnrevokedPartitions;
        member.revoke_deadline =
            Some(now + Duration::from_millis(member.rebalance_timeout_ms.max(0) as u64));
        return;
    }
    let mut unreleased = false;
    for (t, p) in pairs(&target) {
        if contains(&kept, t, p) {
            continue;
        }
        if contains(&taken, t, p) {
            unreleased = true;
        } else {
            insert(&mut kept, t, p);
        }
    }
    member.assigned = kept;
    if member.epoch != assignment_epoch {
        member.previous_epoch = member.epoch;
        member.epoch = assignment_epoch;
    }
    member.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
}
