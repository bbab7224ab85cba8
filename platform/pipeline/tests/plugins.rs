//! Pipelines running real plugin builds: a WebAssembly step that traps on
//! one record, a step's state kept across a broker restart by its
//! changelog topic, and a record whose retries a pause interrupts.

mod common;
#[path = "../../plugin-host/tests/common/mod.rs"]
mod fixtures;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Platform;
use fixtures::{Build, build, reference};
use fjord_pipeline::runtime::{LOGS_TOPIC, LogLine, RunState};

const WAIT: Duration = Duration::from_secs(30);

fn manifest(plugin: &str, mode: &str) -> String {
    format!(
        r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {{name: guarded}}
spec:
  source: {{topic: input}}
  steps:
    - name: count
      plugin: {plugin}
      config: {{mode: {mode}}}
  sinks: [{{topic: output}}]
  deadLetter: {{topic: guarded-dlq}}
  retry: {{attempts: 2, backoffMs: 1}}
"#
    )
}

fn values(records: &[common::Consumed]) -> Vec<String> {
    records
        .iter()
        .map(|r| r.value.clone().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_wasm_step_dead_letters_its_record_and_its_state_counts_once() {
    let wasm = reference(&build("fjord-test-misbehave", Build::Wasm));
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(&manifest(&wasm, "panic")).await;
    // The plugin counts the records it passes in its state ("seen") and
    // emits the count; "boom" makes it panic, which traps the instance.
    platform
        .produce(
            "input",
            &[(None, "a"), (None, "b"), (None, "boom"), (None, "c")],
        )
        .await;
    let out = platform.consume("output", 3, WAIT).await;
    // The batch failed at "boom" after "a" and "b" had changed the state;
    // those changes were dropped with the failed call, so run again one by
    // one they count once.
    assert_eq!(values(&out), ["1", "2", "3"]);
    let dead = platform.consume("guarded-dlq", 1, WAIT).await;
    assert_eq!(values(&dead), ["boom"]);
    let error = dead[0].header("fjord.error").unwrap();
    assert!(error.contains("boom from the misbehave plugin"), "{error}");
    let status = platform
        .status_until("guarded", WAIT, |s| s.dead_lettered == 1 && s.lag == 0)
        .await;
    assert_eq!(status.state, RunState::Running);

    // The broker restarts: the state comes back from the changelog topic.
    platform.stop().await;
    let platform = Platform::start(dir.path()).await;
    platform.produce("input", &[(None, "d")]).await;
    let out = platform.consume("output", 4, WAIT).await;
    assert_eq!(values(&out), ["1", "2", "3", "4"]);
    let changelog = platform
        .consume("pipeline.guarded.count.changelog", 1, WAIT)
        .await;
    assert!(!changelog.is_empty());
    platform.stop().await;
}

/// The first line of `pipeline`'s log (the runtime's log topic) that
/// starts with `prefix`.
async fn log_line(platform: &Platform, pipeline: &str, prefix: &str) -> LogLine {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let lines = platform
            .consume(LOGS_TOPIC, usize::MAX, Duration::from_millis(300))
            .await;
        let found = lines
            .iter()
            .filter_map(|r| serde_json::from_str::<LogLine>(r.value.as_deref()?).ok())
            .find(|l| l.pipeline == pipeline && l.message.starts_with(prefix));
        if let Some(line) = found {
            return line;
        }
    }
    panic!("{pipeline} never logged a line starting with {prefix:?}");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_during_a_retry_backoff_stops_at_once_and_the_record_keeps_its_attempts() {
    let wasm = reference(&build("fjord-test-misbehave", Build::Wasm));
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    // The plugin counts the records it passes in its state and emits the
    // count; "boom" it answers with the file /data/answer, which is not
    // there yet: a failure that lasts until the file is written.
    // Produced before the deployment, the three are read as one batch.
    platform
        .produce("input", &[(None, "a"), (None, "boom"), (None, "c")])
        .await;
    let manifest = format!(
        r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {{name: patient}}
spec:
  source: {{topic: input}}
  steps:
    - name: count
      plugin: {wasm}
      config: {{mode: 'read:/data/answer'}}
      capabilities:
        dirs: [{{host: '{}', guest: /data}}]
  sinks: [{{topic: output}}]
  deadLetter: {{topic: patient-dlq}}
  retry: {{attempts: 3, backoffMs: 12000}}
"#,
        dir.path().display()
    );
    platform.deploy(&manifest).await;
    // "boom" failed its first attempt and waits 12 s for its second.
    log_line(&platform, "patient", "step count: 1 retries").await;

    let asked = now_ms();
    platform.deploy_with(&manifest, true).await;
    // The runtime logs the replacement once the old tasks have stopped.
    let stopped = log_line(&platform, "patient", "pausing; replacing").await;
    let took = stopped.time_ms - asked;
    assert!(took < 1_000, "the pause waited {took} ms for the backoff");

    std::fs::write(dir.path().join("answer"), "answered").unwrap();
    platform.deploy(&manifest).await;
    // The batch ran again whole: "boom" got its attempts (the first
    // passes now), and "a" counts once in the state, not twice.
    let out = platform.consume("output", 4, WAIT).await;
    assert_eq!(values(&out), ["1", "answered", "2"]);
    let dead = platform
        .consume("patient-dlq", 1, Duration::from_secs(2))
        .await;
    assert!(dead.is_empty(), "dead-lettered: {:?}", values(&dead));
    let status = platform
        .status_until("patient", WAIT, |s| {
            s.lag == 0 && s.steps[0].records_in == 3
        })
        .await;
    assert_eq!(status.state, RunState::Running);
    assert_eq!(status.dead_lettered, 0);
    platform.stop().await;
}
