//! The Raft log on disk, in a controller's data directory:
//!
//! - `raft-log`: append-only records (`len | crc32c | payload`), one per
//!   entry, each a postcard-encoded openraft `Entry`. Appends are fsynced
//!   before openraft is told they are durable. Truncation cuts the file;
//!   a torn record at the tail (a crash during an append that was never
//!   acknowledged) is cut off on open.
//! - `raft-vote`: the last vote, replaced atomically.
//! - `raft-purged`: the last purged log id, replaced atomically. Entries up to
//!   it are ignored on open; the file is rewritten without them once they
//!   take up at least half of it.
//!
//! Entries are also kept in memory: the metadata log is small and is purged
//! after every snapshot.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState, RaftLogId, RaftLogReader, StorageError, Vote};
use parking_lot::Mutex;
use tracing::{info, warn};

use crate::durable_file::{self, RecordRead};
use crate::raft_types::{Entry, TypeConfig};
use crate::voters::NodeId;

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote";
const PURGED_FILE: &str = "raft-purged";

/// Why the log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// An I/O error on a file of the log.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A record before the tail is damaged, or entries are not consecutive:
    /// not something a crash can cause, so nothing is dropped silently.
    #[error("{path}: corrupt at byte {position}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte position of the damaged record.
        position: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The Raft log storage (openraft `RaftLogStorage`). Cloning gives another
/// handle on the same log (openraft's log readers are such clones).
#[derive(Debug, Clone)]
pub struct LogStore {
    // A panic while holding the lock leaves consistent in-memory state
    // (every mutation is applied after its I/O succeeded), so the lock
    // need not poison.
    inner: Arc<Mutex<LogFile>>,
}

#[derive(Debug)]
struct LogFile {
    dir: PathBuf,
    file: File,
    /// File length: where the next record goes.
    end: u64,
    entries: BTreeMap<u64, Entry>,
    /// Index → byte position of the entry's record.
    positions: BTreeMap<u64, u64>,
    /// Bytes at the start of the file holding purged entries.
    purged_bytes: u64,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

/// What [`LogStore::state`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStoreState {
    /// The last purged log id.
    pub last_purged: Option<LogId<NodeId>>,
    /// The last entry's log id, or the last purged one with no entry left.
    pub last: Option<LogId<NodeId>>,
    /// Indexes of the entries present.
    pub first_index: Option<u64>,
}

impl LogStore {
    /// Open (or create) the log in `dir`, dropping a torn tail record.
    pub fn open(dir: &Path) -> Result<LogStore, LogStoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogStoreError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let vote_path = dir.join(VOTE_FILE);
        let vote = decode_opt::<Vote<NodeId>>(&vote_path)?;
        let purged_path = dir.join(PURGED_FILE);
        let last_purged = decode_opt::<LogId<NodeId>>(&purged_path)?;

