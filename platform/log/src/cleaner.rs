//! The log cleaner: compaction of logs whose `cleanup.policy` contains
//! `compact`.
//!
//! A pass builds a key → latest offset map over the dirty section (from the
//! cleaner checkpoint to the cleanable end: never the active segment, never
//! records younger than `min.compaction.lag.ms`), bounded by
//! `log.cleaner.dedupe.buffer.size`, then rewrites every closed segment below
//! the end of the map, keeping per key only the record the map names.
//! Offsets never change: a rewritten batch keeps its base offset,
//! `lastOffsetDelta`, leader epoch and producer id/epoch/sequence. A batch
//! emptied by the cleaning disappears, except the last batch of each
//! rewritten segment (so the segment still ends where it ended) and the last
//! batch of each producer, which stay as empty batches as in Kafka.
//!
//! Transactions: see [`txn`] (aborted records removed, markers removed
//! `delete.retention.ms` after nothing of their transaction is left).
//!
//! Tombstones (null value) remove their key. The first pass that keeps a
//! tombstone stamps its batch with a delete horizon (`now +
//! delete.retention.ms`, Kafka's KIP-534: attribute bit 6, the horizon in
//! `baseTimestamp`, record timestamp deltas rewritten against it); a pass
//! after the horizon drops the tombstone.
//!
//! Rewritten segments replace the old ones crash-safely; see [`SwapStep`]
//! and `docs/storage.md`.

pub(crate) mod offset_map;
mod txn;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::DecodeLimits;
use crate::batch::{self, BatchHeader};
use crate::checkpoint::{OffsetCheckpoint, sync_dir};
use crate::codec::{self, Decompressor};
use crate::committed::CommittedFilter;
use crate::files::is_retired;
use crate::index::{Index, OffsetEntry, TimeEntry};
use crate::log::Log;
use crate::records::{RawRecord, decode_records};
use crate::segment::{Segment, file_stem};
use crate::{LogConfig, LogError};
use offset_map::OffsetMap;
use txn::CleanedTxns;

/// File name of the per-partition cleaner checkpoint: the first dirty
/// offset (everything below it has been cleaned at least once).
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Suffix of a rewritten segment file being written.
pub const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a rewritten segment file ready to replace the old segments.
pub const SWAP_SUFFIX: &str = "swap";

const DELETE_HORIZON_BIT: i16 = 1 << 6;

/// Settings of the cleaner, shared by every log (Kafka's broker configs).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: memory of the key → offset map of
    /// one pass. A dirty section that does not fit is cleaned in several
    /// passes.
    pub dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: bytes read plus written per
    /// second, `None` for no limit.
    pub io_max_bytes_per_second: Option<f64>,
    /// `log.cleaner.threads`: how many logs are cleaned at once (used by the
    /// broker's scheduler).
    pub threads: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: None,
            threads: 1,
        }
    }
}

/// What one call of [`Log::clean`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanStats {
    /// Passes run (more than one when the offset map filled up).
    pub passes: usize,
    /// Bytes of segments read while rewriting.
    pub bytes_read: u64,
    /// Bytes of rewritten segments written.
    pub bytes_written: u64,
    /// Records dropped (superseded, expired tombstones, aborted
    /// transactions' records, removed markers).
    pub records_removed: u64,
    /// Records kept in rewritten batches.
    pub records_kept: u64,
    /// The first dirty offset after cleaning.
    pub first_dirty_offset: i64,
}

/// The steps of a segment swap, in order, for crash tests: a clean stopped
/// with [`Log::clean_until`] just before a step leaves the files exactly as a
/// kill at that moment would.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[doc(hidden)]
pub enum SwapStep {
    /// Writing `.cleaned` files (half written: a torn `.cleaned` log).
    WriteCleaned,
    /// Renaming `.cleaned` index files to `.swap`.
    RenameIndexesToSwap,
    /// Renaming the `.cleaned` log to `.swap` (the commit point).
    RenameLogToSwap,
    /// Deleting the old segments' files (half of them deleted).
    DeleteOld,
    /// Renaming the `.swap` index files to their final names.
    RenameIndexesFromSwap,
    /// Renaming the `.swap` log to its final name.
    RenameLogFromSwap,
    /// Writing the cleaner checkpoint.
    Checkpoint,
}

