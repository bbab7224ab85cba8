//! Cluster mode: the broker as one member of a replicated cluster whose
//! metadata the controller quorum keeps (`fjord-controller`).
//!
//! - [`session`]: registering with the quorum and heartbeating, so that the
//!   active controller keeps this broker unfenced.
//! - [`follow`]: applying the quorum's metadata to this broker: the topics,
//!   the partitions it is a replica of, and for each whether it leads or
//!   follows (and whom).
//! - [`fetcher`]: a follower's copy of its leader's log, over the Kafka
//!   Fetch API with its replica id, after truncating what diverges
//!   (OffsetForLeaderEpoch).
//! - [`isr`]: a leader's proposals to shrink and expand the in-sync replica
//!   set (AlterPartition).
//! - [`admin`]: topic creation, deletion and config changes, which go
//!   through the quorum instead of the local registry.
//!
//! A single-node broker has no [`ClusterLink`] and none of this runs.

pub(crate) mod admin;
mod fetcher;
mod follow;
pub(crate) mod isr;
mod peer;
mod session;

use std::sync::Arc;

use fjord_controller::{AppliedResult, ClusterMetadata, Command, ControllerError, QuorumHandle};
use tokio::sync::{mpsc, watch};

use crate::server::BrokerState;

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
    isr_proposals: mpsc::UnboundedSender<isr::IsrRequest>,
    isr_requests: std::sync::Mutex<Option<mpsc::UnboundedReceiver<isr::IsrRequest>>>,
}

impl ClusterLink {
    /// Ties broker `broker_id` to the quorum through `controller`.
    pub fn new(controller: QuorumHandle, broker_id: i32) -> Self {
        let (isr_proposals, isr_requests) = mpsc::unbounded_channel();
        ClusterLink {
            controller,
            broker_id,
            registered: watch::channel(None).0,
            applied: watch::channel(0).0,
            isr_proposals,
            isr_requests: std::sync::Mutex::new(Some(isr_requests)),
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

    /// Writes a command through the quorum.
    pub(crate) async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        self.controller.propose(command).await
    }

    /// Hands an ISR change to the task that proposes them.
    pub(crate) fn propose_isr(&self, request: isr::IsrRequest) {
        let _ = self.isr_proposals.send(request);
    }
}

/// Starts the cluster tasks of a broker: its session, the metadata follower
/// (which starts and stops replica fetchers) and the ISR proposer. They end
/// with the broker's shutdown signal.
pub(crate) fn start(state: &Arc<BrokerState>, link: &Arc<ClusterLink>) {
    tokio::spawn(session::keep(Arc::clone(state), Arc::clone(link)));
    tokio::spawn(follow::run(Arc::clone(state), Arc::clone(link)));
    let requests = link
        .isr_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(requests) = requests {
        tokio::spawn(isr::run(Arc::clone(state), Arc::clone(link), requests));
    }
}
