//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest
//! local (-4, v8+), latest tiered (-5, v9+), or the first offset at or after
//! a timestamp. Needs DESCRIBE on each topic. There is no tiered storage:
//! every segment is local, so earliest local is earliest, and nothing is
//! tiered (Kafka answers -5 with offset -1 and epoch -1 for a topic
//! without remote storage). v10's `timeout_ms` bounds remote reads, of
//! which there are none.
//!
//! Latest, and what a timestamp finds, stop where the client may read: the
//! high watermark, or under `isolation_level` 1 (read_committed, v2+) the
//! last stable offset ([`Partition::readable_end`]), as Kafka's
//! `fetchOffsetForTimestamp`.
//!
//! [`Partition::readable_end`]: crate::partition::Partition

use fjord_log::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::{log_error_code, partition_error_code};

/// The local log's start (KIP-405); from v8.
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
/// The highest offset in remote storage (KIP-1005); from v9.
const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// Whether `version` defines the special (negative) `timestamp`.
fn special_timestamp_known(version: i16, timestamp: i64) -> bool {
    match timestamp {
        EARLIEST_TIMESTAMP | LATEST_TIMESTAMP | MAX_TIMESTAMP => true,
        EARLIEST_LOCAL_TIMESTAMP => version >= 8,
        LATEST_TIERED_TIMESTAMP => version >= 9,
        _ => false,
    }
}

pub(crate) fn handle(
    state: &BrokerState,
    version: i16,
    request: ListOffsetsRequest,
    access: &Access,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let authorized = access.topic(Operation::Describe, &t.name);
            let topic = state.registry().get(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if !authorized {
                        return answer.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        return answer.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    // Only the leader answers (and only in the client's epoch,
                    // when it names one), so clients look for a moved leader.
                    let client_epoch = if version >= 4 { p.current_leader_epoch } else { -1 };
                    if let Err(e) = crate::quorum_link::check_leader(state.cluster(), &partition, client_epoch) {
                        return answer.with_error_code(partition_error_code(&e));
                    }
                    let epoch = if version >= 4 { partition.leader_epoch() } else { -1 };
                    if p.timestamp < 0 && !special_timestamp_known(version, p.timestamp) {
                        return answer.with_error_code(ResponseError::UnsupportedVersion.code());
                    }
                    if p.timestamp == LATEST_TIERED_TIMESTAMP {
                        return answer.with_leader_epoch(-1);
                    }
                    // All of the log is local.
                    let timestamp = if p.timestamp == EARLIEST_LOCAL_TIMESTAMP {
                        EARLIEST_TIMESTAMP
                    } else {
                        p.timestamp
                    };
                    // Latest is where consumers may read up to: the high
                    // watermark, or the last stable offset under
                    // read_committed (isolation level 1, v2+), as Kafka.
                    let readable_end = partition.readable_end(version >= 2 && request.isolation_level == 1);
                    if p.timestamp == LATEST_TIMESTAMP {
                        return answer
                            .with_offset(readable_end)
                            .with_leader_epoch(epoch);
                    }
                    match partition.log().offset_for_timestamp(timestamp) {
                        // Kafka answers nothing past what the reader may read.
                        Ok(Some(found)) if timestamp >= 0 && found.offset >= readable_end => answer,
                        Ok(Some(found)) => answer
                            .with_offset(found.offset)
                            .with_timestamp(found.timestamp)
                            .with_leader_epoch(epoch),
                        Ok(None) => answer,
                        Err(e) => {
                            tracing::error!(topic = partition.topic(), partition = p.partition_index, error = %e, "offset lookup failed");
                            answer.with_error_code(log_error_code(&e))
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
