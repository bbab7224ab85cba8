//! The newest versions of ListOffsets (8–10), FindCoordinator (5–6),
//! DescribeCluster (2) and AlterPartitionReassignments (1), and
//! DescribeLogDirs / AlterReplicaLogDirs, over raw sockets to a real
//! broker (docs/protocol.md).

mod common;

use common::{Raw, TestBroker, batch};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, ApiKey, BrokerId,
    CreateTopicsRequest, DeleteRecordsRequest, DescribeClusterRequest, DescribeLogDirsRequest,
    FindCoordinatorRequest, ListOffsetsRequest, ProduceRequest, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const LOG_DIR_NOT_FOUND: i16 = 57;
const REPLICA_NOT_AVAILABLE: i16 = 9;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn create_topic(raw: &mut Raw, topic: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1),
        ]);
    match raw.call(ApiKey::CreateTopics, 7, RequestKind::CreateTopics(request)) {
        ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0, "{r:?}"),
        other => panic!("{other:?}"),
    }
}

/// Appends `count` records to `topic`-`partition`.
fn produce(raw: &mut Raw, topic: &str, partition: i32, count: usize) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch(count, 100, 1_000).into())),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, RequestKind::Produce(request)) {
        ResponseKind::Produce(r) => {
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "{r:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// `(error, offset, leader epoch)` for each timestamp, asked of
/// partition 0 of `topic` in one ListOffsets of `version`.
fn list_offsets(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    timestamps: &[i64],
) -> Vec<(i16, i64, i32)> {
    // One partition entry per timestamp: each its own request, since a
    // topic may name a partition once.
    timestamps
        .iter()
        .map(|&timestamp| {
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_timeout_ms(1000)
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(timestamp),
                        ]),
                ]);
            let request = if version >= 10 {
                request
            } else {
                request.with_timeout_ms(0)
            };
            match raw.call(
                ApiKey::ListOffsets,
                version,
                RequestKind::ListOffsets(request),
            ) {
                ResponseKind::ListOffsets(r) => {
                    let p = &r.topics[0].partitions[0];
                    (p.error_code, p.offset, p.leader_epoch)
                }
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

#[test]
fn list_offsets_v8_to_v10_know_earliest_local_and_latest_tiered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create_topic(&mut raw, "offsets", 1);
    produce(&mut raw, "offsets", 0, 5);

    for version in 9..=10 {
        let answers = list_offsets(&mut raw, version, "offsets", &[-2, -4, -5, -1]);
        assert_eq!(answers[0], (0, 0, 0), "v{version} earliest");
        assert_eq!(
            answers[1],
            (0, 0, 0),
            "v{version} earliest local = earliest"
        );
        assert_eq!(
            answers[2],
            (0, -1, -1),
            "v{version} latest tiered: nothing tiered"
        );
        assert_eq!(answers[3], (0, 5, 0), "v{version} latest");
    }
    // Each special timestamp from the version that defines it.
    assert_eq!(
        list_offsets(&mut raw, 7, "offsets", &[-4])[0].0,
        UNSUPPORTED_VERSION
    );
    assert_eq!(list_offsets(&mut raw, 8, "offsets", &[-4])[0], (0, 0, 0));
    assert_eq!(
        list_offsets(&mut raw, 8, "offsets", &[-5])[0].0,
        UNSUPPORTED_VERSION
    );
    assert_eq!(
        list_offsets(&mut raw, 10, "offsets", &[-6])[0].0,
        UNSUPPORTED_VERSION
    );

    // Earliest local follows the log start when records are deleted.
    let delete = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(name("offsets"))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(3),
                ]),
        ]);
    match raw.call(ApiKey::DeleteRecords, 2, RequestKind::DeleteRecords(delete)) {
        ResponseKind::DeleteRecords(r) => {
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "{r:?}")
        }
        other => panic!("{other:?}"),
    }
    let answers = list_offsets(&mut raw, 10, "offsets", &[-2, -4]);
    assert_eq!(answers[0].1, 3, "earliest after DeleteRecords");
    assert_eq!(answers[1].1, 3, "earliest local after DeleteRecords");
    broker.stop();
}

