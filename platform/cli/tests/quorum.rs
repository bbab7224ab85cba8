//! Three `fjord server` processes in combined mode (each also a controller
//! voter): they elect an active controller and register their brokers;
//! killing the active controller's process with SIGKILL moves the quorum to
//! another node and fences the dead broker; restarting it from its data
//! directory brings it back. A node that is not a voter joins as a broker
//! only. Observed through each node's admin API (`/api/v1/cluster/quorum`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, free_port, free_ports};
use serde_json::Value;

const SESSION_MS: u64 = 2000;

struct Node {
    id: u64,
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Server>,
}

fn start(node: &Node, voters: &str) -> Server {
    let config = node.dir.path().join("fjord.yaml");
    std::fs::write(
        &config,
        format!("broker.session.timeout.ms: {SESSION_MS}\n"),
    )
    .unwrap();
    let args: Vec<String> = [
        "--config",
        &config.display().to_string(),
        "--node-id",
        &node.id.to_string(),
        "--controller-voters",
        voters,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Server::start_with(&node.dir.path().join("data"), node.port, &args)
}

fn quorum(server: &Server) -> Option<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{}/api/v1/cluster/quorum", server.admin))
        .call()
        .ok()?;
    serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()
}

/// Waits until every running node reports what `check` wants.
fn wait_for(nodes: &[Node], what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let views: Vec<Value> = nodes
            .iter()
            .filter_map(|n| n.server.as_ref())
            .filter_map(quorum)
            .collect();
        let running = nodes.iter().filter(|n| n.server.is_some()).count();
        if views.len() == running && check(&views) {
            return views;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {views:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn leader(views: &[Value]) -> Option<u64> {
    let first = views.first()?["leader"].as_u64()?;
    views
        .iter()
        .all(|v| v["leader"].as_u64() == Some(first))
        .then_some(first)
}

fn fenced(view: &Value, id: u64) -> Option<bool> {
    view["brokers"]
        .as_array()?
        .iter()
        .find(|b| b["id"].as_u64() == Some(id))?["fenced"]
        .as_bool()
}

fn all_live(views: &[Value], ids: &[u64]) -> bool {
    views
        .iter()
        .all(|v| ids.iter().all(|id| fenced(v, *id) == Some(false)))
}

#[test]
fn active_controller_killed_quorum_moves_and_fences_its_broker() {
    // Taken together: one at a time, the kernel may hand out a port twice.
    let mut ports = free_ports(6).into_iter();
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| Node {
            id,
            dir: tempfile::tempdir().unwrap(),
            port: ports.next().unwrap(),
            server: None,
        })
        .collect();
    let voters = nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, ports.next().unwrap()))
        .collect::<Vec<_>>()
        .join(",");
    for node in &mut nodes {
        node.server = Some(start(node, &voters));
    }

    let views = wait_for(&nodes, "a leader and three live brokers", |v| {
        leader(v).is_some() && all_live(v, &[1, 2, 3])
    });
    let first = leader(&views).unwrap();
    assert_eq!(views[0]["voters"].as_array().unwrap().len(), 3);

    // SIGKILL the active controller's process: no shutdown, no goodbye.
    let victim = nodes.iter().position(|n| n.id == first).unwrap();
    nodes[victim].server.take().unwrap().kill();
    let survivors: Vec<u64> = nodes
        .iter()
        .filter(|n| n.id != first)
        .map(|n| n.id)
        .collect();
    let views = wait_for(&nodes, "a new leader that fences the dead broker", |v| {
        leader(v).is_some_and(|l| l != first)
            && v.iter().all(|view| fenced(view, first) == Some(true))
            && all_live(v, &survivors)
    });
    let second = leader(&views).unwrap();

    // Back from its data directory: it rejoins, its broker is unfenced,
    // and it agrees with the others on the leader.
    let server = start(&nodes[victim], &voters);
    nodes[victim].server = Some(server);
    let views = wait_for(&nodes, "the restarted node back and unfenced", |v| {
        leader(v).is_some() && all_live(v, &[1, 2, 3])
    });
    assert!(leader(&views).is_some(), "{second} then {views:#?}");
}

/// A node whose id is not among the voters is a broker only: it starts
/// before any voter runs (no refusal, no leader yet), and once the voters
/// form a quorum it follows it, registers and stays unfenced.
#[test]
fn a_node_that_is_not_a_voter_joins_as_a_broker() {
    let mut ports = free_ports(7).into_iter();
    let mut nodes: Vec<Node> = [1, 2, 3, 7]
        .into_iter()
        .map(|id| Node {
            id,
            dir: tempfile::tempdir().unwrap(),
            port: ports.next().unwrap(),
            server: None,
        })
        .collect();
    let voters = nodes[..3]
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, ports.next().unwrap()))
        .collect::<Vec<_>>()
        .join(",");
    nodes[3].server = Some(start(&nodes[3], &voters));
    let alone = wait_for(&nodes, "the broker's view without a quorum", |v| {
        v[0]["role"] == "broker"
    });
    assert_eq!(alone[0]["leader"], Value::Null, "{alone:#?}");
    assert_eq!(alone[0]["metadata_offset"], 0, "{alone:#?}");
    assert_eq!(alone[0]["voters"].as_array().map(Vec::len), Some(3));

    for node in &mut nodes[..3] {
        node.server = Some(start(node, &voters));
    }
    let views = wait_for(&nodes, "a leader and four live brokers", |v| {
        leader(v).is_some() && all_live(v, &[1, 2, 3, 7])
    });
    let broker = views.iter().find(|v| v["node_id"] == 7).unwrap();
    assert_eq!(broker["role"], "broker", "{broker}");
    assert!(leader(&views).is_some_and(|l| l <= 3), "{views:#?}");
    assert!(broker["metadata_offset"].as_u64().is_some_and(|o| o > 0));
}

#[test]
fn an_unparsable_voter_list_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", "off", "--node-id", "1"])
        .args(["--controller-voters", "1@nowhere"])
        .arg("--data-dir")
        .arg(Path::new(dir.path()).join("b"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("controller.quorum.voters"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
