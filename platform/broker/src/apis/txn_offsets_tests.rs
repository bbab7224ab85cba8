//! TxnOffsetCommit through the request handler: offsets stay pending
//! (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT, without
//! it the previous commit) until `complete_transaction` commits or aborts
//! them, and survive a reload of `__consumer_offsets` as the log says;
//! authorization and membership checks as Kafka's.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::authorized::{binding, call as call_as, refused, secured, user};
use super::{DecodedRequest, Reply, handle};
use crate::auth::Principal;
use crate::authorizer::{Operation, PatternType, Permission, ResourceType};
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::group::offsets_topic::{OFFSETS_TOPIC, partition_for};
use crate::topic_config::TopicConfigs;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const UNSTABLE: i16 = 88;

async fn call(
    state: &Arc<BrokerState>,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> ResponseKind {
    let mut session = Session::new(
        "127.0.0.1:9".parse().expect("an address"),
        Arc::new(crate::listeners::BoundListener::plaintext_for_tests()),
        Principal::Anonymous,
    );
    let request = DecodedRequest {
        header: RequestHeader::default(),
        api_key: api,
        version,
        body,
    };
    match handle(state, request, &mut session).await {
        Reply::Send(response) => *response,
        other => panic!("{api:?}: {other:?}"),
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A TxnOffsetCommit of `events` partitions `offsets` for group `g`.
fn txn_commit(pid: i64, member: &str, generation: i32, offsets: &[(i32, i64)]) -> RequestKind {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(text("txn")))
        .with_group_id(GroupId(text("g")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_member_id(text(member))
        .with_generation_id(generation)
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text("events")))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(p, o)| {
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(o)
                        })
                        .collect(),
                ),
        ])
        .into()
}

async fn txn_codes(state: &Arc<BrokerState>, version: i16, body: RequestKind) -> Vec<i16> {
    let ResponseKind::TxnOffsetCommit(r) =
        call(state, ApiKey::TxnOffsetCommit, version, body).await
    else {
        panic!("not a TxnOffsetCommit answer");
    };
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// `(offset, error code)` of `events` partitions 0 and 1 from OffsetFetch
/// v7, or v8's group form.
async fn fetched(state: &Arc<BrokerState>, version: i16, stable: bool) -> Vec<(i64, i16)> {
    let request = if version >= 8 {
        OffsetFetchRequest::default()
            .with_require_stable(stable)
            .with_groups(vec![
                offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(text("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(TopicName(text("events")))
                            .with_partition_indexes(vec![0, 1]),
                    ])),
            ])
    } else {
        OffsetFetchRequest::default()
            .with_require_stable(stable)
            .with_group_id(GroupId(text("g")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(text("events")))
                    .with_partition_indexes(vec![0, 1]),
            ]))
    };
    let ResponseKind::OffsetFetch(r) =
        call(state, ApiKey::OffsetFetch, version, request.into()).await
    else {
        panic!("not an OffsetFetch answer");
    };
    if version >= 8 {
        r.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.error_code))
            .collect()
    } else {
        r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.committed_offset, p.error_code))
            .collect()
    }
}

/// A single node that does not ask the transaction coordinator about a
/// TxnOffsetCommit (`transaction.partition.verification.enable` off): these
/// tests are about the group side, with producers no coordinator knows.
fn unverified(dir: &std::path::Path) -> Result<Arc<BrokerState>, crate::error::BrokerError> {
    super::tests::state_with(crate::BrokerConfig {
        transaction_partition_verification_enable: false,
        ..crate::BrokerConfig::ephemeral(dir)
    })
}

fn offsets_partition(state: &BrokerState) -> i32 {
    let count = state
        .registry()
        .get(OFFSETS_TOPIC)
        .map(|t| t.partition_count())
        .expect("__consumer_offsets exists after a commit");
    partition_for("g", count)
}

/// What the transaction coordinator does at the end of a transaction: the
/// marker to the group's offsets partition, then the completion.
async fn end_txn(state: &Arc<BrokerState>, partition: i32, pid: i64, commit: bool) {
    let topic = state.registry().get(OFFSETS_TOPIC).expect("offsets topic");
    let leader = topic.partition(partition).expect("offsets partition");
    leader
        .write_txn_marker(pid, 0, commit, 0)
        .await
        .expect("marker written");
    state
        .groups()
        .complete_transaction(partition, pid, 0, commit)
        .await;
}

