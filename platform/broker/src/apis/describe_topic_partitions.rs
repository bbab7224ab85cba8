//! DescribeTopicPartitions (KIP-966): Metadata's topic descriptions, paged
//! by partitions. Topics are answered in name order, from the request's
//! cursor on, until `response_partition_limit` partitions (at most
//! [`MAX_PARTITIONS_PER_RESPONSE`], Kafka's
//! `max.request.partition.size.limit`) are in the answer; `next_cursor`
//! then names the first topic and partition left out, and the client asks
//! again from there. No topics asked for means every topic.
//!
//! As Kafka answers: a cursor whose topic is not among those asked for is
//! INVALID_REQUEST for every topic; a topic asked for that the requester
//! may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED (listed last, with no
//! id, whether it exists or not), one that does not exist
//! UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an invalid
//! name); when every topic is asked for, those not describable are left
//! out. Partitions are described as Metadata v13 describes them
//! (`super::metadata::describe_topic`); this broker has no eligible
//! leader replicas (KIP-966's ELR), so those lists are empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::listeners::BoundListener;

/// The most partitions one answer describes, whatever the client asks
/// (Kafka's `max.request.partition.size.limit` default).
pub(crate) const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// The Metadata version whose descriptions these are.
const METADATA_VERSION: i16 = 13;

pub(crate) fn handle(
    state: &Arc<BrokerState>,
    listener: &BoundListener,
    request: DescribeTopicPartitionsRequest,
    access: &Access,
) -> DescribeTopicPartitionsResponse {
    let all = request.topics.is_empty();
    let (cursor_topic, cursor_partition) = match &request.cursor {
        Some(c) => (c.topic_name.to_string(), c.partition_index),
        None => (String::new(), 0),
    };
    // Names from the cursor's on, sorted and without duplicates.
    let names: BTreeSet<String> = if all {
        state
            .registry()
            .list()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|n| *n >= cursor_topic)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| *n >= cursor_topic)
            .collect()
    };
    if !all && request.cursor.is_some() && !names.contains(&cursor_topic) {
        let code = ResponseError::InvalidRequest.code();
        let topics = request
            .topics
            .into_iter()
            .map(|t| topic_error(code, t.name, false))
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }
    // Topics the requester may not describe are not told to exist.
    let (describable, refused): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|name| access.topic(Operation::Describe, name));
    let first_partition = if !cursor_topic.is_empty() && describable.contains(&cursor_topic) {
        cursor_partition.max(0)
    } else {
        0
    };
    let mut remaining = request
        .response_partition_limit
        .min(MAX_PARTITIONS_PER_RESPONSE);
    let cluster = state.cluster().map(|link| link.metadata());
    let node = state.config().node_id;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in describable {
        if remaining == 0 {
            // The previous topics are complete: go on with this one.
            next_cursor = Some(cursor(&name, 0));
            break;
        }
        if remaining < 0 {
            break;
        }
        let Some(topic) = state.registry().get(&name) else {
            if !all {
                let code = match crate::topic_registry::validate_topic_name(&name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition.code(),
                    Err(_) => ResponseError::InvalidTopicException.code(),
                };
                let internal = crate::auth::is_internal_topic(&name);
                topics.push(
                    topic_error(code, topic_name(&name), internal)
                        .with_topic_authorized_operations(
                            access.operations(ResourceType::Topic, &name),
                        ),
                );
            }
            continue;
        };
        let described = super::metadata::describe_topic(
            cluster.as_deref(),
            node,
            &listener.name,
            &topic,
            METADATA_VERSION,
        );
        let start = if name == cursor_topic {
            first_partition
        } else {
            0
        };
        let mut partitions: Vec<_> = described
            .partitions
            .into_iter()
            .filter(|p| p.partition_index >= start)
            .collect();
        partitions.sort_by_key(|p| p.partition_index);
        let taken = partitions.len().min(remaining as usize);
        let next = partitions.get(taken).map(|p| p.partition_index);
        partitions.truncate(taken);
        let partitions: Vec<_> = partitions
            .into_iter()
            .map(|p| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(p.error_code)
                    .with_partition_index(p.partition_index)
                    .with_leader_id(p.leader_id)
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(p.replica_nodes)
                    .with_isr_nodes(p.isr_nodes)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(p.offline_replicas)
            })
            .collect();
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(described.name)
                .with_topic_id(described.topic_id)
                .with_is_internal(described.is_internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(access.operations(ResourceType::Topic, &name)),
        );
        if let Some(next) = next {
            next_cursor = Some(cursor(&name, next));
            break;
        }
        remaining -= taken as i32;
    }
    if !all {
        let code = ResponseError::TopicAuthorizationFailed.code();
        topics.extend(
            refused
                .iter()
                .map(|name| topic_error(code, topic_name(name), false)),
        );
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(topic_name(topic))
        .with_partition_index(partition)
}

/// A topic answered with an error: no id, no partitions.
fn topic_error(code: i16, name: TopicName, internal: bool) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(code)
        .with_name(Some(name))
        .with_topic_id(Uuid::nil())
        .with_is_internal(internal)
}
