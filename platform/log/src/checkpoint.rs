//! Small text files that remember facts about a partition across restarts:
//! the recovery point, the log start offset, the high watermark and the
//! leader-epoch cache.
//!
//! Each is written in Kafka's checkpoint style (a version line, a count
//! line, then one entry per line) through a temporary file, fsync and
//! rename, so a crash leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::LogError;

const VERSION: &str = "0";

/// Writes `entries` (already formatted lines) as a checkpoint file at `path`.
pub(crate) fn write_entries(path: &Path, entries: &[String]) -> Result<(), LogError> {
    let mut text = format!("{VERSION}\n{}\n", entries.len());
    for entry in entries {
        text.push_str(entry);
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the entry lines of the checkpoint at `path`; `None` when the file
/// does not exist.
pub(crate) fn read_entries(path: &Path) -> Result<Option<Vec<String>>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let bad = |reason: &str| LogError::BadCheckpoint {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(bad("unknown version line"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("missing entry count"))?;
    let entries: Vec<String> = lines.map(str::to_string).collect();
    if entries.len() != count {
        return Err(bad("entry count does not match the entries"));
    }
    Ok(Some(entries))
}

/// A checkpoint that holds one offset.
#[derive(Debug, Clone)]
pub(crate) struct OffsetCheckpoint {
    path: PathBuf,
}

impl OffsetCheckpoint {
    pub(crate) fn new(path: PathBuf) -> Self {
        OffsetCheckpoint { path }
    }

    pub(crate) fn read(&self) -> Result<Option<i64>, LogError> {
        let Some(entries) = read_entries(&self.path)? else {
            return Ok(None);
        };
        match entries.as_slice() {
            [one] => one
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| LogError::BadCheckpoint {
                    path: self.path.display().to_string(),
                    reason: format!("{one:?} is not an offset"),
                }),
            _ => Err(LogError::BadCheckpoint {
                path: self.path.display().to_string(),
                reason: "expected exactly one offset".into(),
            }),
        }
    }

    pub(crate) fn write(&self, offset: i64) -> Result<(), LogError> {
        write_entries(&self.path, &[offset.to_string()])
    }
}

/// Forces a directory's entries (creations, renames, deletions) to disk.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Which leader epoch started at which offset: the history replication
/// needs to find where a returning follower's log diverges
/// (OffsetForLeaderEpoch).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use fjord_log::LeaderEpochCache;
/// let mut cache = LeaderEpochCache::open(dir.path()).unwrap();
/// cache.assign(0, 0).unwrap();
/// cache.assign(3, 120).unwrap();
/// // Epoch 0 ended where epoch 3 began; the latest epoch ends at the log end.
/// assert_eq!(cache.end_offset_for(0, 500), Some((0, 120)));
/// assert_eq!(cache.end_offset_for(3, 500), Some((3, 500)));
/// // An epoch this log never saw answers with the latest one before it.
/// assert_eq!(cache.end_offset_for(2, 500), Some((0, 120)));
/// // One past the latest is unknown.
/// assert_eq!(cache.end_offset_for(4, 500), None);
/// ```
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// (epoch, start offset), both strictly increasing.
    entries: Vec<(i32, i64)>,
}

/// File name of the leader-epoch checkpoint in a partition directory.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

impl LeaderEpochCache {
    /// Loads the cache from `dir/leader-epoch-checkpoint`, or starts empty.
    pub fn open(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let mut entries = Vec::new();
        for line in read_entries(&path)?.unwrap_or_default() {
            let parsed = line
                .split_once(' ')
                .and_then(|(e, o)| Some((e.parse().ok()?, o.parse().ok()?)));
            let Some(entry) = parsed else {
                return Err(LogError::BadCheckpoint {
                    path: path.display().to_string(),
                    reason: format!("{line:?} is not `epoch offset`"),
                });
            };
            entries.push(entry);
        }
        Ok(LeaderEpochCache { path, entries })
    }

    /// Records that `epoch` starts at `start_offset`. Epochs at or below the
    /// latest are ignored: a leader only ever moves forward.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return Ok(());
        }
        // An epoch that starts where a previous one starts supersedes it.
        self.entries.retain(|&(_, start)| start < start_offset);
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// The latest epoch the log has seen.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// OffsetForLeaderEpoch, as Kafka's `LeaderEpochFileCache.endOffsetFor`
    /// answers it: for the latest epoch, `log_end`; otherwise the largest
    /// epoch `<= requested` this log knows and the offset where it ended
    /// (the start of the next epoch). An epoch older than every known one
    /// answers `(requested, start of the first known epoch)`: the data
    /// before it is gone and a follower must start there. `None` (Kafka's
    /// undefined epoch and offset) for a negative epoch, an empty cache, or
    /// an epoch past the latest.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end));
        }
        let idx = self
            .entries
            .partition_point(|&(epoch, _)| epoch <= requested);
        let &(_, next_start) = self.entries.get(idx)?;
        match idx.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, next_start)),
            None => Some((requested, next_start)),
        }
    }

    /// Forgets epochs that start at or after `end_offset` (after a truncation).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Moves the first epoch's start to `start_offset` and drops epochs that
    /// ended before it (after retention or DeleteRecords).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let keep_from = self
            .entries
            .partition_point(|&(_, start)| start <= start_offset)
            .saturating_sub(1);
        let changed = keep_from > 0
            || self
                .entries
                .first()
                .is_some_and(|&(_, start)| start < start_offset);
        if changed {
            self.entries.drain(..keep_from);
            if let Some(first) = self.entries.first_mut() {
                first.1 = first.1.max(start_offset);
            }
            self.persist()?;
        }
        Ok(())
    }

    /// All `(epoch, start offset)` pairs, oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    fn persist(&self) -> Result<(), LogError> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|(epoch, start)| format!("{epoch} {start}"))
            .collect();
        write_entries(&self.path, &lines)
    }
}
