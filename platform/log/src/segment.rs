//! One segment: a `.log` file of whole batches starting at `base_offset`,
//! with its `.index` and `.timeindex`.
//!
//! Only the log's single writer appends to a segment. Readers use positioned
//! reads on a shared file handle and see only the bytes the writer has
//! published (`size`), so they never wait for the writer and never see half
//! a batch.
//!
//! The `.log` file's descriptor lives in the [`FileCache`]: each operation
//! takes it once (opening the file again if it was evicted) and keeps it to
//! its end. The indexes keep their entries in memory and hold no descriptor.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use crate::LogError;
use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::files::{CachedFile, FileCache};
use crate::index::{Index, OffsetEntry, TimeEntry};

/// `{base_offset:020}` — the file stem of every file of a segment.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// The suffix of a removed segment's files waiting for
/// `file.delete.delay.ms` (Kafka's).
pub const DELETED_SUFFIX: &str = ".deleted";

/// How much of a segment to read per positioned read when scanning it.
const SCAN_CHUNK: usize = 1 << 20;

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    file: CachedFile,
    /// Whether the `.log` file was written (or recovered past the recovery
    /// point) since its last fsync: a checkpoint skips clean segments, so
    /// an idle partition's files are not reopened to be fsynced.
    unsynced: AtomicBool,
    /// Bytes of whole batches published to readers.
    size: AtomicU64,
    /// Offset after the last batch (`base_offset` when empty).
    next_offset: AtomicI64,
    /// Largest batch max-timestamp in the segment, -1 when empty.
    max_timestamp: AtomicI64,
    /// Max timestamp of the first batch: `segment.ms` is measured from it.
    rolling_timestamp: AtomicI64,
    /// Bytes appended since the last offset-index entry (writer only).
    bytes_since_index: AtomicUsize,
    index: RwLock<Index<OffsetEntry>>,
    time_index: RwLock<Index<TimeEntry>>,
}

/// What the open-time check of a segment found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Recovered {
    pub(crate) batches: u64,
    pub(crate) truncated_bytes: u64,
    /// Zeros cut from the end of a preallocated file: no data lost.
    pub(crate) trimmed_bytes: u64,
}

