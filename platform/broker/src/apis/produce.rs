//! Produce: append each partition's batches as sent, answer per partition
//! (or not at all with acks 0). The log validates every batch, record by
//! record, once (`fjord_log::validate_produced`); this only maps its
//! verdict onto the answer. Only a partition's leader appends; with
//! acks=all a replicated partition answers once every in-sync replica has
//! the batch (the high watermark passed it), and refuses up front when
//! fewer replicas than `min.insync.replicas` are in sync. Needs WRITE on
//! each topic (TOPIC_AUTHORIZATION_FAILED, before the topic is looked up).
//! Below `log.dir.reserve.bytes` of free disk, user topics are refused
//! with KAFKA_STORAGE_ERROR (`crate::disk_space` says why and logs it).
//!
//! v13 names topics by id (KIP-516): an unknown id is UNKNOWN_TOPIC_ID for
//! each of its partitions, and is never auto-created. v10+ answers name
//! the current leader of a partition refused NOT_LEADER_OR_FOLLOWER, with
//! its endpoint (KIP-951, [`super::leader_hint`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::leader_hint::{LeaderHints, wants_hint};

use fjord_log::{BatchHeader, LogError, RecordError};

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::PartitionError;
use crate::error::{answers_log_start, auth_error_code, partition_error_code, verify_error_code};
use crate::producer_state::Expiry;

