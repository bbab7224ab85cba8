//! Authorization of every API, at the handler level: a table over every
//! API key ApiVersions advertises, asked by a principal with no ACL and by
//! one allowed everything through ACLs; then the rules real clients meet
//! (DENY over ALLOW, PREFIXED, Metadata filtering, KIP-679, KIP-430) for
//! named users, who log in with SASL/SCRAM.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{Reply, handle};
use crate::auth::Principal;
use crate::authorizer::{AclBinding, Operation, PatternType, Permission, ResourceType};
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::config::BrokerConfig;
use crate::request::DecodedRequest;
use crate::request::samples::sample;
use crate::topic_config::TopicConfigs;
use crate::versions::SUPPORTED_APIS;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What a principal without ACLs gets from an API.
#[derive(Debug, Clone, Copy)]
enum Unprivileged {
    /// Refused with this code (somewhere in the answer).
    Refused(ResponseError),
    /// Answered, with what it may not see left out (checked by the
    /// API's own test below).
    Filtered,
    /// Not authorized: the API works before and without a login.
    Open,
}

use Unprivileged::*;

/// Every advertised API and what an unprivileged principal gets. An API
/// advertised without a row fails `every_advertised_api_is_authorized`.
const TABLE: &[(ApiKey, Unprivileged)] = &[
    (
        ApiKey::Produce,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::Fetch,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::ListOffsets,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::Metadata,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::OffsetCommit,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::OffsetFetch,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::FindCoordinator,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::JoinGroup,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::Heartbeat,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::LeaveGroup,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::SyncGroup,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::DescribeGroups,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (ApiKey::ListGroups, Filtered),
    (
        ApiKey::ConsumerGroupHeartbeat,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (ApiKey::SaslHandshake, Open),
    (ApiKey::ApiVersions, Open),
    (
        ApiKey::CreateTopics,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::DeleteTopics,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::DeleteRecords,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::InitProducerId,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeConfigs,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (ApiKey::SaslAuthenticate, Open),
    (
        ApiKey::AlterConfigs,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::CreatePartitions,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::IncrementalAlterConfigs,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::DeleteGroups,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::OffsetDelete,
        Refused(ResponseError::GroupAuthorizationFailed),
    ),
    (
        ApiKey::DescribeCluster,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::OffsetForLeaderEpoch,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::DescribeProducers,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::ElectLeaders,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::AlterPartitionReassignments,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::ListPartitionReassignments,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::UnregisterBroker,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeAcls,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::CreateAcls,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DeleteAcls,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeUserScramCredentials,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::AlterUserScramCredentials,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeLogDirs,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::AlterReplicaLogDirs,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeClientQuotas,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
    (
        ApiKey::DescribeTopicPartitions,
        Refused(ResponseError::TopicAuthorizationFailed),
    ),
    (
        ApiKey::AlterClientQuotas,
        Refused(ResponseError::ClusterAuthorizationFailed),
    ),
];

const AUTHORIZATION_CODES: [ResponseError; 4] = [
    ResponseError::TopicAuthorizationFailed,
    ResponseError::GroupAuthorizationFailed,
    ResponseError::ClusterAuthorizationFailed,
    ResponseError::TransactionalIdAuthorizationFailed,
];

/// A single node with the authorizer on, `super.users` = `User:root`, a
/// topic `topic` (2 partitions) and a group `group` with a committed
/// offset.
async fn secured(dir: &std::path::Path) -> Result<Arc<BrokerState>, Box<dyn std::error::Error>> {
    let config = BrokerConfig {
        authorizer_class_name: Some("acl".into()),
        super_users: vec!["User:root".into()],
        ..BrokerConfig::ephemeral(dir)
    };
    let state = super::tests::state_with(config)?;
    state
        .registry()
        .create("topic", 2, TopicConfigs::default(), false)
        .map_err(|e| e.message)?;
    let commit = sample(ApiKey::OffsetCommit, 8);
    let answer = call(&state, user("root"), ApiKey::OffsetCommit, 8, commit).await?;
    assert!(
        !refused(&answer, ResponseError::GroupAuthorizationFailed),
        "{answer:?}"
    );
    Ok(state)
}

fn user(name: &str) -> Principal {
    Principal::User(name.into())
}

/// Sends `body` as `principal` from 127.0.0.1; the answer (or the reply
/// that is not one, as text).
async fn call(
    state: &Arc<BrokerState>,
    principal: Principal,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut session = Session::new(
        "127.0.0.1:9".parse()?,
        Arc::new(crate::listeners::BoundListener::plaintext_for_tests()),
        principal,
    );
    let request = DecodedRequest {
        header: RequestHeader::default(),
        api_key: api,
        version,
        body,
    };
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        handle(state, request, &mut session),
    )
    .await
    .map_err(|_| format!("{api:?} v{version} did not answer"))?;
    Ok(match reply {
        Reply::Send(response) => format!("{response:?}"),
        other => format!("{other:?}"),
    })
}

/// Whether the answer's debug text carries `error` as an error code.
fn refused(answer: &str, error: ResponseError) -> bool {
    let needle = format!("error_code: {}", error.code());
    answer
        .match_indices(&needle)
        .any(|(at, _)| !answer[at + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// The request the table sends: the fuzz sample, but with a topic
/// resource where the sample leaves the type open.
/// The sample request of `api` at `version`, naming the test topic
/// `topic` (by its id in `state` where the version names topics by id).
fn request_for(state: &BrokerState, api: ApiKey, version: i16) -> RequestKind {
    let topic = || StrBytes::from_static_str("topic");
    let id = state
        .registry()
        .get("topic")
        .map(|t| t.id())
        .unwrap_or_default();
    match api {
        ApiKey::Fetch if version >= 13 => {
            let RequestKind::Fetch(mut request) = sample(api, version) else {
                unreachable!("a Fetch sample")
            };
            for t in &mut request.topics {
                t.topic_id = id;
            }
            RequestKind::Fetch(request)
        }
        ApiKey::Produce if version >= 13 => {
            let RequestKind::Produce(mut request) = sample(api, version) else {
                unreachable!("a Produce sample")
            };
            for t in &mut request.topic_data {
                t.topic_id = id;
            }
            RequestKind::Produce(request)
        }
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(topic()),
            ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(topic()),
            ]),
        ),
        ApiKey::DeleteTopics if version >= 6 => {
            RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(TopicName(topic()))),
            ]))
        }
        _ => sample(api, version),
    }
}

