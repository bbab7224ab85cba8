//! [`Controller`]: one node of the controller quorum.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::commands::{AppliedResult, Command, CommandError};
use crate::link::Security;
use crate::liveness::{self, Sessions};
use crate::log_store::{LogStore, LogStoreError};
use crate::metadata_store::MetadataStore;
use crate::model::{BrokerId, ClusterMetadata};
use crate::network::{
    self, CallError, ForwardError, NetworkFactory, PeerConnection, RpcRequest, RpcResponse,
};
use crate::raft_types::Raft;
use crate::voters::{NodeId, Voters};

/// How to run one controller node.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This node's id; must be one of the voters.
    pub node_id: NodeId,
    /// All voters, this node included.
    pub voters: Voters,
    /// Address to listen on for other controllers (may differ from the
    /// advertised address in `voters`, e.g. `0.0.0.0:9093`).
    pub listen: SocketAddr,
    /// Directory holding the Raft log, vote and snapshot.
    pub data_dir: PathBuf,
    /// Leader heartbeat period.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// A broker whose last heartbeat is older than this is fenced.
    pub session_timeout: Duration,
    /// Take a snapshot (and purge the log it covers) every this many entries.
    pub snapshot_every: u64,
    /// Time limit of one forwarded request to another controller.
    pub rpc_timeout: Duration,
    /// How long [`Controller::propose`] waits for a leader.
    pub propose_timeout: Duration,
    /// What secures the connections to and from other controllers and
    /// brokers (`None`: plain TCP).
    pub security: Security,
}

impl ControllerConfig {
    /// A configuration with default timings: heartbeat 150 ms, election
    /// timeout 1–2 s, session timeout 9 s (Kafka's `broker.session.timeout.ms`),
    /// a snapshot every 5000 entries.
    pub fn new(node_id: NodeId, voters: Voters, listen: SocketAddr, data_dir: PathBuf) -> Self {
        ControllerConfig {
            node_id,
            voters,
            listen,
            data_dir,
            heartbeat_interval: Duration::from_millis(150),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            session_timeout: Duration::from_secs(9),
            snapshot_every: 5000,
            rpc_timeout: Duration::from_secs(2),
            propose_timeout: Duration::from_secs(10),
            security: None,
        }
    }
}

