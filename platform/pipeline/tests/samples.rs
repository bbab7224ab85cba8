//! The shipped samples in `pipelines/` run as shipped: deployed from their
//! files into a real broker, fed by their own demo traffic or by a Kafka
//! producer, and their outputs read back with a Kafka consumer.

mod common;

use std::time::Duration;

use common::Platform;

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
