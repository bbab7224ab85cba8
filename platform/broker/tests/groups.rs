//! Consumer groups with real clients: librdkafka consumers sharing a topic
//! and rebalancing when members join, leave cleanly or go silent; committed
//! offsets; and the coordinator's error codes for bad input, via the raw
//! protocol client.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        num_partitions: PARTITIONS,
        group_min_session_timeout_ms: 100,
        group_initial_rebalance_delay_ms: 100,
        ..BrokerConfig::ephemeral(dir)
    }
}

/// Produces records `from..to` (record `i` to partition `i % 6`).
fn produce(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in from..to {
        let value = format!("v{i}");
        let key = format!("k{i}");
        let record = BaseRecord::to(topic)
            .partition(i as i32 % PARTITIONS)
            .key(&key)
            .payload(&value);
        producer.send(record).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

fn group_consumer(bootstrap: &str, group: &str, name: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", name)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "1500")
        .set("heartbeat.interval.ms", "100")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "100")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

/// Everything the consumers saw: record value -> times seen.
type Seen = HashMap<String, usize>;

fn poll_into(consumer: &BaseConsumer, seen: &mut Seen) {
    for _ in 0..20 {
        match consumer.poll(Duration::from_millis(10)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                *seen.entry(value.into_owned()).or_default() += 1;
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => break,
        }
    }
}

fn assigned(consumer: &BaseConsumer) -> HashSet<i32> {
    consumer
        .assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Polls `consumers` until `done` holds, or panics after `limit`.
fn poll_until(
    consumers: &[&BaseConsumer],
    seen: &mut Seen,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[&BaseConsumer], &Seen) -> bool,
) {
    let start = Instant::now();
    while !done(consumers, seen) {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        for c in consumers {
            poll_into(c, seen);
        }
    }
}

fn all_seen(seen: &Seen, n: usize) -> bool {
    (0..n).all(|i| seen.contains_key(&format!("v{i}")))
}

/// Splits the six partitions as `sizes`, disjointly.
fn split(consumers: &[&BaseConsumer], sizes: &[usize]) -> bool {
    let sets: Vec<HashSet<i32>> = consumers.iter().map(|c| assigned(c)).collect();
    let union: HashSet<i32> = sets.iter().flatten().copied().collect();
    let total: usize = sets.iter().map(|s| s.len()).sum();
    total == union.len() && sets.iter().map(|s| s.len()).collect::<Vec<_>>() == sizes
}

/// A consumer-protocol subscription to `topic` (version 0).
fn subscription(topic: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_string(topic.to_string())])
        .encode(&mut buf, 0)
        .expect("subscription encodes");
    buf.freeze()
}

fn join_request(group: &str, member: &str, protocol_type: &str, topic: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_session_timeout_ms(1000)
        .with_rebalance_timeout_ms(5000)
        .with_protocol_type(StrBytes::from_string(protocol_type.to_string()))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(subscription(topic)),
        ])
}

