//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, ListGroups, DescribeGroups, DeleteGroups. They translate
//! between the wire versions and the coordinator in `crate::group`; fields
//! a version lacks are left at their defaults, because the encoder refuses
//! a set field its version does not have.
//!
//! Authorization (refusals GROUP_AUTHORIZATION_FAILED): FindCoordinator
//! needs DESCRIBE on the group (a transactional id: DESCRIBE on it,
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED), JoinGroup, SyncGroup, Heartbeat
//! and LeaveGroup READ, DescribeGroups DESCRIBE, DeleteGroups DELETE;
//! ListGroups lists every group with DESCRIBE on the cluster, else only
//! the groups the requester may describe.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use std::sync::Arc;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::error::{GroupError, group_error_code};
use crate::group::{GroupState, JoinRequest, Pending};
use crate::listeners::BoundListener;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Where a FindCoordinator key is coordinated, or why it cannot be:
/// `(error, message, node, host, port)`.
type CoordinatorAnswer = (i16, Option<StrBytes>, i32, StrBytes, i32);

/// FindCoordinator. On a single node this node coordinates every group and
/// transactional id; in a cluster, the leader of the key's partition of
/// `__consumer_offsets` (a group) or `__transaction_state` (a
/// transactional id), created through the quorum on first use, as Kafka
/// does. v5 and v6 add
/// no field: v5 only allows TRANSACTION_ABORTABLE in answers, v6 the
/// share-group key type, refused here.
pub(crate) async fn find_coordinator(
    state: &Arc<BrokerState>,
    listener: &BoundListener,
    version: i16,
    request: FindCoordinatorRequest,
    access: &Access,
) -> FindCoordinatorResponse {
    let keys: Vec<StrBytes> = if version >= 4 {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let mut answers = Vec::with_capacity(keys.len());
    for key in &keys {
        answers.push(coordinator_for(state, listener, access, request.key_type, key).await);
    }
    if version >= 4 {
        let coordinators = keys
            .into_iter()
            .zip(answers)
            .map(|(key, (code, message, node, host, port))| {
                find_coordinator_response::Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node))
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let (code, message, node, host, port) =
        answers
            .pop()
            .unwrap_or((ResponseError::InvalidRequest.code(), None, -1, s(""), -1));
    let response = FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_node_id(BrokerId(node))
        .with_host(host)
        .with_port(port);
    if version >= 1 {
        response.with_error_message(message)
    } else {
        response
    }
}

async fn coordinator_for(
    state: &Arc<BrokerState>,
    listener: &BoundListener,
    access: &Access,
    key_type: i8,
    key: &str,
) -> CoordinatorAnswer {
    let refused = |error: ResponseError| (error.code(), None, -1, s(""), -1);
    // Group (0) and transaction (1) keys only: share groups (key type 2,
    // KIP-932, FindCoordinator v6) do not exist here, and Kafka refuses an
    // unknown type as an invalid request.
    if !(0..=1).contains(&key_type) {
        let message = if key_type == 2 {
            "share groups are not supported".to_string()
        } else {
            format!("unknown coordinator key type {key_type}")
        };
        return (
            ResponseError::InvalidRequest.code(),
            Some(s(&message)),
            -1,
            s(""),
            -1,
        );
    }
    match key_type {
        0 if !access.group(Operation::Describe, key) => {
            return refused(ResponseError::GroupAuthorizationFailed);
        }
        1 if !access.allows(Operation::Describe, ResourceType::TransactionalId, key) => {
            return refused(ResponseError::TransactionalIdAuthorizationFailed);
        }
        _ => {}
    }
    let unavailable = |message: &str| {
        (
            ResponseError::CoordinatorNotAvailable.code(),
            Some(s(message)),
            -1,
            s(""),
            -1,
        )
    };
    let Some(link) = state.cluster() else {
        if key_type == 1 {
            // Created now, as Kafka creates it on the first lookup, so the
            // coordinator answers InitProducerId at once.
            if crate::txn::state_log::topic(state).await.is_err() {
                return unavailable("__transaction_state is not available yet");
            }
        }
        return (
            0,
            None,
            state.config().node_id,
            s(&listener.advertised_host),
            listener.advertised_port,
        );
    };
    let (topic_name, index) = if key_type == 1 {
        let topic = match crate::txn::state_log::topic(state).await {
            Ok(topic) => topic,
            Err(_) => return unavailable("__transaction_state is not available yet"),
        };
        (
            crate::txn::TXN_TOPIC,
            crate::txn::state_log::partition_for(key, topic.partition_count()),
        )
    } else {
        let topic = match crate::group::offsets_topic::topic(&state.offsets_topic()).await {
            Ok(topic) => topic,
            Err(_) => return unavailable("__consumer_offsets is not available yet"),
        };
        (
            crate::group::offsets_topic::OFFSETS_TOPIC,
            crate::group::offsets_topic::partition_for(key, topic.partition_count()),
        )
    };
    let metadata = link.metadata();
    let leader = metadata
        .partition(topic_name, index)
        .map(|p| p.leader)
        .and_then(|leader| metadata.broker(leader));
    match leader {
        // This broker at the client's listener; another at the endpoint it
        // registered for the listener of the same name.
        Some(broker) if broker.id == state.config().node_id => (
            0,
            None,
            broker.id,
            s(&listener.advertised_host),
            listener.advertised_port,
        ),
        Some(broker) => match metadata.broker_endpoint(broker.id, &listener.name) {
            Some((host, port)) => (0, None, broker.id, s(host), i32::from(port)),
            None => unavailable("the coordinator has no listener of the name this client used"),
        },
        None => unavailable("the key's partition has no leader right now"),
    }
}

/// JoinGroup: may wait until the rebalance completes.
pub(crate) async fn join(
    state: &BrokerState,
    version: i16,
    client_id: &str,
    client_host: &str,
    request: JoinGroupRequest,
    access: &Access,
) -> JoinGroupResponse {
    if let Err(code) = may_read(access, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    }) {
        return JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_member_id(request.member_id);
    }
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance_timeout_ms = if version >= 1 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    let join = JoinRequest {
        group_id: request.group_id.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_member_id: version >= 4,
    };
    let member_id = join.member_id.clone();
    let result = match state.groups().join(join) {
        Pending::Ready(result) => result,
        Pending::Wait(rx) => rx.await.unwrap_or_else(|_| {
            crate::group::state::JoinResult::error(GroupError::RebalanceInProgress, &member_id)
        }),
    };
    let members = result
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let member = join_group_response::JoinGroupResponseMember::default()
                .with_member_id(s(&id))
                .with_metadata(metadata);
            if version >= 5 {
                member.with_group_instance_id(instance.map(|i| s(&i)))
            } else {
                member
            }
        })
        .collect();
    let response = JoinGroupResponse::default()
        .with_error_code(result.error.as_ref().map_or(0, group_error_code))
        .with_generation_id(result.generation)
        .with_leader(s(&result.leader))
        .with_member_id(s(&result.member_id))
        .with_members(members);
    if version >= 7 {
        response
            .with_protocol_type(result.protocol_type.map(|t| s(&t)))
            .with_protocol_name(result.protocol_name.map(|n| s(&n)))
    } else {
        // Not nullable before v7.
        response.with_protocol_name(Some(s(&result.protocol_name.unwrap_or_default())))
    }
}

