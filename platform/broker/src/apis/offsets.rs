//! Committed offsets: OffsetCommit, OffsetFetch (incl. the v8 multi-group
//! form) and OffsetDelete. From v9 a member of a KIP-848 consumer group
//! commits and fetches at its member epoch (STALE_MEMBER_EPOCH,
//! UNKNOWN_MEMBER_ID); classic groups keep their generation ids.
//!
//! Authorization, as Kafka's: OffsetCommit needs READ on the group (else
//! every partition is GROUP_AUTHORIZATION_FAILED) and READ on each topic
//! (TOPIC_AUTHORIZATION_FAILED); OffsetFetch DESCRIBE on the group and on
//! each topic (topics not describable are left out of an "all topics"
//! answer); OffsetDelete DELETE on the group and READ on each topic.
//!
//! OffsetFetch with `require_stable` (v7+) answers UNSTABLE_OFFSET_COMMIT
//! for a partition an open transaction has committed an offset of
//! (TxnOffsetCommit, `txn_offsets.rs`); without it, the committed offset.

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use kafka_protocol::ResponseError;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::group_error_code;
use crate::group::{CommittedOffset, Committer};

/// OffsetCommit. Per-partition problems (unknown partition, oversized
/// metadata) fail that partition only; a membership problem fails all.
/// The commit is authorised, then written to `__consumer_offsets`, and
/// only then visible to OffsetFetch.
pub(crate) async fn commit(
    state: &Arc<BrokerState>,
    version: i16,
    request: OffsetCommitRequest,
    access: &Access,
) -> OffsetCommitResponse {
    let now = now_ms();
    let mut offsets = Vec::new();
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
    let owned = group_allowed(access, Operation::Read, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    });
    for topic in &request.topics {
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        let topic_allowed = access.topic(Operation::Read, &topic.name);
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            let code = if let Err(code) = owned {
                code
            } else if !topic_allowed {
                ResponseError::TopicAuthorizationFailed.code()
            } else if let Err(e) = state.groups().check_offset(
                state.registry(),
                &topic.name,
                p.partition_index,
                metadata,
            ) {
                group_error_code(&e)
            } else {
                offsets.push((
                    (topic.name.to_string(), p.partition_index),
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_string(),
                        commit_timestamp_ms: now,
                    },
                ));
                0
            };
            topic_codes.push(code);
        }
        codes.push(topic_codes);
    }
    let group_error = match owned {
        Err(code) => Some(code),
        Ok(()) => {
            let by = Committer {
                member_id: &request.member_id,
                instance_id: request.group_instance_id.as_deref(),
                generation: request.generation_id_or_member_epoch,
            };
            state
                .groups()
                .commit_offsets(&state.offsets_topic(), &request.group_id, by, offsets)
                .await
                .err()
                .map(|e| group_error_code(&e))
        }
    };
    let topics = request
        .topics
        .into_iter()
        .zip(codes)
        .map(|(topic, topic_codes)| {
            offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(
                    topic
                        .partitions
                        .iter()
                        .zip(topic_codes)
                        .map(|(p, code)| {
                            offset_commit_response::OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(if code == 0 {
                                    group_error.unwrap_or(0)
                                } else {
                                    code
                                })
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// GROUP_AUTHORIZATION_FAILED unless the requester may do `op` to
/// `group`.
fn group_allowed(access: &Access, op: Operation, group: &str) -> Result<(), i16> {
    if access.group(op, group) {
        Ok(())
    } else {
        Err(ResponseError::GroupAuthorizationFailed.code())
    }
}

/// Committed offsets by wire topic name, each topic's partitions in order
/// with 0 or their error code (TOPIC_AUTHORIZATION_FAILED,
/// UNSTABLE_OFFSET_COMMIT).
type Fetched = Vec<(TopicName, Vec<(i32, Option<CommittedOffset>, i16)>)>;

/// One group's committed offsets for the asked topics (`None`: all the
/// requester may describe). With `require_stable` (v7+), a partition whose
/// offset an open transaction has committed answers UNSTABLE_OFFSET_COMMIT
/// and no offset, as Kafka: the client retries once the transaction ended.
fn fetch_group(
    state: &BrokerState,
    access: &Access,
    group_id: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    let all = topics.is_none();
    let topics = topics.map(|ts| ts.into_iter().map(|(t, ps)| (t.to_string(), ps)).collect());
    state
        .groups()
        .committed_offsets(group_id, topics)
        .into_iter()
        .filter_map(|(name, partitions)| {
            let allowed = access.topic(Operation::Describe, &name);
            if all && !allowed {
                return None;
            }
            let partitions = if allowed {
                partitions
                    .into_iter()
                    .map(|(p, o)| {
                        if require_stable
                            && state.groups().has_pending_txn_offset(group_id, &name, p)
                        {
                            (p, None, ResponseError::UnstableOffsetCommit.code())
                        } else {
                            (p, o, 0)
                        }
                    })
                    .collect()
            } else {
                let denied = ResponseError::TopicAuthorizationFailed.code();
                partitions
                    .into_iter()
                    .map(|(p, _)| (p, None, denied))
                    .collect()
            };
            Some((TopicName(StrBytes::from_string(name)), partitions))
        })
        .collect()
}

/// OffsetFetch: v1–7 for one group, v8 for several.
pub(crate) fn fetch(
    state: &BrokerState,
    version: i16,
    request: OffsetFetchRequest,
    access: &Access,
) -> OffsetFetchResponse {
    let epoch = |o: &Option<CommittedOffset>| {
        if version >= 5 {
            o.as_ref().map_or(-1, |o| o.leader_epoch)
        } else {
            -1
        }
    };
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let owned = group_allowed(access, Operation::Describe, &g.group_id)
                    .and_then(|()| {
                        state.check_coordinator(&g.group_id).map_err(|e| group_error_code(&e))
                    })
                    .and_then(|()| {
                        // v9: a KIP-848 member fetches at its member epoch.
                        if version < 9 {
                            return Ok(());
                        }
                        state
                            .groups()
                            .check_offset_fetch(&g.group_id, g.member_id.as_deref(), g.member_epoch)
                            .map_err(|e| group_error_code(&e))
                    });
                if let Err(code) = owned {
                    return offset_fetch_response::OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(code);
                }
                let fetched =
                    fetch_group(state, access, &g.group_id, topics, request.require_stable);
                offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(
                        fetched
                            .into_iter()
                            .map(|(name, partitions)| {
                                offset_fetch_response::OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(
                                        partitions
                                            .into_iter()
                                            .map(|(p, o, code)| {
                                                offset_fetch_response::OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_error_code(code)
                                                    .with_committed_offset(o.as_ref().map_or(-1, |o| o.offset))
                                                    .with_committed_leader_epoch(epoch(&o))
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        o.map(|o| o.metadata).unwrap_or_default(),
                                                    )))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let owned = group_allowed(access, Operation::Describe, &request.group_id).and_then(|()| {
        state
            .check_coordinator(&request.group_id)
            .map_err(|e| group_error_code(&e))
    });
    if let Err(code) = owned {
        // The top-level error code exists from v2; v1 clients see it per
        // partition.
        if version >= 2 {
            return OffsetFetchResponse::default().with_error_code(code);
        }
        let topics = request.topics.unwrap_or_default().into_iter().map(|t| {
            offset_fetch_response::OffsetFetchResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partition_indexes
                        .into_iter()
                        .map(|p| {
                            offset_fetch_response::OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(-1)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        });
        return OffsetFetchResponse::default().with_topics(topics.collect());
    }
    // v1 has no "all topics" form: a null list is only valid from v2.
    let topics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    // require_stable is in the request from v7 (false before).
    let fetched = fetch_group(
        state,
        access,
        &request.group_id,
        topics,
        request.require_stable,
    );
    OffsetFetchResponse::default().with_topics(
        fetched
            .into_iter()
            .map(|(name, partitions)| {
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, o, code)| {
                                offset_fetch_response::OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                                    .with_committed_offset(o.as_ref().map_or(-1, |o| o.offset))
                                    .with_committed_leader_epoch(epoch(&o))
                                    .with_metadata(Some(StrBytes::from_string(
                                        o.map(|o| o.metadata).unwrap_or_default(),
                                    )))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// OffsetDelete: refused per partition for topics the group's live members
/// are subscribed to; deleted offsets get tombstones in `__consumer_offsets`.
pub(crate) async fn delete(
    state: &Arc<BrokerState>,
    request: OffsetDeleteRequest,
    access: &Access,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.to_string();
    let owned = group_allowed(access, Operation::Delete, &group_id).and_then(|()| {
        state
            .check_coordinator(&group_id)
            .map_err(|e| group_error_code(&e))
    });
    if let Err(code) = owned {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    let allowed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| access.topic(Operation::Read, &t.name))
        .collect();
    let asked: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .zip(&allowed)
        .filter(|(_, allowed)| **allowed)
        .map(|(t, _)| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let results = match state
        .groups()
        .delete_offsets(&state.offsets_topic(), &group_id, &asked)
        .await
    {
        Ok(results) => results,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(group_error_code(&e)),
    };
    let mut results = results.into_iter();
    let topics = request
        .topics
        .into_iter()
        .zip(allowed)
        .map(|(topic, allowed)| {
            let codes: Vec<i16> = if allowed {
                let results = results.next().unwrap_or_default();
                results
                    .into_iter()
                    .map(|r| r.err().map_or(0, |e| group_error_code(&e)))
                    .collect()
            } else {
                vec![ResponseError::TopicAuthorizationFailed.code(); topic.partitions.len()]
            };
            let partitions = topic
                .partitions
                .iter()
                .zip(codes)
                .map(|(p, code)| {
                    offset_delete_response::OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            offset_delete_response::OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
