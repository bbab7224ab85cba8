//! Metadata: the broker, and the topics asked for (auto-creating unknown
//! ones when allowed).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::server::BrokerState;
use crate::topic_registry::Topic;

pub(crate) fn handle(
    state: &BrokerState,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let node = state.config.node_id;
    let broker = MetadataResponseBroker::default()
        .with_node_id(node.into())
        .with_host(StrBytes::from_string(state.advertised_host.clone()))
        .with_port(state.advertised_port);
    // v0: an empty list means all topics; v1+: null means all topics.
    let all = match &request.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    // Before v4 the request has no flag and auto-creation is implied.
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let topics = if all {
        state
            .registry
            .list()
            .iter()
            .map(|t| describe(t, node, version))
            .collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|wanted| match wanted.name {
                Some(name) => match super::topic_or_create(state, &name, auto_create) {
                    Ok(topic) => describe(&topic, node, version),
                    Err(code) => MetadataResponseTopic::default()
                        .with_error_code(code)
                        .with_name(Some(name)),
                },
                None => match state.registry.by_id(wanted.topic_id) {
                    Some(topic) => describe(&topic, node, version),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(wanted.topic_id),
                },
            })
            .collect()
    };
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_controller_id(node.into())
        .with_topics(topics);
    if version >= 2 {
        response = response.with_cluster_id(Some(StrBytes::from_string(
            state.registry.cluster_id().to_string(),
        )));
    }
    response
}

fn describe(topic: &Topic, node: i32, version: i16) -> MetadataResponseTopic {
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index())
                .with_leader_id(node.into())
                .with_leader_epoch(p.leader_epoch())
                .with_replica_nodes(vec![node.into()])
                .with_isr_nodes(vec![node.into()])
        })
        .collect();
    let id = if version >= 10 {
        topic.id()
    } else {
        Uuid::nil()
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name().to_string(),
        ))))
        .with_topic_id(id)
        .with_partitions(partitions)
}
