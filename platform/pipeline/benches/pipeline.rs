//! End-to-end throughput of the log-aggregation pipeline inside a broker,
//! against moving the same lines through the same broker with no pipeline.
//!
//! ```sh
//! cargo bench -p fjord-pipeline --bench pipeline            # 1 000 000 lines, 3 runs
//! cargo bench -p fjord-pipeline --bench pipeline -- 2000000 5
//! ```
//!
//! Three figures, each the median of the runs:
//! - **generator → logs.raw → parse → route**: the shipped samples as
//!   they run together — `pipelines/logs-demo-traffic.yaml` with the
//!   generator going as fast as it can, writing `logs.raw`, and
//!   `pipelines/log-aggregation.yaml` parsing and routing from there;
//!   lines/s until the last line is in its service topic and `logs.all`.
//! - **topic → parse → route**: the sample itself, draining lines already
//!   stored in `logs.raw`.
//! - **no pipeline**: librdkafka producing the same lines to a topic and a
//!   librdkafka consumer reading them back, one after the other — the way
//!   the lines would move through the broker without the pipeline layer.
//!   The ratio of the pipeline's rate to this one is the pipeline's cost.
#![allow(
    clippy::unwrap_used,
    reason = "bench helpers: a failed setup panics with its location"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_broker::{Broker, BrokerConfig, LocalBroker};
use fjord_pipeline::runtime::{Deployment, PipelineRuntime, deploy_local};
use fjord_plugin_host::{HostConfig, PluginHost};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const SERVICE_TOPICS: [&str; 3] = ["logs.api", "logs.web", "logs.auth"];

fn sample(file: &str) -> String {
    let path = format!("{}/../../pipelines/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("the sample manifest")
}

/// The demo traffic at full speed, `lines` of it.
fn traffic(lines: u64) -> String {
    sample("logs-demo-traffic.yaml").replace("rate: 200,", &format!("rate: 0, count: {lines},"))
}

fn total(local: &LocalBroker, topics: &[&str]) -> i64 {
    topics
        .iter()
        .filter_map(|t| local.topic(t))
        .flat_map(|t| t.partitions())
        .map(|p| p.high_watermark())
        .sum()
}

async fn platform(dir: &std::path::Path) -> (Broker, PipelineRuntime) {
    let mut config = BrokerConfig::ephemeral(dir);
    config.num_partitions = 2;
    let broker = Broker::start(config).await.unwrap();
    let host = Arc::new(PluginHost::new(HostConfig::default(), fjord_builtins::all()).unwrap());
    let runtime = PipelineRuntime::start(broker.local(), host).await.unwrap();
    (broker, runtime)
}

async fn deploy(local: &LocalBroker, name: &str, manifest: &str) {
    deploy_local(
        local,
        name,
        &Deployment {
            manifest: manifest.to_owned(),
            file: format!("{name}.yaml"),
            paused: false,
            deployed_by: None,
        },
    )
    .await
    .unwrap();
}

async fn run_pipeline(feed: Option<&str>, lines: i64, before: impl AsyncFnOnce(&Broker)) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (broker, runtime) = platform(dir.path()).await;
    before(&broker).await;
    let local = broker.local();
    let start = Instant::now();
    deploy(&local, "log-aggregation", &sample("log-aggregation.yaml")).await;
    if let Some(feed) = feed {
        deploy(&local, "logs-demo-traffic", feed).await;
    }
    while total(&local, &SERVICE_TOPICS) < lines || total(&local, &["logs.all"]) < lines {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "pipeline stalled at {} of {lines} lines",
            total(&local, &SERVICE_TOPICS)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = lines as f64 / start.elapsed().as_secs_f64();
    assert_eq!(
        total(&local, &["logs.all"]),
        lines,
        "every line in logs.all"
    );
    runtime.stop().await;
    broker.shutdown().await.unwrap();
    rate
}

fn nginx_lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"10.{}.{}.7 - - [23/Nov/2026:04:{:02}:{:02} +0000] "GET /{}/users HTTP/1.1" {} {} "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" 0.{:03}"#,
                i % 256,
                i / 256 % 256,
                i / 60 % 60,
                i % 60,
                ["api", "web", "auth"][i % 3],
                [200, 200, 200, 404, 503][i % 5],
                200 + i % 20_000,
                i % 1000
            )
        })
        .collect()
}

fn produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for line in lines {
        let mut record = BaseRecord::<(), str>::to(topic).payload(line.as_str());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

fn consume(bootstrap: &str, topic: &str, partitions: i32, n: usize) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut got = 0;
    while got < n {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            m.unwrap();
            got += 1;
        }
    }
}

async fn no_pipeline(lines: &[String]) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let (broker, runtime) = platform(dir.path()).await;
    let bootstrap = broker.local_addr().to_string();
    broker
        .local()
        .ensure_topic("plain", Some(2), &[])
        .await
        .unwrap();
    let lines = lines.to_vec();
    let start = Instant::now();
    let n = lines.len();
    tokio::task::spawn_blocking(move || {
        produce(&bootstrap, "plain", &lines);
        consume(&bootstrap, "plain", 2, n);
    })
    .await
    .unwrap();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    runtime.stop().await;
    broker.shutdown().await.unwrap();
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let lines: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("FJORD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let text = nginx_lines(lines);
    let (mut generated, mut drained, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let g = runtime.block_on(run_pipeline(
            Some(&traffic(lines as u64)),
            lines as i64,
            async |_| {},
        ));
        let t = runtime.block_on(run_pipeline(None, lines as i64, async |broker: &Broker| {
            let bootstrap = broker.local_addr().to_string();
            broker
                .local()
                .ensure_topic("logs.raw", Some(2), &[])
                .await
                .unwrap();
            let text = text.clone();
            tokio::task::spawn_blocking(move || produce(&bootstrap, "logs.raw", &text))
                .await
                .unwrap();
        }));
        let p = runtime.block_on(no_pipeline(&text));
        println!(
            "run {run}: generator→logs.raw→parse→route {g:.0} lines/s, topic→parse→route {t:.0} lines/s, no pipeline (produce + consume) {p:.0} lines/s"
        );
        generated.push(g);
        drained.push(t);
        plain.push(p);
    }
    let (g, t, p) = (median(generated), median(drained), median(plain));
    println!("median of {runs} runs, {lines} lines:");
    println!("  generator → logs.raw → parse → route: {g:.0} lines/s");
    println!("  topic → parse → route (stored lines): {t:.0} lines/s");
    println!("  no pipeline (produce + consume):      {p:.0} lines/s");
    println!(
        "  pipeline / no pipeline:    {:.2} (generator-fed), {:.2} (topic-fed)",
        g / p,
        t / p
    );
}
