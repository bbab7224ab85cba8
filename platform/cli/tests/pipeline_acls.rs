//! Pipelines under an authorizer, against a real `fjord server` with SCRAM
//! users: `fjord pipeline deploy|pause|delete` refused without ALTER_CONFIGS
//! on the pipeline's group and allowed with it, a manifest naming another
//! principal refused to a plain caller, and a pipeline whose principal may
//! not read its source failing with the refusal in `fjord pipeline status`,
//! then running once `fjord acl create` allows it — every record delivered
//! once, also across a DENY added and deleted while it runs.
//!
//! The admin API requires a login here (an admin user is configured): the
//! deployer is `User:bob`, logged in with HTTP Basic by `fjord pipeline
//! --sasl-user`, whose bindings the admin user makes over the Kafka port;
//! an anonymous deploy is refused before any ACL is asked.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Server, free_port};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const ADMIN: [&str; 4] = ["--sasl-user", "admin", "--sasl-password", "admin-pw"];
const BOB: [&str; 4] = ["--sasl-user", "bob", "--sasl-password", "bob-pw-1"];

fn with<'a>(args: &[&'a str], login: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(login).copied().collect()
}

fn admin_client(server: &Server) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &server.bootstrap)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "admin")
        .set("sasl.password", "admin-pw");
    config
}

