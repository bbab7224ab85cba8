//! Protocol-level tests over raw sockets: bad input never takes the broker
//! down, errors come back as Kafka codes, long polls wake on append.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker, batch, first_base_offset};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, CreateTopicsRequest, FetchRequest, ListOffsetsRequest,
    MetadataRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A new client can still negotiate and fetch metadata.
fn assert_serves(broker: &TestBroker) {
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
            assert_eq!(r.error_code, 0);
            assert!(
                r.api_keys
                    .iter()
                    .any(|k| k.api_key == 0 && k.max_version == 13)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    match raw.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) {
        ResponseKind::Metadata(r) => assert_eq!(r.brokers.len(), 1),
        other => panic!("unexpected {other:?}"),
    }
}

fn produce(raw: &mut Raw, topic: &str, partition: i32, records: Vec<u8>) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, RequestKind::Produce(request)) {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            if p.error_code != 0 {
                eprintln!("produce error {}: {:?}", p.error_code, p.error_message);
            }
            (p.error_code, p.base_offset)
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(name(topic))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    )
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        (
            "size above socket.request.max.bytes",
            (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("too short for a header", vec![0, 0, 0, 3, 0, 3, 0]),
        (
            "unknown api key",
            vec![0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
        ),
        (
            "unsupported Metadata version",
            vec![0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0xff, 0xff],
        ),
        (
            "garbage body",
            vec![0, 0, 0, 12, 0, 3, 0, 1, 0, 0, 0, 1, 0, 5, b'a', b'b'],
        ),
        (
            "array count far beyond the frame",
            vec![
                0, 0, 0, 14, 0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
            ],
        ),
    ];
    for (what, bytes) in cases {
        let mut raw = Raw::connect(broker.addr);
        raw.send_bytes(&bytes);
        assert!(raw.is_closed(), "{what}: connection should be closed");
        assert_serves(&broker);
    }
    // A frame cut short by the client closing its side.
    let mut raw = Raw::connect(broker.addr);
    raw.send_bytes(&[0, 0, 0, 100, 0, 3, 0, 1]);
    raw.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    assert!(raw.is_closed(), "truncated frame");
    assert_serves(&broker);
    broker.stop();
}

#[test]
fn unsupported_api_versions_gets_a_v0_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    // ApiVersions v99: header v2 would not even decode; the broker must
    // answer from the first 8 bytes.
    raw.send_bytes(&[0, 0, 0, 12, 0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff, 0, 0]);
    match raw.read_response(ApiKey::ApiVersions, 0, 42) {
        ResponseKind::ApiVersions(r) => {
            assert_eq!(r.error_code, 35);
            assert!(
                r.api_keys
                    .iter()
                    .any(|k| k.api_key == 18 && k.max_version == 4)
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_serves(&broker);
    broker.stop();
}

#[test]
fn produce_errors_are_kafka_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let created = raw.call(
        ApiKey::CreateTopics,
        5,
        RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(name("small"))
                        .with_num_partitions(1)
                        .with_replication_factor(1)
                        .with_configs(vec![
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_static_str("max.message.bytes"))
                                .with_value(Some(StrBytes::from_static_str("1000"))),
                        ]),
                ]),
        ),
    );
    match created {
        ResponseKind::CreateTopics(r) => assert_eq!(r.topics[0].error_code, 0),
        other => panic!("unexpected {other:?}"),
    }
    // Good batch first, so later offsets are known.
    assert_eq!(produce(&mut raw, "small", 0, batch(3, 10, 1_000)), (0, 0));
    // Bad CRC: flip a byte of the last record's value.
    let mut bad = batch(3, 10, 1_000);
    let last = bad.len() - 2;
    bad[last] ^= 0xff;
    assert_eq!(produce(&mut raw, "small", 0, bad).0, 2, "CORRUPT_MESSAGE");
    assert_eq!(
        produce(&mut raw, "small", 0, batch(1, 2_000, 1_000)).0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        produce(&mut raw, "small", 7, batch(1, 1, 1_000)).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut raw, "bad/name", 0, batch(1, 1, 1_000)).0,
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    // A control batch as a client would send it: CRC right (a wrong one is
    // CORRUPT_MESSAGE before anything else is looked at).
    let mut control = batch(1, 1, 1_000);
    control[22] |= 0x20; // attributes, low byte: control bit
    let crc = crc32c::crc32c(&control[21..]);
    control[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        produce(&mut raw, "small", 0, control).0,
        87,
        "INVALID_RECORD"
    );
    // The connection survived all of that, and offsets went on from 3.
    assert_eq!(produce(&mut raw, "small", 0, batch(2, 10, 1_000)), (0, 3));
    match raw.call(ApiKey::Fetch, 12, fetch_request("small", 99, 0)) {
        ResponseKind::Fetch(r) => assert_eq!(r.responses[0].partitions[0].error_code, 1),
        other => panic!("unexpected {other:?}"),
    }
    assert_serves(&broker);
    broker.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let mut sent = Vec::new();
    let mut bytes = Vec::new();
    for i in 0..20 {
        let (api, version, body) = if i % 2 == 0 {
            (
                ApiKey::Metadata,
                9,
                RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(name(&format!("p{i}")))),
                ]))),
            )
        } else {
            (
                ApiKey::ApiVersions,
                0,
                RequestKind::ApiVersions(ApiVersionsRequest::default()),
            )
        };
        let (id, frame) = raw.frame(api, version, &body);
        sent.push((api, version, id));
        bytes.extend_from_slice(&frame);
    }
    raw.send_bytes(&bytes);
    for (api, version, id) in sent {
        raw.read_response(api, version, id); // asserts the correlation id
    }
    broker.stop();
}