fn join(raw: &mut Raw, version: i16, request: JoinGroupRequest) -> JoinGroupResponse {
    match raw.call(ApiKey::JoinGroup, version, RequestKind::JoinGroup(request)) {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

fn sync(raw: &mut Raw, group: &str, member: &str, generation: i32) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_generation_id(generation);
    match raw.call(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(request)) {
        ResponseKind::SyncGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

fn heartbeat(raw: &mut Raw, group: &str, member: &str, generation: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_generation_id(generation);
    match raw.call(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(request)) {
        ResponseKind::Heartbeat(r) => r.error_code,
        other => panic!("{other:?}"),
    }
}

/// Three consumers share six partitions two each; one closes and the other
/// two take its partitions; a member that goes silent (no LeaveGroup, no
/// heartbeats) is removed after its session timeout and the rest take its
/// partitions. Every record is consumed; until the silent member, exactly
/// once.
#[test]
fn consumers_share_partitions_and_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    let topic = "shared";
    produce(&bootstrap, topic, 0, 600);

    let c1 = group_consumer(&bootstrap, "g", "c1");
    let c2 = group_consumer(&bootstrap, "g", "c2");
    let c3 = group_consumer(&bootstrap, "g", "c3");
    for c in [&c1, &c2, &c3] {
        c.subscribe(&[topic]).expect("subscribe");
    }
    let mut seen = Seen::new();
    poll_until(
        &[&c1, &c2, &c3],
        &mut seen,
        Duration::from_secs(30),
        "three consumers with two partitions each, all records",
        |cs, seen| split(cs, &[2, 2, 2]) && all_seen(seen, 600),
    );

    // A clean leave: c3 commits and sends LeaveGroup on close.
    let started = Instant::now();
    drop(c3);
    produce(&bootstrap, topic, 600, 1200);
    poll_until(
        &[&c1, &c2],
        &mut seen,
        Duration::from_secs(30),
        "two consumers with three partitions each",
        |cs, seen| split(cs, &[3, 3]) && all_seen(seen, 1200),
    );
    let took = started.elapsed();
    eprintln!("rebalance after a clean leave took {took:?}");
    // Goal: < 1 s; the bound leaves room for a loaded CI machine.
    assert!(
        took < Duration::from_secs(3),
        "clean-leave rebalance took {took:?}"
    );
    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "records seen twice: {duplicates:?}");

    // A member that joins, gets partitions, then goes silent.
    let addr = broker.addr;
    let joined = Arc::new(AtomicBool::new(false));
    let raw_partitions = Arc::new(Mutex::new(0usize));
    let silent = {
        let joined = Arc::clone(&joined);
        let raw_partitions = Arc::clone(&raw_partitions);
        std::thread::spawn(move || {
            let mut raw = Raw::connect(addr);
            let first = join(&mut raw, 5, join_request("g", "", "consumer", topic));
            assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
            let member = first.member_id.to_string();
            let second = join(&mut raw, 5, join_request("g", &member, "consumer", topic));
            assert_eq!(second.error_code, 0);
            let synced = sync(&mut raw, "g", &member, second.generation_id);
            assert_eq!(synced.error_code, 0);
            *raw_partitions.lock() = synced.assignment.len();
            joined.store(true, Ordering::SeqCst);
            // Then nothing: the connection stays open, no heartbeats.
            std::thread::sleep(Duration::from_secs(6));
            drop(raw);
        })
    };
    poll_until(
        &[&c1, &c2],
        &mut seen,
        Duration::from_secs(30),
        "the silent member to join",
        |cs, _| joined.load(Ordering::SeqCst) && split(cs, &[2, 2]),
    );
    let went_silent = Instant::now();
    produce(&bootstrap, topic, 1200, 1800);
    poll_until(
        &[&c1, &c2],
        &mut seen,
        Duration::from_secs(30),
        "the silent member's partitions to be taken over",
        |cs, seen| split(cs, &[3, 3]) && all_seen(seen, 1800),
    );
    let took = went_silent.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "rebalanced before the session timeout: {took:?}"
    );
    assert!(
        *raw_partitions.lock() > 0,
        "the silent member got an assignment"
    );
    silent.join().expect("silent member thread");
    // Leave before dropping: a consumer dropped while a rebalance is still
    // queued for it can hang in librdkafka's assign during close.
    for c in [&c1, &c2] {
        c.unsubscribe();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && [&c1, &c2]
            .iter()
            .any(|c| c.assignment().map_or(0, |a| a.count()) > 0)
    {
        for c in [&c1, &c2] {
            let _ = c.poll(Duration::from_millis(50));
        }
    }
}

/// The assignors are client-side; the coordinator only relays them. Each of
/// librdkafka's — range, roundrobin and the incremental cooperative-sticky —
/// splits the partitions, hands a leaver's partitions to the others and
/// loses nothing.
#[test]
fn every_client_side_assignor_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    for strategy in ["range", "roundrobin", "cooperative-sticky"] {
        let topic = format!("assign-{strategy}");
        let group = format!("g-{strategy}");
        produce(&bootstrap, &topic, 0, 300);
        let consumer = |name: &str| {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", &group)
                .set("client.id", name)
                .set("partition.assignment.strategy", strategy)
                .set("auto.offset.reset", "earliest")
                .set("session.timeout.ms", "1500")
                .set("heartbeat.interval.ms", "100")
                .set("enable.auto.commit", "true")
                .set("auto.commit.interval.ms", "100")
                .set("fetch.wait.max.ms", "50");
            let c: BaseConsumer = config.create().expect("consumer");
            c.subscribe(&[topic.as_str()]).expect("subscribe");
            c
        };
        let (c1, c2) = (consumer("c1"), consumer("c2"));
        let mut seen = Seen::new();
        poll_until(
            &[&c1, &c2],
            &mut seen,
            Duration::from_secs(30),
            &format!("{strategy}: three partitions each, all records"),
            |cs, seen| split(cs, &[3, 3]) && all_seen(seen, 300),
        );
        drop(c2);
        produce(&bootstrap, &topic, 300, 600);
        poll_until(
            &[&c1],
            &mut seen,
            Duration::from_secs(30),
            &format!("{strategy}: the leaver's partitions taken over"),
            |cs, seen| split(cs, &[6]) && all_seen(seen, 600),
        );
    }
}

