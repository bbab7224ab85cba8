//! ACLs with an unmodified client (librdkafka): with
//! `authorizer.class.name` set, an anonymous client (`User:ANONYMOUS`) is
//! refused produce and consume with Kafka's error codes until a binding
//! allows it; then it works. DENY over ALLOW, PREFIXED, Metadata
//! filtering, KIP-679 and super users, end to end. (Named users log in
//! with SASL/SCRAM; their rules are tested at the handler level.)

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use fjord_controller::Acl;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ResponseKind};
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

fn acl(resource_type: i8, name: &str, pattern_type: i8, operation: i8, permission: i8) -> Acl {
    Acl {
        resource_type,
        resource_name: name.into(),
        pattern_type,
        principal: "User:ANONYMOUS".into(),
        host: "*".into(),
        operation,
        permission_type: permission,
    }
}

fn secured(dir: &std::path::Path, super_users: &str) -> TestBroker {
    TestBroker::start_with(BrokerConfig {
        authorizer_class_name: Some(
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        ),
        super_users: super_users
            .split(";")
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect(),
        ..BrokerConfig::ephemeral(dir)
    })
}

fn grant(broker: &TestBroker, acls: &[Acl]) {
    broker
        .runtime
        .block_on(broker.local().create_acls(acls))
        .expect("ACLs created");
}

fn ensure_topics(broker: &TestBroker, names: &[&str]) {
    for name in names {
        broker
            .runtime
            .block_on(broker.local().ensure_topic(name, Some(1), &[]))
            .expect("topic");
    }
}

/// One record from an anonymous librdkafka producer: its offset or the
/// delivery error.
fn produce(broker: &TestBroker, topic: &str, idempotent: bool) -> Result<i64, KafkaError> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "5000")
        .set("enable.idempotence", idempotent.to_string())
        .create()
        .expect("producer");
    let record = FutureRecord::to(topic).partition(0).key("k").payload("v");
    broker
        .runtime
        .block_on(producer.send(record, Duration::from_secs(10)))
        .map(|delivered| delivered.offset)
        .map_err(|(e, _)| e)
}

/// Consumes `topic` in group `group` until a record arrives (its value)
/// or an error does.
fn consume(broker: &TestBroker, topic: &str, group: &str) -> Result<String, KafkaError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                return Ok(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    panic!("neither a record nor an error from {topic} in 20 s");
}

fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}

fn listed_topics(broker: &TestBroker) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("client");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_anonymous_client_needs_acls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = secured(dir.path(), "");
    ensure_topics(&broker, &["orders", "secret"]);

    // No binding: refused, with Kafka's codes.
    let refused = produce(&broker, "orders", false).expect_err("no ACL allows the write");
    assert_eq!(
        code(&refused),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused:?}"
    );
    let refused = consume(&broker, "orders", "readers").expect_err("no ACL allows the read");
    assert!(
        matches!(
            code(&refused),
            Some(
                RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        ),
        "{refused:?}"
    );
    assert!(listed_topics(&broker).is_empty(), "nothing is describable");

    // WRITE on the topic is enough for an idempotent producer too
    // (KIP-679: no IDEMPOTENT_WRITE on the cluster needed).
    grant(&broker, &[acl(TOPIC, "orders", LITERAL, WRITE, ALLOW)]);
    assert_eq!(produce(&broker, "orders", false).expect("allowed"), 0);
    assert_eq!(
        produce(&broker, "orders", true).expect("idempotent, allowed"),
        1
    );
    // The group is still closed.
    let refused = consume(&broker, "orders", "readers").expect_err("no READ yet");
    assert!(
        matches!(
            code(&refused),
            Some(
                RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        ),
        "{refused:?}"
    );
    grant(
        &broker,
        &[
            acl(TOPIC, "orders", LITERAL, READ, ALLOW),
            acl(GROUP, "read", PREFIXED, READ, ALLOW),
        ],
    );
    assert_eq!(consume(&broker, "orders", "readers").expect("allowed"), "v");
    // Metadata lists only what the client may describe.
    assert_eq!(listed_topics(&broker), ["orders"]);

    // DENY over ALLOW: a prefixed DENY WRITE closes the topic again, and
    // with it the idempotent producer's id (WRITE on no topic is left).
    grant(&broker, &[acl(TOPIC, "ord", PREFIXED, WRITE, DENY)]);
    let refused = produce(&broker, "orders", false).expect_err("denied");
    assert_eq!(
        code(&refused),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused:?}"
    );
    // librdkafka treats the refused producer id as fatal and purges.
    let refused = produce(&broker, "orders", true).expect_err("denied");
    assert!(
        matches!(
            code(&refused),
            Some(
                RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::PurgeQueue
            )
        ),
        "{refused:?}"
    );
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::InitProducerId(answer) = raw.call(
        ApiKey::InitProducerId,
        4,
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .into(),
    ) else {
        panic!("not an InitProducerId answer");
    };
    assert_eq!(answer.error_code, CLUSTER_AUTHORIZATION_FAILED);
    // Reading is not writing: still allowed.
    assert_eq!(
        consume(&broker, "orders", "readers-2").expect("allowed"),
        "v"
    );
    broker.stop();
}

#[test]
fn acls_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = secured(dir.path(), "");
    ensure_topics(&broker, &["orders"]);
    grant(&broker, &[acl(TOPIC, "orders", LITERAL, WRITE, ALLOW)]);
    assert_eq!(produce(&broker, "orders", false).expect("allowed"), 0);
    broker.stop();
    let broker = secured(dir.path(), "");
    assert_eq!(produce(&broker, "orders", false).expect("still allowed"), 1);
    broker.stop();
}

#[test]
fn super_users_need_no_acls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = secured(dir.path(), "User:admin;User:ANONYMOUS");
    ensure_topics(&broker, &["orders", "secret"]);
    assert_eq!(produce(&broker, "orders", true).expect("a super user"), 0);
    assert_eq!(
        consume(&broker, "orders", "readers").expect("a super user"),
        "v"
    );
    // Everything is listed, topics no binding names included.
    let listed = listed_topics(&broker);
    assert!(
        listed.contains(&"orders".to_owned()) && listed.contains(&"secret".to_owned()),
        "{listed:?}"
    );
    broker.stop();
}
