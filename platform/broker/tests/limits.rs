//! Topics, names and a full disk against a real broker and real clients
//! (librdkafka; the raw client where the attack is one odd request, or
//! where an error message is read that librdkafka does not show):
//! auto-creation capped per request, the broker-wide partition limit
//! refused with POLICY_VIOLATION before any file, 249-character names
//! through everything, colliding names refused, the disk reserve, and
//! per-API request limits answered with INVALID_REQUEST.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, DescribeGroupsRequest, GroupId, MetadataRequest, ProduceRequest,
    RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

/// What the brokers of this test binary log at ERROR and above, kept for
/// the tests that count lines. Installed before any broker starts (the
/// shared helper's own subscriber then stays out).
fn logged() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let log = LOG.get_or_init(|| Mutex::new(Vec::new()));
    INSTALLED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("error"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
    log
}

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logged().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn start(config: BrokerConfig) -> TestBroker {
    logged();
    TestBroker::start_with(config)
}

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}

/// The partition directories in the data directory.
fn partition_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !matches!(n.as_str(), "topics" | "pipelines"))
        .collect();
    names.sort();
    names
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_owned()))
}

/// A Metadata request naming 3 000 unknown topics creates at most
/// `auto.create.topics.max.per.request` (default 100) of them; the others
/// are UNKNOWN_TOPIC_OR_PARTITION, and the next request creates the next
/// ones. A librdkafka client is served right after.
#[test]
fn one_metadata_request_auto_creates_at_most_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(BrokerConfig::ephemeral(dir.path()));
    assert_eq!(
        BrokerConfig::default().auto_create_topics_max_per_request,
        100
    );
    let request = MetadataRequest::default()
        .with_topics(Some(
            (0..3_000)
                .map(|i| MetadataRequestTopic::default().with_name(Some(name(&format!("m{i}")))))
                .collect(),
        ))
        .with_allow_auto_topic_creation(true);
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::Metadata(answer) =
        raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(request.clone()))
    else {
        panic!("not a Metadata answer");
    };
    let created = answer.topics.iter().filter(|t| t.error_code == 0).count();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(created, 100);
    assert!(answer.topics[100..].iter().all(|t| t.error_code == unknown));
    assert_eq!(partition_dirs(dir.path()).len(), 100);

    let ResponseKind::Metadata(again) =
        raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(request))
    else {
        panic!("not a Metadata answer");
    };
    assert_eq!(
        again.topics.iter().filter(|t| t.error_code == 0).count(),
        200
    );
    assert_eq!(partition_dirs(dir.path()).len(), 200);

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    producer
        .send(BaseRecord::to("m0").key("k").payload("v"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    broker.stop();
}

/// One past the per-API limits at their defaults (10 000 topics per
/// Metadata, partitions per Produce, groups per DescribeGroups) is
/// answered with INVALID_REQUEST in every entry, naming the limit where the
/// answer has a message; nothing is created, and the same connection then
/// serves normal requests, as does a librdkafka producer.
#[test]
fn requests_over_their_per_api_limit_are_answered_and_the_connection_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let defaults = BrokerConfig::default();
    assert_eq!(defaults.request_max_metadata_topics, 10_000);
    assert_eq!(defaults.request_max_produce_partitions, 10_000);
    assert_eq!(defaults.request_max_groups, 10_000);
    let broker = start(BrokerConfig::ephemeral(dir.path()));
    let invalid = ResponseError::InvalidRequest.code();
    let mut raw = Raw::connect(broker.addr);

    let topics = |n: usize| {
        MetadataRequest::default()
            .with_topics(Some(
                (0..n)
                    .map(|i| {
                        MetadataRequestTopic::default().with_name(Some(name(&format!("over{i}"))))
                    })
                    .collect(),
            ))
            .with_allow_auto_topic_creation(true)
    };
    let ResponseKind::Metadata(answer) =
        raw.call(ApiKey::Metadata, 12, RequestKind::Metadata(topics(10_001)))
    else {
        panic!("not a Metadata answer");
    };
    assert_eq!(answer.topics.len(), 10_001);
    assert!(answer.topics.iter().all(|t| t.error_code == invalid));
    assert_eq!(
        answer.topics[10_000].name.as_deref().map(|n| &**n),
        Some("over10000")
    );
    assert!(
        partition_dirs(dir.path()).is_empty(),
        "nothing auto-created"
    );
    // v13 also carries the top-level error.
    let ResponseKind::Metadata(answer) =
        raw.call(ApiKey::Metadata, 13, RequestKind::Metadata(topics(10_001)))
    else {
        panic!("not a Metadata answer");
    };
    assert_eq!(answer.error_code, invalid);
    // Exactly at the limit is served: the first 100 are auto-created.
    let ResponseKind::Metadata(answer) =
        raw.call(ApiKey::Metadata, 12, RequestKind::Metadata(topics(10_000)))
    else {
        panic!("not a Metadata answer");
    };
    assert_eq!(
        answer.topics.iter().filter(|t| t.error_code == 0).count(),
        100
    );
    assert!(answer.topics.iter().all(|t| t.error_code != invalid));

    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("over0"))
                .with_partition_data(
                    (0..10_001)
                        .map(|i| {
                            PartitionProduceData::default()
                                .with_index(i)
                                .with_records(Some(common::batch(1, 10, 1_700_000_000_000).into()))
                        })
                        .collect(),
                ),
        ]);
    let ResponseKind::Produce(answer) = raw.call(ApiKey::Produce, 9, RequestKind::Produce(request))
    else {
        panic!("not a Produce answer");
    };
    let partitions = &answer.responses[0].partition_responses;
    assert_eq!(partitions.len(), 10_001);
    assert!(partitions.iter().all(|p| p.error_code == invalid));
    let message = partitions[0].error_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("request.max.produce.partitions (10000)") && message.contains("10001"),
        "{message}"
    );
    assert_eq!(raw_produce(&mut raw, "over0"), (0, String::new()));

    let groups = DescribeGroupsRequest::default().with_groups(
        (0..10_001)
            .map(|i| GroupId(StrBytes::from_string(format!("g{i}"))))
            .collect(),
    );
    let ResponseKind::DescribeGroups(answer) = raw.call(
        ApiKey::DescribeGroups,
        5,
        RequestKind::DescribeGroups(groups),
    ) else {
        panic!("not a DescribeGroups answer");
    };
    assert_eq!(answer.groups.len(), 10_001);
    assert!(answer.groups.iter().all(|g| g.error_code == invalid));

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    producer
        .send(BaseRecord::to("over1").key("k").payload("v"))
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    broker.stop();
}