/// Offsets committed by one consumer are where the next member of the
/// group starts; a group with nothing committed starts by auto.offset.reset.
#[test]
fn a_new_member_resumes_from_committed_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    let topic = "resume";
    produce(&bootstrap, topic, 0, 60);

    let first = group_consumer(&bootstrap, "r", "first");
    first.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    poll_until(
        &[&first],
        &mut seen,
        Duration::from_secs(20),
        "60 records",
        |_, s| all_seen(s, 60),
    );
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    // Closing commits again and sends LeaveGroup. (Calling
    // `first.committed()` before the drop makes librdkafka's close hang;
    // another client reads the offsets instead.)
    drop(first);
    let reader = group_consumer(&bootstrap, "r", "reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let committed = reader
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            other => panic!("partition {} committed {other:?}", e.partition()),
        })
        .sum();
    assert_eq!(total, 60);

    produce(&bootstrap, topic, 60, 90);
    let second = group_consumer(&bootstrap, "r", "second");
    second.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    poll_until(
        &[&second],
        &mut seen,
        Duration::from_secs(20),
        "30 new records",
        |_, s| (60..90).all(|i| s.contains_key(&format!("v{i}"))),
    );
    assert!(
        (0..60).all(|i| !seen.contains_key(&format!("v{i}"))),
        "the second member re-read committed records"
    );

    // Nothing committed for this group and auto.offset.reset=latest: only
    // records produced after the assignment are read.
    let latest: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "fresh")
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let offsets = latest
        .committed_offsets(tpl, Duration::from_secs(5))
        .expect("offset fetch");
    assert_eq!(offsets.elements()[0].offset(), Offset::Invalid);
}

/// JoinGroup with an unknown member id, a stale generation, a foreign
/// protocol type, a heartbeat for an unknown group: each gets its code and
/// the group goes on.
#[test]
fn bad_group_requests_get_their_error_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    let topic = "bad-input";

    let unknown = join(
        &mut raw,
        5,
        join_request("b", "no-such-member", "consumer", topic),
    );
    assert_eq!(unknown.error_code, 25, "UNKNOWN_MEMBER_ID");

    // v3: no MEMBER_ID_REQUIRED round; the member joins at once.
    let joined = join(&mut raw, 3, join_request("b", "", "consumer", topic));
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    assert_eq!(joined.leader.as_str(), member, "a lone member leads");
    assert_eq!(joined.members.len(), 1, "the leader gets the subscriptions");
    assert_eq!(sync(&mut raw, "b", &member, generation).error_code, 0);
    assert_eq!(heartbeat(&mut raw, "b", &member, generation), 0);

    assert_eq!(
        heartbeat(&mut raw, "b", &member, generation - 1),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(sync(&mut raw, "b", &member, generation + 5).error_code, 22);
    assert_eq!(
        heartbeat(&mut raw, "nope", &member, generation),
        25,
        "unknown group"
    );
    assert_eq!(heartbeat(&mut raw, "b", "stranger", generation), 25);

    let foreign = join(&mut raw, 5, join_request("b", "", "connect", topic));
    assert_eq!(foreign.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

    let mut short = join_request("b", "", "consumer", topic);
    short.session_timeout_ms = 10;
    assert_eq!(
        join(&mut raw, 5, short).error_code,
        26,
        "INVALID_SESSION_TIMEOUT"
    );

    // None of that disturbed the member.
    assert_eq!(heartbeat(&mut raw, "b", &member, generation), 0);

    // DescribeGroups and ListGroups see it; DeleteGroups refuses a live group.
    let described = match raw.call(
        ApiKey::DescribeGroups,
        5,
        RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(StrBytes::from_static_str("b"))]),
        ),
    ) {
        ResponseKind::DescribeGroups(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 1);
    assert_eq!(
        described.groups[0].members[0].client_host.as_str(),
        "/127.0.0.1"
    );
    assert_eq!(
        described.groups[0].members[0].client_id.as_str(),
        "raw-test"
    );
    let deleted = match raw.call(
        ApiKey::DeleteGroups,
        2,
        RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("b"))]),
        ),
    ) {
        ResponseKind::DeleteGroups(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(deleted.results[0].error_code, 68, "NON_EMPTY_GROUP");

    // A batched LeaveGroup: one known member, one unknown.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("b")))
        .with_members(vec![
            leave_group_request::MemberIdentity::default()
                .with_member_id(StrBytes::from_string(member.clone())),
            leave_group_request::MemberIdentity::default()
                .with_member_id(StrBytes::from_static_str("ghost")),
        ]);
    let left = match raw.call(ApiKey::LeaveGroup, 4, RequestKind::LeaveGroup(leave)) {
        ResponseKind::LeaveGroup(r) => r,
        other => panic!("{other:?}"),
    };
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, [0, 25]);
    assert_eq!(heartbeat(&mut raw, "b", &member, generation), 25);
}