/// Handles a Produce (the caller drops the answer for acks 0).
pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    listener: &str,
    version: i16,
    request: ProduceRequest,
    access: &Access,
) -> ProduceResponse {
    let acks = request.acks;
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    // acks=all appends waiting for their in-sync replicas: (topic answer,
    // partition answer, partition, end offset). Every partition is appended
    // before any is waited for, so followers replicate them together.
    let mut uncommitted = Vec::new();
    let expiry = Expiry {
        now_ms: crate::clock::now_ms(),
        after_ms: i64::try_from(state.config().producer_id_expiration_ms).unwrap_or(i64::MAX),
    };
    let mut creations_left = state.config().auto_create_topics_max_per_request;
    let transactional_id = request.transactional_id.as_ref().map(|id| id.to_string());
    // Once per request: the free bytes when below log.dir.reserve.bytes.
    let below_reserve = state.disk().below_reserve();
    // v13: one pass over the registry finds every id asked for.
    let by_id = if version >= 13 {
        let ids: HashSet<Uuid> = request.topic_data.iter().map(|t| t.topic_id).collect();
        state.registry().by_ids(&ids)
    } else {
        Default::default()
    };
    for topic_data in request.topic_data {
        let topic_id = topic_data.topic_id;
        // The name is encoded up to v12, the id from v13 on.
        let answer_topic = |name: TopicName, partitions| {
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partition_responses(partitions)
        };
        let name = if version >= 13 {
            match by_id.get(&topic_id) {
                Some(topic) => TopicName(StrBytes::from_string(topic.name().to_string())),
                None => {
                    let code = ResponseError::UnknownTopicId.code();
                    let partitions = topic_data
                        .partition_data
                        .iter()
                        .map(|p| refused(p.index, code, None, &[], version))
                        .collect();
                    responses.push(answer_topic(topic_data.name, partitions));
                    continue;
                }
            }
        } else {
            topic_data.name.clone()
        };
        if !access.topic(Operation::Write, &name) {
            let code = ResponseError::TopicAuthorizationFailed.code();
            let partitions = topic_data
                .partition_data
                .iter()
                .map(|p| refused(p.index, code, None, &[], version))
                .collect();
            responses.push(answer_topic(name, partitions));
            continue;
        }
        // Internal topics: refused before the topic is looked up (or
        // auto-created) — only the platform writes them.
        if let Err(e) = crate::auth::may_change(&access.principal, &name, "produce to") {
            let partitions = topic_data
                .partition_data
                .iter()
                .map(|p| {
                    refused(
                        p.index,
                        auth_error_code(&e),
                        Some(e.to_string()),
                        &[],
                        version,
                    )
                })
                .collect();
            responses.push(answer_topic(name, partitions));
            continue;
        }
        // WRITE is allowed here: a refusal now is of auto-creating an
        // unknown topic, which Kafka (no creation on produce) answers as
        // an unknown topic.
        let topic = super::topic_or_create(state, access, &name, &mut creations_left)
            .await
            .map_err(|code| {
                if code == ResponseError::TopicAuthorizationFailed.code() {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    code
                }
            });
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let answer =
                |code: i16, message: Option<String>| refused(index, code, message, &[], version);
            let topic = match &topic {
                Ok(topic) => topic,
                Err(code) => {
                    partitions.push(answer(*code, None));
                    continue;
                }
            };
            let Some(partition) = topic.partition(index) else {
                partitions.push(answer(
                    super::leader_hint::not_hosted_code(topic, index),
                    None,
                ));
                continue;
            };
            // Kafka's order: the topic and partition (KafkaApis), the
            // records' shape (`ProduceRequest.validateRecords`: at least
            // one batch, INVALID_RECORD, not retriable), then acks
            // (`ReplicaManager.appendRecords`), then leadership and the log.
            let Some(records) = data.records.filter(|r| !r.is_empty()) else {
                partitions.push(answer(
                    ResponseError::InvalidRecord.code(),
                    Some(
                        "a produce request must hold a record batch for each partition".to_string(),
                    ),
                ));
                continue;
            };
            if !matches!(acks, -1..=1) {
                partitions.push(answer(ResponseError::InvalidRequiredAcks.code(), None));
                continue;
            }
            if let Err(e) = crate::quorum_link::check_leader(state.cluster(), &partition, -1) {
                partitions.push(answer(partition_error_code(&e), None));
                continue;
            }
            // The reserve is for the offsets topic and the platform's own.
            if let Some(free) = below_reserve.filter(|_| !crate::auth::is_internal_topic(&name)) {
                let message = state.disk().refusal_message(free);
                state.disk().refused(&name, index, &message);
                partitions.push(answer(
                    ResponseError::KafkaStorageError.code(),
                    Some(message),
                ));
                continue;
            }
            if acks == -1 {
                let in_sync = partition.isr_len().unwrap_or(0) as i64;
                let wanted = topic.configs().min_insync_replicas();
                if in_sync < wanted {
                    partitions.push(answer(
                        ResponseError::NotEnoughReplicas.code(),
                        Some(format!(
                            "{in_sync} in-sync replica(s), fewer than min.insync.replicas={wanted}"
                        )),
                    ));
                    continue;
                }
            }
            let idempotent = BatchHeader::parse(&records)
                .ok()
                .filter(|h| h.producer_id >= 0);
            let appended = match idempotent {
                // Sequence checks are per batch: a producer sends one
                // batch per partition and request.
                Some(header) if header.size() != records.len() => Err((
                    ResponseError::InvalidRecord.code(),
                    "one batch per partition from an idempotent producer".to_string(),
                    Vec::new(),
                    false,
                )),
                // KIP-890 part 1: the first batch of a transaction here is
                // checked with the transaction coordinator; nothing is
                // appended when it does not vouch for it.
                Some(header) => match crate::txn::verify::guard(
                    state,
                    transactional_id.as_deref(),
                    &partition,
                    &header,
                )
                .await
                {
                    Err(e) => Err((
                        verify_error_code(&e, ResponseError::NotEnoughReplicas.code()),
                        e.to_string(),
                        Vec::new(),
                        false,
                    )),
                    Ok(verified) => partition
                        .append_verified(records.to_vec(), &header, expiry, verified)
                        .await
                        .map(|(base, log_append_time)| {
                            let end = base + i64::from(header.last_offset_delta) + 1;
                            (base, end, log_append_time)
                        })
                        .map_err(|e| refusal(state, &name, index, &e)),
                },
                None => partition
                    .append(records.to_vec())
                    .await
                    .map(|info| {
                        (
                            info.first_offset,
                            info.last_offset + 1,
                            info.log_append_time,
                        )
                    })
                    .map_err(|e| refusal(state, &name, index, &e)),
            };
            match appended {
                // `log_append_time`: the time the broker stamped the batch
                // with on a LogAppendTime topic, -1 otherwise (as Kafka).
                Ok((base_offset, end, log_append_time)) => {
                    if acks == -1 {
                        uncommitted.push((
                            responses.len(),
                            partitions.len(),
                            partition.clone(),
                            end,
                        ));
                    }
                    partitions.push(
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_base_offset(base_offset)
                            .with_log_append_time_ms(log_append_time)
                            .with_log_start_offset(partition.log_start_offset()),
                    )
                }
                Err((code, message, record_errors, with_log_start)) => {
                    tracing::debug!(topic = %name.as_str(), partition = index, error = %message, "append refused");
                    let mut answer = refused(index, code, Some(message), &record_errors, version);
                    if with_log_start {
                        answer.log_start_offset = partition.log_start_offset();
                    }
                    partitions.push(answer);
                }
            }
        }
        responses.push(answer_topic(name, partitions));
    }
    // Waited for one after the other, but they replicate meanwhile: the
    // request takes as long as the slowest, not the sum.
    for (topic, at, partition, end) in uncommitted {
        if let Err(e) = partition.wait_committed(end, timeout).await {
            let message = "the in-sync replicas did not confirm the batch".to_string();
            responses[topic].partition_responses[at] = refused(
                partition.index(),
                partition_error_code(&e),
                Some(message),
                &[],
                version,
            );
        }
    }
    let response = ProduceResponse::default().with_responses(responses);
    if version >= 10 {
        with_leader_hints(state, listener, response)
    } else {
        response
    }
}

