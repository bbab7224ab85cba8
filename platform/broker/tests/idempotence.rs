//! The idempotent producer: raw InitProducerId and sequence checks, and
//! librdkafka with `enable.idempotence=true` producing through a broker
//! restart without duplicates or gaps.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// One batch of `count` records from producer `id`/`epoch` starting at
/// sequence `first`.
fn batch(id: i64, epoch: i16, first: i32, count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: first + i,
            timestamp: 1_700_000_000_000,
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

/// Produces `records` to partition 0 of `topic`: (error code, base offset).
fn produce(raw: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
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

fn init_producer_id(raw: &mut Raw, current: Option<(i64, i16)>) -> (i16, i64, i16) {
    let (id, epoch) = current.unwrap_or((-1, -1));
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    match raw.call(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(request),
    ) {
        ResponseKind::InitProducerId(r) => (r.error_code, r.producer_id.0, r.producer_epoch),
        other => panic!("{other:?}"),
    }
}

/// A retried batch is answered with its original offset and not stored
/// again; gaps, old epochs and unknown producers get Kafka's codes; all of
/// it holds after a restart (the state comes back from the snapshot the
/// clean shutdown wrote, which the next start reads once and removes).
#[test]
fn sequences_are_checked_and_duplicates_answered_with_the_original_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let topic = "idem";

    let (code, id, epoch) = init_producer_id(&mut raw, None);
    assert_eq!((code, epoch), (0, 0));
    assert!(id >= 0);
    let (_, other, _) = init_producer_id(&mut raw, None);
    assert_ne!(id, other, "fresh ids");

    assert_eq!(produce(&mut raw, topic, batch(id, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 3, 2)), (0, 3));
    // Retries of both batches: their original offsets, nothing appended.
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 3, 2)), (0, 3));
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 9, 1)).0, 45, "gap");
    assert_eq!(
        produce(&mut raw, topic, batch(other, 0, 4, 1)).0,
        59,
        "unknown"
    );
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 5, 1)), (0, 5));
    broker.stop();
    let snapshot = dir.path().join("idem-0").join("producer.snapshot");
    assert!(
        snapshot.is_file(),
        "a clean shutdown snapshots producer state"
    );

    // After a restart the state comes back from the snapshot.
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 5, 1)), (0, 5), "dup");
    assert!(
        !snapshot.exists(),
        "the snapshot is read once, then the state is in memory"
    );
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 7, 1)).0, 45);
    assert_eq!(produce(&mut raw, topic, batch(id, 0, 6, 1)), (0, 6));

    // An epoch bump: same id, epoch 1, sequences from 0; epoch 0 is fenced.
    let (code, same, bumped) = init_producer_id(&mut raw, Some((id, 0)));
    assert_eq!((code, same, bumped), (0, id, 1));
    assert_eq!(produce(&mut raw, topic, batch(id, 1, 0, 1)), (0, 7));
    assert_eq!(
        produce(&mut raw, topic, batch(id, 0, 7, 1)).0,
        47,
        "old epoch"
    );
    assert_eq!(
        produce(&mut raw, topic, batch(id, 2, 4, 1)).0,
        45,
        "new epoch from 4"
    );
    broker.stop();

    // A damaged snapshot is ignored: the state is rebuilt from the log.
    std::fs::write(&snapshot, b"FJPS garbage").expect("damage the snapshot");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(
        produce(&mut raw, topic, batch(id, 1, 0, 1)),
        (0, 7),
        "dup after a scan"
    );
    assert_eq!(produce(&mut raw, topic, batch(id, 1, 1, 1)), (0, 8));
    broker.stop();
}

/// librdkafka with idempotence and acks=all keeps producing while the
/// broker restarts under it: every record is stored exactly once, in
/// order.
#[test]
fn librdkafka_idempotent_producer_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A fixed port so the producer finds the restarted broker.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = || BrokerConfig {
        listener: format!("127.0.0.1:{port}"),
        ..BrokerConfig::ephemeral(dir.path())
    };
    let broker = TestBroker::start_with(config());
    let bootstrap = broker.bootstrap();
    let topic = "idem-restart";
    let n = 3000;

    let failed = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (bootstrap, failed, done) = (bootstrap.clone(), Arc::clone(&failed), Arc::clone(&done));
        std::thread::spawn(move || {
            let producer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "2")
                .set("message.timeout.ms", "60000")
                .set("reconnect.backoff.ms", "50")
                .set("reconnect.backoff.max.ms", "200")
                .create()
                .expect("producer");
            for i in 0..n {
                let value = format!("{i}");
                loop {
                    match producer.send(BaseRecord::<(), _>::to(topic).partition(0).payload(&value))
                    {
                        Ok(()) => break,
                        Err((e, _)) => {
                            // Queue full while the broker is away.
                            let _ = e;
                            producer.poll(Duration::from_millis(10));
                        }
                    }
                }
                producer.poll(Duration::ZERO);
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            if let Err(e) = producer.flush(Duration::from_secs(60)) {
                failed.lock().push(e.to_string());
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    broker.stop();
    std::thread::sleep(Duration::from_millis(300));
    let broker = TestBroker::start_with(config());
    let start = Instant::now();
    while !done.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(90), "producer stuck");
        std::thread::sleep(Duration::from_millis(50));
    }
    producer_thread.join().expect("producer thread");
    let failed = failed.lock().clone();
    assert!(failed.is_empty(), "{failed:?}");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "idem-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while values.len() < n && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            values.push(value.parse::<usize>().expect("a number"));
        }
    }
    // Anything beyond n would be a duplicate: read a little longer.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            values.push(value.parse::<usize>().expect("a number"));
        }
    }
    assert_eq!(values, (0..n).collect::<Vec<_>>(), "no duplicates, no gaps");
    broker.stop();
}

/// `producer.id.expiration.ms`: a producer silent for longer is forgotten
/// on the partition — its next batch must start a new sequence (as after
/// UNKNOWN_PRODUCER_ID), and a late retry of an old batch is no longer
/// recognised — while a producer that keeps writing keeps its state.
#[test]
fn a_silent_producer_expires() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.producer_id_expiration_ms = 1_000;
    let broker = TestBroker::start_with(config);
    let mut raw = Raw::connect(broker.addr);
    let topic = "expiring";
    let (_, silent, _) = init_producer_id(&mut raw, None);
    let (_, busy, _) = init_producer_id(&mut raw, None);
    assert_eq!(produce(&mut raw, topic, batch(silent, 0, 0, 3)), (0, 0));
    assert_eq!(produce(&mut raw, topic, batch(busy, 0, 0, 1)), (0, 3));
    for seq in 1..=6 {
        std::thread::sleep(Duration::from_millis(250));
        let (code, _) = produce(&mut raw, topic, batch(busy, 0, seq, 1));
        assert_eq!(code, 0, "the busy producer's sequence {seq}");
    }
    // 1.5 s after its last batch the silent producer is unknown.
    assert_eq!(
        produce(&mut raw, topic, batch(silent, 0, 3, 1)).0,
        59,
        "UNKNOWN_PRODUCER_ID after expiry"
    );
    let (code, offset) = produce(&mut raw, topic, batch(silent, 0, 0, 3));
    assert_eq!(code, 0);
    assert_eq!(
        offset, 10,
        "its old first batch is a new batch now, not a duplicate"
    );
    // The busy one was never forgotten: a retry is still a duplicate.
    assert_eq!(produce(&mut raw, topic, batch(busy, 0, 6, 1)), (0, 9));
    broker.stop();
}
