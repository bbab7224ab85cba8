//! Static membership (KIP-345) as clients use it: aiokafka's mix of request
//! versions (JoinGroup v5 with an instance id, then Heartbeat v1 and
//! OffsetCommit v3, which have no instance-id field) is not fenced, and a
//! restarted static *leader* takes its place back without a rebalance, as
//! Kafka's classic coordinator does. Raw requests at the versions those
//! clients send.

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn sb(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn subscription(topic: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![sb(topic)])
        .encode(&mut buf, 0)
        .expect("subscription encodes");
    buf.freeze()
}

fn join(raw: &mut Raw, member: &str, instance: &str) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(sb("s")))
        .with_member_id(sb(member))
        .with_group_instance_id(Some(sb(instance)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(5_000)
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(subscription("static")),
        ]);
    match raw.call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(request)) {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

fn sync(
    raw: &mut Raw,
    member: &str,
    instance: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(sb("s")))
        .with_member_id(sb(member))
        .with_group_instance_id(Some(sb(instance)))
        .with_generation_id(generation)
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(sb(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        );
    match raw.call(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(request)) {
        ResponseKind::SyncGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

/// Heartbeat at `version`; v3+ carries `instance`.
fn heartbeat(raw: &mut Raw, version: i16, member: &str, instance: &str, generation: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(sb("s")))
        .with_member_id(sb(member))
        .with_group_instance_id((version >= 3).then(|| sb(instance)))
        .with_generation_id(generation);
    match raw.call(ApiKey::Heartbeat, version, RequestKind::Heartbeat(request)) {
        ResponseKind::Heartbeat(r) => r.error_code,
        other => panic!("{other:?}"),
    }
}

fn broker(dir: &std::path::Path) -> TestBroker {
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 2,
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::ephemeral(dir)
    });
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("producer");
    producer
        .send(
            BaseRecord::<(), str>::to("static")
                .partition(0)
                .payload("x"),
        )
        .expect("enqueue");
    producer.flush(Duration::from_secs(10)).expect("flush");
    broker
}

/// aiokafka's static member: joined with JoinGroup v5 and an instance id,
/// it heartbeats with Heartbeat v1 and commits with OffsetCommit v3 — no
/// instance id on either. Kafka fences only a request that carries a
/// mismatching instance id, so both succeed; a v3 heartbeat with another
/// member's instance id is still fenced.
#[test]
fn a_static_member_on_old_request_versions_is_not_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let joined = join(&mut raw, "", "aio-1");
    assert_eq!(joined.error_code, 0);
    let id = joined.member_id.to_string();
    let generation = joined.generation_id;
    let synced = sync(&mut raw, &id, "aio-1", generation, &[(&id, b"mine")]);
    assert_eq!(synced.error_code, 0);

    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            heartbeat(&mut raw, 1, &id, "aio-1", generation),
            0,
            "Heartbeat v1"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb("s")))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(sb(&id))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("static")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    match raw.call(ApiKey::OffsetCommit, 3, RequestKind::OffsetCommit(commit)) {
        ResponseKind::OffsetCommit(r) => {
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v3")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(heartbeat(&mut raw, 3, &id, "aio-1", generation), 0);
    assert_eq!(
        heartbeat(&mut raw, 3, &id, "someone-else", generation),
        82,
        "a mismatching instance id is FENCED_INSTANCE_ID"
    );
    broker.stop();
}

/// A static leader restarts (a new connection, no member id, its instance
/// id): it gets the current generation back with the old leader's id, so
/// it does not compute an assignment a stable group would not pass on; its
/// SyncGroup returns its assignment, and the other member never sees a
/// rebalance. Its old member id is fenced.
#[test]
fn a_restarted_static_leader_takes_its_place_back_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = broker(dir.path());
    let addr = broker.addr;
    // The leader forms generation 1 alone.
    let mut lead = Raw::connect(addr);
    let first = join(&mut lead, "", "lead-1");
    assert_eq!(first.error_code, 0);
    let lead_id = first.member_id.to_string();
    assert_eq!(first.leader.as_str(), lead_id);
    assert_eq!(
        sync(&mut lead, &lead_id, "lead-1", first.generation_id, &[]).error_code,
        0
    );

    // The other member joins; the leader rejoins and stays the leader.
    let follower = std::thread::spawn(move || {
        let mut raw = Raw::connect(addr);
        let joined = join(&mut raw, "", "other-1");
        assert_eq!(joined.error_code, 0);
        let id = joined.member_id.to_string();
        let synced = sync(&mut raw, &id, "other-1", joined.generation_id, &[]);
        assert_eq!(&synced.assignment[..], b"for-other");
        (raw, id, joined.generation_id)
    });
    let start = Instant::now();
    while heartbeat(&mut lead, 3, &lead_id, "lead-1", first.generation_id) != 27 {
        assert!(start.elapsed() < Duration::from_secs(10), "no rebalance");
        std::thread::sleep(Duration::from_millis(20));
    }
    let gen2 = join(&mut lead, &lead_id, "lead-1");
    assert_eq!(
        (gen2.error_code, gen2.leader.as_str()),
        (0, lead_id.as_str())
    );
    let other_id = gen2
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .find(|m| *m != lead_id)
        .expect("the leader sees the other member");
    let synced = sync(
        &mut lead,
        &lead_id,
        "lead-1",
        gen2.generation_id,
        &[(&lead_id, b"for-lead"), (&other_id, b"for-other")],
    );
    assert_eq!(&synced.assignment[..], b"for-lead");
    let (mut other, id, generation) = follower.join().expect("the other member");
    assert_eq!(
        (id.as_str(), generation),
        (other_id.as_str(), gen2.generation_id)
    );

    // The leader restarts.
    drop(lead);
    let mut lead = Raw::connect(addr);
    let rejoined = join(&mut lead, "", "lead-1");
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(
        rejoined.generation_id, gen2.generation_id,
        "no new generation"
    );
    let new_id = rejoined.member_id.to_string();
    assert_ne!(new_id, lead_id);
    assert_eq!(
        rejoined.leader.as_str(),
        lead_id,
        "told the old leader id, so it does not assign"
    );
    assert!(rejoined.members.is_empty());
    let synced = sync(&mut lead, &new_id, "lead-1", gen2.generation_id, &[]);
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"for-lead"[..])
    );
    for _ in 0..5 {
        assert_eq!(
            heartbeat(&mut other, 3, &other_id, "other-1", gen2.generation_id),
            0,
            "the other member is undisturbed"
        );
        assert_eq!(
            heartbeat(&mut lead, 3, &new_id, "lead-1", gen2.generation_id),
            0
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        heartbeat(&mut other, 3, &lead_id, "lead-1", gen2.generation_id),
        82,
        "the old incarnation is fenced"
    );
    broker.stop();
}
