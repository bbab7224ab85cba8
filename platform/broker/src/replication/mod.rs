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

/// Starts the metadata follower (which starts and stops replica fetchers)
/// and the ISR proposer. They end with the broker's stop signal.
pub(crate) fn start(replicas: Replicas) {
    let replicas = Arc::new(replicas);
    tokio::spawn(follow::run(Arc::clone(&replicas)));
    if let Some(requests) = replicas.link.take_isr_requests() {
        tokio::spawn(isr::run(replicas, requests));
    }
}
