//! The transaction APIs of producers and of brokers: AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn (answered by the transaction coordinator,
//! `crate::txn`) and WriteTxnMarkers (a coordinator asking this broker to
//! end a transaction on partitions it leads).
//!
//! Authorization as Kafka: WRITE on the TransactionalId
//! (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), WRITE on each topic added
//! (TOPIC_AUTHORIZATION_FAILED), READ on the group of AddOffsetsToTxn
//! (GROUP_AUTHORIZATION_FAILED); the batched AddPartitionsToTxn (v4+,
//! sent by brokers) and WriteTxnMarkers CLUSTER_ACTION
//! (CLUSTER_AUTHORIZATION_FAILED).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::error::txn_error_code;
use crate::txn::markers::{Marker, write_local};

/// Whether `topic`-`index` exists (in a cluster: in the quorum's metadata,
/// whichever broker hosts it).
fn partition_exists(state: &BrokerState, topic: &str, index: i32) -> bool {
    match state.cluster() {
        Some(link) => link.metadata().partition(topic, index).is_some(),
        None => state
            .registry()
            .get(topic)
            .is_some_and(|t| t.partition(index).is_some()),
    }
}

/// One transaction of an AddPartitionsToTxn.
struct Adding<'a> {
    id: &'a str,
    producer_id: i64,
    epoch: i16,
    verify_only: bool,
    topics: &'a [AddPartitionsToTxnTopic],
}

