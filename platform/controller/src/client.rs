//! [`ControllerClient`]: the controller quorum as a broker that is not a
//! voter sees it.
//!
//! Kafka's KRaft runs small clusters in combined mode (the first three
//! brokers are also the controller voters) and every further broker as a
//! broker only. Such a broker keeps no Raft log and listens for no
//! controller: it talks to the voters over the same TCP protocol the voters
//! use among themselves (`network.rs`).
//!
//! - Proposals and heartbeats go to the last known leader, else to any
//!   voter that answers, with `relay: true`: a voter that does not lead
//!   forwards them once to the leader it knows.
//! - A background task follows the metadata with `FetchMetadata` long polls,
//!   preferably to the active controller. Any voter's applied state is a
//!   prefix of the committed log, and the client only ever asks for a state
//!   newer than the one it has, so the state it publishes never goes back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::commands::{AppliedResult, Command};
use crate::controller::{ControllerError, into_result};
use crate::link::Security;
use crate::model::{BrokerId, ClusterMetadata};
use crate::network::{CallError, ForwardError, PeerConnection, RpcRequest, RpcResponse};
use crate::voters::{NodeId, Voters};

/// Timings of a [`ControllerClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time limit of one call to a voter. It should exceed the voters' own
    /// `rpc_timeout`, since a voter may spend that long forwarding the call
    /// to the leader.
    pub rpc_timeout: Duration,
    /// How long `propose` and `heartbeat` keep trying while no voter leads
    /// or none answers.
    pub propose_timeout: Duration,
    /// How long a voter holds a `FetchMetadata` when it has nothing newer
    /// (the long poll; voters grant at most 5 s).
    pub fetch_max_wait: Duration,
    /// Pause after every voter failed or refused once.
    pub retry_pause: Duration,
    /// What secures the connections to the voters (`None`: plain TCP).
    pub security: Security,
}

impl Default for ClientConfig {
    /// Calls 3 s (voters forward within their default 2 s), proposals 10 s
    /// as on a voter, long polls of 500 ms, 100 ms between rounds.
    fn default() -> Self {
        ClientConfig {
            rpc_timeout: Duration::from_secs(3),
            propose_timeout: Duration::from_secs(10),
            fetch_max_wait: Duration::from_millis(500),
            retry_pause: Duration::from_millis(100),
            security: None,
        }
    }
}

/// A voter that failed is left alone for this long by the metadata task,
/// so that a dead leader others still name does not stall every fetch.
const AVOID_FAILED_VOTER: Duration = Duration::from_secs(5);

/// The quorum for a broker that is not a voter. See the module docs.
#[derive(Debug)]
pub struct ControllerClient {
    shared: Arc<Shared>,
    follower: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    voters: Voters,
    config: ClientConfig,
    /// The leader last named by a voter.
    leader: Mutex<Option<NodeId>>,
    metadata: watch::Sender<Arc<ClusterMetadata>>,
    /// One connection per voter for proposals and heartbeats. The metadata
    /// task has its own: its long polls would hold these.
    connections: BTreeMap<NodeId, tokio::sync::Mutex<PeerConnection>>,
}

