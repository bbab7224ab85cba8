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
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

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
