//! The log cleaner's metrics after it compacted a topic a real producer
//! filled with 30 keys overwritten 100 times each.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

use fjord_broker::BrokerConfig;
use fjord_http::metrics::Metrics;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// The value of the unlabelled series `name` in `text`.
fn value(text: &str, name: &str) -> f64 {
    common::value(text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn cleaner_runs_show_in_metrics() {
    let metrics = Metrics::install().expect("recorder");
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, broker) = common::start_broker(BrokerConfig {
        log_cleaner_backoff_ms: 50,
        ..BrokerConfig::ephemeral(dir.path())
    });
    let local = broker.local();
    let configs = [
        ("cleanup.policy".to_owned(), "compact".to_owned()),
        ("segment.bytes".to_owned(), "4096".to_owned()),
    ];
    runtime
        .block_on(local.create_topic("table", Some(1), None, &configs))
        .expect("create topic");
    assert_eq!(
        value(&metrics.render(&local), "fjord_cleaner_runs_total"),
        0.0
    );

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.local_addr().to_string())
        .set("linger.ms", "2")
        .set("batch.num.messages", "50")
        .create()
        .expect("producer");
    for i in 0..3_000 {
        let (key, payload) = (format!("k{}", i % 30), format!("v{i}"));
        producer
            .send(
                BaseRecord::to("table")
                    .partition(0)
                    .key(&key)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).expect("flush");

    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = metrics.render(&local);
        if value(&text, "fjord_cleaner_runs_total") >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "never cleaned:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        value(&text, "fjord_cleaner_bytes_read_total") > 0.0,
        "{text}"
    );
    assert!(
        value(&text, "fjord_cleaner_bytes_written_total") > 0.0,
        "{text}"
    );
    assert!(
        value(&text, "fjord_cleaner_records_removed_total") > 0.0,
        "{text}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let last = value(&text, "fjord_cleaner_last_run_timestamp_seconds");
    assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");

    runtime.block_on(broker.shutdown()).expect("clean shutdown");
}