/// The per-API limits are settings: at 2, a Fetch, CreateTopics,
/// DeleteTopics and DeleteGroups naming 3 are INVALID_REQUEST for each
/// entry (Fetch's top-level code too) and act on nothing; the connection
/// serves on. A Produce with acks 0 over its limit has no answer to carry
/// the error, so its connection is closed; a new one is served.
#[test]
fn per_api_limits_are_settings_and_cover_fetch_and_admin_requests() {
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{DeleteGroupsRequest, DeleteTopicsRequest, FetchRequest};
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.request_max_fetch_partitions = 2;
    config.request_max_admin_topics = 2;
    config.request_max_groups = 2;
    config.request_max_produce_partitions = 2;
    let broker = start(config);
    let invalid = ResponseError::InvalidRequest.code();
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(raw_produce(&mut raw, "kept"), (0, String::new()));

    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name("kept"))
                .with_partitions(
                    (0..3)
                        .map(|i| FetchPartition::default().with_partition(i))
                        .collect(),
                ),
        ]);
    let ResponseKind::Fetch(answer) = raw.call(ApiKey::Fetch, 12, RequestKind::Fetch(fetch)) else {
        panic!("not a Fetch answer");
    };
    assert_eq!(answer.error_code, invalid);
    assert_eq!(answer.responses[0].partitions.len(), 3);
    assert!(
        answer.responses[0]
            .partitions
            .iter()
            .all(|p| p.error_code == invalid)
    );

    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(
            (0..3)
                .map(|i| {
                    CreatableTopic::default()
                        .with_name(name(&format!("new{i}")))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                })
                .collect(),
        );
    let ResponseKind::CreateTopics(answer) =
        raw.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(create))
    else {
        panic!("not a CreateTopics answer");
    };
    assert!(answer.topics.iter().all(|t| t.error_code == invalid));
    let message = answer.topics[0]
        .error_message
        .as_deref()
        .unwrap_or_default();
    assert!(
        message.contains("request.max.admin.topics (2)"),
        "{message}"
    );
    assert_eq!(partition_dirs(dir.path()), vec!["kept-0".to_string()]);

    let delete = DeleteTopicsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(
            ["kept", "a", "b"]
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(name(n))))
                .collect(),
        );
    let ResponseKind::DeleteTopics(answer) =
        raw.call(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(delete))
    else {
        panic!("not a DeleteTopics answer");
    };
    assert_eq!(answer.responses.len(), 3);
    assert!(answer.responses.iter().all(|t| t.error_code == invalid));
    assert_eq!(partition_dirs(dir.path()), vec!["kept-0".to_string()]);

    let groups = DeleteGroupsRequest::default().with_groups_names(
        (0..3)
            .map(|i| GroupId(StrBytes::from_string(format!("g{i}"))))
            .collect(),
    );
    let ResponseKind::DeleteGroups(answer) =
        raw.call(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(groups))
    else {
        panic!("not a DeleteGroups answer");
    };
    assert!(answer.results.iter().all(|g| g.error_code == invalid));
    // Still served: the topic is there and produce works.
    assert_eq!(raw_produce(&mut raw, "kept"), (0, String::new()));

    let produce = ProduceRequest::default()
        .with_acks(0)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("kept"))
                .with_partition_data(
                    (0..3)
                        .map(|i| PartitionProduceData::default().with_index(i))
                        .collect(),
                ),
        ]);
    let (_, frame) = raw.frame(ApiKey::Produce, 9, &RequestKind::Produce(produce));
    raw.send_bytes(&frame);
    assert!(raw.is_closed(), "an acks-0 produce over the limit closes");
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(raw_produce(&mut raw, "kept"), (0, String::new()));
    broker.stop();
}

