//! A pipeline's processors in order, run on one source partition's
//! records, with the retry and dead-letter rules: a batch a step fails is
//! run again record by record, each record is retried per the manifest's
//! `retry` policy, and the records that still fail come out as
//! [`Failure`]s for the dead-letter topic — the rest of the batch goes on.
//!
//! A record is dead-lettered only after all its attempts: when the task is
//! stopped (a pause, a redeploy, a shutdown) while a record waits for its
//! next attempt, or while an attempt that was not its last runs, the chain
//! hands the batch back unfinished ([`Stopped`]) and undoes the state
//! writes of everything it ran since [`Chain::begin`]. The task then
//! delivers nothing of the batch and commits nothing past it, so the batch
//! runs again from the start when the pipeline does, and the record gets
//! its attempts then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_plugin_host::{PluginError, PluginInstance};
use fjord_sdk::Record;

use super::changelog::ChangelogStore;
use super::stats::{Event, PipelineStats};
use super::stop::{StopSignal, Stopped};
use crate::Retry;

/// A record that a step (or a sink) could not handle.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The record as the failing step got it.
    pub record: Record,
    /// The step or sink that failed.
    pub step: String,
    pub error: String,
}

/// What running records through the chain gave.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub records: Vec<Record>,
    pub failures: Vec<Failure>,
}

impl Output {
    fn extend(&mut self, other: Output) {
        self.records.extend(other.records);
        self.failures.extend(other.failures);
    }
}

/// One named step's instance and its state.
pub(crate) struct Step {
    pub name: String,
    pub instance: PluginInstance,
    pub store: Arc<ChangelogStore>,
}

impl Step {
    /// Runs one plugin call; its state writes count only if it succeeds. So
    /// do its counters, unless the failure is `final_failure` (a record's
    /// last attempt, dead-lettered): a failed call made again (a batch
    /// record by record, a retried record) would count them twice, while a
    /// record that fails for good counts once (an aggregate's
    /// `future_records`).
    fn call(
        &mut self,
        partition: i32,
        final_failure: bool,
        f: impl FnOnce(&mut PluginInstance) -> Result<Vec<u8>, PluginError>,
    ) -> Result<Vec<u8>, PluginError> {
        let started = Instant::now();
        let result = f(&mut self.instance);
        // One call is one batch (or a timer), so this is per batch.
        metrics::histogram!(
            "fjord_plugin_call_duration_seconds",
            "plugin" => self.instance.info().name.clone()
        )
        .record(started.elapsed());
        let metrics = &self.instance.services().metrics;
        match &result {
            Ok(_) => {
                self.store.apply(partition);
                metrics.apply_counters(&self.name, partition);
            }
            Err(_) => {
                self.store.discard(partition);
                if final_failure {
                    metrics.apply_counters(&self.name, partition);
                } else {
                    metrics.discard_counters(&self.name, partition);
                }
            }
        }
        result
    }
}

/// The steps of one source partition.
pub(crate) struct Chain {
    steps: Vec<Step>,
    partition: i32,
    stats: Arc<PipelineStats>,
    retry: Retry,
    stop: Arc<StopSignal>,
    /// For the backoff between a record's attempts, which a stop cuts short.
    handle: tokio::runtime::Handle,
    /// Stop running a batch at its first failed record (a pipeline with
    /// no dead-letter topic, which stops on it): the records after it
    /// reach no further plugin.
    stop_at_failure: bool,
}

impl Chain {
    pub fn new(
        steps: Vec<Step>,
        partition: i32,
        stats: Arc<PipelineStats>,
        retry: Retry,
        stop: Arc<StopSignal>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        Chain {
            steps,
            partition,
            stats,
            retry,
            stop,
            handle,
            stop_at_failure: false,
        }
    }

    /// Stops each batch at its first failed record (see `stop_at_failure`).
    pub fn stopping_at_failure(mut self, stop_at_failure: bool) -> Self {
        self.stop_at_failure = stop_at_failure;
        self
    }

    /// Starts what one delivery of the task will carry (timers and a
    /// batch): the state writes from here on are undone if the chain is
    /// stopped before it is done (see the module doc).
    pub fn begin(&self) {
        for step in &self.steps {
            step.store.mark(self.partition);
        }
    }

    /// Runs `records` through every step. `Err(Stopped)`: stopped while a
    /// record was being retried; nothing of the batch is to be delivered
    /// or committed, and the state is as it was at [`Chain::begin`].
    pub fn process(&mut self, records: Vec<Record>) -> Result<Output, Stopped> {
        if records.is_empty() {
            return Ok(Output::default());
        }
        let batch = fjord_sdk::encode(&records);
        let run = self.run_from(0, batch);
        self.undone_if_stopped(run)
    }

    /// Runs records already in the batch encoding (a source's poll)
    /// through every step; `Err(Stopped)` as for [`Chain::process`].
    pub fn process_encoded(&mut self, batch: Vec<u8>) -> Result<Output, Stopped> {
        let run = self.run_from(0, batch);
        self.undone_if_stopped(run)
    }

