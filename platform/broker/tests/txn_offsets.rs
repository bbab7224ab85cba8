//! TxnOffsetCommit over the wire: offsets a transaction commits stay
//! pending — OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT,
//! without it the last committed offset — across a restart (no marker in
//! the log yet) until the transaction ends; DeleteGroups is not blocked by
//! them and drops them; a member's transactional commit is fenced by
//! generation, member id and instance id (KIP-447). With librdkafka's
//! transactional producer (`send_offsets_to_transaction`), the transaction
//! coordinator's markers complete them: committed on commit, dropped on
//! abort, the same after a restart.

mod common;

use std::time::Duration;

use common::wire::{create, text};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const FENCED_INSTANCE_ID: i16 = 82;

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        group_min_session_timeout_ms: 100,
        group_initial_rebalance_delay_ms: 0,
        // The raw commits below come from producers no transaction
        // coordinator knows (the group side alone); librdkafka's test
        // turns the check back on.
        transaction_partition_verification_enable: false,
        ..BrokerConfig::ephemeral(dir)
    }
}

/// [`config`] with KIP-890's check of TxnOffsetCommit with the
/// transaction coordinator (the default).
fn verified(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        transaction_partition_verification_enable: true,
        ..config(dir)
    }
}

fn txn_commit(
    group: &str,
    pid: i64,
    member: &str,
    instance: Option<&str>,
    generation: i32,
    offset: i64,
) -> RequestKind {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text("txn")))
        .with_group_id(GroupId(text(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_member_id(text(member))
        .with_group_instance_id(instance.map(text))
        .with_generation_id(generation)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text("events")))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ])
        .into()
}

fn txn_code(raw: &mut Raw, version: i16, request: RequestKind) -> i16 {
    let ResponseKind::TxnOffsetCommit(r) = raw.call(ApiKey::TxnOffsetCommit, version, request)
    else {
        panic!("not a TxnOffsetCommit answer");
    };
    r.topics[0].partitions[0].error_code
}

/// `(offset, error code)` of `events`-0 for `group`, by OffsetFetch v7.
fn fetch(raw: &mut Raw, group: &str, require_stable: bool) -> (i64, i16) {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_require_stable(require_stable)
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(text("events")))
                .with_partition_indexes(vec![0]),
        ]));
    let ResponseKind::OffsetFetch(r) = raw.call(ApiKey::OffsetFetch, 7, request.into()) else {
        panic!("not an OffsetFetch answer");
    };
    assert_eq!(r.error_code, 0);
    let p = &r.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

#[test]
fn pending_offsets_are_unstable_across_a_restart_and_deleted_with_their_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("events")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    let ResponseKind::OffsetCommit(r) = raw.call(ApiKey::OffsetCommit, 8, commit.into()) else {
        panic!("not an OffsetCommit answer");
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        txn_code(&mut raw, 3, txn_commit("g", 4000, "", None, -1, 10)),
        0
    );
    assert_eq!(fetch(&mut raw, "g", true), (-1, UNSTABLE_OFFSET_COMMIT));
    assert_eq!(fetch(&mut raw, "g", false), (5, 0));
    drop(raw);
    broker.stop();

    // No marker in the log: still pending after the reload.
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(fetch(&mut raw, "g", true), (-1, UNSTABLE_OFFSET_COMMIT));
    assert_eq!(fetch(&mut raw, "g", false), (5, 0));

    // The open transaction does not block DeleteGroups, which drops its
    // offsets with the group's, durably.
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("g"))]);
    let ResponseKind::DeleteGroups(r) = raw.call(ApiKey::DeleteGroups, 2, delete.into()) else {
        panic!("not a DeleteGroups answer");
    };
    assert_eq!(r.results[0].error_code, 0);
    assert_eq!(fetch(&mut raw, "g", true), (-1, 0));
    drop(raw);
    broker.stop();
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(fetch(&mut raw, "g", true), (-1, 0));
    drop(raw);
    broker.stop();
}

#[test]
fn a_members_transactional_commit_is_fenced_as_kafka_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    // A static member joins (v5: no MEMBER_ID_REQUIRED round) and syncs.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(text("m")))
        .with_group_instance_id(Some(text("i1")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(5_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0])),
        ]);
    let ResponseKind::JoinGroup(joined) = raw.call(ApiKey::JoinGroup, 5, join.into()) else {
        panic!("not a JoinGroup answer");
    };
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text("m")))
        .with_member_id(text(&member))
        .with_group_instance_id(Some(text("i1")))
        .with_generation_id(generation);
    let ResponseKind::SyncGroup(synced) = raw.call(ApiKey::SyncGroup, 3, sync.into()) else {
        panic!("not a SyncGroup answer");
    };
    assert_eq!(synced.error_code, 0);

    let i1 = Some("i1");
    let cases = [
        (
            txn_commit("m", 1, &member, i1, generation + 1, 7),
            ILLEGAL_GENERATION,
        ),
        (
            txn_commit("m", 1, "ghost", None, generation, 7),
            UNKNOWN_MEMBER_ID,
        ),
        (
            txn_commit("m", 1, "ghost", i1, generation, 7),
            FENCED_INSTANCE_ID,
        ),
        (txn_commit("m", 1, &member, i1, generation, 7), 0),
        // A producer outside the group (no member fields) is not fenced.
        (txn_commit("m", 2, "", None, -1, 8), 0),
    ];
    for (i, (request, code)) in cases.into_iter().enumerate() {
        assert_eq!(txn_code(&mut raw, 3, request), code, "case {i}");
    }
    assert_eq!(fetch(&mut raw, "m", true), (-1, UNSTABLE_OFFSET_COMMIT));
    drop(raw);
    broker.stop();
}

/// librdkafka end to end: offsets sent with a committed transaction become
/// the group's, an aborted transaction's do not, and a restart (replaying
/// the transactional batches and their markers) agrees.
#[test]
fn librdkafka_send_offsets_to_transaction_commits_and_aborts() {
    const TIMEOUT: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(verified(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("transactional.id", "txn-offsets")
        .create()
        .expect("producer");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "g")
        .create()
        .expect("consumer");
    let group = consumer.group_metadata().expect("group metadata");
    let offsets = |n: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("events", 0, Offset::Offset(n))
            .expect("offset");
        tpl
    };
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");

    producer.begin_transaction().expect("begin");
    producer
        .send(BaseRecord::to("events").key("k").payload("v"))
        .map_err(|(e, _)| e)
        .expect("queued");
    producer
        .send_offsets_to_transaction(&offsets(10), &group, TIMEOUT)
        .expect("send_offsets_to_transaction");
    assert_eq!(fetch(&mut raw, "g", true), (-1, UNSTABLE_OFFSET_COMMIT));
    producer.commit_transaction(TIMEOUT).expect("commit");
    assert_eq!(fetch(&mut raw, "g", true), (10, 0));

    producer.begin_transaction().expect("begin");
    producer
        .send_offsets_to_transaction(&offsets(20), &group, TIMEOUT)
        .expect("send_offsets_to_transaction");
    producer.abort_transaction(TIMEOUT).expect("abort");
    assert_eq!(fetch(&mut raw, "g", true), (10, 0));
    drop((producer, consumer, raw));
    broker.stop();

    let broker = TestBroker::start_with(verified(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(fetch(&mut raw, "g", true), (10, 0));
    drop(raw);
    broker.stop();
}
