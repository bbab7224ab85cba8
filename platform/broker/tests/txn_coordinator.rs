//! The transaction coordinator over the wire: FindCoordinator for a
//! transactional id, InitProducerId, AddPartitionsToTxn, EndTxn with the
//! markers they write, fencing, DescribeTransactions / ListTransactions,
//! the timeout abort and the state across a restart.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::wire::{create, decode, text};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;

fn init(raw: &mut Raw, id: &str, timeout_ms: i32, version: i16) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(id))))
        .with_transaction_timeout_ms(timeout_ms);
    match raw.call(ApiKey::InitProducerId, version, request.into()) {
        ResponseKind::InitProducerId(r) => (r.error_code, r.producer_id.0, r.producer_epoch),
        other => panic!("{other:?}"),
    }
}

/// AddPartitionsToTxn (v0–v3 form): the codes of `partitions` of `topic`.
fn add(
    raw: &mut Raw,
    version: i16,
    id: &str,
    (pid, epoch): (i64, i16),
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(partitions.to_vec()),
        ]);
    match raw.call(ApiKey::AddPartitionsToTxn, version, request.into()) {
        ResponseKind::AddPartitionsToTxn(r) => r.results_by_topic_v3_and_below[0]
            .results_by_partition
            .iter()
            .map(|p| p.partition_error_code)
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn end(raw: &mut Raw, version: i16, id: &str, (pid, epoch): (i64, i16), commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(text(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    match raw.call(ApiKey::EndTxn, version, request.into()) {
        ResponseKind::EndTxn(r) => r.error_code,
        other => panic!("{other:?}"),
    }
}

fn describe(raw: &mut Raw, id: &str) -> describe_transactions_response::TransactionState {
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(text(id))]);
    match raw.call(ApiKey::DescribeTransactions, 0, request.into()) {
        ResponseKind::DescribeTransactions(mut r) => r.transaction_states.remove(0),
        other => panic!("{other:?}"),
    }
}

/// The control batches of partition 0 of `topic`: (producer id, type:
/// 0 abort, 1 commit).
fn markers(raw: &mut Raw, topic: &str) -> Vec<(i64, i16)> {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(text(topic)))
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let ResponseKind::Fetch(r) = raw.call(ApiKey::Fetch, 12, request.into()) else {
        panic!("not a Fetch answer");
    };
    let records = r.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    if records.is_empty() {
        return Vec::new();
    }
    let (records, _) = decode(&records);
    records
        .into_iter()
        .filter(|r| r.control)
        .map(|r| {
            let key: Bytes = r.key.expect("a marker has a key");
            (r.producer_id, i16::from_be_bytes([key[2], key[3]]))
        })
        .collect()
}

#[test]
fn a_transaction_is_begun_committed_aborted_and_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);

    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![text("t1")]);
    match raw.call(ApiKey::FindCoordinator, 4, find.into()) {
        ResponseKind::FindCoordinator(r) => {
            let c = &r.coordinators[0];
            assert_eq!(c.error_code, 0, "{c:?}");
            assert!(c.node_id.0 >= 0 && c.port > 0, "{c:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(init(&mut raw, "", 60_000, 4).0, InvalidRequest.code());
    assert_eq!(
        init(&mut raw, "t1", 900_001, 4).0,
        InvalidTransactionTimeout.code()
    );
    let (code, pid, epoch) = init(&mut raw, "t1", 60_000, 4);
    assert_eq!((code, epoch), (0, 0));
    assert!(pid >= 0);
    let me = (pid, epoch);

    // A partition that does not exist: nothing is added.
    assert_eq!(
        add(&mut raw, 3, "t1", me, "events", &[0, 9]),
        [OperationNotAttempted.code(), UnknownTopicOrPartition.code()]
    );
    assert_eq!(end(&mut raw, 3, "t1", me, true), InvalidTxnState.code());
    assert_eq!(add(&mut raw, 3, "t1", me, "events", &[0]), [0]);
    assert_eq!(
        describe(&mut raw, "t1").transaction_state.as_str(),
        "Ongoing"
    );
    assert_eq!(end(&mut raw, 3, "t1", me, true), 0);
    assert_eq!(markers(&mut raw, "events"), [(pid, 1)]);
    // A retried commit succeeds; an abort of it is an invalid state.
    assert_eq!(end(&mut raw, 3, "t1", me, true), 0);
    assert_eq!(end(&mut raw, 3, "t1", me, false), InvalidTxnState.code());
    let state = describe(&mut raw, "t1");
    assert_eq!(state.transaction_state.as_str(), "CompleteCommit");
    assert!(state.topics.is_empty());

    // An abort writes an abort marker.
    assert_eq!(add(&mut raw, 3, "t1", me, "events", &[0]), [0]);
    assert_eq!(end(&mut raw, 3, "t1", me, false), 0);
    assert_eq!(markers(&mut raw, "events"), [(pid, 1), (pid, 0)]);

    // A second producer of the id fences the first.
    let (code, pid2, epoch2) = init(&mut raw, "t1", 60_000, 4);
    assert_eq!((code, pid2, epoch2), (0, pid, 1));
    assert_eq!(
        add(&mut raw, 3, "t1", me, "events", &[0]),
        [ProducerFenced.code()]
    );
    assert_eq!(
        add(&mut raw, 1, "t1", me, "events", &[0]),
        [InvalidProducerEpoch.code()],
        "versions before KIP-588 get INVALID_PRODUCER_EPOCH"
    );
    assert_eq!(end(&mut raw, 3, "t1", me, true), ProducerFenced.code());
    assert_eq!(
        add(&mut raw, 3, "t1", (pid + 1, 1), "events", &[0]),
        [InvalidProducerIdMapping.code()]
    );
    let me = (pid2, epoch2);
    assert_eq!(add(&mut raw, 3, "t1", me, "events", &[0]), [0]);

    // KIP-360: a v3+ InitProducerId naming a stale epoch is fenced.
    let stale = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text("t1"))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0);
    match raw.call(ApiKey::InitProducerId, 4, stale.into()) {
        ResponseKind::InitProducerId(r) => assert_eq!(r.error_code, ProducerFenced.code()),
        other => panic!("{other:?}"),
    }

    // A new id with a producer id and epoch named (KIP-360's fields, as
    // @platformatic/kafka sends them at first) gets a new producer id.
    let fresh = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text("t-new"))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(0))
        .with_producer_epoch(0);
    match raw.call(ApiKey::InitProducerId, 5, fresh.into()) {
        ResponseKind::InitProducerId(r) => {
            assert_eq!(r.error_code, 0);
            assert!(r.producer_id.0 > 0 && r.producer_id.0 != pid);
            assert_eq!(r.producer_epoch, 0);
        }
        other => panic!("{other:?}"),
    }

    // ListTransactions: by state, by producer id; unknown states named.
    let list = |raw: &mut Raw, states: &[&str], pids: &[i64]| {
        let request = ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|s| text(s)).collect())
            .with_producer_id_filters(pids.iter().map(|p| ProducerId(*p)).collect());
        match raw.call(ApiKey::ListTransactions, 1, request.into()) {
            ResponseKind::ListTransactions(r) => r,
            other => panic!("{other:?}"),
        }
    };
    let r = list(&mut raw, &["Ongoing"], &[]);
    assert_eq!(r.transaction_states.len(), 1, "{r:?}");
    assert_eq!(r.transaction_states[0].transactional_id.as_str(), "t1");
    assert!(
        list(&mut raw, &["CompleteCommit"], &[])
            .transaction_states
            .is_empty()
    );
    assert!(
        list(&mut raw, &[], &[pid + 7])
            .transaction_states
            .is_empty()
    );
    let r = list(&mut raw, &["Bogus"], &[]);
    assert_eq!(r.unknown_state_filters, [text("Bogus")]);
    let unknown = describe(&mut raw, "nobody");
    assert_eq!(unknown.error_code, TransactionalIdNotFound.code());
}

