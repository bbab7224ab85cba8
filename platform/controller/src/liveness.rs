//! Broker liveness on the active controller: last heartbeat times live in
//! memory only, and a background task fences brokers whose session expired.
//!
//! A broker that has missed a heartbeat is also probed: when nothing serves
//! its advertised address any more (the connection is refused, or accepted
//! and closed at once by a proxy in front of it), its process is gone and
//! it is fenced without waiting for the rest of its session. That takes
//! most of the session timeout out of a crashed broker's failover,
//! including right after an election, when the new active controller has
//! no heartbeat history and would otherwise give every broker a full
//! session. A probe that times out (a hung process, a dead machine, a cut
//! network) proves nothing: those wait for the session timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
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
    /// Broker → (epoch, last heartbeat, or the start of its grace).
    last_seen: HashMap<BrokerId, (i64, Instant)>,
    /// Broker → its last heartbeat in this term (no grace).
    heard: HashMap<BrokerId, Instant>,
}

impl Sessions {
    /// Record a heartbeat of `broker` at `epoch`.
    pub(crate) fn record(&self, term: u64, broker: BrokerId, epoch: i64, now: Instant) {
        let mut s = self.state.lock();
        s.start_term(term);
        s.last_seen.insert(broker, (epoch, now));
        s.heard.insert(broker, now);
    }

    /// Forget everything (this node stopped leading).
    pub(crate) fn clear(&self) {
        let mut s = self.state.lock();
        s.term = None;
        s.last_seen.clear();
        s.heard.clear();
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
        let mut s = self.state.lock();
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

impl Sessions {
    /// Unfenced brokers worth probing: silent for longer than `after` (a
    /// missed heartbeat), or, with `unheard`, not heard from at all in this
    /// term (a new active controller probes every broker at once: the one
    /// that died with the old controller is found right after the
    /// election).
    pub(crate) fn silent(
        &self,
        term: u64,
        metadata: &ClusterMetadata,
        now: Instant,
        after: Duration,
        unheard: bool,
    ) -> Vec<(BrokerId, i64)> {
        let mut s = self.state.lock();
        s.start_term(term);
        metadata
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| match s.heard.get(&b.id) {
                Some(&seen) => now.saturating_duration_since(seen) > after,
                None => unheard,
            })
            .map(|b| (b.id, b.epoch))
            .collect()
    }
}

/// How long a probe waits to connect, and then for the connection to be
/// closed on it.
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether nothing serves `host:port` any more: the connection is refused,
/// or accepted and closed without a byte (what a proxy in front of a dead
/// broker does). A Kafka listener keeps a new idle connection open, so a
/// probe that times out answers `false`, as does any other failure: only
/// a definite "gone" fences early. A connection accepted and reset is a
/// live broker refusing it over its connection limits (`max.connections`
/// and the like, or out of descriptors: Fjord's broker resets those), so
/// it is not "gone" either: a full broker is not fenced for being full.
pub(crate) async fn listener_gone(host: &str, port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let connect = tokio::net::TcpStream::connect((host, port));
    let mut stream = match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return e.kind() == std::io::ErrorKind::ConnectionRefused,
        Err(_) => return false,
    };
    let mut byte = [0u8; 1];
    // A reset (or anything else) is not "gone": see above.
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, stream.read(&mut byte)).await,
        Ok(Ok(0))
    )
}

impl SessionState {
    fn start_term(&mut self, term: u64) {
        if self.term != Some(term) {
            self.term = Some(term);
            self.last_seen.clear();
            self.heard.clear();
        }
    }
}

/// Runs on every controller; acts only while this node is the leader.
pub(crate) async fn run(core: Arc<ControllerCore>) {
    let timeout = core.config.session_timeout;
    let started = Instant::now();
    let period = (timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(term) = core.leading_term() else {
            core.sessions.clear();
            continue;
        };
        let metadata = core.store.current();
        crate::secret::ensure(&core, &metadata).await;
        let now = Instant::now();
        let expired = core.sessions.expired(term, &metadata, now, timeout);
        for (broker_id, broker_epoch) in expired {
            info!(broker_id, broker_epoch, "broker session expired: fencing");
            fence(&core, broker_id, broker_epoch).await;
        }
        // Brokers heartbeat every third of the session timeout: silent for
        // half of it, one has surely been missed. Brokers not heard from
        // yet are probed only by a controller that has run for a session:
        // one that just started may be one of a whole cluster starting,
        // whose brokers bind their listeners after their controllers.
        let unheard = now.saturating_duration_since(started) >= timeout;
        let silent = core
            .sessions
            .silent(term, &metadata, now, timeout / 2, unheard);
        let probes: Vec<_> = silent
            .into_iter()
            .filter_map(|(id, epoch)| {
                let broker = metadata.broker(id)?;
                let (host, port) = (broker.host.clone(), broker.port);
                Some(tokio::spawn(async move {
                    (id, epoch, listener_gone(&host, port).await)
                }))
            })
            .collect();
        for probe in probes {
            if let Ok((broker_id, broker_epoch, true)) = probe.await {
                info!(
                    broker_id,
                    broker_epoch, "broker missed a heartbeat and its listener is gone: fencing"
                );
                fence(&core, broker_id, broker_epoch).await;
            }
        }
    }
}

async fn fence(core: &ControllerCore, broker_id: BrokerId, broker_epoch: i64) {
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

    #[test]
    fn a_broker_that_missed_a_heartbeat_is_worth_probing() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let md = metadata(false);
        let after = Duration::from_millis(333);
        assert!(
            s.silent(1, &md, t0, after, false).is_empty(),
            "not heard from, and not asked to probe such brokers"
        );
        assert_eq!(
            s.silent(1, &md, t0, after, true),
            vec![(1, 7)],
            "not heard from in this term: probed at once"
        );
        s.record(1, 1, 7, t0);
        assert!(s.silent(1, &md, t0, after, true).is_empty(), "heard");
        assert_eq!(
            s.silent(1, &md, t0 + Duration::from_millis(400), after, false),
            vec![(1, 7)],
            "a missed heartbeat"
        );
        s.record(1, 1, 7, t0 + Duration::from_millis(400));
        assert!(
            s.silent(1, &md, t0 + Duration::from_millis(500), after, true)
                .is_empty()
        );
        assert!(
            s.silent(1, &metadata(true), t0 + Duration::from_secs(5), after, true)
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_probe_tells_a_gone_listener_from_a_live_or_silent_one() {
        // Nothing listens: refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert!(listener_gone("127.0.0.1", port).await, "refused");

        // A live listener keeps the connection open: not gone.
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = live.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let (conn, _) = live.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(conn);
        });
        assert!(!listener_gone("127.0.0.1", port).await, "held open");
        holder.abort();

        // A proxy whose broker is dead accepts and closes at once: gone.
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = proxy.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (conn, _) = proxy.accept().await.unwrap();
            drop(conn);
        });
        assert!(
            listener_gone("127.0.0.1", port).await,
            "accepted and closed"
        );

        // A live broker over its connection limits accepts and resets:
        // not gone.
        let full = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = full.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (conn, _) = full.accept().await.unwrap();
            conn.set_zero_linger().unwrap();
            drop(conn);
        });
        assert!(
            !listener_gone("127.0.0.1", port).await,
            "accepted and reset"
        );
    }
}
