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

/// Settings of one log. Field names follow Kafka's topic configs
/// (`segment.bytes` → `segment_bytes`, …); defaults are Kafka's.
///
/// ```
/// use fjord_log::LogConfig;
/// let config = LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() };
/// assert_eq!(config.index_interval_bytes, 4096);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one grows past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the timestamps of a segment span more than this.
    pub segment_ms: Option<i64>,
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
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            durability: Durability::PageCache,
            max_message_bytes: 1_048_588,
        }
    }
}
