//! KIP-890 part 1: before a partition leader takes the first transactional
//! batch of a producer's transaction on a partition, it asks the
//! transaction coordinator whether the partition was added to that
//! producer's open transaction at that epoch (Kafka's
//! AddPartitionsToTxnManager). Without the check, a batch delayed past its
//! transaction's end (or sent by a buggy client that skipped
//! AddPartitionsToTxn) would open a transaction no coordinator knows of:
//! nothing would ever write its marker and the last stable offset would
//! stay behind it for good.
//!
//! The coordinator is asked directly when this broker is it, else with an
//! AddPartitionsToTxn v4 `verify_only` to its broker, on the connections
//! kept for markers ([`super::peers`]).

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, ProducerId, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use fjord_log::BatchHeader;

use super::{TXN_TOPIC, state_log};
use crate::broker_state::BrokerState;
use crate::error::VerifyError;
use crate::group::offsets_topic::{self, OFFSETS_TOPIC};
use crate::partition::Partition;

/// How long the coordinator's broker may take to answer.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// The first AddPartitionsToTxn version with `verify_only`.
const VERIFY_VERSION: i16 = 4;

/// Whether `topic`-`index` is in the open transaction of `id` with this
/// producer id and epoch.
pub(crate) async fn verify_partition(
    state: &Arc<BrokerState>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    index: i32,
) -> Result<(), VerifyError> {
    let partitions = [(topic.to_owned(), index)];
    let local = state.config().node_id;
    let coordinator = match state.cluster() {
        None => local,
        Some(link) => {
            let metadata = link.metadata();
            let count = metadata
                .topics
                .get(TXN_TOPIC)
                .map_or(0, |t| t.partitions.len());
            let count = i32::try_from(count).unwrap_or(0);
            if count == 0 {
                return Err(VerifyError::CoordinatorUnavailable);
            }
            let at = state_log::partition_for(id, count);
            match metadata.partition(TXN_TOPIC, at) {
                Some(p) if p.leader >= 0 => p.leader,
                _ => return Err(VerifyError::CoordinatorUnavailable),
            }
        }
    };
    if coordinator == local {
        // The topic exists once a producer of the id was initialized; a
        // Produce is not the place to create it.
        if state.registry().get(TXN_TOPIC).is_none() {
            return Err(VerifyError::CoordinatorUnavailable);
        }
        let found = state
            .txns()
            .verify(state, id, producer_id, epoch, &partitions)
            .await?;
        return if found.iter().all(|f| *f) {
            Ok(())
        } else {
            Err(VerifyError::NotInTransaction)
        };
    }
    ask_peer(state, coordinator, id, producer_id, epoch, topic, index).await
}

/// AddPartitionsToTxn v4 `verify_only` to the coordinator's broker.
async fn ask_peer(
    state: &Arc<BrokerState>,
    broker: i32,
    id: &str,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    index: i32,
) -> Result<(), VerifyError> {
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.to_owned())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![index]),
            ]),
    ]);
    let answer = state
        .txns()
        .peers
        .call(
            state,
            broker,
            ApiKey::AddPartitionsToTxn,
            VERIFY_VERSION,
            request.into(),
            PEER_TIMEOUT,
        )
        .await
        .map_err(|e| VerifyError::Unreachable(e.to_string()))?;
    let ResponseKind::AddPartitionsToTxn(answer) = answer else {
        return Err(VerifyError::Unreachable(format!(
            "unexpected answer {answer:?}"
        )));
    };
    if answer.error_code != 0 {
        return Err(VerifyError::Coordinator(answer.error_code));
    }
    let code = answer
        .results_by_transaction
        .iter()
        .flat_map(|t| &t.topic_results)
        .flat_map(|t| &t.results_by_partition)
        .find(|p| p.partition_index == index)
        .map(|p| p.partition_error_code)
        .ok_or_else(|| VerifyError::Unreachable("the partition is not in the answer".into()))?;
    match code {
        0 => Ok(()),
        c if c == kafka_protocol::ResponseError::TransactionAbortable.code() => {
            Err(VerifyError::NotInTransaction)
        }
        c => Err(VerifyError::Coordinator(c)),
    }
}

/// The guard a transactional batch of `header`'s producer is appended to
/// `partition` with ([`Partition::append_verified`]), after verifying it
/// with the coordinator when it would open a transaction there. `None`
/// (appended unchecked) for a batch that is not transactional, a request
/// without a transactional id (Kafka skips those too), or with
/// `transaction.partition.verification.enable` off.
pub(crate) async fn guard(
    state: &Arc<BrokerState>,
    transactional_id: Option<&str>,
    partition: &Partition,
    header: &BatchHeader,
) -> Result<Option<u64>, VerifyError> {
    let transactional = header.attributes & fjord_log::TRANSACTIONAL_ATTRIBUTE != 0;
    let Some(id) = transactional_id.filter(|_| transactional) else {
        return Ok(None);
    };
    if !state.config().transaction_partition_verification_enable {
        return Ok(None);
    }
    let (token, needed) = partition.verification_guard(header.producer_id);
    if needed {
        verify_partition(
            state,
            id,
            header.producer_id,
            header.producer_epoch,
            partition.topic(),
            partition.index(),
        )
        .await?;
    }
    Ok(Some(token))
}

/// TxnOffsetCommit's check: the group's partition of `__consumer_offsets`
/// is in the producer's open transaction at this epoch (added by
/// AddOffsetsToTxn). Asked at every commit, not only the first of a
/// transaction: the offsets are appended outside the partition's producer
/// state, so this is also what refuses a fenced producer's epoch. Nothing
/// is asked with `transaction.partition.verification.enable` off.
pub(crate) async fn verify_offsets(
    state: &Arc<BrokerState>,
    id: &str,
    producer_id: i64,
    epoch: i16,
    group: &str,
) -> Result<(), VerifyError> {
    if !state.config().transaction_partition_verification_enable {
        return Ok(());
    }
    // Created if missing, as AddOffsetsToTxn and the commit itself do.
    let offsets = offsets_topic::topic(&state.offsets_topic())
        .await
        .map_err(|_| VerifyError::CoordinatorUnavailable)?;
    let index = offsets_topic::partition_for(group, offsets.partition_count());
    verify_partition(state, id, producer_id, epoch, OFFSETS_TOPIC, index).await
}
