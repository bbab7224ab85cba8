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
//! replicas are.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;
use crate::topic_registry::ApiError;

pub(crate) fn alter(
    state: &BrokerState,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let responses = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let outcome = match p.replicas {
                        Some(replicas) => {
                            let replicas: Vec<i32> = replicas.iter().map(|b| b.0).collect();
                            reassign(state, &topic.name, p.partition_index, &replicas)
                        }
                        None => Err(ApiError::new(
                            ResponseError::NoReassignmentInProgress,
                            "reassignments are applied at once: there is none in progress to cancel",
                        )),
                    };
                    let result =
                        ReassignablePartitionResponse::default().with_partition_index(p.partition_index);
                    match outcome {
                        Ok(()) => result.with_error_message(None),
                        Err(e) => result
                            .with_error_code(e.code)
                            .with_error_message(Some(StrBytes::from_string(e.message))),
                    }
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
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
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default().with_error_message(None)
}

fn reassign(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    replicas: &[i32],
) -> Result<(), ApiError> {
    if let Some(link) = &state.cluster {
        if link.metadata().topics.contains_key(topic) {
            return crate::cluster::admin::reassign(link, topic, partition, replicas);
        }
    }
    // A single node's topic (also one created before the node joined a
    // cluster) lives on this broker only and cannot move.
    let node = state.config.node_id;
    let exists = state
        .registry
        .get(topic)
        .is_some_and(|t| (0..t.partition_count()).contains(&partition));
    if !exists {
        return Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("partition {topic}-{partition} does not exist"),
        ));
    }
    if replicas != [node] {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!(
                "{topic}-{partition} is not replicated: its only possible replica list is [{node}]"
            ),
        ));
    }
    Ok(())
}
