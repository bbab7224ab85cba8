//! Produce and Fetch in every advertised version (Produce v3–13, Fetch
//! v4–18; Produce v0–2 are refused, `tests/legacy_produce.rs`), over raw
//! sockets, checked against the Kafka 4.1 schemas of `kafka-protocol` and
//! against what Apache Kafka answers at that version:
//!
//! - records come back as sent: headers (a null value, binary bytes, an
//!   empty key), null and empty keys, null values, CreateTime timestamps,
//!   offsets; on a LogAppendTime topic the batch carries the LogAppendTime
//!   bit and the broker's clock, which Produce answers (`log_append_time_ms`);
//! - the error codes Kafka gives (its `KafkaApis`, `ReplicaManager`,
//!   `UnifiedLog` and `LogValidator`), with the fields Kafka fills in on
//!   a refusal (`base_offset` -1, `log_start_offset`, KIP-467's
//!   `record_errors` and `error_message` from Produce v8), and no code a
//!   version's schema does not know (no UNKNOWN_TOPIC_ID below v13);
//! - the partition fields of a Fetch answer: `high_watermark`,
//!   `last_stable_offset`, `log_start_offset`, `preferred_read_replica`,
//!   `aborted_transactions` (null unless READ_COMMITTED, as in Kafka).

mod common;

use std::ops::RangeInclusive;
use std::path::Path;

use bytes::Bytes;
use common::wire::{Topic, create, decode, encode, now_ms, text};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError::{self, *};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, ProduceRequest, ResponseKind, TopicName,
};
use kafka_protocol::records::{Record, TimestampType};
use uuid::Uuid;

/// A broker that does not auto-create topics: Kafka never creates one on
/// Produce or Fetch, so an unknown topic is answered as such.
fn start(dir: &Path) -> TestBroker {
    let mut config = BrokerConfig::ephemeral(dir);
    config.auto_create_topics = false;
    TestBroker::start_with(config)
}

/// (Produce versions served, Fetch versions advertised), from ApiVersions.
fn versions(raw: &mut Raw) -> (RangeInclusive<i16>, RangeInclusive<i16>) {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(text("schemas"))
        .with_client_software_version(text("1"));
    let ResponseKind::ApiVersions(r) = raw.call(ApiKey::ApiVersions, 3, request.into()) else {
        panic!("not an ApiVersions answer");
    };
    let range = |api: ApiKey| {
        let k = r.api_keys.iter().find(|k| k.api_key == api as i16);
        let k = k.unwrap_or_else(|| panic!("{api:?} advertised"));
        k.min_version..=k.max_version
    };
    let (produce, fetch) = (range(ApiKey::Produce), range(ApiKey::Fetch));
    // What this file was written for; a new version needs its checks here.
    assert_eq!((produce.clone(), fetch.clone()), (0..=13, 4..=18));
    (3..=*produce.end(), fetch)
}

/// `count` records from offset 0: headers with a null value, binary bytes
/// and an empty key; keys null, binary or empty; every third value null.
fn records(first_timestamp: i64, count: i64) -> Vec<Record> {
    (0..count)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(text("trace-id"), Some(Bytes::from(format!("t-{i}"))));
            headers.insert(text("null"), None);
            headers.insert(
                text("binary"),
                Some(Bytes::from_static(&[0, 0xff, 0x80, b'\n'])),
            );
            headers.insert(text(""), Some(Bytes::new()));
            headers.insert(text("ünï"), Some(Bytes::from_static(b"\xc3\x28")));
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // One batch needs offset - sequence constant; its base
                // sequence is then -1, a producer without idempotence's.
                sequence: i as i32 - 1,
                timestamp: first_timestamp + i * 17,
                key: match i % 3 {
                    0 => None,
                    1 => Some(Bytes::from_static(&[0, 1, 0xfe])),
                    _ => Some(Bytes::new()),
                },
                value: (i % 3 != 2).then(|| Bytes::from(format!("value {i}"))),
                headers,
            }
        })
        .collect()
}

/// The first version of `api` whose schema or notes admit `code` (0: all).
fn first_version_with(api: ApiKey, code: i16) -> i16 {
    match (api, ResponseError::try_from_code(code)) {
        (_, Some(UnknownTopicId)) => 13,
        (ApiKey::Fetch, Some(FencedLeaderEpoch | UnknownLeaderEpoch)) => 9,
        (ApiKey::Fetch, Some(FetchSessionIdNotFound | InvalidFetchSessionEpoch)) => 7,
        (ApiKey::Fetch, Some(KafkaStorageError)) => 6,
        (ApiKey::Fetch, Some(OffsetMovedToTieredStorage)) => 14,
        (ApiKey::Produce, Some(KafkaStorageError)) => 4,
        (ApiKey::Produce, Some(TransactionAbortable)) => 11,
        _ => 0,
    }
}

