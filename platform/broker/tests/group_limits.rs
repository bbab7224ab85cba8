//! The coordinator's bounds on what clients may make it hold:
//! `group.max.size` against librdkafka consumers (the member over the limit
//! is told so, the others keep consuming), and the per-request bounds on
//! JoinGroup protocol metadata and offset commit metadata, via the raw
//! protocol client.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn consumer(bootstrap: &str, group: &str, name: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", name)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "200")
        .create()
        .expect("consumer");
    consumer.subscribe(&["limited"]).expect("subscribe");
    consumer
}

fn assigned(consumer: &BaseConsumer) -> usize {
    consumer.assignment().map_or(0, |a| a.count())
}

/// Two members fill a group of `group.max.size` 2; a third librdkafka
/// consumer is refused with GROUP_MAX_SIZE_REACHED (the error its
/// application sees), and the two keep all the partitions between them.
#[test]
fn a_member_over_group_max_size_is_refused_and_the_group_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 4,
        group_max_size: 2,
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let bootstrap = broker.bootstrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("producer");
    for i in 0..4 {
        producer
            .send(
                BaseRecord::<(), str>::to("limited")
                    .partition(i)
                    .payload("x"),
            )
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let a = consumer(&bootstrap, "g", "a");
    let b = consumer(&bootstrap, "g", "b");
    let deadline = Instant::now() + Duration::from_secs(30);
    while assigned(&a) + assigned(&b) != 4 || assigned(&a) == 0 || assigned(&b) == 0 {
        assert!(
            Instant::now() < deadline,
            "a and b never shared the partitions"
        );
        let _ = a.poll(Duration::from_millis(50));
        let _ = b.poll(Duration::from_millis(50));
    }

    let c = consumer(&bootstrap, "g", "c");
    let deadline = Instant::now() + Duration::from_secs(30);
    let refusal = loop {
        assert!(
            Instant::now() < deadline,
            "c was never told the group is full"
        );
        let _ = a.poll(Duration::from_millis(20));
        let _ = b.poll(Duration::from_millis(20));
        if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
            break e.to_string();
        }
    };
    assert!(
        refusal.contains("GroupMaxSizeReached"),
        "the consumer's error names the limit: {refusal}"
    );
    assert_eq!(assigned(&c), 0, "c got nothing");
    // The group did not rebalance away from its two members.
    for _ in 0..20 {
        let _ = a.poll(Duration::from_millis(20));
        let _ = b.poll(Duration::from_millis(20));
    }
    assert_eq!(
        assigned(&a) + assigned(&b),
        4,
        "a and b still hold everything"
    );
    drop(c);
    drop(a);
    drop(b);
    broker.stop();
}

/// JoinGroup metadata over `group.protocol.metadata.max.bytes` gets
/// INVALID_REQUEST; an offset commit with metadata over
/// `offset.metadata.max.bytes` gets OFFSET_METADATA_TOO_LARGE for that
/// partition while its neighbour in the same request commits.
#[test]
fn oversized_group_metadata_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 2,
        group_protocol_metadata_max_bytes: 1024,
        offset_metadata_max_bytes: 16,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let mut raw = Raw::connect(broker.addr);
    let join = |metadata: usize| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("big")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from(vec![0u8; metadata])),
            ])
    };
    match raw.call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(join(2048))) {
        ResponseKind::JoinGroup(r) => assert_eq!(r.error_code, 42, "INVALID_REQUEST"),
        other => panic!("{other:?}"),
    }
    // Within the bound, the same request is a first join (MEMBER_ID_REQUIRED).
    match raw.call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(join(512))) {
        ResponseKind::JoinGroup(r) => assert_eq!(r.error_code, 79),
        other => panic!("{other:?}"),
    }

    // The topic exists once a producer wrote to it.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::<(), str>::to("meta").partition(0).payload("x"))
        .expect("enqueue");
    producer.flush(Duration::from_secs(10)).expect("flush");
    let partition = |index: i32, metadata: &str| {
        offset_commit_request::OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(1)
            .with_committed_metadata(Some(StrBytes::from_string(metadata.to_string())))
    };
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("meta-group")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("meta")))
                .with_partitions(vec![
                    partition(0, "sixteen bytes ok"),
                    partition(1, "seventeen bytes!!"),
                ]),
        ]);
    match raw.call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(commit)) {
        ResponseKind::OffsetCommit(r) => {
            let codes: Vec<i16> = r.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            assert_eq!(
                codes,
                vec![0, 12],
                "16 bytes commit, 17 are OFFSET_METADATA_TOO_LARGE"
            );
        }
        other => panic!("{other:?}"),
    }
    broker.stop();
}
