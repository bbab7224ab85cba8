//! The transaction coordinator (Kafka's TransactionCoordinator, classic
//! protocol, transaction.version 1): each transactional id's producer,
//! state and partitions, persisted to `__transaction_state`
//! ([`state_log`]) and coordinated by the leader of the id's partition of
//! it, with the partition's leader epoch as coordinator epoch.
//!
//! - [`state`]: the states and the rules of their transitions;
//! - [`record`]: the records of `__transaction_state` in Kafka's schemas;
//! - [`state_log`]: the topic: creation, appends, loading;
//! - [`markers`]: writing the markers that end a transaction on its
//!   partitions, here or through WriteTxnMarkers to their leaders;
//! - [`timeouts`]: the periodic abort of transactions past their timeout
//!   and the completion of prepared ones a previous leader left;
//! - [`writer`]: the in-process transactional producer (pipelines).
//!
//! Changes of one id are serialized by the lock of the id's shard (one
//! of [`SHARDS`], by the id's hash): each is validated, persisted, then
//! taken, so what a client is told is what a new coordinator will load.
//! Ids of different shards persist concurrently, their appends to the
//! same partition of `__transaction_state` ordered by the partition; the
//! maps themselves sit behind a short lock never held across an await
//! ([`loading`], which also loads a partition's ids off the async workers
//! and answers COORDINATOR_LOAD_IN_PROGRESS meanwhile). Markers are
//! written outside the id's lock; meanwhile the id is in PrepareCommit /
//! PrepareAbort and other requests for it are CONCURRENT_TRANSACTIONS, as
//! in Kafka.
//!
//! The coordinator works on the whole broker (its registry, its groups,
//! its peers), so unlike the group coordinator it is handed the
//! `BrokerState`.

#[cfg(test)]
mod load_tests;
mod loading;
pub(crate) mod markers;
mod peers;
pub(crate) mod record;
pub(crate) mod state;
pub(crate) mod state_log;
pub(crate) mod timeouts;
pub(crate) mod verify;
pub(crate) mod writer;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::TxnError;
use crate::partition::Partition;
use loading::Core;
use state::{EndStep, TxnMetadata};

/// The internal topic's name (Kafka's).
pub(crate) const TXN_TOPIC: &str = "__transaction_state";

/// How long EndTxn waits for its markers before answering anyway (the
/// outcome is decided once PrepareCommit/PrepareAbort is persisted; the
/// markers are retried until written).
const END_WAIT: Duration = Duration::from_secs(10);

/// Pause between two rounds of markers that did not all get written.
const MARKER_RETRY: Duration = Duration::from_millis(200);

/// Locks serializing the changes of ids: two ids share one only when their
/// hashes meet, which costs a wait, never a wrong answer. A lock per id
/// would need its own map and its own cleanup for the same effect.
const SHARDS: usize = 64;

/// The transaction coordinator of one broker.
#[derive(Debug)]
pub(crate) struct TxnCoordinator {
    core: Arc<Core>,
    shards: Box<[Mutex<()>]>,
    /// Connections kept to the other brokers for WriteTxnMarkers.
    peers: peers::MarkerPeers,
}

impl Default for TxnCoordinator {
    fn default() -> Self {
        TxnCoordinator {
            core: Arc::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(())).collect(),
            peers: peers::MarkerPeers::default(),
        }
    }
}

/// The lock of `id`'s shard, with the id's partition led here and loaded
/// at `epoch`.
struct Locked<'a> {
    _shard: MutexGuard<'a, ()>,
    partition: Arc<Partition>,
    epoch: i32,
}