fn assert_known_at(api: ApiKey, version: i16, code: i16) {
    assert!(
        version >= first_version_with(api, code),
        "{api:?} v{version} answered error {code}, which it does not know"
    );
}

/// One partition of one topic produced to, its answer checked against the
/// request (topic named or identified as sent, version's error codes).
fn produce(
    raw: &mut Raw,
    version: i16,
    acks: i16,
    topic: &Topic,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let data = TopicProduceData::default().with_partition_data(vec![
        PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(records)),
    ]);
    let data = if version >= 13 {
        data.with_topic_id(topic.id)
    } else {
        data.with_name(TopicName(text(&topic.name)))
    };
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![data]);
    let ResponseKind::Produce(r) = raw.call(ApiKey::Produce, version, request.into()) else {
        panic!("not a Produce answer");
    };
    let [answer] = &r.responses[..] else {
        panic!("Produce v{version}: {} topics answered", r.responses.len());
    };
    if version >= 13 {
        assert_eq!(answer.topic_id, topic.id, "Produce v{version}");
    } else {
        assert_eq!(answer.name.as_str(), topic.name, "Produce v{version}");
    }
    let [p] = &answer.partition_responses[..] else {
        panic!("Produce v{version}: not one partition answered");
    };
    assert_eq!(p.index, partition);
    assert_known_at(ApiKey::Produce, version, p.error_code);
    p.clone()
}

/// One partition fetched from `offset`, at leader epoch `epoch` (sent from
/// v9), with `isolation` (0 READ_UNCOMMITTED, 1 READ_COMMITTED).
fn fetch(
    raw: &mut Raw,
    version: i16,
    topic: &Topic,
    partition: i32,
    offset: i64,
    epoch: i32,
    isolation: i8,
) -> PartitionData {
    let p = FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    let p = if version >= 9 {
        p.with_current_leader_epoch(epoch)
    } else {
        p
    };
    let t = FetchTopic::default().with_partitions(vec![p]);
    let t = if version >= 13 {
        t.with_topic_id(topic.id)
    } else {
        t.with_topic(TopicName(text(&topic.name)))
    };
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![t]);
    let ResponseKind::Fetch(r) = raw.call(ApiKey::Fetch, version, request.into()) else {
        panic!("not a Fetch answer");
    };
    assert_eq!((r.error_code, r.session_id), (0, 0), "Fetch v{version}");
    let [answer] = &r.responses[..] else {
        panic!("Fetch v{version}: {} topics answered", r.responses.len());
    };
    if version >= 13 {
        assert_eq!(answer.topic_id, topic.id, "Fetch v{version}");
    } else {
        assert_eq!(answer.topic.as_str(), topic.name, "Fetch v{version}");
    }
    let [p] = &answer.partitions[..] else {
        panic!("Fetch v{version}: not one partition answered");
    };
    assert_eq!(p.partition_index, partition);
    assert_known_at(ApiKey::Fetch, version, p.error_code);
    p.clone()
}

/// A field the version has, or its default where the version has none
/// (what `kafka-protocol` decodes then).
fn since(version: i16, first: i16, value: i64, absent: i64) -> i64 {
    if version >= first { value } else { absent }
}

/// A stored append: `base_offset`, `log_append_time_ms` -1 (CreateTime),
/// the log start offset from v5, no record errors or message.
fn assert_appended(version: i16, answer: &PartitionProduceResponse, base_offset: i64) {
    assert_eq!(
        (
            answer.error_code,
            answer.base_offset,
            answer.log_start_offset
        ),
        (0, base_offset, since(version, 5, 0, -1)),
        "Produce v{version}: {:?}",
        answer.error_message
    );
    assert!(answer.record_errors.is_empty(), "Produce v{version}");
    assert_eq!(answer.error_message, None, "Produce v{version}");
}