/// Per-log cleaner state, kept in the [`Log`].
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// Earliest delete horizon stamped on a kept tombstone: the log is due
    /// for cleaning then even if it is not dirty.
    tombstone_horizon: Option<i64>,
    /// Whether `tombstone_horizon` has been worked out since the log was
    /// opened. The horizons live in the batches themselves (KIP-534), so
    /// the first look after an open reads them from the clean section's
    /// batch headers: a restart does not keep tombstones past their time.
    horizon_known: bool,
}

pub(crate) fn new_state() -> Mutex<CleanerState> {
    Mutex::new(CleanerState::default())
}

/// Whether the log is due for cleaning at `now_ms`, and how dirty it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanability {
    /// First offset not cleaned yet.
    pub first_dirty_offset: i64,
    /// End of what may be cleaned now (active segment base, or the first
    /// segment with records younger than `min.compaction.lag.ms`).
    pub cleanable_end: i64,
    /// Dirty bytes / (clean + dirty bytes).
    pub dirty_ratio: f64,
    /// Whether a clean would run.
    pub due: bool,
}

struct Throttle {
    rate: Option<f64>,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(rate: Option<f64>) -> Self {
        Throttle {
            rate: rate.filter(|r| *r > 0.0 && r.is_finite()),
            start: Instant::now(),
            bytes: 0,
        }
    }

