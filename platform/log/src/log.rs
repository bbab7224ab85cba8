//! [`Log`]: the segments of one partition, in order, behind one writer.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use smallvec::SmallVec;

use crate::batch::{self, BatchHeader};
use crate::checkpoint::{LeaderEpochCache, OffsetCheckpoint};
use crate::files::{FileCache, is_retired};
use crate::segment::Segment;
use crate::transactions::{AbortedTxn, Transactions, TxnSummary};
use crate::{DecodeLimits, Durability, LogConfig, LogError};

/// How many times a read starts over when retention or the cleaner retired
/// a segment it was reading: each retry sees the segments of that moment,
/// so only a log rewritten again and again under the reader runs out.
const RETIRED_RETRIES: usize = 8;

/// File names of the per-partition checkpoints.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// See [`RECOVERY_POINT_CHECKPOINT`].
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// See [`RECOVERY_POINT_CHECKPOINT`].
pub const HIGH_WATERMARK_CHECKPOINT: &str = "high-watermark-checkpoint";

/// ListOffsets' special timestamp for the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets' special timestamp for the log end offset.
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets' special timestamp for the record with the largest timestamp.
pub const MAX_TIMESTAMP: i64 = -3;

/// The log of one partition: a directory of segments holding RecordBatch v2
/// bytes exactly as producers sent them, with offsets assigned.
///
/// A `Log` is shared between tasks (`Arc<Log>`): appends are serialized by an
/// internal lock, reads run alongside them and never wait for disk writes.
///
/// ```
/// # fn batch() -> Vec<u8> {
/// #     use kafka_protocol::records::*;
/// #     let record = Record { transactional: false, control: false, delete_horizon: false,
/// #         partition_leader_epoch: 0, producer_id: -1, producer_epoch: -1,
/// #         timestamp_type: TimestampType::Creation, offset: 0, sequence: -1, timestamp: 1,
/// #         key: None, value: Some(bytes::Bytes::from_static(b"hello")), headers: Default::default() };
/// #     let mut buf = bytes::BytesMut::new();
/// #     RecordBatchEncoder::encode(&mut buf, [&record],
/// #         &RecordEncodeOptions { version: 2, compression: Compression::None }).unwrap();
/// #     buf.to_vec()
/// # }
/// use fjord_log::{Log, LogConfig};
/// let dir = tempfile::tempdir().unwrap();
/// let log = Log::open(dir.path().join("events-0"), LogConfig::default()).unwrap();
/// let mut produced = batch();
/// let info = log.append(&mut produced, 0).unwrap();
/// assert_eq!((info.first_offset, info.last_offset), (0, 0));
/// let read = log.read(0, 1 << 20, log.log_end_offset()).unwrap();
/// assert_eq!(read.slice.unwrap().bytes().unwrap(), produced);
/// ```
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    /// Where the segments' descriptors are kept (see [`FileCache`]).
    files: Arc<FileCache>,
    config: RwLock<LogConfig>,
    segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<WriterState>,
    log_end: AtomicI64,
    log_start: AtomicI64,
    flush: Mutex<FlushState>,
    flushed: Condvar,
    epochs: Mutex<LeaderEpochCache>,
    recovery_point_file: OffsetCheckpoint,
    log_start_file: OffsetCheckpoint,
    high_watermark_file: OffsetCheckpoint,
    cleaner: Mutex<crate::cleaner::CleanerState>,
    /// Called after each roll that closes a segment (see [`Log::on_roll`]).
    roll_hook: Mutex<Option<RollHook>>,
    /// Files renamed `.deleted` and when (ms) to delete them
    /// (`file.delete.delay.ms`, see [`Log::delete_expired_files`]).
    pending_deletes: Mutex<Vec<(i64, PathBuf)>>,
    /// Open and aborted transactions (see [`crate::transactions`]).
    txns: Mutex<Transactions>,
    /// Their first unstable offset and open count, read lock-free on the
    /// Fetch and Produce paths; every change of `txns` publishes here.
    txn_summary: TxnSummary,
}

/// What [`Log::on_roll`] calls: a closed segment may be due for cleaning.
/// Shared, as one hook (waking the owner's cleaner) serves many logs.
#[derive(Clone)]
pub struct RollHook(Arc<dyn Fn(&Log) + Send + Sync>);

impl RollHook {
    /// A hook that calls `hook` with the log on every roll of the logs it
    /// is set on.
    pub fn new(hook: impl Fn(&Log) + Send + Sync + 'static) -> RollHook {
        RollHook(Arc::new(hook))
    }
}

impl std::fmt::Debug for RollHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollHook")
    }
}

#[derive(Debug)]
struct WriterState {
    unflushed_records: u64,
    /// The latest epoch in the epoch cache as of the last append, so an
    /// append of the current epoch skips the cache's lock. Truncation, the
    /// only thing that can drop the latest epoch, clears it.
    latest_epoch: Option<i32>,
}

#[derive(Debug)]
struct FlushState {
    /// Every offset below this is fsynced: the recovery point.
    flushed_offset: i64,
    in_progress: bool,
    last_flush_ms: i64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest timestamp among the appended batches.
    pub max_timestamp: i64,
    /// Records appended.
    pub record_count: u64,
    /// Bytes appended.
    pub bytes: usize,
    /// The time the batches were stamped with under LogAppendTime (-1
    /// under CreateTime), which a produce answer carries.
    pub log_append_time: i64,
}

/// The answer to [`Log::read`].
#[derive(Debug, Clone)]
pub struct LogRead {
    /// First offset the log holds.
    pub log_start_offset: i64,
    /// Offset the next append gets.
    pub log_end_offset: i64,
    /// The batches read, or `None` when there was nothing below the limit.
    pub slice: Option<LogSlice>,
}

