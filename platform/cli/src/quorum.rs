//! Combined mode: a `fjord server` that is also a voter of the controller
//! quorum (`controller.quorum.voters`), as each of the first three brokers
//! of a small cluster is.
//!
//! This node runs its [`Controller`], registers its broker with the quorum
//! and keeps the broker's session alive with heartbeats, registering again
//! when the quorum no longer knows it. What the quorum decides is not yet
//! acted on: the broker still serves its partitions on its own (see
//! docs/cluster.md).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fjord_broker::BrokerConfig;
use fjord_controller::{
    Command, CommandOutcome, Controller, ControllerConfig, ControllerError, Voters,
};
use serde_json::json;

/// This node's controller and its broker's session with the quorum.
pub struct QuorumMember {
    controller: Arc<Controller>,
    /// The task that keeps the broker's session alive.
    session: tokio::task::JoinHandle<()>,
    config: ControllerConfig,
}

/// The broker as the quorum should know it.
pub struct Advertised {
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
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
        Ok(Some(QuorumPlan {
            config: controller_config,
        }))
    }

    /// Starts the controller and the broker's session with the quorum.
    pub async fn start(self, broker: Advertised) -> Result<QuorumMember> {
        let config = self.config;
        let controller = Arc::new(
            Controller::start(config.clone())
                .await
                .context("cannot start the controller")?,
        );
        let session = tokio::spawn(keep_session(
            Arc::clone(&controller),
            broker,
            config.session_timeout,
        ));
        Ok(QuorumMember {
            controller,
            session,
            config,
        })
    }
}

impl QuorumMember {
    /// What the admin API shows at `/api/v1/cluster/quorum`.
    pub fn view(&self) -> Arc<dyn fjord_admin::QuorumView> {
        Arc::new(QuorumStatus {
            controller: Arc::clone(&self.controller),
            node_id: self.config.node_id,
            voters: self.config.voters.clone(),
        })
    }

    /// Stops heartbeating, then the controller.
    pub async fn shutdown(self) {
        self.session.abort();
        let _ = self.session.await;
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

/// Registers the broker, then heartbeats every third of the session
/// timeout, as Kafka brokers do; registers again when the quorum answers
/// that the registration is gone or stale.
async fn keep_session(controller: Arc<Controller>, broker: Advertised, session: Duration) {
    let retry = Duration::from_millis(500);
    loop {
        let register = Command::RegisterBroker {
            broker_id: broker.broker_id,
            host: broker.host.clone(),
            port: broker.port,
            rack: None,
        };
        let epoch = match controller.propose(register).await {
            Ok(applied) => match applied.result {
                Ok(CommandOutcome::BrokerRegistered { broker_epoch }) => broker_epoch,
                other => {
                    tracing::warn!("broker registration refused: {other:?}");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            },
            Err(e) => {
                // No leader yet (the quorum is still forming), or it moved.
                tracing::debug!("broker registration: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        tracing::info!(
            broker_id = broker.broker_id,
            epoch,
            "broker registered with the controller quorum"
        );
        loop {
            tokio::time::sleep(session / 3).await;
            match controller.heartbeat(broker.broker_id, epoch).await {
                Ok(()) => {}
                Err(ControllerError::Rejected(e)) => {
                    tracing::warn!("heartbeat refused ({e}); registering again");
                    break;
                }
                Err(e) => tracing::debug!("heartbeat: {e}"),
            }
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