    fn consume(&mut self, bytes: u64) {
        self.bytes += bytes;
        if let Some(rate) = self.rate {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate);
            let elapsed = self.start.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

impl Log {
    fn cleaner_checkpoint(&self) -> OffsetCheckpoint {
        OffsetCheckpoint::new(self.dir().join(CLEANER_OFFSET_CHECKPOINT))
    }

    /// Brings the cleaner checkpoint down to `end` after a truncation, so
    /// that records appended again above `end` count as dirty.
    pub(crate) fn lower_cleaner_checkpoint(&self, end: i64) -> Result<(), LogError> {
        let checkpoint = self.cleaner_checkpoint();
        match checkpoint.read()? {
            Some(stored) if stored > end => checkpoint.write(end),
            _ => Ok(()),
        }
    }

    /// First offset the cleaner has not passed yet (the cleaner checkpoint,
    /// but not below the log start).
    pub fn first_dirty_offset(&self) -> Result<i64, LogError> {
        let stored = self.cleaner_checkpoint().read()?.unwrap_or(-1);
        // Not past the log end: a truncation (replication) may have cut the
        // log below a checkpoint written before it.
        Ok(stored
            .max(self.log_start_offset())
            .min(self.log_end_offset()))
    }

    /// How dirty the log is and whether [`Log::clean`] would run at `now_ms`.
    pub fn cleanability(&self, now_ms: i64) -> Result<Cleanability, LogError> {
        let horizon = self.tombstone_horizon(&mut self.cleaner_state().lock())?;
        self.cleanability_with(now_ms, horizon)
    }

    /// The earliest delete horizon of a tombstone kept by an earlier pass,
    /// read from the batch headers of the clean section the first time.
    fn tombstone_horizon(&self, state: &mut CleanerState) -> Result<Option<i64>, LogError> {
        if !state.horizon_known {
            let first_dirty = self.first_dirty_offset()?;
            // Retention may delete a segment while it is read: read the
            // segments of the moment again.
            let horizon = crate::log::retrying_retired(
                || self.settle(),
                || {
                    let mut horizon: Option<i64> = None;
                    for segment in self.closed_segments() {
                        if segment.base_offset >= first_dirty {
                            break;
                        }
                        segment.walk(0, |_, header| {
                            if header.base_offset >= first_dirty {
                                return false;
                            }
                            if header.attributes & DELETE_HORIZON_BIT != 0 {
                                let h = header.base_timestamp;
                                horizon = Some(horizon.map_or(h, |old| old.min(h)));
                            }
                            true
                        })?;
                    }
                    Ok(horizon)
                },
            )?;
            state.tombstone_horizon = horizon;
            state.horizon_known = true;
        }
        Ok(state.tombstone_horizon)
    }

    fn cleanability_with(
        &self,
        now_ms: i64,
        tombstone_horizon: Option<i64>,
    ) -> Result<Cleanability, LogError> {
        let config = self.config();
        let first_dirty = self.first_dirty_offset()?;
        let closed = self.closed_segments();
        let mut cleanable_end = self.active_base_offset();
        // Not past an open transaction (Kafka's first unstable offset): its
        // records may yet be aborted, and must not displace committed keys.
        if let Some(unstable) = self.first_unstable_offset()
            && let Some(segment) = closed.iter().find(|s| s.next_offset() > unstable)
        {
            cleanable_end = cleanable_end.min(segment.base_offset);
        }
        for segment in &closed {
            if config.min_compaction_lag_ms > 0
                && segment.max_timestamp() > now_ms.saturating_sub(config.min_compaction_lag_ms)
            {
                cleanable_end = segment.base_offset;
                break;
            }
        }
        let mut clean = 0u64;
        let mut dirty = 0u64;
        let mut overdue = false;
        for segment in closed.iter().filter(|s| s.base_offset < cleanable_end) {
            if segment.next_offset() <= first_dirty {
                clean += segment.size();
            } else {
                dirty += segment.size();
                let first_ts = segment.rolling_timestamp();
                if first_ts >= 0
                    && config.max_compaction_lag_ms < i64::MAX
                    && now_ms.saturating_sub(first_ts) > config.max_compaction_lag_ms
                {
                    overdue = true;
                }
            }
        }
        let ratio = if clean + dirty == 0 {
            0.0
        } else {
            dirty as f64 / (clean + dirty) as f64
        };
        let horizon_passed = tombstone_horizon.is_some_and(|h| now_ms >= h);
        let due = config.cleanup_policy.compacts()
            && ((dirty > 0 && (ratio >= config.min_cleanable_dirty_ratio || overdue))
                || (horizon_passed && clean > 0));
        Ok(Cleanability {
            first_dirty_offset: first_dirty,
            cleanable_end,
            dirty_ratio: ratio,
            due,
        })
    }

    /// Cleans the log when it is due ([`Log::cleanability`]); `Ok(None)`
    /// when it was not. `now_ms` is the clock for the compaction lags and
    /// tombstone horizons. Runs on the caller's thread (a blocking thread of
    /// the broker); appends and reads go on meanwhile.
    pub fn clean(
        &self,
        now_ms: i64,
        cleaner: &CleanerConfig,
    ) -> Result<Option<CleanStats>, LogError> {
        if !self.cleanability(now_ms)?.due {
            return Ok(None);
        }
        self.clean_until(now_ms, cleaner, None).map(Some)
    }

    /// Cleans whatever is cleanable now, due or not. With `stop_before`, the
    /// first segment swap stops just before that step and returns an error,
    /// leaving the files as a kill there would (crash tests).
    #[doc(hidden)]
    pub fn clean_until(
        &self,
        now_ms: i64,
        cleaner: &CleanerConfig,
        stop_before: Option<SwapStep>,
    ) -> Result<CleanStats, LogError> {
        let state = self.cleaner_state();
        let mut guard = state.lock();
        let config = self.config();
        let known_horizon = self.tombstone_horizon(&mut guard)?;
        let cleanability = self.cleanability_with(now_ms, known_horizon)?;
        let mut first_dirty = cleanability.first_dirty_offset;
        let end = cleanability.cleanable_end;
        let mut stats = CleanStats::default();
        let mut throttle = Throttle::new(cleaner.io_max_bytes_per_second);
        let mut decompressor = Decompressor::default();
        let mut horizon: Option<i64> = None;
        loop {
            let before = first_dirty;
            let closed: Vec<Arc<Segment>> = self
                .closed_segments()
                .into_iter()
                .filter(|s| s.base_offset < end.max(first_dirty))
                .collect();
            let (map, map_end) = match build_map(
                &closed,
                CommittedFilter::new(self.aborted_transactions(first_dirty, end)),
                first_dirty,
                end,
                cleaner.dedupe_buffer_size,
                &mut throttle,
                &mut decompressor,
                DecodeLimits::of(&config),
            ) {
                Ok(built) => built,
                Err(e) if is_retired(&e) => {
                    return Ok(self.abandon(&mut guard, stats, first_dirty));
                }
                Err(e) => return Err(e),
            };
            let to_clean: Vec<Arc<Segment>> = closed
                .into_iter()
                .filter(|s| s.base_offset < map_end.max(first_dirty))
                .collect();
            stats.passes += 1;
            // One walk over every group of the pass, from the log start:
            // a marker is removable only when nothing of its transaction
            // is left anywhere before it.
            let mut txns = CleanedTxns::new(self.aborted_transactions(i64::MIN, i64::MAX));
            for group in group_segments(&to_clean, &config) {
                let ctx = RewriteCtx {
                    map: &map,
                    map_end,
                    now_ms,
                    delete_retention_ms: config.delete_retention_ms,
                    index_interval: config.index_interval_bytes,
                    limits: DecodeLimits::of(&config),
                };
                let outcome = match self.clean_group(
                    group,
                    &ctx,
                    &mut txns,
                    &mut throttle,
                    &mut decompressor,
                    stop_before,
                ) {
                    Ok(outcome) => outcome,
                    Err(e) if is_retired(&e) => {
                        return Ok(self.abandon(&mut guard, stats, first_dirty));
                    }
                    Err(e) => return Err(e),
                };
                if !outcome.swapped {
                    // The log changed under the pass (truncation,
                    // retention): the walk no longer matches the files.
                    return Ok(self.abandon(&mut guard, stats, first_dirty));
                }
                stats.bytes_read += outcome.bytes_read;
                stats.bytes_written += outcome.bytes_written;
                stats.records_removed += outcome.removed;
                stats.records_kept += outcome.kept;
                if let Some(h) = outcome.horizon {
                    horizon = Some(horizon.map_or(h, |old: i64| old.min(h)));
                }
            }
            if stop_before == Some(SwapStep::Checkpoint) {
                return Err(crash_here(SwapStep::Checkpoint));
            }
            first_dirty = map_end.max(first_dirty);
            self.cleaner_checkpoint().write(first_dirty)?;
            if first_dirty >= end || first_dirty <= before {
                break;
            }
        }
        guard.tombstone_horizon = horizon;
        guard.horizon_known = true;
        stats.first_dirty_offset = first_dirty;
        tracing::info!(
            dir = %self.dir().display(),
            passes = stats.passes,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            removed = stats.records_removed,
            first_dirty,
            "cleaned log"
        );
        Ok(stats)
    }

    /// Ends a clean that met a segment retention deleted under it (a log
    /// with `compact,delete`): the groups already swapped stay, the cleaner
    /// checkpoint stays where it was (the next clean goes over them again),
    /// and the tombstone horizon is worked out again next time.
    fn abandon(
        &self,
        state: &mut CleanerState,
        mut stats: CleanStats,
        first_dirty: i64,
    ) -> CleanStats {
        tracing::debug!(dir = %self.dir().display(), "retention deleted a segment being cleaned; cleaning again later");
        state.horizon_known = false;
        stats.first_dirty_offset = first_dirty;
        stats
    }

    fn clean_group(
        &self,
        group: &[Arc<Segment>],
        ctx: &RewriteCtx<'_>,
        txns: &mut CleanedTxns,
        throttle: &mut Throttle,
        decompressor: &mut Decompressor,
        stop_before: Option<SwapStep>,
    ) -> Result<GroupOutcome, LogError> {
        let dir = self.dir().to_path_buf();
        let base = group[0].base_offset;
        let expected: Vec<(u64, i64)> = group.iter().map(|s| (s.size(), s.next_offset())).collect();
        let paths = SwapPaths::new(&dir, base);
        let mut outcome = match write_cleaned(
            group,
            &paths,
            ctx,
            txns,
            throttle,
            decompressor,
            stop_before,
        ) {
            Ok(outcome) => outcome,
            Err(e) => {
                if !matches!(stop_before, Some(SwapStep::WriteCleaned)) {
                    paths.remove(CLEANED_SUFFIX);
                }
                return Err(e);
            }
        };
        let check = |step: SwapStep| -> Result<(), LogError> {
            if stop_before == Some(step) {
                Err(crash_here(step))
            } else {
                Ok(())
            }
        };
        let entries = txns.take_entries();
        if outcome.markers_removed {
            // A recovery from an older transaction-state-checkpoint would
            // find a transaction open there and never meet its removed
            // marker: checkpoint past the markers before the swap commits.
            self.checkpoint_transactions()?;
        }
        check(SwapStep::RenameIndexesToSwap)?;
        // Not one left by an earlier attempt that failed here.
        match fs::remove_file(paths.txn_index(SWAP_SUFFIX)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        if !entries.is_empty() {
            // With the other `.swap` files, so that a crash past the
            // commit point finishes the swap with the group's entries.
            crate::transactions::write_index(&paths.txn_index(SWAP_SUFFIX), &entries)?;
        }
        fs::rename(paths.index(CLEANED_SUFFIX), paths.index(SWAP_SUFFIX))?;
        fs::rename(
            paths.time_index(CLEANED_SUFFIX),
            paths.time_index(SWAP_SUFFIX),
        )?;
        check(SwapStep::RenameLogToSwap)?;
        fs::rename(paths.log(CLEANED_SUFFIX), paths.log(SWAP_SUFFIX))?;
        sync_dir(&dir)?;
        // From here the new set is committed: a crash finishes the swap.
        let swapped = self.replace_segments(group, &expected, entries, || {
            for (i, old) in group.iter().enumerate() {
                self.remove_segment(old)?;
                if i == 0 {
                    // A kill here leaves some old segments deleted.
                    check(SwapStep::DeleteOld)?;
                }
            }
            check(SwapStep::RenameIndexesFromSwap)?;
            fs::rename(paths.index(SWAP_SUFFIX), paths.index(""))?;
            fs::rename(paths.time_index(SWAP_SUFFIX), paths.time_index(""))?;
            if paths.txn_index(SWAP_SUFFIX).exists() {
                fs::rename(paths.txn_index(SWAP_SUFFIX), paths.txn_index(""))?;
            }
            check(SwapStep::RenameLogFromSwap)?;
            fs::rename(paths.log(SWAP_SUFFIX), paths.log(""))?;
            sync_dir(&dir)?;
            let segment = Segment::open_files(&dir, base, self.files())?;
            segment.recover(false, ctx.index_interval, None)?;
            Ok(segment)
        })?;
        if !swapped {
            // The log changed under us (truncation, retention): drop the work.
            paths.remove(SWAP_SUFFIX);
            return Ok(GroupOutcome::default());
        }
        outcome.swapped = true;
        Ok(outcome)
    }
}

fn crash_here(step: SwapStep) -> LogError {
    LogError::Io(std::io::Error::other(format!(
        "cleaner stopped before {step:?} (test hook)"
    )))
}

struct SwapPaths {
    dir: PathBuf,
    stem: String,
}

impl SwapPaths {
    fn new(dir: &Path, base: i64) -> Self {
        SwapPaths {
            dir: dir.to_path_buf(),
            stem: file_stem(base),
        }
    }

    fn path(&self, ext: &str, suffix: &str) -> PathBuf {
        if suffix.is_empty() {
            self.dir.join(format!("{}.{ext}", self.stem))
        } else {
            self.dir.join(format!("{}.{ext}.{suffix}", self.stem))
        }
    }

    fn log(&self, suffix: &str) -> PathBuf {
        self.path("log", suffix)
    }

    fn index(&self, suffix: &str) -> PathBuf {
        self.path("index", suffix)
    }

    fn time_index(&self, suffix: &str) -> PathBuf {
        self.path("timeindex", suffix)
    }

    fn txn_index(&self, suffix: &str) -> PathBuf {
        self.path("txnindex", suffix)
    }

    fn remove(&self, suffix: &str) {
        for path in [
            self.log(suffix),
            self.index(suffix),
            self.time_index(suffix),
            self.txn_index(suffix),
        ] {
            let _ = fs::remove_file(path);
        }
    }
}

struct RewriteCtx<'a> {
    /// The bounds every stored batch is decompressed within.
    limits: DecodeLimits,
    map: &'a OffsetMap,
    map_end: i64,
    now_ms: i64,
    delete_retention_ms: i64,
    index_interval: usize,
}

#[derive(Default)]
struct GroupOutcome {
    bytes_read: u64,
    bytes_written: u64,
    removed: u64,
    kept: u64,
    horizon: Option<i64>,
    /// Whether a marker was removed (emptied or dropped).
    markers_removed: bool,
    /// Whether the rewrite replaced the group (false: the log changed).
    swapped: bool,
}

/// Groups consecutive segments so that each group's input fits one segment
/// (`segment.bytes`, 32-bit relative offsets).
fn group_segments<'a>(segments: &'a [Arc<Segment>], config: &LogConfig) -> Vec<&'a [Arc<Segment>]> {
    let max_bytes = config.segment_bytes.min(i32::MAX as u64);
    let mut groups = Vec::new();
    let mut start = 0;
    let mut size = 0u64;
    for (i, segment) in segments.iter().enumerate() {
        let base = segments[start].base_offset;
        let fits = size + segment.size() <= max_bytes
            && segment.next_offset() - 1 - base <= i32::MAX as i64;
        if i > start && !fits {
            groups.push(&segments[start..i]);
            start = i;
            size = 0;
        }
        size += segment.size();
    }
    if start < segments.len() {
        groups.push(&segments[start..]);
    }
    groups
}

