//! Plugin state backed by a compacted changelog topic,
//! `pipeline.<name>.<step>.changelog`, one partition per source partition.
//!
//! Reads are served from memory. Writes are kept in memory and collected as
//! dirty keys (a key written again replaces its pending change); at each
//! commit (at most every 200 ms) the task appends them, with the source
//! position the state now reflects, to the changelog partition in one
//! batch — before it commits the source offset. A task that starts
//! restores the partition's entries from the changelog and resumes from
//! that position when it is past the committed offset, so a restart never
//! applies a batch to the state twice.

use std::collections::{BTreeMap, HashMap};

use fjord_plugin_host::StateStore;
use fjord_sdk::Record;
use parking_lot::Mutex;

use super::error::PipelineError;
use super::topics::Topics;

/// The changelog key under which the source position is stored; a state
/// key cannot start with a NUL byte and "fjord." by accident.
const POSITION_KEY: &[u8] = b"\0fjord.position";

/// A changelog is compacted, and configured so compaction keeps it near
/// the size of its live keys even when a step rewrites the same few keys
/// many times a second (an `aggregate` window's counters):
/// - `segment.bytes` 4 MiB: only closed segments are cleaned, so the active
///   one is garbage the cleaner cannot reach; the broker's 1 GiB default
///   would let a changelog grow to 1 GiB before its first cleaning.
/// - `segment.ms` 10 minutes: a changelog written slowly still closes its
///   segment, and its overwritten values become cleanable, within minutes.
/// - `min.cleanable.dirty.ratio` 0.25: a cleaning is due once a quarter of
///   the closed segments is dirty, so they stay within 4/3 of the cleaned
///   part (about the live keys); a cleaning rereads the whole changelog,
///   which is small by then.
/// - `delete.retention.ms` 5 minutes: tombstones (an `aggregate` window
///   closed) need only outlive a restore that began before the cleaner
///   removed the values they delete; the 24 h default would keep every
///   closed window's keys for a day.
pub(crate) const CHANGELOG_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.bytes", "4194304"),
    ("segment.ms", "600000"),
    ("min.cleanable.dirty.ratio", "0.25"),
    ("delete.retention.ms", "300000"),
];

type Entries = BTreeMap<(i32, Vec<u8>), Vec<u8>>;
/// Key -> new value (`None`: deleted).
type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// Key -> what it was before the first change since the mark: its value
/// (`None`: absent) and its unflushed change (`None`: none).
type Undo = BTreeMap<Vec<u8>, (Option<Vec<u8>>, Option<Option<Vec<u8>>>)>;

/// One step's state, all partitions.
#[derive(Debug)]
pub(crate) struct ChangelogStore {
    topic: String,
    entries: Mutex<Entries>,
    /// Partition -> key -> new value (`None`: deleted) since the last flush.
    dirty: Mutex<HashMap<i32, Changes>>,
    /// Writes of the plugin call in progress, by partition: applied when
    /// the call succeeds, dropped when it fails, so a batch that fails and
    /// is run again record by record does not count twice.
    pending: Mutex<HashMap<i32, Changes>>,
    /// Partition -> the source position the changelog holds (as restored
    /// or last flushed): an idle task need not write it again.
    saved: Mutex<HashMap<i32, i64>>,
    /// What the calls applied since [`ChangelogStore::mark`] replaced, by
    /// partition: a batch handed back unfinished (the task stopped while
    /// a record was being retried) is undone with
    /// [`ChangelogStore::roll_back`], so the task's last save does not
    /// write its effect with a position before it, which would apply it
    /// twice when the batch is read again.
    undo: Mutex<HashMap<i32, Undo>>,
}

/// The changelog topic of step `step` of pipeline `pipeline`.
pub(crate) fn changelog_topic(pipeline: &str, step: &str) -> String {
    format!("pipeline.{pipeline}.{step}.changelog")
}

