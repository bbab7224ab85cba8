//! `/metrics` against a real broker and real Kafka clients (librdkafka):
//! what a producer and a consumer group did shows in the rendered text, and
//! a deleted topic's series leave it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

mod common;

use fjord_broker::BrokerConfig;
use fjord_http::metrics::Metrics;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const N: usize = 300;
const VALUE_LEN: usize = 100;

/// Series → value of a Prometheus text page (comments skipped).
fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a series and a value");
            let value = value
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{l:?}: {e}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn get(series: &HashMap<String, f64>, name: &str, text: &str) -> f64 {
    *series
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

fn produce(bootstrap: &str, topic: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", "none")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let value = vec![b'v'; VALUE_LEN];
    for i in 0..N {
        let key = format!("key-{i}");
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&value).partition(0))
            .map_err(|(e, _)| e)
            .expect("send");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Consumes all `N` records in `group` and commits them; the consumer is
/// returned still in the group.
fn consume_and_commit(bootstrap: &str, topic: &str, group: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0;
    while seen < N {
        assert!(Instant::now() < deadline, "only {seen} of {N} consumed");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            message.expect("consume");
            seen += 1;
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    consumer
}

#[test]
fn produce_consume_and_delete_show_in_metrics() {
    // Installed before the broker starts: nothing recorded is lost.
    let metrics = Metrics::install().expect("recorder");
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, broker) = common::start_broker(BrokerConfig::ephemeral(dir.path()));
    let local = broker.local();
    let bootstrap = broker.local_addr().to_string();
    let topic = "metered";
    let group = "metered-readers";
    runtime
        .block_on(local.create_topic(topic, Some(1), None, &[]))
        .expect("create topic");

    produce(&bootstrap, topic);
    let consumer = consume_and_commit(&bootstrap, topic, group);

    let text = metrics.render(&local);
    let series = parse(&text);
    let tp = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    assert!(get(&series, "fjord_requests_total{api=\"Produce\"}", &text) > 0.0);
    assert!(get(&series, "fjord_requests_total{api=\"Fetch\"}", &text) > 0.0);
    assert!(get(&series, "fjord_requests_total{api=\"OffsetCommit\"}", &text) > 0.0);
    assert!(
        get(
            &series,
            "fjord_request_duration_seconds_count{api=\"Produce\"}",
            &text
        ) > 0.0
    );
    assert!(
        series.contains_key("fjord_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.0001\"}"),
        "explicit buckets: {text}"
    );
    let bytes_in = get(&series, &format!("fjord_topic_bytes_in_total{tp}"), &text);
    assert!(bytes_in >= (N * VALUE_LEN) as f64, "bytes in {bytes_in}");
    assert_eq!(
        get(&series, &format!("fjord_topic_records_in_total{tp}"), &text),
        N as f64
    );
    assert!(
        get(
            &series,
            &format!("fjord_topic_records_out_total{tp}"),
            &text
        ) >= N as f64
    );
    assert!(get(&series, &format!("fjord_topic_bytes_out_total{tp}"), &text) >= bytes_in);
    assert_eq!(
        get(&series, &format!("fjord_high_watermark{tp}"), &text),
        N as f64
    );
    assert_eq!(
        get(&series, &format!("fjord_log_end_offset{tp}"), &text),
        N as f64
    );
    assert_eq!(
        get(&series, &format!("fjord_log_start_offset{tp}"), &text),
        0.0
    );
    assert!(get(&series, &format!("fjord_log_size_bytes{tp}"), &text) >= bytes_in);
    assert_eq!(get(&series, &format!("fjord_log_segments{tp}"), &text), 1.0);
    assert!(get(&series, "fjord_partitions", &text) >= 1.0);
    assert_eq!(
        get(&series, "fjord_under_replicated_partitions", &text),
        0.0
    );
    let lag =
        format!("fjord_consumer_group_lag{{group=\"{group}\",topic=\"{topic}\",partition=\"0\"}}");
    assert_eq!(get(&series, &lag, &text), 0.0);
    let committed = format!(
        "fjord_consumer_group_committed_offset{{group=\"{group}\",topic=\"{topic}\",partition=\"0\"}}"
    );
    assert_eq!(get(&series, &committed, &text), N as f64);
    assert_eq!(
        get(
            &series,
            &format!("fjord_consumer_group_lag_sum{{group=\"{group}\"}}"),
            &text
        ),
        0.0
    );
    assert_eq!(
        get(
            &series,
            &format!("fjord_consumer_group_members{{group=\"{group}\"}}"),
            &text
        ),
        1.0
    );
    // Single node: registered at 0 so dashboards find them.
    assert_eq!(get(&series, "fjord_isr_shrinks_total", &text), 0.0);
    assert_eq!(get(&series, "fjord_isr_expands_total", &text), 0.0);
    // The consumer's own long poll may be parked right now.
    assert!(get(&series, "fjord_fetch_purgatory_size", &text) <= 1.0);
    assert_eq!(get(&series, "fjord_produce_purgatory_size", &text), 0.0);
    assert_eq!(get(&series, "fjord_cleaner_runs_total", &text), 0.0);

    drop(consumer);
    // Its last parked fetch leaves the purgatory when its wait ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics.render(&local);
        if get(&parse(&text), "fjord_fetch_purgatory_size", &text) == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "a fetch stays parked:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    runtime
        .block_on(local.delete_topic(topic))
        .expect("delete topic");
    let text = metrics.render(&local);
    assert!(
        !text.contains(&format!("topic=\"{topic}\"")),
        "the deleted topic's series are still there:\n{text}"
    );
    // The recorded counters stay: they count what happened.
    assert!(
        get(
            &parse(&text),
            "fjord_requests_total{api=\"Produce\"}",
            &text
        ) > 0.0
    );

    runtime.block_on(broker.shutdown()).expect("clean shutdown");
}
