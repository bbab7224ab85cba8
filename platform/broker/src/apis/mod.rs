//! Request handlers, one module per API group. Each turns a decoded request
//! into a response; client mistakes become Kafka error codes in it. Each
//! is handed the request's [`Access`] (who sends it, and the authorizer)
//! and asks it before acting, as Kafka's handlers do.

mod acls;
pub(crate) mod api_versions;
mod configs;
mod consumer_group;
mod delete_records;
mod describe_cluster;
mod describe_producers;
mod describe_topic_partitions;
mod elect_leaders;
mod fetch;
mod group;
mod group_configs;
mod leader_hint;
mod list_offsets;
mod log_dirs;
mod metadata;
mod offset_for_leader_epoch;
pub(crate) mod offsets;
mod produce;
mod producer_id;
mod quotas;
mod reassignments;
mod request_limits;
pub(crate) mod sasl;
mod scram_credentials;
mod throttle;
mod topics;
mod unregister_broker;

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::authorizer::Access;
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::metadata::NewTopic;
use crate::quotas::QuotaKind;
use crate::request::DecodedRequest;
use crate::topic_registry::Topic;

/// What the connection does after a request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Send this answer.
    Send(Box<ResponseKind>),
    /// Send nothing (Produce with acks 0 that succeeded).
    Nothing,
    /// Close the connection: a Produce with acks 0 failed, and closing is
    /// the only way to tell the producer (as Kafka does).
    Close(&'static str),
    /// Send this answer, then close (a failed SASL authentication).
    SendAndClose(Box<ResponseKind>, &'static str),
}

/// Runs a handler that deletes or rewrites files on a blocking thread
/// instead of an async worker.
async fn blocking<T: Send + 'static>(
    state: &Arc<BrokerState>,
    work: impl FnOnce(&BrokerState) -> T + Send + 'static,
) -> Result<T, Reply> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "admin handler failed");
            Reply::Close("admin handler failed")
        })
}

/// Serves a ListOffsets v0 ([`crate::legacy_list_offsets`]) with the v1
/// handler.
pub(crate) fn legacy_list_offsets(
    state: &Arc<BrokerState>,
    request: kafka_protocol::messages::ListOffsetsRequest,
    session: &Session,
) -> kafka_protocol::messages::ListOffsetsResponse {
    list_offsets::handle(state, 1, request, &state.access(session))
}

/// Serves a DescribeConfigs v0 ([`crate::legacy_describe_configs`]) with
/// the v1 handler.
pub(crate) fn legacy_describe_configs(
    state: &Arc<BrokerState>,
    request: kafka_protocol::messages::DescribeConfigsRequest,
    session: &Session,
) -> kafka_protocol::messages::DescribeConfigsResponse {
    configs::describe(state, 1, request, &state.access(session))
}

/// Handles one request of the connection `session`, the time it keeps a
/// thread busy counted against the client's `request_percentage` quota
/// (`throttle`). Replica fetches are not counted, as in Kafka: followers
/// are the broker's own traffic.
pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    request: DecodedRequest,
    session: &mut Session,
) -> Reply {
    if let Some(over) = request_limits::exceeded(state.config(), &request.body) {
        return over_limit(session, request, &over);
    }
    let api_key = request.api_key;
    let client_id = request.header.client_id.clone().unwrap_or_default();
    let replica = matches!(&request.body,
        RequestKind::Fetch(r) if fetch::replica_id(request.version, r) >= 0);
    let (reply, busy) = crate::quotas::timed(dispatch(state, request, session)).await;
    if replica || throttle::exempt(api_key) {
        return reply;
    }
    throttle::request_time(state, session, &client_id, busy, reply)
}

/// The answer to a request over its API's `request.max.*` limit
/// (`request_limits`): nothing is acted on, and the connection serves on,
/// except after a Produce with acks 0, which has no answer to carry the
/// error (closing is the only way to tell, as for any failed acks-0
/// produce).
fn over_limit(
    session: &Session,
    request: DecodedRequest,
    over: &request_limits::OverLimit,
) -> Reply {
    static OVER_LIMIT: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new();
    if let Some(suppressed) = OVER_LIMIT.admit(session.peer.ip()) {
        tracing::info!(peer = %session.peer, api = ?request.api_key, %over, suppressed,
            "request refused with INVALID_REQUEST (suppressed: such lines for this address since the last one)");
    }
    if matches!(&request.body, RequestKind::Produce(r) if r.acks == 0) {
        return Reply::Close("a produce with acks=0 over request.max.produce.partitions");
    }
    match request_limits::refusal(request.version, request.body, over) {
        Some(response) => Reply::Send(Box::new(response)),
        None => Reply::Close("no refusal for a limited API"),
    }
}