/// ALL on every resource of every type, for `principal`.
fn everything_for(principal: &str) -> Vec<AclBinding> {
    ResourceType::ALL
        .into_iter()
        .map(|t| AclBinding {
            resource_type: t,
            resource_name: if t == ResourceType::Cluster {
                crate::authorizer::CLUSTER_NAME.into()
            } else {
                "*".into()
            },
            pattern_type: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation: Operation::All,
            permission: Permission::Allow,
        })
        .collect()
}

#[tokio::test]
async fn every_advertised_api_is_authorized() -> TestResult {
    for &(api, _, _) in SUPPORTED_APIS {
        assert!(
            TABLE.iter().any(|(key, _)| *key == api),
            "{api:?} is advertised but has no row in the authorization table"
        );
    }
    let dir = tempfile::tempdir()?;
    let state = secured(dir.path()).await?;
    // The unprivileged principal first, on the state as set up.
    for &(api, min, max) in SUPPORTED_APIS {
        let Some(&(_, expected)) = TABLE.iter().find(|(key, _)| *key == api) else {
            continue;
        };
        for version in min..=max {
            let answer = call(
                &state,
                user("mallory"),
                api,
                version,
                request_for(&state, api, version),
            )
            .await?;
            match expected {
                Refused(code) => assert!(
                    refused(&answer, code),
                    "{api:?} v{version}: wanted {code:?}, got {answer}"
                ),
                Filtered | Open => {
                    for code in AUTHORIZATION_CODES {
                        assert!(!refused(&answer, code), "{api:?} v{version}: {answer}");
                    }
                }
            }
            if matches!(expected, Filtered) {
                assert!(
                    !answer.contains("\"group\""),
                    "{api:?} v{version}: {answer}"
                );
            }
        }
    }
    // Then a principal the ACLs allow everything (not a super user).
    state
        .metadata()
        .create_acls(everything_for("User:admin"))
        .await
        .map_err(|e| e.message)?;
    for &(api, min, max) in SUPPORTED_APIS {
        for version in min..=max {
            let answer = call(
                &state,
                user("admin"),
                api,
                version,
                request_for(&state, api, version),
            )
            .await?;
            for code in AUTHORIZATION_CODES {
                assert!(!refused(&answer, code), "{api:?} v{version}: {answer}");
            }
            if api == ApiKey::ListGroups {
                assert!(answer.contains("\"group\""), "{api:?} v{version}: {answer}");
            }
        }
    }
    Ok(())
}

