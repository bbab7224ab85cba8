//! Deleting many topics while the broker's periodic log work (flush
//! policy, retention, checkpoints) runs over them: no partition's work
//! fails on a directory that is going away, nothing is left on disk, and
//! the broker serves on. (Deleting ~100 topics used to log hundreds of
//! `checkpoint failed … No such file or directory`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, free_port};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPICS: usize = 100;
const PARTITIONS: i32 = 4;

#[test]
fn deleting_topics_under_checkpoints_logs_no_errors_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let config = dir.path().join("fjord.yaml");
    // Checkpoints as often as the broker allows, so they run while topics
    // are deleted.
    std::fs::write(
        &config,
        "log.flush.offset.checkpoint.interval.ms: 100\nlog.flush.scheduler.interval.ms: 10\nlog.retention.check.interval.ms: 100\n",
    )
    .unwrap();
    let port = free_port();
    let admin_addr = format!("127.0.0.1:{}", free_port());
    let server = Server::spawn(
        &data,
        port,
        &admin_addr,
        &["--config".to_owned(), config.display().to_string()],
        Some(&log),
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .create()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names: Vec<String> = (0..TOPICS).map(|i| format!("doomed-{i}")).collect();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    for result in runtime
        .block_on(admin.create_topics(&new, &options))
        .unwrap()
    {
        result.unwrap();
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for name in &names {
        for p in 0..PARTITIONS {
            producer
                .send(BaseRecord::<(), str>::to(name).partition(p).payload("x"))
                .unwrap();
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    // A few rounds of checkpoints over every partition first.
    std::thread::sleep(Duration::from_millis(500));

    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    for chunk in refs.chunks(10) {
        for result in runtime
            .block_on(admin.delete_topics(chunk, &options))
            .unwrap()
        {
            result.unwrap();
        }
    }
    // Let the periodic work run over what is left.
    std::thread::sleep(Duration::from_secs(1));

    let left: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Renamed `<dir>.<uuid>-delete` to wait for `file.delete.delay.ms`:
        // not a partition any more.
        .filter(|n| n.starts_with("doomed-") && !n.ends_with("-delete"))
        .collect();
    assert!(left.is_empty(), "left on disk: {left:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let failures: Vec<&str> = text
        .lines()
        // (A client's connection reset is logged as a warning too: only
        // what concerns the deleted topics counts here.)
        .filter(|l| l.contains("ERROR") || (l.contains("WARN") && l.contains("doomed-")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} warnings and errors while deleting, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The broker serves on.
    server.produce("after", ["still here".to_owned()]);
    let start = Instant::now();
    assert_eq!(
        server.consume("after", 1, Duration::from_secs(10)),
        vec!["still here".to_owned()]
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    server.kill();
}
