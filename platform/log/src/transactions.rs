//! The transactions of a partition as its log shows them (the part of
//! Kafka's `ProducerStateManager` that reads need): which producers have a
//! transaction open and from which offset — the last stable offset cannot
//! pass the first of them — and which transactions were aborted, kept in
//! a `.txnindex` file per segment in Kafka's format so read_committed
//! consumers learn what to skip.
//!
//! It lives in the log so that every path that writes batches (a leader's
//! appends, a follower's copies, recovery at open) updates it the same
//! way. A transactional batch opens (or extends) its producer's
//! transaction; a control batch (a marker) closes it, and an ABORT marker
//! adds an entry to the index of the segment holding the marker.
//!
//! Across restarts the open transactions are kept in
//! `transaction-state-checkpoint` (written with the other checkpoints):
//! the open reads it and the `.txnindex` files (entries of markers past
//! the log end dropped) and scans only the batches after it, adding the
//! ABORT markers the files miss; without it the whole log is scanned.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use crate::batch::BatchHeader;
use crate::control::TxnMarker;
use crate::error::LogError;
use crate::segment::{Segment, file_stem};

/// The extension of a segment's aborted-transactions index.
pub(crate) const TXN_INDEX_EXT: &str = "txnindex";
/// The file keeping the open transactions across restarts.
pub const TRANSACTION_STATE_CHECKPOINT: &str = "transaction-state-checkpoint";
/// Bytes of one `.txnindex` entry: version i16, producer id i64, first
/// offset i64, last offset i64, last stable offset i64 (Kafka's).
const ENTRY_LEN: usize = 34;

/// A transaction that was aborted: its records from `first_offset` to its
/// marker at `last_offset` are to be skipped by read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer whose records these are.
    pub producer_id: i64,
    /// Offset of its first record in the partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset once it was aborted.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> AbortedTxn {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        }
    }
}

/// The transactional state of one log (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    /// Producer id → offset of the first record of its open transaction.
    open: HashMap<i64, i64>,
    /// The same, ordered by first offset: the first unstable offset is
    /// its first (no scan per transactional batch).
    by_first: BTreeSet<(i64, i64)>,
    /// Segment base offset → the aborted transactions whose markers it holds.
    aborted: BTreeMap<i64, Vec<AbortedTxn>>,
}

/// Writes `entries` as a whole `.txnindex` file at `path`, fsynced.
pub(crate) fn write_index(path: &Path, entries: &[AbortedTxn]) -> Result<(), LogError> {
    let mut bytes = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for entry in entries {
        entry.encode(&mut bytes);
    }
    let mut file = fs::File::create(path)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(())
}

/// The path of the `.txnindex` of the segment at `base`.
pub(crate) fn index_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}.{TXN_INDEX_EXT}", file_stem(base)))
}

impl Transactions {
    /// Takes one appended batch (`batch`: its bytes) into account; returns
    /// the entry to add to the index of the segment holding it when it is
    /// an ABORT marker.
    pub(crate) fn observe(
        &mut self,
        header: &BatchHeader,
        batch: &[u8],
    ) -> Result<Option<AbortedTxn>, LogError> {
        if header.attributes & crate::control::TRANSACTIONAL_ATTRIBUTE == 0
            || header.producer_id < 0
        {
            return Ok(None);
        }
        if !header.is_control() {
            if let std::collections::hash_map::Entry::Vacant(e) =
                self.open.entry(header.producer_id)
            {
                e.insert(header.base_offset);
                self.by_first
                    .insert((header.base_offset, header.producer_id));
            }
            return Ok(None);
        }
        let Some(marker) = TxnMarker::parse(batch)? else {
            return Ok(None);
        };
        let first = self.open.remove(&marker.producer_id);
        if let Some(first) = first {
            self.by_first.remove(&(first, marker.producer_id));
        }
        if marker.commit {
            return Ok(None);
        }
        let first_offset = first.unwrap_or(header.base_offset);
        // Kafka's: the first offset still undecided once this one is
        // decided, or right after its marker.
        let last_stable_offset = self
            .first_unstable()
            .unwrap_or(header.base_offset + 1)
            .min(header.base_offset + 1);
        Ok(Some(AbortedTxn {
            producer_id: marker.producer_id,
            first_offset,
            last_offset: header.base_offset,
            last_stable_offset,
        }))
    }

