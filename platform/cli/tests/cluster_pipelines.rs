//! Pipelines in a cluster are refused, clearly, rather than half run: their
//! tasks do not yet follow their source partitions' leaders (see "Not yet"
//! in docs/replication.md), and a task writing on a broker that does not
//! lead its sink partition would have nowhere safe to write.

mod common;

use std::process::Command;

use common::cluster::Cluster;
use common::free_port;

const MANIFEST: &str = "apiVersion: fjord.dev/v1
kind: Pipeline
metadata:
  name: copy
spec:
  source:
    topic: in
  sink:
    topic: out
";

#[test]
fn a_cluster_refuses_pipeline_deployments_with_a_reason() {
    let cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(format!("http://{}/api/v1/pipelines", cluster.node(1).admin))
        .send(MANIFEST)
        .expect("the admin API answers");
    assert_eq!(response.status().as_u16(), 409);
    let body = response.body_mut().read_to_string().unwrap_or_default();
    assert!(body.contains("do not run in a cluster yet"), "{body}");

    // And at start: --pipelines with a quorum stops before anything opens.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("copy.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", "off", "--node-id", "1"])
        .args(["--controller-voters", "1@127.0.0.1:1"])
        .arg("--pipelines")
        .arg(&manifest)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pipelines do not run in a cluster yet"),
        "{stderr}"
    );
}
