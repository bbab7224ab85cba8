//! KIP-890 part 1 across brokers: the leader of a partition asks the
//! transaction coordinator on another broker (AddPartitionsToTxn v4
//! `verify_only` over a peer connection) before it takes the first
//! transactional batch of a transaction. A partition never added is
//! INVALID_TXN_STATE with nothing appended; once added, the batch is taken.
//! (librdkafka's side of the same path: `cluster_transactions.rs`.)

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::cluster::{Cluster, ClusterConfig};
use common::kafka::{create_topic, raw_call};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

const TOPIC: &str = "verified";
const ID: &str = "verifier";
const WAIT: Duration = Duration::from_secs(60);

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Calls until `done` accepts the answer (the cluster's metadata settles
/// on a loaded machine); panics with the last answer after [`WAIT`].
fn until<T: std::fmt::Debug>(
    what: &str,
    mut call: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = Instant::now();
    loop {
        let answer = call();
        if done(&answer) {
            return answer;
        }
        assert!(start.elapsed() < WAIT, "{what}: still {answer:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The transactional Produce v9 of one record of `producer` to
/// `partition`: its error code.
fn produce(addr: SocketAddr, partition: i32, (pid, epoch): (i64, i16)) -> Result<i16, String> {
    let record = Record {
        transactional: true,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: pid,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut records = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut records,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("batch encodes");
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(text(ID))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records.freeze())),
                ]),
        ]);
    let answer: ProduceResponse = raw_call(addr, ApiKey::Produce, 9, &request, 10_000)?;
    Ok(answer.responses[0].partition_responses[0].error_code)
}

#[test]
fn a_leader_verifies_with_a_coordinator_on_another_broker() {
    let cluster = Cluster::start_with(
        ClusterConfig::new(3)
            .yaml("transaction.state.log.num.partitions: 1")
            .yaml("transaction.state.log.replication.factor: 1"),
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail("CreateTopics verified", |c| {
        match create_topic(&c.bootstrap(), TOPIC, 3, 1, &[]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let any = cluster.node(1).kafka;
    // FindCoordinator creates `__transaction_state`; its one partition's
    // leader coordinates every id.
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![text(ID)]);
    let found: FindCoordinatorResponse = until(
        "FindCoordinator",
        || raw_call(any, ApiKey::FindCoordinator, 4, &find, 5_000),
        |r: &Result<FindCoordinatorResponse, String>| {
            r.as_ref().is_ok_and(|r| r.coordinators[0].error_code == 0)
        },
    )
    .expect("answered");
    let coordinator = found.coordinators[0].node_id.0 as u64;
    let at_coordinator = cluster.node(coordinator).kafka;
    let elsewhere = (0..3)
        .find(|&p| cluster.wait_for_leader(TOPIC, p) != coordinator)
        .expect("a partition led by another broker than the coordinator");
    let leader = cluster
        .node(cluster.wait_for_leader(TOPIC, elsewhere))
        .kafka;

    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(text(ID))))
        .with_transaction_timeout_ms(60_000);
    let init: InitProducerIdResponse = until(
        "InitProducerId",
        || raw_call(at_coordinator, ApiKey::InitProducerId, 4, &init, 5_000),
        |r: &Result<InitProducerIdResponse, String>| r.as_ref().is_ok_and(|r| r.error_code == 0),
    )
    .expect("answered");
    let producer = (init.producer_id.0, init.producer_epoch);

    // Not added: the coordinator says so through the leader, which may
    // first answer NOT_ENOUGH_REPLICAS until it knows the coordinator.
    let retried = ResponseError::NotEnoughReplicas.code();
    let code = until(
        "an unverified batch",
        || produce(leader, elsewhere, producer),
        |r| r.as_ref().is_ok_and(|c| *c != retried),
    );
    assert_eq!(code, Ok(ResponseError::InvalidTxnState.code()));

    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(text(ID)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partitions(vec![elsewhere]),
        ]);
    let added: AddPartitionsToTxnResponse =
        raw_call(at_coordinator, ApiKey::AddPartitionsToTxn, 3, &add, 5_000).expect("answered");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let code = until(
        "a verified batch",
        || produce(leader, elsewhere, producer),
        |r| r.as_ref().is_ok_and(|c| *c != retried),
    );
    assert_eq!(code, Ok(0));
}
