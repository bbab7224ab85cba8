//! Pipeline and plugin metrics from a real pipeline run: a step that fails
//! one record of five, which goes to the dead-letter topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::value;
use fjord_broker::{Broker, BrokerConfig};
use fjord_http::metrics::Metrics;
use fjord_pipeline::runtime::{Deployment, PipelineRuntime, deploy_local};
use fjord_plugin_host::{HostConfig, PluginHost};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const MANIFEST: &str = r#"
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
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_counts_dead_letters_and_plugin_calls_show_in_metrics() {
    let metrics = Metrics::install().expect("recorder");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.num_partitions = 1;
    let broker = Broker::start(config).await.expect("broker starts");
    let host = Arc::new(
        PluginHost::new(
            HostConfig {
                cache_dir: Some(dir.path().join("plugin-cache")),
                ..HostConfig::default()
            },
            fjord_builtins::all(),
        )
        .expect("plugin host"),
    );
    let runtime = PipelineRuntime::start(broker.local(), host)
        .await
        .expect("pipeline runtime");
    deploy_local(
        &broker.local(),
        "parse",
        &Deployment {
            manifest: MANIFEST.to_owned(),
            file: "parse.yaml".into(),
            paused: false,
            deployed_by: None,
        },
    )
    .await
    .expect("deploy");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.local_addr().to_string())
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for line in ["GET /a", "GET /b", "garbage!", "POST /c", "PUT /d"] {
        producer
            .send(
                FutureRecord::<str, str>::to("lines").payload(line),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }

    let step = "{pipeline=\"parse\",step=\"split\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics.render(&broker.local());
        let done = value(
            &text,
            "fjord_pipeline_dead_lettered_total{pipeline=\"parse\"}",
        ) == Some(1.0)
            && value(
                &text,
                &format!("fjord_pipeline_step_records_in_total{step}"),
            ) == Some(5.0);
        if done {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not finish:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        value(
            &text,
            &format!("fjord_pipeline_step_records_out_total{step}")
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("fjord_pipeline_step_records_failed_total{step}")
        ),
        Some(1.0),
        "{text}"
    );
    let calls: f64 = text
        .lines()
        .filter(|l| l.starts_with("fjord_plugin_call_duration_seconds_count{plugin="))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    // At least one batch call, then the failing batch again record by
    // record (with a retry of the bad one).
    assert!(calls >= 2.0, "{text}");

    runtime.stop().await;
    broker.shutdown().await.expect("clean shutdown");
}
