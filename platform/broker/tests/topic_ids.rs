//! The newest versions of Fetch (13–18), Produce (13) and Metadata (13),
//! which name topics by id, and DescribeTopicPartitions (KIP-966), over raw
//! sockets against a real broker; and librdkafka, which fetches by topic
//! id when the broker offers it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker, batch};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse, FetchRequest, FetchResponse, MetadataRequest, ProduceRequest,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use uuid::Uuid;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create(raw: &mut Raw, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ]);
    let ResponseKind::CreateTopics(r) = raw.call(ApiKey::CreateTopics, 7, request.into()) else {
        panic!("not a CreateTopics answer");
    };
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
}

/// The topic's id, from Metadata v13.
fn topic_id(raw: &mut Raw, topic: &str) -> Uuid {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(name(topic))),
    ]));
    let ResponseKind::Metadata(r) = raw.call(ApiKey::Metadata, 13, request.into()) else {
        panic!("not a Metadata answer");
    };
    assert_eq!((r.error_code, r.topics[0].error_code), (0, 0));
    let id = r.topics[0].topic_id;
    assert!(!id.is_nil());
    id
}

/// Produce v13 by topic id: (topic id answered, error code, base offset).
fn produce_by_id(raw: &mut Raw, id: Uuid, records: Vec<u8>) -> (Uuid, i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_topic_id(id)
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    let ResponseKind::Produce(r) = raw.call(ApiKey::Produce, 13, request.into()) else {
        panic!("not a Produce answer");
    };
    let topic = &r.responses[0];
    let p = &topic.partition_responses[0];
    (topic.topic_id, p.error_code, p.base_offset)
}

fn fetch_topic(id: Uuid, partitions: &[i32]) -> FetchTopic {
    FetchTopic::default().with_topic_id(id).with_partitions(
        partitions
            .iter()
            .map(|&p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect(),
    )
}

fn fetch(raw: &mut Raw, version: i16, request: FetchRequest) -> FetchResponse {
    match raw.call(ApiKey::Fetch, version, request.into()) {
        ResponseKind::Fetch(r) => r,
        other => panic!("not a Fetch answer: {other:?}"),
    }
}

/// Fetch v13–18 name topics by id: a known id is served and echoed, an
/// unknown one is UNKNOWN_TOPIC_ID for each partition asked for, in the
/// same answer, and the connection serves on.
#[test]
fn fetch_by_topic_id_in_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "by-id", 1);
    let id = topic_id(&mut raw, "by-id");
    let (answered, code, base) = produce_by_id(&mut raw, id, batch(3, 10, 1_700_000_000_000));
    assert_eq!((answered, code, base), (id, 0, 0));

    let unknown = Uuid::from_u128(0xdead_beef);
    for version in 13..=18 {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                fetch_topic(id, &[0, 7]),
                fetch_topic(unknown, &[0, 1]),
            ]);
        let r = fetch(&mut raw, version, request);
        assert_eq!((r.error_code, r.session_id), (0, 0), "v{version}");
        assert_eq!(r.responses.len(), 2, "v{version}");
        let known = &r.responses[0];
        assert_eq!(known.topic_id, id, "v{version}");
        let p0 = &known.partitions[0];
        assert_eq!((p0.error_code, p0.high_watermark), (0, 3), "v{version}");
        let records = p0.records.as_ref().expect("records");
        assert_eq!(common::first_base_offset(records), Some(0), "v{version}");
        // A partition the topic does not have is still the usual error.
        let p7 = &known.partitions[1];
        assert_eq!(
            (p7.partition_index, p7.error_code),
            (7, ResponseError::UnknownTopicOrPartition.code()),
            "v{version}"
        );
        let missing = &r.responses[1];
        assert_eq!(missing.topic_id, unknown, "v{version}");
        let codes: Vec<(i32, i16)> = missing
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect();
        let unknown_id = ResponseError::UnknownTopicId.code();
        assert_eq!(codes, [(0, unknown_id), (1, unknown_id)], "v{version}");
        assert!(r.node_endpoints.is_empty(), "v{version}");
    }
    // v12 still names topics, on the same connection.
    let request = FetchRequest::default().with_topics(vec![
        FetchTopic::default()
            .with_topic(name("by-id"))
            .with_partitions(vec![
                FetchPartition::default()
                    .with_partition_max_bytes(1 << 20)
                    .with_fetch_offset(1),
            ]),
    ]);
    let r = fetch(&mut raw, 12, request);
    assert_eq!(r.responses[0].topic.as_str(), "by-id");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
}