/// Hands one request to its handler.
async fn dispatch(
    state: &Arc<BrokerState>,
    request: DecodedRequest,
    session: &mut Session,
) -> Reply {
    let v = request.version;
    let access = state.access(session);
    let access = &access;
    let client_id = request.header.client_id.as_deref().unwrap_or("");
    Reply::Send(Box::new(match request.body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::response(0)),
        RequestKind::SaslHandshake(r) => return sasl::handshake(state, session, v, r),
        RequestKind::SaslAuthenticate(r) => return sasl::authenticate(state, session, r).await,
        RequestKind::DescribeUserScramCredentials(r) => ResponseKind::DescribeUserScramCredentials(
            scram_credentials::describe(state, access, r),
        ),
        RequestKind::AlterUserScramCredentials(r) => ResponseKind::AlterUserScramCredentials(
            scram_credentials::alter(state, access, r).await,
        ),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(state, &session.listener, v, r, access).await)
        }
        RequestKind::DescribeTopicPartitions(r) => ResponseKind::DescribeTopicPartitions(
            describe_topic_partitions::handle(state, &session.listener, r, access),
        ),
        RequestKind::Produce(r) => {
            let acks = r.acks;
            let quota = state.client_quota(QuotaKind::Produce, &access.principal, client_id);
            let bytes: usize = r
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .filter_map(|p| p.records.as_ref().map(|r| r.len()))
                .sum();
            let mut response = produce::handle(state, &session.listener.name, v, r, access).await;
            if let Some(quota) = quota {
                let throttle =
                    state
                        .client_quotas()
                        .record(&quota, bytes as f64, std::time::Instant::now());
                session.mute = throttle;
                response.throttle_time_ms = crate::quotas::throttle_ms(throttle);
            }
            if acks == 0 {
                let failed = response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partition_responses)
                    .any(|p| p.error_code != 0);
                return if failed {
                    Reply::Close("a produce with acks=0 failed")
                } else {
                    Reply::Nothing
                };
            }
            ResponseKind::Produce(response)
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(
            throttle::fetch_within_quota(state, v, r, access, client_id, session).await,
        ),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(state, v, r, access))
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(state, r, access).await)
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(state, r, access))
        }
        // KIP-599: the versions that know THROTTLING_QUOTA_EXCEEDED are
        // refused with it; older ones are answered and throttled.
        RequestKind::CreateTopics(r) => {
            let mut mutations = throttle::mutations(state, access, client_id, v >= 6);
            let mut response = topics::create(state, v, r, access, &mut mutations).await;
            response.throttle_time_ms = throttle::mutated(session, &mutations);
            ResponseKind::CreateTopics(response)
        }
        RequestKind::DeleteTopics(r) => {
            let mut mutations = throttle::mutations(state, access, client_id, v >= 5);
            let mut response = topics::delete(state, v, r, access, &mut mutations).await;
            response.throttle_time_ms = throttle::mutated(session, &mutations);
            ResponseKind::DeleteTopics(response)
        }
        RequestKind::CreatePartitions(r) => {
            let mut mutations = throttle::mutations(state, access, client_id, v >= 3);
            let mut response = topics::create_partitions(state, r, access, &mut mutations).await;
            response.throttle_time_ms = throttle::mutated(session, &mutations);
            ResponseKind::CreatePartitions(response)
        }
        RequestKind::DeleteRecords(r) => {
            let access = access.clone();
            match blocking(state, move |s| delete_records::handle(s, r, &access)).await {
                Ok(response) => ResponseKind::DeleteRecords(response),
                Err(reply) => return reply,
            }
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(state, v, r, access))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(configs::alter(state, r, access).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(state, r, access).await,
        ),
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(log_dirs::describe(state, v, r, access))
        }
        RequestKind::AlterReplicaLogDirs(r) => {
            ResponseKind::AlterReplicaLogDirs(log_dirs::alter(state, r, access))
        }
        RequestKind::DescribeCluster(r) => ResponseKind::DescribeCluster(
            describe_cluster::describe(state, &session.listener, v, r, access),
        ),
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(elect_leaders::handle(state, v, r, access).await)
        }
        RequestKind::AlterPartitionReassignments(r) => {
            ResponseKind::AlterPartitionReassignments(reassignments::alter(state, r, access).await)
        }
        RequestKind::ListPartitionReassignments(r) => {
            ResponseKind::ListPartitionReassignments(reassignments::list(state, r, access))
        }
        RequestKind::UnregisterBroker(r) => {
            ResponseKind::UnregisterBroker(unregister_broker::handle(state, r, access).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(producer_id::init(state, v, r, access))
        }
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(
            group::find_coordinator(state, &session.listener, v, r, access).await,
        ),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(
            group::join(state, v, client_id, &session.client_host, r, access).await,
        ),
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(group::sync(state, v, r, access).await)
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(group::heartbeat(state, r, access)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(group::leave(state, v, r, access)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(group::list(state, v, r, access)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(group::describe(state, v, r, access))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => ResponseKind::ConsumerGroupHeartbeat(
            consumer_group::heartbeat(state, v, client_id, &session.client_host, r, access),
        ),
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group::describe(state, v, r, access))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(group::delete(state, r, access).await)
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offsets::commit(state, v, r, access).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offsets::fetch(state, v, r, access))
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offsets::delete(state, r, access).await)
        }
        RequestKind::CreateAcls(r) => {
            ResponseKind::CreateAcls(acls::create(state, r, access).await)
        }
        RequestKind::DescribeAcls(r) => {
            ResponseKind::DescribeAcls(acls::describe(state, r, access))
        }
        RequestKind::DescribeClientQuotas(r) => {
            ResponseKind::DescribeClientQuotas(quotas::describe(state, access, r))
        }
        RequestKind::AlterClientQuotas(r) => {
            ResponseKind::AlterClientQuotas(quotas::alter(state, access, r).await)
        }
        RequestKind::DeleteAcls(r) => {
            ResponseKind::DeleteAcls(acls::delete(state, r, access).await)
        }
        other => {
            // Unreachable: decode_request refuses APIs not in SUPPORTED_APIS.
            tracing::error!(api = ?request.api_key, "no handler for an advertised API");
            drop(other);
            return Reply::Close("no handler");
        }
    }))
}