fn binding(
    resource: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: resource,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission,
    }
}

fn metadata_of_all(version: i16) -> RequestKind {
    RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(None)
            .with_include_topic_authorized_operations(version >= 8)
            .with_include_cluster_authorized_operations((8..=10).contains(&version)),
    )
}

#[tokio::test]
async fn named_users_see_and_do_what_their_acls_say() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = secured(dir.path()).await?;
    for name in ["logs.app", "logs.db", "orders"] {
        state
            .registry()
            .create(name, 1, TopicConfigs::default(), false)
            .map_err(|e| e.message)?;
    }
    use Operation::*;
    use PatternType::*;
    use ResourceType::*;
    state
        .metadata()
        .create_acls(vec![
            binding(
                Topic,
                "logs.",
                Prefixed,
                "User:alice",
                Write,
                Permission::Allow,
            ),
            binding(
                Topic,
                "logs.db",
                Literal,
                "User:alice",
                Write,
                Permission::Deny,
            ),
            binding(Topic, "orders", Literal, "User:*", Read, Permission::Allow),
        ])
        .await
        .map_err(|e| e.message)?;

    // Metadata lists what alice may describe: what she may write (WRITE
    // implies DESCRIBE, and a DENY WRITE leaves that DESCRIBE alone) and
    // what everyone may read; with her real operations (KIP-430).
    let answer = call(
        &state,
        user("alice"),
        ApiKey::Metadata,
        12,
        metadata_of_all(12),
    )
    .await?;
    for listed in ["logs.app", "logs.db", "orders"] {
        assert!(
            answer.contains(&format!("\"{listed}\"")),
            "{listed}: {answer}"
        );
    }
    assert!(!answer.contains("\"topic\""), "{answer}");
    let describe_write = (1 << Describe.code()) | (1 << Write.code());
    assert!(
        answer.contains(&format!("topic_authorized_operations: {describe_write}")),
        "{answer}"
    );
    let answer = call(
        &state,
        user("bob"),
        ApiKey::Metadata,
        12,
        metadata_of_all(12),
    )
    .await?;
    assert!(
        answer.contains("\"orders\"") && !answer.contains("logs."),
        "{answer}"
    );

    // PREFIXED allows, the literal DENY wins over it.
    let produce = |topic: &'static str| {
        RequestKind::Produce(ProduceRequest::default().with_acks(1).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_records(Some(bytes::Bytes::from_static(&[0u8; 70]))),
                ]),
        ]))
    };
    let denied = ResponseError::TopicAuthorizationFailed;
    let answer = call(
        &state,
        user("alice"),
        ApiKey::Produce,
        9,
        produce("logs.app"),
    )
    .await?;
    assert!(!refused(&answer, denied), "{answer}");
    let answer = call(
        &state,
        user("alice"),
        ApiKey::Produce,
        9,
        produce("logs.db"),
    )
    .await?;
    assert!(refused(&answer, denied), "{answer}");
    let answer = call(&state, user("bob"), ApiKey::Produce, 9, produce("logs.app")).await?;
    assert!(refused(&answer, denied), "{answer}");
    // WRITE without CREATE: an unknown topic stays unknown, as in Kafka.
    let answer = call(
        &state,
        user("alice"),
        ApiKey::Produce,
        9,
        produce("logs.new"),
    )
    .await?;
    assert!(
        refused(&answer, ResponseError::UnknownTopicOrPartition),
        "{answer}"
    );
    assert!(state.registry().get("logs.new").is_none());

    // KIP-679: WRITE on some topic is enough for an idempotent producer's
    // id; a reader gets CLUSTER_AUTHORIZATION_FAILED.
    let init = || {
        RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
    };
    let answer = call(&state, user("alice"), ApiKey::InitProducerId, 4, init()).await?;
    assert!(
        answer.contains("error_code: 0,") && answer.contains("producer_epoch: 0"),
        "{answer}"
    );
    let answer = call(&state, user("bob"), ApiKey::InitProducerId, 4, init()).await?;
    assert!(
        refused(&answer, ResponseError::ClusterAuthorizationFailed),
        "{answer}"
    );

    // A transactional id needs its own ACLs (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transactional = RequestKind::InitProducerId(
        InitProducerIdRequest::default()
            .with_transactional_id(Some(kafka_protocol::messages::TransactionalId(
                StrBytes::from_static_str("tx"),
            )))
            .with_transaction_timeout_ms(60_000),
    );
    let answer = call(
        &state,
        user("alice"),
        ApiKey::InitProducerId,
        4,
        transactional,
    )
    .await?;
    assert!(
        refused(&answer, ResponseError::TransactionalIdAuthorizationFailed),
        "{answer}"
    );
    let find = RequestKind::FindCoordinator(
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![StrBytes::from_static_str("tx")]),
    );
    let answer = call(
        &state,
        user("alice"),
        ApiKey::FindCoordinator,
        4,
        find.clone(),
    )
    .await?;
    assert!(
        refused(&answer, ResponseError::TransactionalIdAuthorizationFailed)
            && !answer.contains(super::group::NO_TRANSACTIONS),
        "{answer}"
    );
    // Allowed the id, she is refused with the same code (there are no
    // transactions), but the message now says why.
    let granted = [Describe, Write].map(|op| {
        binding(
            ResourceType::TransactionalId,
            "tx",
            Literal,
            "User:alice",
            op,
            Permission::Allow,
        )
    });
    state
        .metadata()
        .create_acls(granted.to_vec())
        .await
        .map_err(|e| e.message)?;
    let answer = call(&state, user("alice"), ApiKey::FindCoordinator, 4, find).await?;
    assert!(
        refused(&answer, ResponseError::TransactionalIdAuthorizationFailed)
            && answer.contains(super::group::NO_TRANSACTIONS),
        "{answer}"
    );

    // Auto-creation needs CREATE: alice may describe `logs.new` (her
    // prefixed WRITE) but not create it; with CREATE on the cluster she may.
    let wanted = RequestKind::Metadata(
        MetadataRequest::default()
            .with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("logs.new")))),
            ]))
            .with_allow_auto_topic_creation(true),
    );
    let answer = call(&state, user("alice"), ApiKey::Metadata, 12, wanted.clone()).await?;
    assert!(refused(&answer, denied), "{answer}");
    assert!(state.registry().get("logs.new").is_none());
    let create = binding(
        Cluster,
        crate::authorizer::CLUSTER_NAME,
        Literal,
        "User:alice",
        Create,
        Permission::Allow,
    );
    state
        .metadata()
        .create_acls(vec![create])
        .await
        .map_err(|e| e.message)?;
    let answer = call(&state, user("alice"), ApiKey::Metadata, 12, wanted).await?;
    assert!(!refused(&answer, denied), "{answer}");
    assert!(state.registry().get("logs.new").is_some());

    // DescribeCluster with its operations: alice's are CREATE only.
    let cluster = RequestKind::DescribeCluster(
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    let answer = call(&state, user("alice"), ApiKey::DescribeCluster, 1, cluster).await?;
    assert!(
        refused(&answer, ResponseError::ClusterAuthorizationFailed),
        "{answer}"
    );
    let cluster = RequestKind::DescribeCluster(
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
    );
    let answer = call(&state, user("root"), ApiKey::DescribeCluster, 1, cluster).await?;
    let every: i32 = Cluster
        .operations()
        .iter()
        .fold(0, |b, o| b | (1 << o.code()));
    assert!(
        answer.contains(&format!("cluster_authorized_operations: {every}")),
        "{answer}"
    );
    Ok(())
}

