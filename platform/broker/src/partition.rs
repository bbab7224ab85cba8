//! One partition as the broker sees it: its log, leader epoch, high
//! watermark, and the notifier that wakes fetches parked on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};

use fjord_log::{AppendInfo, BatchHeader, Durability, Log, LogConfig, LogError, LogRead};
use tokio::sync::watch;

use crate::producer_state::{ProducerStates, SequenceError, Verdict};

/// Why an idempotent append was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdempotentAppendError {
    /// The producer's sequence or epoch does not fit.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The log refused the batch.
    #[error(transparent)]
    Log(#[from] LogError),
}
/// A partition led by this broker. On a single node the high watermark is
/// the log end offset once an append has returned (after its fsync in
/// `durability: fsync`).
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    log: Arc<Log>,
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    /// Carries the high watermark; every change wakes parked fetches.
    appended: watch::Sender<i64>,
    /// Idempotent producers' sequences; `None` until the first idempotent
    /// batch rebuilds them from the log. An async lock: it is held across
    /// the append so a producer's batches are checked and stored in order.
    producers: tokio::sync::Mutex<Option<ProducerStates>>,
    /// Bytes and records in and out, for the metrics. Kept here rather than
    /// in the global metrics registry so a deleted partition's series go
    /// with it, and so the hot paths pay one atomic add, not a label lookup.
    traffic: TrafficCounters,
}

#[derive(Debug, Default)]
struct TrafficCounters {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
}

/// What a partition took in (appends) and served (fetches) since it was
/// opened in this process: counters, for `fjord_topic_*_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionTraffic {
    /// Bytes of record batches appended (Produce and in-process appends).
    pub bytes_in: u64,
    /// Records appended.
    pub records_in: u64,
    /// Bytes of record batches served to fetches.
    pub bytes_out: u64,
    /// Records in the batches served (from the batch headers' record counts).
    pub records_out: u64,
}

/// Counts an append waiting for its fsync in `fjord_produce_purgatory_size`
/// while it lives, so a cancelled request still leaves the gauge.
struct ProducePurgatory;

impl ProducePurgatory {
    fn enter() -> Self {
        metrics::gauge!("fjord_produce_purgatory_size").increment(1.0);
        ProducePurgatory
    }
}

impl Drop for ProducePurgatory {
    fn drop(&mut self) {
        metrics::gauge!("fjord_produce_purgatory_size").decrement(1.0);
    }
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: &str, index: i32, log: Log, leader_epoch: i32) -> Self {
        let end = log.log_end_offset();
        let (appended, _) = watch::channel(end);
        Partition {
            topic: topic.to_string(),
            index,
            log: Arc::new(log),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: AtomicI64::new(end),
            appended,
            producers: tokio::sync::Mutex::new(None),
            traffic: TrafficCounters::default(),
        }
    }

    /// Writes the producer-state snapshot (clean shutdown). A partition
    /// whose state was never loaded this run leaves its previous snapshot,
    /// which is still right: nothing idempotent was appended since.
    pub(crate) fn snapshot_producers(&self) -> std::io::Result<()> {
        let Ok(guard) = self.producers.try_lock() else {
            return Err(std::io::Error::other("producer state busy at shutdown"));
        };
        match guard.as_ref() {
            Some(states) => crate::producer_state::snapshot::write(
                self.log.dir(),
                states,
                self.log.log_end_offset(),
            ),
            None => Ok(()),
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The offset up to which consumers may read.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// A receiver that sees every high watermark change from now on.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.appended.subscribe()
    }

    /// Applies a topic config change to the log.
    pub fn set_config(&self, config: LogConfig) {
        self.log.set_config(config);
    }

    /// Appends produced batches as leader: validates, assigns offsets, and
    /// (in fsync mode, on a blocking thread) waits for the fsync. Advances
    /// the high watermark and wakes fetches.
    pub async fn append(&self, mut batches: Vec<u8>) -> Result<AppendInfo, LogError> {
        let epoch = self.leader_epoch();
        let config = self.log.config();
        // Fsync mode, and `flush.messages`, can fsync inside the append:
        // keep that off the async workers.
        let may_fsync = config.durability == Durability::Fsync || config.flush_messages.is_some();
        let info = if may_fsync {
            let log = Arc::clone(&self.log);
            let _waiting = ProducePurgatory::enter();
            tokio::task::spawn_blocking(move || log.append(&mut batches, epoch))
                .await
                .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))??
        } else {
            self.log.append(&mut batches, epoch)?
        };
        self.traffic
            .bytes_in
            .fetch_add(info.bytes as u64, Ordering::Relaxed);
        self.traffic
            .records_in
            .fetch_add(info.record_count, Ordering::Relaxed);
        self.advance_high_watermark(info.last_offset + 1);
        Ok(info)
    }

    /// Appends one batch of an idempotent producer (`header.producer_id`
    /// ≥ 0): checks its sequence and epoch, answers a retry of a stored
    /// batch with the stored batch's base offset, and remembers the batch.
    /// Returns the base offset.
    pub(crate) async fn append_idempotent(
        &self,
        batch: Vec<u8>,
        header: &BatchHeader,
    ) -> Result<i64, IdempotentAppendError> {
        let mut guard = self.producers.lock().await;
        if guard.is_none() {
            let log = Arc::clone(&self.log);
            let rebuilt = tokio::task::spawn_blocking(move || ProducerStates::rebuild(&log))
                .await
                .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
            *guard = Some(rebuilt);
        }
        let Some(states) = guard.as_mut() else {
            return Err(LogError::Io(std::io::Error::other("producer state missing")).into());
        };
        match states.check(header)? {
            Verdict::Duplicate(offset) => {
                tracing::debug!(
                    topic = %self.topic,
                    partition = self.index,
                    producer_id = header.producer_id,
                    sequence = header.base_sequence,
                    offset,
                    "duplicate batch answered with its original offset"
                );
                Ok(offset)
            }
            Verdict::Append => {
                let info = self.append(batch).await?;
                states.record(header, info.first_offset);
                Ok(info.first_offset)
            }
        }
    }

    fn advance_high_watermark(&self, offset: i64) {
        let previous = self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        if offset > previous {
            self.appended.send_replace(offset);
        }
    }

    /// Reads whole batches from `offset` up to the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        self.log.read(offset, max_bytes, self.high_watermark())
    }

    /// Counts bytes and records served to a fetch.
    pub(crate) fn served(&self, bytes: u64, records: u64) {
        self.traffic.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.traffic
            .records_out
            .fetch_add(records, Ordering::Relaxed);
    }

    /// Bytes and records appended and served since the partition was
    /// opened in this process.
    pub fn traffic(&self) -> PartitionTraffic {
        PartitionTraffic {
            bytes_in: self.traffic.bytes_in.load(Ordering::Relaxed),
            records_in: self.traffic.records_in.load(Ordering::Relaxed),
            bytes_out: self.traffic.bytes_out.load(Ordering::Relaxed),
            records_out: self.traffic.records_out.load(Ordering::Relaxed),
        }
    }

    /// Wakes fetches parked on this partition without new data (deletion,
    /// shutdown).
    pub fn wake(&self) {
        self.appended.send_modify(|_| {});
    }
}
