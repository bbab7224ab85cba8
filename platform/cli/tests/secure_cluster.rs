//! A secured 3-node cluster of `fjord server` processes: clients on a
//! SASL_SSL listener (plus a PLAINTEXT one on loopback for the `fjord` CLI),
//! replication and the platform's own clients on an SSL inter-broker
//! listener that requires client certificates, and the controller quorum's
//! links on a SASL_SSL controller listener (`controller.listener.names`):
//! TLS with client certificates, then a SCRAM-SHA-512 login.
//!
//! One test runs the whole story on one cluster (three servers take a while
//! to start): every broker registers every listener and clients of each
//! listener are sent to the others' endpoint of that listener; users and
//! ACLs created through one broker apply on the others within a stated
//! bound; a topic with RF 3 replicates over TLS while a producer runs and
//! every node's certificate is rotated on disk (nothing acknowledged is
//! lost, new connections see the new certificate on every listener); the
//! leader is killed and everything is read back from another broker. A
//! fourth server whose certificate the cluster's CA did not sign, and a
//! fifth with the right certificate but not the quorum's password, are
//! refused by the quorum and never register.
//!
//! Node 1 also has a listener the others lack (`EXTRA`): its clients are
//! told of node 1 only, partitions led elsewhere are LISTENER_NOT_FOUND,
//! and groups coordinated elsewhere COORDINATOR_NOT_AVAILABLE, as Kafka
//! answers them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{fjord_at, free_port};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A user or an ACL made through one broker is in force on the others
/// within this (measured: see the eprintln lines).
const PROPAGATION: Duration = Duration::from_secs(5);
/// How often the nodes look at their certificate files.
const RELOAD_MS: u64 = 300;
const TOPIC: &str = "orders";
const ADMIN: (&str, &str) = ("admin", "admin-pw");
const CAROL: (&str, &str) = ("carol", "carol-pw");
/// The password of the quorum links' SCRAM login, the same on every node.
const QUORUM_PASSWORD: &str = "quorum-secret-of-this-cluster";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A node's keystore (chain, then key) for 127.0.0.1 and localhost,
    /// good as server and as client certificate.
    fn keystore(&self, cn: &str) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem())
    }
}

/// One node's ports and process.
struct Node {
    id: u32,
    dir: PathBuf,
    plain: u16,
    sasl_ssl: u16,
    internal: u16,
    controller: Option<u16>,
    /// A PLAINTEXT listener `EXTRA` that only this node has.
    extra: Option<u16>,
    child: Option<Child>,
}