    /// Remembers `entry` for the segment at `base` and appends it to that
    /// segment's `.txnindex`.
    pub(crate) fn add_aborted(
        &mut self,
        dir: &Path,
        base: i64,
        entry: AbortedTxn,
    ) -> Result<(), LogError> {
        let mut bytes = Vec::with_capacity(ENTRY_LEN);
        entry.encode(&mut bytes);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(index_path(dir, base))?;
        file.write_all(&bytes)?;
        // Aborts are rare and what a consumer must skip: durable at once.
        file.sync_data()?;
        self.aborted.entry(base).or_default().push(entry);
        Ok(())
    }

    /// The first offset of any open transaction.
    pub(crate) fn first_unstable(&self) -> Option<i64> {
        self.by_first.first().map(|&(first, _)| first)
    }

    /// Whether `producer_id` has a transaction open here.
    pub(crate) fn is_open(&self, producer_id: i64) -> bool {
        self.open.contains_key(&producer_id)
    }

    /// The open transactions: producer id and first offset.
    pub(crate) fn open(&self) -> Vec<(i64, i64)> {
        let mut open: Vec<(i64, i64)> = self.open.iter().map(|(&p, &o)| (p, o)).collect();
        open.sort_unstable_by_key(|&(_, first)| first);
        open
    }

    /// The aborted transactions with records in `[from, to)`, in marker order.
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .values()
            .flatten()
            .filter(|t| t.last_offset >= from && t.first_offset < to)
            .copied()
            .collect()
    }

    /// Whether the segment at `base` has the entry of the marker at `last_offset`.
    pub(crate) fn has_aborted(&self, base: i64, last_offset: i64) -> bool {
        self.aborted
            .get(&base)
            .is_some_and(|e| e.iter().any(|t| t.last_offset == last_offset))
    }

    /// Forgets the entries of a removed segment (its files go with it).
    pub(crate) fn forget_segment(&mut self, base: i64) {
        self.aborted.remove(&base);
    }

    /// Makes `entries` the index of the segment at `base` (memory and file).
    pub(crate) fn set_segment(
        &mut self,
        dir: &Path,
        base: i64,
        entries: Vec<AbortedTxn>,
    ) -> Result<(), LogError> {
        let path = index_path(dir, base);
        if entries.is_empty() {
            self.aborted.remove(&base);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => return Ok(()),
            }
        }
        let tmp = path.with_extension("txnindex.tmp");
        write_index(&tmp, &entries)?;
        fs::rename(&tmp, &path)?;
        self.aborted.insert(base, entries);
        Ok(())
    }

    /// Loads the `.txnindex` of the segment at `base`, keeping only the
    /// entries whose markers lie below `below`.
    pub(crate) fn load_segment(
        &mut self,
        dir: &Path,
        base: i64,
        below: i64,
    ) -> Result<(), LogError> {
        let bytes = match fs::read(index_path(dir, base)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let entries: Vec<AbortedTxn> = bytes
            .chunks_exact(ENTRY_LEN)
            .map(AbortedTxn::decode)
            .filter(|e| e.last_offset < below)
            .collect();
        let whole = entries.len() * ENTRY_LEN == bytes.len();
        if whole {
            if !entries.is_empty() {
                self.aborted.insert(base, entries);
            }
            Ok(())
        } else {
            self.set_segment(dir, base, entries)
        }
    }

    /// Writes the open transactions as of `end` (the log end offset): a
    /// checkpoint whose first entry is `end`, then `producer first` lines.
    pub(crate) fn write_checkpoint(&self, dir: &Path, end: i64) -> Result<(), LogError> {
        let mut entries = vec![end.to_string()];
        entries.extend(self.open().into_iter().map(|(p, f)| format!("{p} {f}")));
        crate::checkpoint::write_entries(&dir.join(TRANSACTION_STATE_CHECKPOINT), &entries)
    }

    /// Reads the checkpoint: the offset it was written at and the open
    /// transactions then. `None` when missing or unreadable (the open
    /// then scans the whole log).
    pub(crate) fn read_checkpoint(dir: &Path) -> Option<(i64, HashMap<i64, i64>)> {
        let entries =
            crate::checkpoint::read_entries(&dir.join(TRANSACTION_STATE_CHECKPOINT)).ok()??;
        let (end, rest) = entries.split_first()?;
        let mut open = HashMap::with_capacity(rest.len());
        for line in rest {
            let (pid, first) = line.split_once(' ')?;
            open.insert(pid.parse().ok()?, first.parse().ok()?);
        }
        Some((end.parse().ok()?, open))
    }

    /// Starts from checkpointed open transactions.
    pub(crate) fn with_open(open: HashMap<i64, i64>) -> Transactions {
        Transactions {
            by_first: open.iter().map(|(&p, &f)| (f, p)).collect(),
            open,
            aborted: BTreeMap::new(),
        }
    }
}

