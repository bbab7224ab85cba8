//! One partition as the broker sees it: its log, its role (leader, with
//! the replica set it tracks, or follower), leader epoch, high watermark,
//! and the notifiers that wake fetches parked on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fjord_log::{AppendInfo, BatchHeader, Durability, Log, LogConfig, LogError, LogRead};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::error::PartitionError;

mod txn;
use crate::producer_state::{Expiry, ProducerStates, SequenceError, Verdict};
use crate::replica_set::{IsrChange, ReplicaSet};

/// What this broker does for a partition.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// It takes produce requests and serves followers and consumers.
    Leader(ReplicaSet),
    /// It copies the leader's log (when one is known) and serves nobody.
    Follower,
}

/// An ISR change for the controller, with the epochs that make it valid.
#[derive(Debug, Clone)]
pub(crate) struct IsrProposal {
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

/// A partition hosted by this broker. On a single node it is always the
/// leader and the high watermark is the log end offset once an append has
/// returned (after its fsync in `durability: fsync`). In a cluster
/// (`replicated`) the controller decides its role, and a leader's high
/// watermark is the smallest log end of its in-sync replicas.
#[derive(Debug)]
pub struct Partition {
    topic: String,
    index: i32,
    log: Arc<Log>,
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    /// Carries the high watermark; every change wakes parked fetches.
    appended: watch::Sender<i64>,
    /// Carries the log end offset; wakes followers' fetches parked on the
    /// leader (they read past the high watermark).
    log_end: watch::Sender<i64>,
    /// Whether other brokers replicate this partition (cluster mode).
    replicated: bool,
    role: RwLock<Role>,
    /// Idempotent producers' sequences; `None` until the first idempotent
    /// batch rebuilds them from the log. An async lock: it is held across
    /// the append so a producer's batches are checked and stored in order.
    producers: tokio::sync::Mutex<Option<ProducerStates>>,
    /// Bytes and records in and out, for the metrics. Kept here rather than
    /// in the global metrics registry so a deleted partition's series go
    /// with it, and so the hot paths pay one atomic add, not a label lookup.
    traffic: TrafficCounters,
    /// KIP-890's verification guards: per producer, the token of the
    /// transactional batch being checked (Kafka's VerificationStateEntry).
    /// A marker of the producer removes it, so a batch whose transaction
    /// ended while it was checked cannot open a new one. An entry goes at
    /// the producer's next append or marker.
    verifying: parking_lot::Mutex<std::collections::HashMap<i64, u64>>,
    /// The last guard token handed out.
    verify_tokens: AtomicU64,
    /// Whether the partition was deleted, under the lock that the periodic
    /// log work (flush policy, retention, checkpoints) and the deletion
    /// both take: the work never runs on a directory being removed, and
    /// never writes a checkpoint into one after it.
    files: parking_lot::Mutex<Deleted>,
}

/// See [`Partition::with_files`].
#[derive(Debug, Default)]
pub(crate) struct Deleted(bool);

#[derive(Debug, Default)]
struct TrafficCounters {
    bytes_in: AtomicU64,
    records_in: AtomicU64,
    bytes_out: AtomicU64,
    records_out: AtomicU64,
}

/// What a partition took in (appends) and served (fetches) since it was
/// opened in this process: counters, for `fjord_topic_*_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionTraffic {
    /// Bytes of record batches appended (Produce, in-process appends, and
    /// on a follower the batches copied from the leader).
    pub bytes_in: u64,
    /// Records appended.
    pub records_in: u64,
    /// Bytes of record batches served to consumers' fetches (followers'
    /// fetches are replication, not counted).
    pub bytes_out: u64,
    /// Records in the batches served (from the batch headers' record counts).
    pub records_out: u64,
}

/// Counts an append waiting for its fsync in `fjord_produce_purgatory_size`
/// while it lives, so a cancelled request still leaves the gauge.
struct ProducePurgatory;