/// `(error, message)` of each key in a FindCoordinator v4+ answer.
fn find_coordinators(
    raw: &mut Raw,
    version: i16,
    key_type: i8,
    keys: &[&str],
) -> Vec<(i16, String, i32)> {
    let request = FindCoordinatorRequest::default()
        .with_key_type(key_type)
        .with_coordinator_keys(keys.iter().map(|k| text(k)).collect());
    match raw.call(
        ApiKey::FindCoordinator,
        version,
        RequestKind::FindCoordinator(request),
    ) {
        ResponseKind::FindCoordinator(r) => r
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.error_code,
                    c.error_message
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    c.node_id.0,
                )
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn find_coordinator_v5_and_v6_find_groups_and_refuse_share_groups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    for version in 5..=6 {
        let groups = find_coordinators(&mut raw, version, 0, &["a", "b"]);
        assert_eq!(groups.len(), 2);
        for (error, _, node) in &groups {
            assert_eq!((*error, *node), (0, 0), "v{version}: {groups:?}");
        }
    }
    // Share groups (key type 2, KIP-932) do not exist here.
    let share = find_coordinators(&mut raw, 6, 2, &["share-group"]);
    assert_eq!(share[0].0, INVALID_REQUEST, "{share:?}");
    assert!(share[0].1.contains("share groups"), "{share:?}");
    assert_eq!(share[0].2, -1);
    // An unknown key type, in the batched and the single-key form.
    let unknown = find_coordinators(&mut raw, 6, 9, &["k"]);
    assert_eq!(unknown[0].0, INVALID_REQUEST, "{unknown:?}");
    let single = FindCoordinatorRequest::default()
        .with_key_type(2)
        .with_key(text("share-group"));
    match raw.call(
        ApiKey::FindCoordinator,
        3,
        RequestKind::FindCoordinator(single),
    ) {
        ResponseKind::FindCoordinator(r) => assert_eq!(r.error_code, INVALID_REQUEST, "{r:?}"),
        other => panic!("{other:?}"),
    }
    broker.stop();
}

#[test]
fn describe_cluster_v2_marks_brokers_unfenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    for include_fenced in [false, true] {
        let request = DescribeClusterRequest::default()
            .with_endpoint_type(1)
            .with_include_fenced_brokers(include_fenced);
        match raw.call(
            ApiKey::DescribeCluster,
            2,
            RequestKind::DescribeCluster(request),
        ) {
            ResponseKind::DescribeCluster(r) => {
                assert_eq!(r.error_code, 0, "{r:?}");
                assert_eq!(r.endpoint_type, 1);
                assert_eq!(r.brokers.len(), 1, "a single node has no fenced broker");
                assert!(!r.brokers[0].is_fenced);
                assert_eq!(r.brokers[0].port, i32::from(broker.addr.port()));
            }
            other => panic!("{other:?}"),
        }
    }
    // The controllers endpoint type is still refused, as before v2.
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(2)
        .with_include_fenced_brokers(true);
    match raw.call(
        ApiKey::DescribeCluster,
        2,
        RequestKind::DescribeCluster(request),
    ) {
        ResponseKind::DescribeCluster(r) => assert_ne!(r.error_code, 0, "{r:?}"),
        other => panic!("{other:?}"),
    }
    broker.stop();
}

