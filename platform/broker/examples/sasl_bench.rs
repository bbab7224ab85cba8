//! What SASL costs: a reconnect storm of SCRAM logins, and librdkafka
//! produce throughput on an authenticated connection against an anonymous
//! one, in the same run, against an in-process broker (the client and the
//! broker share the machine). Run it on a release build:
//!
//! ```sh
//! cargo run --release -p fjord-broker --example sasl_bench -- [logins] [records]
//! ```
//!
//! Prints one line per measurement; docs/benchmarks.md has the figures.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark program: a failed setup panics with its location"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use fjord_broker::scram::{ScramClient, ScramMechanism};
use fjord_broker::{Broker, BrokerConfig, Password};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const USER: &str = "bench";
const PASSWORD: &str = "bench-password";

fn call<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("sasl-bench")))
        .encode(&mut frame, key.request_header_version(version))
        .unwrap();
    request.encode(&mut frame, version).unwrap();
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    stream.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
    Resp::decode(&mut body, version).unwrap()
}

/// One connection: open, SCRAM login, close.
fn login(addr: SocketAddr, mechanism: ScramMechanism) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let h: SaslHandshakeResponse = call(
        &mut stream,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(mechanism.name())),
    );
    assert_eq!(h.error_code, 0);
    let (mut client, first) = ScramClient::new(mechanism, USER, PASSWORD).unwrap();
    let mut step = |token: Vec<u8>| -> Bytes {
        let a: SaslAuthenticateResponse = call(
            &mut stream,
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
        );
        assert_eq!(a.error_code, 0, "{:?}", a.error_message);
        a.auth_bytes
    };
    let server_first = step(first);
    let server_final = step(client.finish(&server_first).unwrap());
    client.verify(&server_final).unwrap();
}

fn storm(addr: SocketAddr, mechanism: ScramMechanism, logins: u64, clients: u64) {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < logins {
                    login(addr, mechanism);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    println!(
        "storm: {logins} {} logins (8192 iterations), {clients} clients: {:.2} s, {:.0} logins/s",
        mechanism.name(),
        elapsed.as_secs_f64(),
        logins as f64 / elapsed.as_secs_f64()
    );
}

/// Records/s of one librdkafka producer (100-byte values, acks=1).
fn produce(addr: SocketAddr, topic: &str, records: u64, sasl: Option<&str>) -> f64 {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr.to_string())
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000");
    if let Some(mechanism) = sasl {
        config
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", USER)
            .set("sasl.password", PASSWORD);
    }
    let producer: BaseProducer = config.create().unwrap();
    let value = vec![b'x'; 100];
    let started = Instant::now();
    for _ in 0..records {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    records as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let logins: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let records: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime
        .block_on(Broker::start(BrokerConfig {
            sasl_admin_user: Some(USER.into()),
            sasl_admin_password: Some(Password::new(PASSWORD)),
            ..BrokerConfig::ephemeral(dir.path())
        }))
        .unwrap();
    let addr = broker.local_addr();
    // The admin user's credentials have 8192 iterations; the storm's user
    // is the same one, which is what a client fleet logging in as one
    // service account looks like.
    for mechanism in [ScramMechanism::Sha512, ScramMechanism::Sha256] {
        storm(addr, mechanism, logins, 8);
    }
    // Alternate, so drift (page cache, CPU frequency) hits both alike.
    let (mut anonymous, mut authenticated) = (Vec::new(), Vec::new());
    for round in 0..3 {
        anonymous.push(produce(addr, &format!("anon-{round}"), records, None));
        authenticated.push(produce(
            addr,
            &format!("scram-{round}"),
            records,
            Some("SCRAM-SHA-512"),
        ));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, s) = (median(&mut anonymous), median(&mut authenticated));
    println!(
        "produce ({records} x 100 B, acks=1, median of 3): anonymous {a:.0} rec/s, \
         SCRAM-SHA-512 {s:.0} rec/s, ratio {:.3}",
        s / a
    );
    runtime.block_on(broker.shutdown()).unwrap();
}
