//! Client quotas (KIP-546, KIP-13) against a real broker: set and described
//! with raw AlterClientQuotas/DescribeClientQuotas requests (the rdkafka
//! admin client has no quota calls), kept across a restart, and enforced
//! on librdkafka producers and consumers, whose statistics report the
//! throttle times the broker answers with.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Raw, TestBroker};
use fjord_broker::BrokerConfig;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;

const MB: f64 = 1_048_576.0;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// `(entity type, name)` pairs as AlterClientQuotas carries them.
fn entity(parts: &[(&str, Option<&str>)]) -> Vec<alter_client_quotas_request::EntityData> {
    parts
        .iter()
        .map(|(kind, name)| {
            alter_client_quotas_request::EntityData::default()
                .with_entity_type(text(kind))
                .with_entity_name(name.map(text))
        })
        .collect()
}

/// Sets (`Some`) or removes (`None`) `key` of the entity `parts`; the
/// entry's error code and message.
fn alter(
    raw: &mut Raw,
    parts: &[(&str, Option<&str>)],
    ops: &[(&str, Option<f64>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let entry = alter_client_quotas_request::EntryData::default()
        .with_entity(entity(parts))
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    alter_client_quotas_request::OpData::default()
                        .with_key(text(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        );
    let ResponseKind::AlterClientQuotas(r) = raw.call(
        ApiKey::AlterClientQuotas,
        1,
        RequestKind::AlterClientQuotas(
            AlterClientQuotasRequest::default()
                .with_entries(vec![entry])
                .with_validate_only(validate_only),
        ),
    ) else {
        panic!("not an AlterClientQuotas answer");
    };
    let e = &r.entries[0];
    (
        e.error_code,
        e.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// A described entity: its `(type, name)` pairs and `(key, value)`s.
type Described = (Vec<(String, Option<String>)>, Vec<(String, f64)>);

/// Describes with `(entity type, match type, match)` components.
fn describe(
    raw: &mut Raw,
    components: &[(&str, i8, Option<&str>)],
    strict: bool,
) -> Result<Vec<Described>, i16> {
    let ResponseKind::DescribeClientQuotas(r) = raw.call(
        ApiKey::DescribeClientQuotas,
        1,
        RequestKind::DescribeClientQuotas(
            DescribeClientQuotasRequest::default()
                .with_components(
                    components
                        .iter()
                        .map(|(kind, match_type, m)| {
                            describe_client_quotas_request::ComponentData::default()
                                .with_entity_type(text(kind))
                                .with_match_type(*match_type)
                                .with_match(m.map(text))
                        })
                        .collect(),
                )
                .with_strict(strict),
        ),
    ) else {
        panic!("not a DescribeClientQuotas answer");
    };
    if r.error_code != 0 {
        return Err(r.error_code);
    }
    let mut out: Vec<Described> = r
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            (
                e.entity
                    .into_iter()
                    .map(|p| {
                        (
                            p.entity_type.to_string(),
                            p.entity_name.map(|n| n.to_string()),
                        )
                    })
                    .collect(),
                e.values
                    .into_iter()
                    .map(|v| (v.key.to_string(), v.value))
                    .collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    Ok(out)
}

fn owned(parts: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    parts
        .iter()
        .map(|(k, n)| (k.to_string(), n.map(str::to_owned)))
        .collect()
}

/// Kafka's checks refuse what cannot be a quota (INVALID_REQUEST, nothing
/// kept); validate_only keeps nothing; filters match exactly, the default,
/// or any name, strictly or not; removing the last key removes the
/// entity; and what was set survives a restart.
#[test]
fn quotas_are_checked_altered_described_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let invalid = ResponseError::InvalidRequest.code();
    let user_alice = [("user", Some("alice"))];
    for (parts, ops) in [
        (&user_alice[..], &[("producer_byte_rate", Some(-1.0))][..]),
        (&user_alice[..], &[("producer_byte_rate", Some(0.0))][..]),
        (&user_alice[..], &[("producer_byte_rate", Some(10.5))][..]),
        (&user_alice[..], &[("no_such_quota", Some(10.0))][..]),
        (
            &[("ip", Some("not-an-address"))][..],
            &[("connection_creation_rate", Some(5.0))][..],
        ),
        (
            &[("ip", Some("10.0.0.1")), ("user", None)][..],
            &[("connection_creation_rate", Some(5.0))][..],
        ),
        (
            &[("ip", Some("10.0.0.1"))][..],
            &[("producer_byte_rate", Some(5.0))][..],
        ),
        (
            &[("ip", None)][..],
            &[("connection_creation_rate", Some(2.5))][..],
        ),
        (
            &[("user", None)][..],
            &[("connection_creation_rate", Some(5.0))][..],
        ),
        (
            &[("group", Some("g"))][..],
            &[("producer_byte_rate", Some(5.0))][..],
        ),
        (&[][..], &[("producer_byte_rate", Some(5.0))][..]),
        (
            &[("user", Some("a")), ("user", Some("b"))][..],
            &[("producer_byte_rate", Some(5.0))][..],
        ),
    ] {
        let (code, message) = alter(&mut raw, parts, ops, false);
        assert_eq!(code, invalid, "{parts:?} {ops:?} accepted");
        assert!(message.is_some());
    }
    assert_eq!(
        alter(
            &mut raw,
            &user_alice,
            &[("producer_byte_rate", Some(1024.0))],
            true
        )
        .0,
        0
    );
    assert_eq!(describe(&mut raw, &[], false), Ok(vec![]));

    let both = [("user", Some("alice")), ("client-id", None)];
    let client = [("client-id", Some("app"))];
    let default_user = [("user", None)];
    for (parts, ops) in [
        (
            &both[..],
            &[
                ("producer_byte_rate", Some(1024.0)),
                ("request_percentage", Some(12.5)),
            ][..],
        ),
        (&client[..], &[("consumer_byte_rate", Some(2048.0))][..]),
        (
            &default_user[..],
            &[("controller_mutation_rate", Some(3.0))][..],
        ),
    ] {
        assert_eq!(alter(&mut raw, parts, ops, false), (0, None));
    }
    let all = describe(&mut raw, &[], false).expect("described");
    assert_eq!(all.len(), 3, "{all:?}");
    // Exact user alice, not strict: the user+default-client entity.
    let alice = describe(&mut raw, &[("user", 0, Some("alice"))], false).expect("described");
    assert_eq!(
        alice,
        vec![(
            owned(&both),
            vec![
                ("producer_byte_rate".into(), 1024.0),
                ("request_percentage".into(), 12.5)
            ]
        )]
    );
    // Strict: an entity naming only a user; there is none for alice.
    assert_eq!(
        describe(&mut raw, &[("user", 0, Some("alice"))], true),
        Ok(vec![])
    );
    // The default user, strictly.
    let default = describe(&mut raw, &[("user", 1, None)], true).expect("described");
    assert_eq!(
        default,
        vec![(
            owned(&default_user),
            vec![("controller_mutation_rate".into(), 3.0)]
        )]
    );
    // Any client id: the two entities that name one.
    assert_eq!(
        describe(&mut raw, &[("client-id", 2, None)], false)
            .expect("described")
            .len(),
        2
    );
    assert_eq!(describe(&mut raw, &[("ip", 2, None)], false), Ok(vec![]));
    assert_eq!(
        describe(&mut raw, &[("ip", 2, None), ("user", 2, None)], false),
        Err(invalid)
    );
    assert_eq!(
        describe(&mut raw, &[("user", 7, None)], false),
        Err(invalid)
    );
    // Removing the last key removes the entity.
    assert_eq!(
        alter(&mut raw, &client, &[("consumer_byte_rate", None)], false),
        (0, None)
    );
    drop(raw);
    broker.stop();

    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let kept = describe(&mut raw, &[], false).expect("described");
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.contains(&(
        owned(&default_user),
        vec![("controller_mutation_rate".into(), 3.0)]
    )));
}

/// What a client saw: the bytes of its delivered (or consumed) messages
/// with when, and the largest throttle time librdkafka reported.
#[derive(Default)]
struct Seen {
    delivered: Mutex<Vec<(Instant, usize)>>,
    max_throttle_ms: Mutex<i64>,
}

#[derive(Clone, Default)]
struct Observer(Arc<Seen>);

impl ClientContext for Observer {
    fn stats(&self, statistics: Statistics) {
        let most = statistics
            .brokers
            .values()
            .filter_map(|b| b.throttle.as_ref().map(|w| w.max))
            .max()
            .unwrap_or(0);
        let mut max = self.0.max_throttle_ms.lock();
        *max = (*max).max(most);
    }
}

impl ProducerContext for Observer {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            let bytes = message.payload().map_or(0, <[u8]>::len);
            self.0.delivered.lock().push((Instant::now(), bytes));
        }
    }
}

impl ConsumerContext for Observer {}

impl Seen {
    /// Bytes delivered in `[from, to)`.
    fn bytes(&self, from: Instant, to: Instant) -> usize {
        self.delivered
            .lock()
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, n)| n)
            .sum()
    }

    fn max_throttle(&self) -> i64 {
        *self.max_throttle_ms.lock()
    }
}