/// Builds the key → latest offset map from `first_dirty` up to `end`,
/// stopping at a batch boundary when the map is full. Returns the map and
/// the offset it covers up to (exclusive). Batches `committed` passes over
/// (aborted transactions' records, markers) stay out of the map.
#[allow(clippy::too_many_arguments)]
fn build_map(
    segments: &[Arc<Segment>],
    mut committed: CommittedFilter,
    first_dirty: i64,
    end: i64,
    buffer: usize,
    throttle: &mut Throttle,
    decompressor: &mut Decompressor,
    limits: DecodeLimits,
) -> Result<(OffsetMap, i64), LogError> {
    let mut map = OffsetMap::new(buffer);
    let mut map_end = first_dirty;
    let mut full = false;
    for segment in segments.iter().filter(|s| s.next_offset() > first_dirty) {
        if full || segment.base_offset >= end {
            break;
        }
        let start = segment.find(first_dirty)?.map_or(0, |(pos, _)| pos);
        segment.scan_batches(start, |_, bytes| {
            let header = batch::validate(bytes)?;
            throttle.consume(bytes.len() as u64);
            if header.base_offset >= end {
                return Ok(false);
            }
            // Records of aborted transactions never displace a key's
            // committed value (Kafka's cleaner leaves them out of its map).
            if committed.keeps(&header, bytes) {
                let records = decode_records(&header, bytes, decompressor, limits)
                    .map_err(|e| undecodable(&header, e))?;
                let keys: Vec<(&[u8], i64)> = records
                    .iter()
                    .filter(|r| r.offset(&header) >= first_dirty)
                    .filter_map(|r| r.key(records.payload).map(|k| (k, r.offset(&header))))
                    .collect();
                if !map.fits(keys.iter().map(|(k, _)| *k)) && map_end > first_dirty {
                    full = true;
                    return Ok(false);
                }
                for (key, offset) in keys {
                    map.put(key, offset);
                }
            }
            map_end = header.next_offset();
            Ok(true)
        })?;
    }
    Ok((map, map_end))
}

