//! OAUTHBEARER with the JWKS served over https, as an identity provider
//! serves it: a rustls server in the test with a certificate from a CA
//! made here (rcgen), which the broker trusts through Kafka's
//! `ssl.truststore.location` option of the OAuthBearerLoginModule line.
//! The broker finds the JWKS through the provider's OIDC discovery
//! document; librdkafka logs in with a token of the first key; the
//! provider rotates to a new key, and a token with it is accepted after
//! the broker fetches the JWKS again (once, however many unknown keys
//! come); a broker that does not trust the CA, and one whose endpoint does
//! not answer, refuse tokens with a clear reason and serve on.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;
#[path = "common/oauth.rs"]
#[allow(dead_code, reason = "the JWKS is served here, not named by a file")]
mod issuer;

use std::error::Error;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use issuer::Issuer;
use kafka_protocol::messages::{
    ApiKey, ResponseKind, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

/// Where the provider's discovery document is served (Keycloak's layout).
const DISCOVERY: &str = "/realms/kafka/.well-known/openid-configuration";
const KEYS: &str = "/realms/kafka/protocol/openid-connect/certs";

/// A provider's https endpoint: the discovery document and the JWKS of
/// the issuers it is given, counting the requests for each path.
struct Provider {
    addr: SocketAddr,
    jwks: Arc<Mutex<String>>,
    hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Provider {
    /// Serves on a free port with a certificate for 127.0.0.1 signed by a
    /// CA made here, whose certificate goes to `ca_file`.
    fn start(ca_file: &Path) -> Provider {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "idp-test-ca");
        let ca = ca.self_signed(&ca_key).unwrap();
        std::fs::write(ca_file, ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let jwks = Arc::new(Mutex::new(String::new()));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (jwks, hits, stop) = (Arc::clone(&jwks), Arc::clone(&hits), Arc::clone(&stop));
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(tcp) = tcp else { continue };
                    let (config, jwks, hits) =
                        (Arc::clone(&config), Arc::clone(&jwks), Arc::clone(&hits));
                    std::thread::spawn(move || {
                        let _ = serve(tcp, config, addr, &jwks, &hits);
                    });
                }
            })
        };
        Provider {
            addr,
            jwks,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn discovery_url(&self) -> String {
        format!("https://{}{DISCOVERY}", self.addr)
    }

    /// From now on the JWKS holds `issuers`' keys.
    fn publish(&self, issuers: &[&Issuer]) {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<serde_json::Value> = issuers
            .iter()
            .map(|i| {
                let text = std::fs::read_to_string(i.write_jwks(dir.path())).unwrap();
                let set: serde_json::Value = serde_json::from_str(&text).unwrap();
                set["keys"][0].clone()
            })
            .collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys }).to_string();
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Stops answering: the port is closed.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// One request on `tcp` over TLS: the discovery document or the JWKS.
fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    addr: SocketAddr,
    jwks: &Mutex<String>,
    hits: &Mutex<Vec<String>>,
) -> Result<(), Box<dyn Error>> {
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config)?, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = tls.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    hits.lock().unwrap().push(path.clone());
    let (status, body) = match path.as_str() {
        DISCOVERY => (
            "200 OK",
            json!({
                "issuer": issuer::ISSUER,
                "jwks_uri": format!("https://{addr}{KEYS}"),
            })
            .to_string(),
        ),
        KEYS => ("200 OK", jwks.lock().unwrap().clone()),
        _ => ("404 Not Found", String::new()),
    };
    write!(
        tls,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

/// A broker with a SASL_PLAINTEXT listener (OAUTHBEARER) and a PLAINTEXT
/// one, its JWKS at `url`, trusting `ca` for it when given.
fn start(dir: &Path, url: &str, ca: Option<&PathBuf>) -> TestBroker {
    let mut yaml = format!(
        "listeners: SASL_PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0\n\
         sasl.oauthbearer.jwks.endpoint.url: {url}\n\
         sasl.oauthbearer.expected.audience: {}\n\
         sasl.oauthbearer.expected.issuer: {}\n",
        issuer::AUDIENCE,
        issuer::ISSUER
    );
    if let Some(ca) = ca {
        yaml.push_str(&format!(
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config: >-\n  \
             org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required\n  \
             ssl.truststore.location=\"{}\" ssl.truststore.type=\"PEM\";\n",
            ca.display()
        ));
    }
    let mut config: BrokerConfig = fjord_broker::yaml::from_str(&yaml).unwrap();
    config.data_dir = dir.join("data");
    TestBroker::start_with(config)
}

/// librdkafka with one token, recording its errors and deliveries.
struct Token {
    token: String,
    errors: Mutex<Vec<String>>,
    delivered: Mutex<usize>,
}

impl ClientContext for Token {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        Ok(OAuthToken {
            token: self.token.clone(),
            principal_name: "ignored-by-the-broker".into(),
            lifetime_ms: (issuer::now_s() as i64 + 300) * 1000,
        })
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }
}

