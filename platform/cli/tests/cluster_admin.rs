//! Partition and broker administration in a cluster, end to end: three
//! `fjord server` processes (combined mode) and the `fjord cluster`
//! commands, which send Kafka's ElectLeaders, AlterPartitionReassignments
//! and UnregisterBroker requests.
//!
//! What these tests hold the broker and the CLI to:
//! - After its preferred (first) replica failed and came back in sync, a
//!   partition is led by another broker until `fjord cluster elect-leaders`
//!   moves the leadership back; a second election is "not needed".
//! - `fjord cluster reassign` replaces a partition's replicas: the new
//!   replica copies the log (its files end up byte-for-byte equal to the
//!   leader's) and joins the ISR, and the removed replica deletes its copy.
//! - `fjord cluster decommission` removes a stopped broker from the
//!   quorum's registrations and from Metadata, and refuses a broker that is
//!   alive or unknown; while it is stopped, DescribeCluster v2 lists it
//!   as fenced when asked to include fenced brokers.

mod common;

use std::process::Command;
use std::time::Instant;

use common::cluster::Cluster;
use common::kafka::{RawAnswer, create_topic, log_bytes, raw_call, raw_produce};
use kafka_protocol::messages::{ApiKey, DescribeClusterRequest, DescribeClusterResponse};

