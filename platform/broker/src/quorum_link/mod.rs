//! This broker's link to the controller quorum that keeps a cluster's
//! metadata (`fjord-controller`).
//!
//! - [`ClusterLink`]: the quorum as this broker reaches it — the metadata
//!   it applied, the commands it proposes, whether its session is current,
//!   and the ISR changes its partitions want ([`IsrRequest`]).
//! - [`session`]: registering with the quorum and heartbeating, so that the
//!   active controller keeps this broker unfenced.
//!
//! What is done with the quorum's metadata lives above: following leaders
//! and proposing ISR changes in `crate::replication`, metadata changes
//! (topics, configs, elections, reassignments, broker decommissioning) in
//! the metadata frontend (`crate::metadata`).
//!
//! A single-node broker has no [`ClusterLink`] and none of this runs.

mod session;

use std::sync::Arc;

use fjord_controller::{AppliedResult, ClusterMetadata, Command, ControllerError, QuorumHandle};
use tokio::sync::{mpsc, watch};

use crate::listeners::BoundListener;
use crate::partition::IsrProposal;

/// One ISR change a leader wants, on its way to the controller
/// (AlterPartition).
#[derive(Debug)]
pub(crate) struct IsrRequest {
    pub topic: String,
    pub partition: i32,
    pub proposal: IsrProposal,
}

/// This broker's tie to the controller quorum: its own controller in
/// combined mode, or a controller client on a broker that is not a voter.
#[derive(Debug)]
pub struct ClusterLink {
    controller: QuorumHandle,
    broker_id: i32,
    /// The metadata offset at which this broker's current registration was
    /// applied: metadata older than it may not know this broker's replicas
    /// yet, so nothing is applied before it.
    registered: watch::Sender<Option<u64>>,
    /// The metadata offset this broker applied last (admin requests wait
    /// for their command's offset).
    applied: watch::Sender<u64>,
    isr_proposals: mpsc::UnboundedSender<IsrRequest>,
    /// When the active controller last accepted this broker's registration
    /// or heartbeat (ms since the link was made; 0: never).
    session_ok_ms: std::sync::atomic::AtomicU64,
    /// The broker session timeout.
    session_timeout: std::time::Duration,
    created: std::time::Instant,
    isr_requests: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<IsrRequest>>>,
}

impl ClusterLink {
    /// Ties broker `broker_id` to the quorum through `controller`; the
    /// broker's session lapses after `session_timeout` without an accepted
    /// heartbeat.
    pub fn new(
        controller: QuorumHandle,
        broker_id: i32,
        session_timeout: std::time::Duration,
    ) -> Self {
        let (isr_proposals, isr_requests) = mpsc::unbounded_channel();
        ClusterLink {
            controller,
            broker_id,
            session_ok_ms: std::sync::atomic::AtomicU64::new(0),
            session_timeout,
            created: std::time::Instant::now(),
            registered: watch::channel(None).0,
            applied: watch::channel(0).0,
            isr_proposals,
            isr_requests: parking_lot::Mutex::new(Some(isr_requests)),
        }
    }

    /// This broker's id.
    pub(crate) fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The metadata as this node's controller (or client) has it last.
    pub(crate) fn metadata(&self) -> Arc<ClusterMetadata> {
        self.controller.metadata().borrow().clone()
    }

