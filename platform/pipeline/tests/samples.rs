//! The shipped samples in `pipelines/` run as shipped: deployed from their
//! files into a real broker, fed by their own demo traffic or by a Kafka
//! producer, and their outputs read back with a Kafka consumer.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::Duration;

use common::{Consumed, Platform};

const WAIT: Duration = Duration::from_secs(30);

fn sample(file: &str) -> String {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_aggregation_parses_routes_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(&sample("log-aggregation.yaml")).await;
    // The demo traffic, sped up and stopped after 3000 lines.
    platform
        .deploy(
            &sample("logs-demo-traffic.yaml")
                .replace("rate: 200,", "rate: 3000, count: 3000, error_ratio: 0.1,")
                .replace(", error_ratio: 0.05", ""),
        )
        .await;
    // And lines from elsewhere: syslog and a line of no known format.
    platform
        .produce(
            "logs.raw",
            &[
                (
                    None,
                    "<11>1 2026-11-23T04:00:00Z db1 postgres 77 - - disk full",
                ),
                (None, "<14>Nov 23 04:00:01 web1 cron[12]: job done"),
                (None, "this is not a log line"),
            ],
        )
        .await;
    let all = platform.consume("logs.all", 3002, WAIT).await;
    assert_eq!(all.len(), 3002, "every parsed line is in logs.all");
    let mut per_service = 0;
    for (topic, service) in [
        ("logs.api", "api"),
        ("logs.web", "web"),
        ("logs.auth", "auth"),
    ] {
        let records = platform.consume(topic, 3000, Duration::from_secs(3)).await;
        assert!(!records.is_empty(), "{topic} is empty");
        for r in &records {
            assert_eq!(r.json()["service"], service, "{topic}: {:?}", r.value);
        }
        per_service += records.len();
    }
    assert_eq!(
        per_service, 3000,
        "each access-log line in exactly one service topic"
    );
    let alerts = platform
        .consume("alerts", 10_000, Duration::from_secs(3))
        .await;
    assert!(
        alerts.len() > 100,
        "about a tenth of the lines are 5xx: {}",
        alerts.len()
    );
    for a in &alerts {
        let v = a.json();
        assert!(v["level"] == "error" || v["level"] == "crit", "{v}");
    }
    assert!(
        alerts.iter().any(|a| a.json()["message"] == "disk full"),
        "the syslog error is an alert"
    );
    let unparsed = platform.consume("logs.unparsed", 1, WAIT).await;
    assert_eq!(unparsed[0].value.as_deref(), Some("this is not a log line"));
    assert_eq!(unparsed[0].header("fjord.step"), Some("parse"));
    platform.stop().await;
}