impl ControllerClient {
    /// Starts following the quorum of `voters`. Returns at once: the
    /// metadata starts empty (offset 0) and fills in as the first voter
    /// answers. Must be called within a Tokio runtime.
    pub fn connect(voters: Voters, config: ClientConfig) -> Result<Self, ControllerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            ControllerError::Config(format!("a controller client needs a Tokio runtime: {e}"))
        })?;
        let connections = voters
            .iter()
            .map(|(id, addr)| {
                (
                    id,
                    tokio::sync::Mutex::new(PeerConnection::new(
                        addr.to_owned(),
                        config.security.clone(),
                    )),
                )
            })
            .collect();
        let shared = Arc::new(Shared {
            voters,
            config,
            leader: Mutex::new(None),
            metadata: watch::channel(Arc::new(ClusterMetadata::default())).0,
            connections,
        });
        let follower = runtime.spawn(follow(Arc::clone(&shared)));
        Ok(ControllerClient { shared, follower })
    }

    /// The voters this client talks to.
    pub fn voters(&self) -> &Voters {
        &self.shared.voters
    }

    /// Proposes a command through the quorum and waits until the leader
    /// applied it. Errors as [`crate::Controller::propose`]; a call that
    /// failed after it was sent is `ForwardFailed` (outcome unknown) and is
    /// not retried.
    pub async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        let applied = self
            .shared
            .call(
                || RpcRequest::Propose {
                    command: command.clone(),
                    relay: true,
                },
                |r| match r {
                    RpcResponse::Propose(r) => Some(r),
                    _ => None,
                },
            )
            .await?;
        into_result(applied)
    }

    /// A broker heartbeat, for the active controller (through any voter).
    pub async fn heartbeat(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ControllerError> {
        self.shared
            .call(
                || RpcRequest::Heartbeat {
                    broker_id,
                    broker_epoch,
                    relay: true,
                },
                |r| match r {
                    RpcResponse::Heartbeat(r) => Some(r),
                    _ => None,
                },
            )
            .await
            .inspect_err(|e| warn!(broker_id, error = %e, "heartbeat failed"))
    }

    /// Follow the metadata: the newest state a voter applied, as far as
    /// this client has heard. It never goes back to an older offset.
    pub fn metadata(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.shared.metadata.subscribe()
    }

    /// The leader a voter named last, if any has yet.
    pub fn leader(&self) -> Option<NodeId> {
        self.shared.leader()
    }

    /// Stops following the metadata.
    pub async fn shutdown(mut self) {
        self.follower.abort();
        let _ = (&mut self.follower).await;
    }
}

impl Drop for ControllerClient {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl Shared {
    fn leader(&self) -> Option<NodeId> {
        *self.leader.lock()
    }

    fn learn_leader(&self, leader: NodeId) {
        if self.voters.contains(leader) {
            *self.leader.lock() = Some(leader);
        }
    }

    async fn call_voter(
        &self,
        voter: NodeId,
        request: &RpcRequest,
    ) -> Result<RpcResponse, CallError> {
        let Some(connection) = self.connections.get(&voter) else {
            return Err(CallError::Unreachable {
                addr: format!("node {voter}"),
                source: std::io::Error::other("not a configured voter"),
            });
        };
        connection
            .lock()
            .await
            .call(request, self.config.rpc_timeout)
            .await
    }

