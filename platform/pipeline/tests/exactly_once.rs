//! `delivery: exactly-once`: sink records and source offsets committed in
//! one broker transaction per source partition, read back by a real Kafka
//! client with isolation.level=read_committed; and the broker's in-process
//! transactional writer the runtime uses, aborted and fenced.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::Platform;
use fjord_log::BatchBuilder;
use fjord_pipeline::runtime::RunState;

const WAIT: Duration = Duration::from_secs(20);

const COPY: &str = r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: copy}
spec:
  delivery: exactly-once
  source: {topic: access}
  steps:
    - name: errors
      plugin: filter
      config: {expr: 'status >= 500'}
  sinks: [{topic: kept}]
"#;

fn access(from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|n| {
            format!(
                r#"{{"n":{n},"status":{}}}"#,
                if n % 2 == 0 { 500 } else { 200 }
            )
        })
        .collect()
}

fn unkeyed(values: &[String]) -> Vec<(Option<&str>, &str)> {
    values.iter().map(|v| (None, v.as_str())).collect()
}

/// The `n`s of the records of `kept` a read_committed consumer sees,
/// asserting none is seen twice.
async fn kept(platform: &Platform, expected: usize) -> BTreeSet<i64> {
    let records = platform
        .consume("kept", expected + 1, Duration::from_secs(3))
        .await;
    let mut seen = BTreeSet::new();
    for r in &records {
        let n = r.json()["n"].as_i64().unwrap();
        assert!(seen.insert(n), "record {n} delivered twice: {records:?}");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_result_is_read_committed_once_across_pauses_redeploys_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform.deploy(COPY).await;
    platform.produce("access", &unkeyed(&access(0, 40))).await;
    assert_eq!(platform.consume("kept", 20, WAIT).await.len(), 20);
    // Transactional: the sink holds commit markers between the records.
    let last = platform
        .consume("kept", 20, WAIT)
        .await
        .last()
        .unwrap()
        .offset;
    assert!(
        last >= 20,
        "no control batch in the sink (last offset {last})"
    );

    // Paused while records arrive, then resumed.
    platform.deploy_with(COPY, true).await;
    platform
        .status_until("copy", WAIT, |s| s.state == RunState::Paused)
        .await;
    platform.produce("access", &unkeyed(&access(40, 40))).await;
    platform.deploy(COPY).await;
    // Redeployed with another step while records flow.
    platform.produce("access", &unkeyed(&access(80, 40))).await;
    platform
        .deploy(&COPY.replace("status >= 500", "status >= 499"))
        .await;
    platform.produce("access", &unkeyed(&access(120, 40))).await;
    platform
        .status_until("copy", WAIT, |s| s.lag == 0 && s.state == RunState::Running)
        .await;
    // A broker restart right after more records arrived.
    platform.produce("access", &unkeyed(&access(160, 40))).await;
    platform.stop().await;
    let platform = Platform::start(dir.path()).await;
    platform.produce("access", &unkeyed(&access(200, 40))).await;
    let all = platform.consume("kept", 120, WAIT).await;
    assert_eq!(all.len(), 120, "every even n of 0..240 once");
    let seen = kept(&platform, 120).await;
    let expected: BTreeSet<i64> = (0..240).filter(|n| n % 2 == 0).collect();
    assert_eq!(seen, expected);
    platform.stop().await;
}

fn batch(values: &[&str]) -> BatchBuilder {
    let mut b = BatchBuilder::new();
    for v in values {
        b.push(
            1_700_000_000_000,
            None,
            Some(Bytes::copy_from_slice(v.as_bytes())),
        );
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_or_fenced_transaction_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    let local = platform.broker.local();
    local.ensure_topic("kept", Some(1), &[]).await.unwrap();
    local.ensure_topic("access", Some(1), &[]).await.unwrap();

    // Aborted: neither its records nor its offsets count.
    let mut first = local
        .transactional_writer("pipeline.t.0", 60_000)
        .await
        .unwrap();
    first
        .append("kept", 0, batch(&[r#"{"n":1}"#, r#"{"n":3}"#]))
        .await
        .unwrap();
    first
        .commit_offsets("pipeline.t", &[("access", 0, 5)])
        .await
        .unwrap();
    first.abort().await.unwrap();
    assert_eq!(local.committed("pipeline.t", "access", 0), None);

    // Open, then fenced by a new producer of the id (a restarted task):
    // its transaction is aborted, and it can no longer commit.
    first
        .append("kept", 0, batch(&[r#"{"n":5}"#]))
        .await
        .unwrap();
    let mut second = local
        .transactional_writer("pipeline.t.0", 60_000)
        .await
        .unwrap();
    assert!(second.producer().1 > first.producer().1);
    let fenced = first.commit().await.unwrap_err();
    assert!(fenced.to_string().contains("ProducerFenced"), "{fenced}");

    second
        .append("kept", 0, batch(&[r#"{"n":2}"#]))
        .await
        .unwrap();
    second
        .commit_offsets("pipeline.t", &[("access", 0, 7)])
        .await
        .unwrap();
    second.commit().await.unwrap();
    assert_eq!(local.committed("pipeline.t", "access", 0), Some(7));
    let seen = kept(&platform, 1).await;
    assert_eq!(seen, BTreeSet::from([2]));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_connector_stays_at_least_once_and_the_status_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(&COPY.replace(
            "sinks: [{topic: kept}]",
            "sinks: [{topic: kept}, {connector: {plugin: stdout}}]",
        ))
        .await;
    let status = platform
        .status_until("copy", WAIT, |s| s.state == RunState::Running)
        .await;
    assert_eq!(
        status.warnings,
        [
            "spec.delivery exactly-once does not cover sink connector stdout: it is written at least once"
        ]
    );
    platform.stop().await;
}