/// Writes the cleaned version of `group` as `.cleaned` files (fsynced).
#[allow(clippy::too_many_arguments)]
fn write_cleaned(
    group: &[Arc<Segment>],
    paths: &SwapPaths,
    ctx: &RewriteCtx<'_>,
    txns: &mut CleanedTxns,
    throttle: &mut Throttle,
    decompressor: &mut Decompressor,
    stop_before: Option<SwapStep>,
) -> Result<GroupOutcome, LogError> {
    paths.remove(CLEANED_SUFFIX);
    let base = group[0].base_offset;
    // Last batch of each producer in the group and the group's last batch
    // stay, even emptied.
    let mut last_of_producer: HashMap<i64, i64> = HashMap::new();
    let mut last_batch = base;
    for segment in group {
        segment.walk(0, |_, h| {
            if h.producer_id >= 0 {
                last_of_producer.insert(h.producer_id, h.base_offset);
            }
            last_batch = h.base_offset;
            true
        })?;
    }
    let log_file = File::create(paths.log(CLEANED_SUFFIX))?;
    let mut out = BufWriter::with_capacity(1 << 20, &log_file);
    let mut index = Index::<OffsetEntry>::open(&paths.index(CLEANED_SUFFIX))?;
    let mut time_index = Index::<TimeEntry>::open(&paths.time_index(CLEANED_SUFFIX))?;
    let mut outcome = GroupOutcome::default();
    let mut position = 0u64;
    let mut since_index = 0usize;
    let mut max_ts = -1i64;
    let mut scratch = Vec::new();
    for segment in group {
        segment.scan_batches(0, |_, bytes| {
            let header = batch::validate(bytes)?;
            outcome.bytes_read += bytes.len() as u64;
            throttle.consume(bytes.len() as u64);
            let keep_empty = header.base_offset == last_batch
                || (header.producer_id >= 0
                    && last_of_producer.get(&header.producer_id) == Some(&header.base_offset));
            scratch.clear();
            let fate = if header.is_control() {
                Fate::Marker {
                    removable: txns.marker_is_removable(&header, bytes)?,
                }
            } else if txns.data_is_aborted(&header) {
                Fate::Aborted
            } else {
                Fate::Data
            };
            let written: &[u8] = match filter_batch(
                &header,
                bytes,
                ctx,
                fate,
                decompressor,
                keep_empty,
                &mut scratch,
                &mut outcome,
            )? {
                Filtered::Unchanged => bytes,
                Filtered::Rewritten => &scratch,
                Filtered::Dropped => return Ok(true),
            };
            let h = BatchHeader::parse(written)?;
            max_ts = max_ts.max(h.max_timestamp);
            let relative = (h.base_offset - base) as u32;
            if since_index >= ctx.index_interval {
                index.push(OffsetEntry {
                    relative_offset: relative,
                    position: position as u32,
                })?;
                if time_index.last().is_none_or(|e| max_ts > e.timestamp) {
                    time_index.push(TimeEntry {
                        timestamp: max_ts,
                        relative_offset: relative,
                    })?;
                }
                since_index = 0;
            }
            since_index += written.len();
            out.write_all(written)?;
            position += written.len() as u64;
            outcome.bytes_written += written.len() as u64;
            throttle.consume(written.len() as u64);
            if stop_before == Some(SwapStep::WriteCleaned) && position > 0 {
                // A kill while writing: half a batch at the end of `.cleaned`.
                out.write_all(&written[..written.len() / 2])?;
                out.flush()?;
                return Err(crash_here(SwapStep::WriteCleaned));
            }
            Ok(true)
        })?;
    }
    out.flush()?;
    drop(out);
    log_file.sync_all()?;
    index.sync()?;
    time_index.sync()?;
    Ok(outcome)
}

