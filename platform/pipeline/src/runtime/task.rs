//! The threads that move records: one per `parallelism` slot, each
//! owning some of the source topic's partitions (or the source connector),
//! reading, running the chain, delivering, saving state and committing.
//!
//! Plugin calls are synchronous and may be slow, so tasks are OS threads
//! that enter the broker's runtime only for appends and commits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use fjord_broker::Partition;
use fjord_plugin_host::{PluginInstance, PluginLog};
use fjord_sdk::{Level, Record};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::StartFrom;

use super::access::Permissions;
use super::chain::Chain;
use super::changelog::ChangelogStore;
use super::deployments::{LogLine, POSITIONS_TOPIC};
use super::error::{PipelineError, TopicsError};
use super::outputs::{MAX_BACKOFF, RouteError, Router};
use super::records;
use super::stats::PipelineStats;
use super::stop::{StopSignal, Stopped};
use super::topics::Topics;

/// How much of a partition one read takes.
const READ_BYTES: usize = 1 << 20;
/// How often progress is committed, and state changes are written to the
/// changelogs, while records flow. A key changed many times in between is
/// written once: the changelog grows with the commits, not the batches.
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// How often processors' timers run.
const TIMER_EVERY: Duration = Duration::from_secs(1);
/// An idle source connector is polled after IDLE_POLL_MIN, then twice as
/// late each time it has nothing, up to IDLE_POLL_MAX: the latency of the
/// first record after a quiet spell, against wake-ups of an idle broker.
const IDLE_POLL_MIN: Duration = Duration::from_millis(10);
const IDLE_POLL_MAX: Duration = Duration::from_millis(200);

/// Log lines waiting to be written to the pipeline log topic (every
/// second). A plugin that logs per record must not grow it without bound:
/// past [`LogBuffer::MAX_PENDING`] lines are counted, not kept, and one
/// line says how many were dropped.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer(Mutex<PendingLines>);

#[derive(Debug, Default)]
pub(crate) struct PendingLines {
    lines: Vec<LogLine>,
    dropped: BTreeMap<String, u64>,
}

impl LogBuffer {
    pub const MAX_PENDING: usize = 1_000;

    pub fn push(&self, pipeline: &str, level: &str, message: String) {
        match level {
            "error" => tracing::error!(pipeline, "{message}"),
            "warn" => tracing::warn!(pipeline, "{message}"),
            _ => tracing::info!(pipeline, "{message}"),
        }
        let mut pending = self.0.lock();
        if pending.lines.len() >= Self::MAX_PENDING {
            *pending.dropped.entry(pipeline.to_owned()).or_default() += 1;
            return;
        }
        pending.lines.push(LogLine {
            time_ms: super::now_ms(),
            level: level.to_owned(),
            pipeline: pipeline.to_owned(),
            message,
        });
    }

    pub fn take(&self) -> Vec<LogLine> {
        let mut pending = self.0.lock();
        let mut lines = std::mem::take(&mut pending.lines);
        for (pipeline, dropped) in std::mem::take(&mut pending.dropped) {
            lines.push(LogLine {
                time_ms: super::now_ms(),
                level: "warn".to_owned(),
                pipeline,
                message: format!("{dropped} more log lines in the last second were dropped"),
            });
        }
        lines
    }
}

/// A pipeline's plugins log into its log, each line prefixed with the
/// plugin's step name.
pub(crate) struct PipelineLog {
    pub pipeline: String,
    pub buffer: Arc<LogBuffer>,
}

impl PluginLog for PipelineLog {
    fn log(&self, plugin: &str, level: Level, message: &str) {
        let level = match level {
            Level::Error => "error",
            Level::Warn => "warn",
            _ => "info",
        };
        self.buffer
            .push(&self.pipeline, level, format!("{plugin}: {message}"));
    }
}

/// What a task needs of the world.
#[derive(Clone)]
pub(crate) struct Io {
    pub topics: Topics,
    pub handle: tokio::runtime::Handle,
    pub stop: Arc<StopSignal>,
    pub logs: Arc<LogBuffer>,
    pub pipeline: String,
    /// What the pipeline's principal must be allowed, asked before every
    /// round of batches and every commit.
    pub permissions: Arc<Permissions>,
    /// `delivery: exactly-once`: each source partition (or the source
    /// connector) writes in transactions of its own id.
    pub exactly_once: bool,
}

