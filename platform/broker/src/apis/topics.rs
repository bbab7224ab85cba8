//! CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::auth::Principal;
use crate::error::auth_error_code;
use crate::server::BrokerState;
use crate::topic_config::TopicConfigs;
use crate::topic_registry::ApiError;

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

pub(crate) fn create(
    state: &BrokerState,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let node = state.config.node_id;
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            let outcome = (|| -> Result<(i32, i16, TopicConfigs, Option<uuid::Uuid>), ApiError> {
                if duplicates.contains(t.name.as_str()) {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        "topic named more than once in the request",
                    ));
                }
                if let Some(link) = &state.cluster {
                    if !t.assignments.is_empty() {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            "replica assignments are not supported yet: give partitions and a replication factor",
                        ));
                    }
                    let partitions = match t.num_partitions {
                        -1 => state.config.num_partitions,
                        n => n,
                    };
                    let replication_factor = match t.replication_factor {
                        -1 => state.config.default_replication_factor,
                        n => n,
                    };
                    let configs = TopicConfigs::from_pairs(t.configs.iter().filter_map(|c| {
                        c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))
                    }))
                    .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e))?;
                    let id = crate::cluster::admin::create_topic(
                        link,
                        &t.name,
                        partitions,
                        replication_factor,
                        &configs,
                        request.validate_only,
                    )?;
                    return Ok((partitions, replication_factor, configs, id));
                }
                if t.replication_factor != -1 && t.replication_factor != 1 {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicationFactor,
                        format!(
                            "replication factor {} is larger than the 1 available broker",
                            t.replication_factor
                        ),
                    ));
                }
                let partitions = if !t.assignments.is_empty() {
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            "give either assignments or partitions and replication factor",
                        ));
                    }
                    let only_us = t
                        .assignments
                        .iter()
                        .all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == node);
                    if !only_us {
                        return Err(ApiError::new(
                            ResponseError::InvalidReplicaAssignment,
                            format!("this single-node cluster has only broker {node}"),
                        ));
                    }
                    t.assignments.len() as i32
                } else if t.num_partitions == -1 {
                    state.config.num_partitions
                } else {
                    t.num_partitions
                };
                let configs = TopicConfigs::from_pairs(t.configs.iter().filter_map(|c| {
                    c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))
                }))
                .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e))?;
                let topic = state.registry.create(
                    &t.name,
                    partitions,
                    configs.clone(),
                    request.validate_only,
                )?;
                Ok((partitions, 1, configs, topic.map(|t| t.id())))
            })();
            match outcome {
                Ok((partitions, replication_factor, configs, id)) => {
                    let mut result = result.with_topic_id(id.unwrap_or_default());
                    if version >= 5 {
                        let described = configs
                            .describe(state.registry.defaults())
                            .into_iter()
                            .map(|(name, value, source, _)| {
                                CreatableTopicConfigs::default()
                                    .with_name(StrBytes::from_string(name))
                                    .with_value(Some(StrBytes::from_string(value)))
                                    .with_config_source(source)
                            })
                            .collect();
                        result = result
                            .with_num_partitions(partitions)
                            .with_replication_factor(replication_factor)
                            .with_configs(Some(described));
                    }
                    result
                }
                Err(e) => {
                    tracing::debug!(topic = %t.name.as_str(), error = %e.message, "create topic refused");
                    result
                        .with_error_code(e.code)
                        .with_error_message(message(e.message))
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) fn delete(
    state: &BrokerState,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // v6 names topics by name or id in `topics`; earlier versions by name.
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(name) => state.registry.get(name),
                None => state.registry.by_id(id),
            };
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            let Some(topic) = resolved else {
                let error = if name.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::UnknownTopicId
                };
                return result.with_error_code(error.code());
            };
            let result = result
                .with_name(Some(TopicName(StrBytes::from_string(
                    topic.name().to_string(),
                ))))
                .with_topic_id(if version >= 6 {
                    topic.id()
                } else {
                    uuid::Uuid::nil()
                });
            let deleted = match &state.cluster {
                Some(link) => crate::cluster::admin::delete_topic(link, topic.name()),
                None => state.registry.delete(topic.name()),
            };
            match deleted {
                Ok(()) => result,
                Err(e) => {
                    let result = result.with_error_code(e.code);
                    if version >= 5 {
                        result.with_error_message(message(e.message))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Internal topics keep the partition count the platform gave them (the
/// offsets topic maps groups onto its partitions, a changelog mirrors its
/// source's).
pub(crate) fn create_partitions(
    state: &BrokerState,
    request: CreatePartitionsRequest,
    principal: Principal,
) -> CreatePartitionsResponse {
    let node = state.config.node_id;
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Err(e) = crate::auth::may_change(principal, &t.name, "add partitions to") {
                return result
                    .with_error_code(auth_error_code(&e))
                    .with_error_message(message(e.to_string()));
            }
            let foreign = t
                .assignments
                .iter()
                .flatten()
                .any(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node);
            let outcome = if let Some(link) = &state.cluster {
                if t.assignments.is_some() {
                    Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        "replica assignments are not supported yet",
                    ))
                } else {
                    crate::cluster::admin::add_partitions(
                        link,
                        &t.name,
                        t.count,
                        request.validate_only,
                    )
                }
            } else if foreign {
                Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!("this single-node cluster has only broker {node}"),
                ))
            } else {
                state
                    .registry
                    .add_partitions(&t.name, t.count, request.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(message(e.message)),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
