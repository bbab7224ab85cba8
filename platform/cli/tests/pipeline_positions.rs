//! A pipeline keeps its place: across a pause and resume, a broker restart
//! and a redeploy it continues from its committed position, whatever its
//! `startFrom` (which only says where a pipeline with no commit begins);
//! re-reading is `fjord pipeline reset`, which also empties the steps'
//! state so nothing is counted twice. Real `fjord server` processes, real
//! Kafka clients, the real CLI.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::kafka::consume_all;
use common::{Server, free_port};
use serde_json::Value;

fn manifest(name: &str, start_from: &str, revision: u32) -> String {
    format!(
        "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {{name: {name}, labels: {{rev: \"{revision}\"}}}}
spec:
  source: {{topic: {name}.in, startFrom: {start_from}}}
  sinks: [{{topic: {name}.out}}]
"
    )
}

fn values(server: &Server, topic: &str) -> Vec<String> {
    consume_all(&server.bootstrap, topic, 0)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// Waits until `topic` holds `last`, then checks it holds exactly
/// `expected`. The pipeline delivers in source order, so once the newest
/// record produced is there, any record read twice (or skipped) shows.
fn assert_delivered(server: &Server, topic: &str, expected: &[String], when: &str) {
    let last = expected.last().expect("something expected");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = values(server, topic);
        if got.contains(last) {
            assert_eq!(got, expected, "{when}: {topic} holds the wrong records");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: {last:?} never reached {topic}; it holds {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn deploy(server: &Server, file: &Path) -> String {
    let (ok, out) = server.fjord(&["pipeline", "deploy", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    out
}

fn revision(server: &Server, name: &str) -> i64 {
    let mut response = common::http()
        .get(format!("http://{}/api/v1/pipelines/{name}", server.admin))
        .call()
        .unwrap();
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    body["revision"].as_i64().expect("a revision")
}

fn batch(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn pause(server: &Server, name: &str) {
    let (ok, out) = server.fjord(&["pipeline", "pause", name]);
    assert!(ok, "{out}");
    server.fjord_until(&["pipeline", "list"], "paused");
}

fn resume(server: &Server, name: &str) {
    let (ok, out) = server.fjord(&["pipeline", "resume", name]);
    assert!(ok, "{out}");
}

/// Pause and resume, a broker restart, a changed manifest and an
/// identical one, then a reset to the earliest: the sink holds each
/// record exactly as often as it should.
fn keeps_its_place(start_from: &str) {
    let name = format!("keep-{start_from}");
    let (source, sink) = (format!("{name}.in"), format!("{name}.out"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, free_port(), None);
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, manifest(&name, start_from, 1)).unwrap();

    // Stored before the pipeline first starts: only `earliest` reads them.
    let before = batch("a", 4);
    server.produce(&source, before.clone());
    let out = deploy(&server, &file);
    assert!(out.contains("deployed: running"), "{out}");
    let mut expected: Vec<String> = if start_from == "earliest" {
        before.clone()
    } else {
        Vec::new()
    };
    // `latest` starts at the end as it is when the task starts, and
    // commits it: wait for that, so the next records are after it.
    server.fjord_until(&["group", "describe", &format!("pipeline.{name}")], &source);
    let first = batch("b", 4);
    server.produce(&source, first.clone());
    expected.extend(first);
    assert_delivered(&server, &sink, &expected, "first start");

    // (a) Records stored while paused are delivered after resume, once.
    pause(&server, &name);
    let while_paused = batch("c", 3);
    server.produce(&source, while_paused.clone());
    resume(&server, &name);
    expected.extend(while_paused);
    assert_delivered(&server, &sink, &expected, "pause and resume");

    // (b) A broker restart continues from the commit.
    assert!(
        server.terminate(Duration::from_secs(60)),
        "the server did not stop cleanly"
    );
    server = Server::start(&data, free_port(), None);
    let after_restart = batch("d", 2);
    server.produce(&source, after_restart.clone());
    expected.extend(after_restart);
    assert_delivered(&server, &sink, &expected, "broker restart");

    // (c) A changed manifest is a new revision that continues from the
    // commit; the same text again (from any file) is no revision at all.
    let old = revision(&server, &name);
    std::fs::write(&file, manifest(&name, start_from, 2)).unwrap();
    deploy(&server, &file);
    let changed = revision(&server, &name);
    assert!(changed > old, "a changed manifest is a new revision");
    let after_redeploy = batch("e", 2);
    server.produce(&source, after_redeploy.clone());
    expected.extend(after_redeploy);
    assert_delivered(&server, &sink, &expected, "redeploy");
    let out = deploy(&server, &file);
    assert!(out.contains(&format!("pipeline {name} unchanged")), "{out}");
    let copy = dir.path().join("copy.yaml");
    std::fs::copy(&file, &copy).unwrap();
    let out = deploy(&server, &copy);
    assert!(out.contains("unchanged"), "{out}");
    assert_eq!(revision(&server, &name), changed);

    // (d) Re-reading is explicit: refused while running, then everything
    // in the source once more.
    let (ok, out) = server.fjord(&["pipeline", "reset", &name, "--to-earliest"]);
    assert!(!ok && out.contains("pause it first"), "{out}");
    pause(&server, &name);
    let (ok, out) = server.fjord(&["pipeline", "reset", &name, "--to-earliest"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{source}-0 -> 0")), "{out}");
    resume(&server, &name);
    let stored = values(&server, &source);
    assert_eq!(stored.len(), 4 + 4 + 3 + 2 + 2);
    expected.extend(stored);
    let marker = batch("f", 1);
    server.produce(&source, marker.clone());
    expected.extend(marker);
    assert_delivered(&server, &sink, &expected, "reset to earliest");
}

#[test]
fn an_earliest_pipeline_keeps_its_place() {
    keeps_its_place("earliest");
}

#[test]
fn a_latest_pipeline_keeps_its_place() {
    keeps_its_place("latest");
}

const BALANCES: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: balances}
spec:
  source: {topic: postings, startFrom: earliest}
  steps:
    - name: totals
      plugin: aggregate
      config:
        window: global
        group_by: [account]
        aggregations: {balance: sum(amount), postings: count()}
  sinks: [{topic: balances}]
";

/// A reset empties the state of stateful steps with the position: the
/// running totals after re-reading are those of reading once.
#[test]
fn a_reset_stateful_pipeline_does_not_count_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let file = dir.path().join("balances.yaml");
    std::fs::write(&file, BALANCES).unwrap();
    let posting = |amount: i64| format!(r#"{{"account":"a","amount":{amount}}}"#);
    server.produce("postings", (1..=4).map(posting));
    deploy(&server, &file);
    let postings = |server: &Server| -> Vec<(i64, i64)> {
        values(server, "balances")
            .iter()
            .map(|v| {
                let v: Value = serde_json::from_str(v).unwrap();
                (
                    v["postings"].as_i64().unwrap(),
                    v["balance"].as_f64().unwrap() as i64,
                )
            })
            .collect()
    };
    let wait_for = |len: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = postings(&server);
            if got.len() >= len {
                return got;
            }
            assert!(Instant::now() < deadline, "balances holds only {got:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let once = [(1, 1), (2, 3), (3, 6), (4, 10)];
    assert_eq!(wait_for(4), once);
    // Its state is in the changelog before the reset empties it.
    server.fjord_until(&["topic", "list"], "pipeline.balances.totals.changelog");

    pause(&server, "balances");
    let (ok, out) = server.fjord(&["pipeline", "reset", "balances", "--to-earliest"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("state emptied: pipeline.balances.totals.changelog"),
        "{out}"
    );
    resume(&server, "balances");
    server.produce("postings", [posting(5)]);
    // Read again from offset 0 with empty state: the same totals, then the
    // new posting's. Kept state would give (5, 11) first; a position
    // restored from the changelog would skip the re-read.
    let mut expected = once.to_vec();
    expected.extend(once);
    expected.push((5, 15));
    let got = wait_for(expected.len());
    assert_eq!(got, expected);
}

/// The reset endpoint refuses what it cannot do right: a pipeline that
/// does not exist, a source connector (its position is its own), a body
/// that says nowhere.
#[test]
fn the_reset_endpoint_refuses_what_it_cannot_reset() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let file = dir.path().join("generated.yaml");
    std::fs::write(
        &file,
        "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: generated}
spec:
  source: {connector: {plugin: generator, config: {rate: 1}}}
  sinks: [{topic: generated}]
",
    )
    .unwrap();
    let (ok, out) = server.fjord(&["pipeline", "deploy", "--paused", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    let reset = |name: &str, body: &str| -> (u16, String) {
        let mut response = common::http()
            .post(format!(
                "http://{}/api/v1/pipelines/{name}/reset",
                server.admin
            ))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    };
    let (status, body) = reset("generated", r#"{"to":"earliest"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("source connector"), "{body}");
    let (status, body) = reset("nope", r#"{"to":"earliest"}"#);
    assert_eq!(status, 404, "{body}");
    let (status, body) = reset("generated", r#"{"to":"yesterday"}"#);
    assert_eq!(status, 400, "{body}");
    let (ok, out) = server.fjord(&["pipeline", "reset", "generated"]);
    assert!(!ok && out.contains("--to-earliest"), "{out}");
}