#[test]
fn an_open_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.transaction_abort_timed_out_transaction_cleanup_interval_ms = 100;
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    let (code, pid, epoch) = init(&mut raw, "slow", 500, 4);
    assert_eq!(code, 0);
    assert_eq!(add(&mut raw, 3, "slow", (pid, epoch), "events", &[0]), [0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = describe(&mut raw, "slow");
        if state.transaction_state.as_str() == "CompleteAbort" {
            assert_eq!(state.producer_epoch, epoch + 1, "{state:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not aborted: {state:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(markers(&mut raw, "events"), [(pid, 0)]);
    assert_eq!(
        end(&mut raw, 3, "slow", (pid, epoch), true),
        ProducerFenced.code()
    );
}

#[test]
fn the_state_survives_a_restart_and_a_new_producer_aborts_the_open_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pid, epoch) = {
        let broker = TestBroker::start(dir.path());
        let mut raw = Raw::connect(broker.addr);
        create(&mut raw, "events", &[]);
        let (code, pid, epoch) = init(&mut raw, "kept", 60_000, 4);
        assert_eq!(code, 0);
        assert_eq!(add(&mut raw, 3, "kept", (pid, epoch), "events", &[0]), [0]);
        broker.stop();
        (pid, epoch)
    };
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let state = describe(&mut raw, "kept");
    assert_eq!(state.error_code, 0, "{state:?}");
    assert_eq!(state.transaction_state.as_str(), "Ongoing");
    assert_eq!((state.producer_id.0, state.producer_epoch), (pid, epoch));
    assert_eq!(state.topics[0].topic.as_str(), "events");
    // A new producer: the open transaction is aborted first (the client
    // retries CONCURRENT_TRANSACTIONS), then it gets the epoch after the
    // one the abort fenced with.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (pid2, epoch2) = loop {
        let (code, pid2, epoch2) = init(&mut raw, "kept", 60_000, 4);
        if code == 0 {
            break (pid2, epoch2);
        }
        assert_eq!(code, ConcurrentTransactions.code());
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    assert_eq!(markers(&mut raw, "events"), [(pid, 0)]);
}

/// WriteTxnMarkers, as another broker's coordinator sends it: the marker
/// is written to the partition this broker leads; an unknown partition is
/// UNKNOWN_TOPIC_OR_PARTITION.
#[test]
fn write_txn_markers_writes_the_marker_here() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(ProducerId(4242))
            .with_producer_epoch(3)
            .with_transaction_result(false)
            .with_coordinator_epoch(7)
            .with_topics(vec![
                write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(TopicName(text("events")))
                    .with_partition_indexes(vec![0, 5]),
            ]),
    ]);
    let ResponseKind::WriteTxnMarkers(r) = raw.call(ApiKey::WriteTxnMarkers, 1, request.into())
    else {
        panic!("not a WriteTxnMarkers answer");
    };
    let codes: Vec<(i32, i16)> = r.markers[0].topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.error_code))
        .collect();
    assert_eq!(codes, [(0, 0), (5, UnknownTopicOrPartition.code())]);
    assert_eq!(markers(&mut raw, "events"), [(4242, 0)]);
}