fn offset_fetch(raw: &mut Raw, group: &str, topic: &str) -> Vec<i64> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes((0..PARTITIONS).collect()),
        ]));
    match raw.call(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(request)) {
        ResponseKind::OffsetFetch(r) => r.topics[0]
            .partitions
            .iter()
            .map(|p| p.committed_offset)
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// Committed offsets are records in `__consumer_offsets`: they survive a
/// restart (a new member resumes from them), and so does their deletion.
#[test]
fn committed_offsets_survive_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topic = "durable";
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, topic, 0, 60);
    let first = group_consumer(&bootstrap, "d", "first");
    first.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    poll_until(
        &[&first],
        &mut seen,
        Duration::from_secs(20),
        "60 records",
        |_, s| all_seen(s, 60),
    );
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(first);
    let before = offset_fetch(&mut Raw::connect(broker.addr), "d", topic);
    assert_eq!(before.iter().sum::<i64>(), 60, "{before:?}");
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(offset_fetch(&mut raw, "d", topic), before);
    produce(&bootstrap, topic, 60, 90);
    let second = group_consumer(&bootstrap, "d", "second");
    second.subscribe(&[topic]).expect("subscribe");
    let mut seen = Seen::new();
    poll_until(
        &[&second],
        &mut seen,
        Duration::from_secs(20),
        "30 new records",
        |_, s| (60..90).all(|i| s.contains_key(&format!("v{i}"))),
    );
    assert!(
        (0..60).all(|i| !seen.contains_key(&format!("v{i}"))),
        "re-read records committed before the restart"
    );
    drop(second);

    let deleted = match raw.call(
        ApiKey::DeleteGroups,
        2,
        RequestKind::DeleteGroups(
            DeleteGroupsRequest::default()
                .with_groups_names(vec![GroupId(StrBytes::from_static_str("d"))]),
        ),
    ) {
        ResponseKind::DeleteGroups(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(deleted.results[0].error_code, 0);
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(
        offset_fetch(&mut raw, "d", topic),
        vec![-1; PARTITIONS as usize]
    );
    broker.stop();
}

fn sync_with(
    raw: &mut Raw,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupResponse {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_group_instance_id(instance.map(|i| StrBytes::from_string(i.to_string())))
        .with_generation_id(generation)
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(StrBytes::from_string(m.to_string()))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        );
    match raw.call(ApiKey::SyncGroup, 3, RequestKind::SyncGroup(request)) {
        ResponseKind::SyncGroup(r) => r,
        other => panic!("{other:?}"),
    }
}

/// A static member (group.instance.id) that restarts and rejoins without
/// its member id takes its old place: same generation, same assignment, no
/// rebalance for the others; its old member id is fenced.
#[test]
fn a_static_member_rejoins_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let addr = broker.addr;
    let topic = "static";

    // B, dynamic, forms generation 1 alone and leads.
    let mut b = Raw::connect(addr);
    let first = join(&mut b, 5, join_request("s", "", "consumer", topic));
    assert_eq!(first.error_code, 79);
    let b_id = first.member_id.to_string();
    let gen1 = join(&mut b, 5, join_request("s", &b_id, "consumer", topic));
    assert_eq!((gen1.error_code, gen1.leader.as_str()), (0, b_id.as_str()));
    assert_eq!(sync(&mut b, "s", &b_id, gen1.generation_id).error_code, 0);

    // A, static, joins: no MEMBER_ID_REQUIRED round for static members; it
    // waits until B rejoins.
    let a_thread = std::thread::spawn(move || {
        let mut a = Raw::connect(addr);
        let request = join_request("s", "", "consumer", topic)
            .with_group_instance_id(Some(StrBytes::from_static_str("a-1")));
        let joined = join(&mut a, 5, request);
        assert_eq!(joined.error_code, 0);
        let id = joined.member_id.to_string();
        let synced = sync_with(&mut a, "s", &id, Some("a-1"), joined.generation_id, &[]);
        assert_eq!(synced.error_code, 0);
        assert_eq!(&synced.assignment[..], b"for-a");
        (id, joined.generation_id)
    });
    let start = Instant::now();
    while heartbeat(&mut b, "s", &b_id, gen1.generation_id) != 27 {
        assert!(start.elapsed() < Duration::from_secs(10), "no rebalance");
        std::thread::sleep(Duration::from_millis(20));
    }
    let gen2 = join(&mut b, 5, join_request("s", &b_id, "consumer", topic));
    assert_eq!(gen2.error_code, 0);
    assert_eq!(gen2.members.len(), 2, "the leader sees both");
    let a_old = gen2
        .members
        .iter()
        .find(|m| m.member_id.as_str() != b_id)
        .map(|m| m.member_id.to_string())
        .expect("A is a member");
    let b_sync = sync_with(
        &mut b,
        "s",
        &b_id,
        None,
        gen2.generation_id,
        &[(&b_id, b"for-b"), (&a_old, b"for-a")],
    );
    assert_eq!(&b_sync.assignment[..], b"for-b");
    let (a_id, a_generation) = a_thread.join().expect("member A");
    assert_eq!(
        (a_id.as_str(), a_generation),
        (a_old.as_str(), gen2.generation_id)
    );

    // A restarts: a new connection, no member id, the same instance id.
    let mut a = Raw::connect(addr);
    let request = join_request("s", "", "consumer", topic)
        .with_group_instance_id(Some(StrBytes::from_static_str("a-1")));
    let rejoined = join(&mut a, 5, request);
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(
        rejoined.generation_id, gen2.generation_id,
        "no new generation"
    );
    assert_ne!(rejoined.member_id.as_str(), a_old);
    let a_new = rejoined.member_id.to_string();
    let synced = sync_with(&mut a, "s", &a_new, Some("a-1"), gen2.generation_id, &[]);
    assert_eq!(&synced.assignment[..], b"for-a", "its old assignment");
    assert_eq!(
        heartbeat(&mut b, "s", &b_id, gen2.generation_id),
        0,
        "B undisturbed"
    );
    // The old incarnation is fenced.
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("s")))
        .with_member_id(StrBytes::from_string(a_old))
        .with_group_instance_id(Some(StrBytes::from_static_str("a-1")))
        .with_generation_id(gen2.generation_id);
    match a.call(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(request)) {
        ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, 82, "FENCED_INSTANCE_ID"),
        other => panic!("{other:?}"),
    }
}

