//! Users and SASL with real clients on real sockets: librdkafka logging in
//! with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN to produce and consume in a
//! group; wrong passwords and unknown users refused alike while the broker
//! serves on; failed logins limited per user and address; credentials
//! managed with AlterUserScramCredentials (KIP-554) by super users only,
//! and kept across a restart; and a SASL_PLAINTEXT listener with an
//! authorizer, where logged-in users get what their ACLs allow.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker};
use fjord_broker::scram::{self, ScramClient, ScramMechanism};
use fjord_broker::{BrokerConfig, Password};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, ResponseKind,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const ILLEGAL_SASL_STATE: i16 = 34;
const INVALID_CREDENTIALS: &str = "Authentication failed: invalid credentials";

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-secret";

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        sasl_admin_user: Some(ADMIN.into()),
        sasl_admin_password: Some(Password::new(ADMIN_PASSWORD)),
        ..BrokerConfig::ephemeral(dir)
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn handshake(raw: &mut Raw, mechanism: &str) -> i16 {
    let ResponseKind::SaslHandshake(h) = raw.call(
        ApiKey::SaslHandshake,
        1,
        SaslHandshakeRequest::default()
            .with_mechanism(text(mechanism))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    h.error_code
}

fn authenticate(raw: &mut Raw, token: Vec<u8>) -> SaslAuthenticateResponse {
    let ResponseKind::SaslAuthenticate(a) = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(token))
            .into(),
    ) else {
        panic!("not an authenticate answer");
    };
    a
}

/// A raw connection logged in with SCRAM (SaslHandshake v1 and
/// SaslAuthenticate); the error code and message of the failed step.
fn scram_login(
    broker: &TestBroker,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<Raw, (i16, String)> {
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(handshake(&mut raw, mechanism.name()), 0);
    let (mut client, first) = ScramClient::new(mechanism, user, password).unwrap();
    let fail = |a: &SaslAuthenticateResponse| {
        (
            a.error_code,
            a.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    };
    let a = authenticate(&mut raw, first);
    if a.error_code != 0 {
        return Err(fail(&a));
    }
    let last = client.finish(&a.auth_bytes).unwrap();
    let a = authenticate(&mut raw, last);
    if a.error_code != 0 {
        return Err(fail(&a));
    }
    client.verify(&a.auth_bytes).unwrap();
    Ok(raw)
}

/// A raw connection logged in with PLAIN.
fn plain_login(broker: &TestBroker, user: &str, password: &str) -> Result<Raw, (i16, String)> {
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(handshake(&mut raw, "PLAIN"), 0);
    let a = authenticate(&mut raw, format!("\0{user}\0{password}").into_bytes());
    if a.error_code != 0 {
        // As clients do, close after the refusal: the broker, which waits
        // for that (briefly) so that the answer arrives first, closes too.
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(raw.is_closed(), "a failed login ends the connection");
        return Err((a.error_code, a.error_message.unwrap().to_string()));
    }
    Ok(raw)
}

fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
    iterations: i32,
) -> ScramCredentialUpsertion {
    let salt = scram::random_salt().unwrap();
    let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, iterations as u32);
    ScramCredentialUpsertion::default()
        .with_name(text(user))
        .with_mechanism(mechanism.kafka_type())
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn alter(
    raw: &mut Raw,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) -> AlterUserScramCredentialsResponse {
    let ResponseKind::AlterUserScramCredentials(r) = raw.call(
        ApiKey::AlterUserScramCredentials,
        0,
        AlterUserScramCredentialsRequest::default()
            .with_upsertions(upsertions)
            .with_deletions(deletions)
            .into(),
    ) else {
        panic!("not an AlterUserScramCredentials answer");
    };
    r
}

fn describe(raw: &mut Raw, users: Option<&[&str]>) -> DescribeUserScramCredentialsResponse {
    let users = users.map(|u| {
        u.iter()
            .map(|n| UserName::default().with_name(text(n)))
            .collect()
    });
    let ResponseKind::DescribeUserScramCredentials(r) = raw.call(
        ApiKey::DescribeUserScramCredentials,
        0,
        DescribeUserScramCredentialsRequest::default()
            .with_users(users)
            .into(),
    ) else {
        panic!("not a DescribeUserScramCredentials answer");
    };
    r
}

/// A DescribeUserScramCredentials result: user, error code, (mechanism,
/// iterations) pairs.
type Described = (String, i16, Vec<(i8, i32)>);

/// Creates `user` with both SCRAM mechanisms, as the admin.
fn create_user(broker: &TestBroker, user: &str, password: &str) {
    let mut admin = scram_login(broker, ScramMechanism::Sha512, ADMIN, ADMIN_PASSWORD).unwrap();
    let r = alter(
        &mut admin,
        vec![
            upsertion(user, ScramMechanism::Sha256, password, 4096),
            upsertion(user, ScramMechanism::Sha512, password, 8192),
        ],
        vec![],
    );
    assert_eq!(r.results.len(), 1);
    assert_eq!(
        r.results[0].error_code, 0,
        "{:?}",
        r.results[0].error_message
    );
}

/// Client errors librdkafka reports (its error callback), and how many
/// records it delivered.
#[derive(Default, Clone)]
struct Errors(Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::producer::ProducerContext for Errors {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            *self.1.lock().unwrap() += 1;
        }
    }
}

