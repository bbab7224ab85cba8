//! What TLS costs: produce and consume throughput over an SSL listener
//! against a PLAINTEXT one of the same broker, in the same run.
//!
//! One broker (in this process) with both listeners; per run, for each
//! listener in alternating order, librdkafka produces RECORDS records of
//! 100 bytes (acks=1, one partition, the settings of `fjord bench
//! produce`) to a fresh topic, then consumes them from the beginning to
//! the end (the settings of `fjord bench consume`). Prints each run, the
//! medians, and the median of the per-run ratios SSL/PLAINTEXT.
//!
//! ```sh
//! cargo run --release -p fjord-broker --example tls_bench -- [RUNS (5)] [RECORDS (1000000)]
//! ```
//!
//! Certificates are made at start (rcgen, ECDSA P-256 as rcgen's default).

use std::time::{Duration, Instant};

use fjord_broker::{Broker, BrokerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let records: usize = args.next().map_or(Ok(1_000_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let (keystore, ca) = certificates(dir.path())?;
    let mut config = BrokerConfig::ephemeral(dir.path().join("data"));
    config.listeners = Some(vec![
        "PLAINTEXT://127.0.0.1:0".into(),
        "SSL://127.0.0.1:0".into(),
    ]);
    config.ssl_keystore_location = Some(keystore);
    let runtime = tokio::runtime::Runtime::new()?;
    let broker = runtime.block_on(Broker::start(config))?;
    let plain = broker.listener_addr("PLAINTEXT").ok_or("no PLAINTEXT")?;
    let ssl = broker.listener_addr("SSL").ok_or("no SSL")?;
    let client = |tls: bool| {
        let mut c = ClientConfig::new();
        if tls {
            c.set("bootstrap.servers", ssl.to_string())
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.display().to_string());
        } else {
            c.set("bootstrap.servers", plain.to_string());
        }
        c
    };
    println!("{records} records of 100 bytes, acks=1, one partition; {runs} runs");
    let mut figures: [Vec<f64>; 4] = Default::default(); // produce plain, ssl; consume plain, ssl
    for run in 0..runs {
        let order = if run % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for tls in order {
            let topic = format!("bench-{}-{run}", if tls { "ssl" } else { "plain" });
            let produced = produce(&client(tls), &topic, records)?;
            let consumed = consume(&client(tls), &topic, records)?;
            let i = usize::from(tls);
            figures[i].push(produced);
            figures[2 + i].push(consumed);
        }
        println!(
            "run {}: produce plain {:.0} ssl {:.0} records/s; consume plain {:.0} ssl {:.0} records/s",
            run + 1,
            figures[0][run],
            figures[1][run],
            figures[2][run],
            figures[3][run]
        );
    }
    for (what, plain, ssl) in [
        ("produce", &figures[0], &figures[1]),
        ("consume", &figures[2], &figures[3]),
    ] {
        let ratios: Vec<f64> = ssl.iter().zip(plain).map(|(s, p)| s / p).collect();
        println!(
            "{what}: median plain {:.0} records/s, ssl {:.0} records/s; median ssl/plain {:.3} (min {:.3}, max {:.3})",
            median(plain),
            median(ssl),
            median(&ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        );
    }
    runtime.block_on(broker.shutdown())?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Records per second of producing `records` records to `topic`.
fn produce(client: &ClientConfig, topic: &str, records: usize) -> Result<f64, Error> {
    let producer: ThreadedProducer<DefaultProducerContext> = client
        .clone()
        .set("acks", "1")
        .set("batch.size", "1000000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create()?;
    // The topic exists and the connection is up before the clock starts.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let payload = [b'x'; 100];
    let started = Instant::now();
    for _ in 0..records {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// Records per second of reading `records` records of `topic` from the
/// beginning.
fn consume(client: &ClientConfig, topic: &str, records: usize) -> Result<f64, Error> {
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", "tls-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "52428800")
        .set("queued.max.messages.kbytes", "1048576")
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "1")
        .create()?;
    consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let mut seen = 0;
    while seen < records {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => seen += 1,
            Some(Err(e)) => return Err(e.into()),
            None => return Err(format!("no record for 10 s after {seen}").into()),
        }
    }
    Ok(records as f64 / started.elapsed().as_secs_f64())
}

/// A CA and a keystore for 127.0.0.1 signed by it: (keystore, CA) paths.
fn certificates(dir: &std::path::Path) -> Result<(std::path::PathBuf, std::path::PathBuf), Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "bench-ca");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["127.0.0.1".into()])?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server.signed_by(&key, &ca, &ca_key)?;
    let (keystore, ca_path) = (dir.join("broker.pem"), dir.join("ca.pem"));
    std::fs::write(
        &keystore,
        format!("{}{}", server.pem(), key.serialize_pem()),
    )?;
    std::fs::write(&ca_path, ca.pem())?;
    Ok((keystore, ca_path))
}
