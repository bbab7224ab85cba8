//! `fjord transaction list|describe|describe-producers|abort` against a
//! `fjord server` holding a transaction librdkafka left open, and
//! `fjord group describe` and the admin API counting a group's lag to the
//! last stable offset while it is open.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::Duration;

use common::{Server, free_port, http};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "orders";
const ID: &str = "orders-writer";
const TIMEOUT: Duration = Duration::from_secs(30);

/// The first line of `out` holding `needle`, split on whitespace.
fn row<'a>(out: &'a str, needle: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
        .split_whitespace()
        .collect()
}

/// The admin API's view of `group`.
fn group_of(server: &Server, group: &str) -> serde_json::Value {
    let mut response = http()
        .get(&format!("http://{}/api/v1/groups/{group}", server.admin))
        .call()
        .unwrap();
    let text = response.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_hanging_transaction_is_listed_described_and_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let (ok, out) = server.fjord(&["topic", "create", TOPIC, "--partitions", "1"]);
    assert!(ok, "{out}");
    // Three committed records, then a transaction left open at offset 3.
    server.produce(TOPIC, (0..3).map(|i| format!("plain-{i}")));
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("transactional.id", ID)
        .set("transaction.timeout.ms", "600000")
        .create()
        .unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    for i in 0..2 {
        producer
            .send(
                BaseRecord::<(), str>::to(TOPIC)
                    .partition(0)
                    .payload(&format!("txn-{i}")),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();

    let out = server.fjord_until(&["transaction", "list"], ID);
    assert_eq!(row(&out, ID)[3], "Ongoing", "{out}");
    let (ok, out) = server.fjord(&["transaction", "describe", ID]);
    assert!(ok, "{out}");
    assert!(out.contains("Ongoing") && out.contains("orders-0"), "{out}");
    let (ok, out) = server.fjord(&[
        "transaction",
        "describe-producers",
        "--topic",
        TOPIC,
        "--partition",
        "0",
    ]);
    assert!(ok, "{out}");
    let producer_row = row(&out, " 3");
    assert_eq!(producer_row.last(), Some(&"3"), "{out}");

    // A group committed at 1: its lag counts to the last stable offset (3),
    // not to the high watermark (5).
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("group.id", "billing")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(1))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let group = group_of(&server, "billing");
    let offset = &group["offsets"][0];
    assert_eq!(offset["high_watermark"], 5, "{group}");
    assert_eq!(offset["last_stable_offset"], 3, "{group}");
    assert_eq!(offset["lag"], 2, "{group}");
    let (ok, out) = server.fjord(&["group", "describe", "billing"]);
    assert!(ok, "{out}");
    let line = row(&out, TOPIC);
    assert_eq!(&line[1..5], ["0", "1", "3", "2"], "{out}");

    // The producer is gone for good; the operator aborts what it left.
    drop(producer);
    let abort = || {
        server.fjord(&[
            "transaction",
            "abort",
            "--topic",
            TOPIC,
            "--partition",
            "0",
            "--start-offset",
            "3",
        ])
    };
    let (ok, out) = abort();
    assert!(ok, "{out}");
    // The ABORT marker at 5 closes it: read_committed readers move on.
    let group = group_of(&server, "billing");
    assert_eq!(group["offsets"][0]["last_stable_offset"], 6, "{group}");
    // Nothing is left to abort.
    let (ok, out) = abort();
    assert!(!ok && out.contains("no transaction"), "{out}");
}