/// FindCoordinator v4 with batched keys, simple commits (no generation)
/// for two groups, and one OffsetFetch v8 for both plus an unknown group.
#[test]
fn batched_coordinator_lookup_and_multi_group_offset_fetch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    produce(&broker.bootstrap(), "multi", 0, 6);
    let mut raw = Raw::connect(broker.addr);

    let keys = vec![
        StrBytes::from_static_str("g1"),
        StrBytes::from_static_str("g2"),
    ];
    let found = match raw.call(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_coordinator_keys(keys)),
    ) {
        ResponseKind::FindCoordinator(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(found.coordinators.len(), 2);
    for c in &found.coordinators {
        assert_eq!((c.error_code, c.port), (0, i32::from(broker.addr.port())));
    }

    for (group, offset) in [("g1", 3), ("g2", 5)] {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("multi")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(1)
                            .with_committed_offset(offset)
                            .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
                    ]),
            ]);
        match raw.call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request)) {
            ResponseKind::OffsetCommit(r) => assert_eq!(r.topics[0].partitions[0].error_code, 0),
            other => panic!("{other:?}"),
        }
    }
    let groups = ["g1", "g2", "nobody"]
        .into_iter()
        .map(|g| {
            offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str(g)))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopics::default()
                        .with_name(TopicName(StrBytes::from_static_str("multi")))
                        .with_partition_indexes(vec![1]),
                ]))
        })
        .collect();
    let fetched = match raw.call(
        ApiKey::OffsetFetch,
        8,
        RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(groups)),
    ) {
        ResponseKind::OffsetFetch(r) => r,
        other => panic!("{other:?}"),
    };
    let offsets: Vec<(String, i64)> = fetched
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.topics[0].partitions[0].committed_offset,
            )
        })
        .collect();
    assert_eq!(
        offsets,
        [
            ("g1".to_string(), 3),
            ("g2".to_string(), 5),
            ("nobody".to_string(), -1)
        ]
    );
}