/// Empties a changelog: a tombstone for every key its `partitions` hold,
/// the source position included, so a task that restores from it next
/// starts with no state and from the group's committed offset (what
/// `fjord pipeline reset` needs: state kept from records about to be read
/// again would count them twice). Only while no task writes to it.
pub(crate) async fn clear(
    topics: &Topics,
    topic: &str,
    partitions: i32,
) -> Result<(), PipelineError> {
    for partition in 0..partitions {
        let read = {
            let topics = topics.clone();
            let topic = topic.to_owned();
            // Blocks in a cluster (a read from the partition's leader).
            tokio::task::spawn_blocking(move || topics.read_to_end(&topic, partition, 0))
                .await
                .map_err(|e| PipelineError::Interrupted(e.to_string()))?
                .map_err(PipelineError::from)?
        };
        let mut live: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        for r in read.records {
            if let Some(key) = r.key {
                live.insert(key, r.value.is_some());
            }
        }
        let now = super::now_ms();
        let tombstones: Vec<Record> = live
            .into_iter()
            .filter(|(_, live)| *live)
            .map(|(key, _)| Record {
                key: Some(key),
                value: None,
                timestamp: now,
                ..Record::default()
            })
            .collect();
        if tombstones.is_empty() {
            continue;
        }
        topics
            .append(topic, partition, &tombstones)
            .await
            .map_err(|source| PipelineError::Changelog {
                topic: topic.to_owned(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

impl ChangelogStore {
    pub fn new(pipeline: &str, step: &str) -> Self {
        ChangelogStore {
            topic: changelog_topic(pipeline, step),
            entries: Mutex::default(),
            dirty: Mutex::default(),
            pending: Mutex::default(),
            saved: Mutex::default(),
            undo: Mutex::default(),
        }
    }

    fn stage(&self, partition: i32, key: &[u8], value: Option<&[u8]>) {
        self.pending
            .lock()
            .entry(partition)
            .or_default()
            .insert(key.to_vec(), value.map(<[u8]>::to_vec));
    }

    /// The call on `partition` succeeded: its writes become state.
    pub fn apply(&self, partition: i32) {
        let Some(changes) = self.pending.lock().remove(&partition) else {
            return;
        };
        let mut entries = self.entries.lock();
        let mut dirty = self.dirty.lock();
        let dirty = dirty.entry(partition).or_default();
        let mut undo = self.undo.lock();
        let undo = undo.entry(partition).or_default();
        for (k, v) in changes {
            let entry = (partition, k.clone());
            if !undo.contains_key(&k) {
                undo.insert(
                    k.clone(),
                    (entries.get(&entry).cloned(), dirty.get(&k).cloned()),
                );
            }
            match &v {
                Some(v) => entries.insert(entry, v.clone()),
                None => entries.remove(&entry),
            };
            dirty.insert(k, v);
        }
    }

    /// From here on, what calls on `partition` apply can be undone by
    /// [`ChangelogStore::roll_back`]; what they applied before stays.
    pub fn mark(&self, partition: i32) {
        self.undo.lock().remove(&partition);
    }

    /// Undoes what calls on `partition` applied since the last
    /// [`ChangelogStore::mark`] (no flush may come in between: it would
    /// have written them).
    pub fn roll_back(&self, partition: i32) {
        let Some(undo) = self.undo.lock().remove(&partition) else {
            return;
        };
        let mut entries = self.entries.lock();
        let mut dirty = self.dirty.lock();
        let dirty = dirty.entry(partition).or_default();
        for (k, (value, change)) in undo {
            match value {
                Some(v) => entries.insert((partition, k.clone()), v),
                None => entries.remove(&(partition, k.clone())),
            };
            match change {
                Some(c) => dirty.insert(k, c),
                None => dirty.remove(&k),
            };
        }
    }

    /// The call on `partition` failed: its writes are forgotten.
    pub fn discard(&self, partition: i32) {
        self.pending.lock().remove(&partition);
    }

    fn staged(&self, partition: i32, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.pending.lock().get(&partition)?.get(key).cloned()
    }

    /// Whether `partition` has changes, or a `position` other than the one
    /// the changelog holds, to flush.
    pub fn unsaved(&self, partition: i32, position: i64) -> bool {
        let dirty = self
            .dirty
            .lock()
            .get(&partition)
            .is_some_and(|changes| !changes.is_empty());
        dirty || self.saved_position(partition) != Some(position)
    }

    fn saved_position(&self, partition: i32) -> Option<i64> {
        self.saved.lock().get(&partition).copied()
    }

    fn set_saved(&self, partition: i32, position: Option<i64>) {
        let mut saved = self.saved.lock();
        match position {
            Some(p) => saved.insert(partition, p),
            None => saved.remove(&partition),
        };
    }

    /// Loads `partition`'s state from the changelog (if the topic exists)
    /// and returns the source position it reflects.
    pub fn restore(&self, topics: &Topics, partition: i32) -> Result<Option<i64>, PipelineError> {
        let mut position = None;
        let mut restored = BTreeMap::new();
        let read = topics
            .read_to_end(&self.topic, partition, 0)
            .map_err(PipelineError::from)?;
        for r in read.records {
            let Some(key) = r.key else { continue };
            if key == POSITION_KEY {
                position = r
                    .value
                    .as_deref()
                    .and_then(|v| <[u8; 8]>::try_from(v).ok())
                    .map(i64::from_be_bytes);
                continue;
            }
            match r.value {
                Some(v) => restored.insert(key, v),
                None => restored.remove(&key),
            };
        }
        let mut entries = self.entries.lock();
        let stale: Vec<_> = entries
            .range((partition, Vec::new())..)
            .take_while(|((p, _), _)| *p == partition)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            entries.remove(&k);
        }
        let count = restored.len();
        entries.extend(restored.into_iter().map(|(k, v)| ((partition, k), v)));
        drop(entries);
        self.set_saved(partition, position);
        if count > 0 {
            tracing::info!(changelog = %self.topic, partition, entries = count, ?position, "state restored");
        }
        Ok(position)
    }

    /// Appends `partition`'s changes and `position` to the changelog.
    /// Nothing is written when nothing changed and the changelog does not
    /// exist yet (a step that keeps no state never gets one).
    pub async fn flush(
        &self,
        topics: &Topics,
        partition: i32,
        partitions: i32,
        position: i64,
    ) -> Result<(), PipelineError> {
        let changes = self.dirty.lock().remove(&partition).unwrap_or_default();
        // Written now: no longer to be undone.
        self.undo.lock().remove(&partition);
        let local = topics.local();
        if changes.is_empty() && local.topic(&self.topic).is_none() {
            // No state yet: no position to keep either.
            self.set_saved(partition, Some(position));
            return Ok(());
        }
        local
            .ensure_topic(&self.topic, Some(partitions), CHANGELOG_CONFIGS)
            .await
            .map_err(|source| PipelineError::ChangelogTopic {
                topic: self.topic.clone(),
                source,
            })?;
        let now = super::now_ms();
        let mut batch: Vec<Record> = changes
            .iter()
            .map(|(k, v)| Record {
                key: Some(k.clone()),
                value: v.clone(),
                timestamp: now,
                ..Record::default()
            })
            .collect();
        batch.push(Record {
            key: Some(POSITION_KEY.to_vec()),
            value: Some(position.to_be_bytes().to_vec()),
            timestamp: now,
            ..Record::default()
        });
        if let Err(source) = topics.append(&self.topic, partition, &batch).await {
            // Keep the changes for the next flush.
            let mut dirty = self.dirty.lock();
            let pending = dirty.entry(partition).or_default();
            for (k, v) in changes {
                pending.entry(k).or_insert(v);
            }
            return Err(PipelineError::Changelog {
                topic: self.topic.clone(),
                source: Box::new(source),
            });
        }
        self.set_saved(partition, Some(position));
        Ok(())
    }
}

impl StateStore for ChangelogStore {
    fn get(&self, partition: i32, key: &[u8]) -> Option<Vec<u8>> {
        match self.staged(partition, key) {
            Some(staged) => staged,
            None => self.entries.lock().get(&(partition, key.to_vec())).cloned(),
        }
    }
    fn put(&self, partition: i32, key: &[u8], value: &[u8]) {
        self.stage(partition, key, Some(value));
    }
    fn delete(&self, partition: i32, key: &[u8]) {
        self.stage(partition, key, None);
    }
    fn scan_prefix(&self, partition: i32, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut found: BTreeMap<Vec<u8>, Vec<u8>> = self
            .entries
            .lock()
            .range((partition, prefix.to_vec())..)
            .take_while(|((p, k), _)| *p == partition && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect();
        let pending = self.pending.lock();
        if let Some(staged) = pending.get(&partition) {
            for (k, v) in staged.range(prefix.to_vec()..) {
                if !k.starts_with(prefix) {
                    break;
                }
                match v {
                    Some(v) => found.insert(k.clone(), v.clone()),
                    None => found.remove(k),
                };
            }
        }
        found.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(store: &ChangelogStore) -> (Option<Vec<u8>>, Option<Vec<u8>>, Option<Changes>) {
        (
            store.get(0, b"a"),
            store.get(0, b"b"),
            store.dirty.lock().get(&0).cloned(),
        )
    }

    #[test]
    fn a_roll_back_undoes_what_was_applied_since_the_mark_and_nothing_before() {
        let store = ChangelogStore::new("p", "s");
        store.put(0, b"a", b"1");
        store.apply(0);
        store.mark(0);
        let before = state(&store);
        // Two calls after the mark: a changed twice, b created, then a
        // deleted.
        store.put(0, b"a", b"2");
        store.put(0, b"b", b"x");
        store.apply(0);
        store.delete(0, b"a");
        store.apply(0);
        // Another partition's writes are not this one's to undo.
        store.put(1, b"a", b"other");
        store.apply(1);
        assert_eq!(store.get(0, b"a"), None);
        store.roll_back(0);
        assert_eq!(state(&store), before);
        assert_eq!(store.get(0, b"a").as_deref(), Some(&b"1"[..]));
        assert_eq!(store.get(1, b"a").as_deref(), Some(&b"other"[..]));
        // Undone once: a second roll back changes nothing.
        store.roll_back(0);
        assert_eq!(state(&store), before);
    }
}