#[tokio::test]
async fn acl_apis_create_describe_and_delete() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = secured(dir.path()).await?;
    let creation = |name: &'static str, pattern: i8, principal: &'static str| {
        create_acls_request::AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str(name))
            .with_resource_pattern_type(pattern)
            .with_principal(StrBytes::from_static_str(principal))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(3)
            .with_permission_type(3)
    };
    let create = RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
        creation("orders", 3, "User:alice"),
        creation("ord", 4, "User:bob"),
        creation("*", 3, "User:carol"),
        creation("bad", 3, "alice"),
    ]));
    let answer = call(&state, user("root"), ApiKey::CreateAcls, 3, create).await?;
    assert_eq!(answer.matches("error_code: 0").count(), 3, "{answer}");
    assert!(answer.contains("is not User:<name>"), "{answer}");

    // MATCH finds what applies to the topic `orders`: its literal, the
    // wildcard and the prefix.
    let describe = |name: Option<&'static str>, pattern: i8| {
        RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(name.map(StrBytes::from_static_str))
                .with_pattern_type_filter(pattern)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        )
    };
    let answer = call(
        &state,
        user("root"),
        ApiKey::DescribeAcls,
        3,
        describe(Some("orders"), 2),
    )
    .await?;
    for who in ["User:alice", "User:bob", "User:carol"] {
        assert!(answer.contains(who), "{who}: {answer}");
    }
    let answer = call(
        &state,
        user("root"),
        ApiKey::DescribeAcls,
        3,
        describe(Some("orders"), 3),
    )
    .await?;
    assert!(
        answer.contains("User:alice") && !answer.contains("User:bob"),
        "{answer}"
    );
    let answer = call(
        &state,
        user("alice"),
        ApiKey::DescribeAcls,
        3,
        describe(None, 1),
    )
    .await?;
    assert!(
        refused(&answer, ResponseError::ClusterAuthorizationFailed),
        "{answer}"
    );

    // Delete the prefixed one: it is reported and gone.
    let delete = RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
        delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(1)
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_pattern_type_filter(4)
            .with_operation(1)
            .with_permission_type(1),
    ]));
    let answer = call(&state, user("root"), ApiKey::DeleteAcls, 3, delete).await?;
    assert!(
        answer.contains("User:bob") && !answer.contains("User:alice"),
        "{answer}"
    );
    let answer = call(
        &state,
        user("root"),
        ApiKey::DescribeAcls,
        3,
        describe(None, 1),
    )
    .await?;
    assert!(
        !answer.contains("User:bob") && answer.contains("User:alice"),
        "{answer}"
    );
    Ok(())
}

