//! Transactions in a three-node cluster with librdkafka: the partitions of
//! a transaction are led by different brokers, so the coordinator writes
//! some markers itself and sends WriteTxnMarkers to the other leaders; a
//! read_committed consumer sees exactly the committed records. Then the
//! coordinator's broker dies: the new leader of the id's partition of
//! `__transaction_state` loads it, and a new producer of the same id goes
//! on from there. And a follower that takes over a partition mid-transaction
//! keeps the transaction open until it is committed or aborted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::{Cluster, ClusterConfig};
use common::kafka::{create_topic, produce_to};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "ledger";
const ID: &str = "ledger-writer";
/// Fewer than Kafka's 50 so the test creates few logs; the placement rule
/// is the same.
const STATE_PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Kafka's placement of an id on `__transaction_state` (Java's
/// `String.hashCode`, sign bit masked).
fn state_partition(id: &str) -> i32 {
    let hash = id
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    (hash & 0x7fff_ffff) % STATE_PARTITIONS
}

fn producer(bootstrap: &str) -> BaseProducer {
    producer_of(bootstrap, ID)
}

fn producer_of(bootstrap: &str, id: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("producer");
    producer
        .init_transactions(TIMEOUT)
        .expect("init_transactions");
    producer
}

/// One transaction of `count` records over the three partitions, `tag`
/// in their values, committed or aborted.
fn transaction(producer: &BaseProducer, tag: &str, count: usize, commit: bool) {
    producer.begin_transaction().expect("begin");
    for i in 0..count {
        let value = format!("{tag}-{i}");
        producer
            .send(
                BaseRecord::<(), _>::to(TOPIC)
                    .partition((i % 3) as i32)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("queued");
    }
    if commit {
        producer.commit_transaction(TIMEOUT).expect("commit");
    } else {
        producer.flush(TIMEOUT).expect("flush");
        producer.abort_transaction(TIMEOUT).expect("abort");
    }
}

/// The values a read_committed consumer reads from every partition, until
/// `want` of them (or 60 s), and a little after.
fn committed_values(bootstrap: &str, want: usize) -> BTreeSet<String> {
    committed_values_of(bootstrap, TOPIC, &[0, 1, 2], want)
}

fn committed_values_of(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    want: usize,
) -> BTreeSet<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ledger-readers")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut after = 0;
    while Instant::now() < deadline && after < 10 {
        if seen.len() >= want {
            after += 1;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            assert!(seen.insert(value.clone()), "{value} read twice");
        }
    }
    seen
}

fn expected(tags: &[&str], count: usize) -> BTreeSet<String> {
    tags.iter()
        .flat_map(|tag| (0..count).map(move |i| format!("{tag}-{i}")))
        .collect()
}

