//! Listeners and TLS with real clients: librdkafka (OpenSSL) over SSL and
//! mTLS, several listeners at once, a plaintext client on a TLS port, a
//! certificate rotated on disk, and a SASL listener that refuses requests
//! before authentication. Certificates are made at test time (rcgen).

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use certs::Ca;
use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, DescribeClusterRequest, MetadataRequest, RequestKind, ResponseKind,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rcgen::DnType;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A broker config from YAML text, data in `dir`, ports picked by the OS.
fn config(dir: &Path, yaml: &str) -> BrokerConfig {
    let mut config: BrokerConfig = fjord_broker::yaml::from_str(yaml).expect("config parses");
    config.data_dir = dir.join("data");
    config
}

/// librdkafka settings for a client of `addr` over SSL trusting `ca`.
fn ssl_client(addr: std::net::SocketAddr, ca: &Path) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr.to_string())
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string())
        .set("socket.timeout.ms", "5000")
        .set("reconnect.backoff.max.ms", "200");
    c
}

/// Whether a client made from `c` gets the cluster's metadata within
/// `wait`, and the brokers it names (`host:port`).
fn metadata(c: &ClientConfig, wait: Duration) -> Result<Vec<String>, String> {
    let consumer: BaseConsumer = c.create().map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, wait)
        .map_err(|e| e.to_string())?;
    Ok(metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect())
}

fn produce(c: &ClientConfig, topic: &str, n: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = c
        .clone()
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    for i in 0..n {
        let value = format!("value-{i}");
        let key = format!("key-{i}");
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&value))
            .map_err(|(e, _)| e)
            .expect("queued");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("all delivered");
}

/// Consumes `n` records of `topic` in a group (FindCoordinator, JoinGroup,
/// offsets: the whole path), checking each value in order.
fn consume(c: &ClientConfig, topic: &str, n: usize) {
    let consumer: BaseConsumer = c
        .clone()
        .set("group.id", "tls-readers")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < n {
        assert!(Instant::now() < deadline, "only {seen} of {n} records read");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                assert_eq!(m.payload(), Some(format!("value-{seen}").as_bytes()));
                seen += 1;
            }
            Some(Err(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit over SSL");
}

/// SSL with a PLAINTEXT listener beside it: librdkafka produces and
/// consumes in a group over SSL (the coordinator it is told of is the SSL
/// endpoint), and each listener advertises itself in Metadata and
/// DescribeCluster.
#[test]
fn produce_and_consume_over_ssl_beside_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let keystore = dir.path().join("broker.pem");
    std::fs::write(&keystore, ca.server_keystore()).unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        &format!(
            "listeners: PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0\n\
             ssl.keystore.location: {}\n",
            keystore.display()
        ),
    ));
    let (plain, ssl) = (broker.listener("PLAINTEXT"), broker.listener("SSL"));
    assert_ne!(plain, ssl);

    let client = ssl_client(ssl, &ca.pem_path);
    assert_eq!(
        metadata(&client, Duration::from_secs(10)).unwrap(),
        [ssl.to_string()]
    );
    let mut plain_client = ClientConfig::new();
    plain_client.set("bootstrap.servers", plain.to_string());
    assert_eq!(
        metadata(&plain_client, Duration::from_secs(10)).unwrap(),
        [plain.to_string()]
    );
    // DescribeCluster answers with the listener asked, too.
    let mut raw = Raw::connect(plain);
    let ResponseKind::DescribeCluster(cluster) = raw.call(
        ApiKey::DescribeCluster,
        0,
        RequestKind::DescribeCluster(DescribeClusterRequest::default().with_endpoint_type(1)),
    ) else {
        panic!("not a DescribeCluster answer")
    };
    assert_eq!(cluster.brokers[0].port, i32::from(plain.port()));

    produce(&client, "over-ssl", 500);
    consume(&client, "over-ssl", 500);
    broker.stop();
}