/// Whole stored batches, as one contiguous range of a segment file.
#[derive(Debug, Clone)]
pub struct LogSlice {
    file: Arc<fs::File>,
    position: u64,
    bytes: Bytes,
}

impl LogSlice {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the slice holds no batch.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The stored bytes (already read with one positioned read; cloning is free).
    pub fn bytes(&self) -> std::io::Result<Bytes> {
        Ok(self.bytes.clone())
    }

    /// The segment file and byte range the slice came from, for senders that
    /// copy file to socket in the kernel (`sendfile`).
    pub fn file_range(&self) -> (&Arc<fs::File>, u64, usize) {
        (&self.file, self.position, self.bytes.len())
    }
}

/// A ListOffsets answer: an offset and the timestamp found there (-1 for the
/// special earliest/latest queries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// The offset.
    pub offset: i64,
    /// The record's timestamp.
    pub timestamp: i64,
}

/// Whose offsets an append carries.
#[derive(Clone, Copy)]
enum Origin {
    /// A producer's batches: the log assigns offsets and stamps the epoch.
    Leader { epoch: i32 },
    /// A leader's batches copied by a follower: offsets are kept.
    Follower,
    /// A transaction marker the broker writes as leader: offsets and the
    /// epoch are assigned as for a producer's, without the producer rules.
    Control { epoch: i32 },
}

impl Log {
    /// Opens the log in `dir`, creating it when missing, and recovers it:
    /// segments past the recovery checkpoint are checked batch by batch, a
    /// torn or corrupt tail is cut off, and missing or implausible indexes
    /// are rebuilt.
    ///
    /// Its segment files are kept open by the process's [`FileCache::global`].
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, LogError> {
        Self::open_with(dir, config, FileCache::global())
    }