impl ProducePurgatory {
    fn enter() -> Self {
        metrics::gauge!("fjord_produce_purgatory_size").increment(1.0);
        ProducePurgatory
    }
}

impl Drop for ProducePurgatory {
    fn drop(&mut self) {
        metrics::gauge!("fjord_produce_purgatory_size").decrement(1.0);
    }
}

impl Partition {
    /// Wraps an opened log, as the leader of a single node.
    pub fn new(topic: &str, index: i32, log: Log, leader_epoch: i32) -> Self {
        let end = log.log_end_offset();
        Self::with_role(
            topic,
            index,
            log,
            leader_epoch,
            end,
            false,
            Role::Leader(ReplicaSet::solo(-1)),
        )
    }

    /// Wraps an opened log of a replicated partition: it serves nothing
    /// until the controller's metadata makes it leader or follower, and its
    /// high watermark starts at the one checkpointed (records above it may
    /// not be committed).
    pub(crate) fn replicated(topic: &str, index: i32, log: Log, leader_epoch: i32) -> Self {
        let end = log.log_end_offset();
        let hw = match log.read_high_watermark() {
            Ok(Some(hw)) => hw.clamp(log.log_start_offset(), end),
            _ => log.log_start_offset(),
        };
        Self::with_role(topic, index, log, leader_epoch, hw, true, Role::Follower)
    }

    fn with_role(
        topic: &str,
        index: i32,
        log: Log,
        leader_epoch: i32,
        high_watermark: i64,
        replicated: bool,
        role: Role,
    ) -> Self {
        let (appended, _) = watch::channel(high_watermark);
        let (log_end, _) = watch::channel(log.log_end_offset());
        Partition {
            topic: topic.to_string(),
            index,
            log: Arc::new(log),
            leader_epoch: AtomicI32::new(leader_epoch),
            high_watermark: AtomicI64::new(high_watermark),
            appended,
            log_end,
            replicated,
            role: RwLock::new(role),
            producers: tokio::sync::Mutex::new(None),
            traffic: TrafficCounters::default(),
            verifying: parking_lot::Mutex::default(),
            verify_tokens: AtomicU64::new(0),
            files: parking_lot::Mutex::new(Deleted(false)),
        }
    }

    /// Writes the producer-state snapshot (clean shutdown). A partition
    /// whose state was never loaded this run leaves its previous snapshot,
    /// which is still right: nothing idempotent was appended since.
    pub(crate) fn snapshot_producers(&self) -> std::io::Result<()> {
        let Ok(guard) = self.producers.try_lock() else {
            return Err(std::io::Error::other("producer state busy at shutdown"));
        };
        match guard.as_ref() {
            Some(states) => crate::producer_state::snapshot::write(
                self.log.dir(),
                states,
                self.log.log_end_offset(),
            ),
            None => Ok(()),
        }
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition index.
    pub fn index(&self) -> i32 {
        self.index
    }

    /// The log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// The offset up to which consumers may read.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// A receiver that sees every high watermark change from now on.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.appended.subscribe()
    }

    /// Applies a topic config change to the log.
    pub fn set_config(&self, config: LogConfig) {
        self.log.set_config(config);
    }

    /// Appends produced batches as leader: validates, assigns offsets, and
    /// (in fsync mode, on a blocking thread) waits for the fsync. Advances
    /// the high watermark and wakes fetches.
    pub async fn append(&self, mut batches: Vec<u8>) -> Result<AppendInfo, PartitionError> {
        self.append_as_leader(move |log, epoch| log.append(&mut batches, epoch))
            .await
    }