/// `ssl.client.auth: required` on one listener: librdkafka without a
/// certificate gets nothing, with one signed by the truststore's CA it
/// produces; a certificate of another CA is refused.
#[test]
fn mtls_required_needs_a_certificate_from_the_truststore() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let other_ca = Ca::new(dir.path(), "other-ca");
    let keystore = dir.path().join("broker.pem");
    std::fs::write(&keystore, ca.server_keystore()).unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        &format!(
            "listeners: MTLS://127.0.0.1:0\n\
             listener.security.protocol.map: MTLS:SSL\n\
             ssl.keystore.location: {keystore}\n\
             listener.name.mtls.ssl.client.auth: required\n\
             listener.name.mtls.ssl.truststore.location: {ca}\n\
             listener.name.mtls.ssl.principal.mapping.rules: RULE:^CN=(.*?),.*$/$1/L\n",
            keystore = keystore.display(),
            ca = ca.pem_path.display()
        ),
    ));
    let addr = broker.listener("MTLS");
    let anonymous = ssl_client(addr, &ca.pem_path);
    assert!(metadata(&anonymous, Duration::from_secs(3)).is_err());

    let subject = [
        (DnType::OrganizationName, "acme"),
        (DnType::CommonName, "Writer"),
    ];
    let (crt, key) = other_ca.client(dir.path(), "stranger", &subject);
    let mut stranger = ssl_client(addr, &ca.pem_path);
    stranger
        .set("ssl.certificate.location", crt.display().to_string())
        .set("ssl.key.location", key.display().to_string());
    assert!(metadata(&stranger, Duration::from_secs(3)).is_err());

    let (crt, key) = ca.client(dir.path(), "writer", &subject);
    let mut writer = ssl_client(addr, &ca.pem_path);
    writer
        .set("ssl.certificate.location", crt.display().to_string())
        .set("ssl.key.location", key.display().to_string());
    assert_eq!(
        metadata(&writer, Duration::from_secs(10)).unwrap(),
        [addr.to_string()]
    );
    produce(&writer, "mtls", 10);
    broker.stop();
}

/// A plaintext Kafka client on a TLS port is closed (with at most a TLS
/// alert), and the broker serves TLS clients on.
#[test]
fn plaintext_client_on_a_tls_port_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let keystore = dir.path().join("broker.pem");
    std::fs::write(&keystore, ca.server_keystore()).unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        &format!(
            "listeners: SSL://127.0.0.1:0\nssl.keystore.location: {}\n",
            keystore.display()
        ),
    ));
    let addr = broker.listener("SSL");
    for _ in 0..3 {
        let mut raw = Raw::connect(addr);
        let (_, frame) = raw.frame(
            ApiKey::ApiVersions,
            3,
            &RequestKind::ApiVersions(
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("raw"))
                    .with_client_software_version(StrBytes::from_static_str("1")),
            ),
        );
        raw.send_bytes(&frame);
        let mut answer = Vec::new();
        raw.stream
            .read_to_end(&mut answer)
            .expect("closed by the broker, not timed out");
        // Nothing, or a TLS alert record (content type 21): no Kafka answer.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    }
    // librdkafka speaking plaintext fails too, and TLS clients still work.
    let mut plain = ClientConfig::new();
    plain.set("bootstrap.servers", addr.to_string());
    assert!(metadata(&plain, Duration::from_secs(2)).is_err());
    assert_eq!(
        metadata(&ssl_client(addr, &ca.pem_path), Duration::from_secs(10)).unwrap(),
        [addr.to_string()]
    );
    broker.stop();
}

/// A client that opens a TLS connection and never says hello is closed
/// when the handshake timeout (10 s) runs out.
#[test]
fn a_silent_client_is_closed_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let keystore = dir.path().join("broker.pem");
    std::fs::write(&keystore, ca.server_keystore()).unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        &format!(
            "listeners: SSL://127.0.0.1:0\nssl.keystore.location: {}\n",
            keystore.display()
        ),
    ));
    let mut raw = Raw::connect(broker.listener("SSL"));
    let started = Instant::now();
    let mut answer = Vec::new();
    raw.stream
        .read_to_end(&mut answer)
        .expect("closed by the broker, not timed out");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(25),
        "{waited:?}"
    );
    broker.stop();
}

