//! The server-side assignors of KIP-848 consumer groups: `uniform` (the
//! default) and `range`. Pure functions from the members' subscriptions,
//! the subscribed topics' partition counts and the previous target to the
//! new target; the coordinator (`consumer.rs`) decides when to run them.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions by topic id.
pub(crate) type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignors this coordinator has, the default first.
pub(crate) const ASSIGNORS: &[&str] = &["uniform", "range"];

/// What an assignor sees of one member.
#[derive(Debug)]
pub(crate) struct AssignorMember<'a> {
    pub id: &'a str,
    /// Topic ids it is subscribed to (existing topics only).
    pub topics: BTreeSet<Uuid>,
    /// Its previous target, for stickiness.
    pub previous: Option<&'a Assignment>,
}

/// The new target of every member with `assignor` (an unknown name is the
/// default). `partitions` is the partition count of every subscribed topic.
pub(crate) fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

/// Every partition of a subscribed topic to one of its subscribers, each
/// member getting as many as it can (counts differ by at most one when all
/// subscribe alike), and a partition staying where it was while that keeps
/// the balance.
fn uniform(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    let mut counts: BTreeMap<&str, usize> = members.iter().map(|m| (m.id, 0)).collect();
    let all: Vec<(Uuid, i32)> = partitions
        .iter()
        .filter(|(topic, _)| members.iter().any(|m| m.topics.contains(topic)))
        .flat_map(|(topic, count)| (0..*count).map(move |p| (*topic, p)))
        .collect();
    if members.is_empty() {
        return out;
    }
    // Members may keep up to the lower quota of what they had; the rest
    // goes to whoever has least.
    let quota = all.len() / members.len();
    let mut unassigned = Vec::new();
    for (topic, p) in all {
        let keeper = members.iter().find(|m| {
            m.topics.contains(&topic)
                && m.previous
                    .is_some_and(|prev| prev.get(&topic).is_some_and(|ps| ps.contains(&p)))
        });
        match keeper {
            Some(m) if counts[m.id] < quota.max(1) => {
                *counts.entry(m.id).or_default() += 1;
                out.entry(m.id.to_string())
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .insert(p);
            }
            _ => unassigned.push((topic, p)),
        }
    }
    for (topic, p) in unassigned {
        let least = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .min_by_key(|m| (counts[m.id], m.id));
        if let Some(m) = least {
            *counts.entry(m.id).or_default() += 1;
            out.entry(m.id.to_string())
                .or_default()
                .entry(topic)
                .or_default()
                .insert(p);
        }
    }
    out
}

/// Per topic, its subscribers in member id order get contiguous ranges of
/// partitions, the first ones one more when they do not divide evenly.
fn range(
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.id.to_string(), Assignment::new()))
        .collect();
    for (topic, count) in partitions {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let count = (*count).max(0) as usize;
        let (each, extra) = (count / subscribers.len(), count % subscribers.len());
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = each + usize::from(i < extra);
            if take > 0 {
                let set = out
                    .entry(member.to_string())
                    .or_default()
                    .entry(*topic)
                    .or_default();
                set.extend((next..next + take).map(|p| p as i32));
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(
        id: &'a str,
        topics: &[Uuid],
        previous: Option<&'a Assignment>,
    ) -> AssignorMember<'a> {
        AssignorMember {
            id,
            topics: topics.iter().copied().collect(),
            previous,
        }
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    #[test]
    fn uniform_balances_and_covers_every_partition_once() {
        let t = Uuid::from_u128(1);
        let partitions = BTreeMap::from([(t, 7)]);
        let members = [
            member("a", &[t], None),
            member("b", &[t], None),
            member("c", &[t], None),
        ];
        let out = assign("uniform", &members, &partitions);
        let counts: Vec<usize> = out.values().map(count).collect();
        assert_eq!(counts.iter().sum::<usize>(), 7);
        assert!(counts.iter().all(|c| *c == 2 || *c == 3), "{counts:?}");
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for p in &a[&t] {
                assert!(seen.insert(*p), "partition {p} twice");
            }
        }
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let t = Uuid::from_u128(1);
        let partitions = BTreeMap::from([(t, 6)]);
        let first = assign(
            "uniform",
            &[member("a", &[t], None), member("b", &[t], None)],
            &partitions,
        );
        let members = [
            member("a", &[t], first.get("a")),
            member("b", &[t], first.get("b")),
            member("c", &[t], None),
        ];
        let second = assign("uniform", &members, &partitions);
        for id in ["a", "b"] {
            let kept = second[id][&t].intersection(&first[id][&t]).count();
            assert_eq!(kept, 2, "{id} keeps two of its three partitions");
        }
        assert_eq!(count(&second["c"]), 2);
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let t = Uuid::from_u128(1);
        let u = Uuid::from_u128(2);
        let partitions = BTreeMap::from([(t, 5), (u, 2)]);
        let members = [member("b", &[t, u], None), member("a", &[t], None)];
        let out = assign("range", &members, &partitions);
        assert_eq!(out["a"][&t], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&t], BTreeSet::from([3, 4]));
        assert_eq!(out["b"][&u], BTreeSet::from([0, 1]));
        assert!(!out["a"].contains_key(&u));
    }
}
