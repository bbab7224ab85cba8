//! Metadata: the brokers, and the topics asked for (auto-creating unknown
//! ones when allowed). In a cluster the answer is the controller quorum's
//! view: live brokers, and each partition's leader, epoch, replicas and
//! ISR, so that clients find the leader (and find it again after a
//! failover). Internal topics are reported as such (`is_internal`). Of
//! them only `__consumer_offsets` is auto-created here, with its own
//! settings, as Kafka's AutoTopicCreationManager does whatever
//! `auto.create.topics.enable` says: tools that read it (Burrow) ask for it
//! before any group has committed. One request auto-creates at most
//! `auto.create.topics.max.per.request` topics (`super::topic_or_create`).
//!
//! Authorization: only topics the requester may DESCRIBE are listed; one
//! asked for by name that it may not is TOPIC_AUTHORIZATION_FAILED (by id:
//! UNKNOWN_TOPIC_ID, whether it exists is not told), and auto-creating one
//! needs CREATE on the cluster or the topic. `include_*_authorized_operations`
//! are answered with the requester's real sets (KIP-430).
//!
//! v13 adds a top-level error code (KIP-1102), for a broker that wants the
//! client to bootstrap again (REBOOTSTRAP_REQUIRED); this one never does,
//! so it is always 0.
//!
//! Listeners: brokers are named at their endpoint of the listener the
//! request came in on, and a partition whose leader has no such listener is
//! answered LISTENER_NOT_FOUND with no leader (v6+; LEADER_NOT_AVAILABLE
//! before), as Kafka's metadata cache answers it, so a misconfigured
//! listener shows as that error rather than as a leader the client cannot
//! find among the brokers.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use std::sync::Arc;

use fjord_controller::{ClusterMetadata, NO_LEADER};
use kafka_protocol::messages::BrokerId;

use crate::authorizer::{Access, CLUSTER_NAME, OPERATIONS_NOT_ASKED, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::group::offsets_topic::OFFSETS_TOPIC;
use crate::listeners::BoundListener;
use crate::topic_registry::Topic;

pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    listener: &BoundListener,
    version: i16,
    request: MetadataRequest,
    access: &Access,
) -> MetadataResponse {
    let node = state.config().node_id;
    let cluster = state.cluster().map(|link| link.metadata());
    let topic_operations = request.include_topic_authorized_operations;
    let describe = |topic: &Topic| {
        let described = describe_topic(cluster.as_deref(), node, &listener.name, topic, version);
        described.with_topic_authorized_operations(if topic_operations {
            access.operations(ResourceType::Topic, topic.name())
        } else {
            OPERATIONS_NOT_ASKED
        })
    };
    let describable = |name: &str| access.topic(Operation::Describe, name);
    // v0: an empty list means all topics; v1+: null means all topics.
    let all = match &request.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    // Before v4 the request has no flag and auto-creation is implied.
    let auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut creations_left = if auto_create {
        state.config().auto_create_topics_max_per_request
    } else {
        0
    };
    let topics = if all {
        state
            .registry()
            .list()
            .iter()
            .filter(|t| describable(t.name()))
            .map(|t| describe(t))
            .collect()
    } else {
        let mut topics = Vec::new();
        for wanted in request.topics.unwrap_or_default() {
            topics.push(match wanted.name {
                Some(name) if !describable(&name) => MetadataResponseTopic::default()
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_name(Some(name)),
                Some(name) if auto_create && name.as_str() == OFFSETS_TOPIC => {
                    match offsets_topic_or_create(state, access).await {
                        Ok(topic) => describe(&topic),
                        Err(code) => MetadataResponseTopic::default()
                            .with_error_code(code)
                            .with_name(Some(name)),
                    }
                }
                Some(name) => {
                    match super::topic_or_create(state, access, &name, &mut creations_left).await {
                        Ok(topic) => describe(&topic),
                        Err(code) => MetadataResponseTopic::default()
                            .with_error_code(code)
                            .with_name(Some(name)),
                    }
                }
                None => match state.registry().by_id(wanted.topic_id) {
                    Some(topic) if describable(topic.name()) => describe(&topic),
                    _ => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(wanted.topic_id),
                },
            });
        }
        topics
    };
    let (brokers, controller) = state.brokers_view_for(listener);
    let brokers = brokers
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(b.id.into())
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(controller.into())
        .with_topics(topics);
    if (8..=10).contains(&version) {
        response = response.with_cluster_authorized_operations(
            if request.include_cluster_authorized_operations {
                access.operations(ResourceType::Cluster, CLUSTER_NAME)
            } else {
                OPERATIONS_NOT_ASKED
            },
        );
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(StrBytes::from_string(
            state.registry().cluster_id().to_string(),
        )));
    }
    response
}

/// `__consumer_offsets`, created first (with the group coordinator's
/// partition count and compaction) when the requester may CREATE it, as
/// Kafka does. Until it can be created (a cluster with too few brokers
/// yet) the client is told LEADER_NOT_AVAILABLE and retries.
async fn offsets_topic_or_create(
    state: &Arc<BrokerState>,
    access: &Access,
) -> Result<Arc<Topic>, i16> {
    if let Some(topic) = state.registry().get(OFFSETS_TOPIC) {
        return Ok(topic);
    }
    if !access.may_create_topic(OFFSETS_TOPIC) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    crate::group::offsets_topic::topic(&state.offsets_topic())
        .await
        .map_err(|_| ResponseError::LeaderNotAvailable.code())
}

