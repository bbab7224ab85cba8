//! KIP-848 consumer groups: the revocation protocol, epochs, fencing and
//! regex subscriptions through the raw protocol, and librdkafka consumers
//! with `group.protocol=consumer` sharing a topic, moving partitions when
//! a member leaves and resuming from committed offsets across a member
//! and a broker restart — next to a classic group.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use uuid::Uuid;

const PARTITIONS: i32 = 6;

fn config(dir: &std::path::Path) -> BrokerConfig {
    BrokerConfig {
        num_partitions: PARTITIONS,
        group_min_session_timeout_ms: 100,
        group_initial_rebalance_delay_ms: 100,
        group_consumer_heartbeat_interval_ms: 200,
        group_consumer_session_timeout_ms: 1500,
        group_consumer_min_session_timeout_ms: 1000,
        group_consumer_min_heartbeat_interval_ms: 100,
        ..BrokerConfig::ephemeral(dir)
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn create_topic(broker: &TestBroker, name: &str, partitions: i32) -> Uuid {
    let local = broker.local();
    broker
        .runtime
        .block_on(local.ensure_topic(name, Some(partitions), &[]))
        .expect("topic")
        .id()
}

type Owned = Vec<(Uuid, Vec<i32>)>;

struct Beat<'a> {
    group: &'a str,
    member: &'a str,
    epoch: i32,
    names: Option<&'a [&'a str]>,
    regex: Option<&'a str>,
    assignor: Option<&'a str>,
    instance: Option<&'a str>,
    owned: Option<Owned>,
}

impl<'a> Beat<'a> {
    fn new(group: &'a str, member: &'a str, epoch: i32) -> Self {
        Beat {
            group,
            member,
            epoch,
            names: None,
            regex: None,
            assignor: None,
            instance: None,
            owned: None,
        }
    }
}

fn heartbeat(raw: &mut Raw, beat: Beat<'_>) -> ConsumerGroupHeartbeatResponse {
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(text(beat.group)))
        .with_member_id(text(beat.member))
        .with_member_epoch(beat.epoch)
        .with_instance_id(beat.instance.map(text))
        .with_rebalance_timeout_ms(if beat.epoch == 0 { 5000 } else { -1 })
        .with_subscribed_topic_names(
            beat.names
                .map(|ns| ns.iter().map(|n| TopicName(text(n))).collect()),
        )
        .with_subscribed_topic_regex(beat.regex.map(text))
        .with_server_assignor(beat.assignor.map(text))
        .with_topic_partitions(beat.owned.map(|owned| {
            owned
                .into_iter()
                .map(|(id, ps)| {
                    consumer_group_heartbeat_request::TopicPartitions::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect()
        }));
    match raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(request),
    ) {
        ResponseKind::ConsumerGroupHeartbeat(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The partitions of `topic` in a heartbeat answer (`None`: no assignment
/// sent).
fn assigned(response: &ConsumerGroupHeartbeatResponse, topic: Uuid) -> Option<Vec<i32>> {
    response.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .filter(|tp| tp.topic_id == topic)
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect()
    })
}

fn describe(raw: &mut Raw, group: &str) -> consumer_group_describe_response::DescribedGroup {
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(text(group))]);
    match raw.call(
        ApiKey::ConsumerGroupDescribe,
        1,
        RequestKind::ConsumerGroupDescribe(request),
    ) {
        ResponseKind::ConsumerGroupDescribe(mut r) => r.groups.remove(0),
        other => panic!("{other:?}"),
    }
}

fn commit(raw: &mut Raw, group: &str, member: &str, epoch: i32, topic: &str) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_member_id(text(member))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(text(topic)))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(3),
                ]),
        ]);
    match raw.call(ApiKey::OffsetCommit, 9, RequestKind::OffsetCommit(request)) {
        ResponseKind::OffsetCommit(r) => r.topics[0].partitions[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn fetch_error(raw: &mut Raw, group: &str, member: &str, epoch: i32) -> i16 {
    let request = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(text(group)))
            .with_member_id(Some(text(member)))
            .with_member_epoch(epoch)
            .with_topics(None),
    ]);
    match raw.call(ApiKey::OffsetFetch, 9, RequestKind::OffsetFetch(request)) {
        ResponseKind::OffsetFetch(r) => r.groups[0].error_code,
        other => panic!("{other:?}"),
    }
}