/// Not a test on its own: the group member that
/// `a_killed_consumer_is_replaced_after_its_session_timeout` runs in a child
/// process and kills.
#[test]
#[ignore = "run as a child process by a_killed_consumer_is_replaced_after_its_session_timeout"]
fn child_consumer() {
    let Ok(bootstrap) = std::env::var("FJORD_CHILD_BOOTSTRAP") else {
        return;
    };
    let consumer = group_consumer(&bootstrap, "killed", "child");
    consumer.subscribe(&["killed"]).expect("subscribe");
    loop {
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

/// A librdkafka consumer in another process is killed (SIGKILL: no
/// LeaveGroup); the remaining members take its partitions once its session
/// times out, and every record is consumed.
#[test]
fn a_killed_consumer_is_replaced_after_its_session_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, "killed", 0, 300);
    let c1 = group_consumer(&bootstrap, "killed", "c1");
    let c2 = group_consumer(&bootstrap, "killed", "c2");
    for c in [&c1, &c2] {
        c.subscribe(&["killed"]).expect("subscribe");
    }
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_consumer", "--ignored", "--nocapture"])
        .env("FJORD_CHILD_BOOTSTRAP", &bootstrap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child consumer");
    let mut seen = Seen::new();
    poll_until(
        &[&c1, &c2],
        &mut seen,
        Duration::from_secs(30),
        "the child to own two partitions",
        |cs, _| split(cs, &[2, 2]),
    );
    child.kill().expect("kill the child");
    let _ = child.wait();
    let killed = Instant::now();
    produce(&bootstrap, "killed", 300, 600);
    poll_until(
        &[&c1, &c2],
        &mut seen,
        Duration::from_secs(30),
        "the killed member's partitions to be taken over",
        |cs, seen| split(cs, &[3, 3]) && (300..600).all(|i| seen.contains_key(&format!("v{i}"))),
    );
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "before the session timeout: {took:?}"
    );
    // Records 0..300 of the child's partitions may have been read and
    // committed by the child before it died, so only the records produced
    // after the kill are checked above (all of them, on every partition).
}

/// Group metadata records: a group's generation survives a restart, so
/// generation ids keep growing (members themselves rejoin).
#[test]
fn generations_continue_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    produce(&broker.bootstrap(), "gens", 0, 6);
    let mut raw = Raw::connect(broker.addr);
    let joined = join(&mut raw, 3, join_request("gens", "", "consumer", "gens"));
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let member = joined.member_id.to_string();
    assert_eq!(sync(&mut raw, "gens", &member, 1).error_code, 0);
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("gens")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(StrBytes::from_string(member.clone()))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("gens")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_committed_offset(1),
                ]),
        ]);
    match raw.call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request)) {
        ResponseKind::OffsetCommit(r) => assert_eq!(r.topics[0].partitions[0].error_code, 0),
        other => panic!("{other:?}"),
    }
    // Leaving empties the group: generation 2. Give the tick time to write it.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("gens")))
        .with_member_id(StrBytes::from_string(member));
    raw.call(ApiKey::LeaveGroup, 1, RequestKind::LeaveGroup(leave));
    std::thread::sleep(Duration::from_millis(300));
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    let joined = join(&mut raw, 3, join_request("gens", "", "consumer", "gens"));
    assert_eq!((joined.error_code, joined.generation_id), (0, 3));
    broker.stop();
}

