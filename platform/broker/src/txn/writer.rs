//! Transactions for code running inside the broker (pipelines' exactly-once
//! delivery): the same coordinator, partitions and group side a Kafka
//! client's transactional producer reaches over the wire, called directly.
//! A [`TransactionalWriter`] is one transactional producer: made with its
//! id (which fences the id's previous producer and aborts its open
//! transaction), it appends batches as that producer's (idempotent,
//! transactional), commits a group's offsets in the transaction, and ends
//! it. Nothing is visible to read_committed readers, nor are the offsets
//! the group's, until [`TransactionalWriter::commit`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use fjord_log::BatchBuilder;

use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::{LocalError, TxnError, group_error_code, partition_error_code, txn_error_code};
use crate::group::{CommittedOffset, Committer, offsets_topic};
use crate::producer_state::Expiry;

/// How long InitProducerId is retried while the id's previous transaction
/// is being aborted (CONCURRENT_TRANSACTIONS) or its coordinator loads.
const INIT_RETRIES: u32 = 100;
const INIT_PAUSE: Duration = Duration::from_millis(100);

/// One in-process transactional producer (see the module documentation).
#[derive(Debug)]
pub struct TransactionalWriter {
    state: Arc<BrokerState>,
    id: String,
    producer_id: i64,
    epoch: i16,
    /// Next sequence of each partition this producer wrote (sequences run
    /// on across transactions of one epoch, as a client's do).
    sequences: HashMap<(String, i32), i32>,
    /// Partitions in the open transaction (empty: none open).
    joined: HashSet<(String, i32)>,
}

impl TransactionalWriter {
    /// InitProducerId for `id`: retried while the previous producer's open
    /// transaction is aborted.
    pub(crate) async fn init(
        state: Arc<BrokerState>,
        id: &str,
        timeout_ms: i32,
    ) -> Result<Self, LocalError> {
        let mut tries = 0;
        let (producer_id, epoch) = loop {
            match state.txns().init(&state, id, timeout_ms, None).await {
                Ok(answer) => break answer,
                Err(
                    TxnError::ConcurrentTransactions
                    | TxnError::CoordinatorNotAvailable
                    | TxnError::LoadInProgress,
                ) if tries < INIT_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(INIT_PAUSE).await;
                }
                Err(e) => return Err(txn_error(id, &e)),
            }
        };
        Ok(TransactionalWriter {
            state,
            id: id.to_owned(),
            producer_id,
            epoch,
            sequences: HashMap::new(),
            joined: HashSet::new(),
        })
    }

    /// The transactional id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The producer id and epoch InitProducerId gave.
    pub fn producer(&self) -> (i64, i16) {
        (self.producer_id, self.epoch)
    }

    /// Whether a transaction is open (something was appended or committed
    /// in it).
    pub fn is_open(&self) -> bool {
        !self.joined.is_empty()
    }

    /// Adds `topic`/`partition` to the transaction (AddPartitionsToTxn),
    /// once.
    async fn join(&mut self, topic: &str, partition: i32) -> Result<(), LocalError> {
        let key = (topic.to_owned(), partition);
        if self.joined.contains(&key) {
            return Ok(());
        }
        self.state
            .txns()
            .add_partitions(
                &self.state,
                &self.id,
                self.producer_id,
                self.epoch,
                std::slice::from_ref(&key),
            )
            .await
            .map_err(|e| txn_error(&self.id, &e))?;
        self.joined.insert(key);
        Ok(())
    }

    /// Appends `batch` to the local partition `topic`/`partition` in the
    /// transaction; returns the first record's offset.
    pub async fn append(
        &mut self,
        topic: &str,
        partition: i32,
        mut batch: BatchBuilder,
    ) -> Result<i64, LocalError> {
        let log = self
            .state
            .registry()
            .get(topic)
            .and_then(|t| t.partition(partition))
            .ok_or_else(|| LocalError::UnknownTopic(format!("{topic}-{partition}")))?;
        self.join(topic, partition).await?;
        let key = (topic.to_owned(), partition);
        let sequence = self.sequences.get(&key).copied().unwrap_or(0);
        let count = batch.len() as i32;
        batch.producer(self.producer_id, self.epoch, sequence, true);
        let bytes = batch
            .build()
            .map_err(|e| LocalError::Other(format!("cannot encode the batch: {e}")))?;
        let header = fjord_log::BatchHeader::parse(&bytes)
            .map_err(|e| LocalError::Other(format!("cannot read the batch back: {e}")))?;
        let expiry = Expiry {
            now_ms: now_ms(),
            after_ms: i64::try_from(self.state.config().producer_id_expiration_ms)
                .unwrap_or(i64::MAX),
        };
        let (offset, _) = log
            .append_idempotent(bytes, &header, expiry)
            .await
            .map_err(|e| LocalError::Transaction {
                id: self.id.clone(),
                code: partition_error_code(&e),
                message: format!("append to {topic}-{partition}: {e}"),
            })?;
        self.sequences.insert(key, sequence.wrapping_add(count));
        Ok(offset)
    }

    /// Commits `offsets` (topic, partition, next offset to read) for
    /// `group` in the transaction (AddOffsetsToTxn + TxnOffsetCommit): the
    /// group's committed offsets change when the transaction commits.
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), LocalError> {
        let topic = offsets_topic::topic(&self.state.offsets_topic())
            .await
            .map_err(|source| LocalError::CommitNotStored {
                group: group.to_owned(),
                source,
            })?;
        let index = offsets_topic::partition_for(group, topic.partition_count());
        self.join(offsets_topic::OFFSETS_TOPIC, index).await?;
        let offsets = CommittedOffset::from_positions(offsets, now_ms());
        self.state
            .groups()
            .commit_txn_offsets(
                &self.state.offsets_topic(),
                group,
                self.producer_id,
                self.epoch,
                Committer::SIMPLE,
                offsets,
            )
            .await
            .map_err(|source| LocalError::Transaction {
                id: self.id.clone(),
                code: group_error_code(&source),
                message: format!("offsets of group {group}: {source}"),
            })
    }

    /// Commits the open transaction (nothing to do when none is open).
    pub async fn commit(&mut self) -> Result<(), LocalError> {
        self.end(true).await
    }

    /// Aborts the open transaction: what it appended is never read
    /// committed, and its offsets are dropped.
    pub async fn abort(&mut self) -> Result<(), LocalError> {
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), LocalError> {
        if self.joined.is_empty() {
            return Ok(());
        }
        self.state
            .txns()
            .end(&self.state, &self.id, self.producer_id, self.epoch, commit)
            .await
            .map_err(|e| txn_error(&self.id, &e))?;
        self.joined.clear();
        Ok(())
    }
}

fn txn_error(id: &str, e: &TxnError) -> LocalError {
    LocalError::Transaction {
        id: id.to_owned(),
        code: txn_error_code(e, true),
        message: e.to_string(),
    }
}