/// A refused append as Kafka answers it: `code`, nothing stored, the log
/// start offset (v5+) only for a refusal of the records' contents
/// (`log_start`, -1 otherwise), KIP-467's fields from v8: the records at
/// fault, and a message where Kafka sends one (`message`; Fjord may
/// explain the others too).
fn assert_refused(
    version: i16,
    answer: &PartitionProduceResponse,
    code: ResponseError,
    log_start: i64,
    message: bool,
    record_errors: &[i32],
) {
    let what = format!("Produce v{version}, {code:?}: {answer:?}");
    assert_eq!(answer.error_code, code.code(), "{what}");
    assert_eq!(answer.base_offset, -1, "{what}");
    assert_eq!(answer.log_append_time_ms, -1, "{what}");
    assert_eq!(
        answer.log_start_offset,
        since(version, 5, log_start, -1),
        "{what}"
    );
    let indexes: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    let at_fault = if version >= 8 { record_errors } else { &[] };
    assert_eq!(indexes, at_fault, "{what}");
    assert!(
        answer
            .record_errors
            .iter()
            .all(|e| e.batch_index_error_message.is_some())
    );
    if message && version >= 8 {
        assert!(answer.error_message.is_some(), "{what}");
    }
    if version < 8 {
        assert_eq!(answer.error_message, None, "{what}");
    }
}

/// A fetch of `topic` answered with data: the partition fields of the
/// version (Kafka's for a topic without transactions).
fn assert_served(version: i16, data: &PartitionData, high_watermark: i64, isolation: i8) {
    let what = format!("Fetch v{version}, isolation {isolation}");
    assert_eq!(data.error_code, 0, "{what}");
    assert_eq!(data.high_watermark, high_watermark, "{what}");
    assert_eq!(data.last_stable_offset, high_watermark, "{what}");
    assert_eq!(data.log_start_offset, since(version, 5, 0, -1), "{what}");
    assert_eq!(data.preferred_read_replica.0, -1, "{what}");
    // Kafka lists aborted transactions only to READ_COMMITTED fetches.
    let aborted = (isolation == 1).then(Vec::new);
    assert_eq!(data.aborted_transactions, aborted, "{what}");
}

/// A fetch refused with `code`, with the fields Kafka sets then: offsets
/// -1; for a topic or partition it does not know, answered before reading
/// (`FetchResponse.partitionResponse`), null records and an empty list of
/// aborted transactions; for a refusal of the read itself
/// (`ReplicaManager.createLogReadResult`), empty records and a null list.
fn assert_fetch_refused(version: i16, data: &PartitionData, code: ResponseError) {
    let what = format!("Fetch v{version}, {code:?}: {data:?}");
    assert_eq!(data.error_code, code.code(), "{what}");
    assert_eq!(
        (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset
        ),
        (-1, -1, -1),
        "{what}"
    );
    assert_eq!(data.preferred_read_replica.0, -1, "{what}");
    let before_reading = matches!(code, UnknownTopicOrPartition | UnknownTopicId);
    let aborted = before_reading.then(Vec::new);
    assert_eq!(data.aborted_transactions, aborted, "{what}");
    let records = (!before_reading).then(Bytes::new);
    assert_eq!(data.records, records, "{what}");
}

fn same_record(got: &Record, sent: &Record) -> bool {
    (got.offset, &got.key, &got.value, &got.headers)
        == (sent.offset, &sent.key, &sent.value, &sent.headers)
}