fn offset_commit(
    raw: &mut Raw,
    group: &str,
    member: &str,
    generation: i32,
    topics: &[&str],
) -> Vec<i16> {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(7),
                        ])
                })
                .collect(),
        );
    match raw.call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request)) {
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// OffsetDelete with the raw client and its result per partition, or the
/// top-level error code.
fn offset_delete(raw: &mut Raw, group: &str, topics: &[&str]) -> Result<Vec<i16>, i16> {
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_string())))
                        .with_partitions(vec![
                            offset_delete_request::OffsetDeleteRequestPartition::default()
                                .with_partition_index(0),
                        ])
                })
                .collect(),
        );
    match raw.call(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(request)) {
        ResponseKind::OffsetDelete(r) if r.error_code != 0 => Err(r.error_code),
        ResponseKind::OffsetDelete(r) => Ok(r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()),
        other => panic!("{other:?}"),
    }
}

/// OffsetDelete keeps the offsets of a topic a live member is subscribed
/// to (GROUP_SUBSCRIBED_TO_TOPIC) and deletes the others for good: the
/// tombstone outlives a restart. A group the coordinator does not have is
/// GROUP_ID_NOT_FOUND, and a commit of a partition that does not exist is
/// refused for that partition only.
#[test]
fn offset_delete_spares_subscribed_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, "followed", 0, 6);
    produce(&bootstrap, "dropped", 0, 6);
    let mut raw = Raw::connect(broker.addr);

    let joined = join(&mut raw, 3, join_request("od", "", "consumer", "followed"));
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    assert_eq!(sync(&mut raw, "od", &member, generation).error_code, 0);
    assert_eq!(
        offset_commit(
            &mut raw,
            "od",
            &member,
            generation,
            &["followed", "dropped", "missing"]
        ),
        [0, 0, 3],
        "UNKNOWN_TOPIC_OR_PARTITION for the missing topic only"
    );

    assert_eq!(
        offset_delete(&mut raw, "od", &["followed", "dropped"]),
        Ok(vec![86, 0]),
        "GROUP_SUBSCRIBED_TO_TOPIC for the subscribed topic"
    );
    assert_eq!(offset_fetch(&mut raw, "od", "followed")[0], 7);
    assert_eq!(offset_fetch(&mut raw, "od", "dropped")[0], -1);
    assert_eq!(
        offset_delete(&mut raw, "no-such-group", &["dropped"]),
        Err(69),
        "GROUP_ID_NOT_FOUND"
    );
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(offset_fetch(&mut raw, "od", "followed")[0], 7);
    assert_eq!(
        offset_fetch(&mut raw, "od", "dropped")[0],
        -1,
        "the deletion is durable"
    );
    broker.stop();
}

/// `LocalBroker::commit` is a member-less commit through the coordinator:
/// refused while the group has a member (UNKNOWN_MEMBER_ID, as a Kafka
/// admin tool's commit is), accepted once it is empty, and then seen by
/// `LocalBroker::committed` and by OffsetFetch alike.
#[test]
fn an_in_process_commit_waits_for_an_empty_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    produce(&broker.bootstrap(), "local-commits", 0, 6);
    let local = broker.local();
    let mut raw = Raw::connect(broker.addr);

    let joined = join(
        &mut raw,
        3,
        join_request("lc", "", "consumer", "local-commits"),
    );
    assert_eq!(joined.error_code, 0);
    let refused = broker
        .runtime
        .block_on(local.commit("lc", &[("local-commits", 0, 5)]))
        .expect_err("a member-less commit while the group has a member");
    assert!(
        matches!(refused, fjord_broker::LocalError::CommitRefused { .. }),
        "{refused:?}"
    );
    assert_eq!(refused.code(), 25, "UNKNOWN_MEMBER_ID");
    assert_eq!(
        refused.to_string(),
        "group lc refused the commit (UnknownMemberId)"
    );
    assert_eq!(local.committed("lc", "local-commits", 0), None);

    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("lc")))
        .with_member_id(joined.member_id.clone());
    match raw.call(ApiKey::LeaveGroup, 2, RequestKind::LeaveGroup(leave)) {
        ResponseKind::LeaveGroup(r) => assert_eq!(r.error_code, 0),
        other => panic!("{other:?}"),
    }
    broker
        .runtime
        .block_on(local.commit("lc", &[("local-commits", 0, 5)]))
        .expect("a member-less commit of an empty group");
    assert_eq!(local.committed("lc", "local-commits", 0), Some(5));
    assert_eq!(offset_fetch(&mut raw, "lc", "local-commits")[0], 5);
    broker.stop();
}
