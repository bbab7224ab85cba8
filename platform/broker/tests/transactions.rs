//! Transactions are not supported yet (no transaction coordinator): a
//! transactional producer must fail at once with an error that says so,
//! not retry a "coordinator not available" until its own timeout.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

const UNSUPPORTED: &str = "transactions are not supported by this broker";
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
const REFUSED: i16 = 53;

/// librdkafka's init_transactions fails within 5 s (not by timing out: its
/// timeout here is 30 s) with a fatal error carrying the broker's message.
#[test]
fn librdkafka_init_transactions_fails_fast_saying_transactions_are_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("transactional.id", "txn-unsupported")
        .create()
        .expect("producer");
    let started = Instant::now();
    let result = producer.init_transactions(Duration::from_secs(30));
    let elapsed = started.elapsed();
    let Err(KafkaError::Transaction(error)) = result else {
        panic!("init_transactions: {result:?}");
    };
    assert!(
        elapsed < Duration::from_secs(5),
        "took {elapsed:?}: {error}"
    );
    assert_eq!(
        error.code(),
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        "{error}"
    );
    assert!(error.is_fatal(), "{error}");
    assert!(error.to_string().contains(UNSUPPORTED), "{error}");
}

/// The raw answers: FindCoordinator for a transactional id, on the single
/// key (v1–v3, with the message) and batched (v4+) forms; InitProducerId
/// with a transactional id (no message field), an empty one being an
/// invalid request as in Kafka. Group keys are still coordinated.
#[test]
fn transactional_ids_are_refused_with_a_fatal_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let key = StrBytes::from_static_str("txn");

    let single = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_key(key.clone());
    match raw.call(
        ApiKey::FindCoordinator,
        2,
        RequestKind::FindCoordinator(single),
    ) {
        ResponseKind::FindCoordinator(r) => {
            assert_eq!(r.error_code, REFUSED, "{r:?}");
            let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
            assert!(message.contains(UNSUPPORTED), "{message}");
            assert_eq!(r.node_id.0, -1);
        }
        other => panic!("{other:?}"),
    }
    let batched = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![key.clone()]);
    match raw.call(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(batched),
    ) {
        ResponseKind::FindCoordinator(r) => {
            let c = &r.coordinators[0];
            assert_eq!((c.error_code, c.node_id.0), (REFUSED, -1), "{c:?}");
            let message = c.error_message.as_ref().map(|m| m.to_string());
            assert!(message.unwrap_or_default().contains(UNSUPPORTED), "{c:?}");
        }
        other => panic!("{other:?}"),
    }
    let group = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![key.clone()]);
    match raw.call(
        ApiKey::FindCoordinator,
        4,
        RequestKind::FindCoordinator(group),
    ) {
        ResponseKind::FindCoordinator(r) => assert_eq!(r.coordinators[0].error_code, 0),
        other => panic!("{other:?}"),
    }

    let mut init = |id: &'static str| {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))))
            .with_transaction_timeout_ms(60_000);
        match raw.call(
            ApiKey::InitProducerId,
            4,
            RequestKind::InitProducerId(request),
        ) {
            ResponseKind::InitProducerId(r) => (r.error_code, r.producer_id.0),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(init("txn"), (REFUSED, -1));
    assert_eq!(init(""), (42, -1), "INVALID_REQUEST");
}