fn sasl(mechanism: &str, user: &str, password: &str) -> Vec<(String, String)> {
    [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Produces `values` with librdkafka logged in with `settings`.
fn produce(broker: &TestBroker, topic: &str, settings: &[(String, String)], values: &[String]) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("message.timeout.ms", "10000");
    for (k, v) in settings {
        config.set(k, v);
    }
    let producer: BaseProducer = config.create().expect("producer");
    for value in values {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(value))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(15)).expect("flush");
}

#[test]
fn scram_and_plain_clients_produce_and_consume_in_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(config(dir.path()));
    create_user(&broker, "alice", "alice-pw");

    let batch = |tag: &str| (0..20).map(|i| format!("{tag}-{i}")).collect::<Vec<_>>();
    produce(
        &broker,
        "orders",
        &sasl("SCRAM-SHA-512", "alice", "alice-pw"),
        &batch("sha512"),
    );
    produce(
        &broker,
        "orders",
        &sasl("SCRAM-SHA-256", "alice", "alice-pw"),
        &batch("sha256"),
    );
    produce(
        &broker,
        "orders",
        &sasl("PLAIN", "alice", "alice-pw"),
        &batch("plain"),
    );

    // A group member logged in with SCRAM-SHA-256 reads them all and
    // commits its position.
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "readers")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false");
    for (k, v) in sasl("SCRAM-SHA-256", "alice", "alice-pw") {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 60 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(seen.len(), 60, "{seen:?}");
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let committed = consumer
        .committed(Duration::from_secs(10))
        .expect("committed offsets");
    let offset = committed.elements()[0].offset();
    assert_eq!(offset, rdkafka::Offset::Offset(60));
    broker.stop();
}

#[test]
fn wrong_password_and_unknown_user_are_refused_alike() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(config(dir.path()));
    create_user(&broker, "alice", "alice-pw");
    for mechanism in ScramMechanism::ALL {
        let wrong = scram_login(&broker, mechanism, "alice", "guess").err();
        let unknown = scram_login(&broker, mechanism, "mallory", "guess").err();
        let expected = Some((SASL_AUTHENTICATION_FAILED, INVALID_CREDENTIALS.to_owned()));
        assert_eq!(wrong, expected, "{mechanism:?}");
        assert_eq!(unknown, expected, "{mechanism:?}");
    }
    let expected = Err((SASL_AUTHENTICATION_FAILED, INVALID_CREDENTIALS.to_owned()));
    assert_eq!(plain_login(&broker, "alice", "guess").map(|_| ()), expected);
    assert_eq!(
        plain_login(&broker, "mallory", "guess").map(|_| ()),
        expected
    );

    // librdkafka shows the broker's message and delivers nothing.
    for (mechanism, user) in [
        ("SCRAM-SHA-512", "alice"),
        ("SCRAM-SHA-256", "mallory"),
        ("PLAIN", "alice"),
    ] {
        let errors = Errors::default();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker.bootstrap())
            .set("message.timeout.ms", "3000");
        for (k, v) in sasl(mechanism, user, "guess") {
            config.set(k, v);
        }
        let producer: BaseProducer<Errors> = config.create_with_context(errors.clone()).unwrap();
        producer
            .send(BaseRecord::<(), _>::to("orders").payload("x"))
            .expect("enqueue");
        // The record times out undelivered.
        producer.flush(Duration::from_secs(5)).expect("flush");
        assert_eq!(
            *errors.1.lock().unwrap(),
            0,
            "{mechanism} {user}: delivered"
        );
        let reported = errors.0.lock().unwrap().join("\n");
        assert!(
            reported.contains(INVALID_CREDENTIALS),
            "{mechanism} {user}: {reported}"
        );
    }

    // The broker serves on: anonymous and logged-in clients alike (alice's
    // failures of this second are behind her).
    std::thread::sleep(Duration::from_millis(1100));
    produce(&broker, "orders", &[], &["anonymous".to_owned()]);
    produce(
        &broker,
        "orders",
        &sasl("SCRAM-SHA-512", "alice", "alice-pw"),
        &["alice".to_owned()],
    );
    broker.stop();
}