    /// [`Log::open`] with the segment files kept open by `files`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        files: &Arc<FileCache>,
    ) -> Result<Log, LogError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let recovery_point_file = OffsetCheckpoint::new(dir.join(RECOVERY_POINT_CHECKPOINT));
        let log_start_file = OffsetCheckpoint::new(dir.join(LOG_START_OFFSET_CHECKPOINT));
        let high_watermark_file = OffsetCheckpoint::new(dir.join(HIGH_WATERMARK_CHECKPOINT));
        let recovery_point = recovery_point_file.read()?.unwrap_or(-1);

        crate::cleaner::recover_swaps(&dir)?;
        clean_leftovers(&dir)?;
        let mut bases = segment_bases(&dir)?;
        bases.sort_unstable();
        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len().max(1));
        let mut recovered_batches = 0;
        let mut corrupt_from: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            let segment = Segment::open_files(&dir, base, files)?;
            let next_base = bases.get(i + 1).copied();
            // Without a recovery point (never checkpointed) every batch is
            // checked. With one, segments below it get the light check, and
            // a segment reaching past it was not wholly fsynced: check it all.
            let full = recovery_point < 0;
            let mut stats = segment.recover(full, config.index_interval_bytes, next_base)?;
            if !full && segment.next_offset() > recovery_point {
                stats = segment.recover(true, config.index_interval_bytes, next_base)?;
            }
            recovered_batches += stats.batches;
            if stats.truncated_bytes > 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    segment = base,
                    valid_batches = stats.batches,
                    truncated_bytes = stats.truncated_bytes,
                    "truncated a torn or corrupt segment tail"
                );
            }
            if stats.trimmed_bytes > 0 {
                tracing::debug!(
                    dir = %dir.display(),
                    segment = base,
                    trimmed_bytes = stats.trimmed_bytes,
                    "trimmed the preallocated zeros after a segment's data"
                );
            }
            let truncated = stats.truncated_bytes > 0;
            segments.push(Arc::new(segment));
            if truncated && next_base.is_some() {
                corrupt_from = Some(i + 1);
                break;
            }
        }
        if let Some(first_dropped) = corrupt_from {
            for &base in &bases[first_dropped..] {
                let segment = Segment::open_files(&dir, base, files)?;
                segment.delete_files()?;
            }
            tracing::warn!(
                dir = %dir.display(),
                deleted_segments = bases.len() - first_dropped,
                "deleted segments after a corrupt one"
            );
        }
        let log_start_checkpoint = log_start_file.read()?;
        if segments.is_empty() {
            let base = log_start_checkpoint.unwrap_or(0).max(0);
            segments.push(Arc::new(Segment::create_preallocated(
                &dir,
                base,
                files,
                preallocation(&config),
            )?));
        }
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let log_start = log_start_checkpoint
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end);
        let mut epochs = LeaderEpochCache::open(&dir)?;
        epochs.truncate_from_end(log_end)?;
        tracing::debug!(dir = %dir.display(), log_start, log_end, recovered_batches, "log opened");
        let txns =
            crate::transactions::recover(&dir, &segments, Transactions::read_checkpoint(&dir))?;
        let flushed_offset = if recovery_point > log_end || recovery_point < 0 {
            log_end
        } else {
            recovery_point
        };
        Ok(Log {
            dir,
            files: Arc::clone(files),
            config: RwLock::new(config),
            segments: RwLock::new(segments),
            writer: Mutex::new(WriterState {
                unflushed_records: 0,
                latest_epoch: None,
            }),
            log_end: AtomicI64::new(log_end),
            log_start: AtomicI64::new(log_start),
            flush: Mutex::new(FlushState {
                flushed_offset,
                in_progress: false,
                last_flush_ms: now_ms(),
            }),
            flushed: Condvar::new(),
            epochs: Mutex::new(epochs),
            recovery_point_file,
            log_start_file,
            high_watermark_file,
            cleaner: crate::cleaner::new_state(),
            roll_hook: Mutex::new(None),
            pending_deletes: Mutex::new(Vec::new()),
            txn_summary: TxnSummary::of(&txns),
            txns: Mutex::new(txns),
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for the change of segments under way, if any: segments are
    /// retired (and replaced, or dropped) under the writer lock, so once it
    /// is free the segment list no longer holds the retired one.
    pub(crate) fn settle(&self) {
        drop(self.writer.lock());
    }

    /// The cache keeping the log's segment files open.
    pub(crate) fn files(&self) -> &Arc<FileCache> {
        &self.files
    }

    /// The current settings.
    pub fn config(&self) -> LogConfig {
        self.config.read().clone()
    }

    /// Replaces the settings; they apply from the next append or retention run.
    pub fn set_config(&self, config: LogConfig) {
        *self.config.write() = config;
    }

    /// First offset the log holds.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    /// Offset the next appended record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// Every offset below this is fsynced: the recovery point the next
    /// checkpoint writes (for metrics, and for tests of the flush policy,
    /// which has no other visible effect).
    pub fn flushed_offset(&self) -> i64 {
        self.flush.lock().flushed_offset
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.read().iter().map(|s| s.size()).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.read().iter().map(|s| s.base_offset).collect()
    }

    /// Cleaner hook: the closed segments (all but the active one), oldest first.
    pub(crate) fn closed_segments(&self) -> Vec<Arc<Segment>> {
        let segments = self.segments.read();
        segments[..segments.len() - 1].to_vec()
    }

    /// The base offset of the active segment: it moves forward with every
    /// roll, and only then (cleaning never touches the active segment).
    pub fn active_base_offset(&self) -> i64 {
        self.active_segment().base_offset
    }

    /// Calls `hook` after every roll that closes a segment (a roll that
    /// replaces an empty active segment closes none), from the appending
    /// thread and under the log's writer lock, so it must be quick: it is
    /// for waking a cleaner, which would otherwise have to poll for rolls.
    /// Replaces any hook set before.
    pub fn on_roll(&self, hook: RollHook) {
        *self.roll_hook.lock() = Some(hook);
    }

    /// Cleaner hook: its per-log state.
    pub(crate) fn cleaner_state(&self) -> &Mutex<crate::cleaner::CleanerState> {
        &self.cleaner
    }

    /// Cleaner hook: under the writer lock, when `old` is still a run of
    /// closed segments of the log with the `(size, next offset)` it had
    /// (`expected`), runs `swap_files` (which replaces the files on disk and
    /// opens the new segment) and puts its segment in place of `old`, with
    /// `entries` as its `.txnindex`. Returns false, without calling it,
    /// when the log changed meanwhile.
    pub(crate) fn replace_segments(
        &self,
        old: &[Arc<Segment>],
        expected: &[(u64, i64)],
        entries: Vec<AbortedTxn>,
        swap_files: impl FnOnce() -> Result<Segment, LogError>,
    ) -> Result<bool, LogError> {
        let _writer = self.writer.lock();
        let start = {
            let segments = self.segments.read();
            let Some(start) = segments.iter().position(|s| Arc::ptr_eq(s, &old[0])) else {
                return Ok(false);
            };
            let unchanged = start + old.len() < segments.len()
                && old
                    .iter()
                    .zip(expected)
                    .enumerate()
                    .all(|(i, (s, &(size, next)))| {
                        Arc::ptr_eq(&segments[start + i], s)
                            && s.size() == size
                            && s.next_offset() == next
                    });
            if !unchanged {
                return Ok(false);
            }
            start
        };
        let new = Arc::new(swap_files()?);
        // The entries of the ABORT markers the cleaner kept with data of
        // their transactions: the others have nothing left to skip.
        self.txns
            .lock()
            .set_segment(&self.dir, new.base_offset, entries)?;
        self.segments
            .write()
            .splice(start..start + old.len(), [new]);
        Ok(true)
    }

    /// Appends one or more concatenated RecordBatch v2 sent by a producer.
    ///
    /// Every batch is validated first, record by record, by
    /// [`validate_produced`](crate::validate_produced); if any fails,
    /// nothing is written.
    /// Then base offsets and `leader_epoch` are written into the batches in
    /// place, which the CRC does not cover, and the bytes are stored as they
    /// are. With [`Durability::Fsync`] the call returns after the bytes are
    /// fsynced; concurrent callers share one fsync.
    pub fn append(&self, batches: &mut [u8], leader_epoch: i32) -> Result<AppendInfo, LogError> {
        self.append_from(
            batches,
            Origin::Leader {
                epoch: leader_epoch,
            },
        )
    }

    /// Appends batches copied from a leader, keeping their offsets and
    /// epochs. Base offsets must not go below the log end offset and must
    /// increase. Only headers, sizes and CRCs are checked: the leader's
    /// validator checked the records.
    pub fn append_as_follower(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        self.append_from(batches, Origin::Follower)
    }

    /// Appends, as leader in `leader_epoch`, the control batch of a
    /// transaction marker (see [`TxnMarker`](crate::TxnMarker)). The
    /// producer validator, which refuses control batches from clients, is
    /// not run: the broker built the batch.
    pub fn append_control(
        &self,
        marker: &crate::TxnMarker,
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let mut batch = marker.to_batch(now_ms());
        self.append_from(
            &mut batch,
            Origin::Control {
                epoch: leader_epoch,
            },
        )
    }

    fn append_from(&self, buf: &mut [u8], origin: Origin) -> Result<AppendInfo, LogError> {
        let config = self.config();
        // A produce carries one batch per partition: keep that case off the heap.
        let mut headers: SmallVec<[BatchHeader; 2]> = SmallVec::new();
        match origin {
            // A producer's batches: checked whole, record by record, once.
            Origin::Leader { .. } => {
                crate::validate::validate_produced(buf, &config, |h| headers.push(h))?
            }
            Origin::Control { .. } => {
                let header = batch::validate(buf)?;
                if !header.is_control() || header.size() != buf.len() {
                    return Err(LogError::invalid("not one control batch"));
                }
                headers.push(header);
            }
            // A leader's: its validator passed them; the CRC is the check
            // that the copy is the leader's.
            Origin::Follower => {
                for item in batch::validated_batches(buf) {
                    let (header, _) = item?;
                    check_size(&header, &config)?;
                    headers.push(header);
                }
            }
        }
        if headers.is_empty() {
            return Err(LogError::invalid("no record batch in the append"));
        }
        let mut writer = self.writer.lock();
        let log_end = self.log_end_offset();
        match origin {
            Origin::Leader { epoch } | Origin::Control { epoch } => {
                let mut next = log_end;
                let mut pos = 0;
                for header in &mut headers {
                    let bytes = &mut buf[pos..pos + header.size()];
                    batch::set_base_offset(bytes, next);
                    batch::set_partition_leader_epoch(bytes, epoch);
                    header.base_offset = next;
                    header.partition_leader_epoch = epoch;
                    next = header.next_offset();
                    pos += header.size();
                }
            }
            Origin::Follower => {
                let mut expected = log_end;
                for header in &headers {
                    if header.base_offset < expected {
                        return Err(LogError::invalid(format!(
                            "replicated batch at offset {} is below the next offset {expected}",
                            header.base_offset
                        )));
                    }
                    expected = header.next_offset();
                }
            }
        }
        let info = self.write(&mut writer, buf, &headers, &config)?;
        let flush_now = config
            .flush_messages
            .is_some_and(|n| writer.unflushed_records >= n);
        drop(writer);
        if config.durability == Durability::Fsync || flush_now {
            self.sync_to(info.last_offset + 1)?;
        }
        Ok(info)
    }

    /// Writes validated batches with assigned offsets, rolling segments as
    /// needed, then publishes the new log end offset.
    fn write(
        &self,
        writer: &mut WriterState,
        buf: &[u8],
        headers: &[BatchHeader],
        config: &LogConfig,
    ) -> Result<AppendInfo, LogError> {
        let mut active = self.active_segment();
        let mut run_start = 0; // first header of the run going to `active`
        let mut byte_start = 0;
        let mut pos = 0;
        let max_index_entries = (config.segment_index_bytes / 12).max(1);
        for (i, header) in headers.iter().enumerate() {
            let pending = (pos - byte_start) as u64;
            if needs_roll(
                &self.dir,
                &active,
                pending,
                header,
                config,
                max_index_entries,
            ) {
                active.append(
                    &buf[byte_start..pos],
                    &headers[run_start..i],
                    config.index_interval_bytes,
                )?;
                active = self.roll(header.base_offset)?;
                run_start = i;
                byte_start = pos;
            }
            pos += header.size();
        }
        active.append(
            &buf[byte_start..pos],
            &headers[run_start..],
            config.index_interval_bytes,
        )?;
        let first = &headers[0];
        let last = &headers[headers.len() - 1];
        let newest_epoch = headers.iter().map(|h| h.partition_leader_epoch).max();
        if newest_epoch > writer.latest_epoch {
            let mut epochs = self.epochs.lock();
            for header in headers {
                if epochs
                    .latest_epoch()
                    .is_none_or(|latest| header.partition_leader_epoch > latest)
                {
                    epochs.assign(header.partition_leader_epoch, header.base_offset)?;
                }
            }
            writer.latest_epoch = epochs.latest_epoch();
        }
        self.track_transactions(buf, headers)?;
        let record_count: u64 = headers.iter().map(|h| h.records_count as u64).sum();
        writer.unflushed_records += record_count;
        self.log_end.store(last.next_offset(), Ordering::Release);
        Ok(AppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp: headers.iter().map(|h| h.max_timestamp).max().unwrap_or(-1),
            record_count,
            bytes: pos,
            log_append_time: if first.attributes & 0x08 != 0 {
                first.max_timestamp
            } else {
                -1
            },
        })
    }

    /// Updates the open and aborted transactions with appended batches
    /// (under the writer lock): transactional batches open, markers close.
    fn track_transactions(&self, buf: &[u8], headers: &[BatchHeader]) -> Result<(), LogError> {
        let mut pos = 0;
        for header in headers {
            let bytes = &buf[pos..pos + header.size()];
            pos += header.size();
            if header.attributes & crate::control::TRANSACTIONAL_ATTRIBUTE == 0 {
                continue;
            }
            let aborted = {
                let mut txns = self.txns.lock();
                let aborted = txns.observe(header, bytes)?;
                self.txn_summary.publish(&txns);
                aborted
            };
            if let Some(entry) = aborted {
                let base = self.segment_base_of(header.base_offset);
                self.txns.lock().add_aborted(&self.dir, base, entry)?;
            }
        }
        Ok(())
    }

    /// Cleaner hook: writes `transaction-state-checkpoint` at the log end.
    pub(crate) fn checkpoint_transactions(&self) -> Result<(), LogError> {
        let _writer = self.writer.lock();
        self.txns
            .lock()
            .write_checkpoint(&self.dir, self.log_end_offset())
    }

    /// Base offset of the segment holding `offset`.
    fn segment_base_of(&self, offset: i64) -> i64 {
        let segments = self.segments.read();
        let i = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        segments[i].base_offset
    }

    /// The first offset of a transaction still open (no marker yet): the
    /// last stable offset cannot pass it. `None` when none is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.txn_summary.first_unstable()
    }

    /// Whether `producer_id` has a transaction open in this log.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        // Most logs have no transaction open: no lock then.
        self.txn_summary.any_open() && self.txns.lock().is_open(producer_id)
    }

    /// The open transactions: producer id and offset of its first record.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.txns.lock().open()
    }

    /// The aborted transactions with records in `[from, to)`: what a
    /// read_committed fetch of that range must skip.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.txns.lock().aborted_between(from, to)
    }

    /// Rebuilds the transactions after the log was cut: from the
    /// checkpoint when it is below the new end, else from the whole log.
    fn rebuild_transactions(&self) -> Result<(), LogError> {
        let segments = self.segments.read().clone();
        let rebuilt = crate::transactions::recover(
            &self.dir,
            &segments,
            Transactions::read_checkpoint(&self.dir),
        )?;
        let mut txns = self.txns.lock();
        *txns = rebuilt;
        self.txn_summary.publish(&txns);
        Ok(())
    }

    fn active_segment(&self) -> Arc<Segment> {
        let segments = self.segments.read();
        Arc::clone(&segments[segments.len() - 1])
    }

    /// Closes the active segment and starts a new one at `base_offset`.
    fn roll(&self, base_offset: i64) -> Result<Arc<Segment>, LogError> {
        let old = self.active_segment();
        let preallocate = preallocation(&self.config.read());
        old.seal_time_index()?;
        old.write_out_indexes()?;
        // Before the next segment exists: only the active one may end in
        // preallocated zeros.
        old.trim()?;
        let closes = !old.is_empty();
        let segment = if !closes {
            // Nothing to keep: an empty segment is replaced, not closed.
            old.delete_files()?;
            let segment = Arc::new(Segment::create_preallocated(
                &self.dir,
                base_offset,
                &self.files,
                preallocate,
            )?);
            let mut segments = self.segments.write();
            let last = segments.len() - 1;
            segments[last] = Arc::clone(&segment);
            segment
        } else {
            let segment = Arc::new(Segment::create_preallocated(
                &self.dir,
                base_offset,
                &self.files,
                preallocate,
            )?);
            self.segments.write().push(Arc::clone(&segment));
            segment
        };
        // Make the new file's directory entry durable, or an fsynced append
        // into it could vanish with the entry after a power loss. Rolls are
        // rare (one per segment.bytes), so this costs nothing measurable.
        crate::checkpoint::sync_dir(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), base_offset, "rolled a new segment");
        if closes {
            let hook = self.roll_hook.lock().clone();
            if let Some(RollHook(hook)) = hook {
                hook(self);
            }
        }
        Ok(segment)
    }

    /// Reads whole batches from the one holding `offset`: at most `max_bytes`
    /// but always the first batch (as Kafka does), and none whose base offset
    /// is at or past `max_offset` (the high watermark the caller serves up
    /// to). Reading at the log end returns no slice.
    ///
    /// A segment deleted by retention or replaced by the cleaner while it
    /// is read makes the read start over on the segments of the moment.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<LogRead, LogError> {
        retrying_retired(
            || self.settle(),
            || self.read_once(offset, max_bytes, max_offset),
        )
    }

    fn read_once(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<LogRead, LogError> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        let limit = max_offset.min(log_end);
        let mut answer = LogRead {
            log_start_offset: log_start,
            log_end_offset: log_end,
            slice: None,
        };
        if offset >= limit {
            return Ok(answer);
        }
        // Compaction can leave closed segments holding only empty batches.
        // librdkafka answers a fetch whose batches carry no record with
        // MSG_SIZE_TOO_LARGE, so such a run is skipped when records follow
        // below the limit; when none do, the run that reaches the limit is
        // served, so the reader moves on to it.
        let mut offset = offset;
        let mut only_empty: Option<LogSlice> = None;
        loop {
            let candidates: Vec<Arc<Segment>> = {
                let segments = self.segments.read();
                if segments[0].base_offset > offset {
                    // Retention (or DeleteRecords) removed the segment
                    // holding `offset` since the log start was checked (and
                    // is about to move the log start to the first segment).
                    return Err(LogError::OffsetOutOfRange {
                        offset,
                        log_start: self.log_start_offset().max(segments[0].base_offset),
                        log_end,
                    });
                }
                let idx = segments
                    .partition_point(|s| s.base_offset <= offset)
                    .saturating_sub(1);
                segments[idx..].iter().take(2).cloned().collect()
            };
            let mut found = None;
            for segment in candidates {
                if let Some((file, position, bytes)) = segment.read(offset, max_bytes, limit)? {
                    found = Some(LogSlice {
                        file,
                        position,
                        bytes,
                    });
                    break;
                }
            }
            let Some(slice) = found.filter(|s| !s.bytes.is_empty()) else {
                break;
            };
            match next_after_empty_batches(&slice.bytes) {
                Some(next) if next < limit => {
                    only_empty.get_or_insert(slice);
                    offset = next;
                }
                _ => {
                    answer.slice = Some(slice);
                    return Ok(answer);
                }
            }
        }
        answer.slice = only_empty;
        Ok(answer)
    }

    /// ListOffsets: the first offset whose record timestamp is
    /// `>= timestamp`, or for the special values [`EARLIEST_TIMESTAMP`],
    /// [`LATEST_TIMESTAMP`] and [`MAX_TIMESTAMP`] the log start, the log end
    /// and the record with the largest timestamp. `None` when no record is
    /// that recent.
    pub fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        retrying_retired(
            || self.settle(),
            || self.offset_for_timestamp_once(timestamp),
        )
    }

    fn offset_for_timestamp_once(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, LogError> {
        match timestamp {
            EARLIEST_TIMESTAMP => {
                return Ok(Some(TimestampOffset {
                    offset: self.log_start_offset(),
                    timestamp: -1,
                }));
            }
            LATEST_TIMESTAMP => {
                return Ok(Some(TimestampOffset {
                    offset: self.log_end_offset(),
                    timestamp: -1,
                }));
            }
            _ => {}
        }
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        let log_start = self.log_start_offset();
        let limits = DecodeLimits::of(&self.config());
        let target = if timestamp == MAX_TIMESTAMP {
            let max = segments
                .iter()
                .map(|s| s.max_timestamp())
                .max()
                .unwrap_or(-1);
            if max < 0 {
                return Ok(None);
            }
            max
        } else if timestamp < 0 {
            return Ok(None);
        } else {
            timestamp
        };
        for segment in segments.iter().filter(|s| s.max_timestamp() >= target) {
            let mut from = segment.time_scan_start(target);
            loop {
                let mut found = None;
                segment.walk(from, |pos, h| {
                    if h.max_timestamp >= target && h.next_offset() > log_start {
                        found = Some((pos, *h));
                        return false;
                    }
                    true
                })?;
                let Some((pos, header)) = found else { break };
                let bytes = segment.batch_at(pos, &header)?;
                let batch = crate::records::decode_batch(&bytes, limits)?;
                let record = batch
                    .records()
                    .filter(|r| r.offset >= log_start)
                    .find(|r| r.timestamp >= target);
                if let Some(record) = record {
                    return Ok(Some(TimestampOffset {
                        offset: record.offset,
                        timestamp: record.timestamp,
                    }));
                }
                // Only records below the log start were that recent (the
                // start falls inside this batch): go on with the next batch.
                from = pos + header.size() as u64;
            }
        }
        Ok(None)
    }

    /// Fsyncs everything appended so far.
    pub fn flush(&self) -> Result<(), LogError> {
        self.sync_to(self.log_end_offset())
    }

    /// Fsyncs when `flush.ms` has passed since the last fsync. The broker
    /// calls this periodically.
    pub fn maybe_flush(&self, now_ms: i64) -> Result<(), LogError> {
        let Some(interval) = self.config.read().flush_ms else {
            return Ok(());
        };
        let due = {
            let state = self.flush.lock();
            now_ms - state.last_flush_ms >= interval && state.flushed_offset < self.log_end_offset()
        };
        if due { self.flush() } else { Ok(()) }
    }

    /// Waits until every offset below `target` is fsynced. The first caller
    /// to find no fsync running starts one covering everything written so
    /// far; the others wait for it (group commit).
    fn sync_to(&self, target: i64) -> Result<(), LogError> {
        let mut state = self.flush.lock();
        loop {
            if state.flushed_offset >= target {
                return Ok(());
            }
            if state.in_progress {
                self.flushed.wait(&mut state);
                continue;
            }
            state.in_progress = true;
            let from = state.flushed_offset;
            drop(state);
            let end = self.log_end_offset();
            let result = self.sync_segments_from(from);
            state = self.flush.lock();
            state.in_progress = false;
            if result.is_ok() {
                state.flushed_offset = state.flushed_offset.max(end);
                state.last_flush_ms = now_ms();
            }
            self.flushed.notify_all();
            result?;
        }
    }

    fn sync_segments_from(&self, from: i64) -> Result<(), LogError> {
        let dirty: Vec<Arc<Segment>> = self
            .segments
            .read()
            .iter()
            .filter(|s| s.next_offset() > from || s.is_empty())
            .cloned()
            .collect();
        for segment in &dirty {
            segment.sync()?;
        }
        self.writer.lock().unflushed_records = 0;
        Ok(())
    }

    /// Fsyncs data and indexes and writes the recovery point and log start
    /// checkpoints, so the next open checks nothing below them. The broker
    /// calls this periodically and [`Log::close`] calls it last.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let _writer = self.writer.lock();
        let end = self.log_end_offset();
        let segments: Vec<Arc<Segment>> = self.segments.read().clone();
        if let Some(active) = segments.last() {
            active.seal_time_index()?;
        }
        for segment in &segments {
            segment.sync()?;
            segment.sync_indexes()?;
        }
        {
            let mut state = self.flush.lock();
            state.flushed_offset = state.flushed_offset.max(end);
        }
        self.recovery_point_file.write(end)?;
        self.log_start_file.write(self.log_start_offset())?;
        self.txns.lock().write_checkpoint(&self.dir, end)?;
        Ok(())
    }

    /// Flushes and checkpoints; after a clean close the next open reads only
    /// the tail of the active segment.
    pub fn close(&self) -> Result<(), LogError> {
        {
            let _writer = self.writer.lock();
            self.active_segment().trim()?;
        }
        self.checkpoint()
    }

    /// Removes every batch from the one holding `offset` on (replication,
    /// when a follower's log diverges from its leader's). The log end becomes
    /// that batch's base offset; epochs starting at or after it are forgotten.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let log_start = self.log_start_offset();
        let new_end = if offset <= log_start {
            self.truncate_fully(offset.max(0))?;
            offset.max(0)
        } else {
            let mut segments = self.segments.write();
            let idx = segments
                .partition_point(|s| s.base_offset <= offset)
                .saturating_sub(1);
            for removed in segments.drain(idx + 1..) {
                self.remove_segment(&removed)?;
            }
            segments[idx].truncate_to(offset)?
        };
        if new_end < log_start {
            // The removed batch held the log start (DeleteRecords inside a
            // batch): bring the start down to the new end, as Kafka does, so
            // that start <= end and a follower can fetch that batch again.
            // Nothing below it is readable: the log is empty from there.
            self.log_start.store(new_end, Ordering::Release);
            self.log_start_file.write(new_end)?;
        }
        self.log_end.store(new_end, Ordering::Release);
        self.epochs.lock().truncate_from_end(new_end)?;
        self.lower_cleaner_checkpoint(new_end)?;
        self.rebuild_transactions()?;
        writer.latest_epoch = None;
        let recovery_point = {
            let mut state = self.flush.lock();
            state.flushed_offset = state.flushed_offset.min(new_end);
            state.flushed_offset
        };
        self.recovery_point_file.write(recovery_point)?;
        Ok(())
    }

    /// Empties the log and makes it start (and end) at `offset`, beyond its
    /// current end (replication: a follower that was away while its leader
    /// deleted everything past the follower's end starts over at the
    /// leader's log start). Its leader epochs go with its records.
    pub fn restart_at(&self, offset: i64) -> Result<(), LogError> {
        let mut writer = self.writer.lock();
        let log_end = self.log_end_offset();
        if offset <= log_end {
            return Err(LogError::invalid(format!(
                "a log can only restart past its end ({log_end}), not at {offset}"
            )));
        }
        self.truncate_fully(offset)?;
        self.epochs.lock().truncate_from_end(0)?;
        // Nothing is left of any transaction: the leader's copy brings
        // what follows.
        {
            let mut txns = self.txns.lock();
            *txns = Transactions::default();
            self.txn_summary.publish(&txns);
            txns.write_checkpoint(&self.dir, offset)?;
        }
        self.log_end.store(offset, Ordering::Release);
        writer.latest_epoch = None;
        self.flush.lock().flushed_offset = offset;
        self.recovery_point_file.write(offset)?;
        Ok(())
    }

    /// Replaces all segments with one empty segment at `offset`.
    fn truncate_fully(&self, offset: i64) -> Result<(), LogError> {
        // The fresh segment may take the name of an old one: that one must
        // never reopen it for a reader still holding the old object.
        for segment in self.segments.read().iter() {
            segment.retire();
        }
        let fresh = Arc::new(Segment::create_preallocated(
            &self.dir,
            offset,
            &self.files,
            preallocation(&self.config.read()),
        )?);
        let old = std::mem::replace(&mut *self.segments.write(), vec![fresh]);
        for segment in old.iter().filter(|s| s.base_offset != offset) {
            self.remove_segment(segment)?;
        }
        self.log_start.store(offset, Ordering::Release);
        self.log_start_file.write(offset)?;
        self.epochs.lock().truncate_from_start(offset)?;
        Ok(())
    }

    /// DeleteRecords: makes `offset` the log start offset (when it is above
    /// the current one) and deletes the segments wholly below it. Returns
    /// the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _writer = self.writer.lock();
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        if offset > log_end || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            });
        }
        if offset <= log_start {
            return Ok(log_start);
        }
        self.log_start.store(offset, Ordering::Release);
        self.log_start_file.write(offset)?;
        self.delete_segments_while(|segment, _| segment.next_offset() <= offset)?;
        self.epochs.lock().truncate_from_start(offset)?;
        Ok(offset)
    }

    /// Deletes closed segments past `retention.ms` (by their newest
    /// timestamp) or beyond `retention.bytes`, oldest first. Returns how many
    /// were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        self.delete_expired_files(now_ms)?;
        let config = self.config();
        if !config.cleanup_policy.deletes() {
            return Ok(0);
        }
        let _writer = self.writer.lock();
        let mut total = self.size_bytes();
        let deleted = self.delete_segments_while(|segment, _| {
            let expired = config
                .retention_ms
                .is_some_and(|ms| ms >= 0 && now_ms - segment.max_timestamp() > ms);
            let oversize = config
                .retention_bytes
                .is_some_and(|max| total.saturating_sub(segment.size()) >= max);
            if expired || oversize {
                total -= segment.size();
                true
            } else {
                false
            }
        })?;
        if deleted > 0 {
            let first_base = self.segments.read()[0].base_offset;
            if first_base > self.log_start_offset() {
                self.log_start.store(first_base, Ordering::Release);
                self.log_start_file.write(first_base)?;
                self.epochs.lock().truncate_from_start(first_base)?;
            }
            tracing::info!(dir = %self.dir.display(), deleted, log_start = first_base, "retention deleted segments");
        }
        Ok(deleted)
    }

    /// Removes a segment the log no longer lists: under
    /// `file.delete.delay.ms` its files are renamed `.deleted` and deleted
    /// by a later [`Log::delete_expired_files`]; with no delay, at once.
    pub(crate) fn remove_segment(&self, segment: &Segment) -> Result<(), LogError> {
        self.txns.lock().forget_segment(segment.base_offset);
        let delay = self.config.read().file_delete_delay_ms;
        if delay <= 0 {
            return segment.delete_files();
        }
        let renamed = segment.rename_deleted()?;
        let due = now_ms().saturating_add(delay);
        self.pending_deletes
            .lock()
            .extend(renamed.into_iter().map(|path| (due, path)));
        Ok(())
    }

    /// Deletes the `.deleted` files whose `file.delete.delay.ms` has passed
    /// by `now_ms`; returns how many. [`Log::enforce_retention`] calls it,
    /// so the broker's retention round deletes them.
    pub fn delete_expired_files(&self, now_ms: i64) -> Result<usize, LogError> {
        let due: Vec<PathBuf> = {
            let mut pending = self.pending_deletes.lock();
            let (due, keep) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(at, _)| *at <= now_ms);
            *pending = keep;
            due.into_iter().map(|(_, path)| path).collect()
        };
        for path in &due {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(due.len())
    }

    /// Deletes closed segments from the oldest while `delete` says so.
    fn delete_segments_while(
        &self,
        mut delete: impl FnMut(&Segment, usize) -> bool,
    ) -> Result<usize, LogError> {
        let mut segments = self.segments.write();
        let closed = segments.len() - 1;
        let count = (0..closed).take_while(|&i| delete(&segments[i], i)).count();
        if count > 0 {
            // An open transaction whose first records go with these
            // segments stays open (Kafka keeps the last stable offset):
            // checkpoint it first, as a recovery scanning the remaining
            // segments could no longer find where it began.
            let first_kept = segments[count].base_offset;
            let txns = self.txns.lock();
            if txns.open().iter().any(|&(_, first)| first < first_kept) {
                txns.write_checkpoint(&self.dir, self.log_end_offset())?;
            }
        }
        for segment in segments.drain(..count) {
            self.remove_segment(&segment)?;
        }
        Ok(count)
    }

    /// The latest leader epoch the log has seen.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.lock().latest_epoch()
    }

    /// OffsetForLeaderEpoch: the largest epoch `<= epoch` the log knows and
    /// the offset where it ended.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs
            .lock()
            .end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch history: `(epoch, start offset)` pairs, oldest first.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.lock().entries().to_vec()
    }

    /// Stores the high watermark (replication keeps it across restarts).
    pub fn write_high_watermark(&self, high_watermark: i64) -> Result<(), LogError> {
        self.high_watermark_file.write(high_watermark)
    }

    /// The high watermark stored last, if any.
    pub fn read_high_watermark(&self) -> Result<Option<i64>, LogError> {
        self.high_watermark_file.read()
    }

    /// Deletes the log's directory (DeleteTopics).
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(dir)?;
        Ok(())
    }
}

