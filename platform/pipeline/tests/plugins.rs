//! Pipelines running real plugin builds: a WebAssembly step that traps on
//! one record, and a step's state kept across a broker restart by its
//! changelog topic.

mod common;
#[path = "../../plugin-host/tests/common/mod.rs"]
mod fixtures;

use std::time::Duration;

use common::Platform;
use fixtures::{Build, build, reference};
use fjord_pipeline::runtime::RunState;

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
