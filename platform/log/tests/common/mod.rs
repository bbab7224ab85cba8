//! Batches made by a real encoder (the `kafka-protocol` crate), shared by
//! the log's tests and benchmarks.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
pub mod txn;

use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record of a test batch.
pub fn record(key: Option<&[u8]>, value: &[u8], timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

/// Encodes `records` as one RecordBatch v2 with base offset 0, as a producer would.
pub fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut records = records.to_vec();
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
        // The encoder starts a new batch whenever `offset - sequence`
        // changes; this keeps one batch with base sequence -1 (no producer id).
        r.sequence = i as i32 - 1;
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.to_vec()
}

/// A batch of `count` records of `value_size` bytes, timestamps from `ts`.
pub fn batch(count: usize, value_size: usize, ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let key = format!("key-{i}");
            let value = vec![b'a' + (i % 26) as u8; value_size];
            record(Some(key.as_bytes()), &value, ts + i as i64)
        })
        .collect();
    encode(&records, compression)
}

/// Decodes every record of concatenated batches.
pub fn decode_all(bytes: &[u8]) -> Vec<Record> {
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode batches")
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}

/// The five codecs a producer may use.
pub const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A tiny seeded xorshift64* generator: reproducible randomness without a
/// new dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A batch whose records vary: null and present keys, headers (one with a
/// null value), values of different sizes, timestamps from `ts`. `seed`
/// makes the content differ between batches.
pub fn rich_batch(
    count: usize,
    value_size: usize,
    ts: i64,
    compression: Compression,
    seed: u64,
) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let key = (i % 3 != 0).then(|| format!("k{seed}-{i}").into_bytes());
            let len = value_size / 2 + rng.below(value_size as u64 / 2 + 1) as usize;
            let value: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let mut r = record(key.as_deref(), &value, ts + i as i64);
            if i % 2 == 0 {
                r.headers.insert(
                    StrBytes::from_string(format!("h{i}")),
                    Some(Bytes::from(format!("v{seed}"))),
                );
                r.headers.insert(StrBytes::from_string("null".into()), None);
            }
            r
        })
        .collect();
    encode(&records, compression)
}

/// A batch of one record per timestamp in `timestamps`.
pub fn batch_with_timestamps(timestamps: &[i64], compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| record(Some(format!("t{i}").as_bytes()), b"v", ts))
        .collect();
    encode(&records, compression)
}

/// What a record must keep through the log: offset, timestamp, key, value
/// and headers (the batch fields the log writes are left out).
pub type RecordView = (
    i64,
    i64,
    Option<Bytes>,
    Option<Bytes>,
    Vec<(String, Option<Bytes>)>,
);

pub fn view(r: &Record) -> RecordView {
    (
        r.offset,
        r.timestamp,
        r.key.clone(),
        r.value.clone(),
        r.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Decodes `produced` (one batch, base offset 0) as the records the log must
/// serve once it assigned `base_offset`.
pub fn expected_views(produced: &[u8], base_offset: i64) -> Vec<RecordView> {
    decode_all(produced)
        .iter()
        .map(|r| {
            let mut v = view(r);
            v.0 += base_offset;
            v
        })
        .collect()
}

/// Checks each stored batch of `bytes` against its CRC-32C and returns the
/// (base offset, last offset) of each.
pub fn check_batches(bytes: &[u8]) -> Vec<(i64, i64)> {
    fjord_log::validated_batches(bytes)
        .map(|b| {
            let (h, _) = b.expect("served batch must be valid");
            (h.base_offset, h.last_offset())
        })
        .collect()
}

/// Reads the whole log from its start by walking offsets with `max_bytes`,
/// checking every served batch's CRC, and returns the records.
pub fn read_all(log: &fjord_log::Log, max_bytes: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, max_bytes, i64::MAX).expect("read");
        let bytes = read.slice.expect("data below the log end").bytes().unwrap();
        let ranges = check_batches(&bytes);
        assert!(
            ranges[0].0 <= offset && offset <= ranges[0].1,
            "first batch {:?} does not hold offset {offset}",
            ranges[0]
        );
        out.extend(
            decode_all(&bytes)
                .into_iter()
                .filter(|r| r.offset >= offset),
        );
        offset = ranges.last().unwrap().1 + 1;
    }
    out
}

/// Copies the files of a (flat) log directory into a new temporary directory.
pub fn copy_dir(from: &std::path::Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
    }
    to
}

