//! Replication under failure, end to end: three `fjord server` processes
//! (combined mode), topics with replication factor 3 and
//! `min.insync.replicas=2`, real librdkafka clients through the harness's
//! proxies, and leaders killed, restarted and cut off.
//!
//! What these tests hold the broker to (Kafka's ISR model):
//! - CreateTopics through any broker places RF replicas on the registered
//!   brokers (broker id = node id); Metadata from any broker reports each
//!   partition's leader, replicas and ISR.
//! - A record acknowledged with `acks=all` is in the log at the offset its
//!   acknowledgement named, after any number of leader failovers; offsets
//!   have no gaps and an idempotent producer's retries leave no duplicates.
//! - A leader cut off from the others acknowledges nothing with `acks=all`:
//!   it answers with an error, and what it appended alone is gone once it
//!   rejoins as a follower (truncated to the new leader's log).
//! - Metadata changes (a new topic) keep working after the active
//!   controller's node dies.
//! - Once caught up, the replicas' log files are byte-for-byte equal.

mod common;

use std::time::Instant;

use common::cluster::Cluster;
use common::kafka::{
    AckedProducer, RawAnswer, check_acked_log, consume_all, create_topic, log_bytes,
};

const REPLICATED: [(&str, &str); 1] = [("min.insync.replicas", "2")];

/// Starts three nodes, waits for the quorum and three unfenced brokers,
/// creates `topic` (1 partition, RF 3, min.insync 2) and waits for its ISR
/// to be full.
fn cluster_with_topic(topic: &str) -> Cluster {
    cluster_of_with_topic(3, topic)
}