/// Errors of the controller API.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The configuration is unusable.
    #[error("invalid controller configuration: {0}")]
    Config(String),
    /// The Raft log could not be opened.
    #[error(transparent)]
    Log(#[from] LogStoreError),
    /// Other I/O: the snapshot file, the listen socket.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The command was committed and rejected by the state machine.
    #[error("command rejected: {0}")]
    Rejected(#[from] CommandError),
    /// This node is not the leader and could not forward to it.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// No leader was elected within the propose timeout.
    #[error("no controller leader within {0:?}")]
    NoLeader(Duration),
    /// A forwarded request failed after it was sent: it may or may not have
    /// been applied.
    #[error("forwarding to controller {leader} failed, outcome unknown: {message}")]
    ForwardFailed {
        /// The leader it was sent to.
        leader: NodeId,
        /// The failure.
        message: String,
    },
    /// Raft failed or is shutting down.
    #[error("raft: {0}")]
    Raft(String),
}

/// The state shared by the API, the RPC server and the liveness task.
pub(crate) struct ControllerCore {
    pub(crate) node_id: NodeId,
    pub(crate) config: ControllerConfig,
    pub(crate) raft: Raft,
    pub(crate) store: MetadataStore,
    pub(crate) sessions: Sessions,
    peers: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<PeerConnection>>>>,
}

impl std::fmt::Debug for ControllerCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerCore")
            .field("node_id", &self.node_id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One node of the controller quorum. See the crate documentation.
#[derive(Debug)]
pub struct Controller {
    core: Arc<ControllerCore>,
    tasks: Vec<JoinHandle<()>>,
}

impl Controller {
    /// Open the data directory, listen, start Raft, and on the voter with the
    /// lowest id initialize the cluster if its log is empty (a restart never
    /// initializes again).
    pub async fn start(config: ControllerConfig) -> Result<Controller, ControllerError> {
        if !config.voters.contains(config.node_id) {
            return Err(ControllerError::Config(format!(
                "node id {} is not among the voters {}",
                config.node_id, config.voters
            )));
        }
        if config.snapshot_every == 0 {
            return Err(ControllerError::Config(
                "snapshot_every must be at least 1".into(),
            ));
        }
        let millis = |d: Duration| d.as_millis().max(1) as u64;
        let raft_config = openraft::Config {
            cluster_name: "fjord-controller".into(),
            heartbeat_interval: millis(config.heartbeat_interval),
            election_timeout_min: millis(config.election_timeout_min),
            election_timeout_max: millis(config.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 0,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ControllerError::Config(e.to_string()))?;

        let log = LogStore::open(&config.data_dir)?;
        let store =
            MetadataStore::open(&config.data_dir).map_err(|source| ControllerError::Io {
                context: format!("opening the snapshot in {}", config.data_dir.display()),
                source,
            })?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ControllerError::Io {
                    context: format!("listening on {}", config.listen),
                    source,
                })?;
        let addresses: BTreeMap<NodeId, String> = config
            .voters
            .iter()
            .map(|(id, a)| (id, a.to_string()))
            .collect();
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            NetworkFactory::new(addresses, config.security.clone()),
            log,
            store.clone(),
        )
        .await
        .map_err(|e| ControllerError::Raft(e.to_string()))?;
        let core = Arc::new(ControllerCore {
            node_id: config.node_id,
            config: config.clone(),
            raft,
            store,
            sessions: Sessions::default(),
            peers: Mutex::new(HashMap::new()),
        });
        let mut tasks = vec![tokio::spawn(network::serve(
            listener,
            core.clone(),
            config.security.clone(),
        ))];

        if config.node_id == config.voters.lowest_id() {
            let initialized = core
                .raft
                .is_initialized()
                .await
                .map_err(|e| ControllerError::Raft(e.to_string()))?;
            if !initialized {
                let members: BTreeMap<NodeId, BasicNode> = config
                    .voters
                    .iter()
                    .map(|(id, a)| (id, BasicNode::new(a)))
                    .collect();
                info!(voters = %config.voters, "initializing the controller quorum");
                match core.raft.initialize(members).await {
                    Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(ControllerError::Raft(e.to_string())),
                }
            }
        }
        tasks.push(tokio::spawn(liveness::run(core.clone())));
        info!(node_id = config.node_id, listen = %config.listen, "controller started");
        Ok(Controller { core, tasks })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.core.node_id
    }

    /// Propose a command and wait until it is committed and applied (on the
    /// leader). Works on any node: a follower forwards to the leader.
    pub async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        self.core.propose(command).await
    }

    /// Follow the applied metadata: the receiver sees every new state.
    pub fn metadata(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.core.store.subscribe()
    }

    /// The current leader, if one is known.
    pub fn leader(&self) -> Option<NodeId> {
        self.core.raft.metrics().borrow().current_leader
    }

    /// Whether this node is the active controller.
    pub fn is_leader(&self) -> bool {
        self.core.is_leader()
    }

    /// Raft metrics of this node (term, log, snapshot, purge), for
    /// diagnostics.
    pub fn raft_metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, BasicNode>> {
        self.core.raft.metrics()
    }

    /// A broker heartbeat. Recorded by the active controller (a follower
    /// forwards it); a fenced broker is unfenced by it. Fails if the broker is
    /// not registered with `broker_epoch`.
    pub async fn heartbeat(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ControllerError> {
        self.core.heartbeat(broker_id, broker_epoch).await
    }

    /// Stop Raft, the RPC server and the liveness task. The data directory
    /// can be opened again by a new [`Controller::start`].
    pub async fn shutdown(mut self) -> Result<(), ControllerError> {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.core
            .raft
            .shutdown()
            .await
            .map_err(|e| ControllerError::Raft(e.to_string()))
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What [`ControllerCore::route`] runs when this node leads.
type LocalCall<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ForwardError>> + Send + 'a>>;

pub(crate) fn into_result(applied: AppliedResult) -> Result<AppliedResult, ControllerError> {
    match applied.result {
        Err(e) => Err(ControllerError::Rejected(e)),
        Ok(_) => Ok(applied),
    }
}

impl ControllerCore {
    pub(crate) fn is_leader(&self) -> bool {
        self.leading_term().is_some()
    }

    /// The Raft term in which this node is the active controller, if it is.
    pub(crate) fn leading_term(&self) -> Option<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        (m.state == ServerState::Leader && m.current_leader == Some(self.node_id))
            .then_some(m.current_term)
    }

    /// Write a command through the local Raft node (no forwarding).
    pub(crate) async fn propose_here(
        &self,
        command: Command,
    ) -> Result<AppliedResult, ForwardError> {
        match self.raft.client_write(command).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ForwardError::NotLeader(f.leader_id))
            }
            Err(e) => Err(ForwardError::Failed(e.to_string())),
        }
    }

    /// Handle a heartbeat on this node if it is the leader.
    pub(crate) async fn heartbeat_here(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ForwardError> {
        let Some(term) = self.leading_term() else {
            return Err(ForwardError::NotLeader(
                self.raft.metrics().borrow().current_leader,
            ));
        };
        let metadata = self.store.current();
        let broker = metadata.broker(broker_id).ok_or(ForwardError::Rejected(
            CommandError::UnknownBroker(broker_id),
        ))?;
        if broker.epoch != broker_epoch {
            return Err(ForwardError::Rejected(CommandError::StaleBrokerEpoch {
                broker_id,
                got: broker_epoch,
                current: broker.epoch,
            }));
        }
        self.sessions
            .record(term, broker_id, broker_epoch, Instant::now());
        if broker.fenced {
            info!(
                broker_id,
                broker_epoch, "heartbeat from a fenced broker: unfencing"
            );
            let applied = self
                .propose_here(Command::UnfenceBroker {
                    broker_id,
                    broker_epoch,
                })
                .await?;
            match applied.result {
                Ok(_) | Err(CommandError::BrokerAlreadyInState { .. }) => {}
                Err(e) => return Err(ForwardError::Rejected(e)),
            }
        }
        Ok(())
    }

    fn peer(&self, id: NodeId) -> Option<Arc<tokio::sync::Mutex<PeerConnection>>> {
        let addr = self.config.voters.address(id)?;
        let mut peers = self.peers.lock();
        Some(
            peers
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(PeerConnection::new(
                        addr.to_string(),
                        self.config.security.clone(),
                    )))
                })
                .clone(),
        )
    }

    /// Run `local` here if leading, else forward `request` to the leader;
    /// retry while the leader is unknown or moves, until the propose timeout.
    ///
    /// `local` returns a boxed `Send` future rather than being an async
    /// closure: rustc cannot prove an async closure's future `Send` for every
    /// lifetime, which would keep `propose` and `heartbeat` out of
    /// `tokio::spawn`.
    async fn route<'a, T>(
        &'a self,
        request: impl Fn() -> RpcRequest,
        local: impl Fn() -> LocalCall<'a, T>,
        unwrap: impl Fn(RpcResponse) -> Option<Result<T, ForwardError>>,
    ) -> Result<T, ControllerError> {
        let deadline = tokio::time::Instant::now() + self.config.propose_timeout;
        let retry_pause = (self.config.heartbeat_interval).min(Duration::from_millis(100));
        let mut last_leader = None;
        loop {
            let leader = self.raft.metrics().borrow().current_leader;
            let outcome = match leader {
                Some(l) if l == self.node_id => local().await,
                Some(l) => {
                    last_leader = Some(l);
                    match self.forward(l, &request()).await {
                        Ok(response) => unwrap(response).unwrap_or_else(|| {
                            Err(ForwardError::Failed("unexpected response".into()))
                        }),
                        Err(CallError::Unreachable { .. }) => Err(ForwardError::NotLeader(None)),
                        Err(e @ CallError::Failed { .. }) => {
                            return Err(ControllerError::ForwardFailed {
                                leader: l,
                                message: e.to_string(),
                            });
                        }
                    }
                }
                None => Err(ForwardError::NotLeader(None)),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(ForwardError::Rejected(e)) => return Err(ControllerError::Rejected(e)),
                Err(ForwardError::Failed(m)) => return Err(ControllerError::Raft(m)),
                Err(ForwardError::NotLeader(hint)) => {
                    if tokio::time::Instant::now() + retry_pause > deadline {
                        return Err(match hint.or(last_leader) {
                            Some(leader) => ControllerError::NotLeader {
                                leader: Some(leader),
                            },
                            None => ControllerError::NoLeader(self.config.propose_timeout),
                        });
                    }
                    tokio::time::sleep(retry_pause).await;
                }
            }
        }
    }

    /// A request of a controller client: handled here when this node
    /// leads, else forwarded once to the leader it knows. Not retried: the
    /// client retries (perhaps through another voter), which keeps each of
    /// its calls within about one `rpc_timeout` of this node.
    async fn relay<'a, T>(
        &'a self,
        request: impl Fn() -> RpcRequest,
        local: impl Fn() -> LocalCall<'a, T>,
        unwrap: impl Fn(RpcResponse) -> Option<Result<T, ForwardError>>,
    ) -> Result<T, ForwardError> {
        let leader = self.raft.metrics().borrow().current_leader;
        match leader {
            Some(l) if l == self.node_id => local().await,
            Some(l) => match self.forward(l, &request()).await {
                Ok(response) => unwrap(response)
                    .unwrap_or_else(|| Err(ForwardError::Failed("unexpected response".into()))),
                // Not sent: the client may try again, here or elsewhere.
                Err(CallError::Unreachable { .. }) => Err(ForwardError::NotLeader(None)),
                Err(e @ CallError::Failed { .. }) => Err(ForwardError::Failed(format!(
                    "forwarding to controller {l} failed, outcome unknown: {e}"
                ))),
            },
            None => Err(ForwardError::NotLeader(None)),
        }
    }

    /// [`Self::relay`] for a client's proposal.
    pub(crate) async fn propose_relayed(
        &self,
        command: Command,
    ) -> Result<AppliedResult, ForwardError> {
        self.relay(
            || RpcRequest::Propose {
                command: command.clone(),
                relay: false,
            },
            || Box::pin(self.propose_here(command.clone())),
            |r| match r {
                RpcResponse::Propose(r) => Some(r),
                _ => None,
            },
        )
        .await
    }

    /// [`Self::relay`] for a client's heartbeat.
    pub(crate) async fn heartbeat_relayed(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ForwardError> {
        self.relay(
            || RpcRequest::Heartbeat {
                broker_id,
                broker_epoch,
                relay: false,
            },
            || Box::pin(self.heartbeat_here(broker_id, broker_epoch)),
            |r| match r {
                RpcResponse::Heartbeat(r) => Some(r),
                _ => None,
            },
        )
        .await
    }

    async fn forward(
        &self,
        leader: NodeId,
        request: &RpcRequest,
    ) -> Result<RpcResponse, CallError> {
        let Some(peer) = self.peer(leader) else {
            return Err(CallError::Unreachable {
                addr: format!("node {leader}"),
                source: std::io::Error::other("not a configured voter"),
            });
        };
        let mut connection = peer.lock().await;
        connection.call(request, self.config.rpc_timeout).await
    }

    pub(crate) async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        let applied = self
            .route(
                || RpcRequest::Propose {
                    command: command.clone(),
                    relay: false,
                },
                || Box::pin(self.propose_here(command.clone())),
                |r| match r {
                    RpcResponse::Propose(r) => Some(r),
                    _ => None,
                },
            )
            .await?;
        into_result(applied)
    }

    pub(crate) async fn heartbeat(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ControllerError> {
        self.route(
            || RpcRequest::Heartbeat {
                broker_id,
                broker_epoch,
                relay: false,
            },
            || Box::pin(self.heartbeat_here(broker_id, broker_epoch)),
            |r| match r {
                RpcResponse::Heartbeat(r) => Some(r),
                _ => None,
            },
        )
        .await
        .inspect_err(|e| warn!(broker_id, error = %e, "heartbeat failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if a broker can hand the controller's calls to
    /// `tokio::spawn`.
    #[allow(dead_code)]
    fn calls_are_send(controller: Arc<Controller>, command: Command) {
        fn send<T: Send + 'static>(_: T) {}
        let c = Arc::clone(&controller);
        send(async move { c.propose(command).await });
        send(async move { controller.heartbeat(1, 1).await });
    }
}
