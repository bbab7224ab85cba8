//! Online conversion between the classic and the consumer protocol
//! (`migration.rs`): a live classic group upgraded by a consumer-protocol
//! member, partitions handed over only after their classic owner gave them
//! up, the group downgraded when that member leaves, and the `disabled`
//! policy refusing as before.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    consumer_protocol_subscription,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use super::MigrationPolicy;
use super::assignor::Assignment;
use super::classic::JoinRequest;
use super::consumer::{ConsumerHeartbeat, TopicInfo, TopicsSnapshot};
use super::coordinator::{GroupCoordinator, GroupSettings, Pending};
use super::state::{GroupState, JoinResult};
use crate::error::GroupError;

const TOPIC: Uuid = Uuid::from_u128(9);
const PARTITIONS: i32 = 4;

fn coordinator(policy: MigrationPolicy) -> GroupCoordinator {
    GroupCoordinator::new(GroupSettings {
        max_size: 10,
        migration_policy: policy,
        ..GroupSettings::for_tests()
    })
}

fn topics() -> TopicsSnapshot {
    BTreeMap::from([(
        "t".to_string(),
        TopicInfo {
            id: TOPIC,
            partitions: PARTITIONS,
            internal: false,
        },
    )])
}

/// A classic consumer's subscription to `t`, listing `owned` (v1).
fn subscription(owned: &[i32]) -> Bytes {
    let s = ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("t")])
        .with_owned_partitions(if owned.is_empty() {
            Vec::new()
        } else {
            vec![
                consumer_protocol_subscription::TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("t")))
                    .with_partitions(owned.to_vec()),
            ]
        });
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    s.encode(&mut buf, 1).expect("encodes");
    buf.freeze()
}

/// The partitions of `t` in a classic assignment.
fn partitions(assignment: &Bytes) -> BTreeSet<i32> {
    if assignment.is_empty() {
        return BTreeSet::new();
    }
    let mut buf = assignment.slice(2..);
    let a = ConsumerProtocolAssignment::decode(&mut buf, 0).expect("decodes");
    a.assigned_partitions
        .iter()
        .filter(|tp| tp.topic.as_str() == "t")
        .flat_map(|tp| tp.partitions.iter().copied())
        .collect()
}

fn encode_assignment(ps: &[i32]) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
        kafka_protocol::messages::consumer_protocol_assignment::TopicPartition::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(ps.to_vec()),
    ]);
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    a.encode(&mut buf, 0).expect("encodes");
    buf.freeze()
}

fn join(c: &GroupCoordinator, member: &str, owned: &[i32]) -> Pending<JoinResult> {
    join_as(c, member, None, owned)
}

fn join_as(
    c: &GroupCoordinator,
    member: &str,
    instance: Option<&str>,
    owned: &[i32],
) -> Pending<JoinResult> {
    c.join(JoinRequest {
        group_id: "g".to_string(),
        member_id: member.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "c".to_string(),
        client_host: String::new(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![("range".to_string(), subscription(owned))],
        require_member_id: false,
    })
}

fn answered<T: std::fmt::Debug>(pending: Pending<T>) -> T {
    match pending {
        Pending::Ready(t) => t,
        Pending::Wait(mut rx) => rx.try_recv().expect("answered"),
    }
}

fn sync(c: &GroupCoordinator, member: &str, generation: i32) -> Result<BTreeSet<i32>, GroupError> {
    let r = answered(c.sync(
        "g",
        member,
        None,
        generation,
        Some("consumer"),
        Some("range"),
        Vec::new(),
    ));
    match r.error {
        Some(e) => Err(e),
        None => Ok(partitions(&r.assignment)),
    }
}

fn beat(member: &str, epoch: i32, owned: &[i32]) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".to_string(),
        member_id: member.to_string(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 10_000,
        subscribed_names: (epoch == 0).then(|| vec!["t".to_string()]),
        subscribed_regex: None,
        server_assignor: None,
        owned: Some(if owned.is_empty() {
            Assignment::new()
        } else {
            Assignment::from([(TOPIC, owned.iter().copied().collect())])
        }),
        client_id: "c".to_string(),
        client_host: "h".to_string(),
    }
}

fn ids(a: &Option<Assignment>) -> BTreeSet<i32> {
    a.as_ref()
        .and_then(|a| a.get(&TOPIC).cloned())
        .unwrap_or_default()
}

