//! The validator of produced batches (Kafka's `LogValidator`): every batch
//! a producer appends is checked here once, whole, before anything is
//! written, so that what the log stores is what every consumer can read.
//!
//! Checked, in order: the header (magic, sizes) and the CRC-32C
//! (`CORRUPT_MESSAGE`: bytes damaged on the way, worth a retry); the size
//! against `max.message.bytes`; then the rules of a producer's batch
//! (`INVALID_RECORD`, not worth a retry): base offset 0, no control
//! batch (markers are the broker's), a transactional batch only with a
//! producer id, record count = last offset delta + 1; a known
//! codec whose records decompress, as a stream, to at most
//! `message.max.decompressed.bytes`; every record parsing inside the batch
//! with offset delta = its index and, on a compacted topic, a key; exactly
//! the claimed number of records. Timestamps (`INVALID_TIMESTAMP`): a
//! producer may never claim LogAppendTime; under CreateTime every record's
//! timestamp (but -1, none) must lie within
//! `[now - message.timestamp.before.max.ms, now + message.timestamp.after.max.ms]`;
//! each record at fault is named, and a timestamp among a batch's faults
//! makes the whole refusal INVALID_TIMESTAMP (Kafka's `processRecordErrors`);
//! and a max timestamp that is not the records' largest is corrected in
//! place, CRC included; under LogAppendTime the batch is stamped with the
//! broker's clock (attribute bit and max timestamp, CRC rewritten), as
//! Kafka's `LogValidator` does.

use std::cell::RefCell;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::codec::Decompressor;
use crate::error::RecordError;
use crate::records::parse_records;
use crate::{LogConfig, LogError, TimestampType};

thread_local! {
    /// One decompressor per thread, so the produce path keeps its liblz4
    /// context and buffer from batch to batch instead of creating them.
    static DECOMPRESSOR: RefCell<Decompressor> = RefCell::default();
}

/// Most records one refusal names. The bad records of a batch are bounded
/// only by the decompression cap (millions of 7-byte records), and each
/// named one costs a message here and in the answer; the rest are counted.
const MAX_RECORD_ERRORS: usize = 1000;

/// Attribute bits a producer may not set.
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Validates the batches of one producer append (concatenated, each whole)
/// with the rules of a log with `config`, correcting max timestamps in
/// place; calls `accept` with each batch's header. Fails on the first bad
/// batch: the append is refused whole.
///
/// ```
/// # use fjord_log::{LogConfig, validate_produced};
/// // Not a batch: refused, never a panic.
/// assert!(validate_produced(&mut [0u8; 70], &LogConfig::default(), |_| {}).is_err());
/// ```
pub fn validate_produced(
    buf: &mut [u8],
    config: &LogConfig,
    accept: impl FnMut(BatchHeader),
) -> Result<(), LogError> {
    validate_produced_at(buf, config, crate::log::now_ms(), accept)
}

/// [`validate_produced`] with the broker's clock reading `now` (ms since
/// the epoch): the time timestamps are checked against and LogAppendTime
/// stamps.
pub fn validate_produced_at(
    buf: &mut [u8],
    config: &LogConfig,
    now: i64,
    mut accept: impl FnMut(BatchHeader),
) -> Result<(), LogError> {
    let mut pos = 0;
    // Index of the batch's first record among the append's records.
    let mut first_index = 0i32;
    while pos < buf.len() {
        let header = batch::validate(&buf[pos..])?;
        let bytes = &mut buf[pos..pos + header.size()];
        check_header(&header, config, first_index)?;
        let max_timestamp = DECOMPRESSOR.with_borrow_mut(|decompressor| {
            check_records(&header, bytes, config, first_index, now, decompressor)
        })?;
        let mut header = header;
        let stamped = match config.timestamp_type {
            TimestampType::CreateTime => max_timestamp,
            TimestampType::LogAppendTime => now,
        };
        let type_bit = config.timestamp_type == TimestampType::LogAppendTime;
        if stamped != header.max_timestamp || type_bit {
            if type_bit {
                batch::set_log_append_time(bytes, stamped);
            } else {
                batch::set_max_timestamp(bytes, stamped);
            }
            header = batch::validate(bytes)?;
        }
        accept(header);
        first_index = first_index.saturating_add(header.records_count);
        pos += header.size();
    }
    if pos == 0 {
        return Err(LogError::invalid("no record batch in the append"));
    }
    Ok(())
}

