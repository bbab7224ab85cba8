//! Bounded memory against a real `fjord server` (issue 22): requests that
//! decode to far more than their bytes, and many connections each sending
//! most of a 100 MiB frame, keep the broker's resident memory under idle +
//! `queued.max.request.bytes` + 64 MiB (read from /proc), get the right
//! answer, and leave the broker serving a librdkafka client right after;
//! `fetch.max.bytes` bounds a Fetch whatever the client asks.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::kafka::{RawAnswer, create_topic, raw_call, raw_produce};
use common::{Server, free_port};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// `queued.max.request.bytes` of these servers: small, so the bound is
/// tight.
const QUEUED: u64 = 64 << 20;
/// What the broker may hold above idle: the budget and 64 MiB of slack.
const ABOVE_IDLE: u64 = QUEUED + (64 << 20);

/// A server with `queued.max.request.bytes` at [`QUEUED`] and `yaml`'s
/// other settings.
fn server(dir: &std::path::Path, yaml: &str) -> Server {
    let config = dir.join("fjord.yaml");
    std::fs::write(
        &config,
        format!("queued.max.request.bytes: {QUEUED}\n{yaml}"),
    )
    .unwrap();
    let extra = ["--config".to_owned(), config.display().to_string()];
    Server::start_with(&dir.join("data"), free_port(), &extra)
}

/// A field of /proc/PID/status, in bytes.
fn status_bytes(server: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/PID/status"));
    kb * 1024
}

/// The broker's resident memory once a client has produced and consumed
/// (so what a first client allocates is in it), with the peak (VmHWM)
/// reset to it.
fn idle_rss(server: &Server) -> u64 {
    round_trip(server, "warm-up");
    let rss = status_bytes(server, "VmRSS:");
    // "5" resets the peak resident set to the current one (Linux 4.0+).
    std::fs::write(format!("/proc/{}/clear_refs", server.child.id()), "5").unwrap();
    rss
}

/// Asserts the broker's peak since `idle_rss` stayed within the bound.
fn assert_peak_within_bound(server: &Server, idle: u64, what: &str) {
    let peak = status_bytes(server, "VmHWM:");
    eprintln!("{what}: peak {} MiB, idle {} MiB", peak >> 20, idle >> 20);
    assert!(
        peak <= idle + ABOVE_IDLE,
        "{what}: the broker peaked at {} MiB, idle {} MiB, bound idle + {} MiB",
        peak >> 20,
        idle >> 20,
        ABOVE_IDLE >> 20
    );
}

/// A librdkafka producer and consumer get ten records through `topic`.
fn round_trip(server: &Server, topic: &str) {
    let values: Vec<String> = (0..10).map(|i| format!("{topic}-{i}")).collect();
    server.produce(topic, values.clone());
    assert_eq!(
        server.consume(topic, values.len(), Duration::from_secs(30)),
        values
    );
}

/// A request frame (length prefix included) of `api` v`version` with
/// header v1 and `body` (already encoded).
fn frame(api: ApiKey, version: i16, body_len: usize, body: impl FnOnce(&mut BytesMut)) -> Bytes {
    let client = b"attacker";
    let mut frame = BytesMut::with_capacity(4 + 8 + 2 + client.len() + body_len);
    frame.put_i32(0);
    frame.put_i16(api as i16);
    frame.put_i16(version);
    frame.put_i32(7);
    frame.put_i16(client.len() as i16);
    frame.put_slice(client);
    body(&mut frame);
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    frame.freeze()
}

/// Sends `frame` on a new connection and waits for the broker to close it
/// without an answer.
fn sent_and_closed(addr: &str, frame: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(frame).unwrap();
    let mut answer = [0u8; 64];
    match stream.read(&mut answer) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("the broker answered {n} bytes instead of closing"),
        Err(e) => panic!("the broker neither answered nor closed: {e}"),
    }
}

/// A 40 MB Metadata v1 of 20 million empty topic names.
fn metadata_attack() -> Bytes {
    const TOPICS: usize = 20_000_000;
    frame(ApiKey::Metadata, 1, 4 + 2 * TOPICS, |f| {
        f.put_i32(TOPICS as i32);
        f.put_bytes(0, 2 * TOPICS);
    })
}

/// A 48 MB Produce v3 of one topic with six million partition entries.
fn produce_attack() -> Bytes {
    const PARTITIONS: usize = 6_000_000;
    frame(ApiKey::Produce, 3, 20 + 8 * PARTITIONS, |f| {
        f.put_i16(-1); // transactional id: null
        f.put_i16(1); // acks
        f.put_i32(30_000); // timeout
        f.put_i32(1); // one topic
        f.put_i16(1);
        f.put_slice(b"t");
        f.put_i32(PARTITIONS as i32);
        for index in 0..PARTITIONS {
            f.put_i32(index as i32);
            f.put_i32(-1); // records: null
        }
    })
}

/// The Metadata of 20 million empty topic names (~88 times its bytes once
/// decoded: an OOM kill before) closes its connection without decoding
/// them.
#[test]
fn a_metadata_request_of_twenty_million_empty_topics_closes_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), "");
    let idle = idle_rss(&server);
    sent_and_closed(&server.bootstrap, &metadata_attack());
    assert_peak_within_bound(&server, idle, "metadata of 20 million topics");
    round_trip(&server, "after-metadata");
}