fn all(topic: Uuid, ps: &[i32]) -> Option<Owned> {
    Some(vec![(topic, ps.to_vec())])
}

/// A partition moves to a new member only after its owner revoked it;
/// epochs fence zombies; commits and fetches need the current epoch; a
/// classic member cannot join a live consumer group; a leaving member's
/// partitions go to the others.
#[test]
fn the_revocation_protocol_and_member_epochs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let t = create_topic(&broker, "rev", PARTITIONS);
    let mut raw = Raw::connect(broker.addr);
    let g = "rev-group";
    let names: &[&str] = &["rev"];

    // A joins alone and gets everything at epoch 1.
    let a = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            owned: Some(vec![]),
            ..Beat::new(g, "A", 0)
        },
    );
    assert_eq!((a.error_code, a.member_epoch), (0, 1), "{a:?}");
    assert_eq!(assigned(&a, t), Some((0..PARTITIONS).collect()));
    let a = heartbeat(
        &mut raw,
        Beat {
            owned: all(t, &[0, 1, 2, 3, 4, 5]),
            ..Beat::new(g, "A", 1)
        },
    );
    assert_eq!((a.error_code, a.member_epoch), (0, 1));

    // B joins: group epoch 2, but what B's target holds is A's still.
    let b = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            owned: Some(vec![]),
            ..Beat::new(g, "B", 0)
        },
    );
    assert_eq!((b.error_code, b.member_epoch), (0, 2), "{b:?}");
    assert_eq!(assigned(&b, t), Some(vec![]));

    // A is asked to revoke: it stays at epoch 1 with half.
    let a = heartbeat(&mut raw, Beat::new(g, "A", 1));
    assert_eq!((a.error_code, a.member_epoch), (0, 1));
    let kept = assigned(&a, t).expect("a smaller assignment");
    assert_eq!(kept.len(), 3, "{kept:?}");
    let described = describe(&mut raw, g);
    assert_eq!(
        (described.group_state.as_str(), described.group_epoch),
        ("Reconciling", 2)
    );

    // Until A says it revoked them, B gets nothing.
    let b = heartbeat(&mut raw, Beat::new(g, "B", 2));
    assert!(assigned(&b, t).is_none_or(|ps| ps.is_empty()), "{b:?}");
    // A commits at its epoch meanwhile.
    assert_eq!(commit(&mut raw, g, "A", 1, "rev"), 0);

    let a = heartbeat(
        &mut raw,
        Beat {
            owned: all(t, &kept),
            ..Beat::new(g, "A", 1)
        },
    );
    assert_eq!((a.error_code, a.member_epoch), (0, 2), "{a:?}");
    let b = heartbeat(&mut raw, Beat::new(g, "B", 2));
    let given = assigned(&b, t).expect("B's partitions");
    assert_eq!(given.len(), 3);
    assert!(
        given.iter().all(|p| !kept.contains(p)),
        "{given:?} overlaps {kept:?}"
    );
    let described = describe(&mut raw, g);
    assert_eq!(described.error_code, 0);
    assert_eq!(described.group_state.as_str(), "Stable");
    assert_eq!(described.assignor_name.as_str(), "uniform");
    assert_eq!(described.members.len(), 2);
    assert!(
        described
            .members
            .iter()
            .all(|m| m.member_epoch == 2 && m.member_type == 1)
    );

    // Epochs: from the future, or an old one with partitions it lost.
    let fenced = ResponseError::FencedMemberEpoch.code();
    assert_eq!(heartbeat(&mut raw, Beat::new(g, "A", 7)).error_code, fenced);
    let stale_owner = heartbeat(
        &mut raw,
        Beat {
            owned: all(t, &[0, 1, 2, 3, 4, 5]),
            ..Beat::new(g, "A", 1)
        },
    );
    assert_eq!(stale_owner.error_code, fenced);
    let unknown = ResponseError::UnknownMemberId.code();
    assert_eq!(
        heartbeat(&mut raw, Beat::new(g, "Z", 2)).error_code,
        unknown
    );

    // OffsetCommit and OffsetFetch v9 at the member epoch.
    let stale = ResponseError::StaleMemberEpoch.code();
    assert_eq!(commit(&mut raw, g, "A", 1, "rev"), stale);
    assert_eq!(commit(&mut raw, g, "A", 2, "rev"), 0);
    assert_eq!(commit(&mut raw, g, "Z", 2, "rev"), unknown);
    assert_eq!(
        commit(&mut raw, g, "", -1, "rev"),
        unknown,
        "a simple commit into a live group"
    );
    assert_eq!(fetch_error(&mut raw, g, "B", 1), stale);
    assert_eq!(fetch_error(&mut raw, g, "B", 2), 0);

    // A classic member cannot join while consumer-protocol members live.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(text(g)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        ]);
    match raw.call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(join)) {
        ResponseKind::JoinGroup(r) => assert_eq!(
            r.error_code,
            ResponseError::InconsistentGroupProtocol.code()
        ),
        other => panic!("{other:?}"),
    }
    // DescribeGroups describes classic groups only; ListGroups knows both.
    match raw.call(
        ApiKey::DescribeGroups,
        6,
        RequestKind::DescribeGroups(
            DescribeGroupsRequest::default().with_groups(vec![GroupId(text(g))]),
        ),
    ) {
        ResponseKind::DescribeGroups(r) => {
            assert_eq!(
                r.groups[0].error_code,
                ResponseError::GroupIdNotFound.code()
            )
        }
        other => panic!("{other:?}"),
    }
    let listed = match raw.call(
        ApiKey::ListGroups,
        5,
        RequestKind::ListGroups(
            ListGroupsRequest::default().with_types_filter(vec![text("consumer")]),
        ),
    ) {
        ResponseKind::ListGroups(r) => r.groups,
        other => panic!("{other:?}"),
    };
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        (
            listed[0].group_id.as_str(),
            listed[0].group_type.as_str(),
            listed[0].group_state.as_str()
        ),
        (g, "consumer", "Stable")
    );

    // Offsets of a topic live members subscribe to stay; a live group stays.
    let delete = OffsetDeleteRequest::default()
        .with_group_id(GroupId(text(g)))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(TopicName(text("rev")))
                .with_partitions(vec![Default::default()]),
        ]);
    match raw.call(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(delete)) {
        ResponseKind::OffsetDelete(r) => assert_eq!(
            r.topics[0].partitions[0].error_code,
            ResponseError::GroupSubscribedToTopic.code()
        ),
        other => panic!("{other:?}"),
    }
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(g))]);
    match raw.call(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(delete)) {
        ResponseKind::DeleteGroups(r) => {
            assert_eq!(r.results[0].error_code, ResponseError::NonEmptyGroup.code())
        }
        other => panic!("{other:?}"),
    }

    // A leaves; B takes everything at epoch 3.
    let left = heartbeat(&mut raw, Beat::new(g, "A", -1));
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    let b = heartbeat(&mut raw, Beat::new(g, "B", 2));
    assert_eq!(b.member_epoch, 3);
    assert_eq!(
        assigned(&b, t).map(|ps| ps.len()),
        Some(PARTITIONS as usize)
    );
    // Once the last member left, the group (and its offsets) can go.
    assert_eq!(heartbeat(&mut raw, Beat::new(g, "B", -1)).error_code, 0);
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(g))]);
    match raw.call(ApiKey::DeleteGroups, 2, RequestKind::DeleteGroups(delete)) {
        ResponseKind::DeleteGroups(r) => assert_eq!(r.results[0].error_code, 0),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        describe(&mut raw, g).error_code,
        ResponseError::GroupIdNotFound.code()
    );
    broker.stop();
}