#[test]
fn failed_logins_are_limited_per_user_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(config(dir.path()));
    // Kafka's fewest iterations, so that the attempts fit in a second.
    let mut admin = scram_login(&broker, ScramMechanism::Sha512, ADMIN, ADMIN_PASSWORD).unwrap();
    let r = alter(
        &mut admin,
        vec![upsertion("alice", ScramMechanism::Sha256, "alice-pw", 4096)],
        vec![],
    );
    assert_eq!(r.results[0].error_code, 0);
    let started = Instant::now();
    for _ in 0..5 {
        let refused = plain_login(&broker, "alice", "guess").err();
        assert_eq!(
            refused.map(|(_, m)| m).as_deref(),
            Some(INVALID_CREDENTIALS)
        );
    }
    // The 6th attempt in the second is refused before the password is
    // looked at: the right one is refused too, with a message saying why.
    let refused = plain_login(&broker, "alice", "alice-pw").err();
    let again = scram_login(&broker, ScramMechanism::Sha256, "alice", "alice-pw").err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the attempts took {:?}",
        started.elapsed()
    );
    for refused in [refused, again] {
        let (code, message) = refused.expect("refused");
        assert_eq!(code, SASL_AUTHENTICATION_FAILED);
        assert!(message.contains("too many failed attempts"), "{message}");
    }
    // Another user from the same address is not held back.
    assert!(scram_login(&broker, ScramMechanism::Sha512, ADMIN, ADMIN_PASSWORD).is_ok());
    // A second later, alice gets in.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(plain_login(&broker, "alice", "alice-pw").is_ok());
    broker.stop();
}

#[test]
fn credentials_are_managed_by_super_users_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(BrokerConfig {
        super_users: vec!["User:root".into()],
        ..config(dir.path())
    });
    // Anonymous clients and ordinary users may not see or change users.
    let mut anonymous = Raw::connect(broker.addr);
    let r = alter(
        &mut anonymous,
        vec![upsertion("eve", ScramMechanism::Sha256, "x", 4096)],
        vec![],
    );
    assert_eq!(r.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(
        describe(&mut anonymous, None).error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    create_user(&broker, "bob", "bob-pw");
    let mut bob = scram_login(&broker, ScramMechanism::Sha256, "bob", "bob-pw").unwrap();
    let r = alter(
        &mut bob,
        vec![upsertion("bob", ScramMechanism::Sha256, "y", 4096)],
        vec![],
    );
    assert_eq!(r.results[0].error_code, CLUSTER_AUTHORIZATION_FAILED);

    // The admin (from the config) makes root; root, a super user, makes
    // carol with one mechanism and the iterations Kafka allows.
    create_user(&broker, "root", "root-pw");
    let mut root = scram_login(&broker, ScramMechanism::Sha512, "root", "root-pw").unwrap();
    let r = alter(
        &mut root,
        vec![
            upsertion("carol", ScramMechanism::Sha512, "carol-pw", 16384),
            upsertion("dave", ScramMechanism::Sha256, "x", 1000),
        ],
        vec![
            ScramCredentialDeletion::default()
                .with_name(text("bob"))
                .with_mechanism(1),
        ],
    );
    let codes: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("bob".into(), 0),
            ("carol".into(), 0),
            ("dave".into(), ResponseError::UnacceptableCredential.code())
        ],
        "too few iterations"
    );
    let d = describe(&mut root, Some(&["carol", "bob", "nobody"]));
    assert_eq!(d.error_code, 0);
    let described: Vec<Described> = d
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        described,
        [
            ("carol".into(), 0, vec![(2, 16384)]),
            ("bob".into(), 0, vec![(2, 8192)]),
            (
                "nobody".into(),
                ResponseError::ResourceNotFound.code(),
                vec![]
            ),
        ],
    );
    // bob's SHA-256 credential is gone, his SHA-512 one works.
    assert!(scram_login(&broker, ScramMechanism::Sha256, "bob", "bob-pw").is_err());
    assert!(scram_login(&broker, ScramMechanism::Sha512, "bob", "bob-pw").is_ok());
    broker.stop();

    // Everything is still there after a restart (and nothing readable by
    // others: the file is the broker's alone).
    let broker = TestBroker::start_with(config(dir.path()));
    assert!(scram_login(&broker, ScramMechanism::Sha512, "carol", "carol-pw").is_ok());
    assert!(scram_login(&broker, ScramMechanism::Sha512, "bob", "bob-pw").is_ok());
    assert!(plain_login(&broker, "carol", "carol-pw").is_ok());
    let stored = std::fs::read_to_string(dir.path().join("users.yaml")).unwrap();
    assert!(!stored.contains("carol-pw") && stored.contains("carol"));
    broker.stop();
}

