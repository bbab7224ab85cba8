//! ACLs in a cluster of three `fjord server` processes: a binding created
//! through one broker (through the controller quorum) applies on every
//! broker, and replication keeps working under an authorizer that denies
//! anonymous clients CLUSTER_ACTION: replica fetchers log in as the
//! platform's internal principal.

mod common;

use std::process::Command;

use common::cluster::{Cluster, ClusterConfig};
use common::kafka::{RawAnswer, create_topic, log_bytes, raw_call, raw_produce};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

fn fjord(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .args(["-b", bootstrap])
        .output()
        .expect("run fjord");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn acls_apply_on_every_broker_and_replication_logs_in() {
    // Resources without bindings stay open (allow.everyone.if.no.acl.found),
    // so the test's anonymous client may create the first bindings.
    let cluster = Cluster::start_with(
        ClusterConfig::new(3)
            .yaml("authorizer.class.name: acl")
            .yaml("allow.everyone.if.no.acl.found: true")
            // The harness reads each node's quorum view over the admin API
            // without a login (tests/admin_auth.rs tests the login).
            .yaml("admin.api.require.auth: false"),
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
    let first = cluster.node(1).kafka.to_string();
    let (ok, out) = fjord(
        &first,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "alter,describe,create",
            "--cluster",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = fjord(
        &first,
        &[
            "acl",
            "create",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "cluster_action",
            "--cluster",
        ],
    );
    assert!(ok, "{out}");
    // Every broker answers with the bindings (each applied the command).
    for id in [1, 2, 3] {
        let addr = cluster.node(id).kafka.to_string();
        cluster.wait_for_detail(&format!("broker {id} lists the bindings"), |_| {
            let (ok, out) = fjord(&addr, &["acl", "list", "--cluster"]);
            if ok && out.contains("CLUSTER_ACTION\tDENY") && out.contains("ALTER\tALLOW") {
                Ok(())
            } else {
                Err(out)
            }
        });
    }
    // A replicated topic's followers copy every record although an
    // anonymous follower fetch is refused now.
    cluster.wait_for_detail("CreateTopics guarded with RF 3", |c| {
        match create_topic(&c.bootstrap(), "guarded", 1, 3, &[]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    for i in 0..5 {
        cluster.wait_for_detail(&format!("record {i} acknowledged by every replica"), |c| {
            let leader = c.wait_for_leader("guarded", 0);
            match raw_produce(
                c.node(leader).kafka,
                "guarded",
                0,
                &format!("r{i}"),
                -1,
                5000,
            ) {
                RawAnswer::ErrorCode(0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
    cluster.wait_for_detail("every replica holds the same log", |c| {
        let logs: Vec<Vec<u8>> = [1, 2, 3]
            .iter()
            .map(|&id| log_bytes(&c.data_dir(id), "guarded", 0))
            .collect();
        if logs[0].is_empty() || logs.iter().any(|l| *l != logs[0]) {
            Err(format!(
                "log sizes {:?}",
                logs.iter().map(Vec::len).collect::<Vec<_>>()
            ))
        } else {
            Ok(())
        }
    });
    let isr = cluster.wait_for_isr("guarded", 0, 3);
    assert_eq!(isr.isr.len(), 3, "{isr:?}");
    let leader = cluster.wait_for_leader("guarded", 0);
    let follower = [1, 2, 3]
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(follower as i32))
        .with_max_wait_ms(0)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("guarded")))
                .with_partitions(vec![FetchPartition::default()]),
        ]);
    let answer: FetchResponse =
        raw_call(cluster.node(leader).kafka, ApiKey::Fetch, 12, &fetch, 0).expect("an answer");
    let code = answer.responses[0].partitions[0].error_code;
    assert_eq!(
        code, TOPIC_AUTHORIZATION_FAILED,
        "an anonymous follower fetch: {answer:?}"
    );
}
