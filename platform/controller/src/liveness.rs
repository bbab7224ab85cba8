//! Broker liveness on the active controller: last heartbeat times live in
//! memory only, and a background task fences brokers whose session expired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::commands::Command;
use crate::controller::ControllerCore;
use crate::model::{BrokerId, ClusterMetadata};

/// Last heartbeat per broker, valid for one leadership term.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    /// The term these times were recorded in; a new term starts over.
    term: Option<u64>,
    /// Broker → (epoch, last heartbeat).
    last_seen: HashMap<BrokerId, (i64, Instant)>,
}

impl Sessions {
    /// Record a heartbeat of `broker` at `epoch`.
    pub(crate) fn record(&self, term: u64, broker: BrokerId, epoch: i64, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.start_term(term);
        s.last_seen.insert(broker, (epoch, now));
    }

    /// Forget everything (this node stopped leading).
    pub(crate) fn clear(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.term = None;
        s.last_seen.clear();
    }

    /// Unfenced brokers whose last heartbeat is older than `timeout`. A broker
    /// (or broker epoch) not seen yet in this term starts its session now,
    /// which gives every broker a full session of grace after an election.
    pub(crate) fn expired(
        &self,
        term: u64,
        metadata: &ClusterMetadata,
        now: Instant,
        timeout: Duration,
    ) -> Vec<(BrokerId, i64)> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.start_term(term);
        s.last_seen
            .retain(|id, (epoch, _)| metadata.broker(*id).is_some_and(|b| b.epoch == *epoch));
        let mut out = Vec::new();
        for broker in metadata.brokers.values().filter(|b| !b.fenced) {
            let (_, seen) = *s.last_seen.entry(broker.id).or_insert((broker.epoch, now));
            if now.saturating_duration_since(seen) > timeout {
                out.push((broker.id, broker.epoch));
            }
        }
        out
    }
}

impl SessionState {
    fn start_term(&mut self, term: u64) {
        if self.term != Some(term) {
            self.term = Some(term);
            self.last_seen.clear();
        }
    }
}

/// Runs on every controller; acts only while this node is the leader.
pub(crate) async fn run(core: Arc<ControllerCore>) {
    let timeout = core.config.session_timeout;
    let period = (timeout / 5).clamp(Duration::from_millis(20), Duration::from_millis(500));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(term) = core.leading_term() else {
            core.sessions.clear();
            continue;
        };
        let metadata = core.store.current();
        let expired = core
            .sessions
            .expired(term, &metadata, Instant::now(), timeout);
        for (broker_id, broker_epoch) in expired {
            info!(broker_id, broker_epoch, "broker session expired: fencing");
            let command = Command::FenceBroker {
                broker_id,
                broker_epoch,
            };
            match core.raft.client_write(command).await {
                Ok(r) => {
                    if let Err(e) = r.data.result {
                        warn!(broker_id, error = %e, "fencing was rejected");
                    }
                }
                Err(e) => warn!(broker_id, error = %e, "could not propose fencing"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BrokerRegistration;

    fn metadata(fenced: bool) -> ClusterMetadata {
        let mut md = ClusterMetadata::default();
        md.brokers.insert(
            1,
            BrokerRegistration {
                id: 1,
                host: "h".into(),
                port: 1,
                rack: None,
                epoch: 7,
                fenced,
            },
        );
        md
    }

    #[test]
    fn grace_then_expiry_and_reset_on_new_term() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(1);
        let md = metadata(false);
        assert!(
            s.expired(1, &md, t0, timeout).is_empty(),
            "grace starts now"
        );
        assert_eq!(
            s.expired(1, &md, t0 + Duration::from_millis(1500), timeout),
            vec![(1, 7)]
        );
        s.record(1, 1, 7, t0 + Duration::from_millis(1500));
        assert!(
            s.expired(1, &md, t0 + Duration::from_millis(2000), timeout)
                .is_empty()
        );
        // A new term gives a fresh full session.
        assert!(
            s.expired(2, &md, t0 + Duration::from_secs(10), timeout)
                .is_empty()
        );
        // Fenced brokers are not reported again.
        assert!(
            s.expired(2, &metadata(true), t0 + Duration::from_secs(60), timeout)
                .is_empty()
        );
    }
}