fn producer(bootstrap: &str, client_id: &str, observer: &Observer) -> BaseProducer<Observer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("statistics.interval.ms", "500")
        .set("linger.ms", "5")
        // Requests of at most 64 KiB, so the rate is measured finely; a
        // bounded queue, so the throttled producer does not buffer a GB.
        .set("batch.size", "65536")
        .set("queue.buffering.max.kbytes", "4096")
        .create_with_context(observer.clone())
        .expect("producer")
}

/// Produces 10 000-byte messages to `topic` until `until`, at most
/// `rate` bytes a second (`None`: as fast as the broker lets it).
fn produce_until(
    producer: &BaseProducer<Observer>,
    topic: &str,
    rate: Option<f64>,
    until: Instant,
) {
    let payload = vec![b'q'; 10_000];
    let start = Instant::now();
    let mut sent = 0usize;
    while Instant::now() < until {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(sent as f64 / rate);
            if Instant::now() < due {
                producer.poll(Duration::from_millis(1));
                continue;
            }
        }
        match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload)) {
            Ok(()) => sent += payload.len(),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("produce failed: {e}"),
        }
        producer.poll(Duration::ZERO);
    }
}

/// A 1 MiB/s `producer_byte_rate` for client id `slow` holds within 10 %
/// while the broker answers it with throttle times, and a client id
/// without a quota, producing at the same time, keeps its 4 MiB/s.
///
/// The rate is measured as Kafka measures it, over 11 windows of a second;
/// like Kafka's, it lets a new client send ten windows' worth at once, and
/// that first burst comes back each time its window expires (every 11 s).
/// So the test measures three whole periods (33 s), from 2 s after the
/// first throttled answer: over any 30 s the delivered rate swings between
/// about 0.75 and 1.1 of the quota as one burst more or less falls in.
#[test]
fn a_produce_quota_holds_and_spares_other_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 1,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(broker.addr);
    assert_eq!(
        alter(
            &mut raw,
            &[("client-id", Some("slow"))],
            &[("producer_byte_rate", Some(MB))],
            false
        ),
        (0, None)
    );

    let slow = Observer::default();
    let fast = Observer::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(45);
    let fast_thread = {
        let (fast, bootstrap) = (fast.clone(), bootstrap.clone());
        thread::spawn(move || {
            let p = producer(&bootstrap, "fast", &fast);
            produce_until(&p, "unlimited", Some(4.0 * MB), end);
            let _ = p.flush(Duration::from_secs(10));
        })
    };
    let p = producer(&bootstrap, "slow", &slow);
    // Until the first throttled answer (librdkafka's statistics report
    // it), then 2 s more and three 11-s periods.
    let deadline = start + Duration::from_secs(15);
    while slow.0.max_throttle() == 0 {
        assert!(Instant::now() < deadline, "never throttled");
        produce_until(
            &p,
            "limited",
            None,
            Instant::now() + Duration::from_millis(50),
        );
    }
    let from = Instant::now() + Duration::from_secs(2);
    let to = from + Duration::from_secs(33);
    produce_until(&p, "limited", None, to + Duration::from_secs(1));
    fast_thread.join().expect("fast producer");

    let rate = slow.0.bytes(from, to) as f64 / 33.0;
    let fast_rate = fast.0.bytes(from, to) as f64 / 33.0;
    eprintln!(
        "throttled {:.3} MiB/s (throttle up to {} ms), unthrottled {:.3} MiB/s",
        rate / MB,
        slow.0.max_throttle(),
        fast_rate / MB
    );
    assert!(
        (0.9 * MB..=1.1 * MB).contains(&rate),
        "the throttled client wrote {:.3} MiB/s",
        rate / MB
    );
    assert!(slow.0.max_throttle() > 0);
    assert!(
        fast_rate >= 0.9 * 4.0 * MB,
        "the unthrottled client wrote {:.3} MiB/s",
        fast_rate / MB
    );
    assert_eq!(
        fast.0.max_throttle(),
        0,
        "the client without a quota was throttled"
    );
    drop(p);
}

