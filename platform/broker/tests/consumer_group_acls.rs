//! KIP-848 consumer groups under ACLs, with users logged in with
//! SASL/SCRAM on raw connections (as Kafka 4.1, KAFKA-18813): a regex
//! subscription resolves only to the topics the member's user may
//! DESCRIBE, and sees an ACL granted since at its next heartbeat;
//! ConsumerGroupDescribe answers TOPIC_AUTHORIZATION_FAILED for a group
//! whose members hold a topic the requester may not DESCRIBE. Without an
//! authorizer a regex matches every topic, as before.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{Raw, TestBroker};
use fjord_broker::scram::{self, ScramClient, ScramMechanism};
use fjord_broker::{BrokerConfig, Password};
use fjord_controller::Acl;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-secret";
const GROUP: &str = "g";

// Kafka's ACL codes.
const TOPIC: i8 = 2;
const GROUP_RESOURCE: i8 = 3;
const LITERAL: i8 = 3;
const READ: i8 = 3;
const DESCRIBE: i8 = 8;
const ALLOW: i8 = 3;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn create_topic(broker: &TestBroker, name: &str) -> Uuid {
    broker
        .runtime
        .block_on(broker.local().ensure_topic(name, Some(2), &[]))
        .unwrap()
        .id()
}

fn allow(user: &str, resource_type: i8, name: &str, operation: i8) -> Acl {
    Acl {
        resource_type,
        resource_name: name.into(),
        pattern_type: LITERAL,
        principal: format!("User:{user}"),
        host: "*".into(),
        operation,
        permission_type: ALLOW,
    }
}

fn grant(broker: &TestBroker, acls: &[Acl]) {
    broker
        .runtime
        .block_on(broker.local().create_acls(acls))
        .unwrap();
}

fn sasl(raw: &mut Raw, token: Vec<u8>) -> SaslAuthenticateResponse {
    let ResponseKind::SaslAuthenticate(a) = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from(token))
            .into(),
    ) else {
        panic!("not an authenticate answer");
    };
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    a
}

/// A raw connection logged in as `user` with SCRAM-SHA-512.
fn login(broker: &TestBroker, user: &str, password: &str) -> Raw {
    let mut raw = Raw::connect(broker.addr);
    let ResponseKind::SaslHandshake(h) = raw.call(
        ApiKey::SaslHandshake,
        1,
        SaslHandshakeRequest::default()
            .with_mechanism(text("SCRAM-SHA-512"))
            .into(),
    ) else {
        panic!("not a handshake answer");
    };
    assert_eq!(h.error_code, 0);
    let (mut client, first) = ScramClient::new(ScramMechanism::Sha512, user, password).unwrap();
    let a = sasl(&mut raw, first);
    let last = client.finish(&a.auth_bytes).unwrap();
    let a = sasl(&mut raw, last);
    client.verify(&a.auth_bytes).unwrap();
    raw
}

/// Makes `user` (SCRAM-SHA-512), as the admin.
fn create_user(broker: &TestBroker, user: &str, password: &str) {
    let salt = scram::random_salt().unwrap();
    let mechanism = ScramMechanism::Sha512;
    let salted = scram::salted_password(mechanism, password.as_bytes(), &salt, 4096);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(text(user))
        .with_mechanism(mechanism.kafka_type())
        .with_iterations(4096)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted));
    let mut admin = login(broker, ADMIN, ADMIN_PASSWORD);
    let ResponseKind::AlterUserScramCredentials(r) = admin.call(
        ApiKey::AlterUserScramCredentials,
        0,
        AlterUserScramCredentialsRequest::default()
            .with_upsertions(vec![upsertion])
            .into(),
    ) else {
        panic!("not an AlterUserScramCredentials answer");
    };
    assert_eq!(
        r.results[0].error_code, 0,
        "{:?}",
        r.results[0].error_message
    );
}

/// A heartbeat subscribing to `regex`: a join (`epoch` 0, no member id)
/// or a heartbeat of `member` owning `owned`.
fn heartbeat(
    raw: &mut Raw,
    member: &str,
    epoch: i32,
    regex: &str,
    owned: &[(Uuid, Vec<i32>)],
) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(GROUP)))
        .with_member_id(text(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 5000 } else { -1 })
        .with_subscribed_topic_regex(Some(text(regex)))
        .with_topic_partitions(Some(
            owned
                .iter()
                .map(|(id, ps)| {
                    consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_partitions(ps.clone())
                })
                .collect(),
        ));
    match raw.call(ApiKey::ConsumerGroupHeartbeat, 1, request.into()) {
        ResponseKind::ConsumerGroupHeartbeat(r) => {
            assert_eq!(r.error_code, 0, "{:?}", r.error_message);
            r
        }
        other => panic!("{other:?}"),
    }
}

/// The assignment of a heartbeat answer, by topic id.
fn assignment(r: &ConsumerGroupHeartbeatResponse) -> Vec<(Uuid, Vec<i32>)> {
    let a = r.assignment.as_ref().expect("an assignment is sent");
    a.topic_partitions
        .iter()
        .map(|tp| (tp.topic_id, tp.partitions.clone()))
        .collect()
}

