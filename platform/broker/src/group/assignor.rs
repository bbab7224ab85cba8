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
    if members.is_empty() {
        return out;
    }
    let mut counts = vec![0usize; members.len()];
    // Who had each partition, so that keeping costs no scan of members.
    let mut previous: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        for (topic, ps) in m.previous.into_iter().flatten() {
            for p in ps {
                previous.insert((*topic, *p), i);
            }
        }
    }
    let subscribers: BTreeMap<Uuid, Vec<usize>> = partitions
        .keys()
        .map(|topic| {
            let who = (0..members.len())
                .filter(|i| members[*i].topics.contains(topic))
                .collect();
            (*topic, who)
        })
        .collect();
    let total: usize = partitions
        .iter()
        .filter(|(topic, _)| subscribers.get(*topic).is_some_and(|s| !s.is_empty()))
        .map(|(_, count)| (*count).max(0) as usize)
        .sum();
    // Members may keep up to the lower quota of what they had; the rest
    // goes to whoever has least.
    let quota = (total / members.len()).max(1);
    let mut give = |i: usize, topic: Uuid, p: i32, counts: &mut Vec<usize>| {
        counts[i] += 1;
        out.entry(members[i].id.to_string())
            .or_default()
            .entry(topic)
            .or_default()
            .insert(p);
    };
    let mut unassigned: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for (topic, count) in partitions {
        for p in 0..*count {
            match previous.get(&(*topic, p)) {
                Some(&i) if members[i].topics.contains(topic) && counts[i] < quota => {
                    give(i, *topic, p, &mut counts);
                }
                _ => unassigned.entry(*topic).or_default().push(p),
            }
        }
    }
    for (topic, ps) in unassigned {
        let Some(who) = subscribers.get(&topic).filter(|w| !w.is_empty()) else {
            continue;
        };
        // The topic's subscribers by (count, member order).
        let mut least: BTreeSet<(usize, usize)> = who.iter().map(|i| (counts[*i], *i)).collect();
        for p in ps {
            let Some((_, i)) = least.pop_first() else {
                break;
            };
            give(i, topic, p, &mut counts);
            least.insert((counts[i], i));
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