/// A regex subscription is matched against topics created later; the range
/// assignor; bad input is refused with its own error; a silent member is
/// fenced after the session timeout; a consumer member cannot join a group
/// with classic members.
#[test]
fn regex_subscriptions_timeouts_and_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let a = create_topic(&broker, "rx-a", 2);
    create_topic(&broker, "other", 2);
    let mut raw = Raw::connect(broker.addr);
    let g = "rx-group";

    let c = heartbeat(
        &mut raw,
        Beat {
            regex: Some("rx-.*"),
            assignor: Some("range"),
            owned: Some(vec![]),
            ..Beat::new(g, "C", 0)
        },
    );
    assert_eq!((c.error_code, c.member_epoch), (0, 1), "{c:?}");
    assert_eq!(assigned(&c, a), Some(vec![0, 1]));
    let total = |r: &ConsumerGroupHeartbeatResponse| {
        r.assignment.as_ref().map_or(0, |a| {
            a.topic_partitions
                .iter()
                .map(|tp| tp.partitions.len())
                .sum::<usize>()
        })
    };
    assert_eq!(total(&c), 2, "only rx-a matches");

    let b = create_topic(&broker, "rx-b", 3);
    let c = heartbeat(
        &mut raw,
        Beat {
            owned: all(a, &[0, 1]),
            ..Beat::new(g, "C", 1)
        },
    );
    assert_eq!(c.member_epoch, 2, "a new matching topic bumps the epoch");
    assert_eq!(assigned(&c, b), Some(vec![0, 1, 2]));
    assert_eq!(describe(&mut raw, g).assignor_name.as_str(), "range");

    // D joins and goes silent: fenced after the session timeout while C
    // keeps heartbeating.
    let d = heartbeat(
        &mut raw,
        Beat {
            names: Some(&["rx-a"]),
            owned: Some(vec![]),
            ..Beat::new(g, "D", 0)
        },
    );
    assert_eq!(d.error_code, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut epoch = 2;
    let mut owned: Owned = vec![(a, vec![0, 1]), (b, vec![0, 1, 2])];
    loop {
        // C acts as a client would: it owns what it was last given.
        let c = heartbeat(
            &mut raw,
            Beat {
                owned: Some(owned.clone()),
                ..Beat::new(g, "C", epoch)
            },
        );
        assert_eq!(c.error_code, 0, "{c:?}");
        epoch = c.member_epoch;
        if let Some(given) = &c.assignment {
            owned = given
                .topic_partitions
                .iter()
                .map(|tp| (tp.topic_id, tp.partitions.clone()))
                .collect();
        }
        if describe(&mut raw, g).members.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "D never timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = heartbeat(&mut raw, Beat::new(g, "D", 3));
    assert_eq!(d.error_code, ResponseError::UnknownMemberId.code());

    let code = |raw: &mut Raw, beat| heartbeat(raw, beat).error_code;
    let bad_regex = ResponseError::InvalidRegularExpression.code();
    assert_eq!(
        code(
            &mut raw,
            Beat {
                regex: Some("("),
                owned: Some(vec![]),
                ..Beat::new(g, "E", 0)
            }
        ),
        bad_regex
    );
    let huge = "a".repeat(5000);
    assert_eq!(
        code(
            &mut raw,
            Beat {
                regex: Some(&huge),
                owned: Some(vec![]),
                ..Beat::new(g, "E", 0)
            }
        ),
        bad_regex
    );
    let blowup = "(a{1000}){1000}";
    assert_eq!(
        code(
            &mut raw,
            Beat {
                regex: Some(blowup),
                owned: Some(vec![]),
                ..Beat::new(g, "E", 0)
            }
        ),
        bad_regex
    );
    assert_eq!(
        code(
            &mut raw,
            Beat {
                names: Some(&["rx-a"]),
                assignor: Some("sticky"),
                owned: Some(vec![]),
                ..Beat::new(g, "E", 0)
            }
        ),
        ResponseError::UnsupportedAssignor.code()
    );
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(code(&mut raw, Beat::new(g, "E", -3)), invalid);
    assert_eq!(
        code(
            &mut raw,
            Beat {
                owned: Some(vec![]),
                ..Beat::new(g, "E", 0)
            }
        ),
        invalid,
        "no subscription"
    );
    assert_eq!(
        code(&mut raw, Beat::new(g, "E", -2)),
        invalid,
        "a static leave needs an instance id"
    );

    // A classic group with a (pending) member: not a consumer group.
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(text("classic")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![
            join_group_request::JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        ]);
    match raw.call(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(join)) {
        ResponseKind::JoinGroup(r) => {
            assert_eq!(r.error_code, ResponseError::MemberIdRequired.code())
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(
            &mut raw,
            Beat {
                names: Some(&["rx-a"]),
                owned: Some(vec![]),
                ..Beat::new("classic", "F", 0)
            }
        ),
        ResponseError::GroupIdNotFound.code()
    );
    let classic = describe(&mut raw, "classic");
    assert_eq!(classic.error_code, ResponseError::GroupIdNotFound.code());
    broker.stop();
}

/// A static member that leaves with epoch -2 keeps its partitions and
/// gets them back, at its epoch, when it returns with a new member id;
/// nobody else may take its instance id while it is a member.
#[test]
fn a_static_member_returns_to_its_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let t = create_topic(&broker, "static", 4);
    let mut raw = Raw::connect(broker.addr);
    let g = "static-group";
    let names: &[&str] = &["static"];
    let s1 = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            instance: Some("i-1"),
            owned: Some(vec![]),
            ..Beat::new(g, "S1", 0)
        },
    );
    assert_eq!((s1.error_code, s1.member_epoch), (0, 1));
    let mine = assigned(&s1, t).expect("assignment");
    assert_eq!(mine.len(), 4);
    let taken = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            instance: Some("i-1"),
            owned: Some(vec![]),
            ..Beat::new(g, "S2", 0)
        },
    );
    assert_eq!(taken.error_code, ResponseError::UnreleasedInstanceId.code());

    let left = heartbeat(
        &mut raw,
        Beat {
            instance: Some("i-1"),
            ..Beat::new(g, "S1", -2)
        },
    );
    assert_eq!((left.error_code, left.member_epoch), (0, -2));
    // Another member joins meanwhile: what the static member holds stays.
    let o = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            owned: Some(vec![]),
            ..Beat::new(g, "O", 0)
        },
    );
    assert_eq!(o.error_code, 0);
    assert_eq!(assigned(&o, t), Some(vec![]));

    let back = heartbeat(
        &mut raw,
        Beat {
            names: Some(names),
            instance: Some("i-1"),
            owned: Some(vec![]),
            ..Beat::new(g, "S1-new", 0)
        },
    );
    assert_eq!(back.error_code, 0, "{back:?}");
    assert_eq!(back.member_epoch, 1, "its old epoch");
    // It keeps what the new target leaves it, and is asked at once to
    // hand the rest over to O, as any member would be.
    let kept = assigned(&back, t).expect("assignment");
    assert_eq!(kept.len(), 2);
    assert!(kept.iter().all(|p| mine.contains(p)));
    let described = describe(&mut raw, g);
    let ids: Vec<&str> = described
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(ids, ["O", "S1-new"]);
    let s = heartbeat(
        &mut raw,
        Beat {
            owned: all(t, &kept),
            ..Beat::new(g, "S1-new", 1)
        },
    );
    assert_eq!((s.error_code, s.member_epoch), (0, 2));
    let o = heartbeat(&mut raw, Beat::new(g, "O", 2));
    let theirs = assigned(&o, t).expect("O's partitions");
    assert_eq!(theirs.len(), 2);
    assert!(theirs.iter().all(|p| !kept.contains(p)));
    broker.stop();
}

