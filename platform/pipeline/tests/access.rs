//! Pipelines run as a principal: a real broker with an authorizer, a
//! pipeline deployed by a user its ACLs do not allow yet, bindings added
//! while it waits, and real Kafka clients feeding and reading it.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Platform;
use fjord_broker::Principal;
use fjord_pipeline::runtime::access::{PIPELINE_HOST, may_change, may_describe, may_run_as};
use fjord_pipeline::runtime::{Deployment, RunState, deploy_local};

const WAIT: Duration = Duration::from_secs(20);
// Kafka's codes: resource types and operations.
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const ALTER: i8 = 7;
const ALTER_CONFIGS: i8 = 11;

const COPY: &str = r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: copy}
spec:
  source: {topic: in, startFrom: earliest}
  sinks: [{topic: out}]
"#;

async fn deploy_as(platform: &Platform, manifest: &str, deployer: &str) -> i64 {
    deploy_local(
        &platform.broker.local(),
        "copy",
        &Deployment {
            manifest: manifest.to_owned(),
            file: "copy.yaml".into(),
            paused: false,
            deployed_by: Some(deployer.to_owned()),
        },
    )
    .await
    .unwrap()
}

/// Every value of `topic`, with how often it is there.
async fn counted(platform: &Platform, topic: &str, wanted: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in platform.consume(topic, wanted, WAIT).await {
        *counts.entry(r.value.unwrap_or_default()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_waits_for_its_principals_acls_then_delivers_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start_secured(dir.path()).await;
    let values: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    platform.produce("in", &records).await;

    // alice deployed it and may do nothing yet: the topic it would create
    // is the first refusal.
    let revision = deploy_as(&platform, COPY, "User:alice").await;
    let status = platform
        .status_until("copy", WAIT, |s| {
            s.revision == revision && s.state == RunState::Failed
        })
        .await;
    assert!(
        status.errors[0].starts_with("User:alice may not CREATE TOPIC out"),
        "{status:#?}"
    );
    // Each binding moves the refusal on to the next thing she needs.
    platform
        .grant(&[("User:alice", TOPIC, "out", CREATE)])
        .await;
    let status = platform
        .status_until("copy", WAIT, |s| {
            s.errors.iter().any(|e| e.contains("READ TOPIC in"))
        })
        .await;
    assert_eq!(status.state, RunState::Failed);
    assert!(
        status.errors[0].contains(
            "User:alice may not READ TOPIC in: no ACL allows it (e.g. fjord acl create \
             --allow-principal User:alice --operation read --topic in)"
        ),
        "{status:#?}"
    );
    platform
        .grant(&[
            ("User:alice", TOPIC, "in", READ),
            ("User:alice", GROUP, "pipeline.copy", READ),
        ])
        .await;
    platform
        .status_until("copy", WAIT, |s| {
            s.errors.iter().any(|e| e.contains("WRITE TOPIC out"))
        })
        .await;
    assert!(platform.broker.local().topic("out").is_none());
    platform.grant(&[("User:alice", TOPIC, "out", WRITE)]).await;
    // It starts by itself, at its first revision, and delivers each record
    // once.
    let status = platform
        .status_until("copy", WAIT, |s| s.state == RunState::Running)
        .await;
    assert_eq!(status.revision, revision);
    assert!(status.errors.is_empty(), "{status:#?}");
    let out = counted(&platform, "out", values.len() + 1).await;
    assert_eq!(out.len(), values.len(), "{out:?}");
    assert!(out.values().all(|&n| n == 1), "{out:?}");

    // A DENY while it runs stops it before its next batch: nothing more is
    // written, and its progress so far is committed.
    platform.deny(&[("User:alice", TOPIC, "out", WRITE)]).await;
    let status = platform
        .status_until("copy", WAIT, |s| s.state == RunState::Failed)
        .await;
    assert!(
        status.errors[0].starts_with("User:alice may not WRITE TOPIC out"),
        "{status:#?}"
    );
    platform.produce("in", &[(None, "after the deny")]).await;
    let out = counted(&platform, "out", values.len() + 1).await;
    assert_eq!(out.len(), values.len(), "{out:?}");
    assert_eq!(
        platform.broker.local().committed("pipeline.copy", "in", 0),
        Some(values.len() as i64)
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployers_need_alter_configs_on_the_group_or_alter_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start_secured(dir.path()).await;
    let local = platform.broker.local();
    let as_user = |name: &str| local.access(Principal::User(name.to_owned()), PIPELINE_HOST);

    let refused = may_change(&as_user("bob"), "copy").unwrap_err();
    assert_eq!(
        refused.to_string(),
        "User:bob may not ALTER_CONFIGS GROUP pipeline.copy (nor ALTER on the CLUSTER): no ACL \
         allows it (e.g. fjord acl create --allow-principal User:bob --operation alter_configs \
         --group pipeline.copy)"
    );
    assert!(may_describe(&as_user("bob"), "copy").is_err());
    platform
        .grant(&[("User:bob", GROUP, "pipeline.copy", ALTER_CONFIGS)])
        .await;
    let bob = as_user("bob");
    assert!(may_change(&bob, "copy").is_ok());
    assert!(
        may_describe(&bob, "copy").is_ok(),
        "implied by ALTER_CONFIGS"
    );
    assert!(may_change(&bob, "other").is_err());
    // bob may deploy what runs as bob, not what runs as alice.
    assert!(may_run_as(&bob, &Principal::User("bob".into())).is_ok());
    let refused = may_run_as(&bob, &Principal::User("alice".into())).unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("User:bob may not ALTER CLUSTER kafka-cluster"),
        "{refused}"
    );
    // ALTER on the cluster: every pipeline, any principal.
    platform
        .grant(&[("User:ops", CLUSTER, "kafka-cluster", ALTER)])
        .await;
    let ops = as_user("ops");
    assert!(may_change(&ops, "anything").is_ok());
    assert!(may_run_as(&ops, &Principal::User("alice".into())).is_ok());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_names_the_principal_it_runs_as_and_the_operators_pipelines_pass() {
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start_secured(dir.path()).await;
    platform.produce("in", &[(None, "one")]).await;
    platform
        .grant(&[
            ("User:etl", TOPIC, "in", READ),
            ("User:etl", GROUP, "pipeline.copy", READ),
            ("User:etl", TOPIC, "out", CREATE),
            ("User:etl", TOPIC, "out", WRITE),
        ])
        .await;
    // Deployed by alice, who has no binding: it runs as etl, who has them.
    let manifest = COPY.replace("{name: copy}", "{name: copy, principal: 'User:etl'}");
    deploy_as(&platform, &manifest, "User:alice").await;
    platform
        .status_until("copy", WAIT, |s| s.state == RunState::Running)
        .await;
    assert_eq!(counted(&platform, "out", 1).await.len(), 1);

    // The operator's deployment (no deployer) runs as the platform.
    let local = platform.broker.local();
    let revision = fjord_pipeline::runtime::deploy_local(
        &local,
        "copy",
        &Deployment {
            manifest: COPY.replace("out}", "out2}"),
            file: "copy.yaml".into(),
            paused: false,
            deployed_by: None,
        },
    )
    .await
    .unwrap();
    platform
        .status_until("copy", WAIT, |s| {
            s.revision == revision && s.state == RunState::Running
        })
        .await;
    platform.produce("in", &[(None, "two")]).await;
    let out2 = counted(&platform, "out2", 2).await;
    assert_eq!(out2.keys().collect::<Vec<_>>(), ["two"], "{out2:?}");
    platform.stop().await;
}