impl TxnCoordinator {
    /// Takes the lock for `id`: NOT_COORDINATOR unless this broker leads
    /// its partition (the topic is created if missing),
    /// COORDINATOR_LOAD_IN_PROGRESS while the partition loads.
    async fn lock(&self, state: &BrokerState, id: &str) -> Result<Locked<'_>, TxnError> {
        let topic = state_log::topic(state).await?;
        let partition = state_log::led_partition(&topic, id)?;
        let mut hasher = DefaultHasher::new();
        id.hash(&mut hasher);
        let shard = self.shards[(hasher.finish() % SHARDS as u64) as usize]
            .lock()
            .await;
        let epoch = self.core.ready(&partition, topic.partition_count()).await?;
        Ok(Locked {
            _shard: shard,
            partition,
            epoch,
        })
    }

    /// `f` of `id`'s state as known now.
    fn with<R>(&self, id: &str, f: impl FnOnce(Option<&TxnMetadata>) -> R) -> R {
        f(self.core.known.lock().txns.get(id))
    }

    /// Marks `id`'s prepared end as being completed.
    fn completing(&self, id: &str, on: bool) {
        let mut known = self.core.known.lock();
        if on {
            known.completing.insert(id.to_owned());
        } else {
            known.completing.remove(id);
        }
    }

    /// Persists `next` and takes it as its id's state, unless the
    /// partition was taken over (reloaded at another epoch) meanwhile:
    /// then NOT_COORDINATOR, and the new load has the truth.
    async fn store(
        &self,
        state: &BrokerState,
        locked: &Locked<'_>,
        next: TxnMetadata,
    ) -> Result<(), TxnError> {
        state_log::persist(state, &locked.partition, &next).await?;
        let mut known = self.core.known.lock();
        if !Core::loaded_at(&known, locked.partition.index(), locked.epoch) {
            return Err(TxnError::NotCoordinator);
        }
        known.txns.insert(next.transactional_id.clone(), next);
        Ok(())
    }

    /// InitProducerId with a transactional id: a new producer id for a new
    /// id, else the epoch bumped, which fences the previous producer. An
    /// open transaction of the previous producer is aborted first
    /// (CONCURRENT_TRANSACTIONS meanwhile: the client retries). `expected`
    /// is KIP-360's current (id, epoch) of a v3+ request.
    pub(crate) async fn init(
        &self,
        state: &Arc<BrokerState>,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), TxnError> {
        if timeout_ms <= 0 || timeout_ms > state.config().transaction_max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let locked = self.lock(state, id).await?;
        let now = now_ms();
        let current = self.with(id, |t| t.cloned());
        let next = match current {
            // A new id gets a new producer id whatever the request names:
            // Kafka's isValidProducerId accepts any expected id and epoch
            // for metadata it has just created (a producer recovering from
            // UNKNOWN_PRODUCER_ID; @platformatic/kafka sends id 0, epoch 0
            // on its first InitProducerId).
            None => TxnMetadata::new(id, state.producer_ids().allocate(), timeout_ms, now),
            Some(txn) => {
                // A retry of an InitProducerId whose answer was lost.
                if let Some((pid, epoch)) = expected
                    && pid == txn.producer_id
                    && txn.last_producer_epoch >= 0
                    && epoch == txn.last_producer_epoch
                    && txn.status == state::TxnStatus::Empty
                {
                    return Ok((txn.producer_id, txn.producer_epoch));
                }
                if let Some(fenced) = txn.fence(now) {
                    if let Some((pid, epoch)) = expected {
                        txn.check_producer(pid, epoch)?;
                    }
                    self.store(state, &locked, fenced.clone()).await?;
                    let coordinator_epoch = locked.partition.leader_epoch();
                    self.completing(id, true);
                    drop(locked);
                    tracing::info!(
                        id,
                        "open transaction aborted: a new producer of the id took over"
                    );
                    let task = tokio::spawn(complete(Arc::clone(state), fenced, coordinator_epoch));
                    let _ = tokio::time::timeout(END_WAIT, task).await;
                    return Err(TxnError::ConcurrentTransactions);
                }
                txn.bump(
                    expected,
                    timeout_ms,
                    || state.producer_ids().allocate(),
                    now,
                )?
            }
        };
        let answer = (next.producer_id, next.producer_epoch);
        self.store(state, &locked, next).await?;
        tracing::debug!(
            id,
            producer_id = answer.0,
            epoch = answer.1,
            "transactional producer initialized"
        );
        Ok(answer)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `partitions` join the
    /// transaction (which begins with the first).
    pub(crate) async fn add_partitions(
        &self,
        state: &BrokerState,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), TxnError> {
        let locked = self.lock(state, id).await?;
        let next = self.with(id, |txn| {
            txn.ok_or(TxnError::InvalidProducerIdMapping)?
                .add_partitions(producer_id, epoch, partitions, now_ms())
        })?;
        if let Some(next) = next {
            self.store(state, &locked, next).await?;
        }
        Ok(())
    }

    /// Whether `partitions` are all in `id`'s open transaction of this
    /// producer (AddPartitionsToTxn v4+ verify_only, KIP-890 part 1).
    pub(crate) async fn verify(
        &self,
        state: &BrokerState,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        let _locked = self.lock(state, id).await?;
        self.with(id, |txn| {
            let txn = txn.ok_or(TxnError::InvalidProducerIdMapping)?;
            txn.check_producer(producer_id, epoch)?;
            let open = txn.status == state::TxnStatus::Ongoing;
            Ok(partitions
                .iter()
                .map(|p| open && txn.partitions.contains(p))
                .collect())
        })
    }

    /// EndTxn: PrepareCommit / PrepareAbort persisted, markers written,
    /// CompleteCommit / CompleteAbort persisted. Answers once complete,
    /// or after [`END_WAIT`] with the markers still being retried.
    pub(crate) async fn end(
        &self,
        state: &Arc<BrokerState>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), TxnError> {
        let locked = self.lock(state, id).await?;
        let step = self.with(id, |txn| {
            txn.ok_or(TxnError::InvalidProducerIdMapping)?
                .end(producer_id, epoch, commit, now_ms())
        })?;
        let prepared = match step {
            EndStep::Done => return Ok(()),
            EndStep::Prepare(prepared) => prepared,
        };
        self.store(state, &locked, prepared.clone()).await?;
        let coordinator_epoch = locked.partition.leader_epoch();
        self.completing(id, true);
        drop(locked);
        let task = tokio::spawn(complete(Arc::clone(state), prepared, coordinator_epoch));
        if tokio::time::timeout(END_WAIT, task).await.is_err() {
            tracing::info!(
                id,
                "transaction markers still being written; EndTxn answered"
            );
        }
        Ok(())
    }

    /// `id`'s state, if this broker coordinates it and knows it.
    pub(crate) async fn describe(
        &self,
        state: &BrokerState,
        id: &str,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        let topic = state
            .registry()
            .get(TXN_TOPIC)
            .ok_or(TxnError::NotCoordinator)?;
        let partition = state_log::led_partition(&topic, id)?;
        self.core.ready(&partition, topic.partition_count()).await?;
        Ok(self.with(id, |t| t.cloned()))
    }

    /// Every id this broker coordinates (its led partitions, loaded).
    pub(crate) async fn list(&self, state: &BrokerState) -> Vec<TxnMetadata> {
        let Some(topic) = state.registry().get(TXN_TOPIC) else {
            return Vec::new();
        };
        let count = topic.partition_count();
        let led: Vec<Arc<Partition>> = topic
            .partitions()
            .iter()
            .filter(|p| p.is_leader())
            .cloned()
            .collect();
        let mut ready = HashSet::new();
        for partition in &led {
            if self.core.ready(partition, count).await.is_ok() {
                ready.insert(partition.index());
            }
        }
        self.core
            .known
            .lock()
            .txns
            .values()
            .filter(|t| ready.contains(&state_log::partition_for(&t.transactional_id, count)))
            .cloned()
            .collect()
    }
}

