//! librdkafka's transactional producer against the transaction
//! coordinator: init_transactions finds the coordinator and gets a
//! producer id, transactions begin and end, and a second producer of the
//! same transactional.id fences the first.

mod common;

use std::time::Duration;

use common::TestBroker;
use common::wire::create;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TIMEOUT: Duration = Duration::from_secs(30);

fn producer(bootstrap: &str, id: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("producer")
}

#[test]
fn librdkafka_initializes_and_a_second_producer_fences_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = common::Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);

    let first = producer(&broker.bootstrap(), "txn-fence");
    first.init_transactions(TIMEOUT).expect("init_transactions");
    first.begin_transaction().expect("begin");
    first.commit_transaction(TIMEOUT).expect("an empty commit");
    first.begin_transaction().expect("begin");
    first.abort_transaction(TIMEOUT).expect("an empty abort");

    let second = producer(&broker.bootstrap(), "txn-fence");
    second
        .init_transactions(TIMEOUT)
        .expect("the second init_transactions");

    // The first producer's next partition is refused by the coordinator:
    // it is fenced, a fatal error.
    first.begin_transaction().expect("begin (local)");
    first
        .send(BaseRecord::to("events").key("k").payload("v"))
        .map_err(|(e, _)| e)
        .expect("queued");
    let result = first.commit_transaction(TIMEOUT);
    let Err(KafkaError::Transaction(error)) = result else {
        panic!("commit of a fenced producer: {result:?}");
    };
    assert!(error.is_fatal(), "{error}");
    assert_eq!(error.code(), RDKafkaErrorCode::Fenced, "{error}");
}

/// A transactional.timeout.ms over transaction.max.timeout.ms is refused
/// at init_transactions, fatally.
#[test]
fn librdkafka_is_refused_a_timeout_over_the_maximum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = fjord_broker::BrokerConfig::ephemeral(dir.path());
    config.transaction_max_timeout_ms = 10_000;
    let broker = TestBroker::start_with(config);
    let producer = producer(&broker.bootstrap(), "txn-long");
    let result = producer.init_transactions(TIMEOUT);
    let Err(KafkaError::Transaction(error)) = result else {
        panic!("init_transactions: {result:?}");
    };
    assert_eq!(
        error.code(),
        RDKafkaErrorCode::InvalidTransactionTimeout,
        "{error}"
    );
}