    /// A receiver of every applied metadata state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.controller.metadata()
    }

    /// The active controller's node id, if one is known.
    pub(crate) fn active_controller(&self) -> Option<u64> {
        self.controller.leader()
    }

    /// A receiver of the metadata offset this broker applied last (a
    /// metadata change waits for its command's offset).
    pub(crate) fn applied_offsets(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    /// Writes a command through the quorum.
    pub(crate) async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        self.controller.propose(command).await
    }

    /// The controller accepted this broker's registration or heartbeat now.
    pub(crate) fn session_renewed(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.session_ok_ms
            .store(ms.max(1), std::sync::atomic::Ordering::Release);
    }

    /// Whether this broker's session with the quorum is current: the
    /// controller accepted a heartbeat within the session timeout. A broker
    /// whose session lapsed (it was stopped, or cut off from the quorum)
    /// may have been fenced and replaced as leader without knowing it, so
    /// it serves no partition as leader until the quorum hears it again.
    pub(crate) fn session_current(&self) -> bool {
        let ok = self
            .session_ok_ms
            .load(std::sync::atomic::Ordering::Acquire);
        ok > 0
            && self.created.elapsed().as_millis() as u64
                <= ok + self.session_timeout.as_millis() as u64
    }

    /// Hands an ISR change to the task that proposes them.
    pub(crate) fn propose_isr(&self, request: IsrRequest) {
        let _ = self.isr_proposals.send(request);
    }

    /// The ISR changes handed to [`ClusterLink::propose_isr`], for the one
    /// task that proposes them: `None` once taken.
    pub(crate) fn take_isr_requests(&self) -> Option<mpsc::UnboundedReceiver<IsrRequest>> {
        self.isr_requests.lock().take()
    }

    /// A receiver of the metadata offset at which this broker's current
    /// registration was applied (`None`: not registered yet); metadata
    /// older than it is not applied.
    pub(crate) fn registrations(&self) -> watch::Receiver<Option<u64>> {
        self.registered.subscribe()
    }

    /// This broker applied the metadata up to `offset`.
    pub(crate) fn applied(&self, offset: u64) {
        self.applied.send_replace(offset);
    }
}

/// Starts this broker's session with the quorum: it registers every one of
/// `listeners` (as each advertises itself), `inter_broker` the one other
/// brokers and the controller reach it at. It ends with `shutdown`.
pub(crate) fn start(
    link: &Arc<ClusterLink>,
    listeners: &[BoundListener],
    inter_broker: &BoundListener,
    session_timeout_ms: u64,
    shutdown: watch::Receiver<bool>,
) {
    let port = |l: &BoundListener| u16::try_from(l.advertised_port).unwrap_or_default();
    tokio::spawn(session::keep(
        Arc::clone(link),
        session::Registration {
            host: inter_broker.advertised_host.clone(),
            port: port(inter_broker),
            listeners: listeners
                .iter()
                .map(|l| fjord_controller::BrokerListener {
                    name: l.name.clone(),
                    host: l.advertised_host.clone(),
                    port: port(l),
                    security_protocol: l.protocol.name().to_owned(),
                })
                .collect(),
            interval: std::time::Duration::from_millis(session_timeout_ms / 3),
        },
        shutdown,
    ));
}

/// A broker as Metadata and DescribeCluster list it.
#[derive(Debug, Clone)]
pub(crate) struct BrokerAddress {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The brokers clients are told about, and the controller id: on a single
/// node this broker; in a cluster the live (unfenced) brokers and this one
/// even while it is fenced or not registered yet, since a client must be
/// able to reach the broker it asked and every leader the answer names.
/// Other brokers are at the endpoint they registered for the listener
/// `listener` (the one the client used, or the inter-broker one); one
/// without such a listener is left out, as Kafka does.
pub(crate) fn brokers_view(
    this: BrokerAddress,
    listener: &str,
    link: Option<&ClusterLink>,
) -> (Vec<BrokerAddress>, i32) {
    let node = this.id;
    let Some(link) = link else {
        return (vec![this], node);
    };
    let metadata = link.metadata();
    let mut brokers: Vec<BrokerAddress> = metadata
        .brokers
        .values()
        .filter(|b| !b.fenced && b.id != node)
        .filter_map(|b| {
            let (host, port) = metadata.broker_endpoint(b.id, listener)?;
            Some(BrokerAddress {
                id: b.id,
                host: host.to_owned(),
                port: i32::from(port),
                rack: b.rack.clone(),
            })
        })
        .collect();
    brokers.push(this);
    brokers.sort_by_key(|b| b.id);
    let controller = link
        .active_controller()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(-1);
    (brokers, controller)
}

/// Checks that this broker may serve `partition` as its leader in the epoch
/// a client names (`-1`: any): the partition's role and epoch, and in a
/// cluster a current session with the quorum.
pub(crate) fn check_leader(
    link: Option<&ClusterLink>,
    partition: &crate::partition::Partition,
    client_epoch: i32,
) -> Result<(), crate::error::PartitionError> {
    partition.check_leader(client_epoch)?;
    match link {
        Some(link) if partition.is_replicated() && !link.session_current() => {
            Err(partition.not_leader())
        }
        _ => Ok(()),
    }
}
