//! Removing a deleted or reassigned partition's directory as Kafka does:
//! it is renamed `<topic>-<partition>.<uuid>-delete` at once, so the name is
//! free for a new partition and nothing reopens it, and deleted after the
//! topic's `file.delete.delay.ms` by the periodic retention round; a delay of
//! 0 deletes it at once. Directories a restart finds with that name are
//! deleted when the registry opens.

use std::fs;
use std::path::{Path, PathBuf};

use super::{TopicRegistry, random_uuid};
use crate::partition::Partition;

/// The end of a partition directory's name while it waits for deletion.
const DELETE_SUFFIX: &str = "-delete";

impl TopicRegistry {
    /// Removes `partition`'s directory (the caller has forgotten the
    /// partition): renamed for later deletion under `file.delete.delay.ms`,
    /// deleted at once without. Errors are logged.
    pub(super) fn remove_partition_dir(&self, partition: &Partition) {
        let dir = partition.log().dir().to_path_buf();
        let delay = partition.log().config().file_delete_delay_ms;
        let target = (delay > 0).then(|| deleted_name(&dir));
        match partition.delete_files(target.as_deref()) {
            Ok(()) => {
                if let Some(target) = target {
                    let due = crate::clock::now_ms().saturating_add(delay);
                    self.pending_dir_deletes.lock().push((due, target));
                }
            }
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot remove partition directory");
            }
        }
    }

    /// Deletes the renamed partition directories whose delay has passed by
    /// `now_ms` (the retention round calls it).
    pub(super) fn delete_expired_dirs(&self, now_ms: i64) {
        let due: Vec<PathBuf> = {
            let mut pending = self.pending_dir_deletes.lock();
            let (due, keep) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|(at, _)| *at <= now_ms);
            *pending = keep;
            due.into_iter().map(|(_, dir)| dir).collect()
        };
        for dir in due {
            remove_dir(&dir);
        }
    }
}

/// `<dir>.<uuid>-delete`, next to `dir`, its name cut to 255 bytes as
/// Kafka cuts it (from the topic name's end; topic names are ASCII): the
/// UUID keeps it unique.
fn deleted_name(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = format!(".{}{DELETE_SUFFIX}", random_uuid().simple());
    let keep = name.len().min(255 - suffix.len());
    let prefix = name.get(..keep).unwrap_or(&name);
    dir.with_file_name(format!("{prefix}{suffix}"))
}

/// Whether `name` is a partition directory renamed for deletion:
/// `<topic>-<partition>.<32 hex digits>-delete`.
fn is_deleted_name(name: &str) -> bool {
    name.strip_suffix(DELETE_SUFFIX)
        .and_then(|rest| rest.rsplit_once('.'))
        .is_some_and(|(_, uuid)| uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Deletes the partition directories of `data_dir` left waiting for
/// deletion by a broker that stopped before their delay passed.
pub(super) fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let deleted = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_deleted_name);
        if deleted && path.is_dir() {
            tracing::info!(dir = %path.display(), "removing a deleted partition's directory");
            remove_dir(&path);
        }
    }
}

fn remove_dir(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot remove a deleted partition's directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_names_are_recognised_and_partition_names_are_not() {
        let dir = Path::new("/data/events-3");
        let renamed = deleted_name(dir);
        let name = renamed.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("events-3."), "{name}");
        assert!(is_deleted_name(name), "{name}");
        assert!(!is_deleted_name("events-3"));
        assert!(!is_deleted_name("my-delete-0"));
        assert!(!is_deleted_name("topics"));
        let long = Path::new("/data").join(format!("{}-2", "n".repeat(249)));
        let renamed = deleted_name(&long);
        let name = renamed.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 255);
        assert!(is_deleted_name(name));
    }
}
