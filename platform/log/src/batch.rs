//! The RecordBatch v2 header: parsing, validation and the two fields the
//! log writes into a batch (base offset and partition leader epoch).
//!
//! The read path never decodes records: it serves whole batches as stored.
//! An append looks at the 61-byte header and checks the CRC-32C that covers
//! everything from `attributes` to the end; a producer's batch is then
//! checked record by record by the validator (`validate.rs`), and the bytes
//! are stored as the client sent them.
//! Base offset and leader epoch sit before the CRC-covered region, so the
//! log patches them in place without recomputing anything.
//!
//! Batches Fjord writes itself are made here too: [`BatchBuilder`] for a
//! batch of new records (committed offsets, pipeline outputs) and
//! [`BatchHeader::write`] for a header around records already encoded (the
//! cleaner's rewrites), so no other code lays out header fields or CRCs.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::LogError;

/// Bytes before `batchLength`'s payload: base offset (8) and the length (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed RecordBatch v2 header, up to and including `recordsCount`.
pub const HEADER_LEN: usize = 61;
/// The only record format the log stores.
pub const MAGIC_V2: i8 = 2;

const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORDS_COUNT: usize = 57;

/// The decoded fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the length field; the whole batch is `LOG_OVERHEAD + batch_length`.
    pub batch_length: i32,
    /// Leader epoch stamped by the leader that appended the batch.
    pub partition_leader_epoch: i32,
    /// Record format; always 2 for a valid batch.
    pub magic: i8,
    /// CRC-32C from `attributes` to the end of the batch.
    pub crc: u32,
    /// Bits 0–2 codec, 3 timestamp type, 4 transactional, 5 control.
    pub attributes: i16,
    /// `last offset - base offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 when none.
    pub producer_id: i64,
    /// Producer epoch, -1 when none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 when none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header at the start of `buf` without checking the
    /// CRC. Fails when `buf` is shorter than a header or the header's own
    /// fields are impossible (magic, length).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, LogError> {
        if buf.len() < HEADER_LEN {
            return Err(LogError::corrupt(format!(
                "{} bytes is shorter than a batch header ({HEADER_LEN})",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: i64_at(buf, 0),
            batch_length: i32_at(buf, 8),
            partition_leader_epoch: i32_at(buf, PARTITION_LEADER_EPOCH),
            magic: buf[MAGIC] as i8,
            crc: u32::from_be_bytes(array_at(buf, CRC)),
            attributes: i16::from_be_bytes(array_at(buf, ATTRIBUTES)),
            last_offset_delta: i32_at(buf, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(buf, BASE_TIMESTAMP),
            max_timestamp: i64_at(buf, MAX_TIMESTAMP),
            producer_id: i64_at(buf, PRODUCER_ID),
            producer_epoch: i16::from_be_bytes(array_at(buf, PRODUCER_EPOCH)),
            base_sequence: i32_at(buf, BASE_SEQUENCE),
            records_count: i32_at(buf, RECORDS_COUNT),
        };
        if header.magic != MAGIC_V2 {
            return Err(LogError::corrupt(format!(
                "magic {} (only RecordBatch v2 is stored)",
                header.magic
            )));
        }
        if (header.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(LogError::corrupt(format!(
                "batch length {} is shorter than a header",
                header.batch_length
            )));
        }
        if header.last_offset_delta < 0 || header.records_count < 0 {
            return Err(LogError::corrupt(format!(
                "negative last offset delta {} or record count {}",
                header.last_offset_delta, header.records_count
            )));
        }
        Ok(header)
    }

    /// Size of the whole batch in bytes, header included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Offset after this batch: where the next batch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn codec(&self) -> i16 {
        self.attributes & 0x7
    }

    /// Whether this is a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Appends to `out` a batch with this header's fields and `records`, the
    /// records section as the attributes say it is (compressed or not).
    /// `magic` is written as 2, and `batch_length` and `crc` are computed
    /// from what is written: the header's own values of those are ignored.
    pub(crate) fn write(&self, records: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let batch_length = (HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
        out.reserve(HEADER_LEN + records.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.extend_from_slice(&MAGIC_V2.to_be_bytes());
        // The CRC, filled in once what it covers is written.
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&self.last_offset_delta.to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.records_count.to_be_bytes());
        out.extend_from_slice(records);
        let crc = crc32c::crc32c(&out[start + ATTRIBUTES..]);
        out[start + CRC..start + CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Builds one uncompressed RecordBatch v2 of new records, the way Fjord
/// writes batches of its own (committed offsets, pipeline outputs): offsets
/// from 0 in push order (the append gives the batch its base offset),
/// CreateTime timestamps, no producer id and no leader epoch. The records
/// are encoded by the `kafka-protocol` crate, as clients encode them.
///
/// ```
/// # use bytes::Bytes;
/// # use fjord_log::{BatchBuilder, DecodeLimits, decode_batch};
/// let mut builder = BatchBuilder::new();
/// builder.push(1_700_000_000_000, Some(Bytes::from("k")), Some(Bytes::from("v")));
/// builder.push(1_700_000_000_001, Some(Bytes::from("k")), None);
/// let batch = builder.build().unwrap();
/// let decoded = decode_batch(&batch, DecodeLimits::default()).unwrap();
/// assert_eq!(decoded.len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct BatchBuilder {
    records: Vec<kafka_protocol::records::Record>,
    /// Set by [`BatchBuilder::producer`]: the batch of an idempotent or
    /// transactional producer.
    producer: Option<Producer>,
}

/// The producer fields of a batch (id, epoch, base sequence, transactional).
#[derive(Debug, Clone, Copy)]
struct Producer {
    id: i64,
    epoch: i16,
    base_sequence: i32,
    transactional: bool,
}

impl BatchBuilder {
    /// A builder with no record.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        BatchBuilder {
            records: Vec::with_capacity(records),
            producer: None,
        }
    }

    /// Makes the batch a producer's: `id`/`epoch`, the first record's
    /// sequence `base_sequence` (the next ones follow) and, with
    /// `transactional`, part of that producer's open transaction.
    pub fn producer(
        &mut self,
        id: i64,
        epoch: i16,
        base_sequence: i32,
        transactional: bool,
    ) -> &mut Self {
        self.producer = Some(Producer {
            id,
            epoch,
            base_sequence,
            transactional,
        });
        self
    }

    /// Adds a record without headers; `value` `None` is a tombstone.
    pub fn push(&mut self, timestamp: i64, key: Option<Bytes>, value: Option<Bytes>) -> &mut Self {
        self.push_with_headers(timestamp, key, value, [])
    }

    /// Adds a record with `headers` (name, value), in order. A name given
    /// twice keeps its first place and its last value: `kafka-protocol`
    /// holds a record's headers in a map.
    pub fn push_with_headers(
        &mut self,
        timestamp: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: impl IntoIterator<Item = (String, Option<Bytes>)>,
    ) -> &mut Self {
        let offset = self.records.len() as i64;
        self.records.push(kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder starts a new batch wherever offset - sequence
            // changes: equal ones keep all records in one batch (whose
            // base sequence is then 0, unchecked without a producer id).
            sequence: offset as i32,
            timestamp,
            key,
            value,
            headers: headers
                .into_iter()
                .map(|(name, value)| (StrBytes::from_string(name), value))
                .collect(),
        });
        self
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The batch; no bytes at all when no record was pushed.
    pub fn build(&self) -> Result<Vec<u8>, LogError> {
        // Room for the whole batch up front: the encoder then writes it
        // without growing the buffer (each growth is a copy of all so far).
        let mut buf = BytesMut::with_capacity(self.encoded_size_estimate());
        let owned;
        let records = match self.producer {
            None => &self.records,
            Some(p) => {
                // offset - sequence stays the same for all records, so the
                // encoder still makes one batch, of base sequence p's.
                owned = self
                    .records
                    .iter()
                    .map(|r| kafka_protocol::records::Record {
                        producer_id: p.id,
                        producer_epoch: p.epoch,
                        transactional: p.transactional,
                        sequence: p.base_sequence.wrapping_add(r.offset as i32),
                        ..r.clone()
                    })
                    .collect::<Vec<_>>();
                &owned
            }
        };
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: MAGIC_V2,
                compression: Compression::None,
            },
        )
        .map_err(|e| LogError::invalid(format!("cannot encode the batch: {e}")))?;
        // The buffer is not shared: this takes it over without a copy.
        Ok(Vec::from(buf))
    }

    /// An upper bound of the encoded size: the batch header, and per
    /// record its bytes with every varint at its longest (5 bytes for an
    /// `i32`, 10 for an `i64`).
    fn encoded_size_estimate(&self) -> usize {
        const BATCH_HEADER: usize = 61;
        const RECORD_OVERHEAD: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        BATCH_HEADER
            + self
                .records
                .iter()
                .map(|r| {
                    RECORD_OVERHEAD
                        + len(&r.key)
                        + len(&r.value)
                        + r.headers
                            .iter()
                            .map(|(name, value)| 10 + name.len() + len(value))
                            .sum::<usize>()
                })
                .sum::<usize>()
    }
}

