//! DescribeTransactions and ListTransactions (KIP-664): what the
//! transaction coordinator of this broker holds. DESCRIBE on each
//! TransactionalId, as Kafka: DescribeTransactions answers
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED for an id the requester may not
//! describe (and lists only the topics it may describe), ListTransactions
//! leaves such ids out.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::txn_error_code;
use crate::txn::state::TxnStatus;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

pub(crate) async fn describe(
    state: &Arc<BrokerState>,
    request: DescribeTransactionsRequest,
    access: &Access,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(request.transactional_ids.len());
    for id in request.transactional_ids {
        let answer = TransactionState::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_start_time_ms(-1);
        if !access.allows(Operation::Describe, ResourceType::TransactionalId, &id) {
            states.push(
                answer.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code()),
            );
            continue;
        }
        let txn = match state.txns().describe(state, &id).await {
            Ok(Some(txn)) => txn,
            Ok(None) => {
                states.push(answer.with_error_code(ResponseError::TransactionalIdNotFound.code()));
                continue;
            }
            Err(e) => {
                states.push(answer.with_error_code(txn_error_code(&e, true)));
                continue;
            }
        };
        let topics = txn
            .topics()
            .into_iter()
            .filter(|(topic, _)| access.topic(Operation::Describe, topic))
            .map(|(topic, partitions)| {
                TopicData::default()
                    .with_topic(TopicName(s(&topic)))
                    .with_partitions(partitions)
            })
            .collect();
        states.push(
            answer
                .with_transaction_state(s(txn.status.name()))
                .with_transaction_timeout_ms(txn.timeout_ms)
                .with_transaction_start_time_ms(txn.start_ms)
                .with_producer_id(ProducerId(txn.producer_id))
                .with_producer_epoch(txn.producer_epoch)
                .with_topics(topics),
        );
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub(crate) async fn list(
    state: &Arc<BrokerState>,
    version: i16,
    request: ListTransactionsRequest,
    access: &Access,
) -> ListTransactionsResponse {
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|f| !TxnStatus::ALL.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let pattern = match request.transactional_id_pattern.as_deref() {
        Some(p) if version >= 2 && !p.is_empty() => match regex::Regex::new(p) {
            Ok(r) => Some(r),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code());
            }
        },
        _ => None,
    };
    let now = now_ms();
    let mut txns = state.txns().list(state).await;
    txns.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    let states = txns
        .into_iter()
        .filter(|t| t.status != TxnStatus::Dead)
        .filter(|t| {
            request.state_filters.is_empty()
                || request
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == t.status.name())
        })
        .filter(|t| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|p| p.0 == t.producer_id)
        })
        .filter(|t| {
            // v1: only transactions running at least this long.
            version < 1
                || request.duration_filter < 0
                || (t.start_ms >= 0 && now - t.start_ms >= request.duration_filter)
        })
        .filter(|t| {
            pattern
                .as_ref()
                .is_none_or(|r| r.is_match(&t.transactional_id))
        })
        .filter(|t| {
            access.allows(
                Operation::Describe,
                ResourceType::TransactionalId,
                &t.transactional_id,
            )
        })
        .map(|t| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(s(&t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(s(t.status.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
