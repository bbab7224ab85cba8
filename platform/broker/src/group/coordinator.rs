//! The group coordinator itself: every group behind one mutex, the
//! settings it takes from the broker config, member ids, and the periodic
//! [`tick`] that drives the timers (session expiry, rebalance deadlines,
//! offsets retention, forgetting empty groups). The protocols' rules live
//! beside it: the classic one in `classic`, KIP-848's in `consumer`.
//!
//! One mutex guards every group; no await happens under it. A JoinGroup or
//! SyncGroup that must wait leaves a oneshot sender in its member and the
//! handler awaits the receiver outside the lock.
//!
//! [`tick`]: GroupCoordinator::tick

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::oneshot;

use super::state::{Group, GroupState};

/// How often [`GroupCoordinator::tick`] should run.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Settings the coordinator takes from the broker config.
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub offsets_retention_ms: i64,
    /// `group.max.size`: members, joined or pending, per group.
    pub max_size: usize,
    /// `group.protocol.metadata.max.bytes`: protocol names and metadata of
    /// one JoinGroup.
    pub protocol_metadata_max_bytes: usize,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms`: KIP-848 members silent longer
    /// are fenced.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: what KIP-848 members are
    /// told to heartbeat at.
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms` and `…max…`: the bounds of
    /// a group's own `consumer.session.timeout.ms`.
    pub consumer_min_session_timeout_ms: i32,
    pub consumer_max_session_timeout_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms` and `…max…`: the bounds
    /// of a group's own `consumer.heartbeat.interval.ms`.
    pub consumer_min_heartbeat_interval_ms: i32,
    pub consumer_max_heartbeat_interval_ms: i32,
    /// `group.consumer.migration.policy`: which online conversions of a
    /// live group between the protocols are allowed (`migration.rs`).
    pub migration_policy: super::MigrationPolicy,
}

#[cfg(test)]
impl GroupSettings {
    /// The settings unit tests start from: no rebalance delay, session
    /// timeouts down to 10 ms, room for 50 members; a test changes what it
    /// is about with `..GroupSettings::for_tests()`.
    pub(crate) fn for_tests() -> Self {
        GroupSettings {
            initial_rebalance_delay: Duration::ZERO,
            min_session_timeout_ms: 10,
            max_session_timeout_ms: 60_000,
            offsets_retention_ms: 60_000,
            max_size: 50,
            protocol_metadata_max_bytes: 1024,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_min_session_timeout_ms: 45_000,
            consumer_max_session_timeout_ms: 60_000,
            consumer_min_heartbeat_interval_ms: 5_000,
            consumer_max_heartbeat_interval_ms: 15_000,
            migration_policy: Default::default(),
        }
    }
}

/// An answer now, or one to wait for.
#[derive(Debug)]
pub(crate) enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

/// All groups of this broker.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    settings: GroupSettings,
    groups: Mutex<HashMap<String, Group>>,
    next_member: AtomicU64,
    /// Wall-clock ns at creation, to make member ids unique across restarts.
    epoch_ns: u128,
    /// Groups dropped from memory whose metadata record needs a tombstone.
    pub(super) forgotten: Mutex<Vec<String>>,
    /// In a cluster: the offsets partitions whose groups are loaded here.
    pub(super) loaded: super::ownership::LoadedPartitions,
    /// Every group's dynamic configs (`configs.rs`); read without the
    /// groups' lock.
    pub(super) group_configs:
        parking_lot::RwLock<std::sync::Arc<super::configs::AppliedGroupConfigs>>,
    /// Offsets committed inside open transactions (`txn_offsets.rs`);
    /// taken after the groups' lock when both are held.
    pub(super) txn_offsets: Mutex<super::txn_offsets::TxnOffsets>,
}

impl GroupCoordinator {
    pub(crate) fn new(settings: GroupSettings) -> Self {
        GroupCoordinator {
            settings,
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            epoch_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
            forgotten: Mutex::new(Vec::new()),
            loaded: Default::default(),
            group_configs: Default::default(),
            txn_offsets: Default::default(),
        }
    }

    /// The groups. The lock does not poison: a panicking holder leaves them
    /// as they were (every update leaves a group consistent before anything
    /// can panic). Only the coordinator's own modules take it; everyone
    /// else calls an operation or gets an owned view (`views.rs`).
    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock()
    }

    /// The settings it was made with.
    pub(super) fn settings(&self) -> &GroupSettings {
        &self.settings
    }

    pub(super) fn new_member_id(&self, client_id: &str) -> String {
        // Unique across restarts too: the start time is part of the id.
        let n = self.next_member.fetch_add(1, Ordering::Relaxed);
        format!("{client_id}-{:x}-{n}", self.epoch_ns)
    }

    /// Timers: expired sessions and lapsed pending ids are removed,
    /// rebalances past their delay or deadline complete, and offsets of
    /// empty groups past retention are dropped.
    pub(crate) fn tick(&self, now: Instant, now_ms: i64) {
        let mut groups = self.lock();
        let retention = self.settings.offsets_retention_ms;
        for group in groups.values_mut() {
            group.pending.retain(|_, lapse| *lapse > now);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| m.expired(now))
                .map(|m| m.id.clone())
                .collect();
            for id in &expired {
                tracing::info!(group = %group.id, member = %id, "session timed out; member removed");
                self.remove_member(group, id, now);
            }
            if !expired.is_empty() {
                self.member_gone(group, now);
            }
            self.try_complete_join(group, now);
            self.tick_consumer(group, now);
            if !group.has_no_members() || group.state != GroupState::Empty {
                group.empty_since_ms = None;
            } else {
                let empty_since = *group.empty_since_ms.get_or_insert(now_ms);
                if retention >= 0 {
                    // As Kafka: an offset an open transaction is about to
                    // replace does not expire meanwhile.
                    let txn = self.txn_offsets.lock();
                    group.offsets.retain(|key, o| {
                        txn.is_pending(&group.id, key)
                            || now_ms.saturating_sub(o.commit_timestamp_ms.max(empty_since))
                                < retention
                    });
                }
            }
        }
        let mut forgotten = Vec::new();
        groups.retain(|id, g| {
            let keep = !(g.state == GroupState::Empty
                && g.has_no_members()
                && g.offsets.is_empty()
                && g.pending.is_empty()
                && !g.metadata_dirty);
            // Generation 0: no metadata record was ever written (the group
            // only looked up or committed offsets), so there is nothing to
            // tombstone — as Kafka skips it. Otherwise every OffsetFetch of
            // a made-up group id would append a record.
            if !keep && g.generation > 0 {
                forgotten.push(id.clone());
            }
            keep
        });
        drop(groups);
        self.forgotten.lock().extend(forgotten);
    }
}
