//! Pipelines in a cluster, end to end: three `fjord server` processes, a
//! pipeline deployed through one node's admin API, its source partition
//! replicated three times, and the source partition's leader killed while
//! records flow.
//!
//! What this holds the runtime to:
//! - A pipeline's tasks run on the leader of their source partition and
//!   move with its leadership: the new leader resumes from the committed
//!   offset, with the state its predecessor saved in the changelog.
//! - No record acknowledged to the producer is lost to the pipeline, and no
//!   record is counted twice: every event-time window ends with exactly the
//!   records produced into it, however often it is emitted (delivery is
//!   at-least-once, so a window may be emitted again, with the same count).
//! - The sink, the changelog and the committed offsets are written through
//!   the partitions' leaders, so they are replicated like any topic.
//! - With `delivery: exactly-once` the task writes them in transactions (a
//!   librdkafka transactional producer of the partition's id): the new
//!   leader's task fences the killed one's, whose open transaction is
//!   aborted, and a read_committed reader of the sink sees each window
//!   emitted exactly once.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::cluster::Cluster;
use common::http;
use common::kafka::{consume_all, consume_committed, create_topic, produce_to};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};
use serde_json::Value;

/// Event time of the first record: a whole second, so windows of one
/// second hold records `100 w .. 100 w + 99`.
const T0: i64 = 1_700_000_000_000;
/// Records per window: one every 10 ms of event time.
const PER_WINDOW: i64 = 100;
const WINDOWS: i64 = 60;

const MANIFEST: &str = "apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: windows
spec:
  source:
    topic: clicks
  steps:
    - name: per-second
      plugin: aggregate
      config:
        window: tumbling
        size: 1s
        time_field: ts
        # Event time here is years behind the wall clock: never let it
        # follow the clock, or a failover pause would close open windows.
        idle: 1h
        group_by: [k]
        aggregations:
          count: count()
  sinks:
    - topic: counts
      create: {partitions: 1}
";

fn record(i: i64) -> String {
    format!(r#"{{"k":"a","ts":{},"i":{i}}}"#, T0 + i * 10)
}

fn produce(cluster_bootstrap: &str, from: i64, to: i64) {
    let values: Vec<String> = (from..to).map(record).collect();
    let report = produce_to(cluster_bootstrap, "clicks", 0, &values);
    assert!(
        report.failed.is_empty() && report.fatal.is_none() && report.acked.len() == values.len(),
        "records {from}..{to}: {} acknowledged, failed {:?}, fatal {:?}",
        report.acked.len(),
        report.failed.first(),
        report.fatal
    );
}

/// Every emission of the sink `counts` a read_committed reader sees:
/// window index → the counts emitted for it, in order.
fn emitted(bootstrap: &str) -> BTreeMap<i64, Vec<i64>> {
    let mut windows: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (_, value) in consume_committed(bootstrap, "counts", 0) {
        let v: Value = serde_json::from_str(&value).expect("an aggregate record is JSON");
        let start = v["window_start"].as_i64().expect("window_start");
        let count = v["count"].as_i64().expect("count");
        windows.entry((start - T0) / 1000).or_default().push(count);
    }
    windows
}

/// How the source partition's leader fails.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// SIGKILL, then a restart.
    Kill,
    /// SIGSTOP until its session expired and a new leader took over, then
    /// SIGCONT: it wakes up believing it leads, with a task mid-stream.
    Hang,
}

#[test]
fn a_pipeline_follows_its_source_leader_without_losing_or_double_counting() {
    let (cluster, new_leader) = follow_a_failover(Fault::Kill, false);
    check_the_cli(&cluster, new_leader);
}

#[test]
fn a_hung_source_leader_that_wakes_up_does_not_count_twice() {
    follow_a_failover(Fault::Hang, false);
}

#[test]
fn an_exactly_once_pipeline_emits_each_window_once_across_a_kill() {
    follow_a_failover(Fault::Kill, true);
}