/// What every Fetch and idempotent Produce asks of the transactions,
/// readable without their lock: published by whoever changes them, under
/// it.
#[derive(Debug)]
pub(crate) struct TxnSummary {
    /// The first unstable offset, `i64::MAX` when none is open.
    first_unstable: AtomicI64,
    /// How many transactions are open.
    open: AtomicUsize,
}

impl TxnSummary {
    pub(crate) fn of(txns: &Transactions) -> TxnSummary {
        let summary = TxnSummary {
            first_unstable: AtomicI64::new(i64::MAX),
            open: AtomicUsize::new(0),
        };
        summary.publish(txns);
        summary
    }

    /// Takes the state of `txns` (call with their lock held, so that two
    /// changes publish in their order).
    pub(crate) fn publish(&self, txns: &Transactions) {
        self.first_unstable
            .store(txns.first_unstable().unwrap_or(i64::MAX), Ordering::Release);
        self.open.store(txns.open.len(), Ordering::Release);
    }

    pub(crate) fn first_unstable(&self) -> Option<i64> {
        Some(self.first_unstable.load(Ordering::Acquire)).filter(|&f| f != i64::MAX)
    }

    pub(crate) fn any_open(&self) -> bool {
        self.open.load(Ordering::Acquire) > 0
    }
}

/// The transactions of a log opened (or cut) with `segments`: open ones
/// from `checkpoint` when it was written within the log, aborted ones from
/// the `.txnindex` files (those of markers below the log end), and the
/// batches after the checkpoint scanned (all of them without a usable
/// checkpoint), adding the ABORT markers the files miss.
pub(crate) fn recover(
    dir: &Path,
    segments: &[Arc<Segment>],
    checkpoint: Option<(i64, std::collections::HashMap<i64, i64>)>,
) -> Result<Transactions, LogError> {
    let first_base = segments.first().map_or(0, |s| s.base_offset);
    let log_end = segments.last().map_or(0, |s| s.next_offset());
    let (scan_from, mut txns) = match checkpoint {
        Some((end, open)) if end >= first_base && end <= log_end => (
            end,
            Transactions::with_open(open.into_iter().filter(|&(_, f)| f < end).collect()),
        ),
        // A checkpoint past the end (a crash lost the log's tail, or a
        // truncation) still says which transactions were open over all of
        // [first, end): those begun below the first segment (retention or
        // DeleteRecords removed their start) were open at its base.
        Some((end, open)) if end >= first_base => (
            first_base,
            Transactions::with_open(open.into_iter().filter(|&(_, f)| f < first_base).collect()),
        ),
        _ => (first_base, Transactions::default()),
    };
    // Entries of markers still in the log are kept from the files: the
    // cleaner may have removed an aborted transaction's records since, and
    // a scan would no longer find where it began.
    for segment in segments {
        txns.load_segment(dir, segment.base_offset, log_end)?;
    }
    for segment in segments.iter().filter(|s| s.next_offset() > scan_from) {
        let mut found = Vec::new();
        segment.scan_batches(0, |_, bytes| {
            let header = BatchHeader::parse(bytes)?;
            if header.base_offset >= scan_from
                && header.attributes & crate::control::TRANSACTIONAL_ATTRIBUTE != 0
                && let Some(entry) = txns.observe(&header, bytes)?
            {
                found.push(entry);
            }
            Ok(true)
        })?;
        for entry in found {
            if !txns.has_aborted(segment.base_offset, entry.last_offset) {
                txns.add_aborted(dir, segment.base_offset, entry)?;
            }
        }
    }
    Ok(txns)
}