/// A `consumer_byte_rate` of 256 KiB/s for the default client id: a
/// consumer of about 12 MiB is throttled (librdkafka reports it), never
/// reads more in any 10 s than the quota allows over its window (plus one
/// fetch), and still reads at least 80 % of the quota.
#[test]
fn a_fetch_quota_holds() {
    const QUOTA: f64 = 256.0 * 1024.0;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 1,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let bootstrap = broker.bootstrap();
    let loader = Observer::default();
    let p = producer(&bootstrap, "loader", &loader);
    let payload = vec![b'q'; 10_000];
    for _ in 0..1200 {
        while let Err((e, _)) = p.send(BaseRecord::<(), [u8]>::to("data").payload(&payload)) {
            assert!(
                matches!(
                    e,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ),
                "{e}"
            );
            p.poll(Duration::from_millis(5));
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(30)).expect("loaded");
    let loaded = loader
        .0
        .bytes(Instant::now() - Duration::from_secs(60), Instant::now());
    assert_eq!(loaded, 12_000_000);

    let mut raw = Raw::connect(broker.addr);
    assert_eq!(
        alter(
            &mut raw,
            &[("client-id", None)],
            &[("consumer_byte_rate", Some(QUOTA))],
            false
        ),
        (0, None)
    );
    let observer = Observer::default();
    let consumer: BaseConsumer<Observer> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "readers")
        .set("client.id", "reader")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", "500")
        .set("max.partition.fetch.bytes", "262144")
        .create_with_context(observer.clone())
        .expect("consumer");
    consumer.subscribe(&["data"]).expect("subscribe");
    let start = Instant::now();
    let run = Duration::from_secs(25);
    while start.elapsed() < run {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let bytes = message.payload().map_or(0, <[u8]>::len);
            observer.0.delivered.lock().push((Instant::now(), bytes));
        }
    }
    assert!(observer.0.max_throttle() > 0, "never throttled");
    // Any 10 s: at most the 11 windows' worth the quota allows (all of
    // those bytes still count when the 10 s end) and one fetch.
    let received = observer.0.delivered.lock().clone();
    let window = Duration::from_secs(10);
    for &(at, _) in &received {
        let inside: usize = received
            .iter()
            .filter(|(t, _)| *t >= at && *t < at + window)
            .map(|(_, n)| n)
            .sum();
        assert!(
            inside as f64 <= 1.1 * (QUOTA * 11.0) + 262_144.0 + 10_000.0,
            "{inside} bytes in 10 s"
        );
    }
    let total: usize = received.iter().map(|(_, n)| n).sum();
    let rate = total as f64 / run.as_secs_f64();
    eprintln!(
        "read {total} bytes ({:.0} B/s, quota {QUOTA}) of {loaded}, throttle up to {} ms",
        rate,
        observer.0.max_throttle()
    );
    assert!(
        rate >= 0.8 * QUOTA && total < loaded,
        "read {total} bytes ({:.0} B/s) of {loaded}",
        rate
    );
}

