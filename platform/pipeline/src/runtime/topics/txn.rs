//! The transactional writer of an exactly-once task: the one place where
//! a single node and a cluster differ for `delivery: exactly-once`.
//!
//! A task's transactional id is the same either way
//! (`pipeline.<name>.<topic>.<partition>`, `pipeline.<name>.connector`), so
//! a task that moves between brokers, or restarts, fences whatever ran
//! under its id before, wherever that was. Its sink, dead-letter,
//! changelog and position records and the source offsets it commits go in
//! one transaction, committed at each checkpoint (about every 200 ms).
//!
//! - On a single node the broker's in-process [`TransactionalWriter`]
//!   appends to the local logs and calls the coordinator directly.
//! - In a cluster a partition may be led by another broker, and so may the
//!   id's coordinator or the group's: a librdkafka transactional producer
//!   ([`ClusterTxn`]), whose `init_transactions` fences the previous
//!   incarnation and aborts its open transaction, and whose
//!   `send_offsets_to_transaction` commits the source offsets as the group
//!   coordinator's TxnOffsetCommit, member-less like the in-process one.
//!
//! A cluster transaction that cannot be committed (a record that timed
//! out, the producer fenced) is aborted, and the writer is *lost*: what the
//! task delivered since its last commit is gone, while its position and
//! state moved past it, so it cannot go on. The task stops, and the
//! supervisor starts the pipeline's tasks again from the last commit and
//! the changelogs (`PipelineStats::transaction_lost`).

use std::sync::Arc;
use std::time::Duration;

use fjord_broker::TransactionalWriter;
use fjord_sdk::Record;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::super::error::TopicsError;
use super::super::records;
use super::cluster_client::{self, ClusterClient};

/// How long one transactional call through the cluster (InitProducerId,
/// AddOffsetsToTxn + TxnOffsetCommit, EndTxn) may take before the task's
/// retry loop calls it again: longer than a failover of a coordinator.
const CLUSTER_TXN_CALL: Duration = Duration::from_secs(30);

/// An exactly-once task's transactional writer (see the module
/// documentation).
pub(crate) enum TxnWriter {
    /// A single node: the broker's own.
    Local(TransactionalWriter),
    /// A broker of a cluster: a Kafka client's.
    Cluster(ClusterTxn),
}

impl TxnWriter {
    /// Whether a transaction is open (written to, not yet committed).
    pub fn is_open(&self) -> bool {
        match self {
            TxnWriter::Local(w) => w.is_open(),
            TxnWriter::Cluster(c) => c.open,
        }
    }

    /// Whether the writer aborted a transaction it could not commit, and
    /// cannot be used any more (see the module documentation).
    pub fn is_lost(&self) -> bool {
        match self {
            TxnWriter::Local(_) => false,
            TxnWriter::Cluster(c) => c.lost,
        }
    }

    /// Appends `records` to `topic`/`partition` in the transaction; returns
    /// the offset of the first.
    pub async fn append(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, TopicsError> {
        match self {
            TxnWriter::Local(w) => w
                .append(topic, partition, records::builder(records))
                .await
                .map_err(TopicsError::Transaction),
            TxnWriter::Cluster(c) => c.append(topic, partition, records).await,
        }
    }

    /// Commits `offsets` (topic, partition, next offset to read) of `group`
    /// in the transaction: they become the group's when it commits.
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), TopicsError> {
        match self {
            TxnWriter::Local(w) => w
                .commit_offsets(group, offsets)
                .await
                .map_err(TopicsError::Transaction),
            TxnWriter::Cluster(c) => c.commit_offsets(group, offsets),
        }
    }

    /// Commits the open transaction (nothing to do when none is open).
    pub async fn commit(&mut self) -> Result<(), TopicsError> {
        match self {
            TxnWriter::Local(w) => w.commit().await.map_err(TopicsError::Transaction),
            TxnWriter::Cluster(c) => c.end(true),
        }
    }

