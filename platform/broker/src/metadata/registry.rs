//! The frontend over the local registry (a single node): this broker is
//! the only replica of every topic, and a change is a change of the
//! [`TopicRegistry`](crate::topic_registry::TopicRegistry) in the data
//! directory. The registry writes directories and files, so each change
//! runs on a blocking thread.
//!
//! A broker of a cluster also lands here for a topic the quorum does not
//! know (one created before the node joined a cluster): elections and
//! reassignments of such a topic are answered as on a single node.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::{CreatedTopic, NewTopic, Parts, Replication, parse_configs};
use crate::topic_config::TopicConfigs;
use crate::topic_registry::{ApiError, TopicRegistry};

/// Runs `change` on the registry on a blocking thread.
async fn on_registry<T: Send + 'static>(
    parts: &Parts,
    change: impl FnOnce(&TopicRegistry) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let registry = Arc::clone(&parts.registry);
    blocking(move || change(&registry)).await
}

/// Runs `change` (which writes files) on a blocking thread.
pub(super) async fn blocking<T: Send + 'static>(
    change: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(change).await.map_err(|e| {
        ApiError::new(
            ResponseError::UnknownServerError,
            format!("the registry change did not finish: {e}"),
        )
    })?
}

pub(super) async fn create_topic(
    parts: &Parts,
    topic: NewTopic,
    validate_only: bool,
) -> Result<CreatedTopic, ApiError> {
    let node = parts.config.node_id;
    if let Replication::Factor(rf) = topic.replication
        && rf != 1
    {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!("replication factor {rf} is larger than the 1 available broker"),
        ));
    }
    let partitions = if !topic.assignments.is_empty() {
        if topic.partitions.is_some() || matches!(topic.replication, Replication::Factor(_)) {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                "give either assignments or partitions and replication factor",
            ));
        }
        let only_us = topic
            .assignments
            .iter()
            .all(|replicas| replicas.as_slice() == [node]);
        if !only_us {
            return Err(ApiError::new(
                ResponseError::InvalidReplicaAssignment,
                format!("this single-node cluster has only broker {node}"),
            ));
        }
        topic.assignments.len() as i32
    } else {
        topic.partitions.unwrap_or(parts.config.num_partitions)
    };
    let configs = parse_configs(&topic.configs)?;
    let (name, kept) = (topic.name, configs.clone());
    let created = on_registry(parts, move |registry| {
        registry.create(&name, partitions, kept, validate_only)
    })
    .await?;
    Ok(CreatedTopic {
        partitions,
        replication_factor: 1,
        configs,
        id: created.as_ref().map(|t| t.id()),
        topic: created,
    })
}

pub(super) async fn delete_topic(parts: &Parts, name: &str) -> Result<(), ApiError> {
    let name = name.to_owned();
    on_registry(parts, move |registry| registry.delete(&name)).await
}

pub(super) async fn create_partitions(
    parts: &Parts,
    name: &str,
    total: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), ApiError> {
    let node = parts.config.node_id;
    let foreign = assignments
        .iter()
        .flatten()
        .any(|replicas| replicas.as_slice() != [node]);
    if foreign {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("this single-node cluster has only broker {node}"),
        ));
    }
    let name = name.to_owned();
    on_registry(parts, move |registry| {
        registry.add_partitions(&name, total, validate_only)
    })
    .await
}

pub(super) async fn set_topic_configs(
    parts: &Parts,
    name: &str,
    configs: TopicConfigs,
) -> Result<(), ApiError> {
    let name = name.to_owned();
    on_registry(parts, move |registry| registry.set_configs(&name, configs)).await
}

/// Checks that `topic`-`partition` exists here.
fn existing_partition(parts: &Parts, topic: &str, partition: i32) -> Result<(), ApiError> {
    let exists = parts
        .registry
        .get(topic)
        .is_some_and(|t| (0..t.partition_count()).contains(&partition));
    if exists {
        Ok(())
    } else {
        Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("partition {topic}-{partition} does not exist"),
        ))
    }
}

/// This broker is the only replica of the partition and already leads it.
pub(super) fn elect_leader(parts: &Parts, topic: &str, partition: i32) -> ApiError {
    match existing_partition(parts, topic, partition) {
        Ok(()) => ApiError::new(
            ResponseError::ElectionNotNeeded,
            format!(
                "broker {} is the only replica of {topic}-{partition} and leads it",
                parts.config.node_id
            ),
        ),
        Err(e) => e,
    }
}

/// The partition lives on this broker only and cannot move: the only
/// replica list it takes is this broker's.
pub(super) fn reassign(
    parts: &Parts,
    topic: &str,
    partition: i32,
    replicas: &[i32],
) -> Result<(), ApiError> {
    existing_partition(parts, topic, partition)?;
    let node = parts.config.node_id;
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

pub(super) fn unregister_broker() -> ApiError {
    ApiError::new(
        ResponseError::InvalidRequest,
        "this is a single-node broker: there are no broker registrations to remove",
    )
}
