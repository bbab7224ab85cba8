//! A pipeline's processors in order, run on one source partition's
//! records, with the retry and dead-letter rules: a batch a step fails is
//! run again record by record, each record is retried per the manifest's
//! `retry` policy, and the records that still fail come out as
//! [`Failure`]s for the dead-letter topic — the rest of the batch goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fjord_plugin_host::{PluginError, PluginInstance};
use fjord_sdk::Record;

use super::changelog::ChangelogStore;
use super::stats::PipelineStats;
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
    /// Runs one plugin call; its state writes count only if it succeeds.
    fn call(
        &mut self,
        partition: i32,
        f: impl FnOnce(&mut PluginInstance) -> Result<Vec<u8>, PluginError>,
    ) -> Result<Vec<u8>, PluginError> {
        let result = f(&mut self.instance);
        match &result {
            Ok(_) => self.store.apply(partition),
            Err(_) => self.store.discard(partition),
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
    stop: Arc<AtomicBool>,
}

impl Chain {
    pub fn new(
        steps: Vec<Step>,
        partition: i32,
        stats: Arc<PipelineStats>,
        retry: Retry,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Chain {
            steps,
            partition,
            stats,
            retry,
            stop,
        }
    }

    /// Runs `records` through every step.
    pub fn process(&mut self, records: Vec<Record>) -> Output {
        self.run_from(0, records)
    }

    /// Calls every step's timer; what a step emits goes through the steps
    /// after it.
    pub fn timers(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        for i in 0..self.steps.len() {
            let step = &mut self.steps[i];
            let partition = self.partition;
            match step.call(partition, |i| i.on_timer(partition, now_ms)) {
                Ok(bytes) => {
                    let records = fjord_sdk::decode(&bytes).unwrap_or_default();
                    if !records.is_empty() {
                        self.stats.steps[i].add(0, records.len());
                        let rest = self.run_from(i + 1, records);
                        out.extend(rest);
                    }
                }
                Err(e) => {
                    tracing::warn!(step = %step.name, error = %e, "timer failed");
                    self.stats.steps[i].error(&e.to_string());
                }
            }
        }
        out
    }

    fn run_from(&mut self, start: usize, mut records: Vec<Record>) -> Output {
        let mut failures = Vec::new();
        for i in start..self.steps.len() {
            if records.is_empty() {
                break;
            }
            let count = records.len();
            let (passed, failed) = self.run_step(i, records);
            self.stats.steps[i].add(count, passed.len());
            for f in &failed {
                self.stats.steps[i].fail(&f.error);
            }
            failures.extend(failed);
            records = passed;
        }
        Output { records, failures }
    }

    fn run_step(&mut self, i: usize, records: Vec<Record>) -> (Vec<Record>, Vec<Failure>) {
        let partition = self.partition;
        let step = &mut self.steps[i];
        let batch = fjord_sdk::encode(&records);
        match step.call(partition, |i| i.process(partition, &batch)) {
            Ok(out) => return (fjord_sdk::decode(&out).unwrap_or_default(), Vec::new()),
            Err(e) if records.len() > 1 => {
                tracing::debug!(step = %step.name, error = %e, "batch failed; retrying record by record");
            }
            Err(_) => {}
        }
        let mut passed = Vec::new();
        let mut failed = Vec::new();
        for record in records {
            let single = fjord_sdk::encode(std::slice::from_ref(&record));
            let mut attempt = 1;
            loop {
                match step.call(partition, |i| i.process(partition, &single)) {
                    Ok(out) => {
                        passed.extend(fjord_sdk::decode(&out).unwrap_or_default());
                        break;
                    }
                    Err(e)
                        if attempt < self.retry.attempts && !self.stop.load(Ordering::Relaxed) =>
                    {
                        tracing::debug!(step = %step.name, attempt, error = %e, "record failed; retrying");
                        std::thread::sleep(self.retry.backoff(attempt));
                        attempt += 1;
                    }
                    Err(e) => {
                        failed.push(Failure {
                            record,
                            step: step.name.clone(),
                            error: e.to_string(),
                        });
                        break;
                    }
                }
            }
        }
        (passed, failed)
    }
}

impl Retry {
    /// The wait before attempt `attempt + 1`: doubling from `backoffMs`,
    /// at most 30 s.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u64 << attempt.saturating_sub(1).min(16);
        Duration::from_millis(self.backoff_ms.saturating_mul(factor).min(30_000))
    }
}
