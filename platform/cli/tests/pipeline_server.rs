//! `fjord pipeline` commands against a real `fjord server` process, and a
//! server killed with SIGKILL mid-stream: committed progress holds.

mod common;

use std::time::{Duration, Instant};

use common::{Server, free_port};

const MANIFEST: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: errors}
spec:
  source: {topic: access}
  steps:
    - {name: only-errors, plugin: filter, config: {expr: 'status >= 500'}}
  sinks: [{topic: errors}]
";

#[test]
fn deploy_status_pause_resume_logs_and_delete_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let file = dir.path().join("errors.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let (ok, out) = server.fjord(&["pipeline", "deploy", file.to_str().unwrap()]);
    assert!(
        ok && out.contains("pipeline errors deployed: running"),
        "{out}"
    );

    server.produce(
        "access",
        (0..10).map(|i| {
            format!(
                r#"{{"n":{i},"status":{}}}"#,
                if i % 2 == 0 { 500 } else { 200 }
            )
        }),
    );
    assert_eq!(
        server.consume("errors", 5, Duration::from_secs(20)).len(),
        5
    );
    // The status is published every second: the first one with no lag
    // may predate the batch; the counters must then come within a second.
    let counters = |status: &str| -> Vec<String> {
        status
            .lines()
            .find(|l| l.starts_with("step only-errors"))
            .map(|l| {
                l.split_whitespace()
                    .skip(2)
                    .take(4)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status = server.fjord_until(&["pipeline", "status", "errors"], "lag: 0 ");
        if counters(&status).first().is_some_and(|n| n != "0") || Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(status.contains("step only-errors"), "{status}");
    assert_eq!(counters(&status), ["10", "5", "5", "0"], "{status}");
    server.fjord_until(&["group", "describe", "pipeline.errors"], "access");

    let (ok, out) = server.fjord(&["pipeline", "pause", "errors"]);
    assert!(ok, "{out}");
    server.fjord_until(&["pipeline", "list"], "paused");
    server.produce("access", [r#"{"status":503}"#.to_owned()]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.consume("errors", 6, Duration::from_secs(1)).len(), 5);
    let (ok, out) = server.fjord(&["pipeline", "resume", "errors"]);
    assert!(ok, "{out}");
    assert_eq!(
        server.consume("errors", 6, Duration::from_secs(20)).len(),
        6
    );

    let logs = server.fjord_until(&["pipeline", "logs", "errors"], "paused");
    assert!(logs.contains("running revision"), "{logs}");

    let (ok, out) = server.fjord(&["pipeline", "delete", "errors"]);
    assert!(ok, "{out}");
    let (_, list) = server.fjord(&["pipeline", "list"]);
    assert!(!list.contains("errors"), "{list}");
    let (ok, out) = server.fjord(&["pipeline", "status", "nope"]);
    assert!(!ok && out.contains("no pipeline called \"nope\""), "{out}");
}

/// deploy, pause, resume and delete call the admin API and nothing else:
/// they work with no Kafka listener to reach, say what the API refused,
/// and name the flag when the API cannot be reached.
#[test]
fn changes_go_through_the_admin_api_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let file = dir.path().join("errors.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let no_kafka = format!("127.0.0.1:{}", free_port());
    let fjord = |args: &[&str], admin: &str| common::fjord_at(args, &no_kafka, admin);
    let (ok, out) = fjord(
        &["pipeline", "deploy", "--paused", file.to_str().unwrap()],
        &server.admin,
    );
    assert!(
        ok && out.contains("pipeline errors deployed: paused"),
        "{out}"
    );
    for verb in ["resume", "pause", "delete"] {
        let (ok, out) = fjord(&["pipeline", verb, "errors"], &server.admin);
        assert!(ok, "{verb}: {out}");
    }
    let (ok, out) = fjord(&["pipeline", "pause", "errors"], &server.admin);
    assert!(
        !ok && out.contains("no pipeline called \"errors\" is deployed"),
        "{out}"
    );
    let (ok, out) = fjord(&["pipeline", "delete", "errors"], &no_kafka);
    assert!(!ok && out.contains("FJORD_ADMIN"), "{out}");
}

/// `fjord pipeline run` deploys through the admin API, follows the log
/// with a Kafka client, and deletes the pipeline through the API on Ctrl-C.
#[test]
fn run_deploys_follows_and_deletes_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let file = dir.path().join("errors.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["pipeline", "run", file.to_str().unwrap()])
        .env("FJORD_BOOTSTRAP_SERVER", &server.bootstrap)
        .env("FJORD_ADMIN", &server.admin)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(run.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    // After the manifest check's own line.
    let running = lines.by_ref().find(|l| l.starts_with("running pipeline"));
    assert_eq!(
        running.as_deref(),
        Some("running pipeline errors; Ctrl-C stops and deletes it")
    );
    // The runtime takes it up; its log line reaches the follower.
    let started = lines
        .by_ref()
        .find(|l| l.starts_with("[log]") && l.contains("running revision"));
    assert!(started.is_some(), "no log line from the pipeline");
    let pid = i32::try_from(run.id()).unwrap();
    // SAFETY: kill(2) on our own child, not reaped yet (we hold `run`).
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    // Read to the end: a closed pipe would end it with SIGPIPE instead.
    let rest: Vec<String> = lines.collect();
    assert!(run.wait().unwrap().success(), "{rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("pipeline errors deleted")
    );
    let (_, list) = server.fjord(&["pipeline", "list"]);
    assert!(!list.contains("errors"), "{list}");
}

#[test]
fn a_server_killed_mid_stream_restarts_its_pipelines_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("errors.yaml"), MANIFEST).unwrap();
    let port = free_port();
    let server = Server::start(&data, port, Some(&manifests));
    let line = |i: usize| {
        format!(
            r#"{{"n":{i},"status":{}}}"#,
            if i.is_multiple_of(4) { 503 } else { 200 }
        )
    };
    server.produce("access", (0..20_000).map(line));
    // Some of it has gone through; then SIGKILL, no clean shutdown.
    let first = server.consume("errors", 100, Duration::from_secs(20));
    assert!(!first.is_empty());
    server.kill();

    let server = Server::start(&data, port, Some(&manifests));
    server.produce("access", (20_000..40_000).map(line));
    let wanted = 10_000;
    let out = server.consume("errors", usize::MAX, Duration::from_secs(10));
    let out = if out.len() < wanted {
        server.consume("errors", wanted + 5_000, Duration::from_secs(30))
    } else {
        out
    };
    let mut seen = std::collections::BTreeSet::new();
    for v in &out {
        let n = serde_json::from_str::<serde_json::Value>(v).unwrap()["n"]
            .as_u64()
            .unwrap();
        seen.insert(n);
    }
    // At least once: every input error is there; a few may be there twice
    // (delivered after the last commit before the kill).
    assert_eq!(seen.len(), wanted, "distinct error records after restart");
    assert!(out.len() >= wanted);
    let status = server.fjord_until(&["pipeline", "status", "errors"], "lag: 0 ");
    assert!(status.contains("running"), "{status}");
}

const WINDOWS: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: per-second}
spec:
  source: {topic: clicks}
  steps:
    - name: count
      plugin: aggregate
      config: {size: 1s, time_field: t, idle: never, aggregations: {n: count()}}
  sinks: [{topic: clicks.per-second}]
";

#[test]
fn a_server_killed_mid_stream_resumes_its_windows_without_counting_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("per-second.yaml"), WINDOWS).unwrap();
    let port = free_port();
    let server = Server::start(&data, port, Some(&manifests));
    // 100 clicks per second of event time.
    let click = |i: u64| format!(r#"{{"t":{}}}"#, i * 10);
    server.produce("clicks", (0..20_000).map(click));
    let first = server.consume("clicks.per-second", 20, Duration::from_secs(20));
    assert!(!first.is_empty(), "windows close while the stream runs");
    server.kill();

    let server = Server::start(&data, port, Some(&manifests));
    // The rest, then one click far ahead that closes every window.
    server.produce(
        "clicks",
        (20_000..40_000).map(click).chain([click(1_000_000)]),
    );
    let tally = |out: &[String]| {
        let mut counts: std::collections::BTreeMap<i64, Vec<u64>> = Default::default();
        for v in out {
            let v: serde_json::Value = serde_json::from_str(v).unwrap();
            counts
                .entry(v["window_start"].as_i64().unwrap())
                .or_default()
                .push(v["n"].as_u64().unwrap());
        }
        counts
    };
    let mut counts = tally(&server.consume("clicks.per-second", 400, Duration::from_secs(30)));
    if counts.len() < 400 {
        // Some windows were emitted twice; read everything there is.
        counts = tally(&server.consume("clicks.per-second", usize::MAX, Duration::from_secs(5)));
    }
    // Every second of the 400 has its 100 clicks: none lost, none counted
    // twice. (A window closed just before the kill may be emitted again,
    // at least once, with the same count.)
    assert_eq!(counts.len(), 400, "windows: {:?}", counts.keys().last());
    for (start, n) in &counts {
        assert!(n.iter().all(|&n| n == 100), "window {start}: {n:?}");
    }
}

#[test]
fn an_exactly_once_pipeline_killed_three_times_delivers_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir(&manifests).unwrap();
    let manifest = MANIFEST.replace("spec:\n", "spec:\n  delivery: exactly-once\n");
    std::fs::write(manifests.join("errors.yaml"), manifest).unwrap();
    let port = free_port();
    let line = |i: usize| {
        format!(
            r#"{{"n":{i},"status":{}}}"#,
            if i.is_multiple_of(4) { 503 } else { 200 }
        )
    };
    // Three rounds of: 10 000 more records, some delivered, SIGKILL.
    for round in 0..3 {
        let server = Server::start(&data, port, Some(&manifests));
        server.produce("access", (round * 10_000..(round + 1) * 10_000).map(line));
        let out = server.consume("errors", round * 2_500 + 100, Duration::from_secs(20));
        assert!(out.len() > round * 2_500, "round {round}: {}", out.len());
        server.kill();
    }
    let server = Server::start(&data, port, Some(&manifests));
    let wanted = 7_500;
    let status = server.fjord_until(&["pipeline", "status", "errors"], "lag: 0 ");
    assert!(status.contains("running"), "{status}");
    // Read committed (librdkafka's default): every error exactly once.
    let out = server.consume("errors", usize::MAX, Duration::from_secs(10));
    let mut seen = std::collections::BTreeSet::new();
    for v in &out {
        let n = serde_json::from_str::<serde_json::Value>(v).unwrap()["n"]
            .as_u64()
            .unwrap();
        assert!(seen.insert(n), "record {n} delivered twice");
    }
    assert_eq!(seen.len(), wanted, "distinct error records after the kills");
}
