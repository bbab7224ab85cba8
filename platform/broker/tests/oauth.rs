//! OAUTHBEARER and re-authentication with real clients on real sockets:
//! librdkafka logs in with tokens signed here (its token callback) to
//! produce and consume in a group; an expired token, a bad signature and a
//! wrong audience are refused with the reason in the client's error while
//! the broker serves on; librdkafka re-authenticates across
//! `connections.max.reauth.ms` without losing a record; and a raw
//! connection that does not re-authenticate is closed once its session
//! ends, while one that does goes on (as the same principal only).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;
#[path = "common/oauth.rs"]
mod issuer;

use std::collections::BTreeSet;
use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use issuer::Issuer;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, ResponseKind, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// A broker whose only listener is SASL_PLAINTEXT, trusting `issuer`.
fn start(dir: &std::path::Path, issuer: &Issuer, extra: &str) -> TestBroker {
    let jwks = issuer.write_jwks(dir);
    let yaml = format!(
        "listeners: SASL_PLAINTEXT://127.0.0.1:0\n{}{extra}",
        issuer::broker_yaml(&jwks)
    );
    let mut config: BrokerConfig = fjord_broker::yaml::from_str(&yaml).unwrap();
    config.data_dir = dir.join("data");
    TestBroker::start_with(config)
}

/// A librdkafka context handing out tokens from `make` (called at each
/// refresh), recording client errors and deliveries.
#[derive(Clone)]
struct Tokens {
    make: Arc<dyn Fn() -> (String, i64) + Send + Sync>,
    refreshes: Arc<Mutex<usize>>,
    errors: Arc<Mutex<Vec<String>>>,
    delivered: Arc<Mutex<usize>>,
}

impl Tokens {
    fn new(make: impl Fn() -> (String, i64) + Send + Sync + 'static) -> Tokens {
        Tokens {
            make: Arc::new(make),
            refreshes: Arc::default(),
            errors: Arc::default(),
            delivered: Arc::default(),
        }
    }

    /// Good tokens from `issuer` for `sub`, valid `lifetime_s` seconds.
    fn good(issuer: Arc<Issuer>, sub: &'static str, lifetime_s: u64) -> Tokens {
        Tokens::new(move || {
            let token = issuer.token(sub, lifetime_s);
            (token, (issuer::now_s() + lifetime_s) as i64 * 1000)
        })
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}

impl ClientContext for Tokens {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        *self.refreshes.lock().unwrap() += 1;
        let (token, lifetime_ms) = (self.make)();
        Ok(OAuthToken {
            token,
            principal_name: "ignored-by-the-broker".into(),
            lifetime_ms,
        })
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Tokens {}

impl rdkafka::producer::ProducerContext for Tokens {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            *self.delivered.lock().unwrap() += 1;
        }
    }
}

fn client_config(broker: &TestBroker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set("message.timeout.ms", "15000");
    config
}

fn producer(broker: &TestBroker, tokens: &Tokens) -> BaseProducer<Tokens> {
    client_config(broker)
        .create_with_context(tokens.clone())
        .expect("producer")
}

/// Produces `values` and waits for them all to be delivered.
fn produce(producer: &BaseProducer<Tokens>, topic: &str, values: &[String]) {
    for value in values {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(value))
            .expect("enqueue");
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
}

