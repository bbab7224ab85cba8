//! KIP-848 consumer groups on the wire: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe. The rules are in `crate::group::consumer`.
//!
//! Authorization, as Kafka's (4.1, KAFKA-18813): a heartbeat needs READ
//! on the group and DESCRIBE on every topic it names
//! (TOPIC_AUTHORIZATION_FAILED), and its regex resolves only to topics it
//! may DESCRIBE (the group logic asks the filter made here);
//! ConsumerGroupDescribe needs DESCRIBE on each group, and a group that
//! names a topic the requester may not DESCRIBE (in a subscription, an
//! assignment or a target) is answered TOPIC_AUTHORIZATION_FAILED with
//! nothing else.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::error::{GroupError, group_error_code};
use crate::group::assignor::Assignment;
use crate::group::consumer::{ConsumerHeartbeat, TopicFilter, TopicInfo, TopicsSnapshot};

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// The cluster's topics as consumer groups see them.
fn topics(state: &BrokerState) -> TopicsSnapshot {
    state
        .registry()
        .list()
        .into_iter()
        .map(|t| {
            let name = t.name().to_string();
            let info = TopicInfo {
                id: t.id(),
                partitions: t.partition_count(),
                internal: crate::auth::is_internal_topic(&name),
            };
            (name, info)
        })
        .collect()
}

/// ConsumerGroupHeartbeat v0–1.
pub(crate) fn heartbeat(
    state: &BrokerState,
    version: i16,
    client_id: &str,
    client_host: &str,
    request: ConsumerGroupHeartbeatRequest,
    access: &Access,
) -> ConsumerGroupHeartbeatResponse {
    let failed = |code: i16, message: Option<String>| {
        ConsumerGroupHeartbeatResponse::default()
            .with_error_code(code)
            .with_error_message(message.map(|m| s(&m)))
    };
    if !access.group(Operation::Read, &request.group_id) {
        return failed(ResponseError::GroupAuthorizationFailed.code(), None);
    }
    if let Some(names) = &request.subscribed_topic_names
        && let Some(denied) = names.iter().find(|n| !access.topic(Operation::Describe, n))
    {
        return failed(
            ResponseError::TopicAuthorizationFailed.code(),
            Some(format!(
                "not authorized to describe topic {}",
                denied.as_str()
            )),
        );
    }
    if let Err(e) = state.check_coordinator(&request.group_id) {
        return failed(group_error_code(&e), None);
    }
    let owned = request.topic_partitions.map(|tps| {
        let mut owned = Assignment::new();
        for tp in tps {
            owned.entry(tp.topic_id).or_default().extend(tp.partitions);
        }
        owned
    });
    let beat = ConsumerHeartbeat {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.map(|i| i.to_string()),
        rack_id: request.rack_id.map(|r| r.to_string()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_names: request
            .subscribed_topic_names
            .map(|ns| ns.into_iter().map(|n| n.to_string()).collect()),
        subscribed_regex: if version >= 1 {
            request.subscribed_topic_regex.map(|r| r.to_string())
        } else {
            None
        },
        server_assignor: request.server_assignor.map(|a| a.to_string()),
        owned,
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
    };
    let may_describe = if access.enforced() {
        let access = access.clone();
        TopicFilter::new(move |topic| access.topic(Operation::Describe, topic))
    } else {
        TopicFilter::all()
    };
    match state
        .groups()
        .consumer_heartbeat_as(beat, topics(state), may_describe)
    {
        Ok(answer) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(s(&answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(answer.assignment.map(|a| {
                consumer_group_heartbeat_response::Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(topic, ps)| {
                            consumer_group_heartbeat_response::TopicPartitions::default()
                                .with_topic_id(topic)
                                .with_partitions(ps.into_iter().collect())
                        })
                        .collect(),
                )
            })),
        Err(e) => failed(group_error_code(&e), Some(e.to_string())),
    }
}

fn described_assignment(
    a: &Assignment,
    names: &BTreeMap<uuid::Uuid, String>,
) -> consumer_group_describe_response::Assignment {
    consumer_group_describe_response::Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(topic, ps)| {
                consumer_group_describe_response::TopicPartitions::default()
                    .with_topic_id(*topic)
                    .with_topic_name(TopicName(s(names.get(topic).map_or("", String::as_str))))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

/// ConsumerGroupDescribe v0–1.
pub(crate) fn describe(
    state: &BrokerState,
    version: i16,
    request: ConsumerGroupDescribeRequest,
    access: &Access,
) -> ConsumerGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .map(|id| {
            let out = consumer_group_describe_response::DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(crate::authorizer::OPERATIONS_NOT_ASKED);
            if !access.group(Operation::Describe, &id) {
                return out.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let out = if request.include_authorized_operations {
                out.with_authorized_operations(access.operations(ResourceType::Group, &id))
            } else {
                out
            };
            if let Err(e) = state.check_coordinator(&id) {
                return out.with_error_code(group_error_code(&e));
            }
            let group = match state.groups().describe_consumer(&id) {
                Ok(group) => group,
                Err(classic) => {
                    let message = if classic {
                        format!("Group {} is not a consumer group.", id.as_str())
                    } else {
                        format!("Group {} not found.", id.as_str())
                    };
                    return out
                        .with_error_code(group_error_code(&GroupError::GroupIdNotFound))
                        .with_error_message(Some(s(&message)));
                }
            };
            let hidden = group.members.iter().any(|m| {
                let assigned = m.assigned.keys().chain(m.target.keys());
                m.subscribed_names
                    .iter()
                    .map(String::as_str)
                    .chain(assigned.filter_map(|id| group.topic_names.get(id).map(String::as_str)))
                    .any(|topic| !access.topic(Operation::Describe, topic))
            });
            if hidden {
                return out
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(s(
                        "The group has described topic(s) that the client is not authorized to describe.",
                    )));
            }
            let members = group
                .members
                .iter()
                .map(|m| {
                    let member = consumer_group_describe_response::Member::default()
                        .with_member_id(s(&m.id))
                        .with_instance_id(m.instance_id.as_deref().map(s))
                        .with_rack_id(m.rack_id.as_deref().map(s))
                        .with_member_epoch(m.epoch)
                        .with_client_id(s(&m.client_id))
                        .with_client_host(s(&m.client_host))
                        .with_subscribed_topic_names(
                            m.subscribed_names.iter().map(|n| TopicName(s(n))).collect(),
                        )
                        .with_subscribed_topic_regex(m.subscribed_regex.as_deref().map(s))
                        .with_assignment(described_assignment(&m.assigned, &group.topic_names))
                        .with_target_assignment(described_assignment(
                            &m.target,
                            &group.topic_names,
                        ));
                    if version >= 1 {
                        // KIP-1099: 0 a classic member (in the group since an
                        // online upgrade), 1 a member of the consumer protocol.
                        member.with_member_type(if m.classic { 0 } else { 1 })
                    } else {
                        member
                    }
                })
                .collect();
            out.with_group_state(s(group.state))
                .with_group_epoch(group.epoch)
                .with_assignment_epoch(group.assignment_epoch)
                .with_assignor_name(s(&group.assignor))
                .with_members(members)
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