/// The error of partition 0's reassignment to `replicas`.
fn reassign(
    raw: &mut Raw,
    version: i16,
    allow_factor_change: bool,
    replicas: &[i32],
) -> (i16, String) {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(allow_factor_change)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(name("moved"))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(replicas.iter().map(|&b| BrokerId(b)).collect())),
                ]),
        ]);
    match raw.call(
        ApiKey::AlterPartitionReassignments,
        version,
        RequestKind::AlterPartitionReassignments(request),
    ) {
        ResponseKind::AlterPartitionReassignments(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            let p = &r.responses[0].partitions[0];
            (
                p.error_code,
                p.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reassignment_v1_may_forbid_changing_the_replication_factor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create_topic(&mut raw, "moved", 1);
    // Node 0 is the only broker: [0] keeps the factor, [0, 5] changes it.
    let (error, message) = reassign(&mut raw, 1, false, &[0, 5]);
    assert_eq!(error, INVALID_REPLICATION_FACTOR, "{message}");
    assert!(message.contains("from 1 to 2"), "{message}");
    // Allowed (v1's default, and always in v0): the list itself is judged.
    assert_eq!(
        reassign(&mut raw, 1, true, &[0, 5]).0,
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        reassign(&mut raw, 0, true, &[0, 5]).0,
        INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(reassign(&mut raw, 1, false, &[0]), (0, String::new()));
    broker.stop();
}

/// Bytes of the segment files in a partition's directory.
fn segment_bytes(dir: &std::path::Path) -> i64 {
    std::fs::read_dir(dir)
        .expect("a partition directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(p).expect("metadata").len() as i64)
        .sum()
}

fn describe_log_dirs(
    raw: &mut Raw,
    version: i16,
    topics: Option<Vec<DescribableLogDirTopic>>,
) -> kafka_protocol::messages::DescribeLogDirsResponse {
    let request = DescribeLogDirsRequest::default().with_topics(topics);
    match raw.call(
        ApiKey::DescribeLogDirs,
        version,
        RequestKind::DescribeLogDirs(request),
    ) {
        ResponseKind::DescribeLogDirs(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn describe_log_dirs_lists_the_data_directory_with_partition_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create_topic(&mut raw, "sized", 2);
    produce(&mut raw, "sized", 0, 20);

    for version in 1..=4 {
        let r = describe_log_dirs(&mut raw, version, None);
        assert_eq!(r.error_code, 0);
        assert_eq!(r.results.len(), 1, "one log directory");
        let result = &r.results[0];
        assert_eq!(result.error_code, 0);
        assert_eq!(
            result.log_dir.as_str(),
            std::path::absolute(dir.path())
                .expect("absolute")
                .display()
                .to_string()
        );
        let topic = result
            .topics
            .iter()
            .find(|t| t.name.as_str() == "sized")
            .expect("the topic is listed");
        let mut partitions: Vec<_> = topic.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        assert_eq!(partitions.len(), 2);
        for p in &partitions {
            let on_disk = segment_bytes(&dir.path().join(format!("sized-{}", p.partition_index)));
            assert_eq!(p.partition_size, on_disk, "v{version}: {p:?}");
            assert_eq!((p.offset_lag, p.is_future_key), (0, false));
        }
        assert!(
            partitions[0].partition_size > 2000,
            "20 records of 100 bytes"
        );
        if version >= 4 {
            assert!(result.usable_bytes > 0, "{result:?}");
            assert!(result.total_bytes >= result.usable_bytes, "{result:?}");
        } else {
            assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1));
        }
    }
    // Named partitions only; those not hosted here (7, an unknown topic)
    // are left out.
    let r = describe_log_dirs(
        &mut raw,
        4,
        Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(name("sized"))
                .with_partitions(vec![1, 7, 1]),
            DescribableLogDirTopic::default()
                .with_topic(name("unknown"))
                .with_partitions(vec![0]),
        ]),
    );
    let topics = &r.results[0].topics;
    assert_eq!(topics.len(), 1, "{topics:?}");
    assert_eq!(topics[0].name.as_str(), "sized");
    let indexes: Vec<i32> = topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, [1]);
    broker.stop();
}

#[test]
fn describe_log_dirs_needs_describe_on_the_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        authorizer_class_name: Some(
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        ),
        ..BrokerConfig::ephemeral(dir.path())
    });
    let mut raw = Raw::connect(broker.addr);
    let r = describe_log_dirs(&mut raw, 4, None);
    assert_eq!(r.error_code, CLUSTER_AUTHORIZATION_FAILED, "{r:?}");
    assert!(r.results.is_empty());
    // v1 has no error code on the wire: only the empty answer.
    let r = describe_log_dirs(&mut raw, 1, None);
    assert!(r.results.is_empty(), "{r:?}");
    broker.stop();
}

#[test]
fn alter_replica_log_dirs_has_one_directory_to_offer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create_topic(&mut raw, "placed", 2);
    let ours = format!("{}/", dir.path().display());
    let request = AlterReplicaLogDirsRequest::default().with_dirs(vec![
        AlterReplicaLogDir::default()
            .with_path(text(&ours))
            .with_topics(vec![
                AlterReplicaLogDirTopic::default()
                    .with_name(name("placed"))
                    .with_partitions(vec![0, 9]),
            ]),
        AlterReplicaLogDir::default()
            .with_path(text("/no/such/log/dir"))
            .with_topics(vec![
                AlterReplicaLogDirTopic::default()
                    .with_name(name("placed"))
                    .with_partitions(vec![1]),
            ]),
    ]);
    for version in 1..=2 {
        match raw.call(
            ApiKey::AlterReplicaLogDirs,
            version,
            RequestKind::AlterReplicaLogDirs(request.clone()),
        ) {
            ResponseKind::AlterReplicaLogDirs(r) => {
                assert_eq!(r.results.len(), 1, "one topic: {r:?}");
                let errors: Vec<(i32, i16)> = r.results[0]
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect();
                assert_eq!(
                    errors,
                    [(0, 0), (9, REPLICA_NOT_AVAILABLE), (1, LOG_DIR_NOT_FOUND)],
                    "v{version}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    broker.stop();
}
