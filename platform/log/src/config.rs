//! Per-log settings, named after Kafka's topic configs.

/// How an append reaches the disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Return once the bytes are in the page cache; the `flush.messages` and
    /// `flush.ms` policy decides when they are fsynced (Kafka's default).
    #[default]
    PageCache,
    /// Return only after the bytes are fsynced. Appends that arrive while an
    /// fsync runs share the next one (group commit).
    Fsync,
}

/// `cleanup.policy`: what happens to old data of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: retention deletes old segments (Kafka's default).
    #[default]
    Delete,
    /// `compact`: the cleaner keeps the latest record of each key.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether the policy contains `compact`.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Whether the policy contains `delete` (retention applies).
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
}

/// `message.timestamp.type`: whose clock the records' timestamps are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// `CreateTime`: the producer's timestamps, checked against
    /// `message.timestamp.before.max.ms` / `after.max.ms` (Kafka's default).
    #[default]
    CreateTime,
    /// `LogAppendTime`: the leader stamps each batch with its clock as it
    /// appends (attribute bit 3 and max timestamp), and every record of
    /// the batch reads as that time.
    LogAppendTime,
}

/// Settings of one log. Field names follow Kafka's topic configs
/// (`segment.bytes` → `segment_bytes`, …); defaults are Kafka's.
///
/// ```
/// use fjord_log::LogConfig;
/// let config = LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() };
/// assert_eq!(config.index_interval_bytes, 4096);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one grows past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the timestamps of a segment span more than this.
    pub segment_ms: Option<i64>,
    /// `segment.jitter.ms`: the most a segment's `segment.ms` roll comes
    /// early, a per-segment amount in `[0, jitter)` so that partitions
    /// created together do not all roll at once.
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes`: roll when the offset index reaches this size.
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`: bytes of log between two offset-index entries.
    pub index_interval_bytes: usize,
    /// `retention.ms`: delete closed segments whose newest record is older.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest closed segments beyond this size.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fsync after this many appended records.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when this long has passed since the last fsync
    /// (checked by [`Log::maybe_flush`](crate::Log::maybe_flush)).
    pub flush_ms: Option<i64>,
    /// Whether an append waits for its fsync.
    pub durability: Durability,
    /// `max.message.bytes`: the largest batch accepted, header included.
    pub max_message_bytes: usize,
    /// `message.max.decompressed.bytes` (a Fjord broker setting): the most
    /// bytes one batch's records may decompress to, checked as they
    /// decompress, on produce and on every read of records. Not
    /// `max.message.bytes`, which bounds a batch as sent.
    pub max_decompressed_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: under CreateTime, how far in the
    /// past (before the broker's clock) a record's timestamp may be.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: under CreateTime, how far in the
    /// future a record's timestamp may be.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy`: retention applies with `delete`, the cleaner with `compact`.
    pub cleanup_policy: CleanupPolicy,
    /// `min.cleanable.dirty.ratio`: clean once dirty bytes / cleanable bytes reach this.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment older than this is cleaned
    /// whatever the dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone stays after the cleaner
    /// first passed it.
    pub delete_retention_ms: i64,
    /// `preallocate`: a new active segment file is given its full
    /// `segment.bytes` at creation (fewer block allocations as it fills),
    /// then trimmed to its data when it rolls or the log closes. Recovery
    /// stops at the zeros after the data.
    pub preallocate: bool,
    /// `file.delete.delay.ms`: segment files removed by retention,
    /// DeleteRecords, compaction or truncation are first renamed with a
    /// `.deleted` suffix and deleted this long after, so a reader still
    /// holding one (a fetch being sent) finishes; 0 deletes at once.
    pub file_delete_delay_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            segment_jitter_ms: 0,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            durability: Durability::PageCache,
            max_message_bytes: 1_048_588,
            max_decompressed_bytes: crate::records::DEFAULT_MAX_DECOMPRESSED_BYTES,
            timestamp_type: TimestampType::CreateTime,
            // Kafka 4.0's defaults (KIP-937): any past, an hour ahead.
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 3600 * 1000,
            preallocate: false,
            file_delete_delay_ms: 60_000,
        }
    }
}
