//! DescribeProducers (KIP-664): the producers with state on partitions this
//! broker leads — id, epoch, last sequence and timestamp, the epoch of the
//! coordinator of their last marker, and where their open transaction
//! starts (-1: none) — for `kafka-transactions.sh describe-producers` and
//! finding hanging transactions. Needs READ on the topic, as in Kafka;
//! a partition it does not lead is NOT_LEADER_OR_FOLLOWER.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::partition_error_code;

pub(crate) async fn handle(
    state: &BrokerState,
    request: DescribeProducersRequest,
    access: &Access,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let authorized = access.topic(Operation::Read, &t.name);
        let topic = state.registry().get(&t.name);
        let mut partitions = Vec::with_capacity(t.partition_indexes.len());
        for index in t.partition_indexes {
            let answer = PartitionResponse::default().with_partition_index(index);
            if !authorized {
                partitions
                    .push(answer.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
                continue;
            }
            let Some(partition) = topic.as_ref().and_then(|t| t.partition(index)) else {
                partitions
                    .push(answer.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            if let Err(e) = crate::quorum_link::check_leader(state.cluster(), &partition, -1) {
                partitions.push(answer.with_error_code(partition_error_code(&e)));
                continue;
            }
            let answer = match partition.describe_producers().await {
                Ok(producers) => answer.with_active_producers(
                    producers
                        .into_iter()
                        .map(|(p, txn_start)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(p.producer_id))
                                .with_producer_epoch(i32::from(p.epoch))
                                .with_last_sequence(p.last_sequence)
                                .with_last_timestamp(p.last_timestamp)
                                .with_coordinator_epoch(p.coordinator_epoch)
                                .with_current_txn_start_offset(txn_start)
                        })
                        .collect(),
                ),
                Err(e) => answer.with_error_code(partition_error_code(&e)),
            };
            partitions.push(answer);
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