    /// Sends `request` to the last known leader, else to the voters in
    /// turn, following the leader hints of refusals; rounds of that until
    /// one accepts, one rejects, or the propose timeout passes.
    async fn call<T>(
        &self,
        request: impl Fn() -> RpcRequest,
        unwrap: impl Fn(RpcResponse) -> Option<Result<T, ForwardError>>,
    ) -> Result<T, ControllerError> {
        let deadline = Instant::now() + self.config.propose_timeout;
        let ids: Vec<NodeId> = self.voters.iter().map(|(id, _)| id).collect();
        let mut start = 0;
        let mut last_hint = None;
        loop {
            // The leader saves a hop; the rotation spreads the fallbacks.
            let mut order: Vec<NodeId> = self.leader().into_iter().collect();
            for id in ids.iter().cycle().skip(start).take(ids.len()) {
                if !order.contains(id) {
                    order.push(*id);
                }
            }
            start += 1;
            let mut tried = Vec::new();
            let mut next = 0;
            while let Some(&target) = order.get(next) {
                next += 1;
                if tried.contains(&target) {
                    continue;
                }
                tried.push(target);
                let refusal = match self.call_voter(target, &request()).await {
                    Ok(response) => match unwrap(response) {
                        Some(Ok(v)) => return Ok(v),
                        Some(Err(ForwardError::Rejected(e))) => {
                            return Err(ControllerError::Rejected(e));
                        }
                        Some(Err(ForwardError::Failed(message))) => {
                            return Err(ControllerError::ForwardFailed {
                                leader: target,
                                message,
                            });
                        }
                        Some(Err(ForwardError::NotLeader(hint))) => hint,
                        None => {
                            return Err(ControllerError::ForwardFailed {
                                leader: target,
                                message: "unexpected response".into(),
                            });
                        }
                    },
                    // Not sent: another voter may do.
                    Err(e @ CallError::Unreachable { .. }) => {
                        debug!(voter = target, error = %e, "controller call");
                        None
                    }
                    Err(e @ CallError::Failed { .. }) => {
                        return Err(ControllerError::ForwardFailed {
                            leader: target,
                            message: e.to_string(),
                        });
                    }
                };
                if let Some(hint) = refusal {
                    last_hint = Some(hint);
                    self.learn_leader(hint);
                    if !tried.contains(&hint) {
                        order.insert(next, hint);
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            if Instant::now() + self.config.retry_pause > deadline {
                return Err(match last_hint {
                    Some(leader) => ControllerError::NotLeader {
                        leader: Some(leader),
                    },
                    None => ControllerError::NoLeader(self.config.propose_timeout),
                });
            }
            tokio::time::sleep(self.config.retry_pause).await;
        }
    }
}

/// The metadata task: long polls one voter at a time (the leader when it
/// answers), publishes every newer state, and learns the leader from each
/// answer. Runs until aborted.
async fn follow(shared: Arc<Shared>) {
    let mut connections: BTreeMap<NodeId, PeerConnection> = shared
        .voters
        .iter()
        .map(|(id, addr)| {
            let security = shared.config.security.clone();
            (id, PeerConnection::new(addr.to_owned(), security))
        })
        .collect();
    let ids: Vec<NodeId> = connections.keys().copied().collect();
    let max_wait_ms = u32::try_from(shared.config.fetch_max_wait.as_millis()).unwrap_or(u32::MAX);
    let call_timeout = shared.config.fetch_max_wait + shared.config.rpc_timeout;
    let mut avoid: BTreeMap<NodeId, Instant> = BTreeMap::new();
    let mut current: Option<NodeId> = None;
    let mut rotation = 0;
    let mut failures = 0;
    loop {
        let now = Instant::now();
        avoid.retain(|_, until| *until > now);
        let usable = |id: &NodeId| !avoid.contains_key(id);
        let target = shared
            .leader()
            .filter(usable)
            .or(current.filter(usable))
            .or_else(|| {
                let found = ids
                    .iter()
                    .cycle()
                    .skip(rotation)
                    .take(ids.len())
                    .find(|id| usable(id))
                    .copied();
                rotation += 1;
                // Every voter failed lately: try them again in turn.
                found.or_else(|| ids.get(rotation % ids.len().max(1)).copied())
            });
        let Some(target) = target else {
            return;
        };
        let Some(connection) = connections.get_mut(&target) else {
            return;
        };
        let after_offset = shared.metadata.borrow().offset;
        let request = RpcRequest::FetchMetadata {
            after_offset,
            max_wait_ms,
        };
        match connection.call(&request, call_timeout).await {
            Ok(RpcResponse::FetchMetadata { leader, metadata }) => {
                failures = 0;
                current = Some(target);
                if let Some(leader) = leader {
                    shared.learn_leader(leader);
                }
                if let Some(metadata) = metadata {
                    shared.metadata.send_if_modified(|published| {
                        let newer = metadata.offset > published.offset;
                        if newer {
                            *published = Arc::new(metadata);
                        }
                        newer
                    });
                }
                continue;
            }
            Ok(other) => {
                warn!(
                    voter = target,
                    "unexpected answer to FetchMetadata: {other:?}"
                );
            }
            Err(e) => debug!(voter = target, error = %e, "fetching metadata"),
        }
        avoid.insert(target, Instant::now() + AVOID_FAILED_VOTER);
        current = None;
        failures += 1;
        if failures >= ids.len() {
            failures = 0;
            tokio::time::sleep(shared.config.retry_pause).await;
        }
    }
}
