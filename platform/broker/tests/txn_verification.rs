//! KIP-890 part 1 over the wire: a partition leader verifies the first
//! transactional batch of a transaction on a partition with the
//! transaction coordinator. A batch for a partition never added to the
//! producer's open transaction (or after its transaction ended) is
//! INVALID_TXN_STATE with nothing appended, so no transaction opens that
//! no coordinator would ever end and read_committed readers are not held
//! back; TxnOffsetCommit is checked the same way, with the producer's
//! epoch. `transaction.partition.verification.enable=false` turns the
//! check off.

mod common;

use bytes::Bytes;
use common::wire::{create, encode, now_ms, text};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError::*;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::records::{Record, TimestampType};

const TOPIC: &str = "events";

fn init(raw: &mut Raw, id: &str) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_transaction_timeout_ms(60_000);
    match raw.call(ApiKey::InitProducerId, 4, request.into()) {
        ResponseKind::InitProducerId(r) => {
            assert_eq!(r.error_code, 0);
            (r.producer_id.0, r.producer_epoch)
        }
        other => panic!("{other:?}"),
    }
}

/// A transactional batch of one record of `producer` at `sequence`.
fn batch((pid, epoch): (i64, i16), sequence: i32) -> Bytes {
    encode(&[Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: pid,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        timestamp: now_ms(),
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: IndexMap::new(),
    }])
}

/// Produce v9 of `records` to partition 0 as transactional id `id`.
fn produce(raw: &mut Raw, id: &str, records: Bytes) -> i16 {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    match raw.call(ApiKey::Produce, 9, request.into()) {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            if p.error_code != 0 {
                assert_eq!(p.base_offset, -1);
            }
            p.error_code
        }
        other => panic!("{other:?}"),
    }
}

fn add(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16)) {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partitions(vec![0]),
        ]);
    match raw.call(ApiKey::AddPartitionsToTxn, 3, request.into()) {
        ResponseKind::AddPartitionsToTxn(r) => assert_eq!(
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            0
        ),
        other => panic!("{other:?}"),
    }
}

fn add_offsets(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), group: &str) {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(text(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_group_id(GroupId(text(group)));
    match raw.call(ApiKey::AddOffsetsToTxn, 3, request.into()) {
        ResponseKind::AddOffsetsToTxn(r) => assert_eq!(r.error_code, 0),
        other => panic!("{other:?}"),
    }
}

fn end(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16)) {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(true);
    match raw.call(ApiKey::EndTxn, 3, request.into()) {
        ResponseKind::EndTxn(r) => assert_eq!(r.error_code, 0),
        other => panic!("{other:?}"),
    }
}

/// TxnOffsetCommit v3 of offset 1 of `events`-0 for `group`.
fn commit_offsets(raw: &mut Raw, id: &str, (pid, epoch): (i64, i16), group: &str) -> i16 {
    let request = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text(id)))
        .with_group_id(GroupId(text(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    match raw.call(ApiKey::TxnOffsetCommit, 3, request.into()) {
        ResponseKind::TxnOffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

/// (high watermark, last stable offset) of partition 0 by Fetch v11
/// read_committed.
fn offsets(raw: &mut Raw) -> (i64, i64) {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![
            fetch_request::FetchTopic::default()
                .with_topic(TopicName(text(TOPIC)))
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    match raw.call(ApiKey::Fetch, 11, request.into()) {
        ResponseKind::Fetch(r) => {
            let p = &r.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            (p.high_watermark, p.last_stable_offset)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batch_for_a_partition_not_in_the_transaction_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, TOPIC, &[]);
    // Twice: the epoch before the current one is a fenced producer's.
    let old = init(&mut raw, "v");
    let producer = init(&mut raw, "v");
    assert_eq!(producer, (old.0, old.1 + 1));

    // Never added: refused, nothing appended, nothing holds readers back.
    assert_eq!(
        produce(&mut raw, "v", batch(producer, 0)),
        InvalidTxnState.code()
    );
    assert_eq!(offsets(&mut raw), (0, 0));

    // Added: taken, and its open transaction holds the LSO.
    add(&mut raw, "v", producer);
    assert_eq!(produce(&mut raw, "v", batch(producer, 0)), 0);
    assert_eq!(offsets(&mut raw), (1, 0));
    // The next batch of the same transaction is not asked about again.
    assert_eq!(produce(&mut raw, "v", batch(producer, 1)), 0);
    end(&mut raw, "v", producer);
    assert_eq!(offsets(&mut raw), (3, 3));

    // A batch after the transaction ended (a late retry, or a client that
    // skipped AddPartitionsToTxn) does not open a hanging one.
    assert_eq!(
        produce(&mut raw, "v", batch(producer, 2)),
        InvalidTxnState.code()
    );
    assert_eq!(offsets(&mut raw), (3, 3));

    // TxnOffsetCommit: the group's partition must have been added with
    // AddOffsetsToTxn, at the producer's current epoch.
    assert_eq!(
        commit_offsets(&mut raw, "v", producer, "g"),
        InvalidTxnState.code()
    );
    add_offsets(&mut raw, "v", producer, "g");
    assert_eq!(commit_offsets(&mut raw, "v", producer, "g"), 0);
    assert_eq!(
        commit_offsets(&mut raw, "v", old, "g"),
        InvalidProducerEpoch.code()
    );
    drop(raw);
    broker.stop();
}

#[test]
fn without_verification_the_batch_is_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        transaction_partition_verification_enable: false,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, TOPIC, &[]);
    let producer = init(&mut raw, "v");
    assert_eq!(produce(&mut raw, "v", batch(producer, 0)), 0);
    // The hanging transaction KIP-890 prevents: the LSO stays behind it.
    assert_eq!(offsets(&mut raw), (1, 0));
    drop(raw);
    broker.stop();
}