#[test]
fn records_headers_and_timestamps_come_back_in_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let (produce_versions, fetch_versions) = versions(&mut raw);
    let create_time = create(&mut raw, "create-time", &[]);
    let log_append = [("message.timestamp.type", "LogAppendTime")];
    let append_time = create(&mut raw, "append-time", &log_append);

    // What each topic holds: records with their offsets; on append-time,
    // each batch's base offset and the time the broker answered.
    let mut sent: Vec<Record> = Vec::new();
    let mut stamped: Vec<Record> = Vec::new();
    let mut stamps: Vec<(i64, i64)> = Vec::new();
    for version in produce_versions {
        let first_timestamp = now_ms() - 60_000 + i64::from(version) * 1000;
        let batch = records(first_timestamp, 3);
        let answer = produce(&mut raw, version, -1, &create_time, 0, encode(&batch));
        assert_appended(version, &answer, sent.len() as i64);
        assert_eq!(answer.log_append_time_ms, -1, "Produce v{version}");
        let offsets = (answer.base_offset..).zip(batch.iter().cloned());
        sent.extend(offsets.map(|(offset, r)| Record { offset, ..r }));

        let before = now_ms();
        let answer = produce(&mut raw, version, 1, &append_time, 0, encode(&batch));
        let after = now_ms();
        assert_appended(version, &answer, stamped.len() as i64);
        let stamp = answer.log_append_time_ms;
        assert!(
            (before..=after).contains(&stamp),
            "Produce v{version}: {stamp}"
        );
        stamps.push((answer.base_offset, stamp));
        let offsets = (answer.base_offset..).zip(batch);
        stamped.extend(offsets.map(|(offset, r)| Record { offset, ..r }));
    }

    let end = sent.len() as i64;
    for version in fetch_versions {
        for isolation in [0, 1] {
            let data = fetch(&mut raw, version, &create_time, 0, 0, -1, isolation);
            assert_served(version, &data, end, isolation);
            let (got, headers) = decode(data.records.as_ref().expect("records"));
            assert_eq!(got.len(), sent.len(), "Fetch v{version}");
            for (got, sent) in got.iter().zip(&sent) {
                assert!(
                    same_record(got, sent),
                    "Fetch v{version}: {got:?}, sent {sent:?}"
                );
                assert_eq!(got.timestamp, sent.timestamp, "Fetch v{version}");
                assert!(matches!(got.timestamp_type, TimestampType::Creation));
            }
            for (&(attributes, max_timestamp), batch) in headers.iter().zip(sent.chunks(3)) {
                assert_eq!(attributes & 0x08, 0, "Fetch v{version}: CreateTime");
                assert_eq!(max_timestamp, batch[2].timestamp, "Fetch v{version}");
            }
        }
        // From the middle of the log: the batch holding the offset on.
        let data = fetch(&mut raw, version, &create_time, 0, 4, -1, 0);
        assert_served(version, &data, end, 0);
        let (got, _) = decode(data.records.as_ref().expect("records"));
        assert_eq!(got.first().map(|r| r.offset), Some(3), "Fetch v{version}");

        let data = fetch(&mut raw, version, &append_time, 0, 0, -1, 0);
        assert_served(version, &data, stamped.len() as i64, 0);
        let (got, headers) = decode(data.records.as_ref().expect("records"));
        assert_eq!(got.len(), stamped.len(), "Fetch v{version}");
        for (got, sent) in got.iter().zip(&stamped) {
            assert!(
                same_record(got, sent),
                "Fetch v{version}: {got:?}, sent {sent:?}"
            );
            assert!(matches!(got.timestamp_type, TimestampType::LogAppend));
        }
        // Kafka's LogValidator: the LogAppendTime bit, and the broker's
        // clock as the batch's max timestamp (every record's timestamp).
        let expected: Vec<(i16, i64)> = stamps.iter().map(|&(_, t)| (0x08, t)).collect();
        let got: Vec<(i16, i64)> = headers.iter().map(|&(a, t)| (a & 0x08, t)).collect();
        assert_eq!(got, expected, "Fetch v{version}");
    }
    broker.stop();
}

#[test]
fn errors_are_kafkas_and_known_to_each_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let (produce_versions, fetch_versions) = versions(&mut raw);
    let strict = create(
        &mut raw,
        "strict",
        &[("message.timestamp.after.max.ms", "3600000")],
    );
    let small = create(&mut raw, "small", &[("max.message.bytes", "2048")]);
    let unknown = Topic {
        name: "no-such-topic".to_string(),
        id: Uuid::from_u128(0x5c4e_3a00_0000_4000_8000_0000_0000_0023),
    };
    let now = now_ms();
    let good = encode(&records(now, 3));
    assert_appended(13, &produce(&mut raw, 13, -1, &strict, 0, good.clone()), 0);

    for v in produce_versions {
        let unknown_topic = if v >= 13 {
            UnknownTopicId
        } else {
            UnknownTopicOrPartition
        };
        let answer = produce(&mut raw, v, -1, &unknown, 0, good.clone());
        assert_refused(v, &answer, unknown_topic, -1, false, &[]);
        // Kafka looks the topic up before it looks at acks.
        let answer = produce(&mut raw, v, 2, &unknown, 0, good.clone());
        assert_refused(v, &answer, unknown_topic, -1, false, &[]);
        let answer = produce(&mut raw, v, -1, &strict, 7, good.clone());
        assert_refused(v, &answer, UnknownTopicOrPartition, -1, false, &[]);
        let answer = produce(&mut raw, v, 2, &strict, 0, good.clone());
        assert_refused(v, &answer, InvalidRequiredAcks, -1, false, &[]);

        // Record 1 of 3 two hours ahead: Kafka names it (KIP-467) and
        // answers the log start offset and a message.
        let mut ahead = records(now, 3);
        ahead[1].timestamp = now_ms() + 2 * 3_600_000;
        let answer = produce(&mut raw, v, -1, &strict, 0, encode(&ahead));
        assert_refused(v, &answer, InvalidTimestamp, 0, true, &[1]);

        // One byte of a record flipped: the CRC no longer matches.
        let mut corrupt = good.to_vec();
        *corrupt.last_mut().expect("a byte") ^= 0x5a;
        let answer = produce(&mut raw, v, -1, &strict, 0, corrupt.into());
        assert_refused(v, &answer, CorruptMessage, -1, false, &[]);

        let mut big = records(now, 1);
        big[0].value = Some(Bytes::from(vec![7u8; 4096]));
        let answer = produce(&mut raw, v, -1, &small, 0, encode(&big));
        assert_refused(v, &answer, MessageTooLarge, -1, false, &[]);

        // Kafka's ProduceRequest.validateRecords: at least one batch.
        let answer = produce(&mut raw, v, -1, &strict, 0, Bytes::new());
        assert_refused(v, &answer, InvalidRecord, -1, false, &[]);
    }

    for v in fetch_versions {
        let unknown_topic = if v >= 13 {
            UnknownTopicId
        } else {
            UnknownTopicOrPartition
        };
        let data = fetch(&mut raw, v, &unknown, 0, 0, -1, 0);
        assert_fetch_refused(v, &data, unknown_topic);
        let data = fetch(&mut raw, v, &strict, 3, 0, -1, 0);
        assert_fetch_refused(v, &data, UnknownTopicOrPartition);
        // Nothing refused above was stored.
        assert_served(v, &fetch(&mut raw, v, &strict, 0, 3, -1, 0), 3, 0);
        for offset in [4, 100, -1] {
            let data = fetch(&mut raw, v, &strict, 0, offset, -1, 0);
            assert_fetch_refused(v, &data, OffsetOutOfRange);
        }
        if v >= 9 {
            // The partition's epoch is 0: 1 is one this broker never had.
            let data = fetch(&mut raw, v, &strict, 0, 0, 1, 0);
            assert_fetch_refused(v, &data, UnknownLeaderEpoch);
        }
    }
    broker.stop();
}