/// `topic` as Metadata `version` describes it to a client of `listener` on
/// broker `node`: from the controller quorum's view in a cluster (`cluster`),
/// else as the single node that leads every partition.
pub(super) fn describe_topic(
    cluster: Option<&ClusterMetadata>,
    node: i32,
    listener: &str,
    topic: &Topic,
    version: i16,
) -> MetadataResponseTopic {
    match cluster.and_then(|m| m.topics.get(topic.name()).map(|t| (m, t))) {
        Some((metadata, t)) => describe_replicated(t, metadata, node, listener, version),
        None => describe(topic, node, version),
    }
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
        .with_is_internal(crate::auth::is_internal_topic(topic.name()))
        .with_topic_id(id)
        .with_partitions(partitions)
}

/// A topic as the controller quorum describes it, to a client of listener
/// `listener` of broker `node`. Replicas on brokers that are fenced or gone
/// are listed as offline; a leader without an endpoint on `listener` is
/// not named (see [`leader_for_listener`]).
fn describe_replicated(
    topic: &fjord_controller::Topic,
    metadata: &ClusterMetadata,
    node: i32,
    listener: &str,
    version: i16,
) -> MetadataResponseTopic {
    let ids = |list: &[i32]| list.iter().map(|&b| BrokerId(b)).collect::<Vec<_>>();
    let partitions = topic
        .partitions
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let offline: Vec<i32> = p
                .replicas
                .iter()
                .copied()
                .filter(|&r| !metadata.is_unfenced(r))
                .collect();
            let (leader, error) = leader_for_listener(p.leader, metadata, node, listener, version);
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(index as i32)
                .with_leader_id(leader.into())
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    let id = if version >= 10 { topic.id } else { Uuid::nil() };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_is_internal(crate::auth::is_internal_topic(&topic.name))
        .with_topic_id(id)
        .with_partitions(partitions)
}

/// The leader a client of listener `listener` on broker `node` is told,
/// and the partition's error code, as Kafka's metadata cache decides them:
/// no leader is LEADER_NOT_AVAILABLE; a leader that is not registered, or
/// registered without an endpoint of that name, is not named (-1), with
/// LEADER_NOT_AVAILABLE or (v6+, for the listener) LISTENER_NOT_FOUND.
fn leader_for_listener(
    leader: i32,
    metadata: &ClusterMetadata,
    node: i32,
    listener: &str,
    version: i16,
) -> (i32, i16) {
    if leader == NO_LEADER {
        return (NO_LEADER, ResponseError::LeaderNotAvailable.code());
    }
    // This broker serves the client's listener, registered or not yet.
    if leader == node || metadata.broker_endpoint(leader, listener).is_some() {
        return (leader, 0);
    }
    let error = if metadata.broker(leader).is_some() && version >= 6 {
        tracing::debug!(
            leader,
            listener,
            "a partition's leader has no listener of the client's listener's name"
        );
        ResponseError::ListenerNotFound
    } else {
        ResponseError::LeaderNotAvailable
    };
    (NO_LEADER, error.code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_controller::{BrokerListener, BrokerRegistration};

    /// Broker 1 registered `PLAINTEXT` and `EXTRA`, broker 2 `PLAINTEXT`
    /// only, broker 3 with the older one-address registration.
    fn metadata() -> ClusterMetadata {
        let mut metadata = ClusterMetadata::default();
        for id in 1..=3 {
            metadata.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    host: "127.0.0.1".into(),
                    port: 9090 + id as u16,
                    rack: None,
                    epoch: 1,
                    fenced: false,
                },
            );
        }
        let listener = |name: &str, port| BrokerListener {
            name: name.into(),
            host: "127.0.0.1".into(),
            port,
            security_protocol: "PLAINTEXT".into(),
        };
        metadata.broker_listeners.insert(
            1,
            vec![listener("PLAINTEXT", 9091), listener("EXTRA", 9191)],
        );
        metadata
            .broker_listeners
            .insert(2, vec![listener("PLAINTEXT", 9092)]);
        metadata
    }

    #[test]
    fn a_leader_without_the_clients_listener_is_not_named() {
        let m = metadata();
        let not_found = ResponseError::ListenerNotFound.code();
        let unavailable = ResponseError::LeaderNotAvailable.code();
        // A client of broker 1's EXTRA listener.
        assert_eq!(leader_for_listener(1, &m, 1, "EXTRA", 12), (1, 0));
        assert_eq!(leader_for_listener(2, &m, 1, "EXTRA", 12), (-1, not_found));
        assert_eq!(leader_for_listener(2, &m, 1, "extra", 6), (-1, not_found));
        // Before v6 Kafka answered LEADER_NOT_AVAILABLE.
        assert_eq!(leader_for_listener(2, &m, 1, "EXTRA", 5), (-1, unavailable));
        // Registered with one address: named there, whatever the listener.
        assert_eq!(leader_for_listener(3, &m, 1, "EXTRA", 12), (3, 0));
        // Not registered at all, or no leader.
        assert_eq!(
            leader_for_listener(7, &m, 1, "EXTRA", 12),
            (-1, unavailable)
        );
        assert_eq!(
            leader_for_listener(NO_LEADER, &m, 1, "PLAINTEXT", 12),
            (-1, unavailable)
        );
        // A client of the listener every broker has.
        assert_eq!(leader_for_listener(2, &m, 1, "PLAINTEXT", 12), (2, 0));
        // This broker leads: named even before it registered.
        let empty = ClusterMetadata::default();
        assert_eq!(leader_for_listener(1, &empty, 1, "EXTRA", 12), (1, 0));
    }
}