impl Node {
    fn keystore(&self) -> PathBuf {
        self.dir.join("node.pem")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    fn plain(&self) -> String {
        format!("127.0.0.1:{}", self.plain)
    }

    fn sasl_ssl(&self) -> String {
        format!("127.0.0.1:{}", self.sasl_ssl)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let level = std::env::var("FJORD_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let child = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(["server", "--config"])
            .arg(self.dir.join("fjord.yaml"))
            .args(["--log", &level])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fjord server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.plain()).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "node {} exited before listening: {status}\n{}",
                    self.id,
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "node {} did not start", self.id);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct SecureCluster {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
    ca: Ca,
    nodes: Vec<Node>,
}

impl Drop for SecureCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
            if std::thread::panicking() {
                let text = std::fs::read_to_string(node.log()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "---- node {} log (tail) ----\n{}",
                    node.id,
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
    }
}

impl SecureCluster {
    /// Three voters; nothing started yet.
    fn new() -> SecureCluster {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("fjord-test-ca");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert.pem()).unwrap();
        let nodes = (1..=3)
            .map(|id| Node {
                id,
                dir: dir.path().join(format!("node-{id}")),
                plain: free_port(),
                sasl_ssl: free_port(),
                internal: free_port(),
                controller: Some(free_port()),
                extra: (id == 1).then(free_port),
                child: None,
            })
            .collect();
        SecureCluster {
            _dir: dir,
            ca_file,
            ca,
            nodes,
        }
    }

    fn voters(&self) -> String {
        self.nodes
            .iter()
            .filter_map(|n| Some(format!("{}@127.0.0.1:{}", n.id, n.controller?)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Writes `node`'s directory: its keystore (signed by `ca`) and
    /// fjord.yaml, whose quorum login has `quorum_password`.
    fn prepare(&self, node: &Node, ca: &Ca, quorum_password: &str) {
        std::fs::create_dir_all(&node.dir).unwrap();
        std::fs::write(node.keystore(), ca.keystore(&format!("node-{}", node.id))).unwrap();
        let mut listeners = vec![
            format!("PLAINTEXT://127.0.0.1:{}", node.plain),
            format!("SASL_SSL://127.0.0.1:{}", node.sasl_ssl),
            format!("INTERNAL://127.0.0.1:{}", node.internal),
        ];
        if let Some(port) = node.controller {
            listeners.push(format!("CONTROLLER://127.0.0.1:{port}"));
        }
        if let Some(port) = node.extra {
            listeners.push(format!("EXTRA://127.0.0.1:{port}"));
        }
        let yaml = format!(
            "node.id: {id}\n\
             log.dir: {data}\n\
             admin.listener: \"off\"\n\
             listeners: {listeners}\n\
             listener.security.protocol.map: PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SASL_SSL,EXTRA:PLAINTEXT\n\
             inter.broker.listener.name: INTERNAL\n\
             controller.listener.names: CONTROLLER\n\
             sasl.mechanism.controller.protocol: SCRAM-SHA-512\n\
             listener.name.controller.scram-sha-512.sasl.jaas.config: 'org.apache.kafka.common.security.scram.ScramLoginModule required username=\"fjord-internal\" password=\"{quorum_password}\";'\n\
             listener.name.controller.ssl.client.auth: required\n\
             controller.quorum.voters: {voters}\n\
             ssl.keystore.location: {keystore}\n\
             ssl.truststore.location: {ca}\n\
             listener.name.internal.ssl.client.auth: required\n\
             ssl.reload.interval.ms: {RELOAD_MS}\n\
             sasl.enabled.mechanisms: SCRAM-SHA-512,PLAIN\n\
             sasl.admin.user: {admin}\n\
             sasl.admin.password: {admin_pw}\n\
             authorizer.class.name: acl\n\
             broker.session.timeout.ms: 2000\n\
             num.partitions: 1\n",
            id = node.id,
            data = node.dir.join("data").display(),
            listeners = listeners.join(","),
            voters = self.voters(),
            keystore = node.keystore().display(),
            ca = self.ca_file.display(),
            admin = ADMIN.0,
            admin_pw = ADMIN.1,
        );
        std::fs::write(node.dir.join("fjord.yaml"), yaml).unwrap();
    }

    fn start(&mut self) {
        for node in &self.nodes {
            self.prepare(node, &self.ca, QUORUM_PASSWORD);
        }
        for node in &mut self.nodes {
            node.start();
        }
    }

    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize - 1]
    }

    /// A librdkafka client of `node`'s SASL_SSL listener, as `user`.
    fn sasl_ssl(&self, id: u32, (user, password): (&str, &str)) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.node(id).sasl_ssl())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.ca_file.display().to_string())
            .set("socket.timeout.ms", "5000")
            .set("log_level", "3");
        config
    }

    fn wait_for<T>(&self, what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match f() {
                Ok(value) => return value,
                Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
                // Four tries a second: under the five failed logins a
                // second a user may make.
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

/// The brokers a Metadata answer of `config`'s bootstrap server names:
/// id → `host:port`.
fn brokers(config: &ClientConfig) -> Result<BTreeMap<i32, String>, String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect())
}

/// Whether `topic` shows in a Metadata answer to `config`'s client without
/// an error (Metadata lists only topics the principal may describe).
fn describes(config: &ClientConfig, topic: &str) -> Result<(), String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    match metadata.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        Some(t) => Err(format!("{topic}: {:?}", t.error())),
        None => Err(format!("{topic}: not listed")),
    }
}