    /// Runs `append` on the log as leader with the current leader epoch
    /// (on a blocking thread when it may fsync), then counts it and moves
    /// the high watermark.
    async fn append_as_leader(
        &self,
        append: impl FnOnce(&Log, i32) -> Result<AppendInfo, LogError> + Send + 'static,
    ) -> Result<AppendInfo, PartitionError> {
        // Request handlers check leadership first; this guards in-process
        // writers (pipelines, the group coordinator) from writing into a
        // follower's copy, which would make it diverge from its leader.
        if self.replicated && !self.is_leader() {
            return Err(PartitionError::NotLeaderAtAppend {
                topic: self.topic.clone(),
                partition: self.index,
            });
        }
        let epoch = self.leader_epoch();
        let config = self.log.config();
        // Fsync mode, and `flush.messages`, can fsync inside the append:
        // keep that off the async workers.
        let may_fsync = config.durability == Durability::Fsync || config.flush_messages.is_some();
        let info = if may_fsync {
            let log = Arc::clone(&self.log);
            let _waiting = ProducePurgatory::enter();
            tokio::task::spawn_blocking(move || append(&log, epoch))
                .await
                .map_err(|e| PartitionError::Interrupted(e.to_string()))??
        } else {
            append(&self.log, epoch)?
        };
        self.count_in(&info);
        self.appended_to(info.last_offset + 1);
        Ok(info)
    }

    /// Counts an append in the bytes and records taken in.
    fn count_in(&self, info: &AppendInfo) {
        self.traffic
            .bytes_in
            .fetch_add(info.bytes as u64, Ordering::Relaxed);
        self.traffic
            .records_in
            .fetch_add(info.record_count, Ordering::Relaxed);
    }

    /// After the log grew to `log_end`: wakes followers and, on a single
    /// node or with no other replica in sync, advances the high watermark.
    fn appended_to(&self, log_end: i64) {
        if !self.replicated {
            self.advance_high_watermark(log_end);
            return;
        }
        self.log_end.send_replace(log_end);
        self.recompute_high_watermark();
    }

    /// A leader's high watermark from its replica set.
    fn recompute_high_watermark(&self) {
        let hw = match &*self.role.read() {
            Role::Leader(set) => set.high_watermark(self.log.log_end_offset()),
            Role::Follower => None,
        };
        if let Some(hw) = hw {
            self.advance_high_watermark(hw);
        }
    }

    /// Appends one batch of an idempotent producer (`header.producer_id`
    /// ≥ 0): checks its sequence and epoch, answers a retry of a stored
    /// batch with the stored batch's base offset, and remembers the batch.
    /// Returns the base offset and the time a LogAppendTime topic stamped
    /// the batch with (-1 under CreateTime, and for a retried batch: its
    /// stamp is not kept with the producer's state).
    pub(crate) async fn append_idempotent(
        &self,
        batch: Vec<u8>,
        header: &BatchHeader,
        expiry: Expiry,
    ) -> Result<(i64, i64), PartitionError> {
        self.append_verified(batch, header, expiry, None).await
    }

    /// [`Self::append_idempotent`] for a transactional batch, with the
    /// guard token it was found in an open transaction here or verified
    /// with the coordinator under ([`Self::verification_guard`]).
    pub(crate) async fn append_verified(
        &self,
        batch: Vec<u8>,
        header: &BatchHeader,
        expiry: Expiry,
        verified: Option<u64>,
    ) -> Result<(i64, i64), PartitionError> {
        let mut guard = self.producer_states().await?;
        // Markers are written under the same lock and remove the guard: a
        // marker since the check ended the transaction it found (or the
        // coordinator vouched for), and this batch would open a new one
        // the coordinator never heard of.
        if let Some(token) = verified {
            let mut verifying = self.verifying.lock();
            let guarded = verifying.get(&header.producer_id) == Some(&token);
            if !guarded && !self.log.has_open_transaction(header.producer_id) {
                return Err(SequenceError::NotVerified {
                    producer_id: header.producer_id,
                }
                .into());
            }
            if guarded {
                // The transaction is open here once this batch is in: that
                // vouches for the next ones. (On a refused append the
                // client's retry is verified anew.)
                verifying.remove(&header.producer_id);
            }
        }
        let Some(states) = guard.as_mut() else {
            return Err(PartitionError::Interrupted(
                "producer state missing".to_string(),
            ));
        };
        match states.check(header, expiry)? {
            Verdict::Duplicate(offset) => {
                tracing::debug!(
                    topic = %self.topic,
                    partition = self.index,
                    producer_id = header.producer_id,
                    sequence = header.base_sequence,
                    offset,
                    "duplicate batch answered with its original offset"
                );
                Ok((offset, -1))
            }
            Verdict::Append => {
                // Until its marker, a producer's writes here belong to its
                // transaction (Kafka's ProducerAppendInfo): a plain batch
                // would escape the abort.
                if header.attributes & fjord_log::TRANSACTIONAL_ATTRIBUTE == 0
                    && self.log.has_open_transaction(header.producer_id)
                {
                    return Err(SequenceError::NotTransactional {
                        producer_id: header.producer_id,
                    }
                    .into());
                }
                let info = self.append(batch).await?;
                states.record(header, info.first_offset, expiry);
                Ok((info.first_offset, info.log_append_time))
            }
        }
    }

