//! librdkafka's transactional producer against the transaction
//! coordinator: init_transactions finds the coordinator and gets a
//! producer id, transactions begin and end, and a second producer of the
//! same transactional.id fences the first.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use common::wire::create;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

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

fn consumer(bootstrap: &str, group: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer")
}

/// The values of `topic` partition 0 a consumer of `isolation` reads
/// until `want` of them (or 20 s).
fn values(bootstrap: &str, topic: &str, isolation: &str, want: usize) -> Vec<String> {
    let consumer = consumer(bootstrap, "readers", isolation);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    // Anything past `want` would show within a few more polls.
    for _ in 0..5 {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    seen
}

/// Transactions committed and aborted through librdkafka (its
/// AddPartitionsToTxn, EndTxn, AddOffsetsToTxn and TxnOffsetCommit) as
/// read_committed and read_uncommitted consumers see them, and offsets
/// sent to a transaction committed with it.
#[test]
fn librdkafka_commits_and_aborts_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = common::Raw::connect(broker.addr);
    create(&mut raw, "events", &[]);
    let bootstrap = broker.bootstrap();
    let producer = producer(&bootstrap, "txn-flow");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");
    let send = |value: &str| {
        producer
            .send(BaseRecord::to("events").key("k").payload(value))
            .map_err(|(e, _)| e)
            .expect("queued");
    };

    producer.begin_transaction().expect("begin");
    send("c1");
    send("c2");
    producer.commit_transaction(TIMEOUT).expect("commit");

    producer.begin_transaction().expect("begin");
    send("a1");
    producer.flush(TIMEOUT).expect("flush");
    producer.abort_transaction(TIMEOUT).expect("abort");

    // A consume-transform-produce step: the group's offset commits with
    // the transaction.
    let group = consumer(&bootstrap, "txn-group", "read_committed");
    producer.begin_transaction().expect("begin");
    send("c3");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("events", 0, Offset::Offset(2))
        .expect("tpl");
    let metadata = group.group_metadata().expect("group metadata");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, TIMEOUT)
        .expect("send_offsets_to_transaction");
    producer.commit_transaction(TIMEOUT).expect("commit");

    // The aborted record is in the log, left out by read_committed.
    assert_eq!(
        values(&bootstrap, "events", "read_committed", 3),
        ["c1", "c2", "c3"]
    );
    assert_eq!(
        values(&bootstrap, "events", "read_uncommitted", 4),
        ["c1", "c2", "a1", "c3"]
    );
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("events", 0);
    let committed = group
        .committed_offsets(wanted, TIMEOUT)
        .expect("committed offsets");
    let offset = committed.find_partition("events", 0).map(|p| p.offset());
    assert_eq!(offset, Some(Offset::Offset(2)));
}
