//! Per-API limits on what one request may name (`request.max.*` in
//! `config/`): topics per Metadata, partitions per Produce and Fetch,
//! topics per CreateTopics and DeleteTopics, groups per DescribeGroups and
//! DeleteGroups.
//!
//! `request.max.array.elements` bounds the memory of a decode first (past
//! it the connection closes, as nothing was built to answer); a request
//! within that budget but over its API's limit is decoded already, so it is
//! *answered*: INVALID_REQUEST in every entry it names (echoing them is
//! bounded by the element budget) with a message naming the limit where
//! the response has one, and the connection serves on. Nothing of the
//! request is acted on.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    CreateTopicsResponse, DeleteGroupsResponse, DeleteTopicsResponse, DescribeGroupsResponse,
    FetchResponse, MetadataResponse, ProduceResponse, RequestKind, ResponseKind,
    create_topics_response, delete_groups_response, delete_topics_response,
    describe_groups_response, fetch_response, metadata_response, produce_response,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::BrokerConfig;

/// A request naming more than its API's limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request names {count} {what}, more than {setting} ({limit})")]
pub(crate) struct OverLimit {
    /// The setting, e.g. `request.max.metadata.topics`.
    pub(crate) setting: &'static str,
    /// Its value.
    pub(crate) limit: usize,
    /// What the request names.
    pub(crate) count: usize,
    /// "topics", "partitions" or "groups".
    pub(crate) what: &'static str,
}

/// The limit `body` is over, if any.
pub(crate) fn exceeded(config: &BrokerConfig, body: &RequestKind) -> Option<OverLimit> {
    let (setting, limit, count, what) = match body {
        RequestKind::Metadata(r) => (
            "request.max.metadata.topics",
            config.request_max_metadata_topics,
            r.topics.as_ref().map_or(0, Vec::len),
            "topics",
        ),
        RequestKind::Produce(r) => (
            "request.max.produce.partitions",
            config.request_max_produce_partitions,
            r.topic_data.iter().map(|t| t.partition_data.len()).sum(),
            "partitions",
        ),
        RequestKind::Fetch(r) => (
            "request.max.fetch.partitions",
            config.request_max_fetch_partitions,
            r.topics.iter().map(|t| t.partitions.len()).sum::<usize>()
                + r.forgotten_topics_data
                    .iter()
                    .map(|t| t.partitions.len())
                    .sum::<usize>(),
            "partitions",
        ),
        RequestKind::CreateTopics(r) => (
            "request.max.admin.topics",
            config.request_max_admin_topics,
            r.topics.len(),
            "topics",
        ),
        RequestKind::DeleteTopics(r) => (
            "request.max.admin.topics",
            config.request_max_admin_topics,
            r.topics.len() + r.topic_names.len(),
            "topics",
        ),
        RequestKind::DescribeGroups(r) => (
            "request.max.groups",
            config.request_max_groups,
            r.groups.len(),
            "groups",
        ),
        RequestKind::DeleteGroups(r) => (
            "request.max.groups",
            config.request_max_groups,
            r.groups_names.len(),
            "groups",
        ),
        _ => return None,
    };
    (count > limit).then_some(OverLimit {
        setting,
        limit,
        count,
        what,
    })
}