/// How many bytes a new active segment file gets at creation: its
/// `segment.bytes` under `preallocate`, else none.
fn preallocation(config: &LogConfig) -> u64 {
    if config.preallocate {
        config.segment_bytes.min(i32::MAX as u64)
    } else {
        0
    }
}

/// When every batch in `bytes` is empty (no record), the offset after the
/// last one.
fn next_after_empty_batches(bytes: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let mut next = None;
    while pos < bytes.len() {
        let header = BatchHeader::parse(&bytes[pos..]).ok()?;
        if header.records_count != 0 {
            return None;
        }
        next = Some(header.next_offset());
        pos += header.size();
    }
    next
}

fn check_size(header: &BatchHeader, config: &LogConfig) -> Result<(), LogError> {
    if header.size() > config.max_message_bytes {
        return Err(LogError::MessageTooLarge {
            size: header.size(),
            max: config.max_message_bytes,
        });
    }
    Ok(())
}

fn needs_roll(
    dir: &Path,
    active: &Segment,
    pending: u64,
    header: &BatchHeader,
    config: &LogConfig,
    max_index_entries: usize,
) -> bool {
    let size = active.size() + pending;
    if size == 0 {
        return false;
    }
    let segment_bytes = config.segment_bytes.min(i32::MAX as u64);
    size + header.size() as u64 > segment_bytes
        || config.segment_ms.is_some_and(|ms| {
            let jitter = roll_jitter(dir, active.base_offset, config.segment_jitter_ms);
            active.rolling_timestamp() >= 0
                && header
                    .max_timestamp
                    .saturating_sub(active.rolling_timestamp())
                    > ms.saturating_sub(jitter)
        })
        || active.index_entries() >= max_index_entries
        || header.last_offset() - active.base_offset > i32::MAX as i64
}

