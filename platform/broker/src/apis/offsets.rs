//! Committed offsets: OffsetCommit, OffsetFetch (incl. the v8 multi-group
//! form) and OffsetDelete.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::clock::now_ms;
use crate::error::{GroupError, group_error_code};
use crate::group::offsets_topic::{self, offset_key, offset_value};
use crate::group::{CommittedOffset, GroupState};
use crate::state::BrokerState;

/// Kafka's `offset.metadata.max.bytes`.
const MAX_METADATA_BYTES: usize = 4096;

/// OffsetCommit. Per-partition problems (unknown partition, oversized
/// metadata) fail that partition only; a membership problem fails all.
/// The commit is authorised, then written to `__consumer_offsets`, and
/// only then visible to OffsetFetch.
pub(crate) async fn commit(
    state: &Arc<BrokerState>,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let now = now_ms();
    let mut offsets = Vec::new();
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(request.topics.len());
    let owned = state
        .check_coordinator(&request.group_id)
        .map_err(|e| group_error_code(&e));
    for topic in &request.topics {
        let known = state.registry().get(&topic.name);
        let mut topic_codes = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or("");
            // In a cluster the coordinator need not host the partition:
            // it only has to exist.
            let code = if let Err(code) = owned {
                code
            } else if known
                .as_ref()
                .is_none_or(|t| !(0..t.partition_count()).contains(&p.partition_index))
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else if metadata.len() > MAX_METADATA_BYTES {
                ResponseError::OffsetMetadataTooLarge.code()
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
    let mut group_error = owned.err().or_else(|| {
        state
            .groups()
            .commit(
                &request.group_id,
                &request.member_id,
                request.group_instance_id.as_deref(),
                request.generation_id_or_member_epoch,
                Vec::new(),
            )
            .err()
            .map(|e| group_error_code(&e))
    });
    if group_error.is_none() {
        group_error = store(state, &request.group_id, offsets)
            .await
            .err()
            .map(|e| group_error_code(&e));
    }
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

/// Writes authorised `offsets` of `group_id` to `__consumer_offsets` and,
/// once stored, makes them visible to OffsetFetch.
pub(crate) async fn store(
    state: &Arc<BrokerState>,
    group_id: &str,
    offsets: Vec<((String, i32), CommittedOffset)>,
) -> Result<(), GroupError> {
    let records: Vec<_> = offsets
        .iter()
        .map(|((topic, p), o)| (offset_key(group_id, topic, *p), Some(offset_value(o))))
        .collect();
    offsets_topic::append(&state.offsets_topic(), group_id, &records).await?;
    for (key, offset) in offsets {
        state.groups().set_offset(group_id, key, Some(offset));
    }
    Ok(())
}

/// One group's committed offsets for the asked topics (`None`: all),
/// as `topic -> [(partition, offset)]`; -1 where nothing is committed so
/// the client applies `auto.offset.reset`.
fn fetch_group(
    state: &BrokerState,
    group_id: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
) -> BTreeMap<TopicName, Vec<(i32, Option<CommittedOffset>)>> {
    let groups = state.groups().lock();
    let offsets = groups.get(group_id).map(|g| &g.offsets);
    let mut out: BTreeMap<TopicName, Vec<(i32, Option<CommittedOffset>)>> = BTreeMap::new();
    match topics {
        Some(topics) => {
            for (name, partitions) in topics {
                let entry = out.entry(name.clone()).or_default();
                for p in partitions {
                    let found = offsets.and_then(|o| o.get(&(name.to_string(), p)).cloned());
                    entry.push((p, found));
                }
            }
        }
        None => {
            for ((topic, p), offset) in offsets.into_iter().flatten() {
                out.entry(TopicName(StrBytes::from_string(topic.clone())))
                    .or_default()
                    .push((*p, Some(offset.clone())));
            }
            for partitions in out.values_mut() {
                partitions.sort_by_key(|(p, _)| *p);
            }
        }
    }
    out
}

/// OffsetFetch: v1–7 for one group, v8 for several.
pub(crate) fn fetch(
    state: &BrokerState,
    version: i16,
    request: OffsetFetchRequest,
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
                if let Err(code) = state.check_coordinator(&g.group_id).map_err(|e| group_error_code(&e)) {
                    return offset_fetch_response::OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(code);
                }
                let fetched = fetch_group(state, &g.group_id, topics);
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
                                            .map(|(p, o)| {
                                                offset_fetch_response::OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
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
    if let Err(code) = state
        .check_coordinator(&request.group_id)
        .map_err(|e| group_error_code(&e))
    {
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
    let fetched = fetch_group(state, &request.group_id, topics);
    OffsetFetchResponse::default().with_topics(
        fetched
            .into_iter()
            .map(|(name, partitions)| {
                offset_fetch_response::OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, o)| {
                                offset_fetch_response::OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
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
) -> OffsetDeleteResponse {
    let group_id = request.group_id.to_string();
    if let Err(code) = state
        .check_coordinator(&group_id)
        .map_err(|e| group_error_code(&e))
    {
        return OffsetDeleteResponse::default().with_error_code(code);
    }
    let (response, tombstones) = delete_in_memory(state, request);
    if let Err(e) = offsets_topic::append(&state.offsets_topic(), &group_id, &tombstones).await {
        return OffsetDeleteResponse::default().with_error_code(group_error_code(&e));
    }
    response
}

type Tombstones = Vec<(bytes::Bytes, Option<bytes::Bytes>)>;

fn delete_in_memory(
    state: &BrokerState,
    request: OffsetDeleteRequest,
) -> (OffsetDeleteResponse, Tombstones) {
    let mut tombstones = Vec::new();
    let mut groups = state.groups().lock();
    let Some(group) = groups.get_mut(request.group_id.as_str()) else {
        let response =
            OffsetDeleteResponse::default().with_error_code(ResponseError::GroupIdNotFound.code());
        return (response, tombstones);
    };
    let subscribed = |topic: &str| -> bool {
        if group.state == GroupState::Empty {
            return false;
        }
        let protocol = group.protocol_name.clone().unwrap_or_default();
        group.members.values().any(|m| {
            subscription_topics(&m.metadata(&protocol))
                .is_none_or(|topics| topics.iter().any(|t| t == topic))
        })
    };
    let subscribed: Vec<bool> = request
        .topics
        .iter()
        .map(|t| subscribed(t.name.as_str()))
        .collect();
    let topics = request
        .topics
        .into_iter()
        .zip(subscribed)
        .map(|(topic, subscribed)| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed {
                        ResponseError::GroupSubscribedToTopic.code()
                    } else {
                        let key = (topic.name.to_string(), p.partition_index);
                        if group.offsets.remove(&key).is_some() {
                            tombstones.push((offset_key(&group.id, &key.0, key.1), None));
                        }
                        0
                    };
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
    (
        OffsetDeleteResponse::default().with_topics(topics),
        tombstones,
    )
}

/// The topics of a consumer-protocol subscription (`None` when it does not
/// decode, which OffsetDelete treats as "subscribed to everything").
fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    use kafka_protocol::protocol::Decodable;
    let mut buf = bytes::Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    // Newer subscription versions are supersets; decode as the newest
    // the crate knows.
    let version = version.clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .ok()
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
}