        let log_path = dir.join(LOG_FILE);
        let bytes = match fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path)(e)),
        };
        let mut entries = BTreeMap::new();
        let mut positions = BTreeMap::new();
        let mut pos = 0usize;
        let mut purged_bytes = 0u64;
        let purged_index = last_purged.map(|l| l.index);
        loop {
            match durable_file::read_record(&bytes[pos..]) {
                RecordRead::End => break,
                RecordRead::Record(payload, len) => {
                    let entry: Entry =
                        postcard::from_bytes(payload).map_err(|e| LogStoreError::Corrupt {
                            path: log_path.clone(),
                            position: pos as u64,
                            reason: format!("undecodable entry: {e}"),
                        })?;
                    let index = entry.log_id.index;
                    if purged_index.is_some_and(|p| index <= p) {
                        purged_bytes = (pos + len) as u64;
                    } else {
                        let expected = entries
                            .keys()
                            .next_back()
                            .map(|i| i + 1)
                            .or(purged_index.map(|p| p + 1));
                        if expected.is_some_and(|e| e != index) {
                            return Err(LogStoreError::Corrupt {
                                path: log_path,
                                position: pos as u64,
                                reason: format!("entry {index} where {expected:?} was expected"),
                            });
                        }
                        positions.insert(index, pos as u64);
                        entries.insert(index, entry);
                    }
                    pos += len;
                }
                RecordRead::Invalid => {
                    if !is_torn_tail(&bytes[pos..]) {
                        return Err(LogStoreError::Corrupt {
                            path: log_path,
                            position: pos as u64,
                            reason: "damaged record before the end of the log".into(),
                        });
                    }
                    warn!(
                        path = %log_path.display(),
                        position = pos,
                        dropped_bytes = bytes.len() - pos,
                        "dropping a torn record at the end of the Raft log"
                    );
                    let f = fs::OpenOptions::new()
                        .write(true)
                        .open(&log_path)
                        .map_err(io_err(&log_path))?;
                    f.set_len(pos as u64).map_err(io_err(&log_path))?;
                    f.sync_all().map_err(io_err(&log_path))?;
                    break;
                }
            }
        }
        let file = durable_file::open_append(&log_path).map_err(io_err(&log_path))?;
        durable_file::sync_dir(dir).map_err(io_err(dir))?;
        info!(
            dir = %dir.display(),
            entries = entries.len(),
            last_purged = ?last_purged,
            "opened Raft log"
        );
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogFile {
                dir: dir.to_path_buf(),
                file,
                end: pos as u64,
                entries,
                positions,
                purged_bytes,
                last_purged,
                vote,
            })),
        })
    }

    /// First and last log ids.
    pub fn state(&self) -> LogStoreState {
        let inner = self.inner.lock();
        LogStoreState {
            last_purged: inner.last_purged,
            last: inner
                .entries
                .values()
                .next_back()
                .map(|e| *e.get_log_id())
                .or(inner.last_purged),
            first_index: inner.entries.keys().next().copied(),
        }
    }

    /// Entries with an index in `range`.
    pub fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        self.inner
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The saved vote.
    pub fn vote(&self) -> Option<Vote<NodeId>> {
        self.inner.lock().vote
    }

    /// Persist a vote (atomically, fsynced).
    pub fn save_vote_durably(&self, vote: &Vote<NodeId>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let bytes = postcard::to_stdvec(vote).map_err(io::Error::other)?;
        durable_file::write_atomic(&inner.dir, VOTE_FILE, &bytes)?;
        inner.vote = Some(*vote);
        Ok(())
    }

    /// Append entries and fsync.
    pub fn append_durably(&self, entries: impl IntoIterator<Item = Entry>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let mut buf = Vec::new();
        let mut added = Vec::new();
        for entry in entries {
            let pos = inner.end + buf.len() as u64;
            let payload = postcard::to_stdvec(&entry).map_err(io::Error::other)?;
            durable_file::encode_record(&payload, &mut buf);
            added.push((pos, entry));
        }
        if added.is_empty() {
            return Ok(());
        }
        inner.file.write_all(&buf)?;
        inner.file.sync_data()?;
        inner.end += buf.len() as u64;
        for (pos, entry) in added {
            let index = entry.log_id.index;
            inner.positions.insert(index, pos);
            inner.entries.insert(index, entry);
        }
        Ok(())
    }

    /// Remove entries from `index` on, cutting the file.
    pub fn truncate_from(&self, index: u64) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let Some(&pos) = inner.positions.range(index..).next().map(|(_, p)| p) else {
            return Ok(());
        };
        inner.file.set_len(pos)?;
        inner.file.sync_all()?;
        inner.end = pos;
        inner.entries.split_off(&index);
        inner.positions.split_off(&index);
        Ok(())
    }

    /// Mark entries up to `log_id` purged and drop them; compact the file
    /// once purged records take at least half of it.
    pub fn purge_upto(&self, log_id: LogId<NodeId>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        if inner.last_purged.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let bytes = postcard::to_stdvec(&log_id).map_err(io::Error::other)?;
        durable_file::write_atomic(&inner.dir, PURGED_FILE, &bytes)?;
        inner.last_purged = Some(log_id);
        let keep = inner.entries.split_off(&(log_id.index + 1));
        inner.entries = keep;
        let keep_pos = inner.positions.split_off(&(log_id.index + 1));
        inner.positions = keep_pos;
        inner.purged_bytes = inner
            .positions
            .values()
            .next()
            .copied()
            .unwrap_or(inner.end);
        if inner.purged_bytes > 0 && inner.purged_bytes * 2 >= inner.end {
            inner.compact()?;
        }
        Ok(())
    }
}

impl LogFile {
    /// Rewrite the log file with only the entries still present.
    fn compact(&mut self) -> io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        let tmp = self.dir.join(format!("{LOG_FILE}.tmp"));
        let mut buf = Vec::new();
        let mut positions = BTreeMap::new();
        for (index, entry) in &self.entries {
            positions.insert(*index, buf.len() as u64);
            let payload = postcard::to_stdvec(entry).map_err(io::Error::other)?;
            durable_file::encode_record(&payload, &mut buf);
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        durable_file::sync_dir(&self.dir)?;
        self.file = durable_file::open_append(&path)?;
        self.end = buf.len() as u64;
        self.positions = positions;
        self.purged_bytes = 0;
        Ok(())
    }
}

/// An invalid record is a torn append if it reaches the end of the file: its
/// header is incomplete, its length runs past the end, or everything from it
/// on is zeros (a file extended but not written). Otherwise it is damage.
fn is_torn_tail(rest: &[u8]) -> bool {
    if rest.len() < durable_file::RECORD_HEADER_LEN || rest.iter().all(|b| *b == 0) {
        return true;
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    len == 0 || durable_file::RECORD_HEADER_LEN + len >= rest.len()
}

fn decode_opt<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, LogStoreError> {
    let Some(bytes) = durable_file::read_atomic(path).map_err(|source| LogStoreError::Io {
        path: path.to_path_buf(),
        source,
    })?
    else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| LogStoreError::Corrupt {
            path: path.to_path_buf(),
            position: 0,
            reason: e.to_string(),
        })
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(self.entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let s = self.state();
        Ok(LogState {
            last_purged_log_id: s.last_purged,
            last_log_id: s.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.save_vote_durably(vote)
            .map_err(|e| openraft::StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.vote())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        match self.append_durably(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = openraft::StorageIOError::write_logs(AnyError::new(&e)).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.truncate_from(log_id.index)
            .map_err(|e| openraft::StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.purge_upto(log_id)
            .map_err(|e| openraft::StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}
