//! CreateTopics, DeleteTopics and CreatePartitions. Creating a topic
//! needs CREATE on the cluster or the topic (and its configs are shown
//! with DESCRIBE_CONFIGS on it), deleting one DELETE on it, adding
//! partitions ALTER on it; refusals are TOPIC_AUTHORIZATION_FAILED.
//!
//! The partitions each request creates, adds or deletes count towards the
//! client's `controller_mutation_rate` ([`Mutations`]): once it is
//! exceeded, a topic is refused with THROTTLING_QUOTA_EXCEEDED (strict
//! versions) or the answer throttled (older ones). `validate_only`
//! mutates nothing and counts nothing.

use std::collections::HashSet;
use std::sync::Arc;

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

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::auth_error_code;
use crate::metadata::{Metadata, NewTopic, Replication};
use crate::quotas::{Mutations, QuotaExceeded};
use crate::topic_registry::ApiError;

fn throttled(e: QuotaExceeded) -> ApiError {
    ApiError::new(ResponseError::ThrottlingQuotaExceeded, e.to_string())
}

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

pub(crate) async fn create(
    state: &Arc<BrokerState>,
    version: i16,
    request: CreateTopicsRequest,
    access: &Access,
    mutations: &mut Mutations<'_>,
) -> CreateTopicsResponse {
    let metadata = state.metadata();
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = request
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let result = CreatableTopicResult::default().with_name(t.name.clone());
        let outcome = if duplicates.contains(t.name.as_str()) {
            Err(ApiError::new(
                ResponseError::InvalidRequest,
                "topic named more than once in the request",
            ))
        } else if !access.may_create_topic(&t.name) {
            Err(ApiError::new(
                ResponseError::TopicAuthorizationFailed,
                format!("not authorized to create topic {}", t.name.as_str()),
            ))
        } else if let Err(e) = crate::auth::may_change(&access.principal, &t.name, "create") {
            // Made first by a client, an internal topic would have its
            // partitions and configs: the platform makes them.
            Err(ApiError {
                code: auth_error_code(&e),
                message: e.to_string(),
            })
        } else if let Err(e) = admit(mutations, request.validate_only) {
            Err(throttled(e))
        } else {
            let topic = NewTopic {
                name: t.name.to_string(),
                partitions: (t.num_partitions != -1).then_some(t.num_partitions),
                replication: match t.replication_factor {
                    -1 => Replication::Default,
                    n => Replication::Factor(n),
                },
                assignments: t
                    .assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect(),
                configs: t
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect(),
            };
            let created = metadata.create_topic(topic, request.validate_only).await;
            if let (Ok(c), false) = (&created, request.validate_only) {
                mutations.record(c.partitions.max(0) as u32);
            }
            created.map(|c| (c.partitions, c.replication_factor, c.configs, c.id))
        };
        results.push(
            match outcome {
                Ok((partitions, replication_factor, configs, id)) => {
                    let mut result = result.with_topic_id(id.unwrap_or_default());
                    if version >= 5 && !access.topic(Operation::DescribeConfigs, &t.name) {
                        result = result
                            .with_num_partitions(partitions)
                            .with_replication_factor(replication_factor)
                            .with_topic_config_error_code(
                                ResponseError::TopicAuthorizationFailed.code(),
                            )
                            .with_configs(None);
                    } else if version >= 5 {
                        let described = state
                            .registry()
                            .describe_configs(&configs)
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
            },
        );
    }
    CreateTopicsResponse::default().with_topics(results)
}

pub(crate) async fn delete(
    state: &Arc<BrokerState>,
    version: i16,
    request: DeleteTopicsRequest,
    access: &Access,
    mutations: &mut Mutations<'_>,
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
    let metadata = state.metadata();
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        responses.push(delete_one(state, &metadata, access, version, name, id, mutations).await);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Deletes the topic called `name` (or, with no name, of id `id`).
async fn delete_one(
    state: &BrokerState,
    metadata: &Metadata,
    access: &Access,
    version: i16,
    name: Option<TopicName>,
    id: uuid::Uuid,
    mutations: &mut Mutations<'_>,
) -> DeletableTopicResult {
    let refused = DeletableTopicResult::default()
        .with_name(name.clone())
        .with_topic_id(id)
        .with_error_code(ResponseError::TopicAuthorizationFailed.code());
    // Refused before the lookup: whether the topic exists is not told.
    if name
        .as_ref()
        .is_some_and(|n| !access.topic(Operation::Delete, n))
    {
        return refused;
    }
    let resolved = match &name {
        Some(name) => state.registry().get(name),
        None => state.registry().by_id(id),
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
    if !access.topic(Operation::Delete, topic.name()) {
        return refused;
    }
    if let Err(e) = crate::auth::may_change(&access.principal, topic.name(), "delete") {
        let result = result.with_error_code(auth_error_code(&e));
        return if version >= 5 {
            result.with_error_message(message(e.to_string()))
        } else {
            result
        };
    }
    let result = result
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name().to_string(),
        ))))
        .with_topic_id(if version >= 6 {
            topic.id()
        } else {
            uuid::Uuid::nil()
        });
    if let Err(e) = mutations.admit() {
        return result
            .with_error_code(ResponseError::ThrottlingQuotaExceeded.code())
            .with_error_message(message(e.to_string()));
    }
    match metadata.delete_topic(topic.name()).await {
        Ok(()) => {
            mutations.record(topic.partition_count().max(0) as u32);
            result
        }
        Err(e) => {
            let result = result.with_error_code(e.code);
            if version >= 5 {
                result.with_error_message(message(e.message))
            } else {
                result
            }
        }
    }
}

