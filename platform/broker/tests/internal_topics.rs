//! Internal topics are the platform's: a plain Kafka client (librdkafka,
//! or raw requests) cannot produce to them, delete their records, add
//! partitions to them, create them (auto or not) or delete them; it can still do all of that to
//! ordinary topics. Only the platform's own principal (SASL/PLAIN with the
//! cluster's secret) may write them; a wrong password ends the connection.

mod common;

use std::time::Duration;

use common::{Raw, TestBroker, batch};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, MetadataRequest, ProduceRequest, ResponseKind, SaslAuthenticateRequest,
    SaslHandshakeRequest, TopicName, create_partitions_request, create_topics_request,
    delete_records_request, metadata_request, produce_request,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

const INVALID_TOPIC: i16 = 17;
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topics(broker: &TestBroker, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin");
    let topics: Vec<_> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = broker
        .runtime
        .block_on(admin.create_topics(&topics, &options))
        .expect("create");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// One record from librdkafka with `extra` client properties: the offset,
/// or the delivery error.
/// Creates internal topics as the platform does (in process): clients
/// may not.
fn platform_creates(broker: &TestBroker, names: &[&str]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for name in names {
        runtime
            .block_on(broker.local().ensure_topic(name, Some(1), &[]))
            .expect("the platform creates its topic");
    }
}

fn rdkafka_produce(
    broker: &TestBroker,
    topic: &str,
    extra: &[(&str, &str)],
) -> Result<i64, KafkaError> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "5000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: FutureProducer = config.create().expect("producer");
    let record = FutureRecord::to(topic)
        .partition(0)
        .key("pipeline")
        .payload(r#"{"manifest":"name: pwned","file":"x"}"#);
    broker
        .runtime
        .block_on(producer.send(record, Duration::from_secs(10)))
        .map(|delivered| delivered.offset)
        .map_err(|(e, _)| e)
}

#[test]
fn librdkafka_cannot_produce_to_internal_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let internal = [
        "__fjord_pipelines",
        "__fjord_pipeline_status",
        "pipeline.p.count.changelog",
    ];
    platform_creates(&broker, &internal);
    create_topics(&broker, &["orders"]);
    for topic in internal {
        let refused = rdkafka_produce(&broker, topic, &[]);
        assert_eq!(
            refused.map_err(|e| e.rdkafka_error_code()),
            Err(Some(RDKafkaErrorCode::InvalidTopic)),
            "{topic}"
        );
    }
    assert_eq!(rdkafka_produce(&broker, "orders", &[]), Ok(0));
    // Nothing was stored in the internal topics.
    let mut raw = Raw::connect(broker.addr);
    for topic in internal {
        assert_eq!(high_watermark(&mut raw, topic), 0, "{topic}");
    }
    broker.stop();
}

fn high_watermark(raw: &mut Raw, topic: &str) -> i64 {
    use kafka_protocol::messages::{ListOffsetsRequest, list_offsets_request};
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                ]),
        ]);
    match raw.call(ApiKey::ListOffsets, 7, request.into()) {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0, "{topic}");
            p.offset
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn raw_requests_on_internal_topics_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create_topics(&broker, &["orders"]);
    // The platform makes its own topics (clients may not: see below).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(
            broker
                .local()
                .ensure_topic("__fjord_pipelines", Some(1), &[]),
        )
        .expect("the platform creates its topic");
    let mut raw = Raw::connect(broker.addr);

    // Produce v9 to an existing internal topic, to one that does not exist
    // yet (not auto-created), and to an ordinary topic.
    let produce = |topics: &[&str]| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(
                topics
                    .iter()
                    .map(|t| {
                        produce_request::TopicProduceData::default()
                            .with_name(name(t))
                            .with_partition_data(vec![
                                produce_request::PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(batch(1, 10, 1_000).into())),
                            ])
                    })
                    .collect(),
            )
    };
    let topics = [
        "__fjord_pipelines",
        "__consumer_offsets",
        "__fjord_new",
        "orders",
    ];
    let ResponseKind::Produce(r) = raw.call(ApiKey::Produce, 9, produce(&topics).into()) else {
        panic!("not a produce answer");
    };
    for (topic, answer) in topics.iter().zip(&r.responses) {
        assert_eq!(answer.name.as_str(), *topic);
        let p = &answer.partition_responses[0];
        if *topic == "orders" {
            assert_eq!((p.error_code, p.base_offset), (0, 0));
            continue;
        }
        assert_eq!(p.error_code, INVALID_TOPIC, "{topic}");
        assert_eq!(
            p.error_message.as_deref(),
            Some(format!("{topic} is an internal topic: clients may not produce to it").as_str())
        );
    }

    // Metadata: internal topics are flagged, and never auto-created.
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(true)
        .with_topics(Some(
            ["__fjord_pipelines", "__fjord_new", "orders"]
                .iter()
                .map(|t| metadata_request::MetadataRequestTopic::default().with_name(Some(name(t))))
                .collect(),
        ));
    let ResponseKind::Metadata(m) = raw.call(ApiKey::Metadata, 12, request.into()) else {
        panic!("not a metadata answer");
    };
    let flags: Vec<_> = m
        .topics
        .iter()
        .map(|t| (t.error_code, t.is_internal))
        .collect();
    assert_eq!(flags, [(0, true), (3, false), (0, false)]);

    // DeleteRecords and CreatePartitions, as Kafka refuses them.
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(name("__fjord_pipelines"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default().with_offset(-1),
                ]),
        ]);
    let ResponseKind::DeleteRecords(r) = raw.call(ApiKey::DeleteRecords, 2, request.into()) else {
        panic!("not a delete records answer");
    };
    assert_eq!(r.topics[0].partitions[0].error_code, INVALID_TOPIC);
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("__fjord_pipelines"))
                .with_count(3),
        ]);
    let ResponseKind::CreatePartitions(r) = raw.call(ApiKey::CreatePartitions, 3, request.into())
    else {
        panic!("not a create partitions answer");
    };
    assert_eq!(r.results[0].error_code, INVALID_TOPIC);

    // CreateTopics of an internal name (made first by a client, it would
    // have the client's partitions and configs) and DeleteTopics of an
    // internal topic are refused too; an ordinary name is created.
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(
            [
                "__consumer_offsets",
                "__fjord_new",
                "pipeline.p.t.changelog",
                "plain",
            ]
            .iter()
            .map(|t| {
                create_topics_request::CreatableTopic::default()
                    .with_name(name(t))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
            })
            .collect(),
        );
    let ResponseKind::CreateTopics(r) = raw.call(ApiKey::CreateTopics, 5, request.into()) else {
        panic!("not a create topics answer");
    };
    let codes: Vec<_> = r.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [INVALID_TOPIC, INVALID_TOPIC, INVALID_TOPIC, 0]);
    assert_eq!(
        r.topics[0].error_message.as_deref(),
        Some("__consumer_offsets is an internal topic: clients may not create it")
    );
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topic_names(vec![name("__fjord_pipelines"), name("plain")]);
    let ResponseKind::DeleteTopics(r) = raw.call(ApiKey::DeleteTopics, 5, request.into()) else {
        panic!("not a delete topics answer");
    };
    let codes: Vec<_> = r.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [INVALID_TOPIC, 0]);
    assert!(
        broker.local().topic("__fjord_pipelines").is_some(),
        "still there"
    );
    broker.stop();
}