fn produce(server: &Server, topic: &str, values: &[String]) {
    let producer: BaseProducer = admin_client(server).create().unwrap();
    for v in values {
        producer
            .send(BaseRecord::<(), str>::to(topic).payload(v))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Every value of partition 0 of `topic`, with how often it is there:
/// read until `wanted` records came, then a second more (a duplicate
/// would show).
fn read_all(server: &Server, topic: &str, wanted: usize) -> BTreeMap<String, usize> {
    let consumer: BaseConsumer = admin_client(server)
        .set("group.id", "pipeline-acls-reader")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut counts = BTreeMap::new();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    while Instant::now() < deadline && quiet_until.is_none_or(|q| Instant::now() < q) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            *counts.entry(value).or_insert(0) += 1;
            read += 1;
            if read >= wanted && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
    counts
}

fn acl(server: &Server, args: &[&str]) {
    let (ok, out) = server.fjord(&with(&with(&["acl"], args), &ADMIN));
    assert!(ok, "fjord acl {}: {out}", args.join(" "));
}

#[test]
fn pipelines_run_as_their_deployer_and_pass_its_acls() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fjord.yaml");
    std::fs::write(
        &config,
        "authorizer.class.name: acl\nsasl.admin.user: admin\nsasl.admin.password: admin-pw\n",
    )
    .unwrap();
    let extra = ["--config".to_owned(), config.display().to_string()];
    let server = Server::start_with(&dir.path().join("data"), free_port(), &extra);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The admin user is made at start.
    while !server.fjord(&with(&["topic", "create", "in"], &ADMIN)).0 {
        assert!(Instant::now() < deadline, "the admin user never worked");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out) = server.fjord(&with(&["topic", "create", "out"], &ADMIN));
    assert!(ok, "{out}");
    let first: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    produce(&server, "in", &first);

    let manifest = dir.path().join("copy.yaml");
    let copy = "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {name: copy}\nspec:\n  \
                source: {topic: in}\n  sinks: [{topic: out}]\n";
    std::fs::write(&manifest, copy).unwrap();
    let file = manifest.display().to_string();

    let (ok, out) = server.fjord(&with(
        &["user", "create", "bob", "--password", "bob-pw-1"],
        &ADMIN,
    ));
    assert!(ok, "{out}");

    // Nobody deploys without a login.
    let (ok, out) = server.fjord(&["pipeline", "deploy", &file]);
    assert!(!ok && out.contains("HTTP 401"), "{out}");

    // Without ALTER_CONFIGS on its group the caller may not deploy it.
    let (ok, out) = server.fjord(&with(&["pipeline", "deploy", &file], &BOB));
    assert!(
        !ok && out.contains(
            "User:bob may not ALTER_CONFIGS GROUP pipeline.copy (nor ALTER on the CLUSTER)"
        ),
        "{out}"
    );
    acl(
        &server,
        &[
            "create",
            "--allow-principal",
            "User:bob",
            "--operation",
            "alter_configs",
            "--group",
            "pipeline.copy",
        ],
    );
    // Nor lend it another principal.
    let lending = dir.path().join("lending.yaml");
    std::fs::write(
        &lending,
        copy.replace("{name: copy}", "{name: copy, principal: 'User:alice'}"),
    )
    .unwrap();
    let (ok, out) = server.fjord(&with(
        &["pipeline", "deploy", &lending.display().to_string()],
        &BOB,
    ));
    assert!(
        !ok && out.contains("metadata.principal: only User:alice itself"),
        "{out}"
    );

    // Deployed, it runs as its deployer, who may not read the source yet.
    let (ok, out) = server.fjord(&with(&["pipeline", "deploy", &file], &BOB));
    assert!(
        !ok && out.contains("User:bob may not READ TOPIC in"),
        "{out}"
    );
    let status = server.fjord_until(
        &with(&["pipeline", "status", "copy"], &ADMIN),
        "error: User:bob may not READ TOPIC in",
    );
    assert!(
        status.contains("failed") && status.contains("runs as: User:bob"),
        "{status}"
    );
    for (operation, resource, name) in [
        ("read", "--topic", "in"),
        ("read", "--group", "pipeline.copy"),
        ("write", "--topic", "out"),
    ] {
        acl(
            &server,
            &[
                "create",
                "--allow-principal",
                "User:bob",
                "--operation",
                operation,
                resource,
                name,
            ],
        );
    }
    // It starts by itself and delivers each record once.
    let out = read_all(&server, "out", first.len());
    assert_eq!(out.len(), first.len(), "{out:?}");
    assert!(out.values().all(|&n| n == 1), "{out:?}");
    server.fjord_until(
        &with(&["pipeline", "status", "copy"], &ADMIN),
        "copy: running",
    );

    // A DENY while it runs stops it; records produced meanwhile wait, and
    // arrive once the DENY is deleted.
    let deny = [
        "--deny-principal",
        "User:bob",
        "--operation",
        "write",
        "--topic",
        "out",
    ];
    acl(&server, &with(&["create"], &deny));
    server.fjord_until(
        &with(&["pipeline", "status", "copy"], &ADMIN),
        "error: User:bob may not WRITE TOPIC out",
    );
    let second: Vec<String> = (20..30).map(|i| format!("r{i}")).collect();
    produce(&server, "in", &second);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(read_all(&server, "out", first.len()).len(), first.len());
    acl(&server, &with(&["delete"], &deny));
    let out = read_all(&server, "out", first.len() + second.len());
    assert_eq!(out.len(), first.len() + second.len(), "{out:?}");
    assert!(out.values().all(|&n| n == 1), "{out:?}");

    // Without the binding on its group, pause and delete are refused too.
    let grant = [
        "--allow-principal",
        "User:bob",
        "--operation",
        "alter_configs",
        "--group",
        "pipeline.copy",
    ];
    acl(&server, &with(&["delete"], &grant));
    for command in ["pause", "delete"] {
        let (ok, out) = server.fjord(&with(&["pipeline", command, "copy"], &BOB));
        assert!(
            !ok && out.contains("User:bob may not ALTER_CONFIGS GROUP pipeline.copy"),
            "{command}: {out}"
        );
    }
    acl(&server, &with(&["create"], &grant));
    let (ok, out) = server.fjord(&with(&["pipeline", "pause", "copy"], &BOB));
    assert!(ok, "{out}");
    let (ok, out) = server.fjord(&with(&["pipeline", "delete", "copy"], &BOB));
    assert!(ok, "{out}");
}
