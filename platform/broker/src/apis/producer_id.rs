//! InitProducerId for idempotent producers (no transactional id).
//! Authorized as Kafka ≥ 3.0 does (KIP-679): IDEMPOTENT_WRITE on the
//! cluster, or WRITE on any topic, since every Java producer is
//! idempotent by default; a transactional id needs WRITE on it.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;

/// A fresh producer id with epoch 0; or, when the client names its current
/// id and epoch (v3+, after an OUT_OF_ORDER or UNKNOWN_PRODUCER_ID), the
/// same id with the epoch bumped, so its sequences restart at 0 (a new id
/// once the epoch would overflow). A transactional id is refused, as
/// FindCoordinator refuses it (`super::group::NO_TRANSACTIONS`): there is
/// no transaction coordinator yet, and TRANSACTIONAL_ID_AUTHORIZATION_FAILED
/// is the one code every client treats as fatal at once here (this answer
/// has no message field to say why; INVALID_REQUEST, the earlier answer,
/// librdkafka retries until its timeout). An empty id is INVALID_REQUEST,
/// as in Kafka.
pub(crate) fn init(
    state: &BrokerState,
    version: i16,
    request: InitProducerIdRequest,
    access: &Access,
) -> InitProducerIdResponse {
    let refused = |error: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = &request.transactional_id {
        if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
            return refused(ResponseError::TransactionalIdAuthorizationFailed);
        }
        if id.is_empty() {
            return refused(ResponseError::InvalidRequest);
        }
        return refused(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !access.cluster(Operation::IdempotentWrite)
        && !access.any(Operation::Write, ResourceType::Topic)
    {
        return refused(ResponseError::ClusterAuthorizationFailed);
    }
    let (current, epoch) = (request.producer_id.0, request.producer_epoch);
    let (id, epoch) = if version >= 3 && current >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        (current, epoch + 1)
    } else {
        (state.producer_ids().allocate(), 0)
    };
    tracing::debug!(producer_id = id, epoch, "producer id issued");
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}