/// Internal topics keep the partition count the platform gave them (the
/// offsets topic maps groups onto its partitions, a changelog mirrors its
/// source's).
pub(crate) async fn create_partitions(
    state: &Arc<BrokerState>,
    request: CreatePartitionsRequest,
    access: &Access,
    mutations: &mut Mutations<'_>,
) -> CreatePartitionsResponse {
    let metadata = state.metadata();
    let mut results = Vec::with_capacity(request.topics.len());
    for t in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        if !access.topic(Operation::Alter, &t.name) {
            results.push(result.with_error_code(ResponseError::TopicAuthorizationFailed.code()));
            continue;
        }
        if let Err(e) = crate::auth::may_change(&access.principal, &t.name, "add partitions to") {
            results.push(
                result
                    .with_error_code(auth_error_code(&e))
                    .with_error_message(message(e.to_string())),
            );
            continue;
        }
        let assignments = t.assignments.map(|assignments| {
            assignments
                .into_iter()
                .map(|a| a.broker_ids.into_iter().map(|b| b.0).collect())
                .collect()
        });
        if let Err(e) = admit(mutations, request.validate_only) {
            results.push(
                result
                    .with_error_code(ResponseError::ThrottlingQuotaExceeded.code())
                    .with_error_message(message(e.to_string())),
            );
            continue;
        }
        let before = state
            .registry()
            .get(&t.name)
            .map_or(t.count, |topic| topic.partition_count());
        let outcome = metadata
            .create_partitions(&t.name, t.count, assignments, request.validate_only)
            .await;
        results.push(match outcome {
            Ok(()) => {
                if !request.validate_only {
                    mutations.record(t.count.saturating_sub(before).max(0) as u32);
                }
                result
            }
            Err(e) => result
                .with_error_code(e.code)
                .with_error_message(message(e.message)),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// A mutation's turn under the quota; `validate_only` mutates nothing and
/// is never refused for it.
fn admit(mutations: &mut Mutations<'_>, validate_only: bool) -> Result<(), QuotaExceeded> {
    if validate_only {
        return Ok(());
    }
    mutations.admit()
}
