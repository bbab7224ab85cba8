//! OffsetForLeaderEpoch: where a leader epoch ends in this leader's log.
//! A follower asks it before fetching, to cut records a former leader
//! wrote but never committed (KIP-101); consumers ask it to check their
//! position after a leader change (KIP-320).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker_state::BrokerState;
use crate::error::partition_error_code;

pub(crate) fn handle(
    state: &BrokerState,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.registry().get(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
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