/// The Produce of six million partition entries (1.3 GB decoded before)
/// closes its connection without decoding them.
#[test]
fn a_produce_of_six_million_partitions_closes_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), "");
    let idle = idle_rss(&server);
    sent_and_closed(&server.bootstrap, &produce_attack());
    assert_peak_within_bound(&server, idle, "produce of 6 million partitions");
    round_trip(&server, "after-produce");
}

/// Both attacks at once, from eight connections (about 350 MB of frames):
/// they share the budget, so the bound holds for the mix too.
#[test]
fn attacks_from_many_connections_at_once_share_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), "");
    let idle = idle_rss(&server);
    let (metadata, produce) = (metadata_attack(), produce_attack());
    std::thread::scope(|scope| {
        for i in 0..8 {
            let frame = if i % 2 == 0 { &metadata } else { &produce };
            let addr = &server.bootstrap;
            scope.spawn(move || sent_and_closed(addr, frame));
        }
    });
    assert_peak_within_bound(&server, idle, "eight attacks at once");
    round_trip(&server, "after-attacks");
}

/// Twelve connections each send 95 MB of a frame that declares 100 MiB
/// (1.2 GB held before). One frame larger than the budget is still read,
/// the others wait unread (their bytes stay in the kernel's socket
/// buffers), and the broker's memory stays bounded; once they are gone a
/// normal client is served.
#[test]
fn twelve_connections_sending_100_mib_frames_wait_for_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), "");
    let idle = idle_rss(&server);
    const DECLARED: usize = 100 << 20;
    const SENT: usize = 95_000_000;
    let sent: Vec<Arc<AtomicUsize>> = (0..12).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let mut streams = Vec::new();
    let mut senders = Vec::new();
    for counter in &sent {
        let mut stream = TcpStream::connect(&server.bootstrap).unwrap();
        streams.push(stream.try_clone().unwrap());
        let counter = Arc::clone(counter);
        senders.push(std::thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            if stream.write_all(&(DECLARED as i32).to_be_bytes()).is_err() {
                return;
            }
            while counter.load(Ordering::Relaxed) < SENT {
                let n = chunk.len().min(SENT - counter.load(Ordering::Relaxed));
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                counter.fetch_add(n, Ordering::Relaxed);
            }
            // Keep the frame open, unfinished, until the test shuts the
            // socket down.
            let _ = stream.read(&mut [0u8; 1]);
        }));
    }
    // Wait until the senders stop making progress.
    let total = || {
        sent.iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<usize>()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = usize::MAX;
    while total() != last {
        assert!(Instant::now() < deadline, "the senders never settled");
        last = total();
        std::thread::sleep(Duration::from_secs(3));
    }
    let finished = sent
        .iter()
        .filter(|c| c.load(Ordering::Relaxed) == SENT)
        .count();
    assert_eq!(
        finished,
        1,
        "connections whose 95 MB the broker took in (sent: {:?} MB)",
        sent.iter()
            .map(|c| c.load(Ordering::Relaxed) / 1_000_000)
            .collect::<Vec<_>>()
    );
    assert_peak_within_bound(&server, idle, "12 connections of 95 MB");
    for stream in &streams {
        let _ = stream.shutdown(Shutdown::Both);
    }
    for sender in senders {
        sender.join().unwrap();
    }
    round_trip(&server, "after-frames");
    assert_peak_within_bound(&server, idle, "12 connections of 95 MB, then a client");
}

/// Record batches in `records`.
fn batches(records: &Bytes) -> usize {
    let mut at = 0;
    let mut count = 0;
    while at + 12 <= records.len() {
        let length = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap());
        at += 12 + length as usize;
        count += 1;
    }
    count
}

/// The records a Fetch v4 from `offset` with `max_bytes` (and as much per
/// partition) gets.
fn fetch(addr: SocketAddr, offset: i64, max_bytes: i32) -> Bytes {
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("fetched")))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max_bytes),
                ]),
        ]);
    let response: FetchResponse = raw_call(addr, ApiKey::Fetch, 4, &request, 0).unwrap();
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0, "{partition:?}");
    partition.records.clone().unwrap_or_default()
}

/// A client's `max_bytes` above `fetch.max.bytes` gets at most
/// `fetch.max.bytes`, beyond a first batch that is larger (as Kafka).
#[test]
fn fetch_answers_stay_within_fetch_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), "fetch.max.bytes: 102400\n");
    create_topic(&server.bootstrap, "fetched", 1, 1, &[]).unwrap();
    let addr: SocketAddr = server.bootstrap.parse().unwrap();
    let produce = |value: &str| {
        let answer = raw_produce(addr, "fetched", 0, value, 1, 10_000);
        assert!(matches!(answer, RawAnswer::ErrorCode(0)), "{answer:?}");
    };
    // Offset 0: one batch larger than fetch.max.bytes; then ten of 30 KB.
    produce(&"x".repeat(150_000));
    for i in 0..10 {
        produce(&format!("{i}").repeat(30_000));
    }
    let first = fetch(addr, 0, 64 << 20);
    assert_eq!(batches(&first), 1, "{} bytes", first.len());
    assert!(first.len() > 150_000, "{} bytes", first.len());
    let rest = fetch(addr, 1, 64 << 20);
    assert!(rest.len() <= 102_400, "{} bytes", rest.len());
    assert_eq!(batches(&rest), 3, "{} bytes", rest.len());
    // Below fetch.max.bytes the client's own limit holds.
    assert_eq!(batches(&fetch(addr, 1, 50_000)), 1);
    round_trip(&server, "after-fetch");
}
