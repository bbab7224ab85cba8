//! KIP-848 reconciliation under random schedules: members join, heartbeat
//! (revoking at once, late, or with lost answers), leave and get fenced
//! while partition counts grow, and after every step no partition is owned
//! (assigned or still being revoked) by two members; once everyone
//! heartbeats in turn, the group settles with every partition owned once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::assignor::Assignment;
use super::consumer::{ConsumerHeartbeat, MemberState, TopicInfo, TopicsSnapshot};
use super::coordinator::{GroupCoordinator, GroupSettings};

fn coordinator() -> GroupCoordinator {
    GroupCoordinator::new(GroupSettings::for_tests())
}

const TOPIC: Uuid = Uuid::from_u128(7);

fn topics(partitions: i32) -> TopicsSnapshot {
    BTreeMap::from([(
        "t".to_string(),
        TopicInfo {
            id: TOPIC,
            partitions,
            internal: false,
        },
    )])
}

fn beat(member: &str, epoch: i32, owned: Option<Assignment>) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".to_string(),
        member_id: member.to_string(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 60_000,
        subscribed_names: (epoch == 0).then(|| vec!["t".to_string()]),
        subscribed_regex: None,
        server_assignor: None,
        owned,
        client_id: "c".to_string(),
        client_host: "h".to_string(),
    }
}

/// A client as librdkafka behaves: its epoch and what it owns.
#[derive(Default, Clone)]
struct Client {
    epoch: i32,
    owned: Assignment,
    joined: bool,
}

/// No partition is held by two members, counting those being revoked.
fn check_exclusive(c: &GroupCoordinator) {
    let groups = c.lock();
    let Some(cg) = groups.get("g").and_then(|g| g.consumer.as_ref()) else {
        return;
    };
    let mut seen = BTreeSet::new();
    for m in cg.members.values() {
        for (t, ps) in m.assigned.iter().chain(m.revoking.iter()) {
            for p in ps {
                assert!(seen.insert((*t, *p)), "partition {p} held twice");
            }
        }
    }
}

fn step(
    c: &GroupCoordinator,
    clients: &mut BTreeMap<String, Client>,
    id: &str,
    partitions: i32,
    lose_answer: bool,
) {
    let client = clients.entry(id.to_string()).or_default();
    let request = if client.joined {
        beat(id, client.epoch, Some(client.owned.clone()))
    } else {
        beat(id, 0, Some(Assignment::new()))
    };
    match c.consumer_heartbeat(request, topics(partitions)) {
        Ok(answer) if !lose_answer => {
            client.joined = true;
            client.epoch = answer.member_epoch;
            if let Some(a) = answer.assignment {
                // The client revokes and takes at once, then says so.
                client.owned = a;
            }
        }
        Ok(_) => {}
        Err(_) => *client = Client::default(),
    }
}

#[test]
fn random_schedules_never_own_a_partition_twice_and_settle() {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _round in 0..40 {
        let c = coordinator();
        let mut clients: BTreeMap<String, Client> = BTreeMap::new();
        let mut partitions = 4;
        for _ in 0..300 {
            let id = format!("m{}", next() % 5);
            match next() % 20 {
                0 => {
                    // A clean leave.
                    if clients.get(&id).is_some_and(|cl| cl.joined) {
                        let _ = c.consumer_heartbeat(beat(&id, -1, None), topics(partitions));
                        clients.remove(&id);
                    }
                }
                1 => partitions += 1,
                2 => step(&c, &mut clients, &id, partitions, true),
                3 => {
                    // Fenced by the timer: its session ran out.
                    let later = Instant::now() + Duration::from_secs(46);
                    if next() % 4 == 0 {
                        c.tick(later, 0);
                    }
                }
                _ => step(&c, &mut clients, &id, partitions, false),
            }
            check_exclusive(&c);
        }
        // Everyone left heartbeats in turn until nothing moves.
        let ids: Vec<String> = clients.keys().cloned().collect();
        for _ in 0..10 {
            for id in &ids {
                step(&c, &mut clients, id, partitions, false);
                check_exclusive(&c);
            }
        }
        let groups = c.lock();
        let Some(cg) = groups.get("g").and_then(|g| g.consumer.as_ref()) else {
            continue;
        };
        if cg.members.is_empty() {
            continue;
        }
        let owned: usize = cg
            .members
            .values()
            .map(|m| m.assigned.values().map(|s| s.len()).sum::<usize>())
            .sum();
        assert_eq!(owned, partitions as usize, "every partition owned once");
        assert!(
            cg.members
                .values()
                .all(|m| m.state == MemberState::Stable && m.epoch == cg.assignment_epoch)
        );
    }
}
