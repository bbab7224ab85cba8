//! `fjord-log` is the partition log of Fjord: one directory per partition,
//! holding Kafka RecordBatch v2 bytes exactly as producers sent them.
//!
//! It is for storing and serving batches: validating each produced batch
//! once, record by record (magic, sizes, CRC-32C, record framing, codec,
//! counts, keys of compacted topics, timestamps: [`validate_produced`]),
//! assigning offsets, rolling segments, keeping the sparse offset and time
//! indexes, recovering after a crash, deleting old data (retention,
//! DeleteRecords, compaction), truncating for replication, and remembering
//! the small facts a partition needs across restarts (recovery point, log
//! start offset, high watermark, leader epochs). It also owns the one
//! bounded decoder of stored records, [`decode_batch`], which every reader
//! of records in Fjord uses, so that no stored batch can make a reader
//! inflate it without bound, and the one builder of the batches Fjord
//! writes itself, [`BatchBuilder`] (committed offsets, pipeline outputs),
//! and the one walk that tells a read_committed reader which stored
//! batches to pass over, [`CommittedFilter`] (aborted transactions).
//!
//! It is not for networking, for decoding records on the fetch path (fetch
//! serves the stored bytes), or for deciding *when* things happen: the
//! broker owns the clock (it calls
//! [`Log::enforce_retention`], [`Log::maybe_flush`] and [`Log::checkpoint`])
//! and the notion of a high watermark it passes to [`Log::read`].
//!
//! The on-disk format is Kafka's and is described in `docs/storage.md`.

mod batch;
mod checkpoint;
mod cleaner;
mod codec;
mod committed;
mod config;
mod control;
mod error;
mod files;
mod index;
mod log;
mod records;
mod segment;
mod transactions;
mod validate;

pub use batch::{
    BatchBuilder, BatchHeader, HEADER_LEN, LOG_OVERHEAD, validate as validate_batch,
    validated_batches,
};
pub use checkpoint::{LEADER_EPOCH_CHECKPOINT, LeaderEpochCache};
pub use cleaner::{
    CLEANED_SUFFIX, CLEANER_OFFSET_CHECKPOINT, CleanStats, Cleanability, CleanerConfig,
    SWAP_SUFFIX, SwapStep,
};
pub use committed::CommittedFilter;
pub use config::{CleanupPolicy, Durability, LogConfig, TimestampType};
pub use control::{CONTROL_ATTRIBUTE, TRANSACTIONAL_ATTRIBUTE, TxnMarker};
pub use error::{LogError, RecordError};
pub use files::{FileCache, MIN_OPEN_FILES, nofile_limit};
pub use log::{
    AppendInfo, EARLIEST_TIMESTAMP, HIGH_WATERMARK_CHECKPOINT, LATEST_TIMESTAMP,
    LOG_START_OFFSET_CHECKPOINT, Log, LogRead, LogSlice, MAX_TIMESTAMP, RECOVERY_POINT_CHECKPOINT,
    RollHook, TimestampOffset,
};
pub use records::{
    DEFAULT_MAX_DECOMPRESSED_BYTES, DecodeLimits, DecodedBatch, Record, decode_batch,
};
pub use segment::DELETED_SUFFIX;
pub use transactions::{AbortedTxn, TRANSACTION_STATE_CHECKPOINT};
pub use validate::{validate_produced, validate_produced_at};