/// How much earlier than `segment.ms` the segment of `dir` at `base`
/// rolls: Kafka draws it at random in `[0, segment.jitter.ms)` per
/// segment; here it is a hash of the log's directory and the segment's
/// base offset, as spread across partitions and segments but the same
/// after a restart (no state to keep).
fn roll_jitter(dir: &Path, base: i64, jitter_ms: i64) -> i64 {
    use std::hash::{Hash, Hasher};
    if jitter_ms <= 0 {
        return 0;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    base.hash(&mut hasher);
    (hasher.finish() % jitter_ms as u64) as i64
}

/// Base offsets of the segments in `dir`, from the `.log` file names.
fn segment_bases(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    Ok(bases)
}

/// Removes index files without a log file, temporary checkpoint files and
/// the files of removed segments waiting for their deletion.
fn clean_leftovers(dir: &Path) -> Result<(), LogError> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let orphan_index = matches!(ext, "index" | "timeindex" | "txnindex")
            && !path.with_extension("log").exists();
        // `.deleted`: removed segments whose delay a restart cut short;
        // no reader can hold them any more.
        if orphan_index || ext == "tmp" || ext == "deleted" {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Runs `op` again while it fails on a segment retired under it (see
/// [`Segment::retire`]), up to [`RETIRED_RETRIES`] times, calling `settle`
/// before each retry.
pub(crate) fn retrying_retired<T>(
    settle: impl Fn(),
    mut op: impl FnMut() -> Result<T, LogError>,
) -> Result<T, LogError> {
    let mut attempt = 0;
    loop {
        match op() {
            Err(e) if is_retired(&e) && attempt < RETIRED_RETRIES => {
                attempt += 1;
                settle();
            }
            other => return other,
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