/// Runs `fjord <args> -b <the reachable brokers>`: success, stdout, stderr.
fn fjord(cluster: &Cluster, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .args(["-b", &cluster.bootstrap()])
        .output()
        .expect("run fjord");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts three nodes and creates `topic` (1 partition, replication
/// factor `rf`) once all three brokers are registered.
fn cluster_with_topic(topic: &str, rf: i32) -> Cluster {
    let cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail(&format!("CreateTopics {topic} with RF {rf}"), |c| {
        match create_topic(&c.bootstrap(), topic, 1, rf, &[]) {
            // An earlier attempt created it but its answer was lost.
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    cluster
}

/// Produces `count` records to `topic`-0 with acks=all through its leader.
fn produce(cluster: &Cluster, topic: &str, count: usize) {
    for i in 0..count {
        cluster.wait_for_detail(&format!("record {i} acknowledged"), |c| {
            let leader = c.wait_for_leader(topic, 0);
            match raw_produce(c.node(leader).kafka, topic, 0, &format!("r{i}"), -1, 5000) {
                RawAnswer::ErrorCode(0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
}

/// Broker ids and the controller flag from `fjord cluster brokers`.
fn brokers(cluster: &Cluster) -> Vec<(i32, bool)> {
    let (ok, out, err) = fjord(cluster, &["cluster", "brokers"]);
    assert!(ok, "fjord cluster brokers failed: {err}");
    out.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let id = fields[0]
                .parse()
                .unwrap_or_else(|_| panic!("a broker id in {line:?}"));
            (id, fields.get(2) == Some(&"yes"))
        })
        .collect()
}

#[test]
fn elect_leaders_gives_leadership_back_to_the_preferred_replica() {
    let started = Instant::now();
    let topic = "elect";
    let mut cluster = cluster_with_topic(topic, 3);
    let info = cluster.wait_for_isr(topic, 0, 3);
    let preferred = info.replicas[0];
    assert_eq!(
        info.leader, preferred,
        "a new partition is led by its first replica"
    );
    produce(&cluster, topic, 5);

    cluster.kill(preferred as u64);
    let moved = cluster.wait_for_partition(
        &format!("{topic}-0 led by another broker than {preferred}"),
        topic,
        0,
        |p| p.leader >= 0 && p.leader != preferred,
    );
    cluster.restart(preferred as u64);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let back = cluster.wait_for_isr(topic, 0, 3);
    assert_eq!(
        back.leader, moved.leader,
        "the returning preferred replica does not take the leadership by itself"
    );

    let (ok, out, err) = fjord(&cluster, &["cluster", "elect-leaders"]);
    assert!(ok, "fjord cluster elect-leaders failed:\n{out}{err}");
    assert!(
        out.contains(&format!("{topic}-0: leader is now broker {preferred}")),
        "{out}"
    );
    cluster.wait_for_partition(
        &format!("{topic}-0 led by its preferred replica {preferred}"),
        topic,
        0,
        |p| p.leader == preferred && p.isr.len() == 3,
    );

    // Nothing left to do: for the whole cluster, and for the partition.
    let (ok, out, err) = fjord(&cluster, &["cluster", "elect-leaders"]);
    assert!(
        ok && out.contains("no partition needs an election"),
        "{out}{err}"
    );
    let (ok, out, err) = fjord(
        &cluster,
        &[
            "cluster",
            "elect-leaders",
            "--topic",
            topic,
            "--partition",
            "0",
        ],
    );
    assert!(ok && out.contains("election not needed"), "{out}{err}");
    // An unknown partition is an error naming it.
    let (ok, out, err) = fjord(
        &cluster,
        &[
            "cluster",
            "elect-leaders",
            "--topic",
            topic,
            "--partition",
            "7",
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("{topic}-7")) && err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{err}"
    );
    eprintln!("elect-leaders test took {:?}", started.elapsed());
}

#[test]
fn reassign_moves_a_replica_to_another_broker() {
    let started = Instant::now();
    let topic = "moves";
    let cluster = cluster_with_topic(topic, 2);
    let info = cluster.wait_for_isr(topic, 0, 2);
    let (a, b) = (info.replicas[0], info.replicas[1]);
    let c = (1..=3)
        .find(|id| !info.replicas.contains(id))
        .expect("a third broker");
    produce(&cluster, topic, 20);

    let replicas = format!("{b},{c}");
    let (ok, out, err) = fjord(
        &cluster,
        &[
            "cluster",
            "reassign",
            "--topic",
            topic,
            "--partition",
            "0",
            "--replicas",
            &replicas,
        ],
    );
    assert!(ok, "fjord cluster reassign failed:\n{out}{err}");
    assert!(
        out.contains(&format!("{topic}-0: replicas are now {b},{c}")),
        "{out}"
    );

    let after = cluster.wait_for_partition(
        &format!("{topic}-0 on [{b}, {c}], both in sync"),
        topic,
        0,
        |p| p.replicas == [b, c] && p.isr.len() == 2 && p.leader >= 0,
    );
    assert_eq!(after.leader, b, "the remaining in-sync replica leads");

    let (dir_a, dir_b, dir_c) = (
        cluster.data_dir(a as u64),
        cluster.data_dir(b as u64),
        cluster.data_dir(c as u64),
    );
    let partition_dir = format!("{topic}-0");
    cluster.wait_for_detail(&format!("node {c}'s copy equal to node {b}'s"), |_| {
        if !dir_c.join(&partition_dir).is_dir() {
            return Err(format!("no {partition_dir} on node {c}"));
        }
        let (from_b, from_c) = (log_bytes(&dir_b, topic, 0), log_bytes(&dir_c, topic, 0));
        if !from_b.is_empty() && from_b == from_c {
            Ok(())
        } else {
            Err(format!(
                "{} bytes on {b}, {} on {c}",
                from_b.len(),
                from_c.len()
            ))
        }
    });
    cluster.wait_for_detail(&format!("{partition_dir} removed from node {a}"), |_| {
        if dir_a.join(&partition_dir).exists() {
            Err(format!(
                "{} still exists",
                dir_a.join(&partition_dir).display()
            ))
        } else {
            Ok(())
        }
    });

    // A broker that does not exist is refused, naming the partition.
    let (ok, out, err) = fjord(
        &cluster,
        &[
            "cluster",
            "reassign",
            "--topic",
            topic,
            "--partition",
            "0",
            "--replicas",
            &format!("{b},9"),
        ],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("{topic}-0")) && err.contains("INVALID_REPLICA_ASSIGNMENT"),
        "{err}"
    );
    eprintln!("reassign test took {:?}", started.elapsed());
}

#[test]
fn decommission_removes_a_stopped_broker() {
    let started = Instant::now();
    let topic = "decom";
    let mut cluster = cluster_with_topic(topic, 3);
    cluster.wait_for_isr(topic, 0, 3);
    let controller = cluster.wait_for_brokers(&[1, 2, 3]);
    let listed = cluster.wait_for_detail("fjord cluster brokers listing 1, 2, 3", |c| {
        let listed = brokers(c);
        let ids: Vec<i32> = listed.iter().map(|(id, _)| *id).collect();
        if ids == [1, 2, 3] {
            Ok(listed)
        } else {
            Err(format!("{listed:?}"))
        }
    });
    let flagged: Vec<i32> = listed
        .iter()
        .filter(|(_, c)| *c)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        flagged,
        [controller as i32],
        "one controller, the active one"
    );

    // A live broker would register again at once: refused.
    let (ok, _, err) = fjord(&cluster, &["cluster", "decommission", "--broker", "2"]);
    assert!(
        !ok && err.contains("broker 2") && err.contains("alive"),
        "{err}"
    );
    let (ok, _, err) = fjord(&cluster, &["cluster", "decommission", "--broker", "9"]);
    assert!(!ok && err.contains("BROKER_ID_NOT_REGISTERED"), "{err}");

    cluster.kill(3);
    cluster.wait_for_brokers(&[1, 2]);
    // Fenced, but still registered: the quorum would unfence it on return.
    cluster.wait_for("broker 3 fenced and still registered", |c| {
        (c.fenced_brokers() == [3]).then_some(())
    });
    // DescribeCluster v2 (KIP-1073) lists it, marked fenced, only when
    // asked to.
    cluster.wait_for_detail("DescribeCluster v2 listing broker 3 fenced", |c| {
        let listed = |include_fenced: bool| -> Result<Vec<(i32, bool)>, String> {
            let request = DescribeClusterRequest::default()
                .with_endpoint_type(1)
                .with_include_fenced_brokers(include_fenced);
            let answer: DescribeClusterResponse =
                raw_call(c.node(1).kafka, ApiKey::DescribeCluster, 2, &request, 0)?;
            Ok(answer
                .brokers
                .iter()
                .map(|b| (b.broker_id.0, b.is_fenced))
                .collect())
        };
        let (all, live) = (listed(true)?, listed(false)?);
        if all == [(1, false), (2, false), (3, true)] && live == [(1, false), (2, false)] {
            Ok(())
        } else {
            Err(format!("with fenced {all:?}, without {live:?}"))
        }
    });
    let (ok, out, err) = fjord(&cluster, &["cluster", "decommission", "--broker", "3"]);
    assert!(ok, "fjord cluster decommission failed:\n{out}{err}");
    assert!(out.contains("broker 3 decommissioned"), "{out}");
    assert!(
        out.contains(&format!("{topic}-0")),
        "its partitions are named: {out}"
    );

    // Gone from the quorum's registrations (not just fenced) …
    cluster.wait_for_detail("broker 3 gone from the quorum", |c| {
        let view = c
            .active_controller()
            .and_then(|id| c.quorum(id))
            .ok_or("no active controller view")?;
        let ids: Vec<u64> = view["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["id"].as_u64())
            .collect();
        if ids == [1, 2] {
            Ok(())
        } else {
            Err(format!("registered: {ids:?}"))
        }
    });
    // … and from Metadata.
    let ids: Vec<i32> = brokers(&cluster).iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 2]);
    // Its replica stays listed, offline, until reassigned.
    let info = cluster.wait_for_isr(topic, 0, 2);
    assert!(info.replicas.contains(&3), "{info:?}");
    eprintln!("decommission test took {:?}", started.elapsed());
}