/// A segment that cannot be read (cut short under the broker) is
/// KAFKA_STORAGE_ERROR from Fetch v6, NOT_LEADER_OR_FOLLOWER before, which
/// v4–5 clients retry after a metadata refresh (Kafka's
/// `maybeDownConvertStorageError`).
#[test]
fn a_storage_error_is_known_to_each_fetch_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let (_, fetch_versions) = versions(&mut raw);
    let topic = create(&mut raw, "damaged", &[]);
    let good = encode(&records(now_ms(), 3));
    assert_appended(9, &produce(&mut raw, 9, -1, &topic, 0, good), 0);
    let segment = dir
        .path()
        .join("damaged-0")
        .join("00000000000000000000.log");
    let file = std::fs::OpenOptions::new().write(true).open(&segment);
    file.expect("the segment").set_len(20).expect("cut short");
    for v in fetch_versions {
        let data = fetch(&mut raw, v, &topic, 0, 0, -1, 0);
        let code = if v >= 6 {
            KafkaStorageError
        } else {
            NotLeaderOrFollower
        };
        assert_fetch_refused(v, &data, code);
    }
    // No clean shutdown to check: the log it would checkpoint is damaged.
    drop(broker);
}

/// A partition that has seen leader changes (epoch 4): a consumer naming
/// an older epoch is fenced, a newer one unknown (Kafka's
/// `Partition.checkCurrentLeaderEpoch`), from Fetch v9 which carries it.
#[test]
fn fetch_leader_epochs_are_checked_from_v9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let (_, fetch_versions) = versions(&mut raw);
    let topic = create(&mut raw, "epochs", &[]);
    let good = encode(&records(now_ms(), 3));
    assert_appended(9, &produce(&mut raw, 9, -1, &topic, 0, good), 0);
    broker.stop();
    // A single node keeps the epoch in the topic's file; a cluster bumps
    // it on each election (tests/cluster*). Epoch 4 as if after four.
    let file = dir.path().join("topics").join("epochs.yaml");
    let yaml = std::fs::read_to_string(&file).expect("topic file");
    assert!(yaml.contains("leader_epoch: 0"), "{yaml}");
    std::fs::write(&file, yaml.replace("leader_epoch: 0", "leader_epoch: 4")).expect("write");
    let broker = start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    for v in fetch_versions {
        for epoch in [-1, 4] {
            assert_served(v, &fetch(&mut raw, v, &topic, 0, 0, epoch, 0), 3, 0);
        }
        for (epoch, code) in [
            (3, FencedLeaderEpoch),
            (0, FencedLeaderEpoch),
            (5, UnknownLeaderEpoch),
        ] {
            let data = fetch(&mut raw, v, &topic, 0, 0, epoch, 0);
            if v >= 9 {
                assert_fetch_refused(v, &data, code);
            } else {
                // Not on the wire below v9: nothing to check.
                assert_served(v, &data, 3, 0);
            }
        }
    }
    broker.stop();
}