/// What the transactions make of a batch.
#[derive(Clone, Copy)]
enum Fate {
    /// Records compacted as usual.
    Data,
    /// Records of an aborted transaction: all go.
    Aborted,
    /// A control batch; `removable` once its delete horizon has passed.
    Marker { removable: bool },
}

enum Filtered {
    Unchanged,
    Rewritten,
    Dropped,
}

/// Filters one batch: the records the cleaner keeps, rewritten into
/// `out` when anything changed.
#[allow(clippy::too_many_arguments)]
fn filter_batch(
    header: &BatchHeader,
    bytes: &[u8],
    ctx: &RewriteCtx<'_>,
    fate: Fate,
    decompressor: &mut Decompressor,
    keep_empty: bool,
    out: &mut Vec<u8>,
    outcome: &mut GroupOutcome,
) -> Result<Filtered, LogError> {
    if matches!(fate, Fate::Marker { removable: false }) {
        return Ok(Filtered::Unchanged);
    }
    if header.records_count == 0 && !keep_empty {
        // An empty batch kept earlier as the last of its segment or
        // producer, and no longer that (Kafka's DELETE_EMPTY).
        return Ok(Filtered::Dropped);
    }
    let records = decode_records(header, bytes, decompressor, ctx.limits)
        .map_err(|e| undecodable(header, e))?;
    let has_horizon = header.attributes & DELETE_HORIZON_BIT != 0;
    let horizon_passed = has_horizon && ctx.now_ms >= header.base_timestamp;
    let mut kept: Vec<&RawRecord> = Vec::with_capacity(records.len());
    let mut needs_horizon = false;
    if let Fate::Marker { .. } = fate {
        // A removable marker: kept delete.retention.ms after the first pass
        // that found it so (KIP-534, as a tombstone), so that a consumer
        // reading behind still meets it.
        if !horizon_passed {
            kept.extend(records.iter());
            needs_horizon = !has_horizon;
        }
        outcome.markers_removed |= kept.is_empty() && records.len() > 0;
    }
    let aborted = matches!(fate, Fate::Aborted);
    for record in records
        .iter()
        .filter(|_| !matches!(fate, Fate::Marker { .. }))
    {
        let offset = record.offset(header);
        let key = record.key(records.payload);
        let superseded = key.is_some_and(|k| ctx.map.get(k).is_some_and(|latest| latest > offset));
        let tombstone = record.value.is_none() && key.is_some();
        let keep = if aborted || superseded {
            false
        } else if tombstone {
            if offset >= ctx.map_end {
                true
            } else if horizon_passed {
                false
            } else {
                needs_horizon |= !has_horizon;
                true
            }
        } else {
            true
        };
        if keep {
            kept.push(record);
        }
    }
    outcome.kept += kept.len() as u64;
    outcome.removed += (records.len() - kept.len()) as u64;
    let marker = matches!(fate, Fate::Marker { .. });
    if has_horizon && kept.iter().any(|r| marker || r.value.is_none()) {
        let h = header.base_timestamp;
        outcome.horizon = Some(outcome.horizon.map_or(h, |o: i64| o.min(h)));
    }
    if kept.len() == records.len() && !needs_horizon {
        return Ok(Filtered::Unchanged);
    }
    if kept.is_empty() {
        if !keep_empty {
            return Ok(Filtered::Dropped);
        }
        // An empty batch: header only, no codec, same offsets and producer.
        let empty = BatchHeader {
            attributes: header.attributes & !0x7,
            records_count: 0,
            ..*header
        };
        empty.write(&[], out);
        return Ok(Filtered::Rewritten);
    }
    let (attributes, base_ts) = if needs_horizon {
        let horizon = ctx.now_ms.saturating_add(ctx.delete_retention_ms);
        outcome.horizon = Some(outcome.horizon.map_or(horizon, |o: i64| o.min(horizon)));
        (header.attributes | DELETE_HORIZON_BIT, horizon)
    } else {
        (header.attributes, header.base_timestamp)
    };
    let mut raw = Vec::with_capacity(records.payload.len());
    for record in &kept {
        if base_ts == header.base_timestamp {
            raw.extend_from_slice(&records.payload[record.range.clone()]);
        } else {
            record.write_rebased(
                records.payload,
                header.base_timestamp.wrapping_sub(base_ts),
                &mut raw,
            );
        }
    }
    let payload = codec::compress(header.codec(), raw)?;
    let rewritten = BatchHeader {
        attributes,
        base_timestamp: base_ts,
        records_count: kept.len() as i32,
        ..*header
    };
    rewritten.write(&payload, out);
    Ok(Filtered::Rewritten)
}