/// A Metadata request that names `__consumer_offsets` and allows
/// auto-creation creates it with the coordinator's settings (50 partitions,
/// compacted), as Kafka's AutoTopicCreationManager does: Burrow asks for it
/// at start and gives up when it is missing, before any group committed.
/// Without the flag it stays unknown.
#[test]
fn metadata_creates_consumer_offsets_as_kafka_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let ask = |raw: &mut Raw, auto: bool| {
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(auto)
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(name("__consumer_offsets"))),
            ]));
        let ResponseKind::Metadata(m) = raw.call(ApiKey::Metadata, 12, request.into()) else {
            panic!("not a metadata answer");
        };
        let t = &m.topics[0];
        (t.error_code, t.is_internal, t.partitions.len())
    };
    assert_eq!(ask(&mut raw, false), (3, false, 0));
    assert!(broker.local().topic("__consumer_offsets").is_none());
    assert_eq!(ask(&mut raw, true), (0, true, 50));
    let topic = broker.local().topic("__consumer_offsets").expect("created");
    assert_eq!(topic.partition_count(), 50);
    assert_eq!(topic.configs().get("cleanup.policy"), Some("compact"));
    // Asked again, it is the same topic.
    assert_eq!(ask(&mut raw, true), (0, true, 50));
    broker.stop();
}

#[test]
fn sasl_plain_is_advertised_and_a_wrong_password_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    create_topics(&broker, &["orders"]);
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::ApiVersions(v) = raw.call(
        ApiKey::ApiVersions,
        3,
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .into(),
    ) else {
        panic!("not an api versions answer");
    };
    let range = |key: i16| {
        v.api_keys
            .iter()
            .find(|k| k.api_key == key)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(17), Some((0, 1)), "SaslHandshake");
    assert_eq!(range(36), Some((0, 2)), "SaslAuthenticate");

    let handshake = |mechanism: &'static str| {
        SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism))
            .into()
    };
    let ResponseKind::SaslHandshake(h) = raw.call(ApiKey::SaslHandshake, 1, handshake("GSSAPI"))
    else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, UNSUPPORTED_SASL_MECHANISM);
    assert!(h.mechanisms.iter().any(|m| m.as_str() == "PLAIN"));
    let ResponseKind::SaslHandshake(h) = raw.call(ApiKey::SaslHandshake, 1, handshake("PLAIN"))
    else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let token = bytes::Bytes::from_static(b"\0fjord-internal\0guess");
    let ResponseKind::SaslAuthenticate(a) = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        SaslAuthenticateRequest::default()
            .with_auth_bytes(token)
            .into(),
    ) else {
        panic!("not an authenticate answer");
    };
    assert_eq!(a.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(
        raw.is_closed(),
        "a failed authentication ends the connection"
    );

    // Handshake v0: the token comes bare; a wrong one closes the connection.
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::SaslHandshake(h) = raw.call(ApiKey::SaslHandshake, 0, handshake("PLAIN"))
    else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let token = b"\0fjord-internal\0guess";
    let mut frame = (token.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(token);
    raw.send_bytes(&frame);
    assert!(raw.is_closed(), "a wrong bare token ends the connection");

    // librdkafka with SASL/PLAIN and a wrong password gets nothing in; the
    // same client without SASL produces as before.
    let wrong = rdkafka_produce(
        &broker,
        "orders",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "fjord-internal"),
            ("sasl.password", "guess"),
        ],
    );
    assert!(wrong.is_err(), "{wrong:?}");
    assert_eq!(rdkafka_produce(&broker, "orders", &[]), Ok(0));
    broker.stop();
}
