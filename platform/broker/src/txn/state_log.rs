//! `__transaction_state`: the internal compacted topic the coordinator
//! persists each transactional id's state to, written through the same
//! partition log as any data and replayed into the coordinator when this
//! broker becomes the leader of a partition of it (lazily, on the first
//! request or tick that needs it). An id's records go to partition
//! `abs(java hashCode(id)) % N`, as in Kafka; the topic is created on first
//! use with `transaction.state.log.num.partitions` partitions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fjord_log::BatchBuilder;
use kafka_protocol::ResponseError;

use super::TXN_TOPIC;
use super::record;
use super::state::TxnMetadata;
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::TxnError;
use crate::metadata::{NewTopic, Replication};
use crate::partition::Partition;
use crate::topic_registry::Topic;

/// The partition of `__transaction_state` that holds `id` (Kafka's
/// placement, the same as a group's in `__consumer_offsets`).
pub(crate) fn partition_for(id: &str, partitions: i32) -> i32 {
    crate::group::offsets_topic::partition_for(id, partitions)
}

/// The topic, created with the configured partition count on first use.
pub(crate) async fn topic(state: &BrokerState) -> Result<Arc<Topic>, TxnError> {
    if let Some(topic) = state.registry().get(TXN_TOPIC) {
        return Ok(topic);
    }
    let topic = NewTopic {
        partitions: Some(state.config().transaction_state_log_num_partitions),
        replication: Replication::Internal,
        // Compaction keeps each id's last state.
        configs: vec![("cleanup.policy".to_owned(), "compact".to_owned())],
        ..NewTopic::named(TXN_TOPIC)
    };
    match state.metadata().create_or_get(topic, Duration::ZERO).await {
        Ok(topic) => Ok(topic),
        Err(e)
            if e.code == ResponseError::CoordinatorNotAvailable.code()
                || e.code == ResponseError::TopicAlreadyExists.code() =>
        {
            tracing::debug!(error = %e.message, "__transaction_state not created yet");
            Err(TxnError::CoordinatorNotAvailable)
        }
        Err(e) => {
            tracing::error!(error = %e.message, "cannot create __transaction_state");
            Err(TxnError::CoordinatorNotAvailable)
        }
    }
}

/// The partition this broker leads that holds `id`, or NOT_COORDINATOR.
pub(crate) fn led_partition(topic: &Topic, id: &str) -> Result<Arc<Partition>, TxnError> {
    let index = partition_for(id, topic.partition_count());
    topic
        .partition(index)
        .filter(|p| p.is_leader())
        .ok_or(TxnError::NotCoordinator)
}

/// Appends `txn`'s state to its partition, and waits for the in-sync
/// replicas in a cluster (Kafka writes the state with acks=all).
pub(crate) async fn persist(
    state: &BrokerState,
    partition: &Partition,
    txn: &TxnMetadata,
) -> Result<(), TxnError> {
    let mut batch = BatchBuilder::with_capacity(1);
    batch.push(
        now_ms(),
        Some(record::key(&txn.transactional_id)),
        Some(record::value(txn)),
    );
    let batch = batch
        .build()
        .map_err(|e| TxnError::NotPersisted(e.to_string()))?;
    let info = partition.append(batch).await.map_err(|e| {
        tracing::warn!(id = %txn.transactional_id, error = %e, "transaction state not persisted");
        TxnError::NotPersisted(e.to_string())
    })?;
    if partition.is_replicated() {
        let timeout = Duration::from_millis(state.config().offsets_commit_timeout_ms);
        partition
            .wait_committed(info.last_offset + 1, timeout)
            .await
            .map_err(|e| TxnError::NotPersisted(e.to_string()))?;
    }
    Ok(())
}

/// Every id's last state in `partition`, read up to its log end (a new
/// leader's log is the truth, as the group coordinator loads it).
/// A record that does not decode is skipped with a warning: one bad
/// record must not cost every id its state.
pub(crate) fn load(partition: &Partition) -> HashMap<String, TxnMetadata> {
    let mut txns = HashMap::new();
    let end = partition.log().log_end_offset();
    let mut next = partition.log_start_offset();
    let limits = fjord_log::DecodeLimits::of(&partition.log().config());
    while next < end {
        let read = match partition.log().read(next, 1 << 20, end) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(partition = partition.index(), error = %e, "cannot read __transaction_state");
                break;
            }
        };
        let Some(bytes) = read.slice.and_then(|s| s.bytes().ok()) else {
            break;
        };
        let before = next;
        let mut at = 0;
        while let Ok(header) = fjord_log::BatchHeader::parse(&bytes[at..]) {
            next = next.max(header.next_offset());
            let Some(batch) = bytes.get(at..at + header.size()) else {
                break;
            };
            at += header.size();
            if header.is_control() {
                continue;
            }
            let batch = match fjord_log::decode_batch(batch, limits) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(offset = header.base_offset, error = %e, "undecodable batch in __transaction_state skipped");
                    continue;
                }
            };
            for r in batch.records() {
                if r.offset < before {
                    continue;
                }
                let Some(key) = r.key.map(Bytes::copy_from_slice) else {
                    continue;
                };
                let id = match record::decode_key(key) {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::warn!(error = %e, "bad transaction state key skipped");
                        continue;
                    }
                };
                match r.value.map(Bytes::copy_from_slice) {
                    None => {
                        txns.remove(&id);
                    }
                    Some(value) => match record::decode_value(&id, value) {
                        Ok(txn) => {
                            txns.insert(id, txn);
                        }
                        Err(e) => {
                            tracing::warn!(%id, error = %e, "bad transaction state skipped")
                        }
                    },
                }
            }
        }
        if next == before {
            break;
        }
    }
    txns
}
