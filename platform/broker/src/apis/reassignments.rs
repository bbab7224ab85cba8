//! AlterPartitionReassignments and ListPartitionReassignments.
//!
//! Kafka moves a partition in phases (adding replicas, waiting for them to
//! catch up, then removing the old ones) and lists the reassignments in
//! flight. Here the controller quorum replaces the replica list in one
//! `ReassignPartition` command: the replicas that were in sync and stay
//! keep the partition available, new replicas start copying the log at
//! once and join the ISR through the leader when they have caught up, and
//! removed replicas delete their copy. So there is never a reassignment in
//! progress to list or cancel: the ISR in Metadata shows how far the new
//! replicas are. Altering needs ALTER on the cluster, listing DESCRIBE.
//! v1 adds `allow_replication_factor_change` (KIP-860, default true): when
//! false, a new replica list of another length is INVALID_REPLICATION_FACTOR
//! for that partition (checked by the metadata frontend).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::topic_registry::ApiError;

pub(crate) async fn alter(
    state: &Arc<BrokerState>,
    request: AlterPartitionReassignmentsRequest,
    access: &Access,
) -> AlterPartitionReassignmentsResponse {
    if !access.cluster(Operation::Alter) {
        return AlterPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let metadata = state.metadata();
    let mut responses = Vec::with_capacity(request.topics.len());
    let allow_factor_change = request.allow_replication_factor_change;
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let outcome = match p.replicas {
                Some(replicas) => {
                    let replicas: Vec<i32> = replicas.iter().map(|b| b.0).collect();
                    metadata
                        .reassign(
                            &topic.name,
                            p.partition_index,
                            &replicas,
                            allow_factor_change,
                        )
                        .await
                }
                None => Err(ApiError::new(
                    ResponseError::NoReassignmentInProgress,
                    "reassignments are applied at once: there is none in progress to cancel",
                )),
            };
            let result =
                ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
            partitions.push(match outcome {
                Ok(()) => result.with_error_message(None),
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            });
        }
        responses.push(
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_responses(responses)
}

/// Always empty: reassignments complete when the quorum applies them (see
/// the module comment), and a partition the request names that is not
/// being moved is left out of the answer, as in Kafka.
pub(crate) fn list(
    _state: &BrokerState,
    _request: ListPartitionReassignmentsRequest,
    access: &Access,
) -> ListPartitionReassignmentsResponse {
    if !access.cluster(Operation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    ListPartitionReassignmentsResponse::default().with_error_message(None)
}
