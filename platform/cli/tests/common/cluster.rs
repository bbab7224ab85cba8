//! A cluster of real `fjord server` processes, as Kafka's KRaft runs small
//! clusters: the first three nodes (or fewer, see
//! [`ClusterConfig::voters`]) in combined mode, each a broker and a
//! controller voter, and any further node a broker only, following the
//! voters through a controller client. Every link between them is behind a
//! [`FaultProxy`], so tests can kill, pause, restart or partition any node
//! and watch the rest react.
//!
//! Node ids are 1..=n and a node's broker id is its node id; every method
//! takes node ids, never indexes.
//!
//! The wiring, per node `i`:
//! - controller: a voter listens on its real controller port; in the
//!   `--controller-voters` it is given, its own entry is that real address
//!   and every other voter `j` appears as the address of a proxy `i→j` to
//!   `j`'s real controller port. The controller dials peers at the
//!   addresses of its own voter list, so each directed link has its own
//!   proxy and a node can be cut off in both directions. A non-voter gets
//!   the same list with every voter behind a proxy of its own, and no
//!   controller listener.
//! - Kafka: it listens on its real port and advertises (`advertised.host`,
//!   `advertised.port`) a proxy in front of it, so clients and other
//!   brokers go through the proxy while tests can still reach the real port.
//!
//! Every child is killed when the `Cluster` drops, also when a test
//! panics; on a panic the tail of each node's log is printed first, and
//! with `FJORD_CLUSTER_LOGS=<dir>` the whole logs are copied there
//! (`FJORD_TEST_LOG` sets the nodes' `--log` filter, default `warn`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;
use super::proxy::FaultProxy;

/// Session timeout the harness gives brokers unless told otherwise: short,
/// so fencing shows within a test's patience.
pub const DEFAULT_SESSION_MS: u64 = 2000;

/// How long `wait_for` polls before giving up.
pub const WAIT: Duration = Duration::from_secs(60);

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: usize,
    /// How many of the nodes (the lowest ids) are controller voters; the
    /// others are brokers only. Default: 3, or all nodes if fewer.
    pub voters: usize,
    /// `broker.session.timeout.ms` of every node.
    pub session_ms: u64,
    /// Extra lines for every node's fjord.yaml.
    pub yaml: Vec<String>,
}

impl ClusterConfig {
    pub fn new(nodes: usize) -> ClusterConfig {
        ClusterConfig {
            nodes,
            voters: nodes.min(3),
            session_ms: DEFAULT_SESSION_MS,
            yaml: Vec::new(),
        }
    }

    pub fn yaml(mut self, line: &str) -> ClusterConfig {
        self.yaml.push(line.to_owned());
        self
    }
}

/// Where a node's process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// No process (killed, terminated, or not started).
    Down,
    Running,
    /// SIGSTOPped: alive, holding its sockets, answering nothing.
    Stopped,
}

/// One node: its directory, ports and process.
pub struct Node {
    pub id: u64,
    dir: tempfile::TempDir,
    /// Its real Kafka listener.
    pub kafka: SocketAddr,
    /// Its admin HTTP API (`host:port`).
    pub admin: String,
    /// Its real controller listener; `None` on a node that is not a voter.
    pub controller: Option<SocketAddr>,
    /// The proxy it advertises to clients and brokers.
    kafka_proxy: FaultProxy,
    /// The `--controller-voters` this node is given (peers via proxies).
    voters: String,
    server: Option<Server>,
    state: NodeState,
}