#[test]
fn transactions_span_brokers_and_survive_a_coordinator_failover() {
    let mut cluster = Cluster::start_with(
        ClusterConfig::new(3)
            .yaml(&format!(
                "transaction.state.log.num.partitions: {STATE_PARTITIONS}"
            ))
            .yaml("offsets.topic.num.partitions: 3"),
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail("CreateTopics ledger with RF 3", |c| {
        match create_topic(&c.bootstrap(), TOPIC, 3, 3, &[("min.insync.replicas", "2")]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let mut leaders = BTreeSet::new();
    for p in 0..3 {
        cluster.wait_for_isr(TOPIC, p, 3);
        leaders.insert(cluster.wait_for_leader(TOPIC, p));
    }
    eprintln!("the partitions' leaders: {leaders:?}");
    assert!(
        leaders.len() > 1,
        "the partitions have one leader: {leaders:?}"
    );

    let first = producer(&cluster.bootstrap());
    transaction(&first, "one", 30, true);
    transaction(&first, "aborted", 30, false);
    transaction(&first, "two", 30, true);
    assert_eq!(
        committed_values(&cluster.bootstrap(), 60),
        expected(&["one", "two"], 30)
    );

    // The coordinator dies; a new producer of the id finds the next one,
    // which loaded the id from its replica of `__transaction_state`.
    let coordinator = cluster.wait_for_leader("__transaction_state", state_partition(ID));
    drop(first);
    cluster.kill(coordinator);
    eprintln!("killed the transaction coordinator, broker {coordinator}");
    let second = producer(&cluster.bootstrap());
    transaction(&second, "three", 30, true);
    assert_eq!(
        committed_values(&cluster.bootstrap(), 90),
        expected(&["one", "two", "three"], 30)
    );
}

const PENDING: &str = "pending";
const PENDING_ID: &str = "pending-writer";

/// `(log start, last stable offset)` of `topic`-`partition`, asked
/// read_committed (librdkafka sends the consumer's isolation level in
/// ListOffsets), retried while no leader answers.
fn last_stable_offset(bootstrap: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pending-probe")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(3)) {
            Ok((_, lso)) => return lso,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no LSO of {topic}-{partition}: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn values(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{tag}-{i}")).collect()
}

/// Writes `count` records tagged `tag` to `partition` in a transaction
/// left open (flushed: acknowledged by every in-sync replica).
fn open_transaction(producer: &BaseProducer, partition: i32, tag: &str, count: usize) {
    producer.begin_transaction().expect("begin");
    for value in values(tag, count) {
        producer
            .send(
                BaseRecord::<(), _>::to(PENDING)
                    .partition(partition)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .expect("queued");
    }
    producer.flush(TIMEOUT).expect("flush");
}

/// Plain (idempotent, acks=all) records after the transaction's: a
/// read_committed consumer reaches them only once the transaction ended.
fn produce_plain(cluster: &Cluster, partition: i32, tag: &str, count: usize) {
    let report = produce_to(
        &cluster.bootstrap(),
        PENDING,
        partition,
        &values(tag, count),
    );
    assert_eq!(report.acked.len(), count, "{tag}: {:?}", report.failed);
}

/// Kills the partition's leader and waits for a follower to take over;
/// returns the killed node.
fn fail_over(cluster: &mut Cluster, partition: i32) -> u64 {
    let leader = cluster.wait_for_leader(PENDING, partition);
    cluster.kill(leader);
    let next = cluster.wait_for_leader(PENDING, partition);
    eprintln!("{PENDING}-{partition}: leader {leader} killed, {next} took over");
    leader
}

/// A follower that takes over mid-transaction holds the transaction open
/// as its leader did: the last stable offset stays at the transaction's
/// first offset and read_committed consumers see none of it (nor what
/// follows), until the transaction ends; then they see the committed
/// records exactly once and the aborted ones never.
#[test]
fn a_follower_that_takes_over_mid_transaction_keeps_it_open_until_it_ends() {
    let mut cluster = Cluster::start_with(
        ClusterConfig::new(3)
            .yaml(&format!(
                "transaction.state.log.num.partitions: {STATE_PARTITIONS}"
            ))
            .yaml("offsets.topic.num.partitions: 3"),
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
    cluster.wait_for_detail("CreateTopics pending with RF 3", |c| {
        match create_topic(
            &c.bootstrap(),
            PENDING,
            3,
            3,
            &[("min.insync.replicas", "2")],
        ) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let first = producer_of(&cluster.bootstrap(), PENDING_ID);
    // A partition its coordinator does not lead, so that the kill moves
    // the partition and not the coordinator.
    let coordinator = cluster.wait_for_leader("__transaction_state", state_partition(PENDING_ID));
    let mut partition = 0;
    for p in 0..3 {
        cluster.wait_for_isr(PENDING, p, 3);
        if cluster.wait_for_leader(PENDING, p) != coordinator {
            partition = p;
        }
    }

    produce_plain(&cluster, partition, "before", 5);
    open_transaction(&first, partition, "committed", 10);
    produce_plain(&cluster, partition, "after", 5);
    assert_eq!(
        last_stable_offset(&cluster.bootstrap(), PENDING, partition),
        5
    );
    cluster.wait_for_isr(PENDING, partition, 3);
    let killed = fail_over(&mut cluster, partition);
    assert_eq!(
        last_stable_offset(&cluster.bootstrap(), PENDING, partition),
        5,
        "the new leader's last stable offset is not the open transaction's first offset"
    );
    let before: BTreeSet<String> = values("before", 5).into_iter().collect();
    assert_eq!(
        committed_values_of(&cluster.bootstrap(), PENDING, &[partition], 5),
        before
    );
    first.commit_transaction(TIMEOUT).expect("commit");
    let mut seen: BTreeSet<String> = before.clone();
    seen.extend(values("committed", 10));
    seen.extend(values("after", 5));
    assert_eq!(
        committed_values_of(&cluster.bootstrap(), PENDING, &[partition], 20),
        seen
    );

    // Again, ended by a new producer of the id, which fences the first
    // and aborts its transaction.
    cluster.restart(killed);
    cluster.wait_for_isr(PENDING, partition, 3);
    let start = last_stable_offset(&cluster.bootstrap(), PENDING, partition);
    open_transaction(&first, partition, "aborted", 10);
    produce_plain(&cluster, partition, "tail", 3);
    cluster.wait_for_isr(PENDING, partition, 3);
    fail_over(&mut cluster, partition);
    assert_eq!(
        last_stable_offset(&cluster.bootstrap(), PENDING, partition),
        start
    );
    assert_eq!(
        committed_values_of(&cluster.bootstrap(), PENDING, &[partition], 20),
        seen
    );
    let second = producer_of(&cluster.bootstrap(), PENDING_ID);
    assert!(
        first.commit_transaction(TIMEOUT).is_err(),
        "the fenced producer committed"
    );
    seen.extend(values("tail", 3));
    assert_eq!(
        committed_values_of(&cluster.bootstrap(), PENDING, &[partition], 23),
        seen
    );
    drop(second);
}