/// The certificate a new TLS connection to `addr` is served, presenting
/// `client` (a keystore) when given.
fn served_certificate(
    addr: &str,
    ca: &Path,
    client: Option<&Path>,
) -> Result<CertificateDer<'static>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(ca).map_err(|e| e.to_string())?;
    roots.add(ca).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        Some(keystore) => {
            let chain = CertificateDer::pem_file_iter(keystore)
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_file(keystore).map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        None => builder.with_no_client_auth(),
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while connection.is_handshaking() {
        connection
            .complete_io(&mut tcp)
            .map_err(|e| format!("{addr}: {e}"))?;
    }
    // With TLS 1.3 the server judges the client certificate after the
    // client's handshake ends: a refusal arrives as an alert on the first
    // read. Nothing else is sent before a request, so a read that times out
    // means the certificate was taken.
    tcp.set_read_timeout(Some(Duration::from_millis(300)))
        .map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    match std::io::Read::read(
        &mut rustls::Stream::new(&mut connection, &mut tcp),
        &mut byte,
    ) {
        Ok(0) => return Err(format!("{addr}: closed")),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        Err(e) => return Err(format!("{addr}: {e}")),
    }
    let cert = connection
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no certificate")?;
    Ok(cert.into_owned())
}

#[test]
fn a_secured_cluster_replicates_rotates_and_refuses_strangers() {
    let started = Instant::now();
    let mut cluster = SecureCluster::new();
    cluster.start();
    let ids = [1u32, 2, 3];

    // Every broker registered every listener: a client of the SASL_SSL
    // listener is told the others' SASL_SSL endpoints, one of the PLAINTEXT
    // listener their PLAINTEXT endpoints, and nobody the INTERNAL ones.
    let want = |port: fn(&Node) -> u16| -> BTreeMap<i32, String> {
        cluster
            .nodes
            .iter()
            .map(|n| (n.id as i32, format!("127.0.0.1:{}", port(n))))
            .collect()
    };
    for id in ids {
        let config = cluster.sasl_ssl(id, ADMIN);
        cluster.wait_for(&format!("node {id} lists three SASL_SSL brokers"), || {
            let seen = brokers(&config)?;
            (seen == want(|n| n.sasl_ssl))
                .then_some(())
                .ok_or(format!("{seen:?}"))
        });
        let mut plain = ClientConfig::new();
        plain
            .set("bootstrap.servers", cluster.node(id).plain())
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", ADMIN.0)
            .set("sasl.password", ADMIN.1);
        assert_eq!(brokers(&plain).unwrap(), want(|n| n.plain), "node {id}");
    }
    eprintln!("3 secured nodes up in {:?}", started.elapsed());

    // A user created through node 1 (the CLI on its loopback PLAINTEXT
    // listener) logs in on the others' SASL_SSL listeners; an ACL created
    // through node 1 lets her see the topic there.
    let admin_login = ["--sasl-user", ADMIN.0, "--sasl-password", ADMIN.1];
    let run = |args: &[&str]| -> (bool, String) {
        let args: Vec<&str> = args.iter().chain(&admin_login).copied().collect();
        fjord_at(&args, &cluster.node(1).plain(), "")
    };
    let (ok, out) = run(&["user", "create", CAROL.0, "--password", CAROL.1]);
    assert!(ok, "{out}");
    let created = Instant::now();
    for id in [2, 3] {
        let config = cluster.sasl_ssl(id, CAROL);
        cluster.wait_for(&format!("carol logs in on node {id}"), || {
            brokers(&config).map(|_| ())
        });
        let after = created.elapsed();
        eprintln!("node {id}: carol logs in over SASL_SSL {after:?} after her creation");
        assert!(after < PROPAGATION, "node {id}: {after:?}");
    }
    let admin = |id: u32| -> AdminClient<DefaultClientContext> {
        cluster.sasl_ssl(id, ADMIN).create().unwrap()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    cluster.wait_for("CreateTopics orders, RF 3", || {
        let results = runtime
            .block_on(admin(1).create_topics([&topic], &AdminOptions::new()))
            .map_err(|e| e.to_string())?;
        match results.first() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    for id in [2, 3] {
        let refused = describes(&cluster.sasl_ssl(id, CAROL), TOPIC);
        assert!(refused.is_err(), "carol sees {TOPIC} before any ACL");
    }
    let (ok, out) = run(&[
        "acl",
        "create",
        "--allow-principal",
        "User:carol",
        "--operation",
        "write,describe",
        "--topic",
        TOPIC,
    ]);
    assert!(ok, "{out}");
    let granted = Instant::now();
    for id in [2, 3] {
        let config = cluster.sasl_ssl(id, CAROL);
        cluster.wait_for(&format!("carol may describe {TOPIC} on node {id}"), || {
            describes(&config, TOPIC)
        });
        let after = granted.elapsed();
        eprintln!("node {id}: the ACL applies {after:?} after its creation");
        assert!(after < PROPAGATION, "node {id}: {after:?}");
    }

    // Node 1's EXTRA listener, which the others lack: a client of it is
    // told of node 1 alone; a partition another broker leads is
    // LISTENER_NOT_FOUND with no leader, and a group another broker
    // coordinates COORDINATOR_NOT_AVAILABLE, as Kafka answers them.
    let extra = format!("127.0.0.1:{}", cluster.node(1).extra.unwrap());
    // Six partitions with one replica each: placement spreads their
    // leaders over the three brokers.
    let spread = NewTopic::new("spread", 6, TopicReplication::Fixed(1));
    cluster.wait_for("CreateTopics spread", || {
        let results = runtime
            .block_on(admin(1).create_topics([&spread], &AdminOptions::new()))
            .map_err(|e| e.to_string())?;
        match results.first() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists))) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    type Seen = Vec<(i32, i32, Option<rdkafka::types::RDKafkaRespErr>)>;
    let partitions = |config: &ClientConfig| -> Result<Seen, String> {
        let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(Some("spread"), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let mut seen: Seen = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| (p.id(), p.leader(), p.error()))
            .collect();
        seen.sort_by_key(|p| p.0);
        (seen.len() == 6)
            .then_some(seen)
            .ok_or("not 6 partitions".to_owned())
    };
    // The leaders, to a client of the listener every broker has.
    let leaders = cluster.wait_for("spread's leaders on SASL_SSL", || {
        let seen = partitions(&cluster.sasl_ssl(1, ADMIN))?;
        seen.iter()
            .all(|p| p.1 > 0 && p.2.is_none())
            .then_some(seen)
            .ok_or("a partition without its leader".to_owned())
    });
    assert!(
        leaders.iter().any(|p| p.1 == 1) && leaders.iter().any(|p| p.1 != 1),
        "placement put every leader on one side: {leaders:?}"
    );
    let mut extra_client = ClientConfig::new();
    extra_client
        .set("bootstrap.servers", &extra)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", ADMIN.0)
        .set("sasl.password", ADMIN.1)
        .set("log_level", "3");
    assert_eq!(
        brokers(&extra_client).unwrap(),
        BTreeMap::from([(1, extra.clone())])
    );
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND as NOT_FOUND;
    let expected: Seen = leaders
        .iter()
        .map(|&(id, leader, _)| match leader {
            1 => (id, 1, None),
            _ => (id, -1, Some(NOT_FOUND)),
        })
        .collect();
    assert_eq!(partitions(&extra_client).unwrap(), expected);
    // FindCoordinator v4 for 30 groups, anonymously on EXTRA (PLAINTEXT)
    // once a binding lets anyone describe them: node 1's groups are named
    // at its EXTRA endpoint, the others' are not available there.
    let (ok, out) = run(&[
        "acl",
        "create",
        "--allow-principal",
        "User:ANONYMOUS",
        "--operation",
        "describe",
        "--group",
        "g-",
        "--resource-pattern-type",
        "prefixed",
    ]);
    assert!(ok, "{out}");
    let keys: Vec<String> = (0..30).map(|i| format!("g-{i}")).collect();
    let (here, elsewhere) = cluster.wait_for("groups coordinated on each side", || {
        let request = kafka_protocol::messages::FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(
                keys.iter()
                    .map(|k| kafka_protocol::protocol::StrBytes::from_string(k.clone()))
                    .collect(),
            );
        let response: kafka_protocol::messages::FindCoordinatorResponse = common::kafka::raw_call(
            extra.parse().unwrap(),
            kafka_protocol::messages::ApiKey::FindCoordinator,
            4,
            &request,
            0,
        )?;
        let (mut here, mut elsewhere) = (0, 0);
        for c in &response.coordinators {
            match (c.error_code, c.node_id.0) {
                (0, 1) if format!("{}:{}", c.host, c.port) == extra => here += 1,
                (15, -1)
                    if c.error_message
                        .as_deref()
                        .is_some_and(|m| m.contains("no listener")) =>
                {
                    elsewhere += 1
                }
                _ => return Err(format!("{}: {c:?}", c.key)),
            }
        }
        (here > 0 && elsewhere > 0)
            .then_some((here, elsewhere))
            .ok_or(format!("{here} here, {elsewhere} elsewhere"))
    });
    eprintln!("EXTRA listener: {here} groups coordinated by node 1, {elsewhere} not available");

    // Carol produces over SASL_SSL (acks=all: the followers copy over the
    // INTERNAL listener, TLS with client certificates) while every node's
    // certificate is replaced on disk.
    let before: Vec<CertificateDer<'static>> = ids
        .iter()
        .map(|&id| {
            served_certificate(&cluster.node(id).sasl_ssl(), &cluster.ca_file, None).unwrap()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let producer_config = {
        let mut c = cluster.sasl_ssl(2, CAROL);
        c.set("acks", "all")
            .set("enable.idempotence", "false")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5");
        c
    };
    let producing = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || -> (Vec<String>, Vec<String>) {
            let (acked_tx, acked_rx) = std::sync::mpsc::channel::<(String, bool)>();
            let producer: BaseProducer<AckContext> = producer_config
                .create_with_context(AckContext(parking_lot::Mutex::new(acked_tx)))
                .unwrap();
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let value = format!("v-{sent}");
                let record: BaseRecord<'_, (), String, Box<String>> =
                    BaseRecord::with_opaque_to(TOPIC, Box::new(value.clone()))
                        .partition(0)
                        .payload(&value);
                // A full queue drains as deliveries complete.
                if producer.send(record).is_ok() {
                    sent += 1;
                }
                producer.poll(Duration::from_millis(5));
            }
            producer.flush(Duration::from_secs(30)).unwrap();
            drop(producer);
            let (mut acked, mut failed) = (Vec::new(), Vec::new());
            for (value, ok) in acked_rx.try_iter() {
                if ok {
                    acked.push(value)
                } else {
                    failed.push(value)
                }
            }
            (acked, failed)
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let rotated = Instant::now();
    for node in &cluster.nodes {
        let fresh = node.dir.join("node.pem.new");
        std::fs::write(
            &fresh,
            cluster.ca.keystore(&format!("node-{}-rotated", node.id)),
        )
        .unwrap();
        std::fs::rename(&fresh, node.keystore()).unwrap();
    }
    for (i, &id) in ids.iter().enumerate() {
        let node = cluster.node(id);
        cluster.wait_for(&format!("node {id} serves its new certificate"), || {
            let now = served_certificate(&node.sasl_ssl(), &cluster.ca_file, None)?;
            (now != before[i]).then_some(()).ok_or("the old one".into())
        });
        // The same new one on the listeners the brokers use among
        // themselves, which take only a certificate from the CA.
        let sasl = served_certificate(&node.sasl_ssl(), &cluster.ca_file, None).unwrap();
        let internal = served_certificate(
            &format!("127.0.0.1:{}", node.internal),
            &cluster.ca_file,
            Some(&node.keystore()),
        )
        .unwrap();
        let controller = served_certificate(
            &format!("127.0.0.1:{}", node.controller.unwrap()),
            &cluster.ca_file,
            Some(&node.keystore()),
        )
        .unwrap();
        assert!(sasl == internal && internal == controller, "node {id}");
    }
    eprintln!(
        "certificates rotated on every node; served within {:?}",
        rotated.elapsed()
    );
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = producing.join().unwrap();
    assert!(failed.is_empty(), "records failed: {}", failed.len());
    assert!(
        acked.len() > 10,
        "only {} records acknowledged",
        acked.len()
    );
    eprintln!("{} records acknowledged across the rotation", acked.len());

    // Kill the leader; the others elect a new one from the ISR, and every
    // acknowledged record reads back from another broker over SASL_SSL.
    let leader = cluster.wait_for("the leader of orders-0", || {
        let consumer: BaseConsumer = cluster
            .sasl_ssl(1, ADMIN)
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(Some(TOPIC), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let partition = metadata.topics()[0]
            .partitions()
            .first()
            .ok_or("no partition")?;
        (partition.isr().len() == 3)
            .then_some(partition.leader() as u32)
            .ok_or(format!("isr {:?}", partition.isr()))
    });
    cluster.nodes[leader as usize - 1].kill();
    let reader = *ids.iter().find(|&&id| id != leader).unwrap();
    let read = cluster.wait_for(&format!("everything read back from node {reader}"), || {
        let consumer: BaseConsumer = cluster
            .sasl_ssl(reader, ADMIN)
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| e.to_string())?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(TOPIC, 0, Offset::Beginning)
            .map_err(|e| e.to_string())?;
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while values.len() < acked.len() && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => values
                    .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
                Some(Err(e)) => return Err(e.to_string()),
                None => {}
            }
        }
        (values.len() >= acked.len())
            .then_some(values)
            .ok_or_else(|| "not everything yet".to_owned())
    });
    let read: std::collections::HashSet<String> = read.into_iter().collect();
    let lost: Vec<&String> = acked.iter().filter(|v| !read.contains(*v)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    eprintln!(
        "leader {leader} killed: all {} records read from node {reader}",
        acked.len()
    );

    // A fourth server, a broker only, whose certificate another CA signed
    // (the voters refuse its TLS handshake), and a fifth whose certificate
    // the cluster's CA signed but whose quorum login has another password
    // (the voters refuse its SCRAM proof): neither ever registers.
    let stranger_ca = Ca::new("someone-else");
    for (id, ca, password) in [
        (4, &stranger_ca, QUORUM_PASSWORD),
        (5, &cluster.ca, "a-guess"),
    ] {
        let stranger = Node {
            id,
            dir: cluster._dir.path().join(format!("node-{id}")),
            plain: free_port(),
            sasl_ssl: free_port(),
            internal: free_port(),
            controller: None,
            extra: None,
            child: None,
        };
        cluster.prepare(&stranger, ca, password);
        cluster.nodes.push(stranger);
    }
    cluster.nodes[3].start();
    cluster.nodes[4].start();
    std::thread::sleep(Duration::from_secs(5));
    let seen = cluster.wait_for(&format!("node {reader} answers Metadata"), || {
        brokers(&cluster.sasl_ssl(reader, ADMIN))
    });
    assert!(
        !seen.contains_key(&4) && !seen.contains_key(&5),
        "a stranger registered: {seen:?}"
    );
    let refused = served_certificate(
        &format!("127.0.0.1:{}", cluster.node(reader).internal),
        &cluster.ca_file,
        Some(&cluster.node(4).keystore()),
    );
    assert!(
        refused.is_err(),
        "the INTERNAL listener took the stranger's certificate"
    );
    let voter_logs: String = ids
        .iter()
        .filter(|&&id| id != leader)
        .map(|&id| std::fs::read_to_string(cluster.node(id).log()).unwrap())
        .collect();
    assert!(voter_logs.contains("TLS handshake failed"), "{voter_logs}");
    assert!(
        voter_logs.contains("controller quorum link login refused"),
        "{voter_logs}"
    );
    let fifth = std::fs::read_to_string(cluster.node(5).log()).unwrap();
    assert!(
        fifth.contains("refused by the peer: authentication failed"),
        "{fifth}"
    );
    eprintln!("whole test {:?}", started.elapsed());
}

/// Hands each delivery report (the record's value, whether acknowledged)
/// to the producing thread.
struct AckContext(parking_lot::Mutex<std::sync::mpsc::Sender<(String, bool)>>);

impl rdkafka::ClientContext for AckContext {}

impl rdkafka::producer::ProducerContext for AckContext {
    type DeliveryOpaque = Box<String>;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, value: Self::DeliveryOpaque) {
        let _ = self.0.lock().send((*value, result.is_ok()));
    }
}
