//! Consumer groups across a coordinator failover, in a three-node cluster
//! with unmodified librdkafka consumers. The coordinator of a group is the
//! leader of the group's partition of `__consumer_offsets`, which is
//! replicated like any topic: when that broker dies, another replica takes
//! the partition over, loads the committed offsets, and the group goes on
//! from them.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, ClusterConfig};
use common::kafka::{AckedProducer, create_topic};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "orders";
const GROUP: &str = "audit";
/// Fewer than Kafka's 50 so the test creates few logs; the placement rule
/// is the same.
const OFFSETS_PARTITIONS: i32 = 3;
const RECORDS: usize = 300;

/// Kafka's placement of a group on `__consumer_offsets` (Java's
/// `String.hashCode`, sign bit masked).
fn offsets_partition(group: &str) -> i32 {
    let hash = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % OFFSETS_PARTITIONS
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("create the consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    consumer
}

/// Polls until the consumer has read up to (not including) `until`;
/// returns the offsets read, in order.
fn read_until(consumer: &BaseConsumer, until: i64, what: &str) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut offsets = Vec::new();
    while offsets.last().is_none_or(|&o| o + 1 < until) {
        assert!(
            Instant::now() < deadline,
            "{what}: read {} records, last {:?}, want up to {until}",
            offsets.len(),
            offsets.last()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => offsets.push(message.offset()),
            // Coordinator moves and rebalances surface as transient errors.
            Some(Err(e)) => eprintln!("{what}: {e}"),
            None => {}
        }
    }
    offsets
}

/// Commits `offset` for the partition, retrying while the coordinator
/// moves (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) or the member has
/// to join the new coordinator's group again (UNKNOWN_MEMBER_ID: members
/// are not carried over, as their generation is), polling as an
/// application does so the client can rejoin.
fn commit(consumer: &BaseConsumer, offset: i64) {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(TOPIC, 0, Offset::Offset(offset))
        .expect("offset list");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "commit of {offset}: {e}");
                let _ = consumer.poll(Duration::from_millis(200));
            }
        }
    }
}

fn assert_contiguous(offsets: &[i64], from: i64, what: &str) {
    for (i, offset) in offsets.iter().enumerate() {
        assert_eq!(
            *offset,
            from + i as i64,
            "{what}: offsets continue from {from} without gaps or repeats"
        );
    }
}

#[test]
fn a_group_resumes_from_committed_offsets_after_coordinator_failovers() {
    let mut cluster = Cluster::start_with(ClusterConfig::new(3).yaml(&format!(
        "offsets.topic.num.partitions: {OFFSETS_PARTITIONS}"
    )));
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail("CreateTopics orders with RF 3", |c| {
        match create_topic(&c.bootstrap(), TOPIC, 1, 3, &[("min.insync.replicas", "2")]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    cluster.wait_for_isr(TOPIC, 0, 3);
    let producer = AckedProducer::start(&cluster.bootstrap(), TOPIC, &[]);
    producer.wait_acked(&cluster, 0, RECORDS, "the records to consume");
    let report = producer.stop();
    assert!(report.fatal.is_none(), "producer: {:?}", report.fatal);

    // A first member reads half and commits, then leaves.
    let first = consumer(&cluster.bootstrap());
    let read = read_until(&first, 150, "the first member");
    assert_contiguous(&read, 0, "the first member");
    commit(&first, 150);
    drop(first);

    // The coordinator's broker dies.
    let partition = offsets_partition(GROUP);
    let coordinator = cluster.wait_for_leader("__consumer_offsets", partition);
    cluster.kill(coordinator);
    eprintln!("killed the coordinator, broker {coordinator}");

    // A new member starts exactly where the group committed.
    let second = consumer(&cluster.bootstrap());
    let read = read_until(&second, 220, "the member after the first failover");
    assert_contiguous(&read, 150, "the member after the first failover");
    commit(&second, 220);

    // Bring the dead broker back (a quorum needs two of three), then kill
    // the new coordinator while the member is still consuming.
    cluster.restart(coordinator);
    cluster.wait_for_isr("__consumer_offsets", partition, 3);
    let coordinator = cluster.wait_for_leader("__consumer_offsets", partition);
    cluster.kill(coordinator);
    eprintln!("killed the next coordinator, broker {coordinator}");
    let read = read_until(
        &second,
        RECORDS as i64,
        "the same member across the second failover",
    );
    // It goes on from its position, or from the committed 220 if it had
    // to rejoin: never from before what the group committed.
    assert_contiguous(&read, 220, "the member across the second failover");
    commit(&second, RECORDS as i64);

    // What the group committed last is what a new member sees.
    let third = consumer(&cluster.bootstrap());
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(TOPIC, 0);
    let committed = cluster.wait_for_detail("the group's committed offset", |_| {
        third
            .committed_offsets(wanted.clone(), Duration::from_secs(5))
            .map_err(|e| e.to_string())
            .map(|list| list.find_partition(TOPIC, 0).map(|p| p.offset()))
    });
    assert_eq!(committed, Some(Offset::Offset(RECORDS as i64)));
}