/// SyncGroup: followers wait for the leader's assignment.
pub(crate) async fn sync(
    state: &BrokerState,
    version: i16,
    request: SyncGroupRequest,
    access: &Access,
) -> SyncGroupResponse {
    if let Err(code) = may_read(access, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    }) {
        return SyncGroupResponse::default().with_error_code(code);
    }
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let pending = state.groups().sync(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        request.protocol_type.as_deref(),
        request.protocol_name.as_deref(),
        assignments,
    );
    let result = match pending {
        Pending::Ready(result) => result,
        Pending::Wait(rx) => rx.await.unwrap_or_else(|_| {
            crate::group::state::SyncResult::error(GroupError::RebalanceInProgress)
        }),
    };
    let response = SyncGroupResponse::default()
        .with_error_code(result.error.as_ref().map_or(0, group_error_code))
        .with_assignment(result.assignment);
    if version >= 5 {
        response
            .with_protocol_type(result.protocol_type.map(|t| s(&t)))
            .with_protocol_name(result.protocol_name.map(|n| s(&n)))
    } else {
        response
    }
}

/// Heartbeat.
pub(crate) fn heartbeat(
    state: &BrokerState,
    request: HeartbeatRequest,
    access: &Access,
) -> HeartbeatResponse {
    if let Err(code) = may_read(access, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    }) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let beat = state.groups().heartbeat(
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code_of(beat))
}

/// LeaveGroup: one member before v3, a batch from v3 on.
pub(crate) fn leave(
    state: &BrokerState,
    version: i16,
    request: LeaveGroupRequest,
    access: &Access,
) -> LeaveGroupResponse {
    if let Err(code) = may_read(access, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    }) {
        return LeaveGroupResponse::default().with_error_code(code);
    }
    if version < 3 {
        let code = match state
            .groups()
            .leave(&request.group_id, &[(request.member_id.to_string(), None)])
        {
            Ok(results) => results.into_iter().next().map_or(0, code_of),
            Err(e) => group_error_code(&e),
        };
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let leaving: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    match state.groups().leave(&request.group_id, &leaving) {
        Ok(results) => LeaveGroupResponse::default().with_members(
            request
                .members
                .into_iter()
                .zip(results)
                .map(|(m, result)| {
                    leave_group_response::MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(code_of(result))
                })
                .collect(),
        ),
        Err(e) => LeaveGroupResponse::default().with_error_code(group_error_code(&e)),
    }
}