/// From v15 on the fetching replica is named in `replica_state`: a fetch
/// naming broker 5, which holds no replica here, is a follower's and is
/// refused NOT_LEADER_OR_FOLLOWER; without it the same fetch is a
/// consumer's and is served.
#[test]
fn fetch_v15_reads_the_replica_from_the_replica_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "replica-state", 1);
    let id = topic_id(&mut raw, "replica-state");
    assert_eq!(produce_by_id(&mut raw, id, batch(1, 10, 0)).1, 0);
    for version in 15..=18 {
        let follower = FetchRequest::default()
            .with_replica_state(ReplicaState::default().with_replica_id(5.into()))
            .with_topics(vec![fetch_topic(id, &[0])]);
        let r = fetch(&mut raw, version, follower);
        assert_eq!(
            r.responses[0].partitions[0].error_code,
            ResponseError::NotLeaderOrFollower.code(),
            "v{version}"
        );
        let consumer = FetchRequest::default().with_topics(vec![fetch_topic(id, &[0])]);
        let r = fetch(&mut raw, version, consumer);
        let p = &r.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 1), "v{version}");
    }
}

/// No fetch sessions are kept: a full fetch (epoch 0 or -1) is served
/// with session id 0 whatever it forgets, an incremental one is
/// FETCH_SESSION_ID_NOT_FOUND, as Kafka answers a session it does not have.
#[test]
fn fetch_sessions_are_never_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "sessions", 1);
    let id = topic_id(&mut raw, "sessions");
    let forgotten = vec![
        ForgottenTopic::default()
            .with_topic_id(Uuid::from_u128(1))
            .with_partitions(vec![0, 1]),
    ];
    let full = FetchRequest::default()
        .with_session_epoch(0)
        .with_topics(vec![fetch_topic(id, &[0])])
        .with_forgotten_topics_data(forgotten.clone());
    let r = fetch(&mut raw, 17, full);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(r.responses[0].partitions[0].error_code, 0);

    let incremental = FetchRequest::default()
        .with_session_id(12345)
        .with_session_epoch(1)
        .with_topics(vec![fetch_topic(id, &[0])])
        .with_forgotten_topics_data(forgotten);
    let r = fetch(&mut raw, 17, incremental);
    assert_eq!(r.error_code, ResponseError::FetchSessionIdNotFound.code());
    assert!(r.responses.is_empty());
}

/// v18: a fetcher that knows an older high watermark than the leader's is
/// answered at once, not after `max_wait_ms`; one that knows the current
/// one waits.
#[test]
fn fetch_v18_answers_a_stale_high_watermark_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "hw", 1);
    let id = topic_id(&mut raw, "hw");
    assert_eq!(produce_by_id(&mut raw, id, batch(2, 10, 0)).1, 0);
    let at_end = |known: i64| {
        FetchRequest::default()
            .with_max_wait_ms(1500)
            .with_min_bytes(1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_fetch_offset(2)
                            .with_partition_max_bytes(1 << 20)
                            .with_high_watermark(known),
                    ]),
            ])
    };
    let started = Instant::now();
    let r = fetch(&mut raw, 18, at_end(1));
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "answered at once"
    );
    assert_eq!(r.responses[0].partitions[0].high_watermark, 2);
    let started = Instant::now();
    let r = fetch(&mut raw, 18, at_end(2));
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "long-polled"
    );
    assert_eq!(r.responses[0].partitions[0].high_watermark, 2);
}

/// Produce v13 by an unknown id stores nothing and creates no topic.
#[test]
fn produce_v13_to_an_unknown_topic_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let unknown = Uuid::from_u128(42);
    let (answered, code, base) = produce_by_id(&mut raw, unknown, batch(1, 10, 0));
    assert_eq!(
        (answered, code, base),
        (unknown, ResponseError::UnknownTopicId.code(), -1)
    );
    let ResponseKind::Metadata(r) = raw.call(
        ApiKey::Metadata,
        13,
        MetadataRequest::default().with_topics(None).into(),
    ) else {
        panic!("not a Metadata answer");
    };
    assert!(r.topics.is_empty(), "{:?}", r.topics);
}

fn describe(
    raw: &mut Raw,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    match raw.call(ApiKey::DescribeTopicPartitions, 0, request.into()) {
        ResponseKind::DescribeTopicPartitions(r) => r,
        other => panic!("not a DescribeTopicPartitions answer: {other:?}"),
    }
}

/// The topics of one answer (name, partition indexes) and its next cursor.
type Page = (Vec<(String, Vec<i32>)>, Option<(String, i32)>);

