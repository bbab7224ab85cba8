//! Sparse indexes of a segment: offset → file position (`.index`) and
//! timestamp → offset (`.timeindex`), in Kafka's on-disk layout.
//!
//! An index is an append-only file of fixed-size big-endian entries plus the
//! same entries in memory, where lookups happen. The file carries no
//! checksum: it is derived data, checked for plausibility on open and
//! rebuilt from the segment when it fails the check or is missing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One fixed-size entry of an index file.
pub trait IndexEntry: Copy + std::fmt::Debug {
    /// Bytes the entry takes on disk.
    const SIZE: usize;
    /// Writes the entry into `out` (exactly `SIZE` bytes).
    fn encode(&self, out: &mut [u8]);
    /// Reads an entry from `buf` (exactly `SIZE` bytes).
    fn decode(buf: &[u8]) -> Self;
    /// The value lookups search on; entries are strictly increasing in it.
    fn key(&self) -> i64;
}

/// `.index` entry: offset relative to the segment's base, and the position
/// of the batch starting at that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// `batch base offset - segment base offset`.
    pub relative_offset: u32,
    /// Byte position of the batch in the `.log` file.
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]),
            position: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        }
    }
    fn key(&self) -> i64 {
        self.relative_offset as i64
    }
}

/// `.timeindex` entry: the largest timestamp seen in the segment up to and
/// including the batch at `relative_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest timestamp so far; never decreasing from entry to entry.
    pub timestamp: i64,
    /// Base offset of the batch that was last when the entry was written,
    /// relative to the segment's base.
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&buf[0..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        }
    }
    fn key(&self) -> i64 {
        self.timestamp
    }
}

/// Entries kept in memory before they are written out together: one
/// `write` per few KiB of index instead of one per entry.
const WRITE_BATCH: usize = 256;

/// An index file and its entries.
///
/// Lookups use the entries in memory; the file is opened only to append
/// entries, to truncate it and to fsync it, and closed right after, so an
/// index holds no descriptor (a broker has two per segment).
///
/// The newest entries may exist only in memory until [`Index::write_out`]
/// or [`Index::sync`]; an index that lags its segment after a crash is
/// fine, since recovery scans the segment from the last entry on disk.
#[derive(Debug)]
pub struct Index<E: IndexEntry> {
    path: PathBuf,
    entries: Vec<E>,
    /// How many of `entries` are in the file.
    written: usize,
    /// Whether the file changed since its last fsync.
    unsynced: bool,
}

impl<E: IndexEntry> Index<E> {
    /// Opens (or creates) the index at `path` and loads its entries. A torn
    /// trailing entry is dropped. Entries whose keys do not strictly increase
    /// make the whole file suspect: the caller learns it through
    /// [`Index::is_plausible`] and rebuilds.
    pub fn open(path: &Path) -> io::Result<Index<E>> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        let whole = raw.len() / E::SIZE * E::SIZE;
        if whole != raw.len() {
            file.set_len(whole as u64)?;
        }
        let entries = raw[..whole].chunks_exact(E::SIZE).map(E::decode).collect();
        let written = whole / E::SIZE;
        Ok(Index {
            path: path.to_path_buf(),
            entries,
            written,
            // A file cut here is not durable yet; one read as it was is as
            // durable as the recovery that trusts it (an index is derived
            // data: recovery rebuilds one that was lost).
            unsynced: whole != raw.len(),
        })
    }

    fn open_for_write(&self) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
    }

    /// Whether the keys strictly increase, as every index written by the log does.
    pub fn is_plausible(&self) -> bool {
        self.entries.windows(2).all(|w| w[0].key() < w[1].key())
    }

    /// Adds an entry at the end; it reaches the file with the next batch of
    /// entries, [`Index::write_out`] or [`Index::sync`].
    pub fn push(&mut self, entry: E) -> io::Result<()> {
        self.entries.push(entry);
        if self.entries.len() - self.written >= WRITE_BATCH {
            self.write_out()?;
        }
        Ok(())
    }

    /// Writes the entries only held in memory to the file (no fsync).
    pub fn write_out(&mut self) -> io::Result<()> {
        if self.written == self.entries.len() {
            return Ok(());
        }
        let pending = &self.entries[self.written..];
        let mut buf = vec![0u8; pending.len() * E::SIZE];
        for (entry, out) in pending.iter().zip(buf.chunks_exact_mut(E::SIZE)) {
            entry.encode(out);
        }
        self.open_for_write()?.write_all(&buf)?;
        self.written = self.entries.len();
        self.unsynced = true;
        Ok(())
    }

    /// The entry with the largest key `<= key`, if any.
    pub fn floor(&self, key: i64) -> Option<E> {
        let idx = self.entries.partition_point(|e| e.key() <= key);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// The entry with the largest key `< key`, if any.
    pub fn below(&self, key: i64) -> Option<E> {
        let idx = self.entries.partition_point(|e| e.key() < key);
        idx.checked_sub(1).map(|i| self.entries[i])
    }

    /// Keeps only the entries for which `keep` holds on a prefix: drops the
    /// first entry where it fails and everything after.
    pub fn truncate_where(&mut self, keep: impl Fn(&E) -> bool) -> io::Result<()> {
        let len = self.entries.partition_point(keep);
        if len < self.entries.len() {
            self.entries.truncate(len);
            if len < self.written {
                self.open_for_write()?.set_len((len * E::SIZE) as u64)?;
                self.written = len;
                self.unsynced = true;
            }
        }
        Ok(())
    }

    /// Drops every entry.
    pub fn clear(&mut self) -> io::Result<()> {
        self.truncate_where(|_| false)
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// Forces the file to disk (when it changed since the last time).
    ///
    /// The descriptor fsynced is not the one written through: on Linux an
    /// fsync flushes the file's dirty pages whichever descriptor wrote them,
    /// and reports a write-back error that no one has seen yet (errseq).
    pub fn sync(&mut self) -> io::Result<()> {
        self.write_out()?;
        if self.unsynced {
            self.open_for_write()?.sync_data()?;
            self.unsynced = false;
        }
        Ok(())
    }
}