/// Runs the windowed count (`exactly_once`: in transactions) across a
/// failover of its source partition's leader and checks every window;
/// returns the cluster and the new leader.
fn follow_a_failover(fault: Fault, exactly_once: bool) -> (Cluster, u64) {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail("CreateTopics clicks with RF 3", |c| {
        match create_topic(
            &c.bootstrap(),
            "clicks",
            1,
            3,
            &[("min.insync.replicas", "2")],
        ) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    cluster.wait_for_isr("clicks", 0, 3);
    if exactly_once {
        // Its records carry event times of 2023: kept, or retention would
        // delete the windows once a transaction marker (stamped now) rolls
        // the segment, as Kafka's time-based roll does.
        cluster.wait_for_detail("CreateTopics counts kept forever", |c| {
            match create_topic(&c.bootstrap(), "counts", 1, 3, &[("retention.ms", "-1")]) {
                Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
                other => other,
            }
        });
    }

    // Deployed through the admin API of one node; it answers once the
    // pipelines' internal topics (replicated too) exist.
    let admin = cluster.node(1).admin.clone();
    let manifest = if exactly_once {
        MANIFEST.replace("spec:\n", "spec:\n  delivery: exactly-once\n")
    } else {
        MANIFEST.to_owned()
    };
    cluster.wait_for_detail("the admin API deploys the pipeline", |_| {
        let mut response = http()
            .post(format!("http://{admin}/api/v1/pipelines"))
            .header("Content-Type", "application/yaml")
            .send(manifest.as_str())
            .map_err(|e| e.to_string())?;
        let body = response.body_mut().read_to_string().unwrap_or_default();
        match response.status().as_u16() {
            201 => Ok(()),
            status => Err(format!("{status}: {body}")),
        }
    });

    // Thirty windows' worth, then the first 29 windows are closed (the
    // 30th waits for later event time) and emitted.
    produce(&cluster.bootstrap(), 0, 30 * PER_WINDOW);
    let bootstrap = cluster.bootstrap();
    cluster.wait_for_detail("windows 0..29 emitted before the failover", |_| {
        let seen = emitted(&bootstrap);
        if (0..29).all(|w| seen.contains_key(&w)) {
            Ok(())
        } else {
            Err(format!(
                "emitted so far: {:?}",
                seen.keys().collect::<Vec<_>>()
            ))
        }
    });

    // The rest flows in chunks while the source partition's leader dies.
    let leader = cluster.wait_for_leader("clicks", 0);
    let chunks_done = Arc::new(AtomicUsize::new(0));
    let producer = {
        let bootstrap = cluster.bootstrap();
        let chunks_done = Arc::clone(&chunks_done);
        std::thread::spawn(move || {
            for w in 30..WINDOWS {
                produce(&bootstrap, w * PER_WINDOW, (w + 1) * PER_WINDOW);
                chunks_done.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    cluster.wait_for("five more windows produced", |_| {
        (chunks_done.load(Ordering::SeqCst) >= 5).then_some(())
    });
    eprintln!("{fault:?}: node {leader}, the leader of clicks-0 and so of the pipeline's task");
    match fault {
        Fault::Kill => cluster.kill(leader),
        Fault::Hang => cluster.stop(leader),
    }
    producer.join().expect("the producer thread");
    // Far later event time closes every window produced so far.
    let rest = cluster.bootstrap();
    produce(&rest, WINDOWS * PER_WINDOW, WINDOWS * PER_WINDOW + 1);
    let closer = format!(r#"{{"k":"a","ts":{},"i":-1}}"#, T0 + 3_600_000);
    let report = produce_to(&rest, "clicks", 0, &[closer]);
    assert_eq!(report.acked.len(), 1, "the closing record: {report:?}");
    let new_leader = cluster.wait_for_leader("clicks", 0);
    assert_ne!(new_leader, leader, "a new leader took clicks-0 over");
    match fault {
        Fault::Kill => cluster.restart(leader),
        Fault::Hang => cluster.cont(leader),
    }

    let bootstrap = cluster.bootstrap();
    let seen = cluster.wait_for_detail("every window emitted after the failover", |_| {
        let seen = emitted(&bootstrap);
        if (0..=WINDOWS).all(|w| seen.contains_key(&w)) {
            Ok(seen)
        } else {
            let missing: Vec<i64> = (0..=WINDOWS).filter(|w| !seen.contains_key(w)).collect();
            Err(format!("windows not emitted yet: {missing:?}"))
        }
    });
    // Window 60 holds the one record produced after the chunks.
    for (w, counts) in &seen {
        let expected = if *w == WINDOWS { 1 } else { PER_WINDOW };
        assert!(
            counts.iter().all(|c| *c == expected),
            "window {w} was emitted with counts {counts:?}; every record counts once, so \
             each emission says {expected}"
        );
    }
    let again: usize = seen.values().map(|c| c.len() - 1).sum();
    // What the killed leader's task emitted after its last commit was in
    // its open transaction, aborted when the new leader's task fenced it.
    assert!(
        !exactly_once || again == 0,
        "exactly-once: no window is emitted twice, read committed: {seen:?}"
    );
    eprintln!(
        "{} windows, each with its {PER_WINDOW} records; {again} emitted again across the failover",
        seen.len()
    );

    // The status every node shows merges the brokers' statuses: the new
    // leader runs partition 0 and has read all of it.
    let live = cluster.node(new_leader).admin.clone();
    cluster.wait_for_detail("the pipeline status shows clicks-0 read to its end", |_| {
        let mut response = http()
            .get(format!("http://{live}/api/v1/pipelines/windows"))
            .call()
            .map_err(|e| e.to_string())?;
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let status = &v["status"];
        let partitions = status["partitions"].as_array().cloned().unwrap_or_default();
        let done = status["state"] == "running"
            && partitions.len() == 1
            && partitions[0]["lag"] == 0
            && partitions[0]["position"].as_i64() == Some(WINDOWS * PER_WINDOW + 2);
        if done { Ok(()) } else { Err(body) }
    });
    if exactly_once {
        fence_the_task(&cluster);
    }

    (cluster, new_leader)
}

/// Exactly-once: another producer of the task's transactional id fences
/// the task's. Its next write fails, its transaction is aborted (it is
/// lost), and the pipeline's tasks start again from the last commit: the
/// windows that follow are still emitted once each, and the log says why.
fn fence_the_task(cluster: &Cluster) {
    let bootstrap = cluster.bootstrap();
    let intruder: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "pipeline.windows.clicks.0")
        .create()
        .unwrap();
    intruder
        .init_transactions(Duration::from_secs(60))
        .expect("init_transactions fences the task's producer");
    drop(intruder);
    // Event time two hours on: window 3600 (the closing record above)
    // closes, then window 7200 (100 records) with a record later still.
    produce(&bootstrap, 720_000, 720_000 + PER_WINDOW);
    produce(&bootstrap, 1_080_000, 1_080_001);
    let seen = cluster.wait_for_detail("windows 3600 and 7200 emitted after the fence", |_| {
        let seen = emitted(&bootstrap);
        if seen.contains_key(&3600) && seen.contains_key(&7200) {
            Ok(seen)
        } else {
            Err(format!("emitted: {:?}", seen.keys().collect::<Vec<_>>()))
        }
    });
    assert_eq!(seen.get(&3600), Some(&vec![1]), "{seen:?}");
    assert_eq!(seen.get(&7200), Some(&vec![PER_WINDOW]), "{seen:?}");
    assert!(
        seen.values().all(|counts| counts.len() == 1),
        "no window emitted twice: {seen:?}"
    );
    cluster.wait_for_detail("the pipeline log says the transaction was aborted", |_| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(["pipeline", "logs", "windows"])
            .env("FJORD_BOOTSTRAP_SERVER", &bootstrap)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("a transaction was aborted, starting again from the last commit") {
            Ok(())
        } else {
            Err(text)
        }
    });
}

/// The CLI, like any Kafka client, sees the same merged status, and
/// deploys to the cluster through any broker's admin API.
fn check_the_cli(cluster: &Cluster, new_leader: u64) {
    let bootstrap = cluster.bootstrap();
    let admin = cluster.node(new_leader).admin.clone();
    let fjord = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(args)
            .env("FJORD_BOOTSTRAP_SERVER", &bootstrap)
            .env("FJORD_ADMIN", &admin)
            .output()
            .expect("run fjord");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "fjord {args:?}: {stdout}{stderr}");
        stdout
    };
    let status: Value = serde_json::from_str(&fjord(&["pipeline", "status", "windows", "--json"]))
        .expect("status --json is JSON");
    assert_eq!(status["state"], "running", "{status}");
    assert_eq!(
        status["node_id"].as_i64(),
        Some(new_leader as i64),
        "{status}"
    );
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.yaml");
    std::fs::write(
        &copy,
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata:\n  name: copy\nspec:\n  source:\n    topic: clicks\n  sinks:\n    - topic: clicks.copy\n      create: {partitions: 1}\n",
    )
    .unwrap();
    let deployed = fjord(&["pipeline", "deploy", copy.to_str().unwrap()]);
    assert!(deployed.contains("pipeline copy deployed"), "{deployed}");
    let bootstrap = cluster.bootstrap();
    cluster.wait_for_detail("the copy pipeline copies every record", |_| {
        let copied = consume_all(&bootstrap, "clicks.copy", 0).len() as i64;
        if copied == WINDOWS * PER_WINDOW + 2 {
            Ok(())
        } else {
            Err(format!("{copied} records copied"))
        }
    });
}
