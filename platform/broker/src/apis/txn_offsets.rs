//! TxnOffsetCommit (API 28): offsets a transactional producer commits for a
//! consumer group as part of its transaction (`sendOffsetsToTransaction`).
//! They are stored at once as a transactional batch in the group's
//! partition of `__consumer_offsets` and become the group's committed
//! offsets only when the transaction commits (`group/txn_offsets.rs`).
//!
//! Authorization, as Kafka's: WRITE on the transactional id (else every
//! partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
//! (else GROUP_AUTHORIZATION_FAILED), READ on each topic
//! (TOPIC_AUTHORIZATION_FAILED for its partitions).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::{group_error_code, verify_error_code};
use crate::group::{CommittedOffset, Committer};

/// TxnOffsetCommit. Per-partition problems (topic not authorised, unknown
/// partition, oversized metadata) fail that partition only; a problem of
/// the request (authorization, coordinator, membership) fails all.
pub(crate) async fn commit(
    state: &Arc<BrokerState>,
    version: i16,
    request: TxnOffsetCommitRequest,
    access: &Access,
) -> TxnOffsetCommitResponse {
    let now = now_ms();
    let owned = if !access.allows(
        Operation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id,
    ) {
        Err(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if !access.group(Operation::Read, &request.group_id) {
        Err(ResponseError::GroupAuthorizationFailed.code())
    } else {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    };
    let mut offsets = Vec::new();
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let topic_allowed = access.topic(Operation::Read, &topic.name);
        let topic_codes = topic
            .partitions
            .iter()
            .map(|p| {
                let metadata = p.committed_metadata.as_deref().unwrap_or("");
                if let Err(code) = owned {
                    return code;
                }
                if !topic_allowed {
                    return ResponseError::TopicAuthorizationFailed.code();
                }
                if let Err(e) = state.groups().check_offset(
                    state.registry(),
                    &topic.name,
                    p.partition_index,
                    metadata,
                ) {
                    return group_error_code(&e);
                }
                offsets.push((
                    (topic.name.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        // The leader epoch is in the request from v2.
                        leader_epoch: if version >= 2 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_string(),
                        commit_timestamp_ms: now,
                    },
                ));
                0
            })
            .collect();
        codes.push(topic_codes);
    }
    let request_error = match owned {
        Err(code) => Some(code),
        Ok(())
            if !offsets.is_empty()
                && let Err(e) = crate::txn::verify::verify_offsets(
                    state,
                    &request.transactional_id,
                    request.producer_id.0,
                    request.producer_epoch,
                    &request.group_id,
                )
                .await =>
        {
            tracing::debug!(group = %request.group_id.as_str(), error = %e, "transactional offsets refused");
            Some(verify_error_code(
                &e,
                ResponseError::CoordinatorNotAvailable.code(),
            ))
        }
        Ok(()) => {
            // Member id, instance id and generation exist from v3 (KIP-447);
            // before, their defaults make an anonymous commit.
            let by = Committer {
                member_id: &request.member_id,
                instance_id: request.group_instance_id.as_deref(),
                generation: request.generation_id,
            };
            state
                .groups()
                .commit_txn_offsets(
                    &state.offsets_topic(),
                    &request.group_id,
                    request.producer_id.0,
                    request.producer_epoch,
                    by,
                    offsets,
                )
                .await
                .err()
                .map(|e| group_error_code(&e))
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(topic_codes)
                .map(|(p, code)| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(if code == 0 {
                            request_error.unwrap_or(0)
                        } else {
                            code
                        })
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
