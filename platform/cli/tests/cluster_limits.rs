//! `max.partitions` and colliding topic names in a cluster: three `fjord
//! server` processes (combined mode), topics created through the
//! controller quorum with librdkafka's admin client. The limit counts the
//! partition replicas the quorum holds against `max.partitions` times the
//! registered brokers, and is answered POLICY_VIOLATION before any broker
//! makes a directory; a name that collides with an existing topic once
//! `.` and `_` are the same is INVALID_TOPIC_EXCEPTION.

mod common;

use common::cluster::{Cluster, ClusterConfig};
use common::kafka::create_topic;

/// Creates `name` once (an earlier attempt may have created it and lost
/// its answer).
fn create(cluster: &Cluster, name: &str, partitions: i32, rf: i32) {
    cluster.wait_for_detail(&format!("CreateTopics {name}"), |c| {
        match create_topic(&c.bootstrap(), name, partitions, rf, &[]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
}

#[test]
fn the_partition_limit_and_colliding_names_hold_in_a_cluster() {
    let cluster = Cluster::start_with(ClusterConfig::new(3).yaml("max.partitions: 100"));
    cluster.wait_for_brokers(&[1, 2, 3]);
    // Room for 3 × 100 = 300 replicas, the platform's own topics (the
    // offsets topic's 150 among them) included: 200 partitions with 3
    // replicas each never fit.
    assert_eq!(
        create_topic(&cluster.bootstrap(), "more", 200, 3, &[]),
        Err("CreateTopics more: PolicyViolation".to_owned())
    );
    create(&cluster, "coll.a.b", 1, 1);
    assert_eq!(
        create_topic(&cluster.bootstrap(), "coll_a_b", 1, 1, &[]),
        Err("CreateTopics coll_a_b: InvalidTopic".to_owned())
    );
    create(&cluster, "wide", 3, 3);
    for id in cluster.ids() {
        let dirs: Vec<String> = std::fs::read_dir(cluster.data_dir(id))
            .expect("a data directory")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("more-") || n.starts_with("coll_a_b-"))
            .collect();
        assert!(dirs.is_empty(), "node {id}: {dirs:?}");
    }
}