/// `max.partitions` refuses CreateTopics, CreatePartitions and
/// auto-creation with POLICY_VIOLATION, and no directory is made.
#[test]
fn the_partition_limit_is_a_policy_violation_with_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(BrokerConfig {
        max_partitions: 10,
        num_partitions: 4,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let admin = admin(&broker);
    let rt = &broker.runtime;
    let first = NewTopic::new("first", 8, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics([&first], &options()))
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");

    let big = NewTopic::new("big", 3, TopicReplication::Fixed(1));
    let results = rt
        .block_on(admin.create_topics([&big], &options()))
        .unwrap();
    assert_eq!(
        results[0],
        Err(("big".to_owned(), RDKafkaErrorCode::PolicyViolation))
    );
    let grow = NewPartitions::new("first", 11);
    let results = rt
        .block_on(admin.create_partitions([&grow], &options()))
        .unwrap();
    assert_eq!(
        results[0],
        Err(("first".to_owned(), RDKafkaErrorCode::PolicyViolation))
    );
    // Auto-creation (4 partitions: num.partitions) through a producer's
    // Metadata request.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("allow.auto.create.topics", "true")
        .create()
        .unwrap();
    let metadata = producer
        .client()
        .fetch_metadata(Some("auto"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        metadata.topics()[0].error(),
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_POLICY_VIOLATION)
    );
    let expected: Vec<String> = (0..8).map(|p| format!("first-{p}")).collect();
    assert_eq!(partition_dirs(dir.path()), expected);
    let topic_files = std::fs::read_dir(dir.path().join("topics"))
        .unwrap()
        .count();
    assert_eq!(topic_files, 1);

    // Up to the limit still works.
    let grow = NewPartitions::new("first", 10);
    let results = rt
        .block_on(admin.create_partitions([&grow], &options()))
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    broker.stop();
}

const VALUES: usize = 200;

fn produce_values(bootstrap: &str, topic: &str, count: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "2")
        .create()
        .unwrap();
    for i in 0..count {
        let key = format!("k{}", i % 20);
        let value = format!("v{i}");
        producer
            .send(BaseRecord::to(topic).partition(0).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// The values of partition 0 from the beginning to the high watermark.
fn consume_values(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "limits-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let mut last = -1;
    let deadline = Instant::now() + Duration::from_secs(30);
    while last + 1 < high {
        assert!(Instant::now() < deadline, "{} of {high} read", values.len());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last = m.offset();
                values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
            Some(Err(e)) => panic!("consume: {e}"),
            None => {}
        }
    }
    values
}

/// Names of 247 to 249 characters (Kafka's longest) are created, produced
/// to, consumed, kept over a restart, compacted and deleted.
#[test]
fn the_longest_names_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        log_cleaner_backoff_ms: 50,
        ..BrokerConfig::ephemeral(dir.path())
    };
    let plain: Vec<String> = (247..=249).map(|n| "p".repeat(n)).collect();
    let compacted = format!("{}.c", "c".repeat(247));
    let broker = start(config.clone());
    let admin = admin(&broker);
    let mut topics: Vec<NewTopic<'_>> = plain
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    topics.push(
        NewTopic::new(&compacted, 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact")
            .set("segment.bytes", "1024"),
    );
    let results = broker
        .runtime
        .block_on(admin.create_topics(&topics, &options()))
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let expected: Vec<String> = (0..VALUES).map(|i| format!("v{i}")).collect();
    for topic in &plain {
        produce_values(&broker.bootstrap(), topic, VALUES);
        assert_eq!(consume_values(&broker.bootstrap(), topic), expected);
    }
    for _ in 0..10 {
        produce_values(&broker.bootstrap(), &compacted, 100);
    }
    drop(admin);
    broker.stop();

    let broker = start(config);
    for topic in &plain {
        assert_eq!(consume_values(&broker.bootstrap(), topic), expected);
    }
    // Rolled 1 KiB segments are compacted down to about one value per key.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let values = consume_values(&broker.bootstrap(), &compacted);
        if values.len() < 500 {
            assert!(values.contains(&"v99".to_owned()), "{values:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not compacted: {}", values.len());
        std::thread::sleep(Duration::from_millis(200));
    }
    let admin = self::admin(&broker);
    let names: Vec<&str> = plain
        .iter()
        .map(String::as_str)
        .chain([compacted.as_str()])
        .collect();
    let results = broker
        .runtime
        .block_on(admin.delete_topics(&names, &options()))
        .unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // Deleted partitions wait `file.delete.delay.ms` as
    // `<topic>-<partition>.<id>-delete`, cut to a file name's 255 bytes as
    // Kafka cuts them (the longest names would not fit otherwise).
    let (pending, live): (Vec<String>, Vec<String>) = partition_dirs(dir.path())
        .into_iter()
        .partition(|n| n.ends_with("-delete"));
    assert!(live.is_empty(), "{live:?}");
    assert_eq!(pending.len(), names.len(), "{pending:?}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("topics"))
            .unwrap()
            .count(),
        0
    );
    drop(admin);
    broker.stop();
}

/// `coll_a_b` next to `coll.a.b` is INVALID_TOPIC_EXCEPTION naming the
/// existing topic, for CreateTopics and for auto-creation.
#[test]
fn colliding_names_are_refused_naming_the_existing_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(BrokerConfig::ephemeral(dir.path()));
    let admin = admin(&broker);
    let existing = NewTopic::new("coll.a.b", 1, TopicReplication::Fixed(1));
    let results = broker
        .runtime
        .block_on(admin.create_topics([&existing], &options()))
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    let colliding = NewTopic::new("coll_a_b", 1, TopicReplication::Fixed(1));
    let results = broker
        .runtime
        .block_on(admin.create_topics([&colliding], &options()))
        .unwrap();
    assert_eq!(
        results[0],
        Err(("coll_a_b".to_owned(), RDKafkaErrorCode::InvalidTopic))
    );
    // librdkafka does not show the message: the raw answer does.
    let request = CreateTopicsRequest::default()
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name("coll_a.b"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
        .with_timeout_ms(10_000);
    let ResponseKind::CreateTopics(answer) =
        Raw::connect(broker.addr).call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(request))
    else {
        panic!("not a CreateTopics answer");
    };
    let result = &answer.topics[0];
    assert_eq!(
        result.error_code,
        ResponseError::InvalidTopicException.code()
    );
    let message = result.error_message.as_deref().unwrap_or_default();
    assert!(
        message.contains("collides with existing topic: coll.a.b"),
        "{message}"
    );

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("allow.auto.create.topics", "true")
        .create()
        .unwrap();
    let metadata = producer
        .client()
        .fetch_metadata(Some("coll_a_b"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        metadata.topics()[0].error(),
        Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION)
    );
    assert_eq!(partition_dirs(dir.path()), ["coll.a.b-0"]);
    drop(admin);
    broker.stop();
}

