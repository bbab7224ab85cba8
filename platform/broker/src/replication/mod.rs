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
mod peer;

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

/// Sends one request to `broker` at its inter-broker listener, logged in
/// as the platform's principal, on a connection of its own (the
/// transaction coordinator's WriteTxnMarkers: rare enough not to keep
/// one open).
pub(crate) async fn call_peer(
    state: &crate::broker_state::BrokerState,
    broker: i32,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    request: kafka_protocol::messages::RequestKind,
    timeout: std::time::Duration,
) -> Result<kafka_protocol::messages::ResponseKind, peer::PeerError> {
    let link = state.cluster().ok_or(peer::PeerError::Closed)?;
    let connector = PeerConnector::new(
        state.inter_broker_listener(),
        state.inter_broker_tls().cloned(),
    );
    let metadata = link.metadata();
    let (host, port) = metadata
        .broker_endpoint(broker, connector.listener())
        .ok_or(peer::PeerError::Closed)?;
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let client_id = format!("fjord-txn-coordinator-{}", link.broker_id());
    let mut connection =
        peer::PeerConnection::connect(&connector, &addr, client_id, timeout).await?;
    if let Some(secret) = metadata.internal_secret.clone() {
        connection
            .login_plain(crate::auth::INTERNAL_PRINCIPAL, secret.expose(), timeout)
            .await?;
    }
    connection.call(api, version, request, timeout).await
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
