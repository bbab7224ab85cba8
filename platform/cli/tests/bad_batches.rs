//! Broken record batches against a real `fjord server`: each is refused
//! with its Kafka error code (CORRUPT_MESSAGE for a bad CRC, INVALID_RECORD
//! with KIP-467 record errors otherwise) and leaves the partition readable
//! by librdkafka; a zstd bomb keeps the broker's memory bounded on produce,
//! and a bomb already on disk (as an older binary could have stored it)
//! does not hurt the readers that decode records.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::kafka::{consume_all, create_topic, raw_call};
use common::{Server, free_port};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;
/// What the broker may hold at most, bombs or not.
const RSS_BOUND: u64 = 512 << 20;

/// One v2 batch of `values` (keys `k<i>` when `keyed`), as a client writes it.
fn batch(values: &[&str], keyed: bool, compression: Compression) -> Vec<u8> {
    let now = 1_700_000_000_000;
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: now + i as i64,
            key: keyed.then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// Makes a hand-changed batch's length and CRC-32C right again: a batch
/// that only lies where the CRC cannot tell.
fn seal(mut b: Vec<u8>) -> Vec<u8> {
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn with_codec(mut b: Vec<u8>, codec: u8) -> Vec<u8> {
    b[22] = (b[22] & !7) | codec;
    seal(b)
}

/// 4 GiB of zeros as about 131 KB of zstd, in a batch claiming one record.
fn zstd_bomb() -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..4096 {
        encoder.write_all(&zeros).unwrap();
    }
    let body = encoder.finish().unwrap();
    let mut b = batch(&["x"], true, Compression::None);
    b.truncate(61);
    b.extend_from_slice(&body);
    with_codec(b, 4)
}

/// The broken batches of the issue, each with the code it must get.
fn broken() -> Vec<(&'static str, Vec<u8>, i16)> {
    let good = batch(&["a", "b"], true, Compression::None);
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x40;
    let mut million = batch(&["one"], true, Compression::None);
    million[23..27].copy_from_slice(&999_999i32.to_be_bytes());
    million[57..61].copy_from_slice(&1_000_000i32.to_be_bytes());
    // One record whose length varint says 2^40.
    let mut huge_length = batch(&["x"], true, Compression::None);
    huge_length.truncate(61);
    huge_length.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0, 0, 0]);
    let mut random_zstd = good.clone();
    random_zstd.truncate(61);
    random_zstd.extend((0..512u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8));
    vec![
        ("bad CRC", bad_crc, CORRUPT_MESSAGE),
        (
            "a million records claimed, one held",
            seal(million),
            INVALID_RECORD,
        ),
        ("record length 2^40", seal(huge_length), INVALID_RECORD),
        ("unknown codec 7", with_codec(good, 7), INVALID_RECORD),
        (
            "random bytes as zstd",
            with_codec(random_zstd, 4),
            INVALID_RECORD,
        ),
    ]
}

/// Produce v9 of `records` to partition 0 of `topic`; the partition's answer.
fn produce(addr: SocketAddr, topic: &str, records: Vec<u8>) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    let response: ProduceResponse =
        raw_call(addr, ApiKey::Produce, 9, &request, 30_000).expect("a produce answer");
    response.responses[0].partition_responses[0].clone()
}

/// The largest resident set the process has had (VmHWM), in bytes.
fn peak_rss(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kb * 1024
}

/// A server with topics `plain` (delete) and `keyed` (compact), and its
/// Kafka address.
fn server_with_topics(dir: &std::path::Path) -> (Server, SocketAddr) {
    let server = Server::start(dir, free_port(), None);
    let addr: SocketAddr = server.bootstrap.parse().unwrap();
    create_topic(&server.bootstrap, "plain", 1, 1, &[]).unwrap();
    let compact = [("cleanup.policy", "compact")];
    create_topic(&server.bootstrap, "keyed", 1, 1, &compact).unwrap();
    (server, addr)
}

fn alive(server: &mut Server) {
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the broker died"
    );
}

