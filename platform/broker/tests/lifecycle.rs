//! Topic lifecycle over raw requests: auto-creation rules, configs altered
//! at runtime, retention by the background task, DescribeCluster, and the
//! acks=0 failure path; racing creators of one topic.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker, batch};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn metadata(raw: &mut Raw, topic: &str, allow_auto: bool) -> (i16, usize) {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(allow_auto)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(topic))),
        ]));
    match raw.call(ApiKey::Metadata, 12, RequestKind::Metadata(request)) {
        ResponseKind::Metadata(r) => (r.topics[0].error_code, r.topics[0].partitions.len()),
        other => panic!("unexpected {other:?}"),
    }
}

fn produce_request(topic: &str, acks: i16, records: Vec<u8>) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(Bytes::from(records))),
                    ]),
            ]),
    )
}

fn earliest(raw: &mut Raw, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-2),
                ]),
        ]);
    match raw.call(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(request)) {
        ResponseKind::ListOffsets(r) => r.topics[0].partitions[0].offset,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn metadata_auto_creates_only_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.num_partitions = 4;
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(metadata(&mut raw, "not-asked", false), (3, 0));
    assert_eq!(metadata(&mut raw, "auto", true), (0, 4));
    assert_eq!(metadata(&mut raw, "bad:name", true).0, 17);
    broker.stop();

    let mut config = BrokerConfig::ephemeral(dir.path());
    config.auto_create_topics = false;
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(metadata(&mut raw, "auto", true), (0, 4), "survives restart");
    assert_eq!(
        metadata(&mut raw, "other", true),
        (3, 0),
        "auto-creation off"
    );
    match raw.call(
        ApiKey::Produce,
        9,
        produce_request("other", 1, batch(1, 1, 0)),
    ) {
        ResponseKind::Produce(r) => {
            assert_eq!(r.responses[0].partition_responses[0].error_code, 3)
        }
        other => panic!("unexpected {other:?}"),
    }
    broker.stop();
}

#[test]
fn configs_change_at_runtime_and_retention_runs_in_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.retention_check_interval_ms = 100;
    config.flush_check_interval_ms = 50;
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(metadata(&mut raw, "old", true), (0, 1));
    let alter = |raw: &mut Raw, key: &str, value: &str| -> i16 {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string("old".to_string()))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.to_string()))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(value.to_string()))),
                ]),
        ]);
        match raw.call(
            ApiKey::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(request),
        ) {
            ResponseKind::IncrementalAlterConfigs(r) => r.responses[0].error_code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(alter(&mut raw, "segment.bytes", "2000"), 0);
    assert_eq!(alter(&mut raw, "no.such.config", "1"), 40, "INVALID_CONFIG");
    assert_eq!(
        alter(&mut raw, "retention.ms", "soon"),
        40,
        "INVALID_CONFIG"
    );
    // Records with ancient timestamps, in ~1 KiB batches: several segments.
    // Kept forever until the test says otherwise: the default 7 days would
    // already let the background check delete them.
    assert_eq!(alter(&mut raw, "retention.ms", "-1"), 0);
    for i in 0..10 {
        match raw.call(
            ApiKey::Produce,
            9,
            produce_request("old", 1, batch(10, 100, 1_000 + i)),
        ) {
            ResponseKind::Produce(r) => {
                assert_eq!(r.responses[0].partition_responses[0].error_code, 0)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(earliest(&mut raw, "old"), 0);
    assert_eq!(alter(&mut raw, "retention.ms", "1000"), 0);
    let described = raw.call(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("old"))
                .with_configuration_keys(None),
        ])),
    );
    match described {
        ResponseKind::DescribeConfigs(r) => {
            let configs = &r.results[0].configs;
            let get = |k: &str| {
                configs
                    .iter()
                    .find(|c| c.name.as_str() == k)
                    .and_then(|c| c.value.as_ref().map(|v| (v.to_string(), c.config_source)))
            };
            assert_eq!(get("retention.ms"), Some(("1000".to_string(), 1)));
            assert_eq!(get("segment.bytes"), Some(("2000".to_string(), 1)));
            assert_eq!(get("cleanup.policy"), Some(("delete".to_string(), 5)));
        }
        other => panic!("unexpected {other:?}"),
    }
    // The background task deletes the old closed segments.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let start = earliest(&mut raw, "old");
        if start > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    broker.stop();
}

#[test]
fn describe_cluster_names_this_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.node_id = 7;
    config.advertised_host = Some("broker.example".to_string());
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    match raw.call(
        ApiKey::DescribeCluster,
        1,
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) {
        ResponseKind::DescribeCluster(r) => {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.controller_id.0, 7);
            assert_eq!(r.brokers[0].host.as_str(), "broker.example");
            assert_eq!(r.brokers[0].port, i32::from(broker.addr.port()));
            assert!(r.cluster_id.starts_with("fjord-"));
        }
        other => panic!("unexpected {other:?}"),
    }
    broker.stop();
}