impl Node {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("fjord.yaml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    /// The address it advertises: its Kafka proxy.
    pub fn advertised(&self) -> SocketAddr {
        self.kafka_proxy.addr()
    }

    pub fn state(&self) -> NodeState {
        self.state
    }

    /// True when its process ended though the harness did not end it (a
    /// crash, or a port it could not bind). Read from /proc: the child is
    /// a zombie until reaped, and reaping needs `&mut`.
    pub fn crashed(&self) -> bool {
        let Some(server) = &self.server else {
            return false;
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()))
            .unwrap_or_default();
        // The state is the field after the parenthesised command name.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    }

    fn start(&mut self) {
        assert!(self.server.is_none(), "node {} already runs", self.id);
        let mut args: Vec<String> = vec![
            "--config".into(),
            self.config_path().display().to_string(),
            "--node-id".into(),
            self.id.to_string(),
            "--controller-voters".into(),
            self.voters.clone(),
        ];
        if let Some(controller) = self.controller {
            args.extend(["--controller-listen".into(), controller.to_string()]);
        }
        let log = self.log_path();
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "---- harness: starting node {} ----", self.id)
            });
        self.server = Some(Server::spawn(
            &self.data_dir(),
            self.kafka.port(),
            &self.admin,
            &args,
            Some(&log),
        ));
        self.state = NodeState::Running;
    }
}

/// N nodes: the first `config.voters` controller voters, the rest brokers
/// only.
pub struct Cluster {
    nodes: Vec<Node>,
    /// `(from, to)` → the proxy `from` dials to reach voter `to`'s
    /// controller.
    links: BTreeMap<(u64, u64), FaultProxy>,
    /// Nodes currently cut off.
    cut: Vec<u64>,
    config: ClusterConfig,
}

