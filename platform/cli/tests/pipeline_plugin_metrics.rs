//! What a pipeline's plugins count, seen from outside a real `fjord server`:
//! in `fjord pipeline status --json`, the admin API and `/metrics`; and
//! event time that a record stamped ahead of the clock cannot drag along.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, free_port, http};
use serde_json::Value;

/// One-minute windows of access-log lines by event time `t`, no lateness;
/// what fails goes to `access.dlq` at the first attempt.
const PER_MINUTE: &str = "apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: skew}
spec:
  source: {topic: access, startFrom: earliest}
  steps:
    - name: per-minute
      plugin: aggregate
      config: {size: 1m, time_field: t, idle: never, aggregations: {n: count()}}
  sinks: [{topic: access.per-minute}]
  deadLetter: {topic: access.dlq}
  retry: {attempts: 1}
";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn get(server: &Server, path: &str) -> String {
    http()
        .get(format!("http://{}{path}", server.admin))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// Polls `check` until it gives a value, for at most a minute (a loaded
/// machine runs a pipeline slowly); `what` and the last `detail` say what
/// did not happen.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check() {
            Ok(v) => return v,
            Err(detail) if Instant::now() > deadline => panic!("{what} never happened: {detail}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// The value of the `/metrics` series `name` whose labels include every
/// one of `labels` (whatever their order).
fn series(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (inside, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| inside.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

/// Three lines stamped five minutes ahead, in among five minutes of lines
/// on time: they go to the dead-letter topic with the reason, and every
/// window they would have closed early still counts all its lines. The
/// aggregate's `future_records` reads back from `status --json`, the admin
/// API and `/metrics`, counted once each although their batch failed and
/// was made again record by record.
#[test]
fn records_ahead_of_the_clock_are_dead_lettered_and_drop_no_window() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("skew.yaml"), PER_MINUTE).unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), Some(&manifests));

    let now = now_ms();
    let first_window = now - now.rem_euclid(60_000) - 6 * 60_000;
    let line = |t: i64| format!(r#"{{"t":{t},"route":"/api"}}"#);
    let on_time = |minute: i64| (0..10).map(move |i| first_window + minute * 60_000 + i * 5_000);
    let mut lines: Vec<String> = (0..2).flat_map(on_time).map(line).collect();
    lines.extend((0..3).map(|i| line(now + 5 * 60_000 + i)));
    lines.extend((2..5).flat_map(on_time).map(line));
    // On the clock: closes the five windows before it.
    lines.push(line(now_ms()));
    server.produce("access", lines);

    let windows = server.consume("access.per-minute", 5, Duration::from_secs(60));
    let counts: Vec<(i64, u64)> = windows
        .iter()
        .map(|w| {
            let w: Value = serde_json::from_str(w).unwrap();
            (
                w["window_start"].as_i64().unwrap(),
                w["n"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i64, u64)> = (0..5).map(|m| (first_window + m * 60_000, 10)).collect();
    assert_eq!(counts, expected, "every window, each with its ten lines");

    // The dead letters say why.
    let dead = wait_for("three dead letters", || {
        let answer: Value =
            serde_json::from_str(&get(&server, "/api/v1/topics/access.dlq/records?limit=20"))
                .map_err(|e| e.to_string())?;
        let records = answer["records"].as_array().cloned().unwrap_or_default();
        if records.len() == 3 {
            Ok(records)
        } else {
            Err(answer.to_string())
        }
    });
    for record in &dead {
        let error = record["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["key"] == "fjord.error")
            .and_then(|h| h["value"].as_str())
            .unwrap_or_else(|| panic!("no fjord.error header: {record}"))
            .to_owned();
        assert!(
            error.contains("ahead of the clock") && error.contains("max_skew (1m)"),
            "{error}"
        );
    }

    // The counters: in the status (CLI and admin API), and on /metrics.
    let status = wait_for("the status to count the future records", || {
        let (ok, out) = server.fjord(&["pipeline", "status", "skew", "--json"]);
        let status: Value = serde_json::from_str(&out).map_err(|e| format!("{ok} {e}: {out}"))?;
        let step = &status["steps"][0];
        if step["counters"]["windows_closed"] == 5 {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    });
    let step = &status["steps"][0];
    assert_eq!(step["name"], "per-minute");
    assert_eq!(step["counters"]["future_records"], 3, "{status}");
    assert_eq!(step["counters"].get("late_records"), None, "{status}");
    assert_eq!(step["failed"], 3, "{status}");
    assert_eq!(status["dead_lettered"], 3, "{status}");
    let api: Value = serde_json::from_str(&get(&server, "/api/v1/pipelines/skew")).unwrap();
    assert_eq!(
        api["status"]["steps"][0]["counters"]["future_records"], 3,
        "{api}"
    );
    let (_, text) = server.fjord(&["pipeline", "status", "skew"]);
    assert!(text.contains("future_records=3"), "{text}");

    let labels = |name| [("pipeline", "skew"), ("step", "per-minute"), ("name", name)];
    let metrics = wait_for("the plugin counters on /metrics", || {
        let metrics = get(&server, "/metrics");
        match series(
            &metrics,
            "fjord_pipeline_plugin_counter_total",
            &labels("windows_closed"),
        ) {
            Some(5.0) => Ok(metrics),
            _ => Err(metrics),
        }
    });
    assert_eq!(
        series(
            &metrics,
            "fjord_pipeline_plugin_counter_total",
            &labels("future_records")
        ),
        Some(3.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE fjord_pipeline_plugin_counter_total counter"),
        "{metrics}"
    );
}

/// A source connector's own counters are visible too: a `syslog` source
/// with room for one message drops most of a burst of UDP datagrams, and
/// its `udp_dropped` reads back the same from `status --json`, the plain
/// status, the admin API and `/metrics` (`step="source"`).
#[test]
fn a_source_connectors_counters_are_in_the_status_and_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let syslog = free_port();
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("drops.yaml"),
        format!(
            "apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {{name: drops}}
spec:
  source:
    connector:
      plugin: syslog
      config: {{listen: '127.0.0.1:{syslog}', protocol: udp, queue: '1'}}
  sinks: [{{topic: syslog.lines}}]
"
        ),
    )
    .unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), Some(&manifests));
    wait_for("the syslog source to run", || {
        let (_, out) = server.fjord(&["pipeline", "status", "drops", "--json"]);
        let status: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
        (status["state"] == "running").then_some(()).ok_or(out)
    });
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Bursts until some are dropped: the first may meet an empty queue.
    let status = wait_for("the status to count dropped datagrams", || {
        for i in 0..200 {
            socket
                .send_to(format!("<13>line {i}").as_bytes(), ("127.0.0.1", syslog))
                .unwrap();
        }
        let (_, out) = server.fjord(&["pipeline", "status", "drops", "--json"]);
        let status: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
        match status["source_counters"]["udp_dropped"].as_u64() {
            Some(n) if n > 0 => Ok(status),
            _ => Err(out),
        }
    });
    // No more datagrams: the counter settles, and every view shows it.
    std::thread::sleep(Duration::from_secs(3));
    let (_, out) = server.fjord(&["pipeline", "status", "drops", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap_or(status);
    let dropped = status["source_counters"]["udp_dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{status}");
    let (_, text) = server.fjord(&["pipeline", "status", "drops"]);
    assert!(text.contains(&format!("udp_dropped={dropped}")), "{text}");
    let api: Value = serde_json::from_str(&get(&server, "/api/v1/pipelines/drops")).unwrap();
    assert_eq!(
        api["status"]["source_counters"]["udp_dropped"], dropped,
        "{api}"
    );
    wait_for("udp_dropped on /metrics", || {
        let metrics = get(&server, "/metrics");
        let labels = [
            ("pipeline", "drops"),
            ("step", "source"),
            ("name", "udp_dropped"),
        ];
        match series(&metrics, "fjord_pipeline_plugin_counter_total", &labels) {
            Some(v) if v == dropped as f64 => Ok(()),
            _ => Err(metrics),
        }
    });
}