    /// The idempotent producers' state, locked, rebuilt from the log (on a
    /// blocking thread) when not loaded yet.
    async fn producer_states(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<ProducerStates>>, PartitionError> {
        let mut guard = self.producers.lock().await;
        if guard.is_none() {
            let log = Arc::clone(&self.log);
            let rebuilt = tokio::task::spawn_blocking(move || ProducerStates::rebuild(&log))
                .await
                .map_err(|e| PartitionError::Interrupted(e.to_string()))?;
            *guard = Some(rebuilt);
        }
        Ok(guard)
    }

    fn advance_high_watermark(&self, offset: i64) {
        let previous = self.high_watermark.fetch_max(offset, Ordering::AcqRel);
        if offset > previous {
            self.appended.send_replace(offset);
        }
    }

    /// Whether this broker leads the partition.
    pub fn is_leader(&self) -> bool {
        matches!(&*self.role.read(), Role::Leader(_))
    }

    /// Whether other brokers replicate this partition.
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// Checks that this broker leads the partition in the epoch a client
    /// names (`-1`: any), as Kafka's Produce and Fetch do.
    pub(crate) fn check_leader(&self, client_epoch: i32) -> Result<(), PartitionError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let current = self.leader_epoch();
        if client_epoch < 0 || client_epoch == current {
            Ok(())
        } else if client_epoch < current {
            Err(PartitionError::FencedLeaderEpoch {
                client: client_epoch,
                current,
            })
        } else {
            Err(PartitionError::UnknownLeaderEpoch {
                client: client_epoch,
                current,
            })
        }
    }

    /// The error of a request this broker cannot serve as the leader.
    pub(crate) fn not_leader(&self) -> PartitionError {
        PartitionError::NotLeader {
            topic: self.topic.clone(),
            partition: self.index,
        }
    }

    /// The committed in-sync replicas if this broker leads (an acks=all
    /// produce needs `min.insync.replicas` of them).
    pub(crate) fn isr_len(&self) -> Option<usize> {
        match &*self.role.read() {
            Role::Leader(set) => Some(set.isr().len()),
            Role::Follower => None,
        }
    }

