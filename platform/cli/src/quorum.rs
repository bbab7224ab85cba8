//! Combined mode: a `fjord server` that is also a voter of the controller
//! quorum (`controller.quorum.voters`), as each of the first three brokers
//! of a small cluster is.
//!
//! This node runs its [`Controller`]; the broker (`fjord_broker::ClusterLink`)
//! registers with it, heartbeats, and takes its topics and partition roles
//! from its metadata (see docs/cluster.md).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fjord_broker::BrokerConfig;
use fjord_controller::{Controller, ControllerConfig, Voters};
use serde_json::json;

/// This node's controller.
pub struct QuorumMember {
    controller: Arc<Controller>,
    config: ControllerConfig,
}

/// This node's part in the quorum, read from the broker config before
/// anything starts, so a bad voter list fails before the logs are opened.
pub struct QuorumPlan {
    config: ControllerConfig,
}

impl QuorumPlan {
    /// `None` when `config` names no voters (a single node).
    pub fn from_config(config: &BrokerConfig) -> Result<Option<QuorumPlan>> {
        let Some(text) = config
            .controller_voters
            .as_deref()
            .filter(|t| !t.is_empty())
        else {
            return Ok(None);
        };
        let voters =
            Voters::parse(text).with_context(|| format!("controller.quorum.voters `{text}`"))?;
        let node_id = u64::try_from(config.node_id)
            .ok()
            .filter(|id| voters.contains(*id));
        let Some(node_id) = node_id else {
            bail!(
                "node.id {} is not among controller.quorum.voters `{text}`: only voters \
                 (combined mode) can join a quorum so far",
                config.node_id
            );
        };
        let listen_text = match &config.controller_listener {
            Some(address) => address.clone(),
            None => voters.address(node_id).unwrap_or_default().to_owned(),
        };
        let listen: SocketAddr = listen_text
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("controller.listener `{listen_text}` is not an address"))?;
        let mut controller_config =
            ControllerConfig::new(node_id, voters, listen, config.data_dir.join("controller"));
        controller_config.session_timeout = Duration::from_millis(config.broker_session_timeout_ms);
        let election = Duration::from_millis(config.controller_election_timeout_ms);
        controller_config.election_timeout_min = election;
        controller_config.election_timeout_max = election * 2;
        // Several heartbeats per election timeout, so a slow one does not
        // start an election.
        controller_config.heartbeat_interval = (election / 5).min(Duration::from_millis(150));
        Ok(Some(QuorumPlan {
            config: controller_config,
        }))
    }

    /// The cluster id every broker of this quorum reports when `cluster.id`
    /// is not set: derived from the voter ids, which every node of the
    /// cluster is configured with.
    pub fn cluster_id(&self) -> String {
        let ids: Vec<String> = self
            .config
            .voters
            .iter()
            .map(|(id, _)| id.to_string())
            .collect();
        format!("fjord-{:08x}", crc32c::crc32c(ids.join(",").as_bytes()))
    }

    /// Starts the controller.
    pub async fn start(self) -> Result<QuorumMember> {
        let config = self.config;
        let controller = Arc::new(
            Controller::start(config.clone())
                .await
                .context("cannot start the controller")?,
        );
        Ok(QuorumMember { controller, config })
    }
}

impl QuorumMember {
    /// The broker's tie to this controller.
    pub fn link(&self) -> fjord_broker::ClusterLink {
        let broker_id = i32::try_from(self.config.node_id).unwrap_or(i32::MAX);
        fjord_broker::ClusterLink::new(
            Arc::clone(&self.controller),
            broker_id,
            self.config.session_timeout,
        )
    }

    /// What the admin API shows at `/api/v1/cluster/quorum`.
    pub fn view(&self) -> Arc<dyn fjord_admin::QuorumView> {
        Arc::new(QuorumStatus {
            controller: Arc::clone(&self.controller),
            node_id: self.config.node_id,
            voters: self.config.voters.clone(),
        })
    }

    /// Stops the controller (after the broker stopped).
    pub async fn shutdown(self) {
        match Arc::try_unwrap(self.controller) {
            Ok(controller) => {
                if let Err(e) = controller.shutdown().await {
                    tracing::warn!("controller shutdown: {e}");
                }
            }
            // Still shared (the admin API outlived its shutdown): dropping
            // the last handle stops its tasks.
            Err(_) => tracing::warn!("controller still in use at shutdown"),
        }
    }
}

#[derive(Debug)]
struct QuorumStatus {
    controller: Arc<Controller>,
    node_id: u64,
    voters: Voters,
}

impl std::fmt::Debug for QuorumMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumMember").finish_non_exhaustive()
    }
}

impl fjord_admin::QuorumView for QuorumStatus {
    fn status(&self) -> serde_json::Value {
        let metadata = self.controller.metadata().borrow().clone();
        let brokers: Vec<_> = metadata
            .brokers
            .values()
            .map(|b| {
                json!({"id": b.id, "host": b.host, "port": b.port, "epoch": b.epoch, "fenced": b.fenced})
            })
            .collect();
        let voters: Vec<_> = self
            .voters
            .iter()
            .map(|(id, address)| json!({"id": id, "address": address}))
            .collect();
        json!({
            "node_id": self.node_id,
            "leader": self.controller.leader(),
            "voters": voters,
            "metadata_offset": metadata.offset,
            "brokers": brokers,
        })
    }
}