/// The topic called `name`, created with the broker's defaults when it is
/// unknown, `auto.create.topics.enable` is on and `creations_left` (what
/// is left of the request's `auto.create.topics.max.per.request`) is not
/// 0, and the requester may create it (else TOPIC_AUTHORIZATION_FAILED,
/// as Kafka's Metadata answers). Past the per-request cap the answer is
/// UNKNOWN_TOPIC_OR_PARTITION, which clients retry: one request cannot
/// make thousands of topics. Errors are Kafka codes.
pub(crate) async fn topic_or_create(
    state: &Arc<BrokerState>,
    access: &Access,
    name: &str,
    creations_left: &mut usize,
) -> Result<Arc<Topic>, i16> {
    if let Some(topic) = state.registry().get(name) {
        return Ok(topic);
    }
    if let Err(e) = crate::topic_registry::validate_topic_name(name) {
        tracing::debug!(topic = name, error = %e, "invalid topic name");
        return Err(ResponseError::InvalidTopicException.code());
    }
    // Only the platform creates its internal topics, with their configs.
    let internal = crate::auth::is_internal_topic(name);
    // 0 left: auto-creation not asked for, or the cap reached.
    if !state.config().auto_create_topics || internal || *creations_left == 0 {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    if !access.may_create_topic(name) {
        return Err(ResponseError::TopicAuthorizationFailed.code());
    }
    // Counted when tried: a failed creation costs as much to refuse.
    *creations_left -= 1;
    // Created concurrently by another connection (or broker) and not
    // known here yet: the client retries, as for any unknown topic.
    let created = state
        .metadata()
        .create_or_get(NewTopic::named(name), Duration::ZERO)
        .await;
    created.map_err(|e| {
        if e.code == ResponseError::TopicAlreadyExists.code() {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            tracing::warn!(topic = name, error = %e.message, "auto-creation failed");
            e.code
        }
    })
}

#[cfg(test)]
mod authorized;
#[cfg(test)]
mod every_version;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::request::{encode_response, samples::sample};
    use crate::topic_config::TopicConfigs;
    use crate::topic_registry::TopicRegistry;
    use crate::versions::SUPPORTED_APIS;
    use kafka_protocol::messages::{ApiKey, RequestHeader};

    /// Decodable but odd requests (bit flips in valid ones) never make a
    /// handler panic, and their answers encode. CreateTopics and
    /// CreatePartitions are left out: a flipped partition count would open
    /// thousands of logs.
    #[tokio::test]
    async fn handlers_survive_mutated_requests() -> Result<(), crate::error::BrokerError> {
        use bytes::BytesMut;
        let dir =
            tempfile::tempdir().map_err(|e| crate::error::BrokerError::Config(e.to_string()))?;
        let state = state(dir.path())?;
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for &(api, min, max) in SUPPORTED_APIS {
            // JoinGroup and SyncGroup can park until a rebalance times out
            // (a mutated rebalance timeout may be hours); their decoding is
            // fuzzed in request/tests.rs and their rules in the group tests.
            if matches!(
                api,
                ApiKey::CreateTopics
                    | ApiKey::CreatePartitions
                    | ApiKey::JoinGroup
                    | ApiKey::SyncGroup
            ) {
                continue;
            }
            for version in min..=max {
                let mut body = BytesMut::new();
                if sample(api, version).encode(&mut body, version).is_err() {
                    continue;
                }
                for _ in 0..200 {
                    let mut bytes = body.to_vec();
                    if bytes.is_empty() {
                        break;
                    }
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                    let mut buf = bytes::Bytes::from(bytes);
                    let Ok(body) = RequestKind::decode(api, &mut buf, version) else {
                        continue;
                    };
                    let request = DecodedRequest {
                        header: RequestHeader::default(),
                        api_key: api,
                        version,
                        body,
                    };
                    if let Reply::Send(response) = handle(&state, request, &mut session()).await {
                        // Encoding may refuse values the client sent back
                        // to us; it must not panic.
                        let _ = encode_response(api, version, 1, &response);
                    }
                }
            }
        }
        Ok(())
    }

    fn session() -> Session {
        Session::new(
            "127.0.0.1:9".parse().expect("an address"),
            Arc::new(crate::listeners::BoundListener::plaintext_for_tests()),
            crate::auth::Principal::Anonymous,
        )
    }

    pub(crate) fn state(
        dir: &std::path::Path,
    ) -> Result<Arc<BrokerState>, crate::error::BrokerError> {
        state_with(BrokerConfig::ephemeral(dir))
    }

    /// The state of a single node with `config`, its data in
    /// `config.data_dir`.
    pub(crate) fn state_with(
        config: BrokerConfig,
    ) -> Result<Arc<BrokerState>, crate::error::BrokerError> {
        let dir = config.data_dir.clone();
        let dir = dir.as_path();
        let registry = TopicRegistry::open(dir, config.default_log_config(), None)?;
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        // Keep the sender alive for the test's duration.
        std::mem::forget(stop);
        let groups =
            crate::group::GroupCoordinator::new(crate::broker_state::group_settings(&config));
        let stores = crate::metadata::LocalStores::open(dir)?;
        let validator = crate::oauth::TokenValidator::from_config(&config)?.map(Arc::new);
        Ok(Arc::new(
            BrokerState::new(
                Arc::new(config),
                Arc::new(registry),
                stores,
                Arc::new(groups),
                crate::broker_state::Advertised {
                    host: "localhost".to_string(),
                    port: 9092,
                    listener: "PLAINTEXT".to_string(),
                    tls: None,
                },
                shutdown,
                None,
            )
            .with_token_validator(validator),
        ))
    }

    /// On a single node the partition admin APIs answer what can be true of
    /// one broker: every partition already has its only possible leader and
    /// replica list, and there is no broker registration to remove.
    #[tokio::test]
    async fn single_node_partition_admin() -> Result<(), crate::error::BrokerError> {
        use kafka_protocol::messages::*;
        use kafka_protocol::protocol::StrBytes;
        let dir =
            tempfile::tempdir().map_err(|e| crate::error::BrokerError::Config(e.to_string()))?;
        let state = state(dir.path())?;
        state
            .registry()
            .create("events", 2, TopicConfigs::default(), false)
            .map_err(|e| crate::error::BrokerError::Config(e.message))?;
        let node = state.config().node_id;
        let name = |n: &'static str| TopicName(StrBytes::from_static_str(n));
        let call = |api: ApiKey, version: i16, body: RequestKind| {
            let state = Arc::clone(&state);
            async move {
                let request = DecodedRequest {
                    header: RequestHeader::default(),
                    api_key: api,
                    version,
                    body,
                };
                match handle(&state, request, &mut session()).await {
                    Reply::Send(response) => *response,
                    other => panic!("{api:?}: {other:?}"),
                }
            }
        };

        let elect = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![
                elect_leaders_request::TopicPartitions::default()
                    .with_topic(name("events"))
                    .with_partitions(vec![0, 1, 2]),
            ]));
        let ResponseKind::ElectLeaders(r) = call(ApiKey::ElectLeaders, 2, elect.into()).await
        else {
            panic!("not an ElectLeaders answer");
        };
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        let not_needed = ResponseError::ElectionNotNeeded.code();
        let unknown = ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(codes, [not_needed, not_needed, unknown]);
        // Null: every partition that needs an election, and none does.
        let all = ElectLeadersRequest::default().with_topic_partitions(None);
        let ResponseKind::ElectLeaders(r) = call(ApiKey::ElectLeaders, 1, all.into()).await else {
            panic!("not an ElectLeaders answer");
        };
        assert!(r.replica_election_results.is_empty(), "{r:?}");

        let partition = |index: i32, replicas: Option<Vec<i32>>| {
            alter_partition_reassignments_request::ReassignablePartition::default()
                .with_partition_index(index)
                .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))
        };
        let alter = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(name("events"))
                .with_partitions(vec![
                    partition(0, Some(vec![node])),
                    partition(1, Some(vec![node, node + 1])),
                    partition(1, None),
                    partition(5, Some(vec![node])),
                ]),
        ]);
        let ResponseKind::AlterPartitionReassignments(r) =
            call(ApiKey::AlterPartitionReassignments, 0, alter.into()).await
        else {
            panic!("not an AlterPartitionReassignments answer");
        };
        let codes: Vec<i16> = r.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            [
                0,
                ResponseError::InvalidReplicaAssignment.code(),
                ResponseError::NoReassignmentInProgress.code(),
                unknown,
            ]
        );

        let list = ListPartitionReassignmentsRequest::default().with_topics(None);
        let ResponseKind::ListPartitionReassignments(r) =
            call(ApiKey::ListPartitionReassignments, 0, list.into()).await
        else {
            panic!("not a ListPartitionReassignments answer");
        };
        assert_eq!((r.error_code, r.topics.len()), (0, 0));

        let unregister = UnregisterBrokerRequest::default().with_broker_id(BrokerId(node));
        let ResponseKind::UnregisterBroker(r) =
            call(ApiKey::UnregisterBroker, 0, unregister.into()).await
        else {
            panic!("not an UnregisterBroker answer");
        };
        assert_eq!(r.error_code, ResponseError::InvalidRequest.code());
        assert!(r.error_message.is_some_and(|m| m.contains("single-node")));
        Ok(())
    }

    /// Every advertised version of every API gets an answer that encodes:
    /// a field set outside its versions would make the encoder fail and
    /// the connection close.
    #[tokio::test]
    async fn every_advertised_version_answers() -> Result<(), crate::error::BrokerError> {
        let dir =
            tempfile::tempdir().map_err(|e| crate::error::BrokerError::Config(e.to_string()))?;
        let state = state(dir.path())?;
        for &(api, min, max) in SUPPORTED_APIS {
            for version in min..=max {
                let request = DecodedRequest {
                    header: RequestHeader::default(),
                    api_key: api,
                    version,
                    body: sample(api, version),
                };
                match handle(&state, request, &mut session()).await {
                    // A refused authentication is answered before closing.
                    Reply::Send(response) | Reply::SendAndClose(response, _) => {
                        if let Err(e) = encode_response(api, version, 1, &response) {
                            panic!("{api:?} v{version}: {e}");
                        }
                    }
                    other => panic!("{api:?} v{version}: {other:?}"),
                }
            }
        }
        Ok(())
    }
}