/// Parses the header at the start of `buf` and checks that the whole batch
/// is present and that its CRC-32C matches. Returns the header; the batch is
/// `&buf[..header.size()]`.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, LogError> {
    let header = BatchHeader::parse(buf)?;
    let size = header.size();
    if buf.len() < size {
        return Err(LogError::corrupt(format!(
            "batch at offset {} claims {size} bytes but only {} are present",
            header.base_offset,
            buf.len()
        )));
    }
    let actual = crc32c::crc32c(&buf[ATTRIBUTES..size]);
    if actual != header.crc {
        return Err(LogError::corrupt(format!(
            "CRC mismatch in batch at offset {}: stored {:#010x}, computed {actual:#010x}",
            header.base_offset, header.crc
        )));
    }
    Ok(header)
}

/// Writes the base offset into the batch that starts at `batch[0]`.
/// The CRC does not cover it, so the batch stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the max timestamp into the batch that starts at `batch[0]` and
/// recomputes its CRC-32C, which covers it (rare: only for a producer
/// whose max timestamp is not its records' largest).
pub fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64) {
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets the LogAppendTime timestamp-type bit of the batch that starts at
/// `batch[0]` and its max timestamp to `append_time`, then rewrites the
/// CRC: every record of the batch then reads as `append_time`.
pub fn set_log_append_time(batch: &mut [u8], append_time: i64) {
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES], batch[ATTRIBUTES + 1]]) | 0x08;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    set_max_timestamp(batch, append_time);
}