    /// Calls every step's timer; what a step emits goes through the steps
    /// after it. `Err(Stopped)` as for [`Chain::process`].
    pub fn timers(&mut self, now_ms: i64) -> Result<Output, Stopped> {
        let run = self.run_timers(now_ms);
        self.undone_if_stopped(run)
    }

    fn run_timers(&mut self, now_ms: i64) -> Result<Output, Stopped> {
        let mut out = Output::default();
        for i in 0..self.steps.len() {
            let step = &mut self.steps[i];
            let partition = self.partition;
            match step.call(partition, false, |i| i.on_timer(partition, now_ms)) {
                Ok(bytes) => {
                    let count = batch_len(&bytes);
                    if count > 0 {
                        self.stats.steps[i].add(0, count);
                        let rest = self.run_from(i + 1, bytes)?;
                        out.extend(rest);
                    }
                }
                Err(e) => {
                    tracing::warn!(step = %step.name, error = %e, "timer failed");
                    self.stats.steps[i].error(&e.to_string());
                }
            }
        }
        Ok(out)
    }

    /// A batch handed back unfinished leaves no trace in the state.
    fn undone_if_stopped(&self, run: Result<Output, Stopped>) -> Result<Output, Stopped> {
        if run.is_err() {
            for step in &self.steps {
                step.store.roll_back(self.partition);
            }
        }
        run
    }

    /// Runs an encoded batch from step `start` on. Batches stay encoded
    /// between steps; records are decoded once, at the end.
    fn run_from(&mut self, start: usize, mut batch: Vec<u8>) -> Result<Output, Stopped> {
        let mut failures = Vec::new();
        for i in start..self.steps.len() {
            let count = batch_len(&batch);
            if count == 0 {
                break;
            }
            let (passed, failed) = self.run_step(i, batch)?;
            self.stats.steps[i].add(count, batch_len(&passed));
            if let Some(last) = failed.last() {
                self.stats.steps[i].fail(failed.len(), &last.error);
            }
            let stop_here = self.stop_at_failure && !failed.is_empty();
            failures.extend(failed);
            batch = passed;
            if stop_here {
                // Nothing of this batch is delivered (the router stops on
                // the failure), so nothing of it goes on either.
                return Ok(Output {
                    records: Vec::new(),
                    failures,
                });
            }
        }
        Ok(Output {
            records: fjord_sdk::decode(&batch).unwrap_or_default(),
            failures,
        })
    }

    /// Runs step `i` on `batch`: what passed, and the records that failed
    /// all their attempts.
    fn run_step(&mut self, i: usize, batch: Vec<u8>) -> Result<(Vec<u8>, Vec<Failure>), Stopped> {
        let partition = self.partition;
        let step = &mut self.steps[i];
        match step.call(partition, false, |i| i.process(partition, &batch)) {
            Ok(out) => return Ok((out, Vec::new())),
            Err(e) if batch_len(&batch) > 1 => {
                tracing::debug!(step = %step.name, error = %e, "batch failed; retrying record by record");
            }
            Err(_) => {}
        }
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        for record in fjord_sdk::decode(&batch).unwrap_or_default() {
            let single = fjord_sdk::encode(std::slice::from_ref(&record));
            let mut attempt = 1;
            loop {
                let last = attempt >= self.retry.attempts;
                match step.call(partition, last, |i| i.process(partition, &single)) {
                    Ok(out) => {
                        passed.extend(fjord_sdk::decode(&out).unwrap_or_default());
                        break;
                    }
                    Err(e) if last => {
                        failed.push(Failure {
                            record,
                            step: step.name.clone(),
                            error: e.to_string(),
                        });
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(step = %step.name, attempt, error = %e, "record failed; retrying");
                        self.stats
                            .note(Event::Retried, &step.name, 1, &e.to_string());
                        // A stop during the wait (or during the attempt
                        // just failed) is no reason to give up on the
                        // record: the batch is handed back, to run again
                        // with all its attempts when the pipeline does.
                        let next = Instant::now() + self.retry.backoff(attempt);
                        if self.stop.sleep_until(&self.handle, next) {
                            return Err(Stopped);
                        }
                        attempt += 1;
                    }
                }
            }
            if self.stop_at_failure && !failed.is_empty() {
                break;
            }
        }
        Ok((fjord_sdk::encode(&passed), failed))
    }
}

/// The record count of a batch in the batch encoding (its first four
/// bytes, little-endian); the host checked the encoding already.
fn batch_len(batch: &[u8]) -> usize {
    batch
        .get(..4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

impl Retry {
    /// The wait before attempt `attempt + 1`: doubling from `backoffMs`,
    /// at most 30 s.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(16);
        Duration::from_millis(self.backoff_ms.saturating_mul(factor).min(30_000))
    }
}