/// Produces records `from..to` (record `i` to partition `i % 6`).
fn produce(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in from..to {
        let value = format!("v{i}");
        let record = BaseRecord::<(), _>::to(topic)
            .partition(i as i32 % PARTITIONS)
            .payload(&value);
        producer.send(record).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
}

/// Every assignment change of every member, in one order: `(member,
/// assigned?, partitions)`. Assignments are recorded before the member
/// takes them, revocations before it gives them up — so the revocation is
/// recorded before the heartbeat that tells the coordinator about it.
type Timeline = Arc<Mutex<Vec<(usize, bool, Vec<i32>)>>>;

struct Recorder {
    member: usize,
    timeline: Timeline,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let (assign, list) = match rebalance {
            Rebalance::Assign(list) => (true, list),
            Rebalance::Revoke(list) => (false, list),
            Rebalance::Error(_) => return,
        };
        let partitions = list.elements().iter().map(|e| e.partition()).collect();
        self.timeline.lock().push((self.member, assign, partitions));
    }
}

fn consumer_protocol(
    bootstrap: &str,
    group: &str,
    member: usize,
    timeline: &Timeline,
) -> BaseConsumer<Recorder> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("client.id", format!("m{member}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "100")
        .set("fetch.wait.max.ms", "50")
        .create_with_context(Recorder {
            member,
            timeline: Arc::clone(timeline),
        })
        .expect("consumer")
}

/// Replays a timeline: who owns what at the end; panics if a partition was
/// ever assigned to a member while another owned it.
fn replay(timeline: &Timeline) -> BTreeMap<usize, BTreeSet<i32>> {
    let mut owner: HashMap<i32, usize> = HashMap::new();
    for (member, assign, partitions) in timeline.lock().iter() {
        for p in partitions {
            if *assign {
                if let Some(other) = owner.insert(*p, *member) {
                    assert_eq!(
                        other, *member,
                        "partition {p} given to m{member} while m{other} owned it"
                    );
                }
            } else if owner.get(p) == Some(member) {
                owner.remove(p);
            }
        }
    }
    let mut out: BTreeMap<usize, BTreeSet<i32>> = BTreeMap::new();
    for (p, m) in owner {
        out.entry(m).or_default().insert(p);
    }
    out
}

fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Three librdkafka members (group.protocol=consumer) share six partitions
/// exactly, never one partition twice; when one leaves its partitions move
/// to the other two; a classic group reads the same topic meanwhile.
#[test]
fn librdkafka_consumer_protocol_members_share_and_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    create_topic(&broker, "shared", PARTITIONS);
    produce(&bootstrap, "shared", 0, 600);

    let timeline: Timeline = Arc::default();
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    for member in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        stops.push(Arc::clone(&stop));
        let consumer = consumer_protocol(&bootstrap, "kip848", member, &timeline);
        let seen = Arc::clone(&seen);
        threads.push(std::thread::spawn(move || {
            consumer.subscribe(&["shared"]).expect("subscribe");
            while !stop.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(20)) {
                    Some(Ok(m)) => {
                        let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                        seen.lock().insert(value.into_owned());
                    }
                    Some(Err(e)) => panic!("consumer error: {e}"),
                    None => {}
                }
            }
            consumer.unsubscribe();
            // Closing leaves the group (epoch -1).
            drop(consumer);
        }));
    }

    // Classic on another group, at the same time.
    let classic: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "classic")
        .set("group.protocol", "classic")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("classic consumer");
    classic.subscribe(&["shared"]).expect("subscribe");
    let mut classic_seen = HashSet::new();

    let split = |sizes: &[usize]| {
        let owners = replay(&timeline);
        let mut counts: Vec<usize> = owners.values().map(|s| s.len()).collect();
        counts.sort_unstable();
        counts == sizes
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(split(&[2, 2, 2]) && seen.lock().len() == 600 && classic_seen.len() == 600) {
        assert!(
            Instant::now() < deadline,
            "three members never shared the partitions and read everything: {:?}, {} read, classic {}",
            replay(&timeline),
            seen.lock().len(),
            classic_seen.len()
        );
        if let Some(Ok(m)) = classic.poll(Duration::from_millis(20)) {
            classic_seen
                .insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    let mut raw = Raw::connect(broker.addr);
    // The coordinator learns of the last acknowledgement a heartbeat later.
    wait_for(Duration::from_secs(10), "a stable group of three", || {
        let described = describe(&mut raw, "kip848");
        (described.members.len(), described.group_state.as_str()) == (3, "Stable")
    });
    // The admin API (and console) shows the members and what they own.
    let admin = broker.local().group("kip848").expect("the group");
    assert_eq!((admin.state, admin.members.len()), ("Stable", 3));
    let mut admin_owned: Vec<i32> = admin
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().flat_map(|tp| tp.partitions.clone()))
        .collect();
    admin_owned.sort_unstable();
    assert_eq!(admin_owned, (0..PARTITIONS).collect::<Vec<_>>());

    // Member 2 leaves: the other two end with three partitions each.
    stops[2].store(true, Ordering::Relaxed);
    let leaver = threads.pop().expect("thread");
    leaver.join().expect("member 2 stops");
    wait_for(
        Duration::from_secs(20),
        "the leaver's partitions to move",
        || {
            let owners = replay(&timeline);
            owners.get(&0).map(|s| s.len()) == Some(3) && owners.get(&1).map(|s| s.len()) == Some(3)
        },
    );
    assert_eq!(describe(&mut raw, "kip848").members.len(), 2);
    produce(&bootstrap, "shared", 600, 660);
    wait_for(Duration::from_secs(20), "the new records", || {
        seen.lock().len() == 660
    });
    for stop in &stops {
        stop.store(true, Ordering::Relaxed);
    }
    for t in threads {
        t.join().expect("member stops");
    }
    replay(&timeline);
    drop(classic);
    broker.stop();
}

fn read_until(consumer: &BaseConsumer<Recorder>, from: usize, to: usize) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(from..to).all(|i| seen.contains(&i)) {
        assert!(
            Instant::now() < deadline,
            "read only {} of {from}..{to}",
            seen.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(20)) {
            let m = m.expect("message");
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            seen.insert(value.trim_start_matches('v').parse().expect("number"));
        }
    }
    seen
}