/// A stable classic group of two members, A owning 0 and 1, B 2 and 3, at
/// generation 2; their ids.
fn classic_group(c: &GroupCoordinator) -> (String, String) {
    let first = answered(join(c, "", &[]));
    assert_eq!(first.generation, 1);
    let b = join(c, "", &[]);
    let a = answered(join(c, &first.member_id, &[]));
    let b = answered(b);
    assert_eq!((a.generation, b.generation), (2, 2));
    let (leader, follower) = if a.leader == a.member_id {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let assignments = vec![
        (a.member_id.clone(), encode_assignment(&[0, 1])),
        (b.member_id.clone(), encode_assignment(&[2, 3])),
    ];
    let r = answered(c.sync("g", &leader.member_id, None, 2, None, None, assignments));
    assert!(r.error.is_none());
    assert!(sync(c, &follower.member_id, 2).is_ok());
    (a.member_id, b.member_id)
}

/// Who owns (or is still revoking) each partition: never two members.
fn owners(c: &GroupCoordinator) -> BTreeMap<i32, String> {
    let groups = c.lock();
    let cg = groups["g"].consumer.as_ref().expect("a consumer group");
    let mut owner = BTreeMap::new();
    for m in cg.members.values() {
        for p in m.assigned.values().chain(m.revoking.values()).flatten() {
            assert!(
                owner.insert(*p, m.id.clone()).is_none(),
                "partition {p} owned twice"
            );
        }
    }
    owner
}

#[test]
fn upgrade_hands_partitions_over_only_after_the_classic_owner_revoked_then_downgrades() {
    let c = coordinator(MigrationPolicy::Bidirectional);
    let (a, b) = classic_group(&c);

    // C joins with the consumer protocol: the group converts, keeping what
    // A and B own; C gets nothing they still hold.
    let answer = c
        .consumer_heartbeat(beat("C", 0, &[]), topics())
        .expect("upgraded");
    assert_eq!(answer.member_epoch, 3, "generation 2, then C's join");
    assert!(
        ids(&answer.assignment).is_empty(),
        "all partitions still owned"
    );
    let owned = owners(&c);
    assert_eq!(owned.len(), 4);
    assert_eq!(c.list()[0].group_type, "consumer");
    {
        let groups = c.lock();
        let cg = groups["g"].consumer.as_ref().expect("consumer group");
        assert!(cg.members[&a].classic.is_some() && cg.members[&b].classic.is_some());
        assert_eq!(cg.members[&a].epoch, 2);
        assert!(!cg.target["C"].is_empty(), "C has a target");
    }
    // ConsumerGroupDescribe tells the classic members from the new one.
    let view = c.describe_consumer("g").expect("described");
    let classic: BTreeMap<String, bool> = view
        .members
        .iter()
        .map(|m| (m.id.clone(), m.classic))
        .collect();
    assert_eq!(
        classic,
        BTreeMap::from([
            (a.clone(), true),
            (b.clone(), true),
            ("C".to_owned(), false)
        ])
    );
    // OffsetCommit/Fetch of a classic member: at its generation.
    assert!(c.check_offset_fetch("g", Some(&a), 2).is_ok());
    assert!(matches!(
        c.check_offset_fetch("g", Some(&a), 1),
        Err(GroupError::IllegalGeneration)
    ));

    // A classic member is asked to rejoin; an eager client revokes all and
    // rejoins owning nothing; it is answered at once with its new epoch.
    assert!(matches!(
        c.heartbeat("g", &a, None, 2),
        Err(GroupError::RebalanceInProgress)
    ));
    let ra = answered(join(&c, &a, &[]));
    assert!(ra.error.is_none(), "{ra:?}");
    assert_eq!((ra.generation, ra.member_id.as_str()), (3, a.as_str()));
    assert!(ra.members.is_empty() && ra.leader != a);
    let a_has = sync(&c, &a, 3).expect("synced");
    owners(&c);
    assert!(c.heartbeat("g", &a, None, 3).is_ok(), "A is done");

    // C now gets what A gave up, and only that while B holds the rest.
    let answer = c
        .consumer_heartbeat(beat("C", 3, &[]), topics())
        .expect("beat");
    let c_has = ids(&answer.assignment);
    assert!(!c_has.is_empty());
    assert!(c_has.is_disjoint(&a_has));
    let owned = owners(&c);
    for p in &c_has {
        assert_eq!(owned[p], "C");
    }
    // B rejoins with a cooperative subscription listing what it owns.
    assert!(matches!(
        c.heartbeat("g", &b, None, 2),
        Err(GroupError::RebalanceInProgress)
    ));
    let rb = answered(join(&c, &b, &[2, 3]));
    let b_has = sync(&c, &b, rb.generation).expect("synced");
    owners(&c);
    if rb.generation == 2 {
        // It must revoke first: it keeps its epoch and a smaller assignment.
        assert!(b_has.len() < 2);
        let rb = answered(join(&c, &b, &b_has.iter().copied().collect::<Vec<_>>()));
        assert_eq!(rb.generation, 3);
    }
    let answer = c
        .consumer_heartbeat(
            beat("C", 3, &c_has.iter().copied().collect::<Vec<_>>()),
            topics(),
        )
        .expect("beat");
    if let Some(a) = &answer.assignment {
        assert!(a.get(&TOPIC).is_some_and(|ps| ps.len() >= c_has.len()));
    }
    let owned = owners(&c);
    assert_eq!(owned.len(), 4, "every partition owned once: {owned:?}");

    // C leaves: A and B are all classic, the group is classic again at the
    // group epoch, rebalancing with their assignments.
    c.consumer_heartbeat(beat("C", -1, &[]), topics())
        .expect("left");
    let epoch = {
        let groups = c.lock();
        let g = &groups["g"];
        assert!(g.consumer.is_none(), "downgraded");
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(g.members.len(), 2);
        assert_eq!(partitions(&g.members[&a].assignment), a_has);
        g.generation
    };
    assert_eq!(epoch, 4);
    assert_eq!(c.list()[0].group_type, "classic");
    assert!(matches!(
        c.heartbeat("g", &a, None, 4),
        Err(GroupError::RebalanceInProgress)
    ));
    let pa = join(&c, &a, &[]);
    let rb = answered(join(&c, &b, &[]));
    let ra = answered(pa);
    assert_eq!((ra.generation, rb.generation), (5, 5));
}

#[test]
fn classic_members_leave_and_expire_inside_a_consumer_group() {
    let c = coordinator(MigrationPolicy::Upgrade);
    let (a, b) = classic_group(&c);
    c.consumer_heartbeat(beat("C", 0, &[]), topics())
        .expect("upgraded");
    // LeaveGroup of a classic member frees its partitions at once.
    let codes = c.leave("g", &[(a.clone(), None)]).expect("left");
    assert!(codes[0].is_ok());
    assert!(!owners(&c).values().any(|o| *o == a));
    // B's session runs out.
    c.tick(std::time::Instant::now() + Duration::from_secs(11), 0);
    assert!(!owners(&c).values().any(|o| *o == b));
    // Upgrade only: C leaving leaves an empty consumer group, not a
    // downgraded one; a new classic member takes it over.
    c.consumer_heartbeat(beat("C", -1, &[]), topics())
        .expect("left");
    assert!(
        c.lock()["g"]
            .consumer
            .as_ref()
            .is_some_and(|cg| cg.members.is_empty())
    );
}

#[test]
fn without_downgrade_the_classic_members_stay_in_the_consumer_group() {
    let c = coordinator(MigrationPolicy::Upgrade);
    let (a, _b) = classic_group(&c);
    c.consumer_heartbeat(beat("C", 0, &[]), topics())
        .expect("upgraded");
    c.consumer_heartbeat(beat("C", -1, &[]), topics())
        .expect("left");
    assert!(c.lock()["g"].consumer.is_some(), "not downgraded");
    // The classic members keep working there.
    let ra = answered(join(&c, &a, &[]));
    assert!(ra.error.is_none());
    assert_eq!(sync(&c, &a, ra.generation).map(|p| p.len()).ok(), Some(2));
}

#[test]
fn disabled_policy_refuses_to_mix_protocols_as_before() {
    let c = coordinator(MigrationPolicy::Disabled);
    classic_group(&c);
    assert!(matches!(
        c.consumer_heartbeat(beat("C", 0, &[]), topics()),
        Err(GroupError::NotConsumerGroup)
    ));
    assert!(c.lock()["g"].consumer.is_none());

    let c = coordinator(MigrationPolicy::Disabled);
    c.consumer_heartbeat(beat("C", 0, &[]), topics())
        .expect("joined");
    let r = answered(join(&c, "", &[]));
    assert!(matches!(
        r.error,
        Some(GroupError::InconsistentGroupProtocol)
    ));
}

#[test]
fn a_group_of_another_protocol_type_is_not_upgraded() {
    let c = coordinator(MigrationPolicy::Bidirectional);
    let mut request = JoinRequest {
        group_id: "g".to_string(),
        member_id: String::new(),
        instance_id: None,
        client_id: "c".to_string(),
        client_host: String::new(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "connect".to_string(),
        protocols: vec![("default".to_string(), Bytes::from_static(b"x"))],
        require_member_id: false,
    };
    assert!(answered(c.join(request)).error.is_none());
    assert!(matches!(
        c.consumer_heartbeat(beat("C", 0, &[]), topics()),
        Err(GroupError::NotConsumerGroup)
    ));
    request = JoinRequest {
        group_id: "g2".to_string(),
        member_id: String::new(),
        instance_id: None,
        client_id: "c".to_string(),
        client_host: String::new(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        protocol_type: "consumer".to_string(),
        protocols: vec![(
            "range".to_string(),
            Bytes::from_static(b"not a subscription"),
        )],
        require_member_id: false,
    };
    assert!(answered(c.join(request)).error.is_none());
    let mut b = beat("C", 0, &[]);
    b.group_id = "g2".to_string();
    assert!(matches!(
        c.consumer_heartbeat(b, topics()),
        Err(GroupError::NotConsumerGroup)
    ));
}

#[test]
fn static_members_keep_their_place_across_the_protocols() {
    let c = coordinator(MigrationPolicy::Bidirectional);
    let (a, b) = classic_group(&c);
    c.consumer_heartbeat(beat("C", 0, &[]), topics())
        .expect("upgraded");
    // A classic static member joins the consumer group, then restarts
    // (a new JoinGroup without member id): it keeps its partitions.
    let s = answered(join_as(&c, "", Some("static-1"), &[]));
    assert!(s.error.is_none(), "{s:?}");
    // Everyone rejoins and heartbeats until the group settles.
    let mut clients = vec![a.clone(), b.clone(), s.member_id.clone()];
    for _ in 0..4 {
        for id in &clients {
            let r = answered(join(&c, id, &[]));
            sync(&c, id, r.generation).expect("synced");
        }
        let owned: Vec<i32> = owners(&c)
            .into_iter()
            .filter(|(_, o)| o == "C")
            .map(|(p, _)| p)
            .collect();
        let epoch = c.lock()["g"]
            .consumer
            .as_ref()
            .map_or(0, |cg| cg.members["C"].epoch);
        c.consumer_heartbeat(beat("C", epoch, &owned), topics())
            .expect("beat");
    }
    let before: BTreeSet<i32> = owners(&c)
        .into_iter()
        .filter(|(_, o)| *o == s.member_id)
        .map(|(p, _)| p)
        .collect();
    assert!(!before.is_empty(), "{:?}", owners(&c));
    let restarted = answered(join_as(
        &c,
        "",
        Some("static-1"),
        &before.iter().copied().collect::<Vec<_>>(),
    ));
    assert!(restarted.error.is_none(), "{restarted:?}");
    assert_ne!(restarted.member_id, s.member_id);
    assert_eq!(
        sync(&c, &restarted.member_id, restarted.generation).ok(),
        Some(before.clone())
    );
    clients[2] = restarted.member_id.clone();
    // The same instance restarted with the consumer protocol takes over
    // the classic static member's place and partitions.
    let mut b = beat("S2", 0, &[]);
    b.instance_id = Some("static-1".to_string());
    let answer = c.consumer_heartbeat(b, topics()).expect("took its place");
    assert_eq!(ids(&answer.assignment), before);
    let groups = c.lock();
    let cg = groups["g"].consumer.as_ref().expect("consumer group");
    assert!(cg.members["S2"].classic.is_none());
    assert!(!cg.members.contains_key(&restarted.member_id));
}

#[test]
fn a_consumer_static_member_back_with_the_classic_protocol_downgrades_the_group() {
    let c = coordinator(MigrationPolicy::Bidirectional);
    classic_group(&c);
    let mut s = beat("S", 0, &[]);
    s.instance_id = Some("static-1".to_string());
    c.consumer_heartbeat(s, topics()).expect("upgraded");
    // It leaves for a while (epoch -2), keeping its place.
    let mut leave = beat("S", -2, &[]);
    leave.instance_id = Some("static-1".to_string());
    c.consumer_heartbeat(leave, topics())
        .expect("left for a while");
    assert!(c.lock()["g"].consumer.is_some());
    // Back with the classic protocol: no consumer-protocol member is left.
    let back = answered(join_as(&c, "", Some("static-1"), &[]));
    assert!(back.error.is_none(), "{back:?}");
    let groups = c.lock();
    let g = &groups["g"];
    assert!(g.consumer.is_none(), "downgraded");
    assert_eq!(g.members.len(), 3);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.static_member("static-1").as_deref(),
        Some(back.member_id.as_str())
    );
}
