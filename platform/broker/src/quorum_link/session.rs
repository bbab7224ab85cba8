//! The broker's session with the controller quorum: register (again after
//! every restart or refusal), then heartbeat every third of the session
//! timeout, as Kafka brokers do.

use std::sync::Arc;
use std::time::Duration;

use fjord_controller::{BrokerListener, Command, CommandOutcome, ControllerError};
use tokio::sync::watch;

use super::ClusterLink;
use crate::shutdown::stopped;

/// What this broker registers as, and how often it heartbeats.
#[derive(Debug)]
pub(super) struct Registration {
    /// The inter-broker listener's advertised host and port.
    pub host: String,
    pub port: u16,
    /// Every listener, as clients of each are told about this broker.
    pub listeners: Vec<BrokerListener>,
    /// A third of the broker session timeout.
    pub interval: Duration,
}

/// Runs until the broker shuts down.
pub(super) async fn keep(
    link: Arc<ClusterLink>,
    registration: Registration,
    mut shutdown: watch::Receiver<bool>,
) {
    tokio::select! {
        () = session(&registration, &link) => {}
        _ = stopped(&mut shutdown) => {}
    }
}

async fn session(registration: &Registration, link: &ClusterLink) {
    let retry = Duration::from_millis(500);
    let interval = registration.interval;
    loop {
        let register = Command::RegisterBrokerListeners {
            broker_id: link.broker_id,
            host: registration.host.clone(),
            port: registration.port,
            rack: None,
            listeners: registration.listeners.clone(),
        };
        let (epoch, offset) = match link.propose(register).await {
            Ok(applied) => match applied.result {
                Ok(CommandOutcome::BrokerRegistered { broker_epoch }) => {
                    (broker_epoch, applied.offset)
                }
                other => {
                    tracing::warn!("broker registration refused: {other:?}");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            },
            Err(e) => {
                // No active controller yet (the quorum is forming), or it moved.
                tracing::debug!("broker registration: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        tracing::info!(
            broker_id = link.broker_id,
            epoch,
            "broker registered with the controller quorum"
        );
        link.registered.send_replace(Some(offset));
        // The lease starts once this broker has applied the metadata up to
        // its registration: what changed while it was away (leaderships
        // moved off it when it was fenced) must be in its partitions' roles
        // before it serves any of them as leader again.
        let mut applied = link.applied.subscribe();
        if applied.wait_for(|a| *a >= offset).await.is_err() {
            return;
        }
        link.session_renewed();
        let mut pause = interval;
        loop {
            tokio::time::sleep(pause).await;
            let lapsed = !link.session_current();
            let answer = link.controller.heartbeat(link.broker_id, epoch).await;
            // The session may also lapse while the heartbeat is under way
            // (the process stopped with it in flight): an answer that comes
            // after the lease ran out must not renew it either.
            let lapsed = lapsed || !link.session_current();
            match answer {
                // A broker that was stopped or cut off past its session may
                // have been fenced and replaced as leader; its metadata may
                // not show it yet. Registering again gives a point in the
                // metadata log to catch up to before the lease resumes.
                Ok(()) if lapsed => {
                    tracing::info!("session lapsed; registering again");
                    break;
                }
                Ok(()) => {
                    link.session_renewed();
                    pause = interval;
                }
                Err(ControllerError::Rejected(e)) => {
                    tracing::warn!("heartbeat refused ({e}); registering again");
                    break;
                }
                Err(e) => {
                    // The active controller moved or is being elected: try
                    // again soon, so the session (and this broker's lease
                    // on its leaderships) does not lapse over one miss.
                    tracing::debug!("heartbeat: {e}");
                    pause = retry.min(interval);
                }
            }
        }
    }
}