/// Names, for v10+, the current leader of every partition refused
/// NOT_LEADER_OR_FOLLOWER, and the endpoints of those leaders (KIP-951).
fn with_leader_hints(
    state: &BrokerState,
    listener: &str,
    mut response: ProduceResponse,
) -> ProduceResponse {
    let mut hints = LeaderHints::new(state, listener);
    for topic in &mut response.responses {
        for data in &mut topic.partition_responses {
            if !wants_hint(data.error_code) {
                continue;
            }
            if let Some(hint) = hints.leader(&topic.name, data.index) {
                data.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(hint.leader.into())
                    .with_leader_epoch(hint.epoch);
            }
        }
    }
    response.node_endpoints = hints
        .endpoints()
        .map(|hint| {
            NodeEndpoint::default()
                .with_node_id(hint.leader.into())
                .with_host(hint.host())
                .with_port(hint.port)
                .with_rack(hint.rack())
        })
        .collect();
    response
}

/// The code, message and records at fault of a refused append, and
/// whether its answer carries the log start offset. A write that failed
/// (ENOSPC among others) is logged, rate-limited.
fn refusal(
    state: &BrokerState,
    topic: &str,
    partition: i32,
    error: &PartitionError,
) -> (i16, String, Vec<RecordError>, bool) {
    if matches!(error, PartitionError::Log(LogError::Io(_))) {
        state.disk().refused(topic, partition, &error.to_string());
    }
    (
        partition_error_code(error),
        error.to_string(),
        error.record_errors().to_vec(),
        answers_log_start(error),
    )
}

/// A partition's answer when its batches are not (or not all) stored:
/// from v8 on with the message and the records at fault (KIP-467), which
/// clients use to fail just those records.
fn refused(
    index: i32,
    code: i16,
    message: Option<String>,
    record_errors: &[RecordError],
    version: i16,
) -> PartitionProduceResponse {
    let record_errors = if version >= 8 {
        record_errors
            .iter()
            .map(|e| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(e.batch_index)
                    .with_batch_index_error_message(Some(StrBytes::from_string(e.message.clone())))
            })
            .collect()
    } else {
        Vec::new()
    };
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_record_errors(record_errors)
        .with_error_message(message.filter(|_| version >= 8).map(StrBytes::from_string))
}
