//! Replication: the broker's partitions kept in step with their replica
//! sets, as the controller quorum's metadata assigns them (Kafka's ISR
//! protocol; docs/replication.md).
//!
//! - [`follow`]: applying the quorum's metadata to this broker: the topics,
//!   the partitions it is a replica of, and for each whether it leads or
//!   follows (and whom).
//! - [`fetcher`]: a follower's copy of its leader's log, over the Kafka
//!   Fetch API with its replica id, after truncating what diverges
//!   (OffsetForLeaderEpoch), through a [`peer`] connection.
//! - [`isr`]: a leader's proposals to shrink and expand the in-sync replica
//!   set (AlterPartition).
//!
//! It runs on the parts it is handed ([`Replicas`]): the registry, the
//! group coordinator (leadership of `__consumer_offsets` moves group
//! coordination), the link to the quorum, the config and the stop signal.
//! A single-node broker has no link to a quorum and none of this runs.

mod fetcher;
mod follow;
mod isr;
pub(crate) mod peer;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::quorum_link::ClusterLink;
use crate::tls::client::PeerConnector;
use crate::topic_registry::TopicRegistry;

/// What replication works with.
#[derive(Debug)]
pub(crate) struct Replicas {
    pub registry: Arc<TopicRegistry>,
    pub groups: Arc<GroupCoordinator>,
    pub link: Arc<ClusterLink>,
    pub config: Arc<BrokerConfig>,
    /// How followers connect to their leaders' inter-broker listener.
    pub connector: PeerConnector,
    pub shutdown: watch::Receiver<bool>,
}

/// `broker`'s `host:port` on the inter-broker listener.
pub(crate) fn peer_addr(
    state: &crate::broker_state::BrokerState,
    broker: i32,
) -> Result<String, peer::PeerError> {
    let link = state.cluster().ok_or(peer::PeerError::Closed)?;
    let metadata = link.metadata();
    let (host, port) = metadata
        .broker_endpoint(broker, state.inter_broker_listener())
        .ok_or(peer::PeerError::Closed)?;
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// A connection to the peer at `addr`, logged in as the platform's
/// principal when the cluster has an internal secret (the transaction
/// coordinator's WriteTxnMarkers, `txn::peers`).
pub(crate) async fn connect_peer(
    state: &crate::broker_state::BrokerState,
    addr: &str,
    timeout: std::time::Duration,
) -> Result<peer::PeerConnection, peer::PeerError> {
    let link = state.cluster().ok_or(peer::PeerError::Closed)?;
    let connector = PeerConnector::new(
        state.inter_broker_listener(),
        state.inter_broker_tls().cloned(),
    );
    let client_id = format!("fjord-txn-coordinator-{}", link.broker_id());
    let mut connection =
        peer::PeerConnection::connect(&connector, addr, client_id, timeout).await?;
    if let Some(secret) = link.metadata().internal_secret.clone() {
        connection
            .login_plain(crate::auth::INTERNAL_PRINCIPAL, secret.expose(), timeout)
            .await?;
    }
    Ok(connection)
}

/// Starts the metadata follower (which starts and stops replica fetchers)
/// and the ISR proposer. They end with the broker's stop signal.
pub(crate) fn start(replicas: Replicas) {
    let replicas = Arc::new(replicas);
    tokio::spawn(follow::run(Arc::clone(&replicas)));
    if let Some(requests) = replicas.link.take_isr_requests() {
        tokio::spawn(isr::run(replicas, requests));
    }
}