#[test]
fn broken_batches_get_their_codes_and_the_partition_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = server_with_topics(dir.path());

    for topic in ["plain", "keyed"] {
        for (what, records, code) in broken() {
            let answer = produce(addr, topic, records);
            assert_eq!(answer.error_code, code, "{topic}, {what}: {answer:?}");
            assert!(
                answer.error_message.is_some(),
                "{topic}, {what}: no message"
            );
        }
    }
    // The record at fault is named (KIP-467).
    let answer = produce(addr, "plain", broken().remove(2).1);
    let errors: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(errors, [0], "{answer:?}");
    // A compacted topic refuses keyless records, each by index.
    let answer = produce(addr, "keyed", batch(&["a", "b"], false, Compression::Lz4));
    assert_eq!(answer.error_code, INVALID_RECORD, "{answer:?}");
    let errors: Vec<i32> = answer.record_errors.iter().map(|e| e.batch_index).collect();
    assert_eq!(errors, [0, 1], "{answer:?}");
    // Good batches still go in (the codecs this librdkafka build reads;
    // it has no zstd: fjord-log's tests cover zstd).
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
    ];
    for (i, compression) in codecs.into_iter().enumerate() {
        let answer = produce(addr, "keyed", batch(&["good"], true, compression));
        assert_eq!(
            (answer.error_code, answer.base_offset),
            (0, i as i64),
            "{compression:?}"
        );
    }

    // librdkafka reads each partition to its end: nothing broken was stored.
    alive(&mut server);
    server.produce("plain", (0..20).map(|i| format!("after-{i}")));
    let plain = consume_all(&server.bootstrap, "plain", 0);
    let values: Vec<&str> = plain.iter().map(|(_, v)| v.as_str()).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("after-{i}")).collect();
    assert_eq!(values, expected);
    assert_eq!(consume_all(&server.bootstrap, "keyed", 0).len(), 4);
    // And kcat (the interop client CI installs): to the end, every record.
    for (topic, count) in [("plain", 20), ("keyed", 4)] {
        let out = std::process::Command::new("kcat")
            .args([
                "-b",
                &server.bootstrap,
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
            ])
            .args(["-e", "-q", "-f", "%o\\n"])
            .output()
            .expect("kcat runs (apt-get install kcat)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "kcat {topic}: {text}");
        assert_eq!(text.lines().count(), count, "kcat {topic}: {text}");
    }
}

#[test]
fn a_zstd_bomb_keeps_the_broker_small_on_normal_and_compacted_topics() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = server_with_topics(dir.path());
    let bomb = zstd_bomb();
    assert!(bomb.len() < 200_000, "bomb of {} bytes", bomb.len());
    for topic in ["plain", "keyed"] {
        for _ in 0..3 {
            let answer = produce(addr, topic, bomb.clone());
            assert_eq!(answer.error_code, INVALID_RECORD, "{topic}: {answer:?}");
            let message = answer
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_default();
            assert!(
                message.contains("message.max.decompressed.bytes"),
                "{message}"
            );
        }
    }
    alive(&mut server);
    let peak = peak_rss(&server);
    assert!(peak < RSS_BOUND, "broker peaked at {} MiB", peak >> 20);
    server.produce("plain", ["fine".to_string()]);
    assert_eq!(consume_all(&server.bootstrap, "plain", 0).len(), 1);
}

/// A bomb written into a segment before the validator existed (here by
/// the follower append, which trusts its leader): the console's records
/// view passes over it with an error naming the place and shows the records
/// after it, ListOffsets by time and the broker's memory stay bounded, and
/// the records after it stay readable by librdkafka.
#[test]
fn a_bomb_already_on_disk_is_refused_by_every_reader_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port, None);
    create_topic(&server.bootstrap, "old", 1, 1, &[]).unwrap();
    assert!(server.terminate(Duration::from_secs(20)), "clean stop");

    let log =
        fjord_log::Log::open(dir.path().join("old-0"), fjord_log::LogConfig::default()).unwrap();
    let mut bomb = zstd_bomb();
    log.append_as_follower(&mut bomb).unwrap();
    let mut after = batch(&["after"], true, Compression::None);
    after[..8].copy_from_slice(&1i64.to_be_bytes());
    log.append_as_follower(&mut after).unwrap();
    log.flush().unwrap();
    log.write_high_watermark(2).unwrap();
    log.checkpoint().unwrap();
    drop(log);

    let mut server = Server::start(dir.path(), port, None);
    let api = format!("http://{}/api/v1/topics/old/records", server.admin);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    for _ in 0..3 {
        let mut response = agent.get(&api).call().unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{body}");
        let view: serde_json::Value = serde_json::from_str(&body).unwrap();
        let records = view["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "the record after the bomb shows: {body}");
        assert_eq!(records[0]["offset"], 1);
        assert_eq!(records[0]["value"], "after");
        let skipped = view["skipped"].as_array().unwrap();
        assert_eq!(skipped.len(), 1, "{body}");
        assert_eq!(skipped[0]["partition"], 0);
        assert_eq!(skipped[0]["offset"], 0);
        assert_eq!(skipped[0]["next_offset"], 1);
        let error = skipped[0]["error"].as_str().unwrap();
        assert!(
            error.contains("old-0") && error.contains("offset 0") && error.contains("decompress"),
            "{error}"
        );
    }
    alive(&mut server);
    // ListOffsets by timestamp opens the batches it passes: an error for
    // the client, not a dead broker.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .create()
        .unwrap();
    let mut times = TopicPartitionList::new();
    times
        .add_partition_offset("old", 0, Offset::Offset(0))
        .unwrap();
    let _ = consumer.offsets_for_times(times, Duration::from_secs(10));
    alive(&mut server);
    // A pipeline over it (the crash loop of old: it read the bomb whole at
    // every start): its task fails on that batch with an error naming the
    // place, and the broker serves on within the bound.
    let manifests = tempfile::tempdir().unwrap();
    let file = manifests.path().join("copy-old.yaml");
    std::fs::write(&file, COPY_OLD).unwrap();
    // `deploy` waits for the revision to run: it fails, and says where.
    let (deployed, out) = server.fjord(&["pipeline", "deploy", file.to_str().unwrap()]);
    assert!(
        !deployed,
        "deploy exits non-zero for a failed pipeline: {out}"
    );
    assert!(out.contains("old-0") && out.contains("offset 0"), "{out}");
    let status = server.fjord_until(&["pipeline", "status", "copy-old"], "old-0");
    assert!(status.contains("offset 0"), "{status}");
    alive(&mut server);
    server.produce("plain", ["still serving".to_string()]);
    assert_eq!(consume_all(&server.bootstrap, "plain", 0).len(), 1);
    let peak = peak_rss(&server);
    assert!(peak < RSS_BOUND, "broker peaked at {} MiB", peak >> 20);
}