fn topics_of(owned: &[(Uuid, Vec<i32>)]) -> BTreeSet<Uuid> {
    owned.iter().map(|(id, _)| *id).collect()
}

fn describe(raw: &mut Raw) -> consumer_group_describe_response::DescribedGroup {
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(GROUP))]);
    match raw.call(ApiKey::ConsumerGroupDescribe, 1, request.into()) {
        ResponseKind::ConsumerGroupDescribe(mut r) => r.groups.remove(0),
        other => panic!("{other:?}"),
    }
}

/// A broker with an authorizer, users alice and bob, topics a-1, a-2 and
/// b-secret (2 partitions each) and their ids: alice may READ group `g`
/// and topics a-1 and a-2, bob may DESCRIBE the group, a-1 and a-2.
fn secured(dir: &std::path::Path) -> (TestBroker, [Uuid; 3]) {
    let config = BrokerConfig {
        authorizer_class_name: Some("acl".into()),
        sasl_admin_user: Some(ADMIN.into()),
        sasl_admin_password: Some(Password::new(ADMIN_PASSWORD)),
        ..BrokerConfig::ephemeral(dir)
    };
    let broker = TestBroker::start_with(config);
    create_user(&broker, "alice", "alice-pw");
    create_user(&broker, "bob", "bob-pw");
    let ids = ["a-1", "a-2", "b-secret"].map(|name| create_topic(&broker, name));
    grant(
        &broker,
        &[
            allow("alice", GROUP_RESOURCE, GROUP, READ),
            allow("alice", TOPIC, "a-1", READ),
            allow("alice", TOPIC, "a-2", READ),
            allow("bob", GROUP_RESOURCE, GROUP, DESCRIBE),
            allow("bob", TOPIC, "a-1", DESCRIBE),
            allow("bob", TOPIC, "a-2", DESCRIBE),
        ],
    );
    (broker, ids)
}

#[test]
fn a_regex_resolves_to_the_topics_the_member_may_describe() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, [a1, a2, secret]) = secured(dir.path());
    let mut alice = login(&broker, "alice", "alice-pw");
    let mut bob = login(&broker, "bob", "bob-pw");

    // `.*` matches all three topics; alice is given those she may see.
    let joined = heartbeat(&mut alice, "", 0, ".*", &[]);
    let member = joined.member_id.clone().unwrap().to_string();
    let owned = assignment(&joined);
    assert_eq!(topics_of(&owned), BTreeSet::from([a1, a2]), "{owned:?}");
    assert!(owned.iter().all(|(_, ps)| ps.len() == 2), "{owned:?}");

    // Bob may describe what the group holds.
    let described = describe(&mut bob);
    assert_eq!(described.error_code, 0, "{:?}", described.error_message);
    assert_eq!(described.members.len(), 1);

    // An ACL granted since is seen at alice's next heartbeat.
    grant(&broker, &[allow("alice", TOPIC, "b-secret", DESCRIBE)]);
    let beat = heartbeat(&mut alice, &member, joined.member_epoch, ".*", &owned);
    let owned = assignment(&beat);
    assert_eq!(
        topics_of(&owned),
        BTreeSet::from([a1, a2, secret]),
        "{owned:?}"
    );
    assert!(beat.member_epoch > joined.member_epoch);
    broker.stop();
}

#[test]
fn describe_refuses_a_group_holding_a_topic_the_requester_may_not_describe() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = secured(dir.path());
    grant(&broker, &[allow("alice", TOPIC, "b-secret", DESCRIBE)]);
    let mut alice = login(&broker, "alice", "alice-pw");
    let mut bob = login(&broker, "bob", "bob-pw");
    let joined = heartbeat(&mut alice, "", 0, "a.*|b.*", &[]);
    assert_eq!(assignment(&joined).len(), 3);

    // The group holds b-secret: bob, who may not describe it, learns
    // nothing of the group but that.
    let described = describe(&mut bob);
    assert_eq!(
        described.error_code,
        ResponseError::TopicAuthorizationFailed.code(),
        "{described:?}"
    );
    assert!(described.members.is_empty(), "{described:?}");
    // Alice may describe every topic it holds.
    let described = describe(&mut alice);
    assert_eq!(described.error_code, 0, "{:?}", described.error_message);
    let names: BTreeSet<String> = described.members[0]
        .assignment
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_name.to_string())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["a-1".into(), "a-2".into(), "b-secret".into()])
    );
    broker.stop();
}

#[test]
fn without_an_authorizer_a_regex_matches_every_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(dir.path());
    let topics: BTreeSet<Uuid> = ["a-1", "a-2", "b-secret"]
        .iter()
        .map(|name| create_topic(&broker, name))
        .collect();
    let mut raw = Raw::connect(broker.addr);
    let joined = heartbeat(&mut raw, "", 0, "a.*|b.*", &[]);
    assert_eq!(topics_of(&assignment(&joined)), topics);
    let described = describe(&mut raw);
    assert_eq!(described.error_code, 0, "{:?}", described.error_message);
    let held: BTreeSet<Uuid> = described.members[0]
        .assignment
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_id)
        .collect();
    assert_eq!(held, topics);
    broker.stop();
}