impl Segment {
    /// Creates an empty segment (truncating leftovers with the same name).
    /// A segment object still naming those leftovers must be retired first
    /// ([`Segment::retire`]).
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        files: &Arc<FileCache>,
    ) -> Result<Segment, LogError> {
        let stem = file_stem(base_offset);
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let path = dir.join(format!("{stem}.{ext}"));
            if path.exists() {
                fs::remove_file(&path)?;
            }
        }
        Self::open_with(dir, base_offset, files, true)
    }

    /// [`Segment::create`], with the `.log` file given `preallocate` bytes
    /// at once when that is above zero (`preallocate`): the data still
    /// starts empty, the zeros after it are no batch.
    pub(crate) fn create_preallocated(
        dir: &Path,
        base_offset: i64,
        files: &Arc<FileCache>,
        preallocate: u64,
    ) -> Result<Segment, LogError> {
        let segment = Self::create(dir, base_offset, files)?;
        if preallocate > 0 {
            segment.file.get()?.set_len(preallocate)?;
        }
        Ok(segment)
    }

    /// Cuts the `.log` file to the data it holds, when it is longer (it was
    /// preallocated): done when the segment stops being active and when the
    /// log closes, so closed segments take only their size on disk.
    pub(crate) fn trim(&self) -> Result<(), LogError> {
        let file = match self.file.get() {
            Ok(file) => file,
            Err(e) if crate::files::is_retired(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        if file.metadata()?.len() > self.size() {
            file.set_len(self.size())?;
            self.unsynced.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Opens the files of an existing segment without checking their content.
    pub(crate) fn open_files(
        dir: &Path,
        base_offset: i64,
        files: &Arc<FileCache>,
    ) -> Result<Segment, LogError> {
        Self::open_with(dir, base_offset, files, false)
    }

    fn open_with(
        dir: &Path,
        base_offset: i64,
        files: &Arc<FileCache>,
        create: bool,
    ) -> Result<Segment, LogError> {
        let stem = file_stem(base_offset);
        let (file, open) = CachedFile::open(files, dir.join(format!("{stem}.log")), create)?;
        let size = open.metadata()?.len();
        drop(open);
        let index = Index::open(&dir.join(format!("{stem}.index")))?;
        let time_index = Index::open(&dir.join(format!("{stem}.timeindex")))?;
        Ok(Segment {
            base_offset,
            file,
            unsynced: AtomicBool::new(false),
            size: AtomicU64::new(size),
            next_offset: AtomicI64::new(base_offset),
            max_timestamp: AtomicI64::new(-1),
            rolling_timestamp: AtomicI64::new(-1),
            bytes_since_index: AtomicUsize::new(0),
            index: RwLock::new(index),
            time_index: RwLock::new(time_index),
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn rolling_timestamp(&self) -> i64 {
        self.rolling_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Entries of the offset index, which bounds the time index's too: a
    /// time entry is only ever written with an offset entry (or once, when
    /// the segment is sealed). The caller checks it against the larger,
    /// 12-byte time entries, so both files stay within `segment.index.bytes`.
    pub(crate) fn index_entries(&self) -> usize {
        self.index.read().len()
    }

    /// Open-time check. When the indexes are plausible, only the batches after
    /// the last offset-index entry are read and CRC-checked (a cleanly closed
    /// segment costs a few reads); otherwise, or when `full` is set (the
    /// segment lies past the recovery point), every batch is checked and the
    /// indexes are rebuilt. A torn or corrupt tail is truncated away.
    ///
    /// `next_base` is the base offset of the following segment, if any: no
    /// batch of this one may reach it.
    pub(crate) fn recover(
        &self,
        full: bool,
        index_interval: usize,
        next_base: Option<i64>,
    ) -> Result<Recovered, LogError> {
        let file = self.file.get()?;
        let file_len = file.metadata()?.len();
        if full {
            // Past the recovery point: not known to be on disk.
            self.unsynced.store(true, Ordering::Release);
        }
        let start = if full {
            None
        } else {
            self.plausible_index_start(&file, file_len)?
        };
        let (position, mut max_ts, seal) = match start {
            Some(found) => found,
            None => {
                self.index.write().clear()?;
                self.time_index.write().clear()?;
                (0, -1, None)
            }
        };
        if let Some(seal) = seal {
            // Set aside until the scan has shown it names the last batch and
            // the segment's max timestamp.
            self.time_index
                .write()
                .truncate_where(|e| e.relative_offset < seal.relative_offset)?;
        }
        // Re-add the entry at `position` as the scan passes it.
        self.index
            .write()
            .truncate_where(|e| (e.position as u64) < position)?;
        self.bytes_since_index
            .store(usize::MAX / 2, Ordering::Relaxed);
        let mut recovered = Recovered::default();
        let mut next_offset = self.base_offset;
        if let Some(last) = self.index.read().last() {
            next_offset = self.base_offset + last.relative_offset as i64;
        }
        // Only the first batch of the segment sets the rolling timestamp; a
        // light scan starts further on and leaves it to the read below.
        self.rolling_timestamp.store(-1, Ordering::Release);
        let mut last_base = None;
        let mut preallocated_tail = false;
        let mut pos = position;
        let mut scanner = Scanner::new(&file, pos, file_len);
        while let Some(chunk) = scanner.next_batch()? {
            let header = match batch::validate(chunk) {
                // The CRC does not cover the base offset: a damaged one is
                // caught only when it goes backwards, out of the segment's
                // 32-bit relative range (which the writer never leaves) or
                // into the next segment.
                Ok(h)
                    if h.base_offset >= next_offset
                        && h.last_offset() - self.base_offset <= i32::MAX as i64
                        && next_base.is_none_or(|next| h.last_offset() < next) =>
                {
                    h
                }
                Ok(h) => {
                    tracing::warn!(
                        segment = %self.file.path().display(),
                        position = pos,
                        base_offset = h.base_offset,
                        "batch offsets go backwards or out of the segment; truncating here"
                    );
                    break;
                }
                Err(_) if is_zero_header(chunk) => {
                    // The zeros a preallocated file holds after its data
                    // (`preallocate`): the end of the data, not damage.
                    preallocated_tail = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(segment = %self.file.path().display(), position = pos, error = %e, "invalid batch; truncating here");
                    break;
                }
            };
            if pos == 0 {
                self.rolling_timestamp
                    .store(header.max_timestamp, Ordering::Release);
            }
            max_ts = max_ts.max(header.max_timestamp);
            self.index_batch(&header, pos as u32, max_ts, index_interval)?;
            recovered.batches += 1;
            last_base = Some(header.base_offset);
            next_offset = header.next_offset();
            pos += header.size() as u64;
        }
        if !preallocated_tail && pos < file_len && file_len - pos < HEADER_LEN as u64 {
            // Less than a header left: zeros there are a preallocated
            // file's too (its data ended within a header of its end).
            let mut rest = vec![0; (file_len - pos) as usize];
            file.read_exact_at(&mut rest, pos)?;
            preallocated_tail = rest.iter().all(|&b| b == 0);
        }
        if pos < file_len && start.is_some() && !preallocated_tail {
            // A light check that meets a torn or corrupt tail cannot trust
            // what it took from the indexes: the next offset comes from the
            // entry before its restart point (wrong when the restart batch
            // itself is cut) and the time index may name the cut batches.
            // Check the whole segment instead; this happens only after a crash.
            return self.recover(true, index_interval, next_base);
        }
        if let Some(seal) = seal {
            let names_last_batch =
                last_base == Some(self.base_offset + seal.relative_offset as i64);
            if !names_last_batch || seal.timestamp != max_ts {
                // Not the entry sealing wrote for this data: the time index
                // is from another incarnation of the segment. Rebuild it.
                return self.recover(true, index_interval, next_base);
            }
            self.push_time_entry(seal.timestamp, seal.relative_offset)?;
        }
        if pos < file_len {
            if preallocated_tail {
                recovered.trimmed_bytes = file_len - pos;
            } else {
                recovered.truncated_bytes = file_len - pos;
            }
            file.set_len(pos)?;
            self.unsynced.store(true, Ordering::Release);
        }
        let last_time = self.time_index.read().last().map_or(-1, |e| e.timestamp);
        self.size.store(pos, Ordering::Release);
        self.next_offset.store(next_offset, Ordering::Release);
        self.max_timestamp
            .store(max_ts.max(last_time), Ordering::Release);
        if self.rolling_timestamp() < 0 && pos > 0 {
            // The first batch was before the scan start: read its header.
            let first = header_in(&file, 0)?;
            self.rolling_timestamp
                .store(first.max_timestamp, Ordering::Release);
        }
        Ok(recovered)
    }

    /// Where a light open-time scan can start: the last offset-index entry,
    /// when the index looks right and its entry points at the batch it names.
    /// Also returns the max timestamp up to that batch, from the time index.
    fn plausible_index_start(
        &self,
        file: &File,
        file_len: u64,
    ) -> Result<Option<(u64, i64, Option<TimeEntry>)>, LogError> {
        let index = self.index.read();
        let time_index = self.time_index.read();
        if !index.is_plausible() || !time_index.is_plausible() {
            return Ok(None);
        }
        let Some(last) = index.last() else {
            return Ok(None);
        };
        // Each offset-index entry is written with a time-index entry (the
        // first one always), so an empty time index next to a non-empty
        // offset index was lost: trusting it would hide the timestamps of
        // every batch before the restart point (max timestamp, ListOffsets).
        if time_index.last().is_none() {
            return Ok(None);
        }
        if last.position as u64 + HEADER_LEN as u64 > file_len {
            return Ok(None);
        }
        let header = match header_in(file, last.position as u64) {
            Ok(h) => h,
            Err(_) => return Ok(None),
        };
        if header.base_offset != self.base_offset + last.relative_offset as i64 {
            return Ok(None);
        }
        let positions_increase = index
            .entries()
            .windows(2)
            .all(|w| w[0].position < w[1].position);
        if !positions_increase {
            return Ok(None);
        }
        // Time entries are written with offset entries, so none names a batch
        // past the restart point, except the one that sealing the segment
        // (at roll, checkpoint, close) adds for its last batch. `recover`
        // checks that one against the scan.
        let (within, beyond): (Vec<TimeEntry>, Vec<TimeEntry>) = time_index
            .entries()
            .iter()
            .partition(|e| e.relative_offset <= last.relative_offset);
        if beyond.len() > 1 {
            return Ok(None);
        }
        let max_ts = within.last().map_or(-1, |e| e.timestamp);
        Ok(Some((
            last.position as u64,
            max_ts,
            beyond.first().copied(),
        )))
    }

    /// Adds index entries for a batch written at `position`; `max_ts` is the
    /// segment's max timestamp including this batch.
    fn index_batch(
        &self,
        header: &BatchHeader,
        position: u32,
        max_ts: i64,
        index_interval: usize,
    ) -> Result<(), LogError> {
        let since = self.bytes_since_index.load(Ordering::Relaxed);
        let relative_offset = (header.base_offset - self.base_offset) as u32;
        if since >= index_interval {
            self.index.write().push(OffsetEntry {
                relative_offset,
                position,
            })?;
            self.push_time_entry(max_ts, relative_offset)?;
            self.bytes_since_index
                .store(header.size(), Ordering::Relaxed);
        } else {
            self.bytes_since_index
                .store(since + header.size(), Ordering::Relaxed);
        }
        Ok(())
    }

    fn push_time_entry(&self, timestamp: i64, relative_offset: u32) -> Result<(), LogError> {
        let mut time_index = self.time_index.write();
        if time_index.last().is_none_or(|e| timestamp > e.timestamp) {
            time_index.push(TimeEntry {
                timestamp,
                relative_offset,
            })?;
        }
        Ok(())
    }

    /// Appends validated batches (`bytes` holds exactly them, `headers` their
    /// headers in order, offsets already assigned) and publishes them.
    pub(crate) fn append(
        &self,
        bytes: &[u8],
        headers: &[BatchHeader],
        index_interval: usize,
    ) -> Result<(), LogError> {
        let start = self.size();
        self.file.get()?.write_all_at(bytes, start)?;
        // Before the size is published: a flush that sees the new log end
        // sees this too.
        self.unsynced.store(true, Ordering::Release);
        let mut pos = start;
        let mut max_ts = self.max_timestamp();
        for header in headers {
            if self.rolling_timestamp() < 0 {
                self.rolling_timestamp
                    .store(header.max_timestamp, Ordering::Release);
            }
            max_ts = max_ts.max(header.max_timestamp);
            self.index_batch(header, pos as u32, max_ts, index_interval)?;
            pos += header.size() as u64;
        }
        self.max_timestamp.store(max_ts, Ordering::Release);
        if let Some(last) = headers.last() {
            self.next_offset
                .store(last.next_offset(), Ordering::Release);
        }
        self.size.store(pos, Ordering::Release);
        Ok(())
    }

    /// Records the segment's exact max timestamp in the time index, so a
    /// reopen learns it without a scan (done when the segment stops being
    /// active and at checkpoints).
    pub(crate) fn seal_time_index(&self) -> Result<(), LogError> {
        let max_ts = self.max_timestamp();
        if max_ts < 0 || self.is_empty() {
            return Ok(());
        }
        if self
            .time_index
            .read()
            .last()
            .is_some_and(|e| e.timestamp >= max_ts)
        {
            // Already sealed (or the entry would not be added): no need to
            // open the file to find the last batch.
            return Ok(());
        }
        let last_base = self.last_batch_position()?.map(|(_, h)| h.base_offset);
        if let Some(base) = last_base {
            self.push_time_entry(max_ts, (base - self.base_offset) as u32)?;
        }
        Ok(())
    }

    /// Forces the data to disk, when it changed since the last time. A
    /// retired segment has nothing left to keep.
    ///
    /// The descriptor may not be the one the data was written through (it
    /// was evicted meanwhile): on Linux an fsync flushes the file's dirty
    /// pages whichever descriptor wrote them, and reports a write-back error
    /// no one has seen yet (errseq), so that is the same.
    pub(crate) fn sync(&self) -> Result<(), LogError> {
        if !self.unsynced.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let result = match self.file.get() {
            Ok(file) => file.sync_data().map_err(LogError::from),
            Err(e) if crate::files::is_retired(&e) => return Ok(()),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.unsynced.store(true, Ordering::Release);
        }
        result
    }

    pub(crate) fn sync_indexes(&self) -> Result<(), LogError> {
        self.index.write().sync()?;
        self.time_index.write().sync()?;
        Ok(())
    }

    /// Writes index entries held only in memory to their files (no fsync),
    /// so a closed segment's indexes are complete on disk.
    pub(crate) fn write_out_indexes(&self) -> Result<(), LogError> {
        self.index.write().write_out()?;
        self.time_index.write().write_out()?;
        Ok(())
    }

    /// Position and header of the first batch whose last offset is
    /// `>= offset`, if the segment holds one.
    pub(crate) fn find(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let file = self.file.get()?;
        self.find_in(&file, offset)
    }

    fn find_in(&self, file: &File, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let size = self.size();
        let relative = offset - self.base_offset;
        let mut pos = self
            .index
            .read()
            .floor(relative)
            .map_or(0, |e| e.position as u64);
        while pos < size {
            let header = header_in(file, pos)?;
            if header.last_offset() >= offset {
                return Ok(Some((pos, header)));
            }
            pos += header.size() as u64;
        }
        Ok(None)
    }

    /// Position and header of the last batch.
    fn last_batch_position(&self) -> Result<Option<(u64, BatchHeader)>, LogError> {
        let next = self.next_offset();
        if next == self.base_offset {
            return Ok(None);
        }
        self.find(next - 1)
    }

    /// Reads whole batches starting with the one that holds `offset`: at most
    /// `max_bytes` (but always the first batch), none whose base offset is
    /// `>= limit`. `None` when the segment holds nothing at or after `offset`.
    /// Also returns the file read, for zero-copy senders.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        limit: i64,
    ) -> Result<Option<(Arc<File>, u64, Bytes)>, LogError> {
        let size = self.size();
        let file = self.file.get()?;
        let Some((pos, first)) = self.find_in(&file, offset)? else {
            return Ok(None);
        };
        if first.base_offset >= limit {
            return Ok(Some((file, pos, Bytes::new())));
        }
        let available = (size - pos) as usize;
        let want = max_bytes.max(first.size()).min(available);
        let mut buf = BytesMut::zeroed(want);
        file.read_exact_at(&mut buf, pos)?;
        let mut end = 0;
        while end + HEADER_LEN <= buf.len() {
            let header = BatchHeader::parse(&buf[end..])?;
            let batch_end = end + header.size();
            if batch_end > buf.len() || header.base_offset >= limit {
                break;
            }
            if end > 0 && batch_end > max_bytes {
                break;
            }
            end = batch_end;
        }
        buf.truncate(end);
        Ok(Some((file, pos, buf.freeze())))
    }

    /// Calls `visit` for each batch header from `position` up to the
    /// published end; stops early when it returns false.
    pub(crate) fn walk(
        &self,
        position: u64,
        mut visit: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<(), LogError> {
        let size = self.size();
        let file = self.file.get()?;
        let mut scanner = Scanner::new(&file, position, size);
        let mut pos = position;
        while let Some(chunk) = scanner.next_batch()? {
            let header = BatchHeader::parse(chunk)?;
            if !visit(pos, &header) {
                break;
            }
            pos += header.size() as u64;
        }
        Ok(())
    }

    /// Calls `visit` with the bytes of each whole batch from `position` up
    /// to the published end (not CRC-checked); stops early when it returns
    /// false. The cleaner reads segments through this.
    pub(crate) fn scan_batches(
        &self,
        position: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<bool, LogError>,
    ) -> Result<(), LogError> {
        let size = self.size();
        let file = self.file.get()?;
        let mut scanner = Scanner::new(&file, position, size);
        let mut pos = position;
        while let Some(chunk) = scanner.next_batch()? {
            let len = chunk.len() as u64;
            if !visit(pos, chunk)? {
                break;
            }
            pos += len;
        }
        Ok(())
    }

    /// The whole batch starting at `position`.
    pub(crate) fn batch_at(&self, position: u64, header: &BatchHeader) -> Result<Bytes, LogError> {
        let mut buf = BytesMut::zeroed(header.size());
        self.file.get()?.read_exact_at(&mut buf, position)?;
        Ok(buf.freeze())
    }

    /// Position from which to scan for the first record with a timestamp
    /// `>= timestamp`: every batch before it is older.
    pub(crate) fn time_scan_start(&self, timestamp: i64) -> u64 {
        let Some(entry) = self.time_index.read().below(timestamp) else {
            return 0;
        };
        self.index
            .read()
            .floor(entry.relative_offset as i64)
            .map_or(0, |e| e.position as u64)
    }

    /// Removes every batch from the one holding `offset` on. Returns the new
    /// next offset (the removed batch's base offset, which may be below
    /// `offset` when it falls inside a batch).
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        let file = self.file.get()?;
        let Some((pos, header)) = self.find_in(&file, offset)? else {
            return Ok(self.next_offset());
        };
        let relative = (header.base_offset - self.base_offset) as u32;
        self.index
            .write()
            .truncate_where(|e| (e.position as u64) < pos)?;
        self.time_index
            .write()
            .truncate_where(|e| e.relative_offset < relative)?;
        file.set_len(pos)?;
        self.unsynced.store(true, Ordering::Release);
        self.size.store(pos, Ordering::Release);
        self.next_offset
            .store(header.base_offset, Ordering::Release);
        // Recompute the max timestamp from what is left: the time index up to
        // the last kept offset-index point, then the batches after it.
        let restart = self.index.read().last().map_or(0, |e| e.position as u64);
        let mut max_ts = self.time_index.read().last().map_or(-1, |e| e.timestamp);
        self.walk(restart, |_, h| {
            max_ts = max_ts.max(h.max_timestamp);
            true
        })?;
        self.bytes_since_index
            .store((pos - restart) as usize, Ordering::Relaxed);
        self.max_timestamp.store(max_ts, Ordering::Release);
        if pos == 0 {
            self.rolling_timestamp.store(-1, Ordering::Release);
        }
        Ok(header.base_offset)
    }

    /// Closes the cached descriptor and makes every later use of this
    /// segment object fail with a retired error ([`crate::files::is_retired`]):
    /// its files are about to be deleted or replaced, and must not be
    /// reopened by name. Readers holding the file keep reading it.
    pub(crate) fn retire(&self) {
        self.file.retire();
    }

    /// Retires the segment and renames its files `<name>.deleted`, for the
    /// log to delete after `file.delete.delay.ms`: a reader holding the
    /// `.log` file (a fetch being sent) keeps it meanwhile. Returns the new
    /// paths.
    pub(crate) fn rename_deleted(&self) -> Result<Vec<PathBuf>, LogError> {
        self.retire();
        let dir = self.file.path().parent().unwrap_or(Path::new("."));
        let stem = file_stem(self.base_offset);
        let mut renamed = Vec::with_capacity(3);
        for ext in ["log", "index", "timeindex", "txnindex"] {
            let from = dir.join(format!("{stem}.{ext}"));
            let to = dir.join(format!("{stem}.{ext}{DELETED_SUFFIX}"));
            match fs::rename(&from, &to) {
                Ok(()) => renamed.push(to),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(renamed)
    }

    /// Retires the segment and deletes its files.
    pub(crate) fn delete_files(&self) -> Result<(), LogError> {
        self.retire();
        let dir = self.file.path().parent().unwrap_or(Path::new("."));
        let stem = file_stem(self.base_offset);
        for ext in ["log", "index", "timeindex", "txnindex"] {
            match fs::remove_file(dir.join(format!("{stem}.{ext}"))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Whether a would-be batch header is all zeros up to its magic byte:
/// what follows the data of a preallocated segment. No batch starts so (its
/// length is at least a header's and its magic is 2).
fn is_zero_header(chunk: &[u8]) -> bool {
    chunk.len() >= HEADER_LEN && chunk[..HEADER_LEN].iter().all(|&b| b == 0)
}

/// Reads the batch header at `position`.
fn header_in(file: &File, position: u64) -> Result<BatchHeader, LogError> {
    let mut buf = [0u8; HEADER_LEN];
    file.read_exact_at(&mut buf, position)?;
    BatchHeader::parse(&buf)
}

/// Reads a segment file batch by batch through a large buffer, so a scan
/// costs one read per megabyte rather than two per batch.
struct Scanner<'a> {
    file: &'a File,
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_pos: u64,
    /// Position of the next batch.
    pos: u64,
    end: u64,
}

impl<'a> Scanner<'a> {
    fn new(file: &'a File, pos: u64, end: u64) -> Self {
        Scanner {
            file,
            buf: Vec::new(),
            buf_pos: pos,
            pos,
            end,
        }
    }

    /// The bytes of the next batch (header-checked for length, not CRC), or
    /// `None` at the end or when the rest cannot hold the batch it starts.
    fn next_batch(&mut self) -> Result<Option<&[u8]>, LogError> {
        if self.pos + HEADER_LEN as u64 > self.end {
            return Ok(None);
        }
        self.fill(HEADER_LEN)?;
        let header = match BatchHeader::parse(self.window()) {
            Ok(h) => h,
            Err(_) => return Ok(Some(self.window_of(HEADER_LEN))),
        };
        let size = header.size();
        if self.pos + size as u64 > self.end {
            return Ok(None);
        }
        self.fill(size)?;
        let start = (self.pos - self.buf_pos) as usize;
        self.pos += size as u64;
        Ok(Some(&self.buf[start..start + size]))
    }

    fn window(&self) -> &[u8] {
        &self.buf[(self.pos - self.buf_pos) as usize..]
    }

    fn window_of(&mut self, len: usize) -> &[u8] {
        let start = (self.pos - self.buf_pos) as usize;
        // A batch whose header does not parse ends the scan.
        self.pos = self.end;
        &self.buf[start..start + len]
    }

    /// Makes sure `len` bytes from `pos` are in the buffer.
    fn fill(&mut self, len: usize) -> Result<(), LogError> {
        let have_from = (self.pos - self.buf_pos) as usize;
        if have_from + len <= self.buf.len() {
            return Ok(());
        }
        let want = len
            .max(SCAN_CHUNK)
            .min((self.end - self.pos) as usize)
            .max(len);
        self.buf.clear();
        self.buf.resize(want, 0);
        self.file.read_exact_at(&mut self.buf, self.pos)?;
        self.buf_pos = self.pos;
        Ok(())
    }
}
