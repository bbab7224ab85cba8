//! ListOffsets v0, which Kafka 4 removed but Burrow 1.2 (Debian 12's) asks
//! end offsets with: advertised, and served in v0's layout (an array of
//! offsets per partition). Burrow itself runs against the server in
//! tests/interop (burrow_checks.bash). Also OffsetCommit v1, Sarama 1.22's
//! default commit (the Sarama suite in tests/interop runs Sarama itself).

mod common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{Raw, TestBroker, batch};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, GroupId, OffsetFetchRequest, ProduceRequest, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// A partition asked for: `(index, timestamp, max_num_offsets)`.
type Asked = (i32, i64, i32);

/// A ListOffsets v0 frame: `(topic, partitions)`.
fn list_offsets_v0(correlation_id: i32, topics: &[(&str, &[Asked])]) -> Vec<u8> {
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(ApiKey::ListOffsets as i16);
    f.put_i16(0);
    f.put_i32(correlation_id);
    f.put_i16(6);
    f.put_slice(b"burrow");
    f.put_i32(-1); // replica id: a consumer
    f.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        f.put_i16(name.len() as i16);
        f.put_slice(name.as_bytes());
        f.put_i32(partitions.len() as i32);
        for &(index, timestamp, max) in partitions.iter() {
            f.put_i32(index);
            f.put_i64(timestamp);
            f.put_i32(max);
        }
    }
    let length = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&length.to_be_bytes());
    f.to_vec()
}

/// A v0 answer: per topic, per partition `(index, error, offsets)`.
type Answer = Vec<(String, Vec<(i32, i16, Vec<i64>)>)>;

fn parse_answer(mut b: Bytes) -> Answer {
    let mut topics = Vec::new();
    for _ in 0..b.get_i32() {
        let len = b.get_i16() as usize;
        let name = String::from_utf8(b.split_to(len).to_vec()).expect("utf-8");
        let mut partitions = Vec::new();
        for _ in 0..b.get_i32() {
            let index = b.get_i32();
            let error = b.get_i16();
            let offsets = (0..b.get_i32()).map(|_| b.get_i64()).collect();
            partitions.push((index, error, offsets));
        }
        topics.push((name, partitions));
    }
    assert!(
        b.is_empty(),
        "nothing after the topics (v0 has no throttle time)"
    );
    topics
}

#[test]
fn list_offsets_v0_is_advertised_and_answers_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    match raw.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("t"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ),
    ) {
        ResponseKind::ApiVersions(r) => {
            let list_offsets = r
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ListOffsets as i16)
                .expect("ListOffsets advertised");
            assert_eq!(list_offsets.min_version, 0);
            // And the other old versions Debian 12's clients send.
            let min = |key: ApiKey| {
                r.api_keys
                    .iter()
                    .find(|k| k.api_key == key as i16)
                    .map(|k| k.min_version)
            };
            assert_eq!(min(ApiKey::OffsetCommit), Some(1), "Sarama 1.22 commits");
            assert_eq!(
                min(ApiKey::DescribeConfigs),
                Some(0),
                "Sarama 1.22 ListTopics"
            );
        }
        other => panic!("{other:?}"),
    }
    // Five records on partition 0 of a new topic.
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("lag")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(5, 10, 0).into())),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, RequestKind::Produce(produce)) {
        ResponseKind::Produce(r) => assert_eq!(r.responses[0].partition_responses[0].error_code, 0),
        other => panic!("{other:?}"),
    }

    raw.send_bytes(&list_offsets_v0(
        41,
        &[
            ("lag", &[(0, -1, 1), (0, -2, 1), (0, -1, 0), (9, -1, 1)]),
            ("missing", &[(0, -1, 1)]),
        ],
    ));
    let mut answer = raw.read_frame().expect("an answer");
    assert_eq!(answer.get_i32(), 41);
    assert_eq!(
        parse_answer(answer),
        vec![
            (
                "lag".to_string(),
                vec![
                    (0, 0, vec![5]), // latest: the end
                    (0, 0, vec![0]), // earliest
                    (0, 0, vec![]),  // max_num_offsets 0
                    (9, 3, vec![]),  // UNKNOWN_TOPIC_OR_PARTITION
                ]
            ),
            ("missing".to_string(), vec![(0, 3, vec![])]),
        ]
    );

    // A count larger than the frame is refused, and the connection closed.
    let mut hostile = list_offsets_v0(42, &[]);
    hostile.truncate(hostile.len() - 4);
    hostile.extend_from_slice(&i32::MAX.to_be_bytes());
    raw.send_bytes(&hostile);
    assert!(
        raw.is_closed(),
        "a malformed v0 request closes the connection"
    );
    // The broker serves on.
    let mut again = Raw::connect(broker.addr);
    again.send_bytes(&list_offsets_v0(43, &[("lag", &[(0, -1, 1)])]));
    let mut answer = again.read_frame().expect("an answer");
    assert_eq!(answer.get_i32(), 43);
    assert_eq!(
        parse_answer(answer),
        vec![("lag".to_string(), vec![(0, 0, vec![5])])]
    );
    broker.stop();
}

/// Sarama 1.22's default commit: OffsetCommit v1 (a commit timestamp per
/// partition, no retention time), answered in v1's (= v2's) layout, and the
/// offset is committed.
#[test]
fn offset_commit_v1_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("commits")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(5, 10, 0).into())),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, RequestKind::Produce(produce)) {
        ResponseKind::Produce(r) => assert_eq!(r.responses[0].partition_responses[0].error_code, 0),
        other => panic!("{other:?}"),
    }
    let mut f = BytesMut::new();
    f.put_i32(0);
    f.put_i16(ApiKey::OffsetCommit as i16);
    f.put_i16(1);
    f.put_i32(51);
    f.put_i16(-1); // null client id
    f.put_i16(6);
    f.put_slice(b"sarama");
    f.put_i32(-1); // generation: a commit outside the group protocol
    f.put_i16(0); // member id ""
    f.put_i32(1);
    f.put_i16(7);
    f.put_slice(b"commits");
    f.put_i32(1);
    f.put_i32(0);
    f.put_i64(3);
    f.put_i64(-1); // commit timestamp
    f.put_i16(-1); // null metadata
    let length = (f.len() - 4) as i32;
    f[..4].copy_from_slice(&length.to_be_bytes());
    raw.send_bytes(&f);
    let mut answer = raw.read_frame().expect("an answer");
    assert_eq!(answer.get_i32(), 51);
    assert_eq!(answer.get_i32(), 1, "one topic");
    let len = answer.get_i16() as usize;
    assert_eq!(&answer.split_to(len)[..], b"commits");
    assert_eq!(answer.get_i32(), 1, "one partition");
    assert_eq!(
        (answer.get_i32(), answer.get_i16()),
        (0, 0),
        "partition 0 committed"
    );
    assert!(answer.is_empty(), "v1 has no throttle time");

    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("sarama")))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("commits")))
                .with_partition_indexes(vec![0]),
        ]));
    match raw.call(ApiKey::OffsetFetch, 1, RequestKind::OffsetFetch(fetch)) {
        ResponseKind::OffsetFetch(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.error_code, p.committed_offset), (0, 3));
        }
        other => panic!("{other:?}"),
    }
    broker.stop();
}