/// `GET` of a plain-HTTP URL path, as curl does; the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{response}"
    );
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_aggregates_access_logs_per_window_and_serves_them() {
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("prometheus.addr");
    let platform = Platform::start(dir.path()).await;
    platform.deploy(&sample("log-aggregation.yaml")).await;
    // Two-second windows and a quick idle close instead of minutes, and a
    // free port: otherwise as shipped.
    platform
        .deploy(
            &sample("metrics.yaml")
                .replace("size: 1m", "size: 2s")
                .replace("lateness: 5s", "lateness: 0s\n        idle: 1s")
                .replace(
                    "listen: 127.0.0.1:9464",
                    &format!(
                        "listen: 127.0.0.1:0\n          bound_file: {}",
                        bound.display()
                    ),
                ),
        )
        .await;
    platform
        .deploy(
            &sample("logs-demo-traffic.yaml")
                .replace("rate: 200,", "rate: 2000, count: 4000, error_ratio: 0.1,")
                .replace(", error_ratio: 0.05", ""),
        )
        .await;
    // A syslog line: not an access log, so not counted.
    platform
        .produce(
            "logs.raw",
            &[(None, "<14>Nov 23 04:00:01 web1 cron[12]: job done")],
        )
        .await;

    // Every access-log line is counted once, in one window and group.
    let mut windows = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        windows = platform
            .consume("metrics", usize::MAX, Duration::from_secs(2))
            .await;
        let counted: u64 = windows
            .iter()
            .map(|r| r.json()["requests"].as_u64().unwrap())
            .sum();
        if counted >= 4000 {
            break;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut counted = 0;
    for w in &windows {
        let v = w.json();
        assert!(
            seen.insert((
                v["window_start"].as_i64().unwrap(),
                v["service"].to_string(),
                v["route"].to_string()
            )),
            "window and group emitted twice: {v}"
        );
        assert_eq!(
            v["window_end"].as_i64().unwrap() - v["window_start"].as_i64().unwrap(),
            2000
        );
        let (requests, errors) = (
            v["requests"].as_f64().unwrap(),
            v["errors"].as_f64().unwrap(),
        );
        assert!(
            (v["error_rate"].as_f64().unwrap() - errors / requests).abs() < 1e-9,
            "{v}"
        );
        assert!(
            v["p50_latency"].as_f64().unwrap() <= v["p99_latency"].as_f64().unwrap(),
            "{v}"
        );
        counted += requests as u64;
    }
    assert_eq!(counted, 4000, "every access-log line counted once");

    // Scraping the prometheus sink shows the same figures.
    let addr = std::fs::read_to_string(&bound).unwrap();
    let last = windows.last().unwrap().json();
    let series = format!(
        "logs_http_requests_per_minute{{route=\"{}\",service=\"{}\"}} {}",
        last["route"].as_str().unwrap(),
        last["service"].as_str().unwrap(),
        last["requests"]
    );
    // The sink may get the last window a moment after the topic.
    let mut scrape = String::new();
    for _ in 0..50 {
        scrape = http_get(addr.trim(), "/metrics");
        if scrape.contains(&series) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(scrape.contains(&series), "{series} not in:\n{scrape}");
    // Named as Prometheus would have them: HELP lines, units, quantiles as
    // a label, nothing that could pass for the broker's `fjord_` metrics.
    assert!(
        scrape.contains("logs_http_request_duration_seconds{quantile=\"0.99\",route="),
        "{scrape}"
    );
    assert!(
        scrape.contains("logs_http_request_duration_seconds{quantile=\"0.5\",route="),
        "{scrape}"
    );
    for name in [
        "logs_http_requests_per_minute",
        "logs_http_errors_per_minute",
        "logs_http_error_ratio",
        "logs_http_request_duration_seconds",
    ] {
        assert!(
            scrape.contains(&format!("# HELP {name} ")),
            "{name}: {scrape}"
        );
    }
    assert!(!scrape.contains("fjord_"), "{scrape}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_sourcing_validates_commands_and_replays_balances() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(&sample("accounts-commands.yaml")).await;
    platform.deploy(&sample("accounts-balances.yaml")).await;
    let accounts = ["alice", "bob", "carol"];
    let mut expected = std::collections::BTreeMap::new();
    let mut commands = Vec::new();
    for i in 0..300i64 {
        let account = accounts[(i % 3) as usize];
        let amount = if i % 4 == 3 {
            -(i % 50) - 1
        } else {
            i % 70 + 1
        };
        *expected.entry(account).or_insert(0i64) += amount;
        commands.push((
            account,
            format!(r#"{{"id":"c{i}","account":"{account}","amount":{amount},"currency":"EUR"}}"#),
        ));
    }
    // And commands that are not valid: rejected with their reasons.
    commands.push((
        "dave",
        r#"{"id":"x1","account":"dave","amount":0,"currency":"EUR"}"#.into(),
    ));
    commands.push((
        "dave",
        r#"{"id":"x2","account":"dave","amount":5,"currency":"GBP"}"#.into(),
    ));
    commands.push(("erin", r#"{"account":"erin","amount":"lots"}"#.into()));
    let refs: Vec<(Option<&str>, &str)> = commands
        .iter()
        .map(|(k, v)| (Some(*k), v.as_str()))
        .collect();
    platform.produce("accounts.commands", &refs).await;

    let rejected = platform.consume("accounts.rejected", 3, WAIT).await;
    assert_eq!(rejected.len(), 3);
    assert!(
        rejected[0]
            .header("fjord.error")
            .unwrap()
            .contains("amount is zero")
    );
    assert!(
        rejected[1]
            .header("fjord.error")
            .unwrap()
            .contains("currency not EUR or USD")
    );
    let third = rejected[2].header("fjord.error").unwrap();
    assert!(
        third.contains("`id` is missing") && third.contains("not a number"),
        "{third}"
    );

    let latest = |records: &[Consumed]| {
        let mut balances = std::collections::BTreeMap::new();
        for r in records {
            let v = r.json();
            assert_eq!(r.key.as_deref(), v["account"].as_str());
            balances.insert(
                r.key.clone().unwrap(),
                v["balance"].as_f64().unwrap() as i64,
            );
        }
        balances
    };
    let balances = latest(&platform.consume("accounts.balances", 300, WAIT).await);
    let wanted: std::collections::BTreeMap<String, i64> =
        expected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(balances, wanted);

    // Replay: the same fold under a new name (empty state) from offset 0
    // of the events rebuilds the same balances.
    platform
        .deploy(
            &sample("accounts-balances.yaml")
                .replace("name: accounts-balances", "name: accounts-replay")
                .replace("topic: accounts.balances", "topic: accounts.replayed"),
        )
        .await;
    let replayed = latest(&platform.consume("accounts.replayed", 300, WAIT).await);
    assert_eq!(replayed, wanted);
    platform.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_and_http_sources_feed_log_aggregation() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(&sample("log-aggregation.yaml")).await;
    let (syslog, http) = (free_port(), free_port());
    platform
        .deploy(&sample("logs-from-syslog.yaml").replace("5514", &syslog.to_string()))
        .await;
    platform
        .deploy(&sample("logs-from-http.yaml").replace("8088", &http.to_string()))
        .await;

    // RFC 5424 over UDP, RFC 3164 over TCP (newline framing), nginx lines
    // over HTTP.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<11>1 2026-11-23T04:00:00Z db1 postgres 77 - - disk full",
        ("127.0.0.1", syslog),
    )
    .unwrap();
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", syslog)).unwrap();
    tcp.write_all(b"<14>Nov 23 04:00:01 web1 cron[12]: job done\n")
        .unwrap();
    let lines = "10.0.0.1 - - [23/Nov/2026:04:00:02 +0000] \"GET /api/users HTTP/1.1\" 503 12 \"-\" \"curl/8.5.0\" 0.250\n\
                 10.0.0.2 - - [23/Nov/2026:04:00:03 +0000] \"GET /web/ HTTP/1.1\" 200 512 \"-\" \"curl/8.5.0\" 0.010\n";
    let mut post = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    write!(
        post,
        "POST /logs HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{lines}",
        lines.len()
    )
    .unwrap();
    let mut reply = String::new();
    post.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    let all = platform.consume("logs.all", 4, WAIT).await;
    let mut messages: Vec<String> = all
        .iter()
        .map(|r| {
            let v = r.json();
            v["message"]
                .as_str()
                .or(v["route"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    messages.sort();
    assert_eq!(messages, ["/api/users", "/web/", "disk full", "job done"]);
    let alerts = platform.consume("alerts", 2, Duration::from_secs(5)).await;
    let mut alerted: Vec<String> = alerts
        .iter()
        .map(|r| r.json()["level"].as_str().unwrap().to_owned())
        .collect();
    alerted.sort();
    assert_eq!(alerted, ["error", "error"], "the 503 and the syslog err");
    platform.stop().await;
}
