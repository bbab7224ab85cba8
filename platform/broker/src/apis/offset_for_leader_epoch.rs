//! OffsetForLeaderEpoch: where a leader epoch ends in this leader's log.
//! A follower asks it before fetching, to cut records a former leader
//! wrote but never committed (KIP-101); consumers ask it to check their
//! position after a leader change (KIP-320). A follower (a replica id)
//! needs CLUSTER_ACTION on the cluster, a consumer DESCRIBE on the topic.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::partition_error_code;

pub(crate) fn handle(
    state: &BrokerState,
    request: OffsetForLeaderEpochRequest,
    access: &Access,
) -> OffsetForLeaderEpochResponse {
    let follower = request.replica_id.0 >= 0;
    let cluster_ok = !follower || access.cluster(Operation::ClusterAction);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let refused = if !cluster_ok {
                Some(ResponseError::ClusterAuthorizationFailed.code())
            } else if !follower && !access.topic(Operation::Describe, &t.topic) {
                Some(ResponseError::TopicAuthorizationFailed.code())
            } else {
                None
            };
            let topic = state.registry().get(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    if let Some(code) = refused {
                        return answer.with_error_code(code);
                    }
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition))
                    else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Err(e) = crate::quorum_link::check_leader(
                        state.cluster(),
                        &partition,
                        p.current_leader_epoch,
                    ) {
                        return answer.with_error_code(partition_error_code(&e));
                    }
                    match partition.log().end_offset_for_epoch(p.leader_epoch) {
                        Some((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end),
                        None => answer,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