/// With no `authorizer.class.name` nothing changes: every API answers a
/// client without ACLs as before, and the ACL APIs answer
/// SECURITY_DISABLED, as Kafka's do. The users' credentials stay closed to
/// all but super users (`auth::authorize_cluster`), where Kafka would open
/// them to anyone.
#[tokio::test]
async fn without_an_authorizer_nothing_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = super::tests::state(dir.path())?;
    state
        .registry()
        .create("topic", 2, TopicConfigs::default(), false)
        .map_err(|e| e.message)?;
    for &(api, min, max) in SUPPORTED_APIS {
        for version in min..=max {
            let answer = call(
                &state,
                Principal::Anonymous,
                api,
                version,
                request_for(&state, api, version),
            )
            .await?;
            let credentials_api = matches!(
                api,
                ApiKey::DescribeUserScramCredentials | ApiKey::AlterUserScramCredentials
            );
            for code in AUTHORIZATION_CODES {
                assert_eq!(
                    refused(&answer, code),
                    credentials_api && code == ResponseError::ClusterAuthorizationFailed,
                    "{api:?} v{version}: {answer}"
                );
            }
            let acl_api = matches!(
                api,
                ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls
            );
            assert_eq!(
                refused(&answer, ResponseError::SecurityDisabled),
                acl_api,
                "{api:?} v{version}: {answer}"
            );
        }
    }
    Ok(())
}