/// The bomb on disk in a compacted topic, in front of the log cleaner
/// (running every 100 ms): every pass over that log fails with an error
/// naming topic, partition and offset, and rewrites nothing; another
/// compacted topic is cleaned meanwhile; the broker's memory stays within
/// the bound.
#[test]
fn a_bomb_on_disk_fails_only_its_own_cleaning_pass() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("fjord.yaml");
    std::fs::write(&config, "log.cleaner.backoff.ms: 100\n").unwrap();
    let extra = ["--config".to_owned(), config.display().to_string()];
    let port = free_port();
    let server = Server::start_with(&data, port, &extra);
    let compact = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ];
    create_topic(&server.bootstrap, "old-compacted", 1, 1, &compact).unwrap();
    create_topic(&server.bootstrap, "fresh-compacted", 1, 1, &compact).unwrap();
    assert!(server.terminate(Duration::from_secs(20)), "clean stop");

    // As an older binary (or a leader, which followers trust) stored it:
    // the bomb, then 100 updates of one key over several segments.
    let log_config = fjord_log::LogConfig {
        segment_bytes: 1024,
        cleanup_policy: fjord_log::CleanupPolicy::Compact,
        ..fjord_log::LogConfig::default()
    };
    let log = fjord_log::Log::open(data.join("old-compacted-0"), log_config).unwrap();
    log.append_as_follower(&mut zstd_bomb()).unwrap();
    for i in 0..100 {
        let mut update = batch(&[&format!("v{i}")], true, Compression::None);
        update[..8].copy_from_slice(&log.log_end_offset().to_be_bytes());
        log.append_as_follower(&mut update).unwrap();
    }
    log.flush().unwrap();
    log.write_high_watermark(101).unwrap();
    log.checkpoint().unwrap();
    let segments = log.segment_count();
    assert!(segments > 3, "{segments} segments");
    drop(log);
    let old_dir = data.join("old-compacted-0");
    let files_before = segment_files(&old_dir);

    let server_log = dir.path().join("server.log");
    let admin = format!(
        "127.0.0.1:{}",
        std::iter::repeat_with(free_port)
            .find(|p| *p != port)
            .unwrap()
    );
    let mut server = Server::spawn(&data, port, &admin, &extra, Some(&server_log));
    let addr: SocketAddr = server.bootstrap.parse().unwrap();
    // 300 updates of 10 keys, in batches of 10.
    for round in 0..30 {
        let values: Vec<String> = (0..10).map(|i| format!("r{round}-{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let answer = produce(
            addr,
            "fresh-compacted",
            batch(&values, true, Compression::None),
        );
        assert_eq!(answer.error_code, 0, "{answer:?}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&server_log).unwrap_or_default();
        let failed = text.lines().any(|l| {
            l.contains("log cleaning failed")
                && l.contains("old-compacted")
                && l.contains("offset 0")
                && l.contains("message.max.decompressed.bytes")
        });
        let fresh = consume_all(&server.bootstrap, "fresh-compacted", 0).len();
        if failed && fresh < 150 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cleaner: failed on the bomb {failed}, fresh-compacted holds {fresh} of 300\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    alive(&mut server);
    assert_eq!(
        segment_files(&old_dir),
        files_before,
        "the log with the bomb is not rewritten"
    );
    let peak = peak_rss(&server);
    assert!(peak < RSS_BOUND, "broker peaked at {} MiB", peak >> 20);
}

/// The names and sizes of a log directory's segment files.
fn segment_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| {
            let size = e.metadata().unwrap().len();
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    files.sort();
    files
}

/// Copies the topic holding the stored bomb.
const COPY_OLD: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: copy-old}
spec:
  source: {topic: old, startFrom: earliest}
  sinks: [{topic: old.copy}]
";