impl ProducerContext for Token {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        if result.is_ok() {
            *self.delivered.lock().unwrap() += 1;
        }
    }
}

/// librdkafka produces 5 records to `topic` with `token`: all delivered.
fn produce_with(broker: &TestBroker, token: String, topic: &str) {
    let producer: BaseProducer<Token> = ClientConfig::new()
        .set(
            "bootstrap.servers",
            broker.listener("SASL_PLAINTEXT").to_string(),
        )
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "OAUTHBEARER")
        .set("message.timeout.ms", "15000")
        .create_with_context(Token {
            token,
            errors: Mutex::default(),
            delivered: Mutex::default(),
        })
        .unwrap();
    for i in 0..5 {
        producer
            .send(BaseRecord::<(), _>::to(topic).payload(&format!("v-{i}")))
            .unwrap();
    }
    producer.flush(Duration::from_secs(20)).unwrap();
    let context = producer.context();
    assert_eq!(
        *context.delivered.lock().unwrap(),
        5,
        "{:?}",
        context.errors.lock().unwrap()
    );
}

/// SaslHandshake v1 and SaslAuthenticate v2 with `token` on a new raw
/// connection.
fn login(broker: &TestBroker, token: &str) -> SaslAuthenticateResponse {
    let mut raw = Raw::connect(broker.listener("SASL_PLAINTEXT"));
    let ResponseKind::SaslHandshake(h) = raw.call(
        ApiKey::SaslHandshake,
        1,
        SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str("OAUTHBEARER"))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let ResponseKind::SaslAuthenticate(a) = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(format!("n,,\x01auth=Bearer {token}\x01\x01")))
            .into(),
    ) else {
        panic!("not an authenticate answer");
    };
    a
}

fn refusal(answer: &SaslAuthenticateResponse) -> String {
    assert_eq!(answer.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    answer
        .error_message
        .as_deref()
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// The broker answers Metadata on its PLAINTEXT listener (it serves on).
fn serves(broker: &TestBroker) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            broker.listener("PLAINTEXT").to_string(),
        )
        .create()
        .unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_jwks_over_https_from_a_private_ca_follows_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("idp-ca.pem");
    let mut provider = Provider::start(&ca);
    let first = Issuer::new("key-1");
    provider.publish(&[&first]);

    // Found through the discovery document, fetched at start.
    let broker = start(&dir.path().join("b1"), &provider.discovery_url(), Some(&ca));
    assert_eq!((provider.hits(DISCOVERY), provider.hits(KEYS)), (1, 1));
    produce_with(&broker, first.token("alice", 300), "orders");

    // The provider rotates to a new key: a token signed with it makes the
    // broker fetch the JWKS again, and logs in.
    let second = Issuer::new("key-2");
    provider.publish(&[&second]);
    produce_with(&broker, second.token("alice", 300), "orders");
    assert_eq!(provider.hits(KEYS), 2);
    // A key the provider never published: refused by name, and no third
    // fetch within the refetch interval (10 s), however often it comes.
    let stranger = Issuer::new("key-3");
    for _ in 0..3 {
        let why = refusal(&login(&broker, &stranger.token("mallory", 300)));
        assert!(why.contains("key id \"key-3\" is not in the JWKS"), "{why}");
    }
    assert_eq!(provider.hits(KEYS), 2);

    // A broker not told of the private CA cannot fetch the JWKS (its
    // certificate is not the web PKI's): tokens are refused with that
    // reason, and it serves on.
    let untrusting = start(&dir.path().join("b2"), &provider.discovery_url(), None);
    let why = refusal(&login(&untrusting, &second.token("alice", 300)));
    assert!(
        why.contains("the broker cannot load its JWKS; try again later"),
        "{why}"
    );
    serves(&untrusting);
    untrusting.stop();

    // The endpoint stops answering: a broker started now starts all the
    // same and refuses tokens with the same reason; the first broker keeps
    // the keys it loaded.
    provider.stop();
    let orphan = start(&dir.path().join("b3"), &provider.discovery_url(), Some(&ca));
    let why = refusal(&login(&orphan, &second.token("alice", 300)));
    assert!(
        why.contains("the broker cannot load its JWKS; try again later"),
        "{why}"
    );
    serves(&orphan);
    orphan.stop();
    assert_eq!(login(&broker, &second.token("alice", 300)).error_code, 0);
    produce_with(&broker, second.token("bob", 300), "orders");
    broker.stop();
}