/// The per-partition answer of one transaction's AddPartitionsToTxn.
async fn add_one(
    state: &BrokerState,
    access: &Access,
    fenced_known: bool,
    adding: Adding<'_>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let Adding {
        id,
        producer_id,
        epoch,
        verify_only,
        topics,
    } = adding;
    let mut codes: Vec<(TopicName, Vec<(i32, i16)>)> = Vec::new();
    let mut failed = false;
    let mut partitions = Vec::new();
    for topic in topics {
        let name = topic.name.as_str();
        let code = if !access.topic(Operation::Write, name) {
            ResponseError::TopicAuthorizationFailed.code()
        } else {
            0
        };
        let mut results = Vec::new();
        for &index in &topic.partitions {
            let code = if code != 0 {
                code
            } else if !partition_exists(state, name, index) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                partitions.push((name.to_owned(), index));
                0
            };
            failed |= code != 0;
            results.push((index, code));
        }
        codes.push((topic.name.clone(), results));
    }
    let outcome: Result<Vec<i16>, i16> =
        if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
            Err(ResponseError::TransactionalIdAuthorizationFailed.code())
        } else if failed {
            // Nothing is added when one partition is refused; the others are
            // OPERATION_NOT_ATTEMPTED, as in Kafka.
            Ok(Vec::new())
        } else if verify_only {
            match state
                .txns()
                .verify(state, id, producer_id, epoch, &partitions)
                .await
            {
                // KIP-890 part 1: a partition not in the transaction is
                // TRANSACTION_ABORTABLE to the broker that asks.
                Ok(found) => Ok(found
                    .into_iter()
                    .map(|f| {
                        if f {
                            0
                        } else {
                            ResponseError::TransactionAbortable.code()
                        }
                    })
                    .collect()),
                Err(e) => Err(txn_error_code(&e, fenced_known)),
            }
        } else {
            match state
                .txns()
                .add_partitions(state, id, producer_id, epoch, &partitions)
                .await
            {
                Ok(()) => Ok(vec![0; partitions.len()]),
                Err(e) => {
                    tracing::debug!(id, error = %e, "AddPartitionsToTxn refused");
                    Err(txn_error_code(&e, fenced_known))
                }
            }
        };
    let mut verified = match &outcome {
        Ok(list) => list.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    codes
        .into_iter()
        .map(|(name, results)| {
            let results = results
                .into_iter()
                .map(|(index, code)| {
                    let code = match &outcome {
                        Err(code) => *code,
                        Ok(_) if failed && code == 0 => ResponseError::OperationNotAttempted.code(),
                        Ok(_) if code != 0 => code,
                        Ok(_) => verified.next().unwrap_or(0),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(index)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(name)
                .with_results_by_partition(results)
        })
        .collect()
}

/// AddPartitionsToTxn: v0–v3 one producer's transaction; v4+ a batch of
/// transactions, from brokers (KIP-890), verify_only ones answered with
/// whether each partition is in the transaction.
pub(crate) async fn add_partitions(
    state: &Arc<BrokerState>,
    version: i16,
    request: AddPartitionsToTxnRequest,
    access: &Access,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let adding = Adding {
            id: &request.v3_and_below_transactional_id,
            producer_id: request.v3_and_below_producer_id.0,
            epoch: request.v3_and_below_producer_epoch,
            verify_only: false,
            topics: &request.v3_and_below_topics,
        };
        let results = add_one(state, access, version >= 2, adding).await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    if !access.cluster(Operation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in &request.transactions {
        let adding = Adding {
            id: &txn.transactional_id,
            producer_id: txn.producer_id.0,
            epoch: txn.producer_epoch,
            verify_only: txn.verify_only,
            topics: &txn.topics,
        };
        let topics = add_one(state, access, true, adding).await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// AddOffsetsToTxn: the group's partition of `__consumer_offsets` joins
/// the transaction, so its TxnOffsetCommits are ended with it.
pub(crate) async fn add_offsets(
    state: &Arc<BrokerState>,
    version: i16,
    request: AddOffsetsToTxnRequest,
    access: &Access,
) -> AddOffsetsToTxnResponse {
    let answer = |code: i16| AddOffsetsToTxnResponse::default().with_error_code(code);
    let id = request.transactional_id.as_str();
    if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
        return answer(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !access.group(Operation::Read, &request.group_id) {
        return answer(ResponseError::GroupAuthorizationFailed.code());
    }
    let offsets = match crate::group::offsets_topic::topic(&state.offsets_topic()).await {
        Ok(topic) => topic,
        Err(_) => return answer(ResponseError::CoordinatorNotAvailable.code()),
    };
    let index =
        crate::group::offsets_topic::partition_for(&request.group_id, offsets.partition_count());
    let partition = [(crate::group::offsets_topic::OFFSETS_TOPIC.to_owned(), index)];
    match state
        .txns()
        .add_partitions(
            state,
            id,
            request.producer_id.0,
            request.producer_epoch,
            &partition,
        )
        .await
    {
        Ok(()) => answer(0),
        Err(e) => answer(txn_error_code(&e, version >= 2)),
    }
}

/// EndTxn: commit or abort the producer's transaction.
pub(crate) async fn end(
    state: &Arc<BrokerState>,
    version: i16,
    request: EndTxnRequest,
    access: &Access,
) -> EndTxnResponse {
    let answer = |code: i16| EndTxnResponse::default().with_error_code(code);
    let id = request.transactional_id.as_str();
    if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
        return answer(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    match state
        .txns()
        .end(
            state,
            id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await
    {
        Ok(()) => answer(0),
        Err(e) => {
            tracing::debug!(id, error = %e, "EndTxn refused");
            answer(txn_error_code(&e, version >= 2))
        }
    }
}

/// WriteTxnMarkers: each marker written to the partitions this broker
/// leads (NOT_LEADER_OR_FOLLOWER for the others: the coordinator looks the
/// leader up again).
pub(crate) async fn write_markers(
    state: &Arc<BrokerState>,
    request: WriteTxnMarkersRequest,
    access: &Access,
) -> WriteTxnMarkersResponse {
    let allowed = access.cluster(Operation::ClusterAction);
    let mut markers = Vec::with_capacity(request.markers.len());
    for m in request.markers {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for topic in m.topics {
            let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
            for index in topic.partition_indexes {
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    match write_local(state, &topic.name, index, marker).await {
                        Ok(()) => 0,
                        Err(code) => code,
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
