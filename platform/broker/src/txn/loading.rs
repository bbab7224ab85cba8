//! What the coordinator knows, and the loading of it: each partition of
//! `__transaction_state` this broker leads is replayed once per leader
//! epoch, on a blocking thread (a long log must not hold an async worker
//! nor the ids of the other partitions). Until it is loaded, requests for
//! its ids wait a little and then get COORDINATOR_LOAD_IN_PROGRESS, which
//! clients retry, as Kafka's coordinator answers during its load.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::state::TxnMetadata;
use super::state_log;
use crate::error::TxnError;
use crate::partition::Partition;

/// How long a request waits for its partition's load before answering
/// COORDINATOR_LOAD_IN_PROGRESS: a short log loads within it, so the first
/// request after an election is usually answered, not sent back.
pub(super) const LOAD_WAIT: Duration = Duration::from_millis(100);

/// A partition of `__transaction_state` at a leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Load {
    Loading(i32),
    Loaded(i32),
}

/// The coordinator's maps. Behind a short lock, never held across an
/// await: changes of one id are serialized by its shard's lock in
/// [`super::TxnCoordinator`], not by this one.
#[derive(Debug, Default)]
pub(super) struct Known {
    pub(super) txns: HashMap<String, TxnMetadata>,
    /// Partitions of `__transaction_state` loaded or being loaded here,
    /// with the leader epoch of the load.
    pub(super) loaded: HashMap<i32, Load>,
    /// Ids whose prepared end is being completed (markers in flight).
    pub(super) completing: HashSet<String>,
}

/// [`Known`], shared with the loading threads, and a signal bumped after
/// each load.
#[derive(Debug)]
pub(super) struct Core {
    pub(super) known: Mutex<Known>,
    loads: watch::Sender<u64>,
}

impl Default for Core {
    fn default() -> Self {
        Core {
            known: Mutex::default(),
            loads: watch::Sender::new(0),
        }
    }
}

impl Core {
    /// The leader epoch `partition`'s ids are loaded at, or None while
    /// they load (a load is started unless one at this epoch runs).
    pub(super) fn start_load(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        count: i32,
    ) -> Option<i32> {
        let index = partition.index();
        let epoch = partition.leader_epoch();
        let mut known = self.known.lock();
        match known.loaded.get(&index) {
            Some(Load::Loaded(e)) if *e == epoch => return Some(epoch),
            Some(Load::Loading(e)) if *e == epoch => return None,
            _ => {}
        }
        known.loaded.insert(index, Load::Loading(epoch));
        drop(known);
        let core = Arc::clone(self);
        let partition = Arc::clone(partition);
        tokio::task::spawn_blocking(move || core.load(&partition, epoch, count));
        None
    }

    /// Replays `partition` (a new leader's log is the truth, as Kafka's
    /// coordinator loads it on election) and takes its ids, unless a
    /// newer load superseded this one meanwhile.
    pub(super) fn load(&self, partition: &Partition, epoch: i32, count: i32) {
        let index = partition.index();
        let loaded = state_log::load(partition);
        let ids = loaded.len();
        {
            let mut known = self.known.lock();
            if known.loaded.get(&index) != Some(&Load::Loading(epoch)) {
                return;
            }
            known
                .txns
                .retain(|id, _| state_log::partition_for(id, count) != index);
            known.txns.extend(loaded);
            known.loaded.insert(index, Load::Loaded(epoch));
        }
        tracing::info!(
            partition = index,
            leader_epoch = epoch,
            ids,
            "transaction state loaded"
        );
        self.loads.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The leader epoch `partition`'s ids are loaded at, waiting up to
    /// [`LOAD_WAIT`] for their load; LoadInProgress after that.
    pub(super) async fn ready(
        self: &Arc<Self>,
        partition: &Arc<Partition>,
        count: i32,
    ) -> Result<i32, TxnError> {
        // Subscribed before looking, so a load ending in between is seen.
        let mut loads = self.loads.subscribe();
        let deadline = tokio::time::Instant::now() + LOAD_WAIT;
        loop {
            if let Some(epoch) = self.start_load(partition, count) {
                return Ok(epoch);
            }
            if !matches!(
                tokio::time::timeout_at(deadline, loads.changed()).await,
                Ok(Ok(()))
            ) {
                return Err(TxnError::LoadInProgress);
            }
        }
    }

    /// Whether `partition`'s ids are loaded at `epoch` (still).
    pub(super) fn loaded_at(known: &Known, partition: i32, epoch: i32) -> bool {
        known.loaded.get(&partition) == Some(&Load::Loaded(epoch))
    }
}
