//! TCP (or TLS, see [`crate::link`]) to and between controllers. One
//! connection carries one request at a time: a frame is a big-endian `u32` length followed by a postcard-encoded
//! [`RpcRequest`] or [`RpcResponse`]. Openraft's replication streams each get
//! their own connection; forwarded proposals and broker heartbeats use a
//! connection per peer. A connection that fails or times out is dropped and
//! opened again on the next request.
//!
//! Brokers that are not voters ([`crate::ControllerClient`]) speak the same
//! protocol: they send `Propose` and `Heartbeat` with `relay: true` to any
//! voter, which hands them on to the leader, and follow the metadata with
//! `FetchMetadata`.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError as RaftRemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::commands::{AppliedResult, Command, CommandError};
use crate::controller::ControllerCore;
use crate::link::{BoxedStream, Security};
use crate::model::{BrokerId, ClusterMetadata};
use crate::raft_types::TypeConfig;
use crate::voters::NodeId;

/// Largest frame accepted (snapshots travel in chunks well below this).
const MAX_FRAME_LEN: usize = 64 * 1024 * 1024;

/// Longest long poll a voter grants a `FetchMetadata`: a client asking for
/// more still hears the leader regularly.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

/// A request from one controller to another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command for the leader to write. A voter forwarding its own
    /// proposal sends `relay: false`: the receiver writes it or answers
    /// `NotLeader`. A controller client sends `relay: true`: a receiver that
    /// does not lead forwards it once to the leader it knows (as
    /// `relay: false`, so a request never takes more than two hops).
    Propose {
        command: Command,
        relay: bool,
    },
    /// A broker heartbeat for the active controller; `relay` as for
    /// `Propose`.
    Heartbeat {
        broker_id: BrokerId,
        broker_epoch: i64,
        relay: bool,
    },
    /// A controller client following the metadata: answered with the
    /// receiver's applied state as soon as its offset is greater than
    /// `after_offset`, or without it after `max_wait_ms` (long poll).
    FetchMetadata {
        after_offset: u64,
        max_wait_ms: u32,
    },
}

/// The answer to an [`RpcRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Propose(Result<AppliedResult, ForwardError>),
    Heartbeat(Result<(), ForwardError>),
    FetchMetadata {
        /// The leader the answering voter knows.
        leader: Option<NodeId>,
        /// Its applied state, if newer than `after_offset`.
        metadata: Option<ClusterMetadata>,
    },
}

/// Why a forwarded proposal or heartbeat was not handled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ForwardError {
    /// The receiver is not the leader (any more).
    NotLeader(Option<NodeId>),
    /// The heartbeat was refused.
    Rejected(CommandError),
    /// Anything else, as text.
    Failed(String),
}

/// Why a call failed, and whether the request may have reached the peer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// No connection could be made: the request was not sent.
    #[error("cannot connect to {addr}: {source}")]
    Unreachable { addr: String, source: io::Error },
    /// The connection failed or timed out after the request was (maybe) sent.
    #[error("call to {addr} failed: {source}")]
    Failed { addr: String, source: io::Error },
}

/// A client connection to one peer, opened on demand.
pub(crate) struct PeerConnection {
    addr: String,
    security: Security,
    stream: Option<BoxedStream>,
}

impl std::fmt::Debug for PeerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConnection")
            .field("addr", &self.addr)
            .field("tls", &self.security.is_some())
            .field("open", &self.stream.is_some())
            .finish()
    }
}

impl PeerConnection {
    pub(crate) fn new(addr: String, security: Security) -> Self {
        PeerConnection {
            addr,
            security,
            stream: None,
        }
    }

    /// Send `request` and wait for the response, within `timeout`.
    pub(crate) async fn call(
        &mut self,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, CallError> {
        let payload = postcard::to_stdvec(request).map_err(|e| CallError::Unreachable {
            addr: self.addr.clone(),
            source: io::Error::other(e),
        })?;
        let deadline = tokio::time::Instant::now() + timeout;
        if self.stream.as_mut().is_some_and(|s| !idle_and_open(s)) {
            // The peer closed the idle connection (it restarted, or shut
            // down): sending on it would fail after the write and look like
            // a call with an unknown outcome. Connect again instead.
            self.stream = None;
        }
        if self.stream.is_none() {
            let open = async {
                let tcp = TcpStream::connect(&self.addr).await?;
                let _ = tcp.set_nodelay(true);
                crate::link::connect(&self.security, tcp, &self.addr).await
            };
            let connect = tokio::time::timeout_at(deadline, open);
            let stream = match connect.await {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => {
                    return Err(CallError::Unreachable {
                        addr: self.addr.clone(),
                        source,
                    });
                }
                Err(_) => {
                    return Err(CallError::Unreachable {
                        addr: self.addr.clone(),
                        source: io::ErrorKind::TimedOut.into(),
                    });
                }
            };
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(CallError::Unreachable {
                addr: self.addr.clone(),
                source: io::ErrorKind::NotConnected.into(),
            });
        };
        let exchange = async {
            write_frame(stream, &payload).await?;
            let bytes = read_frame(stream).await?;
            postcard::from_bytes::<RpcResponse>(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        };
        let result = match tokio::time::timeout_at(deadline, exchange).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        };
        result.map_err(|source| {
            // The stream may hold half a frame: never reuse it.
            self.stream = None;
            CallError::Failed {
                addr: self.addr.clone(),
                source,
            }
        })
    }
}

/// Whether an idle connection is still usable: between calls the peer
/// sends nothing, so anything readable is an end of stream, an error, or
/// garbage. (One read that must not wait: over TLS, records without data,
/// such as session tickets, are taken in and the read still waits.)
fn idle_and_open(stream: &mut BoxedStream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(stream)
        .poll_read(&mut context, &mut buf)
        .is_pending()
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) -> io::Result<()> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is too large", payload.len()),
        ));
    }
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    stream.write_all(&buf).await
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// How long a connecting peer has to complete what `security` asks of it
/// (the TLS handshake) when the security does not bound it itself.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(15);

