//! The one error type of the log.

use std::io;

/// What can go wrong when appending to, reading from or opening a [`Log`](crate::Log).
///
/// Each variant maps onto one Kafka error code, so the broker can answer a
/// client without guessing: see the variant docs.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The bytes are not a well-formed RecordBatch v2: wrong magic, sizes that
    /// do not add up, a CRC that does not match. Kafka: `CORRUPT_MESSAGE` (2).
    #[error("corrupt record batch: {reason}")]
    CorruptBatch {
        /// What exactly was wrong, for the log line and the error message.
        reason: String,
    },
    /// The batch's CRC matches but its contents break a rule: records that
    /// do not parse or do not decompress (or decompress past
    /// `message.max.decompressed.bytes`), an unknown codec, a record count
    /// that is not the records present, a keyless record on a compacted
    /// topic, a control or transactional batch from a client, offsets going
    /// backwards in a replicated append. The sender wrote it so: retrying
    /// cannot help. Kafka: `INVALID_RECORD` (87), with `record_errors`.
    #[error("invalid record batch: {reason}")]
    InvalidRecord {
        /// Which rule the batch broke.
        reason: String,
        /// The records at fault, by index in the append (KIP-467's
        /// `record_errors`); empty when the fault is the batch's.
        record_errors: Vec<RecordError>,
    },
    /// A produced batch's timestamps break the topic's timestamp rules
    /// (LogAppendTime set by a producer, a CreateTime outside
    /// `message.timestamp.before/after.max.ms`). Kafka: `INVALID_TIMESTAMP`
    /// (32), with `record_errors`.
    #[error("invalid timestamp: {reason}")]
    InvalidTimestamp {
        /// What was wrong.
        reason: String,
        /// The records at fault, by index in the append (KIP-467), as
        /// Kafka names them; other faults of the batch's records among
        /// them, as Kafka's LogValidator lists them all.
        record_errors: Vec<RecordError>,
    },
    /// One batch is larger than `max.message.bytes`. Kafka:
    /// `MESSAGE_TOO_LARGE` (10).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge {
        /// Size of the offending batch, header included.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A read or truncation asked for an offset outside
    /// `[log_start, log_end]`. Kafka: `OFFSET_OUT_OF_RANGE` (1).
    #[error("offset {offset} is outside the log [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// The first offset the log still holds.
        log_start: i64,
        /// The offset the next append will get.
        log_end: i64,
    },
    /// A file of the log could not be read or written. Kafka:
    /// `KAFKA_STORAGE_ERROR` (56).
    #[error("log I/O error: {0}")]
    Io(io::Error),
    /// A file could not be opened because the process has as many open as
    /// `RLIMIT_NOFILE` allows (or the system ran out), even after closing
    /// the cached segment files it could. Kafka: `KAFKA_STORAGE_ERROR` (56).
    #[error(
        "out of file descriptors ({source}): the open-files limit (RLIMIT_NOFILE) is {soft} (hard limit {hard}); raise it (`ulimit -n`, LimitNOFILE=) or lower log.open.files.max"
    )]
    TooManyOpenFiles {
        /// The soft limit in force.
        soft: u64,
        /// The hard limit in force.
        hard: u64,
        /// The failed open's error (`EMFILE` or `ENFILE`).
        source: io::Error,
    },
    /// A checkpoint file exists but cannot be parsed.
    #[error("checkpoint file {path} is malformed: {reason}")]
    BadCheckpoint {
        /// The file.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl From<io::Error> for LogError {
    /// Every I/O error of the log, with running out of descriptors told
    /// apart: its message names the limit.
    fn from(error: io::Error) -> Self {
        if crate::files::out_of_descriptors(&error) {
            let (soft, hard) = crate::files::nofile_limit();
            LogError::TooManyOpenFiles {
                soft,
                hard,
                source: error,
            }
        } else {
            LogError::Io(error)
        }
    }
}

impl LogError {
    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        LogError::CorruptBatch {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        LogError::InvalidRecord {
            reason: reason.into(),
            record_errors: Vec::new(),
        }
    }

    /// The records at fault of an [`LogError::InvalidRecord`] or
    /// [`LogError::InvalidTimestamp`] (empty for any other error).
    pub fn record_errors(&self) -> &[RecordError] {
        match self {
            LogError::InvalidRecord { record_errors, .. }
            | LogError::InvalidTimestamp { record_errors, .. } => record_errors,
            _ => &[],
        }
    }
}

/// One record at fault in a refused append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the record among all the records of the append, from 0
    /// (KIP-467's `batch_index`).
    pub batch_index: i32,
    /// What is wrong with it.
    pub message: String,
}