/// The rules of a producer's batch that its header decides.
fn check_header(
    header: &BatchHeader,
    config: &LogConfig,
    first_index: i32,
) -> Result<(), LogError> {
    if header.size() > config.max_message_bytes {
        return Err(LogError::MessageTooLarge {
            size: header.size(),
            max: config.max_message_bytes,
        });
    }
    if header.base_offset != 0 {
        return Err(LogError::invalid(format!(
            "a produced batch must have base offset 0, not {}",
            header.base_offset
        )));
    }
    if header.attributes & CONTROL_BIT != 0 {
        return Err(LogError::invalid("clients may not produce control batches"));
    }
    // A transaction belongs to a producer id: its marker closes it by id.
    if header.attributes & TRANSACTIONAL_BIT != 0 && header.producer_id < 0 {
        return Err(LogError::invalid(
            "a transactional batch needs a producer id",
        ));
    }
    if header.attributes & TIMESTAMP_TYPE_BIT != 0 {
        // Kafka's LogValidator names every record of such a batch.
        let message = "a producer may not set the timestamp type to LogAppendTime";
        let count = usize::try_from(header.records_count).unwrap_or(0);
        return Err(LogError::InvalidTimestamp {
            reason: message.to_string(),
            record_errors: (0..count.min(MAX_RECORD_ERRORS))
                .map(|i| RecordError {
                    batch_index: first_index.saturating_add(i as i32),
                    message: message.to_string(),
                })
                .collect(),
        });
    }
    if i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1 {
        return Err(LogError::invalid(format!(
            "record count {} does not match last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(())
}

/// Decompresses (bounded) and parses every record of a produced batch;
/// returns the largest record timestamp.
fn check_records(
    header: &BatchHeader,
    bytes: &[u8],
    config: &LogConfig,
    first_index: i32,
    now: i64,
    decompressor: &mut Decompressor,
) -> Result<i64, LogError> {
    let check_time = config.timestamp_type == TimestampType::CreateTime;
    // Widened: `now - timestamp` of a hostile timestamp overflows an i64.
    let earliest = i128::from(now) - i128::from(config.timestamp_before_max_ms);
    let latest = i128::from(now) + i128::from(config.timestamp_after_max_ms);
    let clamp = |t: i128| t.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    // Records whose fault is their timestamp, and the first one's.
    let mut bad_times = 0usize;
    let mut first_bad_time = None;
    let mut unparsable = false;
    let payload = decompressor.records(
        header.codec(),
        &bytes[HEADER_LEN..],
        config.max_decompressed_bytes,
    )?;
    let keys_required = config.cleanup_policy.compacts();
    let mut record_errors = Vec::new();
    let mut bad = 0usize;
    let mut present = 0usize;
    let mut max_timestamp = i64::MIN;
    for (i, record) in parse_records(payload, header.last_offset_delta).enumerate() {
        present += 1;
        let mut fault = |message: String| {
            bad += 1;
            if record_errors.len() < MAX_RECORD_ERRORS {
                record_errors.push(RecordError {
                    batch_index: first_index.saturating_add(i as i32),
                    message,
                })
            }
        };
        match record {
            // The next record's start is unknown: nothing after is checked.
            Err(reason) => {
                unparsable = true;
                fault(format!("record {i} does not parse: {reason}"));
                break;
            }
            Ok(record) => {
                let timestamp = record.create_time(header);
                if record.offset_delta != i as i64 {
                    fault(format!(
                        "record {i} has offset delta {} (records must be numbered from 0)",
                        record.offset_delta
                    ));
                } else if keys_required && record.key.is_none() {
                    fault(format!(
                        "compacted topic received a record without a key (record {i})"
                    ));
                } else if check_time
                    // -1 is "no timestamp", which Kafka lets through.
                    && timestamp != -1
                    && !(earliest..=latest).contains(&i128::from(timestamp))
                {
                    // One error per record, the first fault found, as
                    // Kafka's LogValidator.validateRecord.
                    let message = format!(
                        "timestamp {timestamp} of record {} is out of range: it must be within \
                         [{}, {}] (message.timestamp.before.max.ms / message.timestamp.after.max.ms)",
                        first_index.saturating_add(i as i32),
                        clamp(earliest),
                        clamp(latest)
                    );
                    bad_times += 1;
                    first_bad_time.get_or_insert_with(|| message.clone());
                    fault(message);
                }
                max_timestamp = max_timestamp.max(timestamp);
            }
        }
    }
    // Any timestamp among the faults makes the refusal INVALID_TIMESTAMP,
    // all faults named (Kafka's LogValidator.processRecordErrors); a
    // record that does not parse leaves the rest unchecked: INVALID_RECORD.
    if let Some(first) = first_bad_time.filter(|_| !unparsable) {
        return Err(LogError::InvalidTimestamp {
            reason: format!(
                "{bad_times} record(s) of the batch have a timestamp out of range; {first}"
            ),
            record_errors,
        });
    }
    if let Some(first) = record_errors.first() {
        return Err(LogError::InvalidRecord {
            reason: format!(
                "{bad} record(s) of the batch are invalid; {}",
                first.message
            ),
            record_errors,
        });
    }
    if present != header.records_count as usize {
        return Err(LogError::invalid(format!(
            "the batch claims {} records but holds {present}",
            header.records_count
        )));
    }
    Ok(max_timestamp)
}
