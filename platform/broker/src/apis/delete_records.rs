//! DeleteRecords (key 21): moves partitions' log start offsets forward.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::auth::Principal;
use crate::broker_state::BrokerState;
use crate::error::{auth_error_code, log_error_code, partition_error_code};

/// Handles a DeleteRecords (file work: run on a blocking thread). An offset
/// of -1 means the high watermark, as in Kafka; an offset above it is
/// OFFSET_OUT_OF_RANGE. Internal topics are refused (INVALID_TOPIC_EXCEPTION),
/// as Kafka refuses them.
pub(crate) fn handle(
    state: &BrokerState,
    request: DeleteRecordsRequest,
    principal: Principal,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = crate::auth::may_change(&principal, &topic.name, "delete records of");
            let found = state.registry().get(topic.name.as_str());
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if let Err(e) = &allowed {
                        return result.with_error_code(auth_error_code(e));
                    }
                    let Some(partition) =
                        found.as_ref().and_then(|t| t.partition(p.partition_index))
                    else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    // The leader deletes; followers follow its log start.
                    if let Err(e) =
                        crate::quorum_link::check_leader(state.cluster(), &partition, -1)
                    {
                        return result.with_error_code(partition_error_code(&e));
                    }
                    let high_watermark = partition.high_watermark();
                    let offset = if p.offset == -1 {
                        high_watermark
                    } else {
                        p.offset
                    };
                    if offset < 0 || offset > high_watermark {
                        return result.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match partition.log().delete_records_before(offset) {
                        Ok(start) => result.with_low_watermark(start),
                        Err(e) => result.with_error_code(log_error_code(&e)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
