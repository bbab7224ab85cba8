//! The door a plain Kafka client had into the platform's state: a record
//! produced to `__fjord_pipelines` deployed a pipeline. Against real
//! `fjord server` processes, with librdkafka as the client: internal topics
//! refuse client produces (INVALID_TOPIC_EXCEPTION) on a single node and in
//! a cluster, nothing gets deployed, and in a cluster the platform still
//! writes them (as its SASL/PLAIN principal) while a wrong password gets
//! nowhere.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{Server, free_port, http};
use rdkafka::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;

/// A deployment record as the runtime reads it from `__fjord_pipelines`.
const FORGED: &str = r#"{"manifest":"apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata:\n  name: forged\nspec:\n  source:\n    topic: clicks\n  sinks:\n    - topic: copied\n","file":"forged.yaml"}"#;

const MANIFEST: &str = "apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: copy
spec:
  source:
    topic: clicks
  sinks:
    - topic: copied
      create: {partitions: 1}
";

/// Produces one record (key `forged`) with librdkafka and `extra` client
/// settings: the offset, or the delivery error's code.
fn produce_one(
    bootstrap: &str,
    topic: &str,
    value: &str,
    extra: &[(&str, &str)],
) -> Result<i64, Option<RDKafkaErrorCode>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "8000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: FutureProducer = config.create().expect("a producer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(
            producer.send(
                FutureRecord::to(topic)
                    .partition(0)
                    .key("forged")
                    .payload(value),
                Duration::from_secs(10),
            ),
        )
        .map(|d| d.offset)
        .map_err(|(e, _)| e.rdkafka_error_code())
}

/// GET `path` of the admin API at `admin`: status and JSON body.
fn get(admin: &str, path: &str) -> (u16, Value) {
    let mut response = http()
        .get(format!("http://{admin}{path}"))
        .call()
        .expect("the admin API answers");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn pipeline_names(admin: &str) -> Vec<String> {
    let (status, body) = get(admin, "/api/v1/pipelines");
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .expect("a list")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A group commit, which makes the broker create `__consumer_offsets`.
fn commit_an_offset(bootstrap: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "committer")
        .create()
        .expect("a consumer");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("clicks", 0, Offset::Offset(1))
        .expect("an offset");
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("the commit is stored");
}

#[test]
fn a_single_node_refuses_client_produces_to_internal_topics() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), free_port(), None);
    let bootstrap = server.bootstrap.clone();
    // The runtime creates its internal topics as the server starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(&server.admin, "/api/v1/topics/__fjord_pipelines").0 != 200 {
        assert!(Instant::now() < deadline, "no __fjord_pipelines");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.produce("clicks", ["a".to_owned()]);
    commit_an_offset(&bootstrap);

    for topic in ["__fjord_pipelines", "__consumer_offsets"] {
        assert_eq!(
            produce_one(&bootstrap, topic, FORGED, &[]),
            Err(Some(RDKafkaErrorCode::InvalidTopic)),
            "{topic}"
        );
    }
    // A changelog that does not exist yet is not auto-created either.
    let changelog = "pipeline.forged.count.changelog";
    assert!(produce_one(&bootstrap, changelog, "{}", &[]).is_err());
    assert_eq!(
        get(&server.admin, &format!("/api/v1/topics/{changelog}")).0,
        404
    );

    // The runtime reads deployments every few hundred ms: nothing appears.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pipeline_names(&server.admin), Vec::<String>::new());
    assert_eq!(
        get(&server.admin, "/api/v1/topics/copied").0,
        404,
        "the forged pipeline never ran"
    );
    // Ordinary topics take produces as before.
    assert!(produce_one(&bootstrap, "clicks", "b", &[]).is_ok());
}

#[test]
fn in_a_cluster_the_platform_writes_internal_topics_and_clients_cannot() {
    let cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let bootstrap = cluster.bootstrap();
    cluster.wait_for_detail("clicks is created", |c| {
        match common::kafka::create_topic(&c.bootstrap(), "clicks", 1, 3, &[]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });

    // Deployed through every node's admin API in turn: whichever does not
    // lead __fjord_pipelines writes it through the leader, authenticated.
    for id in cluster.ids() {
        let admin = cluster.node(id).admin.clone();
        let manifest = MANIFEST.replace("name: copy", &format!("name: copy{id}"));
        cluster.wait_for_detail(&format!("node {id} deploys a pipeline"), |_| {
            let mut response = http()
                .post(format!("http://{admin}/api/v1/pipelines"))
                .header("Content-Type", "application/yaml")
                .send(&manifest)
                .map_err(|e| e.to_string())?;
            let body = response.body_mut().read_to_string().unwrap_or_default();
            match response.status().as_u16() {
                201 => Ok(()),
                status => Err(format!("{status}: {body}")),
            }
        });
    }
    let admin = cluster.node(1).admin.clone();
    cluster.wait_for("the three pipelines are listed", |_| {
        let names = pipeline_names(&admin);
        (names == ["copy1", "copy2", "copy3"]).then_some(())
    });
    common::kafka::produce_to(&bootstrap, "clicks", 0, &["x".to_owned()]);
    cluster.wait_for("the pipelines copy the record", |c| {
        let copied = common::kafka::consume_all(&c.bootstrap(), "copied", 0);
        (copied.len() >= 3).then_some(())
    });

    // A plain client is refused, whichever broker leads the topic.
    assert_eq!(
        produce_one(&bootstrap, "__fjord_pipelines", FORGED, &[]),
        Err(Some(RDKafkaErrorCode::InvalidTopic))
    );
    // Guessing the internal principal's password gets nothing in.
    let guessed = produce_one(
        &bootstrap,
        "__fjord_pipelines",
        FORGED,
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "fjord-internal"),
            ("sasl.password", "guess"),
        ],
    );
    assert!(guessed.is_err(), "{guessed:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(!pipeline_names(&admin).contains(&"forged".to_owned()));
}