#[test]
fn failed_acks_zero_produce_closes_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    // A good acks=0 produce gets no answer; the next request's does come.
    let (_, frame) = raw.frame(
        ApiKey::Produce,
        9,
        &produce_request("zero", 0, batch(1, 1, 0)),
    );
    raw.send_bytes(&frame);
    assert_eq!(metadata(&mut raw, "zero", true), (0, 1));
    // A corrupt one closes the connection: the producer's only signal.
    let mut bad = batch(1, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    let (_, frame) = raw.frame(ApiKey::Produce, 9, &produce_request("zero", 0, bad));
    raw.send_bytes(&frame);
    assert!(raw.is_closed());
    let mut again = Raw::connect(broker.addr);
    assert_eq!(earliest(&mut again, "zero"), 0);
    broker.stop();
}

#[test]
fn validate_only_changes_nothing_and_delete_by_id_works() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::messages::{
        CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let create = |raw: &mut Raw, topic: &str, partitions: i32, validate_only: bool| {
        let request = CreateTopicsRequest::default()
            .with_validate_only(validate_only)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(-1),
            ]);
        match raw.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request)) {
            ResponseKind::CreateTopics(r) => (
                r.topics[0].error_code,
                r.topics[0].num_partitions,
                r.topics[0].topic_id,
            ),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(create(&mut raw, "v", 3, true).0, 0);
    assert_eq!(
        metadata(&mut raw, "v", false),
        (3, 0),
        "validate_only created nothing"
    );
    let (code, partitions, id) = create(&mut raw, "v", -1, false);
    assert_eq!((code, partitions), (0, 1), "-1 means num.partitions");
    assert_eq!(
        create(&mut raw, "v", 1, false).0,
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(create(&mut raw, "w", 0, false).0, 37, "INVALID_PARTITIONS");

    let grow = |raw: &mut Raw, count: i32, validate_only: bool| -> i16 {
        let request = CreatePartitionsRequest::default()
            .with_validate_only(validate_only)
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("v"))
                    .with_count(count),
            ]);
        match raw.call(
            ApiKey::CreatePartitions,
            3,
            RequestKind::CreatePartitions(request),
        ) {
            ResponseKind::CreatePartitions(r) => r.results[0].error_code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(grow(&mut raw, 5, true), 0);
    assert_eq!(
        metadata(&mut raw, "v", false),
        (0, 1),
        "validate_only grew nothing"
    );
    assert_eq!(grow(&mut raw, 5, false), 0);
    assert_eq!(metadata(&mut raw, "v", false), (0, 5));
    assert_eq!(grow(&mut raw, 2, false), 37, "cannot shrink");

    let request = DeleteTopicsRequest::default()
        .with_topics(vec![DeleteTopicState::default().with_topic_id(id)]);
    match raw.call(ApiKey::DeleteTopics, 6, RequestKind::DeleteTopics(request)) {
        ResponseKind::DeleteTopics(r) => {
            assert_eq!(r.responses[0].error_code, 0);
            assert_eq!(r.responses[0].name.as_ref().map(|n| n.as_str()), Some("v"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(metadata(&mut raw, "v", false), (3, 0));
    let request = DeleteTopicsRequest::default().with_topic_names(vec![name("v")]);
    match raw.call(ApiKey::DeleteTopics, 4, RequestKind::DeleteTopics(request)) {
        ResponseKind::DeleteTopics(r) => assert_eq!(r.responses[0].error_code, 3),
        other => panic!("unexpected {other:?}"),
    }
    broker.stop();
}

#[test]
fn run_serves_until_its_shutdown_future_completes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(fjord_broker::run(
        BrokerConfig::ephemeral(dir.path()),
        async {
            let _ = stopped.await;
        },
    ));
    // The cluster id file appears once the broker has opened its data dir.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dir.path().join("cluster.yaml").exists() {
        assert!(Instant::now() < deadline, "broker never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = stop.send(());
    let result = runtime.block_on(server).expect("server task");
    assert!(result.is_ok(), "{result:?}");
}

/// "Create the topic, or look it up": creators racing on one name (the
/// pipeline runtime's `ensure_topic`, and a client's auto-creation) all
/// get the one topic, created once with the first creator's settings; a
/// bad name is refused with the Kafka error a client would get.
#[test]
fn racing_creators_of_one_topic_all_get_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let local = broker.local();
    let ids: Vec<uuid::Uuid> = broker.runtime.block_on(async {
        let creators: Vec<_> = (0..8)
            .map(|_| {
                let local = local.clone();
                tokio::spawn(async move {
                    local
                        .ensure_topic("shared", Some(3), &[("cleanup.policy", "compact")])
                        .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for creator in creators {
            let topic = creator
                .await
                .expect("creator task")
                .expect("every creator gets the topic");
            assert_eq!(topic.partition_count(), 3);
            assert_eq!(topic.configs().get("cleanup.policy"), Some("compact"));
            ids.push(topic.id());
        }
        ids
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "one topic: {ids:?}");
    // A client's auto-creation of the same name finds it.
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(metadata(&mut raw, "shared", true), (0, 3));

    let refused = broker
        .runtime
        .block_on(local.ensure_topic("not/valid", Some(1), &[]))
        .expect_err("an invalid name is refused");
    assert_eq!(
        refused.code(),
        kafka_protocol::ResponseError::InvalidTopicException.code()
    );
    broker.stop();
}