/// Writes the markers of the prepared `txn` until every partition has one
/// (or this broker no longer coordinates the id), then persists its
/// completion.
pub(crate) async fn complete(state: Arc<BrokerState>, txn: TxnMetadata, coordinator_epoch: i32) {
    let coordinator = Arc::clone(state.txns());
    let id = txn.transactional_id.clone();
    let mut pending = txn.clone();
    loop {
        let left = markers::write_all(&state, &pending, coordinator_epoch).await;
        if left.is_empty() {
            break;
        }
        pending.partitions = left.into_iter().collect();
        tokio::time::sleep(MARKER_RETRY).await;
        if *state.shutdown().borrow() {
            return;
        }
        // Still the coordinator, at the same epoch? Else the new one
        // completes it after loading.
        let still = state
            .registry()
            .get(TXN_TOPIC)
            .and_then(|t| state_log::led_partition(&t, &id).ok())
            .is_some_and(|p| p.leader_epoch() == coordinator_epoch);
        if !still {
            coordinator.completing(&id, false);
            return;
        }
    }
    let result = async {
        let locked = coordinator.lock(&state, &id).await?;
        let same = coordinator.with(&id, |t| {
            t.is_some_and(|t| {
                t.producer_id == txn.producer_id
                    && t.producer_epoch == txn.producer_epoch
                    && t.status == txn.status
            })
        });
        if same {
            coordinator
                .store(&state, &locked, txn.complete(now_ms()))
                .await?;
        }
        coordinator.completing(&id, false);
        Ok::<(), TxnError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(%id, error = %e, "transaction completion not persisted; retried by the next tick");
        coordinator.completing(&id, false);
    }
}
