//! What the metrics tests share: a real broker on its own runtime, and
//! reading one series out of a rendered page.
#![allow(dead_code)]

use fjord_broker::{Broker, BrokerConfig};

/// A broker started with `config` on a 2-thread runtime of its own (the
/// tests drive librdkafka from the test thread).
pub fn start_broker(config: BrokerConfig) -> (tokio::runtime::Runtime, Broker) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let broker = runtime
        .block_on(Broker::start(config))
        .expect("broker starts");
    (runtime, broker)
}

/// The value of the first line of `text` that starts with `series `.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}