#[tokio::test]
async fn transactional_offsets_wait_for_their_marker() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = unverified(dir.path())?;
    state
        .registry()
        .create("events", 2, TopicConfigs::default(), false)
        .map_err(|e| e.message)?;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("events")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5),
                ]),
        ]);
    let ResponseKind::OffsetCommit(r) = call(&state, ApiKey::OffsetCommit, 8, commit.into()).await
    else {
        panic!("not an OffsetCommit answer");
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // v0 (no member fields) and v3 anonymous commits are both accepted.
    assert_eq!(
        txn_codes(&state, 0, txn_commit(1000, "", -1, &[(0, 10)])).await,
        [0]
    );
    assert_eq!(
        txn_codes(&state, 3, txn_commit(1000, "", -1, &[(1, 20)])).await,
        [0]
    );
    for version in [7, 8] {
        assert_eq!(
            fetched(&state, version, true).await,
            [(-1, UNSTABLE), (-1, UNSTABLE)]
        );
        assert_eq!(fetched(&state, version, false).await, [(5, 0), (-1, 0)]);
    }
    let partition = offsets_partition(&state);
    // A marker of another producer, or on another partition, changes nothing.
    state
        .groups()
        .complete_transaction(partition, 1001, 0, true)
        .await;
    state
        .groups()
        .complete_transaction(partition + 1, 1000, 0, true)
        .await;
    assert_eq!(
        fetched(&state, 7, true).await,
        [(-1, UNSTABLE), (-1, UNSTABLE)]
    );
    end_txn(&state, partition, 1000, true).await;
    assert_eq!(fetched(&state, 7, true).await, [(10, 0), (20, 0)]);

    // An aborted transaction leaves the committed offsets as they were.
    assert_eq!(
        txn_codes(&state, 5, txn_commit(1001, "", -1, &[(0, 30)])).await,
        [0]
    );
    assert_eq!(fetched(&state, 8, true).await, [(-1, UNSTABLE), (20, 0)]);
    end_txn(&state, partition, 1001, false).await;
    assert_eq!(fetched(&state, 8, true).await, [(10, 0), (20, 0)]);

    // One still open at a reload stays pending.
    assert_eq!(
        txn_codes(&state, 5, txn_commit(1002, "", -1, &[(1, 40)])).await,
        [0]
    );
    let reloaded =
        crate::group::GroupCoordinator::new(crate::broker_state::group_settings(state.config()));
    crate::group::offsets_topic::load(state.registry(), &reloaded);
    assert_eq!(
        reloaded.committed("g", "events", 0).map(|o| o.offset),
        Some(10)
    );
    assert_eq!(
        reloaded.committed("g", "events", 1).map(|o| o.offset),
        Some(20)
    );
    assert!(reloaded.has_pending_txn_offset("g", "events", 1));
    assert!(!reloaded.has_pending_txn_offset("g", "events", 0));
    Ok(())
}

#[tokio::test]
async fn membership_and_partitions_are_checked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = unverified(dir.path())?;
    state
        .registry()
        .create("events", 1, TopicConfigs::default(), false)
        .map_err(|e| e.message)?;
    // v3+: a member id the group does not know.
    assert_eq!(
        txn_codes(&state, 3, txn_commit(1000, "ghost", 1, &[(0, 1)])).await,
        [ResponseError::UnknownMemberId.code()]
    );
    // A partition the topic does not have fails alone.
    assert_eq!(
        txn_codes(&state, 3, txn_commit(1000, "", -1, &[(0, 1), (7, 1)])).await,
        [0, ResponseError::UnknownTopicOrPartition.code()]
    );
    Ok(())
}

/// WRITE on the transactional id, then READ on the group, then READ on
/// each topic, as Kafka checks them.
#[tokio::test]
async fn authorization_is_kafkas() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = secured(dir.path()).await?;
    let grant = |resource, name: &str, op| {
        binding(
            resource,
            name,
            PatternType::Literal,
            "User:p",
            op,
            Permission::Allow,
        )
    };
    let attempt = || async {
        call_as(
            &state,
            user("p"),
            ApiKey::TxnOffsetCommit,
            3,
            crate::request::samples::sample(ApiKey::TxnOffsetCommit, 3),
        )
        .await
    };
    let steps = [
        (
            grant(ResourceType::TransactionalId, "txn", Operation::Write),
            ResponseError::GroupAuthorizationFailed,
        ),
        (
            grant(ResourceType::Group, "group", Operation::Read),
            ResponseError::TopicAuthorizationFailed,
        ),
    ];
    let answer = attempt().await?;
    assert!(
        refused(&answer, ResponseError::TransactionalIdAuthorizationFailed),
        "{answer}"
    );
    for (acl, code) in steps {
        state
            .metadata()
            .create_acls(vec![acl])
            .await
            .map_err(|e| e.message)?;
        let answer = attempt().await?;
        assert!(refused(&answer, code), "{answer}");
    }
    state
        .metadata()
        .create_acls(vec![grant(ResourceType::Topic, "topic", Operation::Read)])
        .await
        .map_err(|e| e.message)?;
    // Authorized: the transaction coordinator is asked next (KIP-890),
    // and there is no transaction of the id.
    let answer = attempt().await?;
    assert!(
        refused(&answer, ResponseError::CoordinatorNotAvailable),
        "{answer}"
    );
    Ok(())
}