/// SaslHandshake v0 (older clients): the SCRAM messages travel as bare
/// frames; a second handshake after logging in is refused.
#[test]
fn scram_over_bare_frames_after_handshake_v0() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(config(dir.path()));
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::SaslHandshake(h) = raw.call(
        ApiKey::SaslHandshake,
        0,
        SaslHandshakeRequest::default()
            .with_mechanism(text("SCRAM-SHA-256"))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let names: Vec<String> = h.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(names, ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]);
    let bare = |raw: &mut Raw, token: &[u8]| {
        let mut frame = (token.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(token);
        raw.send_bytes(&frame);
        raw.read_frame().expect("an answer").to_vec()
    };
    let (mut client, first) =
        ScramClient::new(ScramMechanism::Sha256, ADMIN, ADMIN_PASSWORD).unwrap();
    let server_first = bare(&mut raw, &first);
    let last = client.finish(&server_first).unwrap();
    let server_final = bare(&mut raw, &last);
    client.verify(&server_final).unwrap();
    // Logged in: requests go on, and a describe is allowed (admin).
    assert_eq!(describe(&mut raw, None).error_code, 0);
    assert_eq!(handshake(&mut raw, "PLAIN"), ILLEGAL_SASL_STATE);
    broker.stop();
}

/// Listeners, logins and ACLs together, as a secured deployment runs them:
/// a SASL_PLAINTEXT listener (logging in required) with an authorizer. A
/// SCRAM user whom a binding allows to write produces; another user, logged
/// in just as well, is refused with TOPIC_AUTHORIZATION_FAILED; a client
/// that does not log in gets nothing from that listener.
#[test]
fn users_logged_in_on_a_sasl_listener_are_authorized_by_acls() {
    use rdkafka::error::RDKafkaErrorCode;
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let dir = tempfile::tempdir().unwrap();
    let mut config: BrokerConfig = fjord_broker::yaml::from_str(
        "listeners: PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\n\
         authorizer.class.name: acl\n",
    )
    .unwrap();
    config.data_dir = dir.path().join("data");
    config.sasl_admin_user = Some(ADMIN.into());
    config.sasl_admin_password = Some(Password::new(ADMIN_PASSWORD));
    let broker = TestBroker::start_with(config);
    // The admin (a super user) logs in on the PLAINTEXT listener, where
    // logging in is optional, to make the users.
    create_user(&broker, "alice", "alice-pw");
    create_user(&broker, "bob", "bob-pw");
    broker
        .runtime
        .block_on(broker.local().ensure_topic("orders", Some(1), &[]))
        .unwrap();
    broker
        .runtime
        .block_on(broker.local().create_acls(&[fjord_controller::Acl {
            resource_type: 2, // TOPIC
            resource_name: "orders".into(),
            pattern_type: 3, // LITERAL
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 4,       // WRITE
            permission_type: 3, // ALLOW
        }]))
        .unwrap();

    let sasl_listener = broker.listener("SASL_PLAINTEXT");
    let produce = |settings: &[(String, String)]| {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", sasl_listener.to_string())
            .set("message.timeout.ms", "5000");
        for (k, v) in settings {
            config.set(k, v);
        }
        let producer: FutureProducer = config.create().unwrap();
        let record = FutureRecord::to("orders")
            .partition(0)
            .key("k")
            .payload("v");
        broker
            .runtime
            .block_on(producer.send(record, Duration::from_secs(10)))
            .map(|delivered| delivered.offset)
            .map_err(|(e, _)| e)
    };
    assert_eq!(
        produce(&sasl("SCRAM-SHA-512", "alice", "alice-pw")).expect("alice may write"),
        0
    );
    let refused = produce(&sasl("SCRAM-SHA-256", "bob", "bob-pw")).expect_err("bob may not");
    assert_eq!(
        refused.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused}"
    );
    // Without a login the SASL listener answers nothing but the SASL
    // exchange: the record is never delivered.
    assert!(
        produce(&[]).is_err(),
        "an anonymous client on a SASL listener"
    );
    broker.stop();
}
