//! Making a topic's or new partitions' logs, within `max.partitions`: the
//! limit is checked before any file is made, and a creation that fails
//! part-way removes what it made. Not for the cluster's check of the same
//! limit (the metadata frontend does it against the quorum's metadata).

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fjord_log::LogConfig;
use kafka_protocol::ResponseError;

use super::{ApiError, TopicRegistry};
use crate::partition::Partition;

impl TopicRegistry {
    /// Sets `max.partitions`: creating topics or partitions that would
    /// make this broker host more is POLICY_VIOLATION (internal topics are
    /// exempt, see [`check_partition_limit`]).
    pub(crate) fn set_partition_limit(&self, limit: usize) {
        self.partition_limit.store(limit, Ordering::Relaxed);
    }

    /// How many partitions this broker hosts.
    pub fn hosted_partitions(&self) -> usize {
        self.topics
            .read()
            .values()
            .map(|t| t.partitions.read().len())
            .sum()
    }

    /// Refuses `adding` partitions of topic `name` when they would pass
    /// `max.partitions`.
    pub(super) fn check_partition_limit(&self, name: &str, adding: usize) -> Result<(), ApiError> {
        if crate::auth::is_internal_topic(name) {
            return Ok(());
        }
        let limit = self.partition_limit.load(Ordering::Relaxed);
        check_partition_limit(self.hosted_partitions(), adding, limit).map_err(|mut e| {
            e.message = format!("{} on this broker (max.partitions)", e.message);
            e
        })
    }

    /// Opens the new partitions `indexes` of topic `name`. On the first
    /// failure, what was made so far is removed again: a failed creation
    /// leaves no directory behind.
    pub(super) fn open_new_partitions(
        &self,
        name: &str,
        indexes: std::ops::Range<i32>,
        log_config: &LogConfig,
        replicated: bool,
    ) -> Result<BTreeMap<i32, Arc<Partition>>, ApiError> {
        let mut opened = BTreeMap::new();
        for index in indexes {
            let dir = self.data_dir.join(format!("{name}-{index}"));
            // Left over by a crash during an earlier delete or create: the
            // new partition must not inherit its records.
            if fs::symlink_metadata(&dir).is_ok() {
                tracing::warn!(dir = %dir.display(), "removing a stale partition directory");
                if let Err(e) = fs::remove_dir_all(&dir) {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot remove a stale partition directory");
                    discard(opened.into_values());
                    return Err(ApiError::new(
                        ResponseError::KafkaStorageError,
                        format!("cannot remove the stale {}: {e}", dir.display()),
                    ));
                }
            }
            match self.open_partition(name, index, log_config, 0, replicated) {
                Ok(p) => {
                    opened.insert(index, Arc::new(p));
                }
                Err(e) => {
                    tracing::error!(topic = name, partition = index, error = %e, "cannot create partition log");
                    // Whatever is at `dir` now was made by this attempt.
                    let _ = fs::remove_dir_all(&dir);
                    let made = opened.len();
                    discard(opened.into_values());
                    return Err(ApiError::new(
                        ResponseError::KafkaStorageError,
                        format!(
                            "cannot create partition {index} (the {made} made before it were removed): {e}"
                        ),
                    ));
                }
            }
        }
        Ok(opened)
    }
}

/// Removes the logs of partitions a failed creation made (no one else
/// has seen them).
pub(super) fn discard(partitions: impl IntoIterator<Item = Arc<Partition>>) {
    for partition in partitions {
        partition.wake();
        let dir = partition.log().dir().to_path_buf();
        drop(partition);
        if let Err(e) = fs::remove_dir_all(&dir) {
            tracing::error!(dir = %dir.display(), error = %e, "cannot remove the directory of a partition not created");
        }
    }
}

/// POLICY_VIOLATION when `adding` partitions to `hosted` ones would pass
/// `limit` (`max.partitions`, Fjord's own: Kafka has no such limit). The
/// same check for a broker of a cluster is in the metadata frontend.
pub(crate) fn check_partition_limit(
    hosted: usize,
    adding: usize,
    limit: usize,
) -> Result<(), ApiError> {
    if hosted.saturating_add(adding) <= limit {
        return Ok(());
    }
    Err(ApiError::new(
        ResponseError::PolicyViolation,
        format!(
            "{adding} new partition(s) would make {}, over the limit of {limit} ({hosted} exist)",
            hosted.saturating_add(adding)
        ),
    ))
}