/// A producer that waits for each message's delivery before sending the
/// next: each message is one Produce request.
fn one_at_a_time(bootstrap: &str, client_id: &str, observer: &Observer) -> BaseProducer<Observer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("statistics.interval.ms", "200")
        .set("linger.ms", "0")
        .create_with_context(observer.clone())
        .expect("producer")
}

/// Sends a small message and waits for it, over and over until `until`
/// (or, with `pace`, one every `pace`); returns how many were delivered.
fn produce_in_turn(
    producer: &BaseProducer<Observer>,
    observer: &Observer,
    pace: Option<Duration>,
    until: Instant,
) -> usize {
    let start = Instant::now();
    let mut sent = 0u32;
    let before = observer.0.delivered.lock().len();
    while Instant::now() < until {
        if let Some(pace) = pace {
            let due = start + pace * sent;
            if Instant::now() < due {
                producer.poll(Duration::from_millis(1));
                continue;
            }
        }
        let n = observer.0.delivered.lock().len();
        producer
            .send(BaseRecord::<(), [u8]>::to("requests").payload(b"r"))
            .expect("queued");
        sent += 1;
        while observer.0.delivered.lock().len() == n {
            assert!(
                Instant::now() < until + Duration::from_secs(5),
                "no delivery"
            );
            producer.poll(Duration::from_millis(1));
        }
    }
    observer.0.delivered.lock().len() - before
}

