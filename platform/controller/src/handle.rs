//! [`QuorumHandle`]: what a broker holds to reach the controller quorum,
//! whether its node is a voter (combined mode: the [`Controller`] runs in
//! the same process) or a broker only ([`ControllerClient`]). The broker
//! uses the same four calls either way.

use std::sync::Arc;

use tokio::sync::watch;

use crate::client::ControllerClient;
use crate::commands::{AppliedResult, Command};
use crate::controller::{Controller, ControllerError};
use crate::model::{BrokerId, ClusterMetadata};
use crate::voters::NodeId;

/// A broker's way to the controller quorum.
#[derive(Debug, Clone)]
pub enum QuorumHandle {
    /// This node is a voter and runs its controller.
    Voter(Arc<Controller>),
    /// This node is a broker only and follows the voters.
    Client(Arc<ControllerClient>),
}

impl QuorumHandle {
    /// Proposes a command; see [`Controller::propose`].
    pub async fn propose(&self, command: Command) -> Result<AppliedResult, ControllerError> {
        match self {
            QuorumHandle::Voter(c) => c.propose(command).await,
            QuorumHandle::Client(c) => c.propose(command).await,
        }
    }

    /// A broker heartbeat; see [`Controller::heartbeat`].
    pub async fn heartbeat(
        &self,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<(), ControllerError> {
        match self {
            QuorumHandle::Voter(c) => c.heartbeat(broker_id, broker_epoch).await,
            QuorumHandle::Client(c) => c.heartbeat(broker_id, broker_epoch).await,
        }
    }

    /// Follow the applied metadata. On a voter it is its own state machine;
    /// on a client, the newest state it fetched from a voter.
    pub fn metadata(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        match self {
            QuorumHandle::Voter(c) => c.metadata(),
            QuorumHandle::Client(c) => c.metadata(),
        }
    }

    /// The active controller, if known (on a client: as last heard).
    pub fn leader(&self) -> Option<NodeId> {
        match self {
            QuorumHandle::Voter(c) => c.leader(),
            QuorumHandle::Client(c) => c.leader(),
        }
    }
}

impl From<Arc<Controller>> for QuorumHandle {
    fn from(controller: Arc<Controller>) -> Self {
        QuorumHandle::Voter(controller)
    }
}

impl From<Arc<ControllerClient>> for QuorumHandle {
    fn from(client: Arc<ControllerClient>) -> Self {
        QuorumHandle::Client(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if a broker can hand the calls to `tokio::spawn`,
    /// whichever kind of handle it has.
    #[allow(dead_code)]
    fn calls_are_send(handle: QuorumHandle, client: Arc<ControllerClient>, command: Command) {
        fn send<T: Send + 'static>(_: T) {}
        let h = handle.clone();
        let c = command.clone();
        send(async move { h.propose(c).await });
        send(async move { handle.heartbeat(1, 1).await });
        let c = Arc::clone(&client);
        send(async move { c.propose(command).await });
        send(async move { client.heartbeat(1, 1).await });
    }
}