/// A produce of one small batch to `topic`-0 through the raw client;
/// returns the partition's error code and message.
fn raw_produce(raw: &mut Raw, topic: &str) -> (i16, String) {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(common::batch(1, 10, 1_700_000_000_000).into())),
                ]),
        ]);
    let ResponseKind::Produce(answer) = raw.call(ApiKey::Produce, 9, RequestKind::Produce(request))
    else {
        panic!("not a Produce answer");
    };
    let partition = &answer.responses[0].partition_responses[0];
    (
        partition.error_code,
        partition
            .error_message
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Below `log.dir.reserve.bytes` (set above the disk's real free space:
/// mounting a small file system needs root), produce to a user topic is
/// KAFKA_STORAGE_ERROR with one ERROR line for many refusals, the broker
/// reports degraded, and a group's offset commit (to the internal offsets
/// topic, which the reserve is for) still works.
#[test]
fn below_the_disk_reserve_user_produce_is_refused_and_commits_work() {
    let dir = tempfile::tempdir().unwrap();
    let free = fjord_broker::free_bytes(dir.path()).unwrap();
    let broker = start(BrokerConfig {
        log_dir_reserve_bytes: free.saturating_mul(2).max(1 << 40),
        ..BrokerConfig::ephemeral(dir.path())
    });
    assert!(broker.local().disk().degraded());
    let admin = admin(&broker);
    let topic = NewTopic::new("reserved", 1, TopicReplication::Fixed(1));
    let results = broker
        .runtime
        .block_on(admin.create_topics([&topic], &options()))
        .unwrap();
    assert!(results[0].is_ok(), "{results:?}");

    let mut raw = Raw::connect(broker.addr);
    for _ in 0..20 {
        let (code, message) = raw_produce(&mut raw, "reserved");
        assert_eq!(code, ResponseError::KafkaStorageError.code());
        assert!(message.contains("log.dir.reserve.bytes"), "{message}");
    }
    let lines: Vec<String> = String::from_utf8_lossy(&logged().lock().unwrap())
        .lines()
        .filter(|l| l.contains("produce refused") && l.contains("topic=\"reserved\""))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("ERROR") && lines[0].contains("free_bytes="),
        "{}",
        lines[0]
    );

    // librdkafka, without retries, gets the same answer.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("retries", "0")
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    let delivered = broker.runtime.block_on(
        producer.send(
            FutureRecord::to("reserved")
                .partition(0)
                .key("k")
                .payload("v"),
            Duration::from_secs(10),
        ),
    );
    match delivered {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::KafkaStorageError)
        }
        other => panic!("produce below the reserve: {other:?}"),
    }

    // The group commits to __consumer_offsets, which the reserve is for.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "reserved-group")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("reserved", 0, Offset::Offset(0))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let committed = consumer
        .committed(Duration::from_secs(10))
        .unwrap()
        .find_partition("reserved", 0)
        .unwrap()
        .offset();
    assert_eq!(committed, Offset::Offset(0));
    let refused = matches!(
        consumer.fetch_watermarks("reserved", 0, Duration::from_secs(5)),
        Ok((0, 0))
    );
    assert!(refused, "nothing was stored");
    drop(admin);
    broker.stop();
}

