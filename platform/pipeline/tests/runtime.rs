//! The pipeline runtime end to end: a real broker, deployments, real Kafka
//! clients producing the input and consuming the output.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::Duration;

use common::Platform;
use fjord_pipeline::runtime::RunState;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(20);

fn committed(bootstrap: &str, group: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(5))
        .unwrap();
    offsets.elements()[0].offset().to_raw().unwrap_or(-1)
}

fn access(statuses: &[u16]) -> Vec<String> {
    statuses
        .iter()
        .enumerate()
        .map(|(i, s)| format!(r#"{{"n":{i},"status":{s}}}"#))
        .collect()
}

fn unkeyed(values: &[String]) -> Vec<(Option<&str>, &str)> {
    values.iter().map(|v| (None, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_flow_through_steps_to_routed_sinks_and_progress_is_a_consumer_group() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(
            r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: web}
spec:
  source: {topic: access}
  steps:
    - name: not-health
      plugin: filter
      config: {expr: 'status != 204'}
  sinks:
    - topic: errors
      when: 'status >= 500'
    - topic: everything
      create: {partitions: 3}
"#,
        )
        .await;
    let values = access(&[200, 503, 204, 500, 404, 200, 204, 502]);
    platform.produce("access", &unkeyed(&values)).await;
    let errors = platform.consume("errors", 3, WAIT).await;
    let n: Vec<i64> = errors
        .iter()
        .map(|r| r.json()["n"].as_i64().unwrap())
        .collect();
    assert_eq!(n, [1, 3, 7]);
    let everything = platform.consume("everything", 6, WAIT).await;
    assert_eq!(everything.len(), 6, "all but the two 204s");
    let status = platform
        .status_until("web", WAIT, |s| s.lag == 0 && s.steps[0].records_in == 8)
        .await;
    assert_eq!(status.state, RunState::Running);
    assert_eq!(status.steps[0].records_out, 6);
    assert_eq!(status.steps[0].dropped, 2);
    assert_eq!(status.sinks[0].records_out, 3);
    assert_eq!(status.sinks[1].records_out, 6);
    // Progress is an ordinary committed offset any Kafka tool sees.
    let bootstrap = platform.bootstrap();
    let offset =
        tokio::task::spawn_blocking(move || committed(&bootstrap, "pipeline.web", "access", 0))
            .await
            .unwrap();
    assert_eq!(offset, 8);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_a_step_fails_goes_to_dead_letter_and_the_rest_flow_on() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(
            r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: parse}
spec:
  source: {topic: lines}
  steps:
    - name: split
      plugin: regex-parse
      config: {pattern: '^(?P<method>[A-Z]+) (?P<path>\S+)$', on_mismatch: fail}
  sinks:
    - topic: parsed
  deadLetter: {topic: parse-dlq}
  retry: {attempts: 2, backoffMs: 1}
"#,
        )
        .await;
    let lines = ["GET /a", "GET /b", "garbage!", "POST /c", "PUT /d"].map(String::from);
    platform.produce("lines", &unkeyed(&lines)).await;
    let parsed = platform.consume("parsed", 4, WAIT).await;
    let paths: Vec<String> = parsed
        .iter()
        .map(|r| r.json()["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/d"]);
    let dead = platform.consume("parse-dlq", 1, WAIT).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_deref(), Some("garbage!"));
    assert_eq!(dead[0].header("fjord.step"), Some("split"));
    assert_eq!(dead[0].header("fjord.pipeline"), Some("parse"));
    assert!(
        dead[0].header("fjord.error").unwrap().contains("match"),
        "{:?}",
        dead[0].header("fjord.error")
    );
    let status = platform
        .status_until("parse", WAIT, |s| s.dead_lettered == 1 && s.lag == 0)
        .await;
    assert_eq!(status.steps[0].failed, 1);
    assert_eq!(status.state, RunState::Running);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dead_letter_a_failing_record_stops_the_pipeline_before_committing_it() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(
            r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: strict}
spec:
  source: {topic: lines}
  steps:
    - name: split
      plugin: regex-parse
      config: {pattern: '^(?P<word>[a-z]+)$', on_mismatch: fail}
  sinks: [{topic: words}]
  retry: {attempts: 1}
"#,
        )
        .await;
    platform
        .produce("lines", &[(None, "one"), (None, "TWO"), (None, "three")])
        .await;
    let status = platform
        .status_until("strict", WAIT, |s| s.state == RunState::Failed)
        .await;
    assert!(
        status
            .errors
            .iter()
            .any(|e| e.contains("no deadLetter topic")),
        "{status:#?}"
    );
    let bootstrap = platform.bootstrap();
    let offset =
        tokio::task::spawn_blocking(move || committed(&bootstrap, "pipeline.strict", "lines", 0))
            .await
            .unwrap();
    assert!(
        offset <= 1,
        "nothing past the failed record is committed: {offset}"
    );
    platform.stop().await;
}