/// [`cluster_with_topic`] on `nodes` nodes (three voters, the rest brokers
/// only): the topic's three replicas go wherever the quorum places them.
fn cluster_of_with_topic(nodes: usize, topic: &str) -> Cluster {
    let cluster = Cluster::start(nodes);
    let ids: Vec<u64> = (1..=nodes as u64).collect();
    cluster.wait_for_brokers(&ids);
    cluster.wait_for_detail(&format!("CreateTopics {topic} with RF 3"), |c| {
        match create_topic(&c.bootstrap(), topic, 1, 3, &REPLICATED) {
            // An earlier attempt created it but its answer was lost.
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let info = cluster.wait_for_isr(topic, 0, 3);
    let mut replicas = info.replicas.clone();
    replicas.sort_unstable();
    replicas.dedup();
    assert_eq!(replicas.len(), 3, "three replicas of {topic}-0: {info:?}");
    assert!(
        replicas.iter().all(|r| (1..=nodes as i32).contains(r)),
        "replicas of {topic}-0 on the cluster's brokers: {info:?}"
    );
    assert!(
        replicas.contains(&info.leader),
        "the leader of {topic}-0 is one of its replicas: {info:?}"
    );
    cluster
}

#[test]
fn acked_records_survive_leader_kills() {
    let failovers: usize = std::env::var("FJORD_FAILOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    survive_leader_kills(3, failovers);
}

#[test]
fn acked_records_survive_leader_kills_among_five_brokers() {
    survive_leader_kills(5, 2);
}

/// An idempotent acks=all producer runs while the partition's leader is
/// killed `failovers` times (and restarted each time); then every
/// acknowledged record is checked and the replicas' logs compared.
fn survive_leader_kills(nodes: usize, failovers: usize) {
    const TOPIC: &str = "events";
    let started = Instant::now();
    let mut cluster = cluster_of_with_topic(nodes, TOPIC);
    let producer = AckedProducer::start(&cluster.bootstrap(), TOPIC, &[]);
    producer.wait_acked(&cluster, 0, 20, "the first 20 records acknowledged");

    for round in 1..=failovers {
        let leader = cluster.wait_for_leader(TOPIC, 0);
        let before = producer.acked();
        cluster.kill(leader);
        producer.wait_acked(
            &cluster,
            before,
            20,
            &format!(
                "failover {round}/{failovers}: 20 more records acknowledged after killing \
                 leader {leader} (a new leader took over)"
            ),
        );
        let info = cluster.partition(TOPIC, 0);
        assert!(
            info.as_ref().is_ok_and(|i| i.leader != leader as i32),
            "failover {round}: the killed node {leader} is not the leader: {info:?}"
        );
        cluster.restart(leader);
        cluster.wait_for_isr(TOPIC, 0, 3);
        eprintln!(
            "failover {round}: leader {leader} killed, {} acknowledged, ISR full again at {:?}",
            producer.acked(),
            started.elapsed()
        );
    }

    let report = producer.stop();
    assert!(
        report.fatal.is_none(),
        "the idempotent producer hit a fatal error: {:?}",
        report.fatal
    );
    let log = consume_all(&cluster.bootstrap(), TOPIC, 0);
    eprintln!(
        "{} sent, {} acknowledged, {} failed, {} in the log",
        report.sent,
        report.acked.len(),
        report.failed.len(),
        log.len()
    );
    check_acked_log(&log, &report);

    // Replicas equal: wait for the followers to catch up (their files only
    // grow towards the leader's), then stop every node cleanly and compare
    // the files once more, flushed and closed.
    let ids: Vec<u64> = cluster
        .partition(TOPIC, 0)
        .expect("the partition")
        .replicas
        .iter()
        .map(|&r| r as u64)
        .collect();
    cluster.wait_for_detail("the three replicas' logs equal", |c| {
        let logs: Vec<Vec<u8>> = ids
            .iter()
            .map(|&id| log_bytes(&c.data_dir(id), TOPIC, 0))
            .collect();
        if logs.windows(2).all(|w| w[0] == w[1]) {
            Ok(())
        } else {
            Err(format!(
                "log sizes {:?}",
                logs.iter().map(Vec::len).collect::<Vec<_>>()
            ))
        }
    });
    for id in cluster.ids() {
        cluster.terminate(id);
    }
    let logs: Vec<(u64, Vec<u8>)> = ids
        .iter()
        .map(|&id| (id, log_bytes(&cluster.data_dir(id), TOPIC, 0)))
        .collect();
    for pair in logs.windows(2) {
        assert!(
            pair[0].1 == pair[1].1,
            "after a clean shutdown, node {}'s log ({} bytes) equals node {}'s ({} bytes)",
            pair[0].0,
            pair[0].1.len(),
            pair[1].0,
            pair[1].1.len()
        );
    }
    eprintln!("done in {:?}", started.elapsed());
}

#[test]
fn a_hung_leader_is_replaced_and_rejoins_as_a_follower() {
    const TOPIC: &str = "hung";
    let mut cluster = cluster_with_topic(TOPIC);
    let producer = AckedProducer::start(&cluster.bootstrap(), TOPIC, &[]);
    producer.wait_acked(&cluster, 0, 20, "20 records acknowledged before the hang");

    // SIGSTOP: the process keeps its sockets open but answers nothing, as
    // a broker stuck in a long pause does. Its session expires.
    let leader = cluster.wait_for_leader(TOPIC, 0);
    cluster.stop(leader);
    let before = producer.acked();
    producer.wait_acked(
        &cluster,
        before,
        20,
        &format!("20 records acknowledged by a new leader while {leader} is stopped"),
    );
    let info = cluster.partition(TOPIC, 0);
    assert!(
        info.as_ref().is_ok_and(|i| i.leader != leader as i32),
        "the stopped node {leader} is not the leader: {info:?}"
    );

    // It wakes up still believing it leads; the metadata it catches up on
    // makes it a follower, and it rejoins the ISR.
    // Read back right away, through every broker, the woken one included:
    // it must not answer as the leader it was (its session lapsed, so its
    // lease on its leaderships did, until it caught up with the metadata).
    cluster.cont(leader);
    cluster.wait_for_isr(TOPIC, 0, 3);
    let report = producer.stop();
    assert!(
        report.fatal.is_none(),
        "fatal producer error: {:?}",
        report.fatal
    );
    let log = consume_all(&cluster.bootstrap(), TOPIC, 0);
    check_acked_log(&log, &report);
    cluster.wait_for_every_view(
        &format!("every broker, {leader} included, to see a new leader and 3 in sync"),
        TOPIC,
        0,
        |info| info.leader >= 0 && info.leader != leader as i32 && info.isr.len() == 3,
    );
}

#[test]
fn leader_cut_off_acknowledges_nothing() {
    const TOPIC: &str = "isolated";
    const LOST: &str = "sent-to-the-cut-leader";
    let mut cluster = cluster_with_topic(TOPIC);
    let producer = AckedProducer::start(&cluster.bootstrap(), TOPIC, &[]);
    producer.wait_acked(&cluster, 0, 20, "20 records acknowledged before the cut");

    let leader = cluster.wait_for_leader(TOPIC, 0);
    cluster.cut(leader);
    // Straight to the cut leader's real port: it cannot reach a follower,
    // so with acks=all and min.insync.replicas=2 it must not say yes.
    let answer = common::kafka::raw_produce(cluster.node(leader).kafka, TOPIC, 0, LOST, -1, 5000);
    const REFUSALS: [(i16, &str); 4] = [
        (6, "NOT_LEADER_OR_FOLLOWER"),
        (7, "REQUEST_TIMED_OUT"),
        (19, "NOT_ENOUGH_REPLICAS"),
        (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND"),
    ];
    match &answer {
        RawAnswer::ErrorCode(code) if REFUSALS.iter().any(|(c, _)| c == code) => {
            eprintln!("the cut leader {leader} answered error {code}");
        }
        RawAnswer::ErrorCode(0) => {
            panic!("the cut leader {leader} acknowledged an acks=all record it could not replicate")
        }
        other => panic!(
            "the cut leader {leader} should refuse with one of {REFUSALS:?}; it answered {other:?}"
        ),
    }

    // Meanwhile the others elect a new leader and keep acknowledging.
    let before = producer.acked();
    producer.wait_acked(
        &cluster,
        before,
        20,
        &format!("20 records acknowledged by a new leader while {leader} is cut off"),
    );
    let info = cluster.partition(TOPIC, 0);
    assert!(
        info.as_ref().is_ok_and(|i| i.leader != leader as i32),
        "the reachable brokers name a leader other than the cut node {leader}: {info:?}"
    );

    cluster.heal(leader);
    cluster.wait_for_isr(TOPIC, 0, 3);
    let report = producer.stop();
    assert!(
        report.fatal.is_none(),
        "fatal producer error: {:?}",
        report.fatal
    );
    let log = consume_all(&cluster.bootstrap(), TOPIC, 0);
    check_acked_log(&log, &report);
    assert!(
        log.iter().all(|(_, v)| v != LOST),
        "the record only the cut leader had is not in the log after it rejoined"
    );
}

#[test]
fn metadata_changes_continue_after_controller_kill() {
    const TOPIC: &str = "after-kill";
    let mut cluster = Cluster::start(3);
    let controller = cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.kill(controller);
    let live: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&i| i != controller)
        .collect();
    cluster.wait_for_brokers(&live);

    // RF 2: only two brokers are alive to hold replicas.
    cluster.wait_for_detail(
        &format!("CreateTopics {TOPIC} after the controller's node {controller} died"),
        |c| create_topic(&c.bootstrap(), TOPIC, 1, 2, &[]),
    );
    let info = cluster.wait_for_partition(
        &format!("{TOPIC}-0 with a leader and two replicas on the live brokers {live:?}"),
        TOPIC,
        0,
        |i| i.leader >= 0 && i.replicas.len() == 2,
    );
    let mut replicas: Vec<u64> = info.replicas.iter().map(|&r| r as u64).collect();
    replicas.sort_unstable();
    assert_eq!(replicas, live, "replicas on the live brokers: {info:?}");
    assert!(
        live.contains(&(info.leader as u64)),
        "the leader is a live broker: {info:?}"
    );
}

/// The log start offset a replica's checkpoint records (`fjord-log`'s
/// `log-start-offset-checkpoint`: a version line, a count, the offset).
fn log_start_on(cluster: &Cluster, id: u64, topic: &str) -> Option<i64> {
    let path = cluster
        .data_dir(id)
        .join(format!("{topic}-0"))
        .join("log-start-offset-checkpoint");
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .nth(2)?
        .trim()
        .parse()
        .ok()
}

#[test]
fn deleted_records_go_from_every_replica() {
    const TOPIC: &str = "trimmed";
    let mut cluster = cluster_with_topic(TOPIC);
    let producer = AckedProducer::start(&cluster.bootstrap(), TOPIC, &[]);
    producer.wait_acked(&cluster, 0, 10, "the first records");
    // One follower is away while the records it lacks are deleted.
    let leader = cluster.wait_for_leader(TOPIC, 0);
    let away = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    cluster.kill(away);
    producer.wait_acked(&cluster, 10, 90, "100 records to trim");
    let report = producer.stop();
    assert!(report.fatal.is_none(), "producer: {:?}", report.fatal);

    // DeleteRecords through the leader (librdkafka's admin client).
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap())
            .create()
            .expect("admin client");
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        // Everything acknowledged: far past the end of the follower that
        // was away.
        .add_partition_offset(TOPIC, 0, rdkafka::Offset::End)
        .expect("offset list");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the admin client");
    let deleted = runtime
        .block_on(admin.delete_records(&offsets, &rdkafka::admin::AdminOptions::new()))
        .expect("DeleteRecords");
    let low = deleted.find_partition(TOPIC, 0).map(|p| p.offset());
    let Some(rdkafka::Offset::Offset(low)) = low else {
        panic!("DeleteRecords answered {deleted:?}");
    };
    assert!(low >= 100, "deleted up to the high watermark: {deleted:?}");

    // The followers follow the leader's log start (their next fetch tells
    // them), so a follower that becomes leader does not serve them again.
    // The one that was away, behind the new log start, starts its log over
    // there and catches up.
    cluster.restart(away);
    cluster.wait_for_isr(TOPIC, 0, 3);
    let ids = cluster.ids();
    cluster.wait_for_detail(&format!("every replica's log starting at {low}"), |c| {
        let starts: Vec<Option<i64>> = ids.iter().map(|&id| log_start_on(c, id, TOPIC)).collect();
        if starts.iter().all(|s| *s == Some(low)) {
            Ok(())
        } else {
            Err(format!("log starts {starts:?}"))
        }
    });

    // The admin API's topic view is the quorum's: three replicas, all in
    // sync, and the leader Metadata names.
    let info = cluster.wait_for_isr(TOPIC, 0, 3);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(5)))
        .build()
        .into();
    let body = agent
        .get(format!(
            "http://{}/api/v1/topics/{TOPIC}",
            cluster.node(away).admin
        ))
        .call()
        .expect("the admin API answers")
        .body_mut()
        .read_to_string()
        .expect("a body");
    let detail: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(detail["replication_factor"], 3, "{detail:#}");
    let partition = &detail["partitions"][0];
    assert_eq!(partition["leader"], info.leader, "{detail:#}");
    assert_eq!(
        partition["replicas"].as_array().map(Vec::len),
        Some(3),
        "{detail:#}"
    );
    assert_eq!(
        partition["isr"].as_array().map(Vec::len),
        Some(3),
        "{detail:#}"
    );
}
