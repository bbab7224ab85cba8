//! What `fjord pipeline` and the manifests promise, against real `fjord
//! server` processes: `deploy` fails when the pipeline does, a record that
//! fails without a dead-letter topic stops the line before the records
//! after it, the log says what happened (RFC 3339 times), plugin paths are
//! the manifest's, and `create: {partitions}` is kept or refused.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, free_port};

fn manifest(name: &str, body: &str) -> String {
    format!("apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n{body}")
}

fn write(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The pipeline's latest status as `status --json` prints it.
fn status_json(server: &Server, name: &str) -> Option<serde_json::Value> {
    let (ok, out) = server.fjord(&["pipeline", "status", "--json", name]);
    if !ok {
        return None;
    }
    serde_json::from_str(out.trim()).ok()
}

fn wait_status(
    server: &Server,
    name: &str,
    what: &str,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = status_json(server, name);
        if let Some(s) = status.as_ref().filter(|s| wanted(s)) {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "pipeline {name} never got {what}; last: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn deploy_exits_non_zero_when_the_pipeline_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    // Valid as a manifest, but the broker cannot create the sink topic.
    let file = write(
        dir.path(),
        "bad.yaml",
        &manifest(
            "bad-sink",
            "  source: {topic: in}\n  sinks:\n    - topic: out\n      create: {configs: {cleanup.policy: shred}}\n",
        ),
    );
    let (ok, out) = server.fjord(&["pipeline", "deploy", &file]);
    assert!(!ok, "deploy of a failing pipeline exited 0:\n{out}");
    assert!(
        out.contains("pipeline bad-sink deployed: failed") && out.contains("did not start"),
        "{out}"
    );

    // And 0 for one that runs.
    let good = write(
        dir.path(),
        "good.yaml",
        &manifest("good", "  source: {topic: in}\n  sinks: [{topic: out2}]\n"),
    );
    let (ok, out) = server.fjord(&["pipeline", "deploy", &good]);
    assert!(
        ok && out.contains("pipeline good deployed: running"),
        "{out}"
    );

    for verb in ["pause", "resume", "delete"] {
        let (ok, out) = server.fjord(&["pipeline", verb, "nope"]);
        assert!(
            !ok && out.contains("no pipeline called \"nope\" is deployed"),
            "{verb} of an unknown pipeline: {out}"
        );
    }
}

/// A record a step fails, with no dead-letter topic: the task stops
/// before any record after it reaches the sink, its position stays at or
/// before it, and a `resume` that meets it again delivers nothing more.
#[test]
fn without_a_dead_letter_topic_no_record_after_a_poison_one_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let good = |n: usize| format!(r#"{{"n":{n}}}"#);
    let poison_offset = 5;
    server.produce(
        "orders",
        (0..poison_offset)
            .map(good)
            .chain([r#"{"broken":true}"#.to_owned()])
            .chain((poison_offset + 1..=10).map(good)),
    );
    let file = write(
        dir.path(),
        "checked.yaml",
        &manifest(
            "checked",
            "  source: {topic: orders, startFrom: earliest}\n  steps:\n    - {name: check, plugin: validate, config: {required: [n]}}\n  retry: {attempts: 1}\n  sinks: [{topic: valid}]\n",
        ),
    );
    server.fjord(&["pipeline", "deploy", &file]);
    let failed = wait_status(&server, "checked", "failed", |s| s["state"] == "failed");
    let errors = failed["errors"].to_string();
    assert!(errors.contains("no deadLetter topic"), "{failed:#}");

    let delivered = |when: &str| {
        let values = server.consume("valid", 100, Duration::from_secs(3));
        let ns: Vec<u64> = values
            .iter()
            .map(|v| {
                serde_json::from_str::<serde_json::Value>(v).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert!(
            ns.iter().all(|&n| n < poison_offset as u64),
            "{when}: records after the poison one were delivered: {ns:?}"
        );
        let mut unique = ns.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ns.len(),
            "{when}: records delivered twice: {ns:?}"
        );
        for p in failed["partitions"].as_array().unwrap() {
            assert!(
                p["position"].as_i64().unwrap() <= poison_offset as i64,
                "{when}: the position passed the poison record: {failed:#}"
            );
        }
    };
    delivered("after the failure");

    let revision = failed["revision"].as_i64().unwrap();
    let (ok, out) = server.fjord(&["pipeline", "resume", "checked"]);
    assert!(ok, "{out}");
    let again = wait_status(&server, "checked", "failed again after resume", |s| {
        s["state"] == "failed" && s["revision"].as_i64().unwrap() > revision
    });
    for p in again["partitions"].as_array().unwrap() {
        assert!(
            p["position"].as_i64().unwrap() <= poison_offset as i64,
            "{again:#}"
        );
    }
    delivered("after resume");
}

/// `fjord pipeline logs`: RFC 3339 times; retries and dead letters, a
/// flood of them summed up in a few lines; pause and resume.
#[test]
fn logs_show_times_retries_dead_letters_pause_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let bad = 300;
    server.produce("events", (0..bad).map(|i| format!(r#"{{"i":{i}}}"#)));
    let file = write(
        dir.path(),
        "gate.yaml",
        &manifest(
            "gate",
            "  source: {topic: events, startFrom: earliest}\n  steps:\n    - {name: check, plugin: validate, config: {required: [n]}}\n  retry: {attempts: 2, backoffMs: 1}\n  sinks: [{topic: checked}]\n  deadLetter: {topic: gate.dlq}\n",
        ),
    );
    let (ok, out) = server.fjord(&["pipeline", "deploy", &file]);
    assert!(ok, "{out}");
    assert_eq!(
        server
            .consume("gate.dlq", bad, Duration::from_secs(60))
            .len(),
        bad
    );
    // Every dead letter is counted, in a few lines (once the last
    // second's line is out).
    let counted = |logs: &str| -> u64 {
        logs.lines()
            .filter(|l| l.contains("were dead-lettered"))
            .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let logs = loop {
        let (_, logs) = server.fjord(&["pipeline", "logs", "gate"]);
        if counted(&logs) >= bad as u64 || Instant::now() >= deadline {
            break logs;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(counted(&logs), bad as u64, "{logs}");
    let lines = logs.lines().filter(|l| l.contains("dead-lettered")).count();
    assert!(
        lines < 30,
        "{lines} log lines for {bad} dead letters: a flood floods the log\n{logs}"
    );
    for line in logs.lines() {
        let time = line.split_whitespace().next().unwrap_or_default();
        assert!(
            humantime::parse_rfc3339(time).is_ok(),
            "not an RFC 3339 time at the start of {line:?}"
        );
    }
    assert!(
        logs.contains("step check:") && logs.contains("retries of failed records"),
        "{logs}"
    );

    let (ok, out) = server.fjord(&["pipeline", "pause", "gate"]);
    assert!(ok, "{out}");
    server.fjord_until(&["pipeline", "logs", "gate"], " paused");
    let (ok, out) = server.fjord(&["pipeline", "resume", "gate"]);
    assert!(ok, "{out}");
    server.fjord_until(&["pipeline", "logs", "gate"], "resumed;");
}

/// Runs `fjord` in `cwd`, against `server`.
fn fjord_in(cwd: &Path, server: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .current_dir(cwd)
        .env("FJORD_BOOTSTRAP_SERVER", &server.bootstrap)
        .env("FJORD_ADMIN", &server.admin)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `plugin: ./plugins/x.wasm` is next to the manifest, whichever directory
/// `fjord` runs in, and it reaches the broker (which has its own working
/// directory) as that absolute path.
#[test]
fn plugin_paths_are_relative_to_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let manifests = dir.path().join("manifests");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let file = write(
        &manifests,
        "custom.yaml",
        &manifest(
            "custom",
            "  source: {topic: in}\n  steps:\n    - {name: mine, plugin: ./plugins/mine.wasm}\n  sinks: [{topic: out}]\n",
        ),
    );
    let resolved = manifests.join("plugins/mine.wasm");
    let resolved = resolved.to_str().unwrap();
    for verb in ["validate", "deploy"] {
        let (ok, out) = fjord_in(&elsewhere, &server, &["pipeline", verb, &file]);
        assert!(
            !ok && out.contains(resolved),
            "{verb}: the error does not name {resolved}:\n{out}"
        );
    }
}

/// Two manifests creating one topic with different partition counts are
/// refused before either is sent; a manifest asking for a count that an
/// existing topic does not have is refused by the broker; a reader that
/// starts before the creator still gets the creator's count; and a
/// parallelism above the source's partitions is a status warning.
#[test]
fn create_partitions_is_kept_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let conflict = dir.path().join("conflict");
    std::fs::create_dir_all(&conflict).unwrap();
    let creator = |name: &str, partitions: u32| {
        manifest(
            name,
            &format!(
                "  source: {{topic: feed-{name}}}\n  sinks:\n    - topic: raw\n      create: {{partitions: {partitions}}}\n"
            ),
        )
    };
    write(&conflict, "a.yaml", &creator("a", 2));
    write(&conflict, "b.yaml", &creator("b", 3));
    let (ok, out) = server.fjord(&["pipeline", "deploy", conflict.to_str().unwrap()]);
    assert!(
        !ok && out.contains("3 partitions for topic \"raw\", but pipeline \"a\""),
        "{out}"
    );
    let (_, list) = server.fjord(&["pipeline", "list"]);
    assert!(!list.contains("a "), "{list}");

    // The reader sorts first by name, the creator second: deployed
    // together, the topic still gets the creator's 2 partitions.
    let together = dir.path().join("together");
    std::fs::create_dir_all(&together).unwrap();
    write(
        &together,
        "0-reader.yaml",
        &manifest(
            "reader",
            "  source: {topic: raw}\n  parallelism: 4\n  sinks: [{topic: parsed}]\n",
        ),
    );
    write(&together, "1-creator.yaml", &creator("a", 2));
    let (ok, out) = server.fjord(&["pipeline", "deploy", together.to_str().unwrap()]);
    assert!(ok, "{out}");
    let status = wait_status(&server, "reader", "both partitions", |s| {
        s["partitions"].as_array().is_some_and(|p| p.len() == 2)
    });
    assert_eq!(
        status["warnings"][0],
        "parallelism 4 exceeds the 2 partitions of source topic raw: 2 tasks run",
        "{status:#}"
    );
    let (_, out) = server.fjord(&["pipeline", "status", "reader"]);
    assert!(out.contains("warning: parallelism 4 exceeds"), "{out}");

    let (ok, out) = server.fjord(&[
        "pipeline",
        "deploy",
        conflict.join("b.yaml").to_str().unwrap(),
    ]);
    assert!(
        !ok && out.contains("topic \"raw\" exists with 2 partitions"),
        "{out}"
    );
}
