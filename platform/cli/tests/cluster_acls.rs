//! ACLs in a cluster of three `fjord server` processes: a binding created
//! through one broker (through the controller quorum) applies on every
//! broker, and replication keeps working under an authorizer that denies
//! anonymous clients CLUSTER_ACTION: replica fetchers log in as the
//! platform's internal principal. A pipeline deployed by a SCRAM user runs
//! as that user on every broker that leads one of its source partitions:
//! each broker's runtime is refused a write the bindings do not allow, and
//! every record flows once a binding allows it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, ClusterConfig};
use common::kafka::{
    RawAnswer, consume_all, create_topic, log_bytes, produce_to, raw_call, raw_produce,
};
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

    a_users_pipeline_passes_the_acls_of_every_broker(&cluster);
}

/// Six source partitions led by all three brokers, a pipeline deployed by
/// `User:bob` through node 2's admin API: refused its writes on every
/// broker until a binding allows them, then every record copied once.
fn a_users_pipeline_passes_the_acls_of_every_broker(cluster: &Cluster) {
    let first = cluster.node(1).kafka.to_string();
    let run = |args: &[&str]| {
        let (ok, out) = fjord(&first, args);
        assert!(ok, "fjord {}: {out}", args.join(" "));
    };
    run(&["user", "create", "bob", "--password", "bob-pw-1"]);
    for topic in ["pin", "pout"] {
        cluster.wait_for_detail(&format!("CreateTopics {topic}"), |c| {
            match create_topic(&c.bootstrap(), topic, 6, 3, &[]) {
                Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
                other => other,
            }
        });
    }
    let leaders: BTreeSet<u64> = (0..6).map(|p| cluster.wait_for_leader("pin", p)).collect();
    assert_eq!(leaders, BTreeSet::from([1, 2, 3]), "pin's leaders");
    // Bob reads pin and commits as the pipeline's group, and may deploy
    // it; this test's anonymous clients write pin and read pout. Both
    // topics have bindings now, so no one else may use them
    // (allow.everyone.if.no.acl.found opens only resources without any):
    // bob may not write pout yet.
    for (principal, operation, kind, name) in [
        ("User:bob", "read", "--topic", "pin"),
        ("User:bob", "read", "--group", "pipeline.copy"),
        ("User:bob", "alter_configs", "--group", "pipeline.copy"),
        ("User:ANONYMOUS", "write", "--topic", "pin"),
        ("User:ANONYMOUS", "read", "--topic", "pout"),
    ] {
        run(&[
            "acl",
            "create",
            "--allow-principal",
            principal,
            "--operation",
            operation,
            kind,
            name,
        ]);
    }
    let values: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
    for (partition, chunk) in values.chunks(10).enumerate() {
        let report = produce_to(&cluster.bootstrap(), "pin", partition as i32, chunk);
        assert_eq!(
            report.acked.len(),
            chunk.len(),
            "pin-{partition}: {report:?}"
        );
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifest = dir.path().join("copy.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {name: copy}\nspec:\n  \
         source: {topic: pin}\n  sinks: [{topic: pout}]\n",
    )
    .expect("the manifest written");
    let admin = cluster.node(2).admin.clone();
    let as_bob = |args: &[&str]| -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(args)
            .args(["--sasl-user", "bob", "--sasl-password", "bob-pw-1"])
            .env("FJORD_BOOTSTRAP_SERVER", &first)
            .env("FJORD_ADMIN", &admin)
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
    };
    let file = manifest.display().to_string();
    cluster.wait_for_detail("bob deploys copy through node 2", |_| {
        let (_, out) = as_bob(&["pipeline", "deploy", &file]);
        if out.contains("deployed") || out.contains("may not") {
            Ok(())
        } else {
            Err(out)
        }
    });
    let status = cluster.wait_for_detail("copy refused its writes to pout", |_| {
        let (_, out) = as_bob(&["pipeline", "status", "copy"]);
        if out.contains("User:bob may not") && out.contains("pout") {
            Ok(out)
        } else {
            Err(out)
        }
    });
    assert!(status.contains("runs as: User:bob"), "{status}");
    // However long it runs, nothing reaches pout: no broker lets the task
    // of a partition it leads write.
    std::thread::sleep(Duration::from_secs(3));
    let copied = |c: &Cluster| -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for partition in 0..6 {
            for (_, value) in consume_all(&c.bootstrap(), "pout", partition) {
                *counts.entry(value).or_insert(0) += 1;
            }
        }
        counts
    };
    assert_eq!(copied(cluster), BTreeMap::new(), "{status}");

    run(&[
        "acl",
        "create",
        "--allow-principal",
        "User:bob",
        "--operation",
        "write",
        "--topic",
        "pout",
    ]);
    let granted = Instant::now();
    let counts = cluster.wait_for_detail("every record of pin copied to pout", |c| {
        let counts = copied(c);
        if counts.len() == values.len() {
            Ok(counts)
        } else {
            Err(format!("{} of {} copied", counts.len(), values.len()))
        }
    });
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    eprintln!(
        "copy: all {} records from the partitions of three leaders copied {:?} after the grant",
        values.len(),
        granted.elapsed()
    );
}
