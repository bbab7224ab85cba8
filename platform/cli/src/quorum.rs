//! A `fjord server` in a cluster (`controller.quorum.voters`): either a
//! voter of the controller quorum as well as a broker (combined mode, as
//! each of the first three brokers of a small cluster is), or, when its
//! `node.id` is not among the voters, a broker only that follows the quorum
//! through a controller client (Kafka KRaft's broker role).
//!
//! Either way the broker (`fjord_broker::ClusterLink`) registers with the
//! quorum, heartbeats, and takes its topics and partition roles from its
//! metadata (see docs/cluster.md).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fjord_broker::BrokerConfig;
use fjord_controller::{
    ClientConfig, Controller, ControllerClient, ControllerConfig, QuorumHandle, Voters,
};
use serde_json::json;

/// This node's part in the running quorum.
pub struct QuorumMember {
    handle: QuorumHandle,
    node_id: u64,
    voters: Voters,
    /// Stops the reloading of the links' certificates.
    stop_reload: tokio::sync::watch::Sender<bool>,
}

/// This node's part in the quorum, read from the broker config before
/// anything starts, so a bad voter list (or TLS files for the quorum's
/// links that do not load) fails before the logs are opened.
pub struct QuorumPlan {
    role: Role,
    /// How the links are carried (`controller.listener.names`).
    links: fjord_broker::ControllerLinks,
}

enum Role {
    /// A voter: runs its controller.
    Voter(ControllerConfig),
    /// Not a voter: a broker that follows the voters.
    Broker { node_id: u64, voters: Voters },
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
            .with_context(|| format!("node.id {} is not a valid node id", config.node_id))?;
        let links = fjord_broker::ControllerLinks::from_config(config)
            .context("the controller quorum's links")?;
        if !voters.contains(node_id) {
            if let Some(listener) = &config.controller_listener {
                // Only voters run a controller: the setting is harmless but
                // probably a mistake in the voter list, so say so.
                tracing::warn!(
                    node_id,
                    %listener,
                    "controller.listener is ignored: this node is not among the voters"
                );
            }
            return Ok(Some(QuorumPlan {
                role: Role::Broker { node_id, voters },
                links,
            }));
        }
        // The controller listener of `listeners`, else `controller.listener`,
        // else this node's own voter address.
        let listen_text = match (&links.listen, &config.controller_listener) {
            (Some(address), _) | (None, Some(address)) => address.clone(),
            (None, None) => voters.address(node_id).unwrap_or_default().to_owned(),
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
            role: Role::Voter(controller_config),
            links,
        }))
    }

    /// The cluster id every broker of this quorum reports when `cluster.id`
    /// is not set: derived from the voter ids, which every node of the
    /// cluster is configured with.
    pub fn cluster_id(&self) -> String {
        let voters = match &self.role {
            Role::Voter(config) => &config.voters,
            Role::Broker { voters, .. } => voters,
        };
        let ids: Vec<String> = voters.iter().map(|(id, _)| id.to_string()).collect();
        format!("fjord-{:08x}", crc32c::crc32c(ids.join(",").as_bytes()))
    }

    /// Starts the controller, or the controller client.
    pub async fn start(self) -> Result<QuorumMember> {
        let (stop_reload, reload_stopped) = tokio::sync::watch::channel(false);
        let security = self.links.security(reload_stopped);
        match (self.links.uses_tls(), self.links.uses_sasl()) {
            (true, true) => tracing::info!(
                "controller quorum links over TLS with a SCRAM login (controller.listener.names)"
            ),
            (true, false) => {
                tracing::info!("controller quorum links over TLS (controller.listener.names)")
            }
            (false, true) => tracing::info!(
                "controller quorum links log in with SCRAM, in plain TCP (controller.listener.names)"
            ),
            (false, false) => {}
        }
        match self.role {
            Role::Voter(mut config) => {
                config.security = security;
                let controller = Controller::start(config.clone())
                    .await
                    .context("cannot start the controller")?;
                Ok(QuorumMember {
                    handle: QuorumHandle::Voter(Arc::new(controller)),
                    node_id: config.node_id,
                    voters: config.voters,
                    stop_reload,
                })
            }
            Role::Broker { node_id, voters } => {
                let config = ClientConfig {
                    security,
                    ..ClientConfig::default()
                };
                let client = ControllerClient::connect(voters.clone(), config)
                    .context("cannot start the controller client")?;
                tracing::info!(
                    node_id,
                    %voters,
                    "not a controller voter: following the quorum as a broker"
                );
                Ok(QuorumMember {
                    handle: QuorumHandle::Client(Arc::new(client)),
                    node_id,
                    voters,
                    stop_reload,
                })
            }
        }
    }
}

impl QuorumMember {
    /// The broker's tie to the quorum; its session lapses after
    /// `session_timeout` without an accepted heartbeat.
    pub fn link(&self, session_timeout: Duration) -> fjord_broker::ClusterLink {
        let broker_id = i32::try_from(self.node_id).unwrap_or(i32::MAX);
        fjord_broker::ClusterLink::new(self.handle.clone(), broker_id, session_timeout)
    }

    /// What the admin API shows at `/api/v1/cluster/quorum`.
    pub fn view(&self) -> Arc<dyn fjord_http::QuorumView> {
        Arc::new(QuorumStatus {
            handle: self.handle.clone(),
            node_id: self.node_id,
            voters: self.voters.clone(),
        })
    }

    /// Stops the controller or the client (after the broker stopped).
    pub async fn shutdown(self) {
        self.stop_reload.send_replace(true);
        match self.handle {
            QuorumHandle::Voter(controller) => match Arc::try_unwrap(controller) {
                Ok(controller) => {
                    if let Err(e) = controller.shutdown().await {
                        tracing::warn!("controller shutdown: {e}");
                    }
                }
                // Still shared (the admin API outlived its shutdown):
                // dropping the last handle stops its tasks.
                Err(_) => tracing::warn!("controller still in use at shutdown"),
            },
            QuorumHandle::Client(client) => {
                if let Ok(client) = Arc::try_unwrap(client) {
                    client.shutdown().await;
                }
                // Else the last handle's drop stops it: it holds no files.
            }
        }
    }
}

#[derive(Debug)]
struct QuorumStatus {
    handle: QuorumHandle,
    node_id: u64,
    voters: Voters,
}

impl std::fmt::Debug for QuorumMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumMember").finish_non_exhaustive()
    }
}

impl fjord_http::QuorumView for QuorumStatus {
    fn status(&self) -> serde_json::Value {
        let metadata = self.handle.metadata().borrow().clone();
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
        let role = match self.handle {
            QuorumHandle::Voter(_) => "voter",
            QuorumHandle::Client(_) => "broker",
        };
        json!({
            "node_id": self.node_id,
            "role": role,
            "leader": self.handle.leader(),
            "voters": voters,
            "metadata_offset": metadata.offset,
            "brokers": brokers,
        })
    }
}