/// A small tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when this process may not mount (it is not root).
    fn mount(megabytes: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Produces 64 KiB batches to `topic`-0 until one is refused; returns
/// the refusal.
fn produce_until_refused(raw: &mut Raw, topic: &str) -> (i16, String) {
    for _ in 0..10_000 {
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(common::batch(64, 1024, 1_700_000_000_000).into())),
                    ]),
            ]);
        let ResponseKind::Produce(answer) =
            raw.call(ApiKey::Produce, 9, RequestKind::Produce(request))
        else {
            panic!("not a Produce answer");
        };
        let partition = &answer.responses[0].partition_responses[0];
        if partition.error_code != 0 {
            let message = partition.error_message.as_deref().unwrap_or_default();
            return (partition.error_code, message.to_owned());
        }
    }
    panic!("never refused");
}

fn refusal_lines(topic: &str) -> Vec<String> {
    String::from_utf8_lossy(&logged().lock().unwrap())
        .lines()
        .filter(|l| l.contains("produce refused") && l.contains(&format!("topic=\"{topic}\"")))
        .map(str::to_owned)
        .collect()
}

/// A really full file system (a 24 MiB tmpfs; mounting needs root, which
/// the test environment has — elsewhere the reserve test above stands in
/// and this one says so and stops). With a 8 MiB reserve, produce is
/// refused while the reserve is left and a group still commits (creating
/// the 50-partition offsets topic on the nearly full disk). Without a
/// reserve, the disk fills up: the failed write is KAFKA_STORAGE_ERROR,
/// logged at ERROR with the file system's error, and the broker still
/// serves reads.
#[test]
fn a_full_file_system_keeps_the_reserve_for_commits() {
    let Some(disk) = Tmpfs::mount(24) else {
        eprintln!("not root: no tmpfs; the reserve test covers the refusal");
        return;
    };
    let config = BrokerConfig {
        log_dir_reserve_bytes: 8 << 20,
        segment_bytes: 1 << 20,
        ..BrokerConfig::ephemeral(disk.path())
    };
    let broker = start(config.clone());
    let mut raw = Raw::connect(broker.addr);
    let (code, message) = produce_until_refused(&mut raw, "tmpfs-full");
    assert_eq!(code, ResponseError::KafkaStorageError.code(), "{message}");
    assert!(message.contains("log.dir.reserve.bytes"), "{message}");
    let free = fjord_broker::free_bytes(disk.path()).unwrap();
    assert!(free > 4 << 20 && free < 8 << 20, "{free} bytes free");
    assert!(broker.local().disk().degraded());

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "tmpfs-group")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("tmpfs-full", 0, Offset::Offset(64))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let committed = consumer
        .committed_offsets(tpl.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition("tmpfs-full", 0).unwrap().offset(),
        Offset::Offset(64)
    );
    drop(consumer);
    broker.stop();
    assert_eq!(refusal_lines("tmpfs-full").len(), 1);

    // No reserve: the writes themselves fail.
    let broker = start(BrokerConfig {
        log_dir_reserve_bytes: 0,
        ..config
    });
    let mut raw = Raw::connect(broker.addr);
    let (code, message) = produce_until_refused(&mut raw, "tmpfs-full");
    assert_eq!(code, ResponseError::KafkaStorageError.code(), "{message}");
    let lines = refusal_lines("tmpfs-full");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("No space left"), "{}", lines[1]);
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .unwrap();
    let (low, high) = reader
        .fetch_watermarks("tmpfs-full", 0, Duration::from_secs(10))
        .unwrap();
    assert!(low == 0 && high > 64, "{low}..{high}");
    drop(reader);
    // The disk is full: a graceful stop could not write its checkpoints.
    drop(broker);
}