/// The answer to `body` (of `version`), which is over `over`: every entry
/// INVALID_REQUEST, fields only where `version` has them (the encoder
/// refuses the others). `None` for an API without a limit.
pub(crate) fn refusal(version: i16, body: RequestKind, over: &OverLimit) -> Option<ResponseKind> {
    let code = ResponseError::InvalidRequest.code();
    let message = Some(StrBytes::from_string(over.to_string()));
    let since = |first: i16| {
        if version >= first {
            message.clone()
        } else {
            None
        }
    };
    Some(match body {
        RequestKind::Metadata(r) => ResponseKind::Metadata(
            MetadataResponse::default()
                .with_error_code(if version >= 13 { code } else { 0 })
                .with_topics(
                    r.topics
                        .unwrap_or_default()
                        .into_iter()
                        .map(|t| {
                            metadata_response::MetadataResponseTopic::default()
                                .with_error_code(code)
                                // Names are nullable from v12 only.
                                .with_name(t.name.or_else(|| (version < 12).then(Default::default)))
                                .with_topic_id(if version >= 10 {
                                    t.topic_id
                                } else {
                                    Default::default()
                                })
                        })
                        .collect(),
                ),
        ),
        RequestKind::Produce(r) => ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                r.topic_data
                    .into_iter()
                    .map(|t| {
                        produce_response::TopicProduceResponse::default()
                            .with_name(t.name)
                            .with_topic_id(t.topic_id)
                            .with_partition_responses(
                                t.partition_data
                                    .into_iter()
                                    .map(|p| {
                                        produce_response::PartitionProduceResponse::default()
                                            .with_index(p.index)
                                            .with_error_code(code)
                                            .with_error_message(since(8))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        // Fetch has no error message; its top-level code (v7+) says the
        // whole request was refused, as for a fetch session error.
        RequestKind::Fetch(r) => ResponseKind::Fetch(
            FetchResponse::default()
                .with_error_code(if version >= 7 { code } else { 0 })
                .with_responses(
                    r.topics
                        .into_iter()
                        .map(|t| {
                            fetch_response::FetchableTopicResponse::default()
                                .with_topic(t.topic)
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .into_iter()
                                        .map(|p| {
                                            fetch_response::PartitionData::default()
                                                .with_partition_index(p.partition)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .into_iter()
                    .map(|t| {
                        create_topics_response::CreatableTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(code)
                            .with_error_message(since(1))
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => {
            let results = if version >= 6 {
                r.topics
                    .into_iter()
                    .map(|t| {
                        delete_topics_response::DeletableTopicResult::default()
                            .with_name(t.name)
                            .with_topic_id(t.topic_id)
                    })
                    .collect::<Vec<_>>()
            } else {
                r.topic_names
                    .into_iter()
                    .map(|name| {
                        delete_topics_response::DeletableTopicResult::default()
                            .with_name(Some(name))
                    })
                    .collect()
            };
            ResponseKind::DeleteTopics(
                DeleteTopicsResponse::default().with_responses(
                    results
                        .into_iter()
                        .map(|t| t.with_error_code(code).with_error_message(since(5)))
                        .collect(),
                ),
            )
        }
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(
            DescribeGroupsResponse::default().with_groups(
                r.groups
                    .into_iter()
                    .map(|group_id| {
                        describe_groups_response::DescribedGroup::default()
                            .with_group_id(group_id)
                            .with_error_code(code)
                            .with_error_message(since(6))
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(
            DeleteGroupsResponse::default().with_results(
                r.groups_names
                    .into_iter()
                    .map(|group_id| {
                        delete_groups_response::DeletableGroupResult::default()
                            .with_group_id(group_id)
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::encode_response;
    use crate::request::samples::sample;
    use crate::versions::SUPPORTED_APIS;

    /// Every limited API's refusal encodes in every supported version:
    /// no field is set where the version lacks it.
    #[test]
    fn refusals_encode_in_every_version() {
        let config = BrokerConfig {
            request_max_metadata_topics: 0,
            request_max_produce_partitions: 0,
            request_max_fetch_partitions: 0,
            request_max_admin_topics: 0,
            request_max_groups: 0,
            ..BrokerConfig::default()
        };
        let mut refused = 0;
        for &(api, min, max) in SUPPORTED_APIS {
            for version in min..=max {
                let body = sample(api, version);
                let Some(over) = exceeded(&config, &body) else {
                    continue;
                };
                assert_eq!(over.limit, 0);
                let response = refusal(version, body, &over).expect("a limited API");
                encode_response(api, version, 1, &response)
                    .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
                refused += 1;
            }
        }
        assert!(refused > 30, "{refused}");
        assert_eq!(
            exceeded(
                &BrokerConfig::default(),
                &sample(kafka_protocol::messages::ApiKey::Produce, 9)
            ),
            None
        );
    }
}