    /// Waits until the high watermark reaches `offset` (acks=all). Fails
    /// when leadership moves on meanwhile, or after `timeout`.
    pub(crate) async fn wait_committed(
        &self,
        offset: i64,
        timeout: Duration,
    ) -> Result<(), PartitionError> {
        // A single node, or an ISR of the leader alone: already there.
        if self.high_watermark() >= offset {
            return Ok(());
        }
        let epoch = self.leader_epoch();
        let mut changes = self.appended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.high_watermark() >= offset {
                return Ok(());
            }
            if !self.is_leader() || self.leader_epoch() != epoch {
                return Err(PartitionError::LeadershipMoved { offset });
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`, so this is not reached while
                // we wait; answered as a move, as it always was.
                Ok(Err(_)) => return Err(PartitionError::LeadershipMoved { offset }),
                Err(_) => return Err(PartitionError::NotConfirmed { offset }),
            }
        }
    }

    /// Leads the partition from `leader_epoch` on. A broker that led it
    /// already in this epoch only takes the new replica list and ISR.
    /// Returns whether this is a new term (it did not lead in this epoch).
    pub(crate) fn become_leader(
        &self,
        local: i32,
        leader_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        partition_epoch: i32,
    ) -> bool {
        let now = Instant::now();
        let new_term = {
            let mut role = self.role.write();
            match &mut *role {
                Role::Leader(set) if self.leader_epoch() == leader_epoch => {
                    set.update(replicas, isr, partition_epoch, now);
                    false
                }
                _ => {
                    *role =
                        Role::Leader(ReplicaSet::new(local, replicas, isr, partition_epoch, now));
                    self.leader_epoch.store(leader_epoch, Ordering::Release);
                    // The log changed under any producer state kept from an
                    // earlier term: the first idempotent batch rebuilds it.
                    self.forget_producers();
                    true
                }
            }
        };
        self.recompute_high_watermark();
        self.wake();
        new_term
    }

    /// Follows from `leader_epoch` on: stops serving clients; the replica
    /// fetcher copies the leader's log.
    pub(crate) fn become_follower(&self, leader_epoch: i32) {
        *self.role.write() = Role::Follower;
        self.leader_epoch.store(leader_epoch, Ordering::Release);
        self.forget_producers();
        self.wake();
    }

    /// Drops the idempotent producers' state: a follower's log changes
    /// under it (appends from the leader, truncation), so a later leader
    /// term rebuilds it from the log instead of trusting a stale copy.
    /// Done on both role changes: the lock may be held by an append of the
    /// ending term when the broker becomes a follower.
    fn forget_producers(&self) {
        if let Ok(mut states) = self.producers.try_lock() {
            *states = None;
        }
    }

    /// A follower fetched from this leader at `fetch_offset`: its progress
    /// moves the high watermark, and an ISR expansion may follow.
    pub(crate) fn follower_fetched(&self, replica: i32, fetch_offset: i64) -> Option<IsrProposal> {
        let log_end = self.log.log_end_offset();
        let hw = self.high_watermark();
        let change = {
            let mut role = self.role.write();
            let Role::Leader(set) = &mut *role else {
                return None;
            };
            set.record_fetch(replica, fetch_offset, log_end, hw, Instant::now())
                .map(|IsrChange { isr }| IsrProposal {
                    isr,
                    leader_epoch: self.leader_epoch(),
                    partition_epoch: set.partition_epoch(),
                })
        };
        self.recompute_high_watermark();
        change
    }

    /// The ISR without followers lagging for more than `max_lag`, when one
    /// has to go.
    pub(crate) fn isr_shrink(&self, max_lag: Duration) -> Option<IsrProposal> {
        let role = self.role.read();
        let Role::Leader(set) = &*role else {
            return None;
        };
        set.shrink(Instant::now(), max_lag)
            .map(|IsrChange { isr }| IsrProposal {
                isr,
                leader_epoch: self.leader_epoch(),
                partition_epoch: set.partition_epoch(),
            })
    }

    /// Whether `replica` may fetch as a follower from this leader.
    pub(crate) fn has_replica(&self, replica: i32) -> bool {
        match &*self.role.read() {
            Role::Leader(set) => set.is_replica(replica),
            Role::Follower => false,
        }
    }

    /// A receiver of the log end offset (followers' fetches park on it).
    pub(crate) fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// Reads whole batches from `offset` up to the log end, for a follower.
    pub(crate) fn read_for_follower(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<LogRead, LogError> {
        self.log.read(offset, max_bytes, self.log.log_end_offset())
    }

    /// Appends batches fetched from the leader, keeping their offsets, and
    /// takes the leader's high watermark (capped at the local log end).
    pub(crate) fn append_from_leader(
        &self,
        batches: &mut [u8],
        leader_high_watermark: i64,
    ) -> Result<(), LogError> {
        if !batches.is_empty() {
            let info = self.log.append_as_follower(batches)?;
            self.count_in(&info);
            self.log_end.send_replace(info.last_offset + 1);
        }
        let hw = leader_high_watermark.min(self.log.log_end_offset());
        self.advance_high_watermark(hw);
        Ok(())
    }

    /// Cuts the log back to `offset` (a follower's divergent tail); the high
    /// watermark comes down with it if it was above.
    pub(crate) fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.log.truncate_to(offset)?;
        self.drop_producer_snapshot();
        let end = self.log.log_end_offset();
        if self.high_watermark.fetch_min(end, Ordering::AcqRel) > end {
            self.appended.send_replace(end);
        }
        self.log_end.send_replace(end);
        Ok(())
    }

    /// Removes the producer-state snapshot a follower's log no longer
    /// matches (cut or started over): it may describe records that are
    /// gone and will be replaced by the leader's.
    fn drop_producer_snapshot(&self) {
        let _ = crate::producer_state::snapshot::take(self.log.dir());
    }

    /// Empties the log and starts it at `offset`, past its end: a follower
    /// that fell behind the leader's log start (retention or DeleteRecords
    /// ran while it was away) copies the log from there.
    pub(crate) fn restart_at(&self, offset: i64) -> Result<(), LogError> {
        self.log.restart_at(offset)?;
        self.drop_producer_snapshot();
        self.log_end.send_replace(offset);
        self.advance_high_watermark(offset);
        Ok(())
    }

    /// Checkpoints the high watermark of a replicated partition, so that a
    /// restart does not expose records above it.
    pub(crate) fn checkpoint_high_watermark(&self) -> Result<(), LogError> {
        if self.replicated {
            self.log.write_high_watermark(self.high_watermark())?;
        }
        Ok(())
    }

    /// Reads whole batches from `offset` up to the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<LogRead, LogError> {
        self.log.read(offset, max_bytes, self.high_watermark())
    }

    /// Counts bytes and records served to a fetch.
    pub(crate) fn served(&self, bytes: u64, records: u64) {
        self.traffic.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.traffic
            .records_out
            .fetch_add(records, Ordering::Relaxed);
    }

    /// Bytes and records appended and served since the partition was
    /// opened in this process.
    pub fn traffic(&self) -> PartitionTraffic {
        PartitionTraffic {
            bytes_in: self.traffic.bytes_in.load(Ordering::Relaxed),
            records_in: self.traffic.records_in.load(Ordering::Relaxed),
            bytes_out: self.traffic.bytes_out.load(Ordering::Relaxed),
            records_out: self.traffic.records_out.load(Ordering::Relaxed),
        }
    }

    /// Wakes fetches parked on this partition without new data (deletion,
    /// shutdown, a change of role).
    /// Runs `work` on the partition's files unless it was deleted; the
    /// deletion waits for it ([`Partition::delete_files`]). Returns `None`
    /// for a deleted partition.
    pub(crate) fn with_files<T>(&self, work: impl FnOnce() -> T) -> Option<T> {
        let files = self.files.lock();
        (!files.0).then(work)
    }

    /// Marks the partition deleted and removes its directory, once any
    /// periodic work on it has finished; later work skips it. With `to`
    /// the directory is renamed there (to be deleted later), else deleted.
    pub(crate) fn delete_files(&self, to: Option<&std::path::Path>) -> std::io::Result<()> {
        let mut files = self.files.lock();
        files.0 = true;
        let removed = match to {
            Some(to) => std::fs::rename(self.log.dir(), to),
            None => std::fs::remove_dir_all(self.log.dir()),
        };
        match removed {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    pub fn wake(&self) {
        self.appended.send_modify(|_| {});
        self.log_end.send_modify(|_| {});
    }
}
