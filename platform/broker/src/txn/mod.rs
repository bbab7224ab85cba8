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
//! One lock serializes the coordinator's changes: each is validated,
//! persisted, then taken, so what a client is told is what a new
//! coordinator will load. Markers are written outside the lock; meanwhile
//! the id is in PrepareCommit / PrepareAbort and other requests for it are
//! CONCURRENT_TRANSACTIONS, as in Kafka.
//!
//! The coordinator works on the whole broker (its registry, its groups,
//! its peers), so unlike the group coordinator it is handed the
//! `BrokerState`.

pub(crate) mod markers;
pub(crate) mod record;
pub(crate) mod state;
pub(crate) mod state_log;
pub(crate) mod timeouts;
pub(crate) mod verify;
pub(crate) mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::TxnError;
use crate::partition::Partition;
use state::{EndStep, TxnMetadata};

/// The internal topic's name (Kafka's).
pub(crate) const TXN_TOPIC: &str = "__transaction_state";

/// How long EndTxn waits for its markers before answering anyway (the
/// outcome is decided once PrepareCommit/PrepareAbort is persisted; the
/// markers are retried until written).
const END_WAIT: Duration = Duration::from_secs(10);

/// Pause between two rounds of markers that did not all get written.
const MARKER_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct Inner {
    txns: HashMap<String, TxnMetadata>,
    /// Partitions of `__transaction_state` whose ids are loaded, with the
    /// leader epoch they were loaded at.
    loaded: HashMap<i32, i32>,
    /// Ids whose prepared end is being completed (markers in flight).
    completing: HashSet<String>,
}

/// The transaction coordinator of one broker.
#[derive(Debug, Default)]
pub(crate) struct TxnCoordinator {
    inner: Mutex<Inner>,
}

/// The lock, with the id's partition loaded and led here.
struct Locked<'a> {
    inner: MutexGuard<'a, Inner>,
    partition: Arc<Partition>,
}

impl Inner {
    /// Loads `partition`'s ids unless they are loaded at its current
    /// leader epoch (this broker became its leader since, or never loaded
    /// it): a new leader replays the log, as Kafka's coordinator does on
    /// election.
    fn ensure_loaded(&mut self, partition: &Partition, count: i32) {
        let index = partition.index();
        let epoch = partition.leader_epoch();
        if self.loaded.get(&index) == Some(&epoch) {
            return;
        }
        self.txns
            .retain(|id, _| state_log::partition_for(id, count) != index);
        let loaded = state_log::load(partition);
        tracing::info!(
            partition = index,
            leader_epoch = epoch,
            ids = loaded.len(),
            "transaction state loaded"
        );
        self.txns.extend(loaded);
        self.loaded.insert(index, epoch);
    }
}

impl TxnCoordinator {
    /// Takes the lock for `id`: NOT_COORDINATOR unless this broker leads
    /// its partition (`create`: the topic is created if missing).
    async fn lock(&self, state: &BrokerState, id: &str) -> Result<Locked<'_>, TxnError> {
        let topic = state_log::topic(state).await?;
        let partition = state_log::led_partition(&topic, id)?;
        let mut inner = self.inner.lock().await;
        inner.ensure_loaded(&partition, topic.partition_count());
        Ok(Locked { inner, partition })
    }

    /// Persists `next` and takes it as `id`'s state.
    async fn store(
        state: &BrokerState,
        locked: &mut Locked<'_>,
        next: TxnMetadata,
    ) -> Result<(), TxnError> {
        state_log::persist(state, &locked.partition, &next).await?;
        locked
            .inner
            .txns
            .insert(next.transactional_id.clone(), next);
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
        let mut locked = self.lock(state, id).await?;
        let now = now_ms();
        let current = locked.inner.txns.get(id).cloned();
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
                    Self::store(state, &mut locked, fenced.clone()).await?;
                    let coordinator_epoch = locked.partition.leader_epoch();
                    locked.inner.completing.insert(id.to_owned());
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
        Self::store(state, &mut locked, next).await?;
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
        let mut locked = self.lock(state, id).await?;
        let txn = locked
            .inner
            .txns
            .get(id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if let Some(next) = txn.add_partitions(producer_id, epoch, partitions, now_ms())? {
            Self::store(state, &mut locked, next).await?;
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
        let locked = self.lock(state, id).await?;
        let txn = locked
            .inner
            .txns
            .get(id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        txn.check_producer(producer_id, epoch)?;
        let open = txn.status == state::TxnStatus::Ongoing;
        Ok(partitions
            .iter()
            .map(|p| open && txn.partitions.contains(p))
            .collect())
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
        let mut locked = self.lock(state, id).await?;
        let txn = locked
            .inner
            .txns
            .get(id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let prepared = match txn.end(producer_id, epoch, commit, now_ms())? {
            EndStep::Done => return Ok(()),
            EndStep::Prepare(prepared) => prepared,
        };
        Self::store(state, &mut locked, prepared.clone()).await?;
        let coordinator_epoch = locked.partition.leader_epoch();
        locked.inner.completing.insert(id.to_owned());
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
        let mut inner = self.inner.lock().await;
        inner.ensure_loaded(&partition, topic.partition_count());
        Ok(inner.txns.get(id).cloned())
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
        let mut inner = self.inner.lock().await;
        for partition in &led {
            inner.ensure_loaded(partition, count);
        }
        let led: HashSet<i32> = led.iter().map(|p| p.index()).collect();
        inner
            .txns
            .values()
            .filter(|t| led.contains(&state_log::partition_for(&t.transactional_id, count)))
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
            coordinator.inner.lock().await.completing.remove(&id);
            return;
        }
    }
    let result = async {
        let mut locked = coordinator.lock(&state, &id).await?;
        let same = locked.inner.txns.get(&id).is_some_and(|t| {
            t.producer_id == txn.producer_id
                && t.producer_epoch == txn.producer_epoch
                && t.status == txn.status
        });
        if same {
            TxnCoordinator::store(&state, &mut locked, txn.complete(now_ms())).await?;
        }
        locked.inner.completing.remove(&id);
        Ok::<(), TxnError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(%id, error = %e, "transaction completion not persisted; retried by the next tick");
        coordinator.inner.lock().await.completing.remove(&id);
    }
}