/// Accept controller connections until the task is aborted; connection tasks
/// end with it.
pub(crate) async fn serve(listener: TcpListener, core: Arc<ControllerCore>, security: Security) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let core = core.clone();
                    let security = security.clone();
                    connections.spawn(async move {
                        let secured = tokio::time::timeout(
                            ACCEPT_TIMEOUT,
                            crate::link::accept(&security, stream, peer),
                        );
                        let stream = match secured.await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                debug!(%peer, error = %e, "controller connection refused");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, "controller connection: no handshake in time");
                                return;
                            }
                        };
                        if let Err(e) = serve_connection(stream, core).await {
                            debug!(%peer, error = %e, "controller connection closed");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accepting a controller connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: BoxedStream, core: Arc<ControllerCore>) -> io::Result<()> {
    loop {
        let bytes = match read_frame(&mut stream).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let request: RpcRequest = postcard::from_bytes(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let response = match request {
            RpcRequest::AppendEntries(r) => {
                RpcResponse::AppendEntries(core.raft.append_entries(r).await)
            }
            RpcRequest::Vote(r) => RpcResponse::Vote(core.raft.vote(r).await),
            RpcRequest::InstallSnapshot(r) => {
                RpcResponse::InstallSnapshot(core.raft.install_snapshot(r).await)
            }
            RpcRequest::Propose {
                command,
                relay: false,
            } => RpcResponse::Propose(core.propose_here(command).await),
            RpcRequest::Propose {
                command,
                relay: true,
            } => RpcResponse::Propose(core.propose_relayed(command).await),
            RpcRequest::Heartbeat {
                broker_id,
                broker_epoch,
                relay: false,
            } => RpcResponse::Heartbeat(core.heartbeat_here(broker_id, broker_epoch).await),
            RpcRequest::Heartbeat {
                broker_id,
                broker_epoch,
                relay: true,
            } => RpcResponse::Heartbeat(core.heartbeat_relayed(broker_id, broker_epoch).await),
            RpcRequest::FetchMetadata {
                after_offset,
                max_wait_ms,
            } => {
                let wait = Duration::from_millis(max_wait_ms.into()).min(MAX_FETCH_WAIT);
                fetch_metadata(&core, after_offset, wait).await
            }
        };
        let payload = postcard::to_stdvec(&response).map_err(io::Error::other)?;
        write_frame(&mut stream, &payload).await?;
    }
}

/// Answers a `FetchMetadata`: waits up to `wait` for an applied state newer
/// than `after_offset`.
async fn fetch_metadata(core: &ControllerCore, after_offset: u64, wait: Duration) -> RpcResponse {
    let mut applied = core.store.subscribe();
    // A timeout is the ordinary "nothing new" answer, and the sender lives
    // as long as the store: the result of the wait itself says nothing.
    let _ = tokio::time::timeout(wait, applied.wait_for(|m| m.offset > after_offset)).await;
    let current = applied.borrow().clone();
    RpcResponse::FetchMetadata {
        leader: core.raft.metrics().borrow().current_leader,
        metadata: (current.offset > after_offset).then(|| ClusterMetadata::clone(&current)),
    }
}

/// Creates openraft's per-peer network clients. Addresses come from the
/// configured voter list when it names the peer, else from the membership.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    addresses: Arc<BTreeMap<NodeId, String>>,
    security: Security,
}

impl NetworkFactory {
    pub(crate) fn new(addresses: BTreeMap<NodeId, String>, security: Security) -> Self {
        NetworkFactory {
            addresses: Arc::new(addresses),
            security,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        let addr = self
            .addresses
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        PeerNetwork {
            target,
            connection: PeerConnection::new(addr, self.security.clone()),
        }
    }
}

/// Openraft's client for one peer.
#[derive(Debug)]
pub(crate) struct PeerNetwork {
    target: NodeId,
    connection: PeerConnection,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl PeerNetwork {
    async fn call<E: std::error::Error>(
        &mut self,
        request: RpcRequest,
        option: &RPCOption,
    ) -> RpcResult<RpcResponse, E> {
        self.connection
            .call(&request, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Failed { .. } => RPCError::Network(NetworkError::new(&e)),
            })
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RaftRemoteError::new(self.target, e))
    }
}

fn unexpected<E: std::error::Error>(response: &RpcResponse) -> RPCError<NodeId, BasicNode, E> {
    let e = io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected response {response:?}"),
    );
    RPCError::Network(NetworkError::new(&e))
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        match self.call(RpcRequest::AppendEntries(rpc), &option).await? {
            RpcResponse::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self.call(RpcRequest::InstallSnapshot(rpc), &option).await? {
            RpcResponse::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        match self.call(RpcRequest::Vote(rpc), &option).await? {
            RpcResponse::Vote(r) => r.map_err(|e| self.remote(e)),
            other => Err(unexpected(&other)),
        }
    }

    fn backoff(&self) -> Backoff {
        // Retry an unreachable peer soon: a restarted controller should
        // catch up within a few hundred milliseconds.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