/// Finishes or rolls back a segment swap interrupted by a crash (called by
/// `Log::open` before anything else looks at the segment files).
///
/// - `*.cleaned` files, and `.swap` index files without a `.swap` log, are
///   from before the commit point: deleted (the old segments are intact).
/// - A `.log.swap` file is a complete, fsynced rewrite of the segments from
///   its base offset to its end: the old segments in that range are deleted
///   and the `.swap` files renamed to their final names.
pub(crate) fn recover_swaps(dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        names.push(name);
    }
    let mut changed = false;
    for name in &names {
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            fs::remove_file(dir.join(name))?;
            changed = true;
        } else if let Some(stem) = name.strip_suffix(&format!(".log.{SWAP_SUFFIX}"))
            && let Ok(base) = stem.parse::<i64>()
        {
            swaps.push(base);
        }
    }
    for name in &names {
        for ext in ["index", "timeindex", "txnindex"] {
            if let Some(stem) = name.strip_suffix(&format!(".{ext}.{SWAP_SUFFIX}"))
                && stem.parse::<i64>().is_ok_and(|b| !swaps.contains(&b))
            {
                fs::remove_file(dir.join(name))?;
                changed = true;
            }
        }
    }
    for base in swaps {
        let paths = SwapPaths::new(dir, base);
        let end = swap_end(&paths.log(SWAP_SUFFIX), base)?;
        for name in &names {
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            if !matches!(ext, "log" | "index" | "timeindex" | "txnindex") || stem.len() != 20 {
                continue;
            }
            if stem.parse::<i64>().is_ok_and(|b| b >= base && b < end) {
                match fs::remove_file(dir.join(name)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for (from, to) in [
            (paths.index(SWAP_SUFFIX), paths.index("")),
            (paths.time_index(SWAP_SUFFIX), paths.time_index("")),
            (paths.txn_index(SWAP_SUFFIX), paths.txn_index("")),
        ] {
            if from.exists() {
                fs::rename(from, to)?;
            }
        }
        fs::rename(paths.log(SWAP_SUFFIX), paths.log(""))?;
        tracing::warn!(dir = %dir.display(), base, end, "finished an interrupted cleaner swap");
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// The next offset after the last batch of a `.swap` log file.
fn swap_end(path: &Path, base: i64) -> Result<i64, LogError> {
    let data = fs::read(path)?;
    let mut end = base;
    for item in batch::validated_batches(&data) {
        let (header, _) = item?;
        end = header.next_offset();
    }
    Ok(end)
}

/// A stored batch the cleaner cannot decode (past the decompression cap,
/// or damaged): the pass fails naming its offset, and the log is left as
/// it was.
fn undecodable(header: &BatchHeader, e: LogError) -> LogError {
    LogError::invalid(format!(
        "stored batch at offset {}: {e}",
        header.base_offset
    ))
}