#[test]
fn long_poll_returns_when_data_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut producer = Raw::connect(broker.addr);
    assert_eq!(
        produce(&mut producer, "poll", 0, batch(1, 10, 1_000)),
        (0, 0)
    );

    // Nothing past offset 1: a 300 ms poll times out empty.
    let mut consumer = Raw::connect(broker.addr);
    let started = Instant::now();
    match consumer.call(ApiKey::Fetch, 12, fetch_request("poll", 1, 300)) {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
        }
        other => panic!("unexpected {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "waited {waited:?}");

    // A 20 s poll answered as soon as a batch is appended 300 ms later.
    let (id, frame) = consumer.frame(ApiKey::Fetch, 12, &fetch_request("poll", 1, 20_000));
    let started = Instant::now();
    consumer.send_bytes(&frame);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        produce(&mut producer, "poll", 0, batch(2, 10, 1_000)),
        (0, 1)
    );
    match consumer.read_response(ApiKey::Fetch, 12, id) {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.high_watermark, 3);
            assert_eq!(p.records.as_ref().and_then(first_base_offset), Some(1));
        }
        other => panic!("unexpected {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "long poll took {waited:?}"
    );
    broker.stop();
}

#[test]
fn list_offsets_by_time_and_specials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    // Offsets 0..10 at timestamps 1000..1010, then 10..20 at 5000..5010.
    assert_eq!(produce(&mut raw, "times", 0, batch(10, 5, 1_000)), (0, 0));
    assert_eq!(produce(&mut raw, "times", 0, batch(10, 5, 5_000)), (0, 10));
    let query = |raw: &mut Raw, timestamp: i64| -> (i64, i64) {
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("times"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        match raw.call(ApiKey::ListOffsets, 7, RequestKind::ListOffsets(request)) {
            ResponseKind::ListOffsets(r) => {
                let p = &r.topics[0].partitions[0];
                assert_eq!(p.error_code, 0);
                (p.offset, p.timestamp)
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(query(&mut raw, -2).0, 0, "earliest");
    assert_eq!(query(&mut raw, -1).0, 20, "latest");
    assert_eq!(query(&mut raw, -3), (19, 5_009), "max timestamp");
    assert_eq!(
        query(&mut raw, 1_005).0,
        5,
        "by time inside the first batch"
    );
    assert_eq!(query(&mut raw, 2_000).0, 10, "by time between batches");
    assert_eq!(query(&mut raw, 9_999).0, -1, "after the last record");
    broker.stop();
}

#[test]
fn every_codec_is_stored_as_sent() {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let codecs = [
        (Compression::None, 0),
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ];
    for (compression, id) in codecs {
        let topic = format!("codec-{id}");
        let records: Vec<Record> = (0..200)
            .map(|i| {
                let mut headers = IndexMap::new();
                headers.insert(
                    StrBytes::from_static_str("h"),
                    Some(Bytes::from(format!("{i}"))),
                );
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: -1,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i,
                    sequence: i as i32,
                    timestamp: 1_000 + i,
                    key: Some(Bytes::from(format!("key-{i}"))),
                    value: Some(Bytes::from("value ".repeat(i as usize % 20 + 1))),
                    headers,
                }
            })
            .collect();
        let mut sent = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut sent,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        assert_eq!(
            produce(&mut raw, &topic, 0, sent.to_vec()),
            (0, 0),
            "{topic}"
        );
        let fetched = match raw.call(ApiKey::Fetch, 12, fetch_request(&topic, 0, 0)) {
            ResponseKind::Fetch(r) => r.responses[0].partitions[0]
                .records
                .clone()
                .expect("records"),
            other => panic!("unexpected {other:?}"),
        };
        // Stored as sent: same bytes (offsets were already 0-based), codec kept.
        assert_eq!(fetched.len(), sent.len(), "{topic}");
        assert_eq!(i16::from_be_bytes([fetched[21], fetched[22]]) & 7, id);
        let mut buf = fetched.clone();
        let decoded = RecordBatchDecoder::decode_all(&mut buf).expect("decode");
        let got: Vec<Record> = decoded.into_iter().flat_map(|set| set.records).collect();
        assert_eq!(got.len(), records.len());
        for (a, b) in got.iter().zip(&records) {
            assert_eq!(
                (a.offset, &a.key, &a.value, &a.headers, a.timestamp),
                (b.offset, &b.key, &b.value, &b.headers, b.timestamp)
            );
        }
    }
    broker.stop();
}