/// `request_percentage` (KIP-124): a client whose requests keep the
/// broker's threads busier than 0.2 % of one thread is throttled (librdkafka
/// reports the throttle times, never above one window) and sends far fewer
/// requests than it did without the quota, while another client producing
/// on the same broker at the same time is never throttled and keeps its
/// pace. A Metadata answer carries the throttle too, and the connection
/// reads nothing more for that long.
#[test]
fn a_request_quota_throttles_one_client_and_spares_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start_with(BrokerConfig {
        num_partitions: 1,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let bootstrap = broker.bootstrap();
    let busy = Observer::default();
    let p = one_at_a_time(&bootstrap, "busy", &busy);
    // Unthrottled, as fast as one request after the other goes.
    produce_in_turn(&p, &busy, None, Instant::now() + Duration::from_millis(500));
    let unthrottled =
        produce_in_turn(&p, &busy, None, Instant::now() + Duration::from_secs(2)) as f64 / 2.0;

    let mut raw = Raw::connect(broker.addr);
    for client in ["busy", "raw-test"] {
        assert_eq!(
            alter(
                &mut raw,
                &[("client-id", Some(client))],
                &[("request_percentage", Some(0.2))],
                false
            ),
            (0, None)
        );
    }
    drop(raw);

    let free = Observer::default();
    let free_until = Instant::now() + Duration::from_secs(9);
    let free_thread = {
        let (free, bootstrap) = (free.clone(), bootstrap.clone());
        thread::spawn(move || {
            let p = one_at_a_time(&bootstrap, "free", &free);
            let pace = Duration::from_millis(10);
            let start = Instant::now();
            let delivered = produce_in_turn(&p, &free, Some(pace), free_until);
            (delivered, start.elapsed())
        })
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    while busy.0.max_throttle() == 0 {
        assert!(Instant::now() < deadline, "never throttled");
        produce_in_turn(&p, &busy, None, Instant::now() + Duration::from_millis(100));
    }
    let throttled =
        produce_in_turn(&p, &busy, None, Instant::now() + Duration::from_secs(3)) as f64 / 3.0;
    eprintln!(
        "busy: {unthrottled:.0} requests/s alone, {throttled:.0}/s over its quota (throttle up to {} ms)",
        busy.0.max_throttle()
    );
    assert!(
        throttled < unthrottled / 3.0,
        "throttled at {throttled:.0} requests/s, {unthrottled:.0} without a quota"
    );
    assert!(busy.0.max_throttle() <= 1000, "throttled past one window");

    // A raw client's Metadata answers: one carries the throttle, and the
    // next request is read only once it has passed.
    let mut raw = Raw::connect(broker.addr);
    let deadline = Instant::now() + Duration::from_secs(5);
    let metadata = || RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
    let throttle = loop {
        assert!(Instant::now() < deadline, "Metadata never throttled");
        let ResponseKind::Metadata(r) = raw.call(ApiKey::Metadata, 12, metadata()) else {
            panic!("not a Metadata answer");
        };
        if r.throttle_time_ms > 0 {
            break Duration::from_millis(r.throttle_time_ms as u64);
        }
    };
    let asked = Instant::now();
    raw.call(ApiKey::Metadata, 12, metadata());
    assert!(
        asked.elapsed() + Duration::from_millis(20) >= throttle,
        "answered after {:?}, throttled {throttle:?}",
        asked.elapsed()
    );

    let (delivered, took) = free_thread.join().expect("free producer");
    let expected = took.as_secs_f64() * 100.0;
    eprintln!("free: {delivered} requests in {took:?} (paced at 100/s)");
    assert!(
        delivered as f64 >= 0.8 * expected,
        "the client without a quota sent {delivered} in {took:?}"
    );
    assert_eq!(
        free.0.max_throttle(),
        0,
        "the client without a quota was throttled"
    );
}

/// A raw CreateTopics of one topic with `partitions` partitions at
/// `version`: the topic's error code and the answer's throttle time.
fn create_raw(raw: &mut Raw, version: i16, topic: &str, partitions: i32) -> (i16, i32) {
    let ResponseKind::CreateTopics(r) = raw.call(
        ApiKey::CreateTopics,
        version,
        RequestKind::CreateTopics(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_num_partitions(partitions)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(10_000),
        ),
    ) else {
        panic!("not a CreateTopics answer");
    };
    (r.topics[0].error_code, r.throttle_time_ms)
}

/// `controller_mutation_rate` (KIP-599) of 2 partitions a second (a burst
/// of 22): CreateTopics v7, DeleteTopics v6 and CreatePartitions v3 are
/// strict — accepted until the bucket is below zero, then refused with
/// THROTTLING_QUOTA_EXCEEDED and the time to wait, nothing created or
/// deleted — while librdkafka's admin client (CreateTopics v4, permissive)
/// gets every topic created and is slowed down by the throttle, and a
/// client without a quota is not.
#[test]
fn a_controller_mutation_quota_is_strict_for_new_clients_and_permissive_for_old() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    for client in ["raw-test", "admin"] {
        assert_eq!(
            alter(
                &mut raw,
                &[("client-id", Some(client))],
                &[("controller_mutation_rate", Some(2.0))],
                false
            ),
            (0, None)
        );
    }
    let throttled = ResponseError::ThrottlingQuotaExceeded.code();
    // 22 tokens: 20 taken, then 10 more accepted (the bucket was not
    // below zero yet), leaving -8: four seconds to refill.
    assert_eq!(create_raw(&mut raw, 7, "s1", 20), (0, 0));
    assert_eq!(create_raw(&mut raw, 7, "s2", 10), (0, 0));
    let (code, throttle) = create_raw(&mut raw, 7, "s3", 1);
    assert_eq!(code, throttled);
    assert!(
        (3_000..=4_000).contains(&throttle),
        "throttle {throttle} ms"
    );
    // That connection is muted for it; another is not, and its strict
    // requests are refused too while the bucket refills.
    let mut other = Raw::connect(broker.addr);
    let ResponseKind::DeleteTopics(deleted) = other.call(
        ApiKey::DeleteTopics,
        6,
        RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(TopicName(text("s1")))),
            ])),
    ) else {
        panic!("not a DeleteTopics answer");
    };
    assert_eq!(deleted.responses[0].error_code, throttled);
    assert!(deleted.throttle_time_ms > 0);
    // `other` is muted now too: a third connection.
    let mut other = Raw::connect(broker.addr);
    let ResponseKind::CreatePartitions(grown) = other.call(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(text("s2")))
                .with_count(12),
        ])),
    ) else {
        panic!("not a CreatePartitions answer");
    };
    assert_eq!(grown.results[0].error_code, throttled);
    let mut other = Raw::connect(broker.addr);
    let ResponseKind::Metadata(m) = other.call(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!("not a Metadata answer");
    };
    let mut names: Vec<(String, usize)> = m
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.partitions.len(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, [("s1".to_owned(), 20), ("s2".to_owned(), 10)]);

    // librdkafka's admin client, one 10-partition topic a call: the third
    // takes the bucket to -8, so the fourth waits about four seconds.
    let admin = |client_id: &str| -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("client.id", client_id)
            .create()
            .expect("admin")
    };
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let create_four = |admin: &AdminClient<DefaultClientContext>, prefix: &str| {
        let start = Instant::now();
        for i in 0..4 {
            let name = format!("{prefix}{i}");
            let topic = NewTopic::new(&name, 10, TopicReplication::Fixed(1));
            let results = broker
                .runtime
                .block_on(admin.create_topics([&topic], &options))
                .expect("answered");
            assert!(results[0].is_ok(), "{results:?}");
        }
        start.elapsed()
    };
    let free = create_four(&admin("free"), "free");
    let limited = create_four(&admin("admin"), "limited");
    eprintln!("four topics: {free:?} without a quota, {limited:?} with one");
    assert!(limited >= Duration::from_secs(3), "{limited:?}");
    assert!(free < Duration::from_secs(2), "{free:?}");
}