/// Reads `topic` in group `group` until `count` distinct values came.
fn consume(broker: &TestBroker, tokens: &Tokens, group: &str, topic: &str, count: usize) {
    let mut config = client_config(broker);
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer<Tokens> = config.create_with_context(tokens.clone()).unwrap();
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.insert(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(seen.len(), count, "{:?}", tokens.errors());
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    let committed = consumer.committed(Duration::from_secs(10)).unwrap();
    assert_eq!(
        committed.elements()[0].offset(),
        rdkafka::Offset::Offset(count as i64)
    );
}

fn values(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

#[test]
fn librdkafka_produces_and_consumes_in_a_group_with_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(Issuer::new("key-1"));
    let broker = start(dir.path(), &issuer, "");
    let tokens = Tokens::good(Arc::clone(&issuer), "alice", 300);
    let producer = producer(&broker, &tokens);
    produce(&producer, "orders", &values("v", 30));
    assert_eq!(*tokens.delivered.lock().unwrap(), 30);
    consume(&broker, &tokens, "readers", "orders", 30);
    assert!(*tokens.refreshes.lock().unwrap() >= 1);
    broker.stop();
}

/// librdkafka's view of a refused token: the broker's message, and no
/// metadata.
fn refused_reason(broker: &TestBroker, token: String) -> String {
    let tokens = Tokens::new(move || (token.clone(), (issuer::now_s() as i64 + 300) * 1000));
    let producer = producer(broker, &tokens);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        // Polling serves the token callback and the error callback.
        producer.poll(Duration::from_millis(100));
        let reasons = tokens.errors();
        if let Some(reason) = reasons.iter().find(|r| r.contains("OAUTHBEARER")) {
            assert!(
                producer
                    .client()
                    .fetch_metadata(None, Duration::from_millis(500))
                    .is_err()
            );
            return reason.clone();
        }
    }
    panic!("no refusal reported: {:?}", tokens.errors());
}

#[test]
fn expired_forged_and_misaddressed_tokens_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(Issuer::new("key-1"));
    let broker = start(dir.path(), &issuer, "");
    let now = issuer::now_s();

    let expired = issuer.token_for("alice", issuer::AUDIENCE, now - 120);
    let reason = refused_reason(&broker, expired);
    assert!(reason.contains("the token has expired"), "{reason}");

    // Signed by another key under the broker's key id.
    let forger = Issuer::new("key-1");
    let reason = refused_reason(&broker, forger.token("alice", 300));
    assert!(
        reason.contains("the token's signature does not verify"),
        "{reason}"
    );

    let misaddressed = issuer.token_for("alice", "another-service", now + 300);
    let reason = refused_reason(&broker, misaddressed);
    assert!(reason.contains("audience"), "{reason}");

    // The broker serves on: a good token still logs in and produces.
    let tokens = Tokens::good(Arc::clone(&issuer), "alice", 300);
    produce(&producer(&broker, &tokens), "after", &values("a", 5));
    assert_eq!(*tokens.delivered.lock().unwrap(), 5);
    broker.stop();
}

/// librdkafka re-authenticates before each session ends
/// (`connections.max.reauth.ms` of 3 s, tokens of 10 s, refreshed by the
/// client at 80 % of their life): a producer going for 25 s — eight
/// sessions, three tokens — loses nothing, and a consumer reads it all. (A
/// session ends at the sooner of the setting and its token's expiry, and
/// librdkafka re-authenticates at 90 % of it: with tokens of 4 s a session
/// could be 0.8 s long with 80 ms to spare, and on a loaded machine the
/// client was sometimes late; the broker then closes the connection, as
/// Kafka does.)
#[test]
fn librdkafka_reauthenticates_across_sessions_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(Issuer::new("key-1"));
    let broker = start(dir.path(), &issuer, "connections.max.reauth.ms: 3000\n");
    let tokens = Tokens::good(Arc::clone(&issuer), "alice", 10);
    let producer = producer(&broker, &tokens);
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(25) {
        producer
            .send(BaseRecord::<(), _>::to("steady").payload(&format!("r-{sent}")))
            .expect("enqueue");
        sent += 1;
        producer.poll(Duration::from_millis(50));
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
    assert_eq!(
        *tokens.delivered.lock().unwrap(),
        sent,
        "{:?}",
        tokens.errors()
    );
    // Tokens of 10 s over 25 s: refreshed along the way; and the sessions
    // were renewed on their connections, not ended (librdkafka reports a
    // broker closing a connection as an error).
    assert!(*tokens.refreshes.lock().unwrap() >= 3);
    assert_eq!(tokens.errors(), Vec::<String>::new());
    let reader = Tokens::good(Arc::clone(&issuer), "bob", 300);
    consume(&broker, &reader, "steady-readers", "steady", sent);
    broker.stop();
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn message(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

/// SaslHandshake v1 then SaslAuthenticate v2 on `raw`.
fn login(raw: &mut Raw, token: &str) -> SaslAuthenticateResponse {
    let ResponseKind::SaslHandshake(h) = raw.call(
        ApiKey::SaslHandshake,
        1,
        SaslHandshakeRequest::default()
            .with_mechanism(text("OAUTHBEARER"))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let ResponseKind::SaslAuthenticate(a) = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(message(token)))
            .into(),
    ) else {
        panic!("not an authenticate answer");
    };
    a
}

fn metadata_answered(raw: &mut Raw) -> bool {
    let (_, frame) = raw.frame(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None).into(),
    );
    raw.send_bytes(&frame);
    raw.read_frame().is_some()
}