/// Every file of a log directory with its content, sorted by name.
pub fn dir_snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The `.log` files of a directory, oldest segment first.
pub fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// A batch of one record of `value_size` bytes per timestamp in `timestamps`.
pub fn sized_batch_with_timestamps(
    timestamps: &[i64],
    value_size: usize,
    compression: Compression,
) -> Vec<u8> {
    let value = vec![b'x'; value_size];
    let records: Vec<Record> = timestamps
        .iter()
        .enumerate()
        .map(|(i, &ts)| record(Some(format!("t{i}").as_bytes()), &value, ts))
        .collect();
    encode(&records, compression)
}

/// The log as a model: every batch as (base offset, record timestamps).
pub type TsModel = Vec<(i64, Vec<i64>)>;

/// (offset, timestamp) of every record of the model from `start`.
pub fn model_records(model: &TsModel, start: i64) -> Vec<(i64, i64)> {
    model
        .iter()
        .flat_map(|(base, ts)| {
            ts.iter()
                .enumerate()
                .map(move |(i, &t)| (base + i as i64, t))
        })
        .filter(|&(o, _)| o >= start)
        .collect()
}

/// (offset, timestamp) of every record the log serves.
pub fn log_records(log: &fjord_log::Log) -> Vec<(i64, i64)> {
    read_all(log, 1_000)
        .iter()
        .map(|r| (r.offset, r.timestamp))
        .collect()
}

/// Checks ListOffsets by time against a linear scan of the model from the
/// log start: every timestamp present, one past each, and MAX_TIMESTAMP.
pub fn check_time_lookups(log: &fjord_log::Log, model: &TsModel, ctx: &str) {
    let records = model_records(model, log.log_start_offset());
    let mut targets: Vec<i64> = records.iter().flat_map(|&(_, t)| [t, t + 1]).collect();
    targets.push(0);
    for t in targets {
        let got = log
            .offset_for_timestamp(t)
            .unwrap()
            .map(|f| (f.offset, f.timestamp));
        let want = records.iter().copied().find(|&(_, ts)| ts >= t);
        assert_eq!(got, want, "{ctx}: timestamp {t}");
    }
    let got = log
        .offset_for_timestamp(fjord_log::MAX_TIMESTAMP)
        .unwrap()
        .map(|f| (f.offset, f.timestamp));
    let want = records
        .iter()
        .map(|&(_, t)| t)
        .max()
        .and_then(|max| records.iter().copied().find(|&(_, t)| t == max));
    assert_eq!(got, want, "{ctx}: MAX_TIMESTAMP");
}

/// Recomputes the CRC-32C of the one batch in `bytes` (after a test
/// changed it), so that what is tried is the parser, not the CRC check.
pub fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() < fjord_log::HEADER_LEN {
        return;
    }
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Appends `value` as a zigzag varint (Kafka's record fields).
pub fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One record in the v2 format, written by hand so that tests can break it.
pub fn raw_record(
    offset_delta: i64,
    ts_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = vec![0u8]; // attributes
    put_varint(&mut body, ts_delta);
    put_varint(&mut body, offset_delta);
    for field in [key, value] {
        match field {
            Some(f) => {
                put_varint(&mut body, f.len() as i64);
                body.extend_from_slice(f);
            }
            None => put_varint(&mut body, -1),
        }
    }
    put_varint(&mut body, 0); // no headers
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// The fields of a hand-made batch header.
#[derive(Debug, Clone, Copy)]
pub struct RawHeader {
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub records_count: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl RawHeader {
    /// A header for `count` records with CreateTime `ts`, codec `codec`.
    pub fn new(count: i32, codec: i16, ts: i64) -> Self {
        RawHeader {
            attributes: codec,
            last_offset_delta: count - 1,
            records_count: count,
            base_timestamp: ts,
            max_timestamp: ts,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
        }
    }
}

/// A whole batch around `body` (the records section as sent, compressed or
/// not), with a correct CRC-32C: what a producer that lies would send.
pub fn raw_batch(h: RawHeader, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(61 + body.len());
    out.extend_from_slice(&0i64.to_be_bytes()); // base offset
    out.extend_from_slice(&((49 + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    out.push(2); // magic
    out.extend_from_slice(&[0; 4]); // crc
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&h.max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&h.records_count.to_be_bytes());
    out.extend_from_slice(body);
    fix_crc(&mut out);
    out
}

/// Compresses `raw` with Kafka codec `codec` using the codec crates.
pub fn compress(codec: i16, raw: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        0 => raw.to_vec(),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        }
        2 => snap::raw::Encoder::new().compress_vec(raw).unwrap(),
        3 => {
            let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
            e.write_all(raw).unwrap();
            let (out, result) = e.finish();
            result.unwrap();
            out
        }
        4 => zstd::stream::encode_all(raw, 1).unwrap(),
        c => panic!("codec {c}"),
    }
}