/// Offsets a consumer-protocol member commits are kept across a member
/// restart and a broker restart (the members rejoin the restarted
/// coordinator; they are not persisted).
#[test]
fn consumer_protocol_offsets_survive_member_and_broker_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    create_topic(&broker, "kept", PARTITIONS);
    produce(&bootstrap, "kept", 0, 60);
    let timeline: Timeline = Arc::default();
    let consumer = consumer_protocol(&bootstrap, "keeper", 0, &timeline);
    consumer.subscribe(&["kept"]).expect("subscribe");
    read_until(&consumer, 0, 60);
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(consumer);

    produce(&bootstrap, "kept", 60, 90);
    let consumer = consumer_protocol(&bootstrap, "keeper", 1, &timeline);
    consumer.subscribe(&["kept"]).expect("subscribe");
    let seen = read_until(&consumer, 60, 90);
    assert!(
        seen.iter().all(|i| *i >= 60),
        "re-read committed records: {seen:?}"
    );
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(consumer);
    broker.stop();

    let broker = TestBroker::start_with(config(dir.path()));
    let bootstrap = broker.bootstrap();
    produce(&bootstrap, "kept", 90, 120);
    let consumer = consumer_protocol(&bootstrap, "keeper", 2, &timeline);
    consumer.subscribe(&["kept"]).expect("subscribe");
    let seen = read_until(&consumer, 90, 120);
    assert!(
        seen.iter().all(|i| *i >= 90),
        "re-read committed records: {seen:?}"
    );
    drop(consumer);
    broker.stop();
}