impl Io {
    /// The same, writing through `topics` (a partition's transaction).
    pub(super) fn with_topics(&self, topics: Option<&Topics>) -> Io {
        match topics {
            Some(topics) => Io {
                topics: topics.clone(),
                ..self.clone()
            },
            None => self.clone(),
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_set()
    }

    /// Whether the ACLs still allow the pipeline's reads and writes. When
    /// they do not, the refusal becomes the task's error (it stops; the
    /// supervisor starts it again once a binding allows it) and the log's.
    pub fn allowed(&self, stats: &PipelineStats) -> bool {
        match self.permissions.to_run() {
            Ok(()) => true,
            Err(denied) => {
                self.logs
                    .push(&self.pipeline, "error", format!("stopped: {denied}"));
                stats.refused(denied.to_string());
                false
            }
        }
    }

    /// Sleeps up to `d`, waking early when stopped.
    pub fn sleep(&self, d: Duration) {
        self.stop.sleep_until(&self.handle, Instant::now() + d);
    }

    /// Blocks until one of the partitions behind `appends` has new
    /// records, `until` passes, or the task is stopped. An idle task costs
    /// no reads, no wake-ups and no CPU.
    pub fn wait_for_appends(&self, appends: &mut [watch::Receiver<i64>], until: Instant) {
        if self.stopped() {
            return;
        }
        self.handle.block_on(async {
            tokio::select! {
                () = any_changed(appends) => {}
                () = self.stop.stopped() => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        });
    }

    /// Runs `attempt` until it succeeds, backing off; only stopping the task
    /// ends the retries.
    pub fn retry<E: std::fmt::Display>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Result<(), E>,
    ) -> Result<(), Stopped> {
        let mut wait = Duration::from_millis(50);
        let mut failures = 0u32;
        loop {
            match attempt() {
                Ok(()) => {
                    if failures > 0 {
                        self.logs
                            .push(&self.pipeline, "info", format!("{what}: recovered"));
                    }
                    return Ok(());
                }
                Err(e) => {
                    // Retrying cannot help: the task ends, and starts
                    // again from its last commit (exactly_once.rs).
                    if self.topics.transaction_lost() {
                        return Err(Stopped);
                    }
                    if failures.is_multiple_of(10) {
                        self.logs.push(
                            &self.pipeline,
                            "warn",
                            format!("{what} failed (attempt {}), retrying: {e}", failures + 1),
                        );
                    }
                    failures += 1;
                    if self.stopped() {
                        return Err(Stopped);
                    }
                    self.sleep(wait);
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Completes when any receiver sees a change. The senders live in the
/// partitions, which the task holds: they are never closed under it.
async fn any_changed(receivers: &mut [watch::Receiver<i64>]) {
    let mut waits: Vec<_> = receivers
        .iter_mut()
        .map(|rx| Some(Box::pin(async move { rx.changed().await.is_ok() })))
        .collect();
    std::future::poll_fn(move |cx| {
        for slot in &mut waits {
            if let Some(wait) = slot
                && let Poll::Ready(changed) = wait.as_mut().poll(cx)
            {
                *slot = None;
                if changed {
                    return Poll::Ready(());
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// One source partition a task owns.
pub(crate) struct PartitionWork {
    pub log: Arc<Partition>,
    pub chain: Chain,
    pub position: i64,
    pub committed: i64,
    /// Exactly-once: the partition's topics, writing in its transaction
    /// (its sink records, changelog records and offsets commit together).
    pub txn: Option<Topics>,
}

/// A task reading a topic.
pub(crate) struct TopicTask {
    pub io: Io,
    pub group: String,
    pub topic: String,
    pub partitions: i32,
    pub works: Vec<PartitionWork>,
    pub start_from: StartFrom,
    pub stores: Vec<Arc<ChangelogStore>>,
    pub router: Router,
    pub stats: Arc<PipelineStats>,
}

impl TopicTask {
    /// Finds where each partition resumes: its committed offset, moved
    /// forward to the position its restored state already reflects, so no
    /// record is applied to the state twice. `startFrom` only decides
    /// where a partition with no usable commit begins (as Kafka's
    /// `auto.offset.reset`): a restart, a pause and resume or a redeploy
    /// must neither re-read nor skip what the group committed; re-reading
    /// is `fjord pipeline reset`. In a cluster these are reads from other
    /// brokers, which may be between leaders for a while: they are retried
    /// until they succeed or the task is stopped.
    fn resume(&mut self) -> Result<(), Stopped> {
        for w in &mut self.works {
            let index = w.log.index();
            // Before the committed offset is read: fencing the previous
            // incarnation aborts its open transaction, whose offsets are
            // then never the group's.
            w.txn = self.io.transactional(&format!(
                "pipeline.{}.{}.{index}",
                self.io.pipeline, self.topic
            ))?;
            let mut committed = None;
            self.io.retry("reading the committed offset", || {
                committed = self.io.topics.committed(&self.group, &self.topic, index)?;
                Ok::<_, TopicsError>(())
            })?;
            let start = w.log.log_start_offset();
            let mut position = match (committed, self.start_from) {
                // Retention may have deleted past the commit: the oldest
                // record left is the next one not yet read.
                (Some(c), _) => c.max(start),
                (None, StartFrom::Latest) => w.log.high_watermark(),
                (None, StartFrom::Earliest | StartFrom::Committed) => start,
            };
            let mut restored: Option<i64> = None;
            for store in &self.stores {
                self.io.retry("restoring state", || {
                    if let Some(p) = store.restore(&self.io.topics, index)? {
                        restored = Some(restored.map_or(p, |r| r.min(p)));
                    }
                    Ok::<_, PipelineError>(())
                })?;
            }
            if let Some(r) = restored {
                position = position.max(r);
            }
            w.position = position;
            w.committed = committed.unwrap_or(-1);
        }
        Ok(())
    }

    pub fn run(mut self) {
        self.run_until_stopped();
        self.end_transactions();
    }

    fn run_until_stopped(&mut self) {
        if self.resume().is_err() {
            return;
        }
        for w in &self.works {
            self.stats
                .position(w.log.index(), w.position, w.log.high_watermark());
        }
        // Subscribed before the first read, so an append in between still
        // wakes the task.
        let mut appends: Vec<watch::Receiver<i64>> =
            self.works.iter().map(|w| w.log.subscribe()).collect();
        let mut last_commit = Instant::now();
        let mut next_timers = Instant::now() + TIMER_EVERY;
        while !self.io.stopped() {
            // Before any record is read: a refused task stops where it
            // is, saving what it delivered (if it may still commit).
            if !self.io.allowed(&self.stats) {
                let _ = self.checkpoint();
                return;
            }
            let timers = Instant::now() >= next_timers;
            if timers {
                next_timers = Instant::now() + TIMER_EVERY;
            }
            let mut moved = false;
            for i in 0..self.works.len() {
                match self.step(i, timers) {
                    Ok(m) => moved |= m,
                    Err(Some(e)) => {
                        self.stats.fatal(e.clone());
                        self.io.logs.push(&self.io.pipeline, "error", e);
                        return;
                    }
                    Err(None) => return,
                }
                // Stopped (a batch may have been handed back): what was
                // delivered is saved below, and no more is read.
                if self.io.stopped() {
                    break;
                }
            }
            // State and progress are saved at most every COMMIT_EVERY, and
            // only when there is some: a trickle of records must not
            // become a changelog write and a commit per record, nor an
            // idle task one per wake-up.
            let unsaved = self.unsaved();
            if unsaved && last_commit.elapsed() >= COMMIT_EVERY {
                if self.checkpoint().is_err() {
                    return;
                }
                last_commit = Instant::now();
            }
            if !moved {
                let until = if unsaved {
                    next_timers.min(last_commit + COMMIT_EVERY)
                } else {
                    next_timers
                };
                self.io.wait_for_appends(&mut appends, until);
            }
        }
        let _ = self.checkpoint();
    }

    /// Whether some partition has read past its commit, or some state
    /// changed (a timer closes windows without reading anything).
    fn unsaved(&self) -> bool {
        self.works.iter().any(|w| {
            w.position != w.committed
                || w.txn.as_ref().is_some_and(Topics::in_transaction)
                || self
                    .stores
                    .iter()
                    .any(|s| s.unsaved(w.log.index(), w.position))
        })
    }

    /// Reads and handles one batch of partition `i`. `Ok(true)` when records
    /// moved; `Ok(false)` too when the chain handed the batch back because
    /// the task was stopped (its state undone; its position stays, so
    /// it is read again when the pipeline runs again). `Err(Some)` on an
    /// error that stops the task, `Err(None)` when stopped mid-delivery.
    fn step(&mut self, i: usize, timers: bool) -> Result<bool, Option<String>> {
        let work = &mut self.works[i];
        // Leadership moved (the supervisor stops this task within a tick):
        // the new leader's tasks own the partition's output and state now.
        if !self.io.topics.local().leads(&work.log) {
            self.io.sleep(Duration::from_millis(50));
            return Ok(false);
        }
        let partition = work.log.index();
        work.chain.begin();
        let mut output = if timers {
            match work.chain.timers(super::now_ms()) {
                Ok(output) => output,
                Err(Stopped) => return Ok(false),
            }
        } else {
            Default::default()
        };
        // A task never passes over a batch: it fails, and the batch's place
        // is in its error (docs/security.md).
        let read = records::read(&work.log, work.position, READ_BYTES)
            .and_then(|read| read.strict().map_err(PipelineError::from))
            .map_err(|e| Some(e.to_string()))?;
        let moved = !read.records.is_empty();
        if moved {
            let Ok(processed) = work.chain.process(read.records) else {
                return Ok(false);
            };
            output.records.extend(processed.records);
            output.failures.extend(processed.failures);
        }
        if !output.records.is_empty() || !output.failures.is_empty() {
            let io = self.io.with_topics(work.txn.as_ref());
            match self.router.deliver(&io, output.records, output.failures) {
                Ok(()) => {}
                Err(RouteError::Stopped) => return Err(None),
                Err(RouteError::Failed(e)) => return Err(Some(e.to_string())),
            }
        }
        let work = &mut self.works[i];
        // Lost leadership while delivering (a broker that hung and woke up
        // fenced): its state and position are stale now, and writing them
        // would overwrite the new leader's. Only the new leader saves.
        if !self.io.topics.local().leads(&work.log) {
            return Ok(false);
        }
        work.position = work.position.max(read.next);
        self.stats
            .position(partition, work.position, work.log.high_watermark());
        Ok(moved)
    }

    /// Writes each partition's state changes, with the position they
    /// reflect, to the changelogs, then commits the positions: a restart
    /// resumes from the commit or from the state's position, whichever is
    /// later, so a record is never applied to the state twice. Retried
    /// until it succeeds or the task is stopped; nothing is committed past
    /// state that was not written.
    fn checkpoint(&mut self) -> Result<(), Stopped> {
        for w in &self.works {
            // A former leader's state and position are stale: only the
            // partition's new leader saves.
            if !self.io.topics.local().leads(&w.log) {
                continue;
            }
            let (partition, position) = (w.log.index(), w.position);
            for store in &self.stores {
                if !store.unsaved(partition, position) {
                    continue;
                }
                let (io, partitions) = (&self.io.with_topics(w.txn.as_ref()), self.partitions);
                io.retry("state changelog append", || {
                    io.handle
                        .block_on(store.flush(&io.topics, partition, partitions, position))
                })?;
            }
        }
        if self.works.iter().any(|w| w.txn.is_some()) {
            return self.commit_transactions();
        }
        self.commit();
        Ok(())
    }

    fn commit(&mut self) {
        let pending: Vec<(&str, i32, i64)> = self
            .works
            .iter()
            // A former leader's late commit could move the group back
            // behind what the new leader committed.
            .filter(|w| w.position != w.committed && self.io.topics.local().leads(&w.log))
            .map(|w| (self.topic.as_str(), w.log.index(), w.position))
            .collect();
        if pending.is_empty() {
            return;
        }
        // Kafka's OffsetCommit needs READ on the group and the topic: a
        // refused commit leaves the position to be read again.
        if let Err(denied) = self.io.permissions.to_commit() {
            self.io.logs.push(
                &self.io.pipeline,
                "warn",
                format!("cannot commit progress of {}: {denied}", self.group),
            );
            return;
        }
        match self
            .io
            .handle
            .block_on(self.io.topics.commit(&self.group, &pending))
        {
            Ok(()) => {
                for w in &mut self.works {
                    w.committed = w.position;
                }
            }
            Err(e) => self.io.logs.push(
                &self.io.pipeline,
                "warn",
                format!("cannot commit progress of {}: {e}", self.group),
            ),
        }
    }
}

/// Makes the source connector's instance, resuming from a saved position.
pub(crate) type MakeSource =
    Box<dyn FnOnce(Option<Vec<u8>>) -> Result<PluginInstance, PipelineError> + Send>;

/// A task running a source connector.
pub(crate) struct ConnectorTask {
    pub io: Io,
    /// Taken when the task starts.
    pub source: Option<MakeSource>,
    pub chain: Chain,
    pub stores: Vec<Arc<ChangelogStore>>,
    pub router: Router,
    pub stats: Arc<PipelineStats>,
    /// Records polled so far: the state changelog's position.
    pub polled: i64,
}

/// The transactional id of a pipeline's source connector task.
fn connector_txn_id(pipeline: &str) -> String {
    format!("pipeline.{pipeline}.connector")
}

impl ConnectorTask {
    /// The connector's last saved position, and the steps' state restored;
    /// retried until they succeed or the task is stopped.
    fn resume(&self) -> Result<Option<Vec<u8>>, Stopped> {
        let mut position = None;
        self.io.retry("reading the source position", || {
            let read = self.io.topics.read_to_end(POSITIONS_TOPIC, 0, 0)?;
            position = read
                .records
                .into_iter()
                .rfind(|r| r.key.as_deref() == Some(self.io.pipeline.as_bytes()))
                .and_then(|r| r.value);
            Ok::<_, TopicsError>(())
        })?;
        for store in &self.stores {
            self.io.retry("restoring state", || {
                store.restore(&self.io.topics, 0).map(|_| ())
            })?;
        }
        Ok(position)
    }

    pub fn run(mut self) {
        // Exactly-once: every write goes in the task's transaction, which
        // each checkpoint commits with the connector's saved position.
        match self.io.transactional(&connector_txn_id(&self.io.pipeline)) {
            Ok(Some(topics)) => self.io.topics = topics,
            Ok(None) => {}
            Err(Stopped) => return,
        }
        self.run_until_stopped();
        self.io.end_transaction(&self.stats);
    }

    fn run_until_stopped(&mut self) {
        let Ok(position) = self.resume() else {
            return;
        };
        let Some(make) = self.source.take() else {
            return;
        };
        let mut source = match make(position) {
            Ok(s) => s,
            Err(e) => {
                self.stats.fatal(e.to_string());
                self.io
                    .logs
                    .push(&self.io.pipeline, "error", format!("cannot start: {e}"));
                return;
            }
        };
        let mut last_timer = Instant::now();
        let mut last_save = Instant::now();
        let mut last_position: Option<Vec<u8>> = None;
        let mut saved: Vec<u8> = Vec::new();
        let mut idle_poll = IDLE_POLL_MIN;
        while !self.io.stopped() {
            if !self.io.allowed(&self.stats) {
                let _ = self.checkpoint(&mut last_position, &mut saved);
                return;
            }
            self.chain.begin();
            let mut output = if last_timer.elapsed() >= TIMER_EVERY {
                last_timer = Instant::now();
                match self.chain.timers(super::now_ms()) {
                    Ok(output) => output,
                    // Handed back: what was delivered before is saved.
                    Err(Stopped) => break,
                }
            } else {
                Default::default()
            };
            let (batch, position) = match source.poll(1024) {
                Ok(polled) => polled,
                Err(e) => {
                    self.io.logs.push(
                        &self.io.pipeline,
                        "warn",
                        format!("source connector failed, retrying in 1 s: {e}"),
                    );
                    self.io.sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let count = fjord_sdk::validate(&batch).unwrap_or(0) as i64;
            let moved = count > 0;
            // Handed back: the connector's position saved below is the
            // one before this batch, so a connector that can resume from
            // it polls the batch again.
            let Ok(processed) = self.chain.process_encoded(batch) else {
                break;
            };
            self.polled += count;
            self.stats.position(0, self.polled, self.polled);
            output.records.extend(processed.records);
            output.failures.extend(processed.failures);
            if !output.records.is_empty() || !output.failures.is_empty() {
                match self
                    .router
                    .deliver(&self.io, output.records, output.failures)
                {
                    Ok(()) => {}
                    Err(RouteError::Stopped) => return,
                    Err(RouteError::Failed(e)) => {
                        self.stats.fatal(e.to_string());
                        self.io.logs.push(&self.io.pipeline, "error", e.to_string());
                        return;
                    }
                }
            }
            if !position.is_empty() {
                last_position = Some(position);
            }
            // As a topic task: state and the connector's position are
            // saved at most every COMMIT_EVERY, and only when changed.
            if last_save.elapsed() >= COMMIT_EVERY {
                if self.checkpoint(&mut last_position, &mut saved).is_err() {
                    return;
                }
                last_save = Instant::now();
            }
            // A source connector cannot be waited on: an idle one is polled
            // less and less often, down to every IDLE_POLL_MAX.
            if moved {
                idle_poll = IDLE_POLL_MIN;
            } else {
                self.io.sleep(idle_poll);
                idle_poll = (idle_poll * 2).min(IDLE_POLL_MAX);
            }
        }
        let _ = self.checkpoint(&mut last_position, &mut saved);
    }

    /// Writes the steps' state changes, then the connector's position if
    /// it moved since `saved` (the state first: a restart must not resume
    /// past records whose effect on the state was lost).
    fn checkpoint(
        &self,
        position: &mut Option<Vec<u8>>,
        saved: &mut Vec<u8>,
    ) -> Result<(), Stopped> {
        let (io, polled) = (&self.io, self.polled);
        for store in &self.stores {
            if store.unsaved(0, polled) {
                io.retry("state changelog append", || {
                    io.handle.block_on(store.flush(&io.topics, 0, 1, polled))
                })?;
            }
        }
        if let Some(position) = position.take()
            && position != *saved
        {
            self.save_position(&position);
            *saved = position;
        }
        if io.topics.in_transaction() {
            io.retry("committing the transaction", || {
                io.handle.block_on(io.topics.commit_transaction())
            })?;
        }
        Ok(())
    }

    /// Stores the connector's position so a restart resumes from it.
    fn save_position(&self, position: &[u8]) {
        let record = Record {
            key: Some(self.io.pipeline.as_bytes().to_vec()),
            value: Some(position.to_vec()),
            timestamp: super::now_ms(),
            ..Record::default()
        };
        let saved = self.io.handle.block_on(self.io.topics.append(
            POSITIONS_TOPIC,
            0,
            std::slice::from_ref(&record),
        ));
        if let Err(e) = saved {
            self.io.logs.push(
                &self.io.pipeline,
                "warn",
                format!("cannot save the source position: {e}"),
            );
        }
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use fjord_plugin_host::Services;
    use fjord_sdk::Host;

    #[test]
    fn plugin_log_lines_join_the_pipeline_log() {
        let buffer = Arc::new(LogBuffer::default());
        let mut services = Services::in_memory("parse");
        services.log = Some(Arc::new(PipelineLog {
            pipeline: "p".to_owned(),
            buffer: Arc::clone(&buffer),
        }));
        services.log(Level::Warn, "odd line");
        services.log(Level::Debug, "only in the process log");
        let lines = buffer.take();
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (
                lines[0].pipeline.as_str(),
                lines[0].level.as_str(),
                lines[0].message.as_str()
            ),
            ("p", "warn", "parse: odd line")
        );
    }

    #[test]
    fn a_flood_of_lines_is_capped_and_counted() {
        let buffer = LogBuffer::default();
        for i in 0..LogBuffer::MAX_PENDING + 250 {
            buffer.push("p", "info", format!("line {i}"));
        }
        let lines = buffer.take();
        assert_eq!(lines.len(), LogBuffer::MAX_PENDING + 1);
        assert_eq!(
            lines.last().unwrap().message,
            "250 more log lines in the last second were dropped"
        );
        assert!(buffer.take().is_empty());
    }
}
