//! ElectLeaders: move partition leadership back to the preferred replica
//! (the first of the replica list), or elect a leader outside the ISR for
//! partitions that have none (unclean). In a cluster each partition is one
//! `ElectLeader` command to the controller quorum; a single node leads all
//! its partitions already.

use fjord_controller::{ClusterMetadata, ElectionType, NO_LEADER};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;
use crate::topic_registry::ApiError;

/// Kafka's `election_type` values (v1+; v0 is always preferred).
const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(crate) fn handle(
    state: &BrokerState,
    version: i16,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
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
    let metadata = state.cluster.as_ref().map(|link| link.metadata());
    let wanted: Vec<(TopicName, Vec<i32>)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect(),
        None => match &metadata {
            Some(metadata) => needing_election(metadata, election),
            // A single node leads every partition it has: none needs one.
            None => Vec::new(),
        },
    };
    let results = wanted
        .into_iter()
        .map(|(topic, partitions)| {
            let partition_result = partitions
                .into_iter()
                .map(|partition| {
                    let outcome = elect(state, &topic, partition, election);
                    let result = PartitionResult::default().with_partition_id(partition);
                    match outcome {
                        Ok(()) => result.with_error_message(None),
                        Err(e) => result
                            .with_error_code(e.code)
                            .with_error_message(Some(StrBytes::from_string(e.message))),
                    }
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// The partitions a request without a list means: for a preferred
/// election those whose leader is not the first replica, for an unclean one
/// those without a live leader.
fn needing_election(
    metadata: &ClusterMetadata,
    election: ElectionType,
) -> Vec<(TopicName, Vec<i32>)> {
    metadata
        .topics
        .values()
        .filter_map(|topic| {
            let partitions: Vec<i32> = topic
                .partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| match election {
                    ElectionType::Preferred => p.replicas.first() != Some(&p.leader),
                    ElectionType::Clean | ElectionType::Unclean => {
                        p.leader == NO_LEADER || !metadata.is_unfenced(p.leader)
                    }
                })
                .map(|(index, _)| index as i32)
                .collect();
            (!partitions.is_empty()).then(|| {
                (
                    TopicName(StrBytes::from_string(topic.name.clone())),
                    partitions,
                )
            })
        })
        .collect()
}

fn elect(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    election: ElectionType,
) -> Result<(), ApiError> {
    if let Some(link) = &state.cluster {
        if link.metadata().topics.contains_key(topic) {
            return crate::cluster::admin::elect_leader(link, topic, partition, election)
                .map(|_| ());
        }
    }
    // A single node's topic (also one created before the node joined a
    // cluster): this broker is its only replica and already leads it.
    let exists = state
        .registry
        .get(topic)
        .is_some_and(|t| (0..t.partition_count()).contains(&partition));
    if exists {
        Err(ApiError::new(
            ResponseError::ElectionNotNeeded,
            format!(
                "broker {} is the only replica of {topic}-{partition} and leads it",
                state.config.node_id
            ),
        ))
    } else {
        Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("partition {topic}-{partition} does not exist"),
        ))
    }
}