/// The session lifetime is the shorter of `connections.max.reauth.ms` and
/// the token's; a connection that re-authenticates in time goes on, one
/// that does not is closed at its next request; another principal may not
/// take a session over.
#[test]
fn sessions_end_unless_reauthenticated_as_the_same_principal() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("key-1");
    let broker = start(dir.path(), &issuer, "connections.max.reauth.ms: 1500\n");
    let addr = broker.listener("SASL_PLAINTEXT");

    // Bounded by connections.max.reauth.ms.
    let mut idle = Raw::connect(addr);
    let a = login(&mut idle, &issuer.token("alice", 300));
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    assert!(
        (1..=1500).contains(&a.session_lifetime_ms),
        "{}",
        a.session_lifetime_ms
    );
    // Bounded by the token when it ends first (exp is in whole seconds:
    // 2 to 3 s from now).
    let dir2 = tempfile::tempdir().unwrap();
    let broker2 = start(dir2.path(), &issuer, "connections.max.reauth.ms: 600000\n");
    let mut by_token = Raw::connect(broker2.listener("SASL_PLAINTEXT"));
    let b = login(&mut by_token, &issuer.token("alice", 3));
    assert!(
        (1000..=3000).contains(&b.session_lifetime_ms),
        "{}",
        b.session_lifetime_ms
    );

    // One that re-authenticates within its session goes on.
    let mut renewing = Raw::connect(addr);
    assert_eq!(
        login(&mut renewing, &issuer.token("alice", 300)).error_code,
        0
    );
    std::thread::sleep(Duration::from_millis(800));
    let again = login(&mut renewing, &issuer.token("alice", 300));
    assert_eq!(again.error_code, 0, "{:?}", again.error_message);
    assert!(again.session_lifetime_ms > 0);

    // Past the lifetime, the idle one is closed at its next request.
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!metadata_answered(&mut idle), "an expired session served");
    assert!(metadata_answered(&mut renewing), "a renewed session closed");

    // Another principal may not take the session over.
    let mut hijack = Raw::connect(addr);
    assert_eq!(
        login(&mut hijack, &issuer.token("alice", 300)).error_code,
        0
    );
    let other = login(&mut hijack, &issuer.token("mallory", 300));
    assert_eq!(other.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(
        other
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("principal may not change")),
        "{:?}",
        other.error_message
    );
    assert!(hijack.is_closed());

    // Without connections.max.reauth.ms there is no session lifetime and a
    // second handshake is ILLEGAL_SASL_STATE, as in Kafka.
    let dir3 = tempfile::tempdir().unwrap();
    let broker3 = start(dir3.path(), &issuer, "");
    let mut plain = Raw::connect(broker3.listener("SASL_PLAINTEXT"));
    let a = login(&mut plain, &issuer.token("alice", 300));
    assert_eq!((a.error_code, a.session_lifetime_ms), (0, 0));
    let ResponseKind::SaslHandshake(h) = plain.call(
        ApiKey::SaslHandshake,
        1,
        SaslHandshakeRequest::default()
            .with_mechanism(text("OAUTHBEARER"))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 34, "ILLEGAL_SASL_STATE");
    let ResponseKind::ApiVersions(v) = plain.call(
        ApiKey::ApiVersions,
        3,
        ApiVersionsRequest::default()
            .with_client_software_name(text("raw"))
            .with_client_software_version(text("1"))
            .into(),
    ) else {
        panic!("not an ApiVersions answer");
    };
    assert_eq!(v.error_code, 0);
    broker3.stop();
    broker2.stop();
    broker.stop();
}
