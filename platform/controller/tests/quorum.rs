//! Three controllers on 127.0.0.1 with real sockets and real data
//! directories: election, forwarding, failover, restart, snapshot install,
//! broker liveness, and controller clients (brokers that are not voters).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fjord_controller::{
    ClientConfig, ClusterMetadata, Command, CommandError, Controller, ControllerClient,
    ControllerConfig, ControllerError, NO_LEADER, NodeId, QuorumHandle, Voters,
};
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

struct Cluster {
    dirs: Vec<TempDir>,
    addrs: Vec<SocketAddr>,
    voters: Voters,
    snapshot_every: u64,
    session_timeout: Duration,
    nodes: Vec<Option<Controller>>,
}

impl Cluster {
    async fn start(snapshot_every: u64, session_timeout: Duration) -> Cluster {
        init_tracing();
        // Reserve three ephemeral ports, then release them for the nodes.
        let listeners: Vec<std::net::TcpListener> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        drop(listeners);
        let voters = Voters::parse(
            &addrs
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}@{a}", i + 1))
                .collect::<Vec<_>>()
                .join(","),
        )
        .unwrap();
        let mut cluster = Cluster {
            dirs: (0..3).map(|_| tempfile::tempdir().unwrap()).collect(),
            addrs,
            voters,
            snapshot_every,
            session_timeout,
            nodes: vec![None, None, None],
        };
        for id in 1..=3 {
            cluster.start_node(id).await;
        }
        cluster
    }

    fn config(&self, id: NodeId, dir: &Path) -> ControllerConfig {
        let i = id as usize - 1;
        let mut c = ControllerConfig::new(id, self.voters.clone(), self.addrs[i], dir.into());
        c.heartbeat_interval = Duration::from_millis(50);
        c.election_timeout_min = Duration::from_millis(300);
        c.election_timeout_max = Duration::from_millis(600);
        c.session_timeout = self.session_timeout;
        c.snapshot_every = self.snapshot_every;
        c.rpc_timeout = Duration::from_secs(1);
        c.propose_timeout = Duration::from_secs(5);
        c
    }

    async fn start_node(&mut self, id: NodeId) {
        let i = id as usize - 1;
        let config = self.config(id, self.dirs[i].path());
        self.nodes[i] = Some(Controller::start(config).await.unwrap());
    }

    async fn stop_node(&mut self, id: NodeId) {
        let node = self.nodes[id as usize - 1].take().unwrap();
        node.shutdown().await.unwrap();
    }

    fn node(&self, id: NodeId) -> &Controller {
        self.nodes[id as usize - 1].as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &Controller> {
        self.nodes.iter().flatten()
    }

    /// Wait until every running node agrees on one leader, which is running.
    async fn leader(&self, within: Duration) -> NodeId {
        let deadline = Instant::now() + within;
        loop {
            let leaders: Vec<Option<NodeId>> = self.running().map(|n| n.leader()).collect();
            if let Some(Some(l)) = leaders.first()
                && leaders.iter().all(|x| *x == Some(*l))
                && self.running().any(|n| n.node_id() == *l && n.is_leader())
            {
                return *l;
            }
            assert!(Instant::now() < deadline, "no agreed leader: {leaders:?}");
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until every running node has applied at least `offset`.
    async fn applied_everywhere(&self, offset: u64) -> Vec<Arc<ClusterMetadata>> {
        let mut out = Vec::new();
        for node in self.running() {
            out.push(wait_applied(node, offset, Duration::from_secs(10)).await);
        }
        out
    }

    /// A controller client of this quorum; `via` limits the voters it
    /// knows (all when empty).
    fn client(&self, via: &[NodeId]) -> ControllerClient {
        let voters = self
            .voters
            .iter()
            .filter(|(id, _)| via.is_empty() || via.contains(id))
            .map(|(id, addr)| format!("{id}@{addr}"))
            .collect::<Vec<_>>()
            .join(",");
        let config = ClientConfig {
            rpc_timeout: Duration::from_secs(2),
            propose_timeout: Duration::from_secs(5),
            fetch_max_wait: Duration::from_millis(200),
            retry_pause: Duration::from_millis(50),
            ..ClientConfig::default()
        };
        ControllerClient::connect(Voters::parse(&voters).unwrap(), config).unwrap()
    }

    async fn shutdown(mut self) {
        for id in 1..=3 {
            if self.nodes[id as usize - 1].is_some() {
                self.stop_node(id).await;
            }
        }
    }
}

async fn wait_applied(node: &Controller, offset: u64, within: Duration) -> Arc<ClusterMetadata> {
    let mut rx = node.metadata();
    let r = tokio::time::timeout(within, rx.wait_for(|m| m.offset >= offset)).await;
    match r {
        Ok(Ok(m)) => m.clone(),
        _ => panic!(
            "node {} did not apply offset {offset} (at {})",
            node.node_id(),
            node.metadata().borrow().offset
        ),
    }
}

fn register(id: i32) -> Command {
    Command::RegisterBroker {
        broker_id: id,
        host: "127.0.0.1".into(),
        port: 9092 + id as u16,
        rack: None,
    }
}

fn create_topic(name: &str, partitions: i32, rf: i16) -> Command {
    Command::CreateTopic {
        name: name.into(),
        partitions,
        replication_factor: rf,
        configs: BTreeMap::new(),
    }
}

/// Metadata without the offset, which differs when only Raft entries
/// differ, and without the internal secret, which the active controller
/// proposes on its own at a time of its choosing.
fn content(m: &ClusterMetadata) -> ClusterMetadata {
    ClusterMetadata {
        offset: 0,
        internal_secret: None,
        ..m.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_controller_draws_one_internal_secret_for_all() {
    let mut cluster = Cluster::start(1000, Duration::from_secs(30)).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let mut rx = cluster.node(leader).metadata();
    let drawn = tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|m| m.internal_secret.is_some()),
    )
    .await
    .expect("a secret within 10 s")
    .expect("metadata")
    .clone();
    let secret = drawn.internal_secret.clone().unwrap();
    assert_eq!(secret.expose().len(), 64);
    for m in cluster.applied_everywhere(drawn.offset).await {
        assert_eq!(m.internal_secret.as_ref(), Some(&secret));
    }
    // A new leader keeps it: the secret never changes.
    cluster.stop_node(leader).await;
    let next = cluster.leader(Duration::from_secs(10)).await;
    let applied = cluster.node(next).propose(register(1)).await.unwrap();
    for m in cluster.applied_everywhere(applied.offset).await {
        assert_eq!(m.internal_secret.as_ref(), Some(&secret));
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_proposal_is_applied_on_all_nodes() {
    let cluster = Cluster::start(1000, Duration::from_secs(30)).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    let applied = cluster.node(follower).propose(register(1)).await.unwrap();
    let states = cluster.applied_everywhere(applied.offset).await;
    for m in &states {
        assert_eq!(m.brokers[&1].epoch, applied.offset as i64);
        assert_eq!(content(m), content(&states[0]));
    }

    // A rejected command comes back as a typed error through forwarding.
    let err = cluster
        .node(follower)
        .propose(create_topic("t", 1, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Rejected(CommandError::InvalidReplicationFactor { requested: 2, .. })
        ),
        "{err:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_and_rejoin_from_disk() {
    let mut cluster = Cluster::start(1000, Duration::from_secs(30)).await;
    let old = cluster.leader(Duration::from_secs(5)).await;
    let a = cluster.node(old).propose(register(1)).await.unwrap();
    cluster.applied_everywhere(a.offset).await;

    cluster.stop_node(old).await;
    let started = Instant::now();
    let new = cluster.leader(Duration::from_secs(5)).await;
    assert_ne!(new, old);
    let elected_in = started.elapsed();

    // The survivors keep accepting commands, from either of them.
    let other = (1..=3).find(|id| *id != old && *id != new).unwrap();
    cluster.node(other).propose(register(2)).await.unwrap();
    let b = cluster
        .node(new)
        .propose(create_topic("events", 4, 2))
        .await
        .unwrap();
    let survivors = cluster.applied_everywhere(b.offset).await;

    cluster.start_node(old).await;
    let rejoined = wait_applied(cluster.node(old), b.offset, Duration::from_secs(10)).await;
    assert_eq!(content(&rejoined), content(&survivors[0]));
    assert_eq!(rejoined.topics["events"].partitions.len(), 4);
    eprintln!("new leader elected in {elected_in:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_by_snapshot_install() {
    let mut cluster = Cluster::start(5, Duration::from_secs(30)).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let first = cluster.node(leader).propose(register(1)).await.unwrap();
    cluster.applied_everywhere(first.offset).await;
    let lagging_last = cluster
        .node(lagging)
        .raft_metrics()
        .borrow()
        .last_log_index
        .unwrap();
    cluster.stop_node(lagging).await;

    let mut last = 0;
    for i in 0..30 {
        let r = cluster
            .node(leader)
            .propose(Command::UpsertPipeline {
                name: format!("p{i}"),
                manifest: format!("kind: Pipeline\nstep: {i}"),
            })
            .await
            .unwrap();
        last = r.offset;
    }
    // The leader has snapshotted and purged past what the lagging node has:
    // the log alone can no longer bring it up to date.
    let mut metrics = cluster.node(leader).raft_metrics();
    let purged = tokio::time::timeout(
        Duration::from_secs(5),
        metrics.wait_for(|m| m.purged.is_some_and(|p| p.index > lagging_last + 1)),
    )
    .await
    .expect("leader purged its log")
    .unwrap()
    .purged;
    assert!(purged.is_some());

    cluster.start_node(lagging).await;
    let caught_up = wait_applied(cluster.node(lagging), last, Duration::from_secs(10)).await;
    assert_eq!(caught_up.pipelines.len(), 30);
    assert_eq!(
        content(&caught_up),
        content(&cluster.node(leader).metadata().borrow())
    );
    let snapshot = cluster.node(lagging).raft_metrics().borrow().snapshot;
    assert!(snapshot.is_some(), "the lagging node installed a snapshot");
    assert!(
        cluster.dirs[lagging as usize - 1]
            .path()
            .join("raft-snapshot")
            .exists()
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_all_nodes_keeps_metadata() {
    let mut cluster = Cluster::start(4, Duration::from_secs(30)).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let node = cluster.node(leader);
    node.propose(register(1)).await.unwrap();
    node.propose(register(2)).await.unwrap();
    node.propose(create_topic("a", 3, 2)).await.unwrap();
    let last = node
        .propose(Command::UpsertPipeline {
            name: "logs".into(),
            manifest: "kind: Pipeline".into(),
        })
        .await
        .unwrap();
    let before = cluster.applied_everywhere(last.offset).await;
    let term_before = node.raft_metrics().borrow().current_term;
    for id in 1..=3 {
        cluster.stop_node(id).await;
    }
    for id in 1..=3 {
        cluster.start_node(id).await;
    }
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let after = cluster.applied_everywhere(last.offset).await;
    for m in &after {
        assert_eq!(content(m), content(&before[0]));
    }
    let metrics = cluster.node(leader).raft_metrics().borrow().clone();
    // Terms survive restarts (a restarted leader may keep its own term).
    assert!(
        metrics.current_term >= term_before,
        "term {} after restart, {term_before} before",
        metrics.current_term
    );
    // Not initialized again: the membership is still the one from the first
    // start, at the same log position.
    let membership_log = metrics.membership_config.log_id().unwrap();
    assert!(membership_log.index <= 1, "{membership_log:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_broker_is_fenced_and_a_heartbeat_unfences_it() {
    let session = Duration::from_millis(800);
    let cluster = Cluster::start(1000, session).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let via = cluster.node(follower);

    let e1 = via.propose(register(1)).await.unwrap().offset as i64;
    let e2 = via.propose(register(2)).await.unwrap().offset as i64;
    via.propose(create_topic("t", 2, 2)).await.unwrap();

    // Broker 1 heartbeats (through a follower); broker 2 stays silent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rx = via.metadata();
    loop {
        via.heartbeat(1, e1).await.unwrap();
        let m = rx.borrow_and_update().clone();
        // The follower may not have applied the registrations yet.
        if m.brokers.get(&2).is_some_and(|b| b.fenced) {
            assert!(
                !m.brokers[&1].fenced,
                "the heartbeating broker stays unfenced"
            );
            for p in &m.topics["t"].partitions {
                assert_eq!(p.leader, 1);
                assert_eq!(p.isr, vec![1]);
            }
            break;
        }
        assert!(Instant::now() < deadline, "broker 2 was never fenced");
        sleep(Duration::from_millis(100)).await;
    }

    // Stale epochs and unknown brokers are refused.
    assert!(matches!(
        via.heartbeat(2, e2 - 1).await,
        Err(ControllerError::Rejected(
            CommandError::StaleBrokerEpoch { .. }
        ))
    ));
    assert!(matches!(
        via.heartbeat(9, 1).await,
        Err(ControllerError::Rejected(CommandError::UnknownBroker(9)))
    ));

    // A fresh heartbeat unfences broker 2.
    via.heartbeat(2, e2).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        rx.wait_for(|m| !m.brokers[&2].fenced),
    )
    .await
    .expect("broker 2 unfenced")
    .unwrap();
    let m = via.metadata().borrow().clone();
    for p in &m.topics["t"].partitions {
        assert_ne!(p.leader, NO_LEADER);
    }
    cluster.shutdown().await;
}

/// Waits until `rx` shows a state at `offset` or later.
async fn wait_metadata(
    rx: &mut tokio::sync::watch::Receiver<Arc<ClusterMetadata>>,
    offset: u64,
    what: &str,
) -> Arc<ClusterMetadata> {
    let seen = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|m| m.offset >= offset))
        .await
        .ok()
        .and_then(|r| r.ok().map(|m| m.clone()));
    seen.unwrap_or_else(|| {
        panic!(
            "{what}: offset {offset} not seen (at {})",
            rx.borrow().offset
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_proposes_through_a_follower_and_follows_the_metadata() {
    let cluster = Cluster::start(1000, Duration::from_secs(30)).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();

    // This client knows only the follower: everything it writes is relayed.
    let via_follower = cluster.client(&[follower]);
    let applied = via_follower.propose(register(4)).await.unwrap();
    let states = cluster.applied_everywhere(applied.offset).await;
    assert_eq!(states[0].brokers[&4].epoch, applied.offset as i64);
    let mut rx = via_follower.metadata();
    let seen = wait_metadata(&mut rx, applied.offset, "client via the follower").await;
    assert_eq!(seen.brokers[&4].epoch, applied.offset as i64);

    // Heartbeats reach the active controller through the follower too, and
    // refusals come back typed.
    let epoch = applied.offset as i64;
    via_follower.heartbeat(4, epoch).await.unwrap();
    let err = via_follower.heartbeat(4, epoch - 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Rejected(CommandError::StaleBrokerEpoch { .. })
        ),
        "{err:?}"
    );
    let err = via_follower.heartbeat(9, 1).await.unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Rejected(CommandError::UnknownBroker(9))
        ),
        "{err:?}"
    );
    let err = via_follower
        .propose(create_topic("t", 1, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Rejected(CommandError::InvalidReplicationFactor { requested: 2, .. })
        ),
        "{err:?}"
    );

    // A client that knows every voter learns the leader, and through the
    // common handle sees what the voters applied.
    let client = QuorumHandle::Client(Arc::new(cluster.client(&[])));
    let created = client.propose(register(5)).await.unwrap();
    let topic = client.propose(create_topic("t", 3, 2)).await.unwrap();
    assert!(topic.offset > created.offset);
    let mut rx = client.metadata();
    let seen = wait_metadata(&mut rx, topic.offset, "client of all voters").await;
    let voters = cluster.applied_everywhere(topic.offset).await;
    let at_same_offset = voters.iter().find(|m| m.offset == seen.offset);
    if let Some(m) = at_same_offset {
        assert_eq!(content(m), content(&seen));
    }
    assert_eq!(seen.topics["t"].partitions.len(), 3);
    assert_eq!(client.leader(), Some(leader));

    // Metadata keeps flowing without anything proposed through the client.
    let later = cluster
        .node(leader)
        .propose(Command::UpsertPipeline {
            name: "p".into(),
            manifest: "kind: Pipeline".into(),
        })
        .await
        .unwrap();
    let seen = wait_metadata(&mut rx, later.offset, "a change made elsewhere").await;
    assert!(seen.pipelines.contains_key("p"));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_survives_the_leaders_shutdown() {
    let mut cluster = Cluster::start(1000, Duration::from_secs(30)).await;
    let old = cluster.leader(Duration::from_secs(5)).await;
    let client = cluster.client(&[]);
    let first = client.propose(register(4)).await.unwrap();
    let mut rx = client.metadata();
    wait_metadata(&mut rx, first.offset, "before the shutdown").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.leader() != Some(old) {
        assert!(
            Instant::now() < deadline,
            "client never learned leader {old}"
        );
        sleep(Duration::from_millis(20)).await;
    }

    cluster.stop_node(old).await;
    let started = Instant::now();
    // Proposed while the survivors elect: the client waits for the new
    // leader as a voter would.
    let second = client.propose(register(5)).await.unwrap();
    let took = started.elapsed();
    let new = cluster.leader(Duration::from_secs(5)).await;
    assert_ne!(new, old);
    let seen = wait_metadata(&mut rx, second.offset, "after the shutdown").await;
    assert!(seen.brokers.contains_key(&5));
    client.heartbeat(5, second.offset as i64).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.leader() != Some(new) {
        assert!(
            Instant::now() < deadline,
            "client still names {:?}, not {new}",
            client.leader()
        );
        sleep(Duration::from_millis(20)).await;
    }

    // The old leader comes back as a follower; the client keeps working.
    cluster.start_node(old).await;
    let third = client.propose(register(6)).await.unwrap();
    wait_metadata(&mut rx, third.offset, "after the restart").await;
    eprintln!("proposal across the leader's shutdown took {took:?}");
    client.shutdown().await;
    cluster.shutdown().await;
}
