//! The admin HTTP API of a real `fjord server` process, with a real HTTP
//! client (ureq) and librdkafka clients making the data it reports.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, free_port};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use serde_json::{Value, json};

struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(server: &Server) -> Api {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Api {
            base: format!("http://{}", server.admin),
            agent,
        }
    }

    fn answer(mut response: ureq::http::Response<ureq::Body>) -> (u16, Value) {
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let json = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
        let body = if text.is_empty() {
            Value::Null
        } else if !json {
            Value::String(text)
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .call()
                .unwrap(),
        )
    }

    // Changes say their content type: the API refuses what a cross-site
    // form could send (tests/admin_door.rs).
    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        Self::answer(
            self.agent
                .post(format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .send(body)
                .unwrap(),
        )
    }

    fn deploy(&self, manifest: &str) -> (u16, Value) {
        Self::answer(
            self.agent
                .post(format!("{}/api/v1/pipelines", self.base))
                .header("Content-Type", "application/yaml")
                .send(manifest)
                .unwrap(),
        )
    }

    fn patch(&self, path: &str, body: &str) -> (u16, Value) {
        Self::answer(
            self.agent
                .patch(format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .send(body)
                .unwrap(),
        )
    }

    fn delete(&self, path: &str) -> (u16, Value) {
        Self::answer(
            self.agent
                .delete(format!("{}{path}", self.base))
                .header("Content-Type", "application/json")
                .call()
                .unwrap(),
        )
    }

    /// GETs `path` until `ok` holds for the answer.
    fn until(&self, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(path);
            if status == 200 && ok(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn config<'a>(configs: &'a Value, name: &str) -> &'a Value {
    configs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no config {name}"))
}

#[test]
fn health_cluster_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    assert_eq!(api.get("/health/live"), (200, json!({"status": "live"})));
    api.until("/health/ready", |b| b["status"] == "ready");
    let (status, cluster) = api.get("/api/v1/cluster");
    assert_eq!(status, 200);
    let port = server.bootstrap.rsplit(':').next().unwrap();
    assert_eq!(cluster["brokers"][0]["port"].to_string(), port);
    assert!(
        cluster["cluster_id"]
            .as_str()
            .unwrap()
            .starts_with("fjord-")
    );
    // Every error is JSON with a message.
    let (status, body) = api.get("/api/v1/no-such-thing");
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = api.delete("/api/v1/cluster");
    assert_eq!(status, 405);
    assert!(body["error"].is_string());
    let (status, body) = api.post("/api/v1/topics", "{not json");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");
}

