//! Request-time quotas (KIP-124) around the handlers: the time a request
//! kept a thread busy is recorded against the client's
//! `request_percentage` quota, and an answer that takes the client over it
//! carries the throttle time (the larger of it and a byte-rate throttle
//! already set), and the connection is muted that long, as Kafka does.
//!
//! Also the glue of the other quotas: a consumer's Fetch under its byte
//! rate ([`fetch_within_quota`]), and controller mutation quotas (KIP-599):
//! [`mutations`] for a topic request and [`mutated`] for its answer.
//!
//! What is measured and how the throttle is computed is
//! `crate::quotas`'; which requests are timed is [`exempt`] and
//! `super::handle`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

use super::Reply;
use crate::authorizer::Access;
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::quotas::{Mutations, QuotaKind, percentage, throttle_ms};

/// The partition mutations of one CreateTopics, CreatePartitions or
/// DeleteTopics under the client's `controller_mutation_rate`, `strict`
/// for the versions that know THROTTLING_QUOTA_EXCEEDED (KIP-599).
pub(super) fn mutations<'a>(
    state: &'a BrokerState,
    access: &Access,
    client_id: &str,
    strict: bool,
) -> Mutations<'a> {
    let quota = state.client_quota(QuotaKind::ControllerMutation, &access.principal, client_id);
    state.client_quotas().mutations(quota, strict)
}

/// Mutes the connection for the throttle `mutations` earned and returns
/// it for the answer's `throttle_time_ms`.
pub(super) fn mutated(session: &mut Session, mutations: &Mutations<'_>) -> i32 {
    session.mute = session.mute.max(mutations.throttle());
    throttle_ms(mutations.throttle())
}

/// Requests never throttled for their time: the SASL exchange, whose
/// answers carry no throttle time to tell the client why it waits (Kafka
/// counts them towards the principal only once it is authenticated).
/// Replica fetches are exempt too (`super::handle`), as in Kafka.
pub(super) fn exempt(api: ApiKey) -> bool {
    matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate)
}

/// Records `busy` against the client's `request_percentage` quota, if one
/// applies, and throttles `reply` when it takes the client over: a Fetch is
/// answered empty (its records are not sent, and their bytes are taken back
/// from the client's byte rate, as Kafka does), any other answer carries
/// the throttle time.
pub(super) fn request_time(
    state: &Arc<BrokerState>,
    session: &mut Session,
    client_id: &str,
    busy: Duration,
    reply: Reply,
) -> Reply {
    let Some(quota) = state.client_quota(QuotaKind::Request, &session.principal, client_id) else {
        return reply;
    };
    let now = Instant::now();
    let throttle = state.client_quotas().record(&quota, percentage(busy), now);
    if throttle.is_zero() {
        return reply;
    }
    session.mute = session.mute.max(throttle);
    let ms = throttle_ms(session.mute);
    match reply {
        Reply::Send(mut response) => {
            if let ResponseKind::Fetch(fetch) = response.as_mut() {
                *fetch = emptied(state, session, client_id, fetch, now);
            }
            set_throttle(&mut response, ms);
            Reply::Send(response)
        }
        // An acks=0 Produce has no answer; it is muted all the same.
        other => other,
    }
}

/// A Fetch answer without its records, whose bytes no longer count
/// towards the client's `consumer_byte_rate`.
fn emptied(
    state: &BrokerState,
    session: &Session,
    client_id: &str,
    fetch: &FetchResponse,
    now: Instant,
) -> FetchResponse {
    let bytes: usize = fetch
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref().map(|r| r.len()))
        .sum();
    if bytes > 0
        && let Some(quota) = state.client_quota(QuotaKind::Fetch, &session.principal, client_id)
    {
        state.client_quotas().unrecord(&quota, bytes as f64, now);
    }
    FetchResponse::default().with_session_id(fetch.session_id)
}

/// A consumer's Fetch under its `consumer_byte_rate` quota, as Kafka
/// serves it: at most what the quota window holds, and, when the answer
/// takes the client over its quota, an empty answer with the throttle time
/// instead (its bytes not counted) and the connection muted that long.
/// Replica fetches are never throttled.
pub(super) async fn fetch_within_quota(
    state: &Arc<BrokerState>,
    version: i16,
    mut request: kafka_protocol::messages::FetchRequest,
    access: &Access,
    client_id: &str,
    session: &mut Session,
) -> kafka_protocol::messages::FetchResponse {
    let quota = if super::fetch::replica_id(version, &request) < 0 {
        state.client_quota(QuotaKind::Fetch, &access.principal, client_id)
    } else {
        None
    };
    let listener = &session.listener.name;
    let Some(quota) = quota else {
        return super::fetch::handle(state, listener, version, request, access).await;
    };
    let most = i32::try_from(state.client_quotas().max_in_window(&quota)).unwrap_or(i32::MAX);
    request.max_bytes = request.max_bytes.min(most.max(1));
    let response = super::fetch::handle(state, listener, version, request, access).await;
    let bytes: usize = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter_map(|p| p.records.as_ref().map(|r| r.len()))
        .sum();
    let now = std::time::Instant::now();
    let quotas = state.client_quotas();
    let throttle = quotas.record(&quota, bytes as f64, now);
    if throttle.is_zero() {
        return response;
    }
    quotas.unrecord(&quota, bytes as f64, now);
    session.mute = throttle;
    kafka_protocol::messages::FetchResponse::default()
        .with_throttle_time_ms(crate::quotas::throttle_ms(throttle))
        .with_session_id(response.session_id)
}

/// Sets `throttle_time_ms` of an answer to `ms` unless it is already
/// larger (a byte-rate throttle). Answers whose version has no such field
/// do not encode it.
fn set_throttle(response: &mut ResponseKind, ms: i32) {
    macro_rules! throttled {
        ($($kind:ident),* $(,)?) => {
            match response {
                $(ResponseKind::$kind(r) => r.throttle_time_ms = r.throttle_time_ms.max(ms),)*
                _ => {}
            }
        };
    }
    throttled!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        DeleteGroups,
        OffsetDelete,
        DescribeCluster,
        OffsetForLeaderEpoch,
        ElectLeaders,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        UnregisterBroker,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeClientQuotas,
        AlterClientQuotas,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataResponse, ProduceResponse};

    /// The larger of a byte-rate throttle and the request-time one wins.
    #[test]
    fn the_larger_throttle_is_kept() {
        let mut produce =
            ResponseKind::Produce(ProduceResponse::default().with_throttle_time_ms(900));
        set_throttle(&mut produce, 250);
        let mut metadata = ResponseKind::Metadata(MetadataResponse::default());
        set_throttle(&mut metadata, 250);
        match (produce, metadata) {
            (ResponseKind::Produce(p), ResponseKind::Metadata(m)) => {
                assert_eq!((p.throttle_time_ms, m.throttle_time_ms), (900, 250));
            }
            _ => unreachable!(),
        }
    }
}