/// The keystore replaced on disk is served to new connections within
/// `ssl.reload.interval.ms`; a broken file keeps the certificate before it.
#[test]
fn a_rotated_certificate_is_served_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new(dir.path(), "old-ca");
    let new_ca = Ca::new(dir.path(), "new-ca");
    let keystore = dir.path().join("broker.pem");
    std::fs::write(&keystore, old_ca.server_keystore()).unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        &format!(
            "listeners: SSL://127.0.0.1:0\nssl.keystore.location: {}\n\
             ssl.reload.interval.ms: 100\n",
            keystore.display()
        ),
    ));
    let addr = broker.listener("SSL");
    let trusts_old = ssl_client(addr, &old_ca.pem_path);
    let trusts_new = ssl_client(addr, &new_ca.pem_path);
    assert!(metadata(&trusts_old, Duration::from_secs(10)).is_ok());
    assert!(metadata(&trusts_new, Duration::from_secs(2)).is_err());

    // Rotated as deployment tools do: a new file moved over the old one.
    let staged = dir.path().join("broker.pem.new");
    std::fs::write(&staged, new_ca.server_keystore()).unwrap();
    std::fs::rename(&staged, &keystore).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metadata(&trusts_new, Duration::from_secs(2)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served"
        );
    }
    assert!(metadata(&trusts_old, Duration::from_secs(2)).is_err());

    // A broken file (half written, wrong content) keeps the new certificate.
    std::fs::write(&keystore, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(metadata(&trusts_new, Duration::from_secs(10)).is_ok());
    broker.stop();
}

/// On a SASL_PLAINTEXT listener a connection may send only ApiVersions and
/// the SASL requests before it authenticates, in frames of at most
/// `sasl.server.max.receive.size`; anything else closes it. The PLAINTEXT
/// listener beside it serves anonymous clients as before.
#[test]
fn a_sasl_listener_refuses_requests_before_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_with(config(
        dir.path(),
        "listeners: PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\n",
    ));
    let sasl = broker.listener("SASL_PLAINTEXT");
    let metadata_request = || RequestKind::Metadata(MetadataRequest::default().with_topics(None));

    let mut raw = Raw::connect(sasl);
    let ResponseKind::ApiVersions(versions) = raw.call(
        ApiKey::ApiVersions,
        0,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!("not an ApiVersions answer")
    };
    assert_eq!(versions.error_code, 0);
    let ResponseKind::SaslHandshake(handshake) = raw.call(
        ApiKey::SaslHandshake,
        1,
        RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        ),
    ) else {
        panic!("not a SaslHandshake answer")
    };
    assert_eq!(handshake.error_code, 0);
    let (_, frame) = raw.frame(ApiKey::Metadata, 12, &metadata_request());
    raw.send_bytes(&frame);
    assert!(raw.read_frame().is_none(), "Metadata before authentication");

    // A frame over 512 KiB before authentication closes the connection
    // without the broker reading it.
    let mut raw = Raw::connect(sasl);
    raw.send_bytes(&600_000i32.to_be_bytes());
    raw.send_bytes(&[0; 1024]);
    assert!(raw.read_frame().is_none(), "an oversized frame");

    // librdkafka without SASL on the SASL listener gets no metadata.
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", sasl.to_string());
    assert!(metadata(&client, Duration::from_secs(2)).is_err());

    // The PLAINTEXT listener serves anonymous clients.
    let mut raw = Raw::connect(broker.listener("PLAINTEXT"));
    let ResponseKind::Metadata(answer) = raw.call(ApiKey::Metadata, 12, metadata_request()) else {
        panic!("not a Metadata answer")
    };
    assert_eq!(answer.brokers.len(), 1);
    broker.stop();
}