#[test]
fn topics_are_created_described_changed_browsed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);

    let (status, topic) = api.post(
        "/api/v1/topics",
        r#"{"name": "orders", "partitions": 3, "configs": {"retention.ms": 3600000}}"#,
    );
    assert_eq!(status, 201, "{topic}");
    assert_eq!(topic["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(
        config(&topic["configs"], "retention.ms"),
        &json!({"name": "retention.ms", "value": "3600000", "source": "topic"})
    );
    let (status, body) = api.post("/api/v1/topics", r#"{"name": "orders"}"#);
    assert_eq!(
        (status, &body["kafka_error"]),
        (409, &json!("TopicAlreadyExists"))
    );
    let (status, body) = api.post(
        "/api/v1/topics",
        r#"{"name": "t2", "configs": {"cleanup.policy": "sometimes"}}"#,
    );
    assert_eq!(
        (status, &body["kafka_error"]),
        (400, &json!("InvalidConfig")),
        "{body}"
    );
    assert_eq!(
        api.get("/api/v1/topics/t2").0,
        404,
        "a refused topic is not created"
    );
    let (status, _) = api.post("/api/v1/topics", r#"{"name": "bad name!"}"#);
    assert_eq!(status, 400);

    // Records produced by librdkafka show in the counts and the browser.
    let values: Vec<String> = (0..30).map(|i| format!(r#"{{"n": {i}}}"#)).collect();
    server.produce("orders", values);
    let detail = api.until("/api/v1/topics/orders", |t| t["records"] == 30);
    let sum: i64 = detail["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap() - p["log_start_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 30);
    assert!(detail["size_bytes"].as_u64().unwrap() > 0);
    let (_, list) = api.get("/api/v1/topics");
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "orders")
        .unwrap();
    assert_eq!(
        (listed["records"].as_i64(), listed["partitions"].as_i64()),
        (Some(30), Some(3))
    );
    let (status, records) = api.get("/api/v1/topics/orders/records?limit=7");
    assert_eq!(status, 200);
    assert_eq!(records["skipped"], json!([]));
    let records = records["records"].as_array().unwrap();
    assert_eq!(records.len(), 7);
    for r in records {
        let n = r["value_json"]["n"].as_i64().expect("JSON value parsed");
        assert_eq!(r["value"], format!(r#"{{"n": {n}}}"#));
    }
    let (_, one) = api.get("/api/v1/topics/orders/records?partition=0&limit=500");
    let p0 = detail["partitions"][0]["high_watermark"].as_i64().unwrap();
    assert_eq!(one["records"].as_array().unwrap().len() as i64, p0);
    assert_eq!(api.get("/api/v1/topics/orders/records?partition=9").0, 404);

    // Configs: set, then back to the default.
    let (status, configs) = api.patch(
        "/api/v1/topics/orders/configs",
        r#"{"cleanup.policy": "compact", "retention.ms": null}"#,
    );
    assert_eq!(status, 200, "{configs}");
    assert_eq!(config(&configs, "cleanup.policy")["source"], "topic");
    assert_eq!(config(&configs, "retention.ms")["source"], "default");
    let (status, _) = api.patch("/api/v1/topics/orders/configs", r#"{"segment.bytes": "x"}"#);
    assert_eq!(status, 400);
    let (_, configs) = api.get("/api/v1/topics/orders/configs");
    assert_eq!(config(&configs, "cleanup.policy")["value"], "compact");

    assert_eq!(api.delete("/api/v1/topics/__fjord_pipelines").0, 400);
    // The status topic is kept short by compaction (read on every poll).
    let (_, status_configs) = api.get("/api/v1/topics/__fjord_pipeline_status/configs");
    assert_eq!(config(&status_configs, "segment.bytes")["value"], "1048576");
    assert_eq!(api.delete("/api/v1/topics/orders").0, 204);
    assert_eq!(api.get("/api/v1/topics/orders").0, 404);
    assert_eq!(api.delete("/api/v1/topics/orders").0, 404);
}

#[test]
fn groups_show_members_and_lag_and_reset_when_empty() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    api.post("/api/v1/topics", r#"{"name": "events", "partitions": 2}"#);
    server.produce("events", (0..40).map(|i| format!("e{i}")));

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("group.id", "billing")
        .set("client.id", "billing-1")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["events"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut read = 0;
    while read < 25 {
        assert!(Instant::now() < deadline, "read only {read}");
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            read += 1;
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let group = api.until("/api/v1/groups/billing", |g| g["state"] == "Stable");
    let members = group["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["client_id"], "billing-1");
    let mut assigned: Vec<i64> = members[0]["assignment"][0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assigned.sort();
    assert_eq!(assigned, [0, 1]);
    let committed: i64 = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed"].as_i64().unwrap())
        .sum();
    // Lag covers the partitions the group committed: which of the two the
    // consumer read first (and so committed) depends on its fetch order.
    let offsets = group["offsets"].as_array().unwrap();
    let lag: i64 = offsets
        .iter()
        .map(|o| o["high_watermark"].as_i64().unwrap() - o["committed"].as_i64().unwrap())
        .sum();
    assert_eq!(group["lag"].as_i64().unwrap(), lag, "{group:#}");
    if offsets.len() == 2 {
        assert_eq!(lag, 40 - committed, "{group:#}");
    }
    assert!(committed >= 25);
    let (_, list) = api.get("/api/v1/groups");
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == "billing")
        .unwrap();
    assert_eq!(listed["members"], 1);

    // A group with members refuses a reset, as Kafka does.
    let (status, body) = api.post(
        "/api/v1/groups/billing/reset-offsets",
        r#"{"topic": "events", "to": "earliest"}"#,
    );
    assert_eq!(status, 409, "{body}");
    consumer.unsubscribe();
    drop(consumer);
    api.until("/api/v1/groups/billing", |g| g["state"] == "Empty");
    let (status, group) = api.post(
        "/api/v1/groups/billing/reset-offsets",
        r#"{"topic": "events", "to": "earliest"}"#,
    );
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["lag"], 40);
    let (_, group) = api.post(
        "/api/v1/groups/billing/reset-offsets",
        r#"{"topic": "events", "partitions": [0], "to": {"offset": 1000000}}"#,
    );
    let p0 = &group["offsets"][0];
    assert_eq!(p0["committed"], p0["high_watermark"], "clamped to the end");
    let (status, _) = api.post(
        "/api/v1/groups/billing/reset-offsets",
        r#"{"topic": "events", "to": "yesterday"}"#,
    );
    assert_eq!(status, 400);
}

const FILTER_PIPELINE: &str = r#"apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: errors-only
spec:
  source:
    topic: app.logs
  steps:
    - name: errors
      plugin: filter
      config:
        expr: 'level == "error"'
  sinks:
    - topic: app.errors
      create: {partitions: 1}
"#;

#[test]
fn pipelines_are_deployed_watched_paused_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    api.post("/api/v1/topics", r#"{"name": "app.logs"}"#);

    // A bad manifest is refused with the place of the error.
    let (status, body) =
        api.deploy(&FILTER_PIPELINE.replace("plugin: filter", "plugin: no-such-plugin"));
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains(":10:"), "{body}");

    let (status, body) = api.deploy(FILTER_PIPELINE);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "errors-only");
    api.until("/api/v1/pipelines", |l| l[0]["state"] == "running");
    let lines = (0..50).map(|i| {
        let level = if i % 5 == 0 { "error" } else { "info" };
        format!(r#"{{"level": "{level}", "i": {i}}}"#)
    });
    server.produce("app.logs", lines);
    let listed = api.until("/api/v1/pipelines", |l| l[0]["records_out"] == 10);
    assert_eq!(listed[0]["records_in"], 50);
    let (_, detail) = api.get("/api/v1/pipelines/errors-only");
    assert_eq!(detail["manifest"], FILTER_PIPELINE);
    assert_eq!(detail["status"]["steps"][0]["name"], "errors");
    assert_eq!(detail["status"]["steps"][0]["records_in"], 50);
    assert_eq!(detail["status"]["steps"][0]["records_out"], 10);
    let (_, topic) = api.get("/api/v1/topics/app.errors");
    assert_eq!(topic["records"], 10);

    assert_eq!(api.post("/api/v1/pipelines/errors-only/pause", "").0, 200);
    api.until("/api/v1/pipelines/errors-only", |d| {
        d["status"]["state"] == "paused"
    });
    assert_eq!(api.post("/api/v1/pipelines/errors-only/resume", "").0, 200);
    api.until("/api/v1/pipelines/errors-only", |d| {
        d["status"]["state"] == "running"
    });
    let (_, logs) = api.get("/api/v1/pipelines/errors-only/logs");
    let messages: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"paused"), "{messages:?}");

    assert_eq!(api.delete("/api/v1/pipelines/errors-only").0, 204);
    assert_eq!(api.get("/api/v1/pipelines/errors-only").0, 404);
    assert_eq!(api.post("/api/v1/pipelines/errors-only/pause", "").0, 404);
    assert_eq!(api.get("/api/v1/pipelines").1, json!([]));
}

/// docs/admin-api.openapi.yaml and the router agree: every path and method
/// the file lists is served (an unknown topic or group is a 404 with its
/// own message, never the router's "no such path" or a 405).
#[test]
fn every_documented_route_is_served() {
    let spec: serde_json::Value = fjord_broker::yaml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/admin-api.openapi.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let path = path
            .replace("{topic}", "no-such-topic")
            .replace("{group}", "no-such-group")
            .replace("{name}", "no-such-pipeline");
        for method in ["get", "post", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let url = format!("{}{path}", api.base);
            let json = ("Content-Type", "application/json");
            let response = match method {
                "get" => api.agent.get(&url).call(),
                "delete" => api.agent.delete(&url).header(json.0, json.1).call(),
                "post" => api.agent.post(&url).header(json.0, json.1).send("{}"),
                _ => api.agent.patch(&url).header(json.0, json.1).send("{}"),
            }
            .unwrap();
            let (status, body) = Api::answer(response);
            assert_ne!(status, 405, "{method} {path}");
            assert!(
                ![403, 415, 421].contains(&status),
                "{method} {path} refused at the door: {body}"
            );
            let routed = !body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no such path"));
            assert!(routed, "{method} {path} is not served: {body}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} routes in the spec");
}

/// The console's budget is 300 ms per page on a broker with 1 000
/// partitions; the API answer it renders from must be well inside it (here
/// in a debug build).
#[test]
fn a_topic_with_1000_partitions_is_described_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    let (status, _) = api.post("/api/v1/topics", r#"{"name": "wide", "partitions": 1000}"#);
    assert_eq!(status, 201);
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (status, topic) = api.get("/api/v1/topics/wide");
        times.push(start.elapsed());
        assert_eq!(status, 200);
        assert_eq!(topic["partitions"].as_array().unwrap().len(), 1000);
        let start = Instant::now();
        let (_, list) = api.get("/api/v1/topics");
        times.push(start.elapsed());
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|t| t["partitions"] == 1000)
        );
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(median < Duration::from_millis(100), "median {median:?}");
}

/// `/metrics` of a real server: Prometheus text whose figures match what
/// the API and the clients saw.
#[test]
fn metrics_match_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let api = Api::new(&server);
    api.post("/api/v1/topics", r#"{"name": "m", "partitions": 1}"#);
    server.produce("m", (0..25).map(|i| format!("value-{i}")));
    assert_eq!(server.consume("m", 25, Duration::from_secs(20)).len(), 25);
    let mut response = api
        .agent
        .get(format!("{}/metrics", api.base))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.body_mut().read_to_string().unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(r#"fjord_topic_records_in_total{topic="m",partition="0"}"#),
        25.0
    );
    assert!(value(r#"fjord_topic_records_out_total{topic="m",partition="0"}"#) >= 25.0);
    assert_eq!(
        value(r#"fjord_high_watermark{topic="m",partition="0"}"#),
        25.0
    );
    assert!(value(r#"fjord_requests_total{api="Produce"}"#) >= 1.0);
    assert_eq!(value("fjord_under_replicated_partitions"), 0.0);
    let (_, topic) = api.get("/api/v1/topics/m");
    assert_eq!(
        value(r#"fjord_log_size_bytes{topic="m",partition="0"}"#),
        topic["size_bytes"].as_f64().unwrap()
    );
    assert!(text.contains("# TYPE fjord_request_duration_seconds histogram"));
}