/// GROUP_AUTHORIZATION_FAILED unless the requester may READ `group`.
fn may_read(access: &Access, group: &str) -> Result<(), i16> {
    if access.group(Operation::Read, group) {
        Ok(())
    } else {
        Err(ResponseError::GroupAuthorizationFailed.code())
    }
}

/// The error code of a member-level result (0: none).
fn code_of(result: Result<(), GroupError>) -> i16 {
    result.err().map_or(0, |e| group_error_code(&e))
}

/// ListGroups, with the v4 state filter and v5 type filter (`classic`,
/// or `consumer` for KIP-848 groups, with their own state names).
pub(crate) fn list(
    state: &BrokerState,
    version: i16,
    request: ListGroupsRequest,
    access: &Access,
) -> ListGroupsResponse {
    let every_group = access.cluster(Operation::Describe);
    let mut listed: Vec<_> = state
        .groups()
        .list()
        .into_iter()
        .filter(|g| g.state != GroupState::Dead)
        .filter(|g| every_group || access.group(Operation::Describe, &g.id))
        .filter(|g| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(g.state_name))
        })
        .filter(|g| {
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(g.group_type))
        })
        .map(|g| {
            let mut entry = list_groups_response::ListedGroup::default()
                .with_group_id(GroupId(s(&g.id)))
                .with_protocol_type(s(g.protocol_type.as_deref().unwrap_or("consumer")));
            if version >= 4 {
                entry = entry.with_group_state(s(g.state_name));
            }
            if version >= 5 {
                entry = entry.with_group_type(s(g.group_type));
            }
            entry
        })
        .collect();
    listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse::default().with_groups(listed)
}

/// DescribeGroups. Unknown groups are reported Dead (v6: with
/// GROUP_ID_NOT_FOUND), as Kafka does.
pub(crate) fn describe(
    state: &BrokerState,
    version: i16,
    request: DescribeGroupsRequest,
    access: &Access,
) -> DescribeGroupsResponse {
    let with_operations = request.include_authorized_operations;
    let described = request
        .groups
        .into_iter()
        .map(|id| {
            let mut out =
                describe_groups_response::DescribedGroup::default().with_group_id(id.clone());
            if !access.group(Operation::Describe, &id) {
                return out.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if version >= 3 {
                out = out.with_authorized_operations(if with_operations {
                    access.operations(ResourceType::Group, &id)
                } else {
                    crate::authorizer::OPERATIONS_NOT_ASKED
                });
            }
            if let Err(code) = state
                .check_coordinator(&id)
                .map_err(|e| group_error_code(&e))
            {
                return out.with_error_code(code);
            }
            let group = state.groups().describe(&id);
            if group.as_ref().is_some_and(|g| g.consumer) {
                // As Kafka: DescribeGroups describes classic groups only;
                // ConsumerGroupDescribe the others.
                out = out.with_group_state(s(GroupState::Dead.name()));
                if version >= 6 {
                    out = out
                        .with_error_code(group_error_code(&GroupError::GroupIdNotFound))
                        .with_error_message(Some(s(&format!(
                            "Group {} is not a classic group.",
                            id.as_str()
                        ))));
                }
                return out;
            }
            let Some(group) = group else {
                out = out.with_group_state(s(GroupState::Dead.name()));
                if version >= 6 {
                    out = out
                        .with_error_code(group_error_code(&GroupError::GroupIdNotFound))
                        .with_error_message(Some(s("no such group")));
                }
                return out;
            };
            let show_assignment = group.state == GroupState::Stable;
            let members = group
                .members
                .into_iter()
                .map(|m| {
                    let member = describe_groups_response::DescribedGroupMember::default()
                        .with_member_id(s(&m.id))
                        .with_client_id(s(&m.client_id))
                        .with_client_host(s(&m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(if show_assignment {
                            m.assignment
                        } else {
                            Default::default()
                        });
                    if version >= 4 {
                        member.with_group_instance_id(m.instance_id.as_ref().map(|i| s(i)))
                    } else {
                        member
                    }
                })
                .collect();
            out.with_group_state(s(group.state.name()))
                .with_protocol_type(s(group.protocol_type.as_deref().unwrap_or("")))
                .with_protocol_data(s(group.protocol_name.as_deref().unwrap_or("")))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(described)
}

/// DeleteGroups: only empty groups go, with their offsets (tombstones in
/// `__consumer_offsets`).
pub(crate) async fn delete(
    state: &Arc<BrokerState>,
    request: DeleteGroupsRequest,
    access: &Access,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for id in request.groups_names {
        let code = if access.group(Operation::Delete, &id) {
            let deleted = match state.check_coordinator(&id) {
                Ok(()) => {
                    state
                        .groups()
                        .delete_group(&state.offsets_topic(), &id)
                        .await
                }
                Err(e) => Err(e),
            };
            code_of(deleted)
        } else {
            ResponseError::GroupAuthorizationFailed.code()
        };
        results.push(
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