impl Cluster {
    /// `n` nodes with the default settings.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(ClusterConfig::new(n))
    }

    pub fn start_with(config: ClusterConfig) -> Cluster {
        assert!(config.nodes >= 1, "a cluster needs a node");
        assert!(
            (1..=config.nodes).contains(&config.voters),
            "between 1 and {} voters",
            config.nodes
        );
        let ids: Vec<u64> = (1..=config.nodes as u64).collect();
        // Outside the range port-0 binds (the proxies) draw from: see
        // `free_port`.
        let next = || SocketAddr::from(([127, 0, 0, 1], super::free_port()));
        let voter_ids: Vec<u64> = (1..=config.voters as u64).collect();
        let controllers: BTreeMap<u64, SocketAddr> =
            voter_ids.iter().map(|&id| (id, next())).collect();
        let mut links = BTreeMap::new();
        for &from in &ids {
            for &to in &voter_ids {
                if from != to {
                    links.insert((from, to), FaultProxy::start(controllers[&to]));
                }
            }
        }
        let mut nodes = Vec::new();
        for &id in &ids {
            let voters = voter_ids
                .iter()
                .map(|&peer| {
                    let addr = if peer == id {
                        controllers[&id]
                    } else {
                        links[&(id, peer)].addr()
                    };
                    format!("{peer}@{addr}")
                })
                .collect::<Vec<_>>()
                .join(",");
            let kafka = next();
            let kafka_proxy = FaultProxy::start(kafka);
            let node = Node {
                id,
                dir: tempfile::tempdir().expect("a node directory"),
                kafka,
                admin: next().to_string(),
                controller: controllers.get(&id).copied(),
                kafka_proxy,
                voters,
                server: None,
                state: NodeState::Down,
            };
            let mut yaml = format!(
                "broker.session.timeout.ms: {}\nadvertised.host: 127.0.0.1\nadvertised.port: {}\n",
                config.session_ms,
                node.advertised().port()
            );
            for line in &config.yaml {
                yaml.push_str(line);
                yaml.push('\n');
            }
            std::fs::write(node.config_path(), yaml).expect("write fjord.yaml");
            nodes.push(node);
        }
        let mut cluster = Cluster {
            nodes,
            links,
            cut: Vec::new(),
            config,
        };
        for node in &mut cluster.nodes {
            node.start();
        }
        cluster
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: u64) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Running (not stopped, not down) and not cut off.
    pub fn reachable(&self, id: u64) -> bool {
        self.node(id).state == NodeState::Running && !self.cut.contains(&id)
    }

    /// SIGKILL: no shutdown, no goodbye. Reaps the process.
    pub fn kill(&mut self, id: u64) {
        let node = self.node_mut(id);
        let server = node
            .server
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        server.kill();
        node.state = NodeState::Down;
    }

    /// SIGTERM and wait for a clean exit (panics if it takes over 30 s or
    /// the exit status is not 0).
    pub fn terminate(&mut self, id: u64) {
        let node = self.node_mut(id);
        let server = node
            .server
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        if node.state == NodeState::Stopped {
            server.signal(libc::SIGCONT);
        }
        node.state = NodeState::Down;
        assert!(
            server.terminate(Duration::from_secs(30)),
            "node {id} did not shut down cleanly on SIGTERM within 30 s"
        );
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn stop(&mut self, id: u64) {
        let node = self.node_mut(id);
        assert_eq!(node.state, NodeState::Running, "node {id}");
        node.server.as_ref().unwrap().signal(libc::SIGSTOP);
        node.state = NodeState::Stopped;
    }

    /// SIGCONT after `stop`.
    pub fn cont(&mut self, id: u64) {
        let node = self.node_mut(id);
        assert_eq!(node.state, NodeState::Stopped, "node {id}");
        node.server.as_ref().unwrap().signal(libc::SIGCONT);
        node.state = NodeState::Running;
    }

    /// Starts a node again from its directory, on the same ports (killed
    /// first if it still runs).
    pub fn restart(&mut self, id: u64) {
        if self.node(id).server.is_some() {
            self.kill(id);
        }
        self.node_mut(id).start();
    }

    /// Cuts every controller link into and out of `id`, and its Kafka
    /// proxy. Its own outgoing Kafka connections (to other brokers' proxies)
    /// stay up: one proxy per broker cannot tell who dials it.
    pub fn cut(&mut self, id: u64) {
        for ((from, to), proxy) in &self.links {
            if *from == id || *to == id {
                proxy.cut();
            }
        }
        self.node(id).kafka_proxy.cut();
        if !self.cut.contains(&id) {
            self.cut.push(id);
        }
    }

    /// Undoes `cut(id)`; links to nodes that are themselves cut stay cut.
    pub fn heal(&mut self, id: u64) {
        self.cut.retain(|&c| c != id);
        for ((from, to), proxy) in &self.links {
            let other = if *from == id {
                *to
            } else if *to == id {
                *from
            } else {
                continue;
            };
            if !self.cut.contains(&other) {
                proxy.heal();
            }
        }
        self.node(id).kafka_proxy.heal();
    }

    /// `host:port,…` of the advertised (proxy) addresses of the reachable
    /// nodes: what a client should bootstrap from.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| self.reachable(n.id))
            .map(|n| n.advertised().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node's `/api/v1/cluster/quorum` view; `None` when it does not
    /// run (a stopped node is not asked: it would only time out) or does not
    /// answer.
    pub fn quorum(&self, id: u64) -> Option<Value> {
        let node = self.node(id);
        if node.state != NodeState::Running {
            return None;
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let mut response = agent
            .get(format!("http://{}/api/v1/cluster/quorum", node.admin))
            .call()
            .ok()?;
        serde_json::from_str(&response.body_mut().read_to_string().ok()?).ok()
    }

    /// Polls `check` until it returns `Some`, for up to 60 s; then panics
    /// naming `what`, with every node's state and quorum view.
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Cluster) -> Option<T>) -> T {
        self.wait_for_detail(what, |c| check(c).ok_or_else(String::new))
    }

    /// As `wait_for`; the last `Err` (what was seen instead) goes in the
    /// panic message.
    pub fn wait_for_detail<T>(
        &self,
        what: &str,
        check: impl FnMut(&Cluster) -> Result<T, String>,
    ) -> T {
        self.wait_for_explained(what, check, |_| String::new())
    }

    /// As `wait_for_detail`; on timeout, `explain` adds what only then is
    /// worth asking the nodes (e.g. every broker's view of a partition).
    pub fn wait_for_explained<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&Cluster) -> Result<T, String>,
        explain: impl Fn(&Cluster) -> String,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(node) = self.nodes.iter().find(|n| n.crashed()) {
                panic!(
                    "node {} exited on its own while waiting for {what} (its log is below)\n{}",
                    node.id,
                    self.describe()
                );
            }
            let last = match check(self) {
                Ok(found) => return found,
                Err(seen) => seen,
            };
            if start.elapsed() > WAIT {
                panic!(
                    "timed out after {:?} waiting for {what}\nlast seen: {last}\n{}{}",
                    start.elapsed(),
                    explain(self),
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The active controller as the reachable nodes see it: every one of
    /// them names the same leader, and that leader is one of them. `None`
    /// while they disagree or have none (a cut-off node may still believe it
    /// leads; it is not asked).
    pub fn active_controller(&self) -> Option<u64> {
        let views = self.reachable_views()?;
        let leader = views.first()?.1["leader"].as_u64()?;
        let agreed = views
            .iter()
            .all(|(_, v)| v["leader"].as_u64() == Some(leader));
        (agreed && views.iter().any(|(id, _)| *id == leader)).then_some(leader)
    }

    /// Ids of the brokers registered and unfenced in the active
    /// controller's metadata, ascending; empty while there is no active
    /// controller.
    pub fn registered_unfenced_brokers(&self) -> Vec<u64> {
        self.brokers_where(|fenced| !fenced)
    }

    /// Ids of the brokers registered and fenced, as for
    /// `registered_unfenced_brokers`.
    pub fn fenced_brokers(&self) -> Vec<u64> {
        self.brokers_where(|fenced| fenced)
    }

    fn brokers_where(&self, wanted: impl Fn(bool) -> bool) -> Vec<u64> {
        let Some(view) = self.active_controller().and_then(|id| self.quorum(id)) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = view["brokers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["fenced"].as_bool().is_some_and(&wanted))
            .filter_map(|b| b["id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Waits for an active controller whose metadata shows exactly
    /// `unfenced` as unfenced brokers; returns the controller's id.
    pub fn wait_for_brokers(&self, unfenced: &[u64]) -> u64 {
        let mut wanted = unfenced.to_vec();
        wanted.sort_unstable();
        self.wait_for(
            &format!("an active controller with unfenced brokers {wanted:?}"),
            |c| {
                let leader = c.active_controller()?;
                (c.registered_unfenced_brokers() == wanted).then_some(leader)
            },
        )
    }

    /// Views of all reachable nodes; `None` if any of them does not answer.
    fn reachable_views(&self) -> Option<Vec<(u64, Value)>> {
        self.nodes
            .iter()
            .filter(|n| self.reachable(n.id))
            .map(|n| Some((n.id, self.quorum(n.id)?)))
            .collect()
    }

    /// Every node's state and quorum view, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let cut = if self.cut.contains(&node.id) {
                ", cut"
            } else {
                ""
            };
            let crashed = if node.crashed() { ", EXITED" } else { "" };
            let view = self
                .quorum(node.id)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".to_owned());
            out.push_str(&format!(
                "node {} ({:?}{cut}{crashed}, kafka {} via {}): {view}\n",
                node.id,
                node.state,
                node.kafka,
                node.advertised()
            ));
        }
        out
    }

    /// Node `id`'s data directory (`log.dir`).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The node directories go with the cluster: keep whole logs
            // where asked to.
            if let Some(keep) = std::env::var_os("FJORD_CLUSTER_LOGS") {
                let keep = PathBuf::from(keep);
                let _ = std::fs::create_dir_all(&keep);
                for node in &self.nodes {
                    let to = keep.join(format!("node-{}.log", node.id));
                    if std::fs::copy(node.log_path(), &to).is_ok() {
                        eprintln!("node {} log kept in {}", node.id, to.display());
                    }
                }
            }
            for node in &self.nodes {
                eprintln!(
                    "---- node {} log (last 40 lines) ----\n{}",
                    node.id,
                    tail(&node.log_path(), 40)
                );
            }
        }
        for node in &mut self.nodes {
            // Server's drop sends SIGKILL, which also ends a stopped
            // process, and ignores errors: a panic here would abort.
            drop(node.server.take());
            node.state = NodeState::Down;
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