const COPY_V1: &str = r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: copy}
spec:
  source: {topic: access}
  steps:
    - {name: keep, plugin: filter, config: {expr: 'status >= 500'}}
  sinks: [{topic: kept}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploying_a_changed_manifest_keeps_its_progress_and_pausing_holds_records() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(COPY_V1).await;
    let first = access(&[500, 400, 503, 404]);
    platform.produce("access", &unkeyed(&first)).await;
    assert_eq!(platform.consume("kept", 2, WAIT).await.len(), 2);
    platform
        .status_until("copy", WAIT, |s| s.lag == 0 && s.steps[0].records_in == 4)
        .await;

    // Version 2 keeps 4xx too; the records already done are not redone.
    platform
        .deploy(&COPY_V1.replace("status >= 500", "status >= 400"))
        .await;
    let second = access(&[500, 400, 200]);
    platform.produce("access", &unkeyed(&second)).await;
    let kept = platform.consume("kept", 5, WAIT).await;
    assert_eq!(kept.len(), 4, "2 by v1, then 2 by v2: {kept:?}");
    // Nothing more arrives later either.
    assert_eq!(
        platform
            .consume("kept", 5, Duration::from_secs(2))
            .await
            .len(),
        4
    );

    // Paused: records wait; resumed: they flow.
    platform
        .deploy_with(&COPY_V1.replace("status >= 500", "status >= 400"), true)
        .await;
    platform
        .status_until("copy", WAIT, |s| s.state == RunState::Paused)
        .await;
    platform
        .produce("access", &unkeyed(&access(&[500, 500])))
        .await;
    assert_eq!(
        platform
            .consume("kept", 6, Duration::from_secs(2))
            .await
            .len(),
        4
    );
    platform
        .deploy(&COPY_V1.replace("status >= 500", "status >= 400"))
        .await;
    assert_eq!(platform.consume("kept", 6, WAIT).await.len(), 6);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_resumes_its_pipelines_from_the_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(COPY_V1).await;
    platform
        .produce("access", &unkeyed(&access(&[500, 200, 501])))
        .await;
    assert_eq!(platform.consume("kept", 2, WAIT).await.len(), 2);
    platform
        .status_until("copy", WAIT, |s| s.lag == 0 && s.steps[0].records_in == 3)
        .await;
    platform.stop().await;

    // The deployment survives the restart; the pipeline starts by itself.
    let platform = Platform::start(dir.path()).await;
    platform
        .produce("access", &unkeyed(&access(&[502, 200])))
        .await;
    let kept = platform.consume("kept", 4, WAIT).await;
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(
        platform
            .consume("kept", 4, Duration::from_secs(2))
            .await
            .len(),
        3
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_the_broker_cannot_run_shows_why_in_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(&COPY_V1.replace("plugin: filter", "plugin: fliter"))
        .await;
    let status = platform
        .status_until("copy", WAIT, |s| s.state == RunState::Invalid)
        .await;
    let text = status.errors.join("\n");
    assert!(
        text.contains("test.yaml:8:")
            && text.contains("spec.steps[0].plugin")
            && text.contains("fliter"),
        "{text}"
    );
    platform.stop().await;
}

/// A deployment stored before the policy existed (or written past the
/// admin API) is checked when the runtime starts it: refused, not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_manifest_outside_the_policy_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let policy = fjord_plugin_host::HostPolicy {
        paths: vec![pipelines.clone()],
        ..fjord_plugin_host::HostPolicy::default()
    };
    let platform = Platform::start_with(dir.path(), policy).await;
    let outside = dir.path().join("authorized_keys");
    let manifest = |name: &str, path: &std::path::Path| {
        format!(
            "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n  \
             source: {{topic: {name}-in}}\n  sinks:\n    - connector: \
             {{plugin: file, config: {{path: '{}', fsync: false}}}}\n",
            path.display()
        )
    };
    // Stored as is: deploy_local writes the record without validating it.
    platform.deploy(&manifest("keys", &outside)).await;
    let status = platform
        .status_until("keys", WAIT, |s| s.state == RunState::Invalid)
        .await;
    let text = status.errors.join("\n");
    assert!(
        text.contains("spec.sinks[0].connector.config.path")
            && text.contains("is outside pipeline.allowed.paths"),
        "{text}"
    );
    platform
        .produce("keys-in", &[(None, "ssh-ed25519 AAAA attacker")])
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!outside.exists(), "the refused sink wrote its file");

    // Inside the allowed directory it runs.
    let inside = pipelines.join("keys.log");
    platform.deploy(&manifest("lines", &inside)).await;
    platform
        .status_until("lines", WAIT, |s| s.state == RunState::Running)
        .await;
    platform.produce("lines-in", &[(None, "a line")]).await;
    let deadline = std::time::Instant::now() + WAIT;
    while std::fs::read_to_string(&inside).unwrap_or_default() != "a line\n" {
        assert!(std::time::Instant::now() < deadline, "nothing written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    platform.stop().await;
}