/// (topic, partitions) of an answer, and its next cursor.
fn pages(r: &DescribeTopicPartitionsResponse) -> Page {
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            (
                name,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let cursor = r
        .next_cursor
        .as_ref()
        .map(|c| (c.topic_name.to_string(), c.partition_index));
    (topics, cursor)
}

/// DescribeTopicPartitions pages through topics in name order, at most
/// `response_partition_limit` partitions an answer, resuming at the cursor.
#[test]
fn describe_topic_partitions_pages_by_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "b-three", 3);
    create(&mut raw, "a-two", 2);
    create(&mut raw, "c-one", 1);
    let id = topic_id(&mut raw, "b-three");

    // Every topic, two partitions an answer.
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let request = DescribeTopicPartitionsRequest::default()
            .with_response_partition_limit(2)
            .with_cursor(cursor.take().map(|(topic, partition): (String, i32)| {
                Cursor::default()
                    .with_topic_name(name(&topic))
                    .with_partition_index(partition)
            }));
        let r = describe(&mut raw, request);
        let (topics, next) = pages(&r);
        assert!(
            topics.iter().map(|(_, p)| p.len()).sum::<usize>() <= 2,
            "{topics:?}"
        );
        seen.push(topics);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let t = |n: &str, p: &[i32]| (n.to_string(), p.to_vec());
    assert_eq!(
        seen,
        [
            vec![t("a-two", &[0, 1])],
            vec![t("b-three", &[0, 1])],
            vec![t("b-three", &[2]), t("c-one", &[0])],
        ]
    );

    // Named topics, sorted; what is described is Metadata's description.
    let request = DescribeTopicPartitionsRequest::default().with_topics(vec![
        TopicRequest::default().with_name(name("b-three")),
        TopicRequest::default().with_name(name("nope")),
        TopicRequest::default().with_name(name("bad/name")),
    ]);
    let r = describe(&mut raw, request);
    let summary: Vec<(String, i16, usize)> = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            (name, t.error_code, t.partitions.len())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("b-three".to_string(), 0, 3),
            (
                "bad/name".to_string(),
                ResponseError::InvalidTopicException.code(),
                0
            ),
            (
                "nope".to_string(),
                ResponseError::UnknownTopicOrPartition.code(),
                0
            ),
        ]
    );
    assert!(r.next_cursor.is_none());
    let described = &r.topics[0];
    assert_eq!(described.topic_id, id);
    assert!(!described.is_internal);
    // No authorizer: every topic operation is allowed.
    assert_ne!(described.topic_authorized_operations, i32::MIN);
    let p = &described.partitions[2];
    assert_eq!((p.partition_index, p.leader_epoch), (2, 0));
    assert_eq!(p.replica_nodes, [p.leader_id]);
    assert_eq!(p.replica_nodes, p.isr_nodes);
    assert_eq!(p.eligible_leader_replicas, Some(Vec::new()));

    // Resuming inside a named topic; a cursor outside the list is refused.
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(name("b-three"))])
        .with_cursor(Some(
            Cursor::default()
                .with_topic_name(name("b-three"))
                .with_partition_index(1),
        ));
    let (topics, next) = pages(&describe(&mut raw, request));
    assert_eq!((topics, next), (vec![t("b-three", &[1, 2])], None));
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(name("a-two"))])
        .with_cursor(Some(Cursor::default().with_topic_name(name("c-one"))));
    let r = describe(&mut raw, request);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, ResponseError::InvalidRequest.code());

    // ApiVersions says so.
    let ResponseKind::ApiVersions(v) = raw.call(
        ApiKey::ApiVersions,
        3,
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .into(),
    ) else {
        panic!("not an ApiVersions answer");
    };
    let range = |key: ApiKey| {
        v.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::Fetch), Some((4, 18)));
    assert_eq!(range(ApiKey::Produce), Some((0, 13)));
    assert_eq!(range(ApiKey::Metadata), Some((0, 13)));
    assert_eq!(range(ApiKey::DescribeTopicPartitions), Some((0, 0)));
}

/// Collects librdkafka's log lines.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<String>>>);

impl ClientContext for Logged {
    fn log(&self, _level: RDKafkaLogLevel, fac: &str, line: &str) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{fac} {line}"));
        }
    }
}

impl ConsumerContext for Logged {}

/// librdkafka 2.12 fetches by topic id once the broker offers Fetch v13+,
/// and reads what was produced.
#[test]
fn librdkafka_fetches_by_topic_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "rdkafka-ids", 1);
    let id = topic_id(&mut raw, "rdkafka-ids");
    assert_eq!(
        produce_by_id(&mut raw, id, batch(5, 20, 1_700_000_000_000)).1,
        0
    );

    let logged = Logged::default();
    let consumer: BaseConsumer<Logged> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "topic-ids")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .set("debug", "protocol")
        .set_log_level(RDKafkaLogLevel::Debug)
        .create_with_context(logged.clone())
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rdkafka-ids", 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut offsets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while offsets.len() < 5 {
        assert!(Instant::now() < deadline, "only {offsets:?} consumed");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("consume");
            let key = format!("k{}", message.offset());
            assert_eq!(message.key(), Some(key.as_bytes()));
            offsets.push(message.offset());
        }
    }
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
    drop(consumer);
    // "Sent FetchRequest (v16, …)": the version librdkafka chose.
    let lines = logged.0.lock().expect("log").clone();
    let versions: Vec<i16> = lines
        .iter()
        .filter_map(|l| l.split("Sent FetchRequest (v").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect();
    let fetch_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("Fetch"))
        .take(20)
        .collect();
    assert!(
        !versions.is_empty(),
        "no FetchRequest logged: {fetch_lines:#?}"
    );
    assert!(versions.iter().all(|&v| v >= 13), "{versions:?}");
}
