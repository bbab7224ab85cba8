//! A real broker with the pipeline runtime, and real Kafka clients
//! (librdkafka) to feed and read it.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_broker::{Broker, BrokerConfig};
use fjord_pipeline::runtime::{Deployment, PipelineRuntime, PipelineStatus, STATUS_TOPIC};
use fjord_plugin_host::{HostConfig, HostPolicy, PluginHost};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub struct Platform {
    pub broker: Broker,
    pub pipelines: Option<PipelineRuntime>,
}

impl Platform {
    /// A platform whose pipelines may use files under `dir` (as an
    /// operator would list it in `pipeline.allowed.paths`).
    pub async fn start(dir: &Path) -> Platform {
        let policy = HostPolicy {
            paths: vec![dir.to_owned()],
            ..HostPolicy::default()
        };
        Platform::start_with(dir, policy).await
    }

    pub async fn start_with(dir: &Path, policy: HostPolicy) -> Platform {
        let mut config = BrokerConfig::ephemeral(dir);
        config.num_partitions = 1;
        Platform::start_config(dir, config, policy).await
    }

    /// A platform with an authorizer (`authorizer.class.name: acl`, no
    /// super user) on which the tests' own Kafka clients, which connect
    /// anonymously, may do anything to topics and groups: what the
    /// pipelines' principals may do is up to each test's bindings.
    pub async fn start_secured(dir: &Path) -> Platform {
        let mut config = BrokerConfig::ephemeral(dir);
        config.num_partitions = 1;
        config.authorizer_class_name = Some("acl".to_owned());
        let policy = HostPolicy {
            paths: vec![dir.to_owned()],
            ..HostPolicy::default()
        };
        let platform = Platform::start_config(dir, config, policy).await;
        platform
            .grant(&[("User:ANONYMOUS", 2, "*", 2), ("User:ANONYMOUS", 3, "*", 2)])
            .await;
        platform
    }

    /// Adds ALLOW bindings (principal, resource type code, literal name,
    /// operation code), as the platform itself.
    pub async fn grant(&self, bindings: &[(&str, i8, &str, i8)]) {
        self.bind(bindings, 3).await;
    }

    /// Adds DENY bindings, as [`Platform::grant`] adds ALLOW ones.
    pub async fn deny(&self, bindings: &[(&str, i8, &str, i8)]) {
        self.bind(bindings, 2).await;
    }

    async fn bind(&self, bindings: &[(&str, i8, &str, i8)], permission_type: i8) {
        let acls: Vec<fjord_controller::Acl> = bindings
            .iter()
            .map(
                |(principal, resource_type, name, operation)| fjord_controller::Acl {
                    resource_type: *resource_type,
                    resource_name: (*name).to_owned(),
                    pattern_type: 3,
                    principal: (*principal).to_owned(),
                    host: "*".to_owned(),
                    operation: *operation,
                    permission_type,
                },
            )
            .collect();
        self.broker.local().create_acls(&acls).await.unwrap();
    }

    async fn start_config(dir: &Path, config: BrokerConfig, policy: HostPolicy) -> Platform {
        let broker = Broker::start(config).await.expect("broker starts");
        let host = Arc::new(
            PluginHost::new(
                HostConfig {
                    cache_dir: Some(dir.join("plugin-cache")),
                    policy,
                    ..HostConfig::default()
                },
                fjord_builtins::all(),
            )
            .unwrap(),
        );
        let pipelines = PipelineRuntime::start(broker.local(), host)
            .await
            .expect("runtime starts");
        Platform {
            broker,
            pipelines: Some(pipelines),
        }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.local_addr().to_string()
    }

    /// Deploys `manifest` and waits until the runtime runs this revision.
    pub async fn deploy(&self, manifest: &str) {
        self.deploy_with(manifest, false).await
    }

    pub async fn deploy_with(&self, manifest: &str, paused: bool) {
        let name = fjord_pipeline::Pipeline::from_yaml("test.yaml", manifest)
            .expect("test manifest parses")
            .metadata
            .name;
        let revision = fjord_pipeline::runtime::deploy_local(
            &self.broker.local(),
            &name,
            &Deployment {
                manifest: manifest.to_owned(),
                file: "test.yaml".into(),
                paused,
                deployed_by: None,
            },
        )
        .await
        .unwrap();
        self.status_until(&name, Duration::from_secs(20), |s| s.revision == revision)
            .await;
    }

    pub async fn stop(mut self) {
        if let Some(p) = self.pipelines.take() {
            p.stop().await;
        }
        self.broker.shutdown().await.unwrap();
    }

    pub async fn produce(&self, topic: &str, values: &[(Option<&str>, &str)]) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("linger.ms", "5")
            .create()
            .unwrap();
        for (key, value) in values {
            let mut record = FutureRecord::<str, str>::to(topic).payload(value);
            if let Some(k) = key {
                record = record.key(k);
            }
            producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("produce");
        }
    }

    /// Reads every partition of `topic` until `count` records arrived or
    /// `timeout` passed.
    pub async fn consume(&self, topic: &str, count: usize, timeout: Duration) -> Vec<Consumed> {
        let bootstrap = self.bootstrap();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || consume_blocking(&bootstrap, &topic, count, timeout))
            .await
            .unwrap()
    }

    /// The latest published status of `name` that satisfies `until`.
    pub async fn status_until(
        &self,
        name: &str,
        timeout: Duration,
        until: impl Fn(&PipelineStatus) -> bool,
    ) -> PipelineStatus {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            let records = self
                .consume(STATUS_TOPIC, usize::MAX, Duration::from_millis(300))
                .await;
            let latest: BTreeMap<String, Option<String>> = records
                .into_iter()
                .filter_map(|r| Some((r.key?, r.value)))
                .collect();
            if let Some(Some(v)) = latest.get(name) {
                let status: PipelineStatus = serde_json::from_str(v).unwrap();
                if until(&status) {
                    return status;
                }
                last = Some(status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("status of {name} never matched; last: {last:#?}");
    }
}

#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Consumed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.value.as_deref().unwrap_or("null")).unwrap()
    }
}

fn consume_blocking(
    bootstrap: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pipeline-tests")
        .set("enable.auto.commit", "false")
        // librdkafka's default, said here: tests see what is committed.
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .unwrap();
    let partitions = metadata
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions.max(1) {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push(Consumed {
                partition: m.partition(),
                offset: m.offset(),
                key: text(m.key()),
                value: text(m.payload()),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), text(h.value).unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    out
}