    /// Aborts the open transaction: nothing it wrote is read committed.
    pub async fn abort(&mut self) -> Result<(), TopicsError> {
        match self {
            TxnWriter::Local(w) => w.abort().await.map_err(TopicsError::Transaction),
            TxnWriter::Cluster(c) => c.end(false),
        }
    }
}

/// A transactional producer through the cluster's brokers.
///
/// librdkafka's transactional calls block (they wait for the coordinator):
/// the runtime calls them from a task's own thread, inside
/// `Handle::block_on`, never from the broker's runtime threads.
pub(crate) struct ClusterTxn {
    id: String,
    client: Arc<ClusterClient>,
    producer: FutureProducer,
    open: bool,
    lost: bool,
}

impl ClusterTxn {
    /// The producer of `id`, once InitProducerId has fenced the id's
    /// previous producer (and aborted its open transaction).
    pub(super) fn init(
        client: Arc<ClusterClient>,
        id: &str,
        timeout_ms: i32,
    ) -> Result<ClusterTxn, TopicsError> {
        let producer = client.transactional_producer(id, timeout_ms)?;
        producer
            .init_transactions(CLUSTER_TXN_CALL)
            .map_err(|e| failed(id, "InitProducerId", e))?;
        Ok(ClusterTxn {
            id: id.to_owned(),
            client,
            producer,
            open: false,
            lost: false,
        })
    }

    /// Begins a transaction unless one is open.
    fn begin(&mut self) -> Result<(), TopicsError> {
        if self.lost {
            return Err(TopicsError::TransactionLost {
                id: self.id.clone(),
            });
        }
        if !self.open {
            self.producer
                .begin_transaction()
                .map_err(|e| failed(&self.id, "beginning a transaction", e))?;
            self.open = true;
        }
        Ok(())
    }

    async fn append(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, TopicsError> {
        self.begin()?;
        // A record librdkafka gave up on (its retries and idempotence
        // cover leader changes) leaves the transaction abortable only.
        cluster_client::produce(&self.producer, topic, partition, records)
            .await
            .inspect_err(|_| self.lose())
    }

    fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), TopicsError> {
        self.begin()?;
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| failed(&self.id, "listing the offsets", e))?;
        }
        let metadata = self.client.group_metadata(group)?;
        self.producer
            .send_offsets_to_transaction(&list, &metadata, CLUSTER_TXN_CALL)
            .map_err(|e| self.settle(e, "committing the offsets of the group"))
    }

    /// Commits (`commit`) or aborts the open transaction.
    fn end(&mut self, commit: bool) -> Result<(), TopicsError> {
        if !self.open {
            return Ok(());
        }
        let ended = if commit {
            self.producer.commit_transaction(CLUSTER_TXN_CALL)
        } else {
            self.producer.abort_transaction(CLUSTER_TXN_CALL)
        };
        match ended {
            Ok(()) => {
                self.open = false;
                Ok(())
            }
            Err(e) if commit => Err(self.settle(e, "committing the transaction")),
            Err(e) => {
                // An abort that cannot complete leaves nothing to keep:
                // the coordinator aborts it at its timeout, or the next
                // producer of the id does.
                self.lost = true;
                Err(failed(&self.id, "aborting the transaction", e))
            }
        }
    }

    /// The error of a transactional call: a retriable one is returned as
    /// it is (the call is made again); any other loses the transaction.
    fn settle(&mut self, e: KafkaError, what: &str) -> TopicsError {
        let retriable = matches!(&e, KafkaError::Transaction(t) if t.is_retriable());
        if !retriable {
            self.lose();
        }
        failed(&self.id, what, e)
    }

    /// Aborts the open transaction and gives the writer up.
    fn lose(&mut self) {
        if self.open && self.producer.abort_transaction(CLUSTER_TXN_CALL).is_ok() {
            self.open = false;
        }
        self.lost = true;
    }
}

fn failed(id: &str, what: &str, source: KafkaError) -> TopicsError {
    TopicsError::ClusterTransaction {
        id: id.to_owned(),
        what: what.to_owned(),
        source: Box::new(source),
    }
}