/// `connection_creation_rate` for `ip` 127.0.0.1 (KIP-612): set and
/// described through the API; new connections from that address beyond
/// the quota's burst (ten windows' worth, 20 at 2 a second) are held
/// unanswered and then closed, while 127.0.0.2, without a quota, connects
/// as often as it likes; the default address's quota then applies to it.
#[test]
fn an_ip_connection_rate_quota_throttles_new_connections_from_that_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    let rate = "connection_creation_rate";
    assert_eq!(
        alter(
            &mut raw,
            &[("ip", Some("127.0.0.1"))],
            &[(rate, Some(2.0))],
            false
        ),
        (0, None)
    );
    assert_eq!(
        describe(&mut raw, &[("ip", 0, Some("127.0.0.1"))], true),
        Ok(vec![(
            owned(&[("ip", Some("127.0.0.1"))]),
            vec![(rate.to_owned(), 2.0)]
        )])
    );
    drop(raw);

    /// Connects from `source` and asks for ApiVersions: whether it is
    /// answered within 300 ms.
    fn served_from(broker: &TestBroker, source: &str) -> (bool, std::net::TcpStream) {
        use std::io::{Read, Write};
        let source: std::net::IpAddr = source.parse().expect("address");
        let stream = broker
            .runtime
            .block_on(async {
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(std::net::SocketAddr::new(source, 0))?;
                socket.connect(broker.addr).await
            })
            .expect("connected");
        let mut stream = stream.into_std().expect("std");
        stream.set_nonblocking(false).expect("blocking");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        // ApiVersions v0, correlation id 1, no client id.
        let request = [0u8, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
        stream.write_all(&request).expect("sent");
        let mut length = [0u8; 4];
        if stream.read_exact(&mut length).is_err() {
            return (false, stream);
        }
        let mut body = vec![0u8; u32::from_be_bytes(length) as usize];
        (stream.read_exact(&mut body).is_ok(), stream)
    }

    // Another address has no quota (no default yet); it keeps an admin
    // connection open for later (127.0.0.1's will be throttled).
    for i in 0..40 {
        assert!(
            served_from(&broker, "127.0.0.2").0,
            "connection {i} of 127.0.0.2"
        );
    }
    let (answered, admin) = served_from(&broker, "127.0.0.2");
    assert!(answered);
    admin
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut admin = Raw::from_stream(admin);

    let start = Instant::now();
    let mut held = Vec::new();
    let mut served = 0;
    for _ in 0..30 {
        let (answered, stream) = served_from(&broker, "127.0.0.1");
        if answered {
            served += 1;
        } else {
            held.push(stream);
        }
    }
    let took = start.elapsed();
    // 20 at once, and what two a second add while the 30 were tried.
    let most = 20.0 + 2.0 * took.as_secs_f64() + 1.0;
    eprintln!("127.0.0.1: {served} of 30 served in {took:?}");
    assert!(
        served >= 20 && (served as f64) <= most,
        "{served} served in {took:?}"
    );
    assert!(!held.is_empty());
    // A held connection is closed once its throttle has passed.
    let mut last = held.pop().expect("held");
    last.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let waited = Instant::now();
    assert!(
        matches!(std::io::Read::read(&mut last, &mut byte), Ok(0) | Err(_)),
        "answered"
    );
    assert!(waited.elapsed() < Duration::from_secs(9), "never closed");

    // The default address's quota applies to every address without its own.
    assert_eq!(
        alter(&mut admin, &[("ip", None)], &[(rate, Some(1.0))], false),
        (0, None)
    );
    let mut refused = 0;
    for _ in 0..15 {
        if !served_from(&broker, "127.0.0.3").0 {
            refused += 1;
        }
    }
    assert!(refused >= 3, "127.0.0.3: {refused} of 15 held");
}
