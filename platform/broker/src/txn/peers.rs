//! The coordinator's connections to the other brokers, for WriteTxnMarkers
//! (and a partition leader's KIP-890 verifications, `verify.rs`):
//! kept between transactions instead of made (and logged into) for every
//! one, as Kafka's TransactionMarkerChannelManager keeps one channel per
//! broker. A connection serves one request at a time; concurrent
//! completions to the same broker take an idle one or make another.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use parking_lot::Mutex;

use crate::broker_state::BrokerState;
use crate::replication::peer::{PeerConnection, PeerError};

/// Idle connections kept per broker: more than this many concurrent
/// completions to one broker make connections that are closed after use.
const IDLE_PER_BROKER: usize = 4;

/// Idle connections to each broker, with the address each was made to (a
/// broker that moved gets new ones).
#[derive(Default)]
pub(super) struct MarkerPeers {
    idle: Mutex<HashMap<i32, Vec<(String, PeerConnection)>>>,
}

impl fmt::Debug for MarkerPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle: usize = self.idle.lock().values().map(Vec::len).sum();
        f.debug_struct("MarkerPeers").field("idle", &idle).finish()
    }
}

impl MarkerPeers {
    /// `request` to `broker` on an idle connection, or a new one. A kept
    /// connection that fails (the peer restarted since) is dropped and the
    /// request sent once more on a new one.
    pub(super) async fn call(
        &self,
        state: &BrokerState,
        broker: i32,
        api: ApiKey,
        version: i16,
        request: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, PeerError> {
        let addr = crate::replication::peer_addr(state, broker)?;
        let kept = {
            let mut idle = self.idle.lock();
            let list = idle.entry(broker).or_default();
            list.retain(|(a, _)| *a == addr);
            list.pop()
        };
        let mut connection = match kept {
            Some((_, mut connection)) => {
                match connection
                    .call(api, version, request.clone(), timeout)
                    .await
                {
                    Ok(answer) => {
                        self.keep(broker, addr, connection);
                        return Ok(answer);
                    }
                    Err(e) => {
                        tracing::debug!(broker, error = %e, "kept peer connection failed; a new one");
                    }
                }
                crate::replication::connect_peer(state, &addr, timeout).await?
            }
            None => crate::replication::connect_peer(state, &addr, timeout).await?,
        };
        let answer = connection.call(api, version, request, timeout).await?;
        self.keep(broker, addr, connection);
        Ok(answer)
    }

    fn keep(&self, broker: i32, addr: String, connection: PeerConnection) {
        let mut idle = self.idle.lock();
        let list = idle.entry(broker).or_default();
        if list.len() < IDLE_PER_BROKER {
            list.push((addr, connection));
        }
    }
}
