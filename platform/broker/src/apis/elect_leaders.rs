//! ElectLeaders: move partition leadership back to the preferred replica
//! (the first of the replica list), or elect a leader outside the ISR for
//! partitions that have none (unclean). In a cluster each partition is one
//! `ElectLeader` command to the controller quorum; a single node leads all
//! its partitions already. Needs ALTER on the cluster (refused: every
//! partition and, v1+, the whole answer CLUSTER_AUTHORIZATION_FAILED).

use std::sync::Arc;

use fjord_controller::ElectionType;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;

/// Kafka's `election_type` values (v1+; v0 is always preferred).
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    version: i16,
    request: ElectLeadersRequest,
    access: &Access,
) -> ElectLeadersResponse {
    if !access.cluster(Operation::Alter) {
        let refused = ResponseError::ClusterAuthorizationFailed.code();
        let results = request
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let partitions = t.partitions.iter().map(|&p| {
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(refused)
                });
                ReplicaElectionResult::default()
                    .with_topic(t.topic)
                    .with_partition_result(partitions.collect())
            })
            .collect();
        let response = ElectLeadersResponse::default().with_replica_election_results(results);
        return if version >= 1 {
            response.with_error_code(refused)
        } else {
            response
        };
    }
    let election = match (version, request.election_type) {
        (0, _) | (_, PREFERRED) => ElectionType::Preferred,
        (_, UNCLEAN) => ElectionType::Unclean,
        // Only v1+ carries an election type, and a top-level error.
        (_, other) => {
            tracing::debug!(
                election_type = other,
                "ElectLeaders with an unknown election type"
            );
            return ElectLeadersResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code());
        }
    };
    let metadata = state.metadata();
    let wanted: Vec<(TopicName, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect(),
        None => metadata
            .needing_election(election)
            .into_iter()
            .map(|(topic, partitions)| (TopicName(StrBytes::from_string(topic)), partitions))
            .collect(),
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut partition_result = Vec::with_capacity(partitions.len());
        for partition in partitions {
            let outcome = metadata.elect_leader(&topic, partition, election).await;
            let result = PartitionResult::default().with_partition_id(partition);
            partition_result.push(match outcome {
                Ok(()) => result.with_error_message(None),
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(StrBytes::from_string(e.message))),
            });
        }
        results.push(
            ReplicaElectionResult::default()
                .with_topic(topic)
                .with_partition_result(partition_result),
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
