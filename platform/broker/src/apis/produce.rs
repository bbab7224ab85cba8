//! Produce: append each partition's batches as sent, answer per partition
//! (or not at all with acks 0). Only a partition's leader appends; with
//! acks=all a replicated partition answers once every in-sync replica has
//! the batch (the high watermark passed it), and refuses up front when
//! fewer replicas than `min.insync.replicas` are in sync.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use fjord_log::BatchHeader;

use crate::auth::Principal;
use crate::error::{auth_error_code, log_error_code};
use crate::partition::IdempotentAppendError;
use crate::server::BrokerState;

/// Handles a Produce (the caller drops the answer for acks 0).
pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    version: i16,
    request: ProduceRequest,
    principal: Principal,
) -> ProduceResponse {
    let acks = request.acks;
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    let mut responses = Vec::with_capacity(request.topic_data.len());
    // acks=all appends waiting for their in-sync replicas: (topic answer,
    // partition answer, partition, end offset). Every partition is appended
    // before any is waited for, so followers replicate them together.
    let mut uncommitted = Vec::new();
    for topic_data in request.topic_data {
        let name = topic_data.name.clone();
        // Internal topics: refused before the topic is looked up (or
        // auto-created) — only the platform writes them.
        if let Err(e) = crate::auth::may_change(principal, &name, "produce to") {
            let partitions = topic_data
                .partition_data
                .iter()
                .map(|p| refused(p.index, auth_error_code(&e), Some(e.to_string()), version))
                .collect();
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partitions),
            );
            continue;
        }
        let topic = super::topic_or_create(state, &name, true).await;
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            let answer =
                |code: i16, message: Option<String>| refused(index, code, message, version);
            if !matches!(acks, -1..=1) {
                partitions.push(answer(ResponseError::InvalidRequiredAcks.code(), None));
                continue;
            }
            let topic = match &topic {
                Ok(topic) => topic,
                Err(code) => {
                    partitions.push(answer(*code, None));
                    continue;
                }
            };
            let Some(partition) = topic.partition(index) else {
                partitions.push(answer(ResponseError::UnknownTopicOrPartition.code(), None));
                continue;
            };
            if let Err(code) = crate::cluster::check_leader(state, &partition, -1) {
                partitions.push(answer(code, None));
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
            let Some(records) = data.records.filter(|r| !r.is_empty()) else {
                partitions.push(answer(
                    ResponseError::CorruptMessage.code(),
                    Some("no record batch in the request".to_string()),
                ));
                continue;
            };
            if let Err(reason) = check_client_batches(&records) {
                partitions.push(answer(ResponseError::InvalidRecord.code(), Some(reason)));
                continue;
            }
            if partition.log().config().cleanup_policy.compacts() {
                if let Err(reason) = check_keys(&records) {
                    partitions.push(answer(ResponseError::InvalidRecord.code(), Some(reason)));
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
                )),
                Some(header) => partition
                    .append_idempotent(records.to_vec(), &header)
                    .await
                    .map(|base| (base, base + i64::from(header.last_offset_delta) + 1))
                    .map_err(|e| {
                        let code = match &e {
                            IdempotentAppendError::Sequence(s) => s.code(),
                            IdempotentAppendError::Log(l) => log_error_code(l),
                        };
                        (code, e.to_string())
                    }),
                None => partition
                    .append(records.to_vec())
                    .await
                    .map(|info| (info.first_offset, info.last_offset + 1))
                    .map_err(|e| (log_error_code(&e), e.to_string())),
            };
            match appended {
                Ok((base_offset, end)) => {
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
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(partition.log_start_offset()),
                    )
                }
                Err((code, message)) => {
                    tracing::debug!(topic = %name.as_str(), partition = index, error = %message, "append refused");
                    partitions.push(answer(code, Some(message)));
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(partitions),
        );
    }
    // Waited for one after the other, but they replicate meanwhile: the
    // request takes as long as the slowest, not the sum.
    for (topic, at, partition, end) in uncommitted {
        if let Err(code) = partition.wait_committed(end, timeout).await {
            let message = "the in-sync replicas did not confirm the batch".to_string();
            responses[topic].partition_responses[at] =
                refused(partition.index(), code, Some(message), version);
        }
    }
    ProduceResponse::default().with_responses(responses)
}

/// A partition's answer when its batches are not (or not all) stored.
fn refused(
    index: i32,
    code: i16,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_error_message(message.filter(|_| version >= 8).map(StrBytes::from_string))
}

/// Refuses what a client may not produce yet: control batches (only a
/// transaction coordinator writes those) and transactional batches (no
/// transactions before InitProducerId and the transaction APIs exist).
/// Malformed headers are left to the log, which reports CORRUPT_MESSAGE.
fn check_client_batches(records: &[u8]) -> Result<(), String> {
    let mut at = 0;
    while at < records.len() {
        let Ok(header) = BatchHeader::parse(&records[at..]) else {
            return Ok(());
        };
        if header.attributes & 0x20 != 0 {
            return Err("clients may not produce control batches".to_string());
        }
        if header.attributes & 0x10 != 0 {
            return Err("transactional produce is not supported yet".to_string());
        }
        at += header.size().max(fjord_log::HEADER_LEN);
    }
    Ok(())
}

/// A compacted topic keeps the latest record per key: records without a
/// key are refused (INVALID_RECORD), as Kafka does, and so are records that
/// do not parse (the cleaner could never clean past them). Batches whose
/// CRC does not match are left to the log, which reports CORRUPT_MESSAGE.
fn check_keys(records: &bytes::Bytes) -> Result<(), String> {
    for batch in fjord_log::validated_batches(records) {
        let Ok((header, range)) = batch else {
            return Ok(());
        };
        let mut keyless = None;
        fjord_log::visit_keys(&records[range], |offset, key| {
            if key.is_none() && keyless.is_none() {
                keyless = Some(offset - header.base_offset);
            }
        })
        .map_err(|e| format!("the records of a batch do not parse: {e}"))?;
        if let Some(delta) = keyless {
            return Err(format!(
                "compacted topic received a record without a key (offset delta {delta})"
            ));
        }
    }
    Ok(())
}
