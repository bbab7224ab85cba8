//! The partition side of transactions over the wire: a transactional
//! batch is accepted from a producer id, and until its transaction is
//! decided read_committed readers (Fetch and ListOffsets with
//! isolation_level 1) stop before it while read_uncommitted ones see it;
//! every Fetch answers the last stable offset; the open transaction
//! survives a restart; DescribeProducers shows it. (Markers come from the transaction coordinator's
//! WriteTxnMarkers; their effect on a partition is covered by the
//! `partition::txn` unit tests.)

mod common;

use bytes::{Bytes, BytesMut};
use common::wire::{create, now_ms, text};
use common::{Raw, TestBroker};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// A batch of `count` records of producer `id` (epoch 0) from sequence
/// `first`, transactional or not.
fn batch(id: i64, first: i32, count: i32, transactional: bool) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: first + i,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::from(format!("r{}", first + i))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    buf.freeze()
}

fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(text(topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, RequestKind::Produce(request)) {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("{other:?}"),
    }
}

fn producer_id(raw: &mut Raw) -> i64 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match raw.call(ApiKey::InitProducerId, 4, request.into()) {
        ResponseKind::InitProducerId(r) => {
            assert_eq!(r.error_code, 0);
            r.producer_id.0
        }
        other => panic!("{other:?}"),
    }
}

/// What a Fetch v11 of partition 0 from offset 0 answers: (high watermark,
/// last stable offset, aborted transactions, bytes of records).
fn fetch(raw: &mut Raw, topic: &str, isolation: i8) -> (i64, i64, Option<usize>, usize) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(text(topic)))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    match raw.call(ApiKey::Fetch, 11, request.into()) {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            (
                p.high_watermark,
                p.last_stable_offset,
                p.aborted_transactions.as_ref().map(Vec::len),
                p.records.as_ref().map_or(0, Bytes::len),
            )
        }
        other => panic!("{other:?}"),
    }
}

/// ListOffsets v5 latest (-1) of partition 0.
fn latest(raw: &mut Raw, topic: &str, isolation: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![
            list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    match raw.call(ApiKey::ListOffsets, 5, request.into()) {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            p.offset
        }
        other => panic!("{other:?}"),
    }
}

/// DescribeProducers of partition 0: (id, epoch, last sequence, open
/// transaction start).
fn describe_producers(raw: &mut Raw, topic: &str) -> Vec<(i64, i32, i32, i64)> {
    let request = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(TopicName(text(topic)))
            .with_partition_indexes(vec![0]),
    ]);
    match raw.call(ApiKey::DescribeProducers, 0, request.into()) {
        ResponseKind::DescribeProducers(r) => {
            let p = &r.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            p.active_producers
                .iter()
                .map(|s| {
                    assert!(s.last_timestamp > 0);
                    (
                        s.producer_id.0,
                        s.producer_epoch,
                        s.last_sequence,
                        s.current_txn_start_offset,
                    )
                })
                .collect()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_open_transaction_holds_read_committed_readers_back_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "txn", &[]);
    let plain = producer_id(&mut raw);
    let txn = producer_id(&mut raw);
    assert_eq!(produce(&mut raw, "txn", batch(plain, 0, 2, false)), (0, 0));
    // A transactional batch without a producer id is refused.
    assert_eq!(produce(&mut raw, "txn", batch(-1, -1, 1, true)).0, 87);
    assert_eq!(produce(&mut raw, "txn", batch(txn, 0, 3, true)), (0, 2));
    assert_eq!(produce(&mut raw, "txn", batch(plain, 2, 1, false)), (0, 5));
    let check = |raw: &mut Raw| {
        let (hw, lso, aborted, uncommitted_bytes) = fetch(raw, "txn", 0);
        assert_eq!((hw, lso, aborted), (6, 2, None));
        assert!(uncommitted_bytes > 0);
        let (hw, lso, aborted, committed_bytes) = fetch(raw, "txn", 1);
        assert_eq!((hw, lso, aborted), (6, 2, Some(0)));
        // Only the first batch, below the open transaction.
        assert!(committed_bytes > 0 && committed_bytes < uncommitted_bytes);
        assert_eq!(latest(raw, "txn", 0), 6);
        assert_eq!(latest(raw, "txn", 1), 2);
    };
    check(&mut raw);
    // The transaction's sequences continue as an idempotent producer's.
    assert_eq!(produce(&mut raw, "txn", batch(txn, 5, 1, true)).0, 45);
    assert_eq!(produce(&mut raw, "txn", batch(txn, 3, 1, true)), (0, 6));
    assert_eq!(fetch(&mut raw, "txn", 1).1, 2);
    // DescribeProducers: both producers, the transactional one with the
    // start of its open transaction.
    let mut producers = describe_producers(&mut raw, "txn");
    producers.sort_unstable();
    let mut expected = vec![(plain, 0, 2, -1), (txn, 0, 3, 2)];
    expected.sort_unstable();
    assert_eq!(producers, expected);
    drop(raw);
    broker.stop();
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let (hw, lso, _, _) = fetch(&mut raw, "txn", 1);
    assert_eq!((hw, lso), (7, 2));
    assert_eq!(latest(&mut raw, "txn", 1), 2);
    broker.stop();
}
