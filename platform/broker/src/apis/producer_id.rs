//! InitProducerId. Without a transactional id (idempotent producers),
//! authorized as Kafka ≥ 3.0 does (KIP-679): IDEMPOTENT_WRITE on the
//! cluster, or WRITE on any topic, since every Java producer is
//! idempotent by default. With one, WRITE on it, and the transaction
//! coordinator (`crate::txn`) answers.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::error::txn_error_code;

/// A fresh producer id with epoch 0; or, when the client names its current
/// id and epoch (v3+, after an OUT_OF_ORDER or UNKNOWN_PRODUCER_ID), the
/// same id with the epoch bumped, so its sequences restart at 0 (a new id
/// once the epoch would overflow). A transactional id goes to the
/// transaction coordinator: a new producer id, or the epoch bumped, which
/// fences the previous producer of the id (PRODUCER_FENCED is known from
/// v4; older versions get INVALID_PRODUCER_EPOCH). An empty id is
/// INVALID_REQUEST, as in Kafka.
pub(crate) async fn init(
    state: &Arc<BrokerState>,
    version: i16,
    request: InitProducerIdRequest,
    access: &Access,
) -> InitProducerIdResponse {
    let refused = |code: i16| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let expected = (version >= 3 && request.producer_id.0 >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    if let Some(id) = &request.transactional_id {
        if !access.allows(Operation::Write, ResourceType::TransactionalId, id) {
            return refused(ResponseError::TransactionalIdAuthorizationFailed.code());
        }
        if id.is_empty() {
            return refused(ResponseError::InvalidRequest.code());
        }
        return match state
            .txns()
            .init(state, id, request.transaction_timeout_ms, expected)
            .await
        {
            Ok((producer_id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            Err(e) => {
                tracing::debug!(id = %id.as_str(), error = %e, "InitProducerId refused");
                refused(txn_error_code(&e, version >= 4))
            }
        };
    }
    if !access.cluster(Operation::IdempotentWrite)
        && !access.any(Operation::Write, ResourceType::Topic)
    {
        return refused(ResponseError::ClusterAuthorizationFailed.code());
    }
    let (id, epoch) = match expected {
        Some((current, epoch)) if (0..i16::MAX - 1).contains(&epoch) => (current, epoch + 1),
        _ => (state.producer_ids().allocate(), 0),
    };
    tracing::debug!(producer_id = id, epoch, "producer id issued");
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}