/// Writes the partition leader epoch into the batch that starts at
/// `batch[0]`. The CRC does not cover it.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Walks concatenated batches, validating each one. Yields the header and
/// the batch's byte range inside the buffer.
pub fn validated_batches(
    buf: &[u8],
) -> impl Iterator<Item = Result<(BatchHeader, std::ops::Range<usize>), LogError>> + '_ {
    let mut pos = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        match validate(&buf[pos..]) {
            Ok(header) => {
                let range = pos..pos + header.size();
                pos = range.end;
                Some(Ok((header, range)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

fn array_at<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

fn i64_at(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(array_at(buf, at))
}

fn i32_at(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(array_at(buf, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Record, RecordBatchDecoder};
    use proptest::prelude::*;

    fn batch(compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..3)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: -1,
                timestamp: 1_700_000_000_000 + i,
                key: Some(bytes::Bytes::from(format!("key-{i}"))),
                value: Some(bytes::Bytes::from(format!("value {i} value {i} value {i}"))),
                headers: [(
                    kafka_protocol::protocol::StrBytes::from_static_str("h"),
                    Some(bytes::Bytes::from_static(b"v")),
                )]
                .into_iter()
                .collect(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    /// A record as the tests give it: timestamp, key, value, headers.
    type TestRecord = (
        i64,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Option<Vec<u8>>)>,
    );

    /// What `BatchBuilder` replaced in the offsets topic and the pipeline
    /// runtime: `kafka-protocol`'s encoder fed by hand.
    fn hand_encoded(records: &[TestRecord]) -> Vec<u8> {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (timestamp, key, value, headers))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: *timestamp,
                key: key.clone().map(Bytes::from),
                value: value.clone().map(Bytes::from),
                headers: headers
                    .iter()
                    .map(|(n, v)| (StrBytes::from_string(n.clone()), v.clone().map(Bytes::from)))
                    .collect(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    fn built(records: &[TestRecord]) -> Vec<u8> {
        let mut builder = BatchBuilder::with_capacity(records.len());
        for (timestamp, key, value, headers) in records {
            builder.push_with_headers(
                *timestamp,
                key.clone().map(Bytes::from),
                value.clone().map(Bytes::from),
                headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone().map(Bytes::from))),
            );
        }
        assert_eq!(builder.len(), records.len());
        builder.build().unwrap()
    }

    /// The records of `batch` as the log's decoder reads them, with their
    /// offsets.
    fn decoded(batch: &[u8]) -> Vec<(i64, TestRecord)> {
        let decoded = crate::decode_batch(batch, crate::DecodeLimits::default()).unwrap();
        decoded
            .records()
            .map(|r| {
                let headers = r
                    .headers()
                    .map(|(n, v)| {
                        (
                            String::from_utf8(n.to_vec()).unwrap(),
                            v.map(<[u8]>::to_vec),
                        )
                    })
                    .collect();
                let fields = (
                    r.timestamp,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    headers,
                );
                (r.offset, fields)
            })
            .collect()
    }

    #[test]
    fn the_builder_writes_the_bytes_of_the_hand_fed_encoder() {
        let bytes = |s: &str| Some(s.as_bytes().to_vec());
        let records: Vec<TestRecord> = vec![
            (1_700_000_000_005, bytes("a"), bytes("one"), vec![]),
            (
                1_700_000_000_001,
                bytes("b"),
                None,
                vec![("h".to_string(), bytes("v"))],
            ),
            (
                1_700_000_000_003,
                None,
                bytes("three"),
                vec![("n".to_string(), None)],
            ),
        ];
        let batch = built(&records);
        assert_eq!(batch, hand_encoded(&records));

        let header = validate(&batch).unwrap();
        assert_eq!(header.size(), batch.len());
        assert_eq!(
            (
                header.base_offset,
                header.last_offset_delta,
                header.records_count
            ),
            (0, 2, 3)
        );
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (-1, -1, 0)
        );
        assert_eq!((header.partition_leader_epoch, header.attributes), (-1, 0));
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (1_700_000_000_001, 1_700_000_000_005)
        );
        let offsets: Vec<i64> = decoded(&batch).iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, [0, 1, 2]);
        let records_back: Vec<TestRecord> = decoded(&batch).into_iter().map(|(_, r)| r).collect();
        assert_eq!(records_back, records);
    }

    #[test]
    fn an_empty_builder_builds_nothing() {
        let builder = BatchBuilder::new();
        assert!(builder.is_empty());
        assert_eq!(builder.build().unwrap(), Vec::<u8>::new());
    }

    /// The cleaner rewrites batches through `BatchHeader::write`: around
    /// the records section of an encoded batch, with the header parsed from
    /// it, it must give back the encoder's bytes, whatever the codec.
    #[test]
    fn writing_parsed_headers_gives_back_the_batches() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            // Three batches of one record (the records' sequences differ).
            let encoded = batch(compression);
            let mut out = vec![0xAA];
            for parsed in validated_batches(&encoded) {
                let (header, range) = parsed.unwrap();
                header.write(&encoded[range.start + HEADER_LEN..range.end], &mut out);
            }
            assert_eq!(out[0], 0xAA, "{compression:?}: what was before is kept");
            assert_eq!(out[1..], encoded[..], "{compression:?}");
        }
    }

    fn any_header() -> impl Strategy<Value = BatchHeader> {
        let fields = (
            // Parsing refuses a negative offset delta or record count.
            (any::<i64>(), any::<i32>(), any::<i16>(), 0..=i32::MAX),
            (any::<i64>(), any::<i64>(), any::<i64>(), any::<i16>()),
            (any::<i32>(), 0..=i32::MAX),
        );
        fields.prop_map(
            |(
                (base_offset, epoch, attributes, delta),
                (base_ts, max_ts, pid, pepoch),
                (seq, count),
            )| {
                BatchHeader {
                    base_offset,
                    batch_length: 0,
                    partition_leader_epoch: epoch,
                    magic: MAGIC_V2,
                    crc: 0,
                    attributes,
                    last_offset_delta: delta,
                    base_timestamp: base_ts,
                    max_timestamp: max_ts,
                    producer_id: pid,
                    producer_epoch: pepoch,
                    base_sequence: seq,
                    records_count: count,
                }
            },
        )
    }

    fn any_record() -> impl Strategy<Value = TestRecord> {
        let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
        (
            0i64..4_000_000_000_000,
            bytes(),
            bytes(),
            // Distinct names: see `BatchBuilder::push_with_headers`.
            proptest::collection::btree_map(".{0,8}", bytes(), 0..3)
                .prop_map(|headers| headers.into_iter().collect()),
        )
    }

    proptest! {
        /// Any header written around any records section parses back to
        /// itself, with the length and CRC that make it a valid batch.
        #[test]
        fn a_written_header_validates_and_parses_back(
            header in any_header(),
            records in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut out = Vec::new();
            header.write(&records, &mut out);
            let parsed = validate(&out).unwrap();
            prop_assert_eq!(parsed.size(), out.len());
            prop_assert_eq!(BatchHeader { batch_length: 0, crc: 0, ..parsed }, header);
            prop_assert_eq!(&out[HEADER_LEN..], &records[..]);
        }

        /// Whatever records go into the builder, it writes the hand-fed
        /// encoder's bytes, and the log's decoder reads them back in order,
        /// offsets from 0.
        #[test]
        fn built_batches_decode_to_their_records(records in proptest::collection::vec(any_record(), 1..20)) {
            let batch = built(&records);
            prop_assert_eq!(&batch, &hand_encoded(&records));
            let back = decoded(&batch);
            let offsets: Vec<i64> = back.iter().map(|(o, _)| *o).collect();
            prop_assert_eq!(offsets, (0..records.len() as i64).collect::<Vec<_>>());
            let records_back: Vec<TestRecord> = back.into_iter().map(|(_, r)| r).collect();
            prop_assert_eq!(records_back, records);
        }
    }

    /// The fuzz target `record_batches` starts from one valid batch per
    /// codec (fuzz/seeds/record_batches); they must stay valid.
    /// `FJORD_WRITE_FUZZ_SEEDS=1 cargo test -p fjord-log fuzz_seeds` writes
    /// them again.
    #[test]
    fn fuzz_seeds_are_valid_batches() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/record_batches");
        let codecs = [
            ("none", Compression::None),
            ("gzip", Compression::Gzip),
            ("snappy", Compression::Snappy),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ];
        if std::env::var_os("FJORD_WRITE_FUZZ_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, codec) in codecs {
                std::fs::write(dir.join(name), batch(codec)).unwrap();
            }
        }
        for (name, _) in codecs {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let counted: i32 = validated_batches(&bytes)
                .map(|b| b.unwrap().0.records_count)
                .sum();
            assert_eq!(counted, 3, "{name}");
            let sets =
                RecordBatchDecoder::decode_all(&mut bytes::Bytes::from(bytes.clone())).unwrap();
            let decoded: usize = sets.iter().map(|s| s.records.len()).sum();
            assert_eq!(decoded, 3, "{name}");
        }
    }
}
