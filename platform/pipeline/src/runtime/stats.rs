//! Live counters of a running pipeline, shared by its tasks and read by the
//! status publisher.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use fjord_plugin_host::PluginMetrics;
use parking_lot::Mutex;

use super::deployments::{PartitionStatus, StepStatus};
use super::plan::SOURCE_PLUGIN;

/// Counters of one step or sink.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub name: String,
    /// The pipeline, for the `pipeline` label; `None` for sinks, which the
    /// step metrics leave out.
    pipeline: Option<String>,
    records_in: AtomicU64,
    records_out: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// `records_in` at the previous status, for the rate.
    previous_in: AtomicU64,
}

impl Counters {
    pub fn new(name: &str) -> Self {
        Counters {
            name: name.to_owned(),
            ..Counters::default()
        }
    }

    /// The counters of step `name` of `pipeline`, also recorded as the
    /// `fjord_pipeline_step_*` metrics.
    pub fn step(pipeline: &str, name: &str) -> Self {
        Counters {
            pipeline: Some(pipeline.to_owned()),
            ..Counters::new(name)
        }
    }

    /// Called once per batch, never per record: the metric updates look
    /// their series up by label.
    pub fn add(&self, records_in: usize, records_out: usize) {
        self.records_in
            .fetch_add(records_in as u64, Ordering::Relaxed);
        self.records_out
            .fetch_add(records_out as u64, Ordering::Relaxed);
        if let Some(pipeline) = &self.pipeline {
            let labels = [("pipeline", pipeline.clone()), ("step", self.name.clone())];
            metrics::counter!("fjord_pipeline_step_records_in_total", &labels)
                .increment(records_in as u64);
            metrics::counter!("fjord_pipeline_step_records_out_total", &labels)
                .increment(records_out as u64);
        }
    }

    /// `count` records failed; `error` is the last one's error.
    pub fn fail(&self, count: usize, error: &str) {
        self.failed.fetch_add(count as u64, Ordering::Relaxed);
        self.error(error);
        if let Some(pipeline) = &self.pipeline {
            metrics::counter!(
                "fjord_pipeline_step_records_failed_total",
                "pipeline" => pipeline.clone(),
                "step" => self.name.clone()
            )
            .increment(count as u64);
        }
    }

    pub fn error(&self, error: &str) {
        *self.last_error.lock() = Some(error.to_owned());
    }

    /// A snapshot; `seconds` since the last one gives the rate.
    pub fn status(&self, seconds: f64) -> StepStatus {
        let records_in = self.records_in.load(Ordering::Relaxed);
        let records_out = self.records_out.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let previous = self.previous_in.swap(records_in, Ordering::Relaxed);
        StepStatus {
            name: self.name.clone(),
            records_in,
            records_out,
            dropped: records_in.saturating_sub(records_out + failed),
            failed,
            rate: if seconds > 0.0 {
                (records_in - previous) as f64 / seconds
            } else {
                0.0
            },
            last_error: self.last_error.lock().clone(),
            counters: BTreeMap::new(),
        }
    }
}

/// Everything a pipeline's tasks report.
#[derive(Debug, Default)]
pub(crate) struct PipelineStats {
    pub steps: Vec<Counters>,
    pub sinks: Vec<Counters>,
    pub dead_lettered: AtomicU64,
    /// Source partition -> (position, end).
    positions: Mutex<BTreeMap<i32, (i64, i64)>>,
    /// Errors that stopped a task.
    fatal: Mutex<Vec<String>>,
    /// A task stopped because an ACL refused the pipeline (its error is
    /// among `fatal`).
    refused: AtomicBool,
    /// An exactly-once task ended because its transaction was aborted:
    /// the pipeline's tasks start again rather than fail.
    lost_transaction: AtomicBool,
    /// Record retries and dead letters since the last status, which the
    /// log reports as one line per kind and step a second (a flood of bad
    /// records must not flood the log).
    events: Mutex<BTreeMap<(Event, String), Tally>>,
    /// The pipeline's name, for the labels of the plugin metrics.
    pipeline: String,
    /// What the pipeline's plugins record (`ctx.counter`, `ctx.gauge`), by
    /// step or sink name; empty for a pipeline whose tasks do not run.
    plugin_metrics: Arc<PluginMetrics>,
    /// The value of each plugin counter already added to
    /// `fjord_pipeline_plugin_counter_total`: the exposition gets the
    /// difference at each status, so a plugin's hot path never touches the
    /// metrics registry. (Both start at zero with the tasks.)
    exported: Mutex<HashMap<(String, String), u64>>,
}

/// What happened to records that the log reports in aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Event {
    /// A record a step failed was tried again.
    Retried,
    /// A record that failed (after its retries) went to the dead-letter
    /// topic.
    DeadLettered,
}

/// How often an [`Event`] happened at one step, and its last error.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    count: u64,
    last_error: String,
}

impl PipelineStats {
    pub fn new(pipeline: &str, steps: &[String], sinks: &[String]) -> Self {
        PipelineStats {
            steps: steps.iter().map(|s| Counters::step(pipeline, s)).collect(),
            sinks: sinks.iter().map(|s| Counters::new(s)).collect(),
            pipeline: pipeline.to_owned(),
            ..PipelineStats::default()
        }
    }

    /// Stats whose steps and sinks also show what their plugins record in
    /// `metrics` (which the tasks' plugin instances share).
    pub fn with_plugin_metrics(mut self, metrics: Arc<PluginMetrics>) -> Self {
        self.plugin_metrics = metrics;
        self
    }

    /// The steps' and the sinks' statuses, `seconds` after the previous
    /// ones, each with its plugin's counters; also brings the plugin
    /// metrics of `/metrics` up to date (`fjord_pipeline_plugin_*`).
    pub fn statuses(&self, seconds: f64) -> (Vec<StepStatus>, Vec<StepStatus>) {
        let counters = self.plugin_metrics.counters();
        self.export_plugin_metrics(&counters);
        let with_counters = |c: &Counters| {
            let mut status = c.status(seconds);
            status.counters = counters
                .iter()
                .filter(|(plugin, _, _)| *plugin == c.name)
                .map(|(_, name, value)| (name.clone(), *value))
                .collect();
            status
        };
        (
            self.steps.iter().map(with_counters).collect(),
            self.sinks.iter().map(with_counters).collect(),
        )
    }

    /// What the source connector's plugin counted (it records under the
    /// name `source`, which is also its `step` label on `/metrics`).
    pub fn source_counters(&self) -> BTreeMap<String, u64> {
        self.plugin_metrics
            .counters()
            .into_iter()
            .filter(|(plugin, _, _)| plugin == SOURCE_PLUGIN)
            .map(|(_, name, value)| (name, value))
            .collect()
    }

    fn export_plugin_metrics(&self, counters: &[(String, String, u64)]) {
        let mut exported = self.exported.lock();
        for (step, name, value) in counters {
            let seen = exported.entry((step.clone(), name.clone())).or_default();
            if *value > *seen {
                metrics::counter!(
                    "fjord_pipeline_plugin_counter_total",
                    "pipeline" => self.pipeline.clone(),
                    "step" => step.clone(),
                    "name" => name.clone()
                )
                .increment(*value - *seen);
                *seen = *value;
            }
        }
        for (step, name, value) in self.plugin_metrics.gauges() {
            metrics::gauge!(
                "fjord_pipeline_plugin_gauge",
                "pipeline" => self.pipeline.clone(),
                "step" => step,
                "name" => name
            )
            .set(value);
        }
    }

    pub fn position(&self, partition: i32, position: i64, end: i64) {
        self.positions.lock().insert(partition, (position, end));
    }

    pub fn partitions(&self) -> Vec<PartitionStatus> {
        self.positions
            .lock()
            .iter()
            .map(|(&partition, &(position, end))| PartitionStatus {
                partition,
                position,
                end,
                lag: (end - position).max(0),
            })
            .collect()
    }

    pub fn fatal(&self, error: String) {
        self.fatal.lock().push(error);
    }

    /// A task stopped because an ACL refused what it does (`error` says
    /// who, what and on which resource).
    pub fn refused(&self, error: String) {
        self.refused.store(true, Ordering::Release);
        self.fatal(error);
    }

    /// An exactly-once task ended because its transaction was aborted.
    pub fn transaction_lost(&self) {
        self.lost_transaction.store(true, Ordering::Release);
    }

    /// Whether an exactly-once task ended on an aborted transaction.
    pub fn lost_a_transaction(&self) -> bool {
        self.lost_transaction.load(Ordering::Acquire)
    }

    /// Whether a task stopped on an ACL's refusal.
    pub fn was_refused(&self) -> bool {
        self.refused.load(Ordering::Acquire)
    }

    /// `count` records met `event` at `step` (a step, or a sink's label).
    pub fn note(&self, event: Event, step: &str, count: usize, error: &str) {
        let mut events = self.events.lock();
        let tally = events.entry((event, step.to_owned())).or_default();
        tally.count += count as u64;
        error.clone_into(&mut tally.last_error);
    }

    /// The log lines (level, message) of the events since the last call.
    pub fn take_events(&self) -> Vec<(&'static str, String)> {
        let events = std::mem::take(&mut *self.events.lock());
        events
            .into_iter()
            .map(|((event, step), t)| match event {
                Event::Retried => (
                    "warn",
                    format!(
                        "step {step}: {} retries of failed records (last error: {})",
                        t.count, t.last_error
                    ),
                ),
                Event::DeadLettered => (
                    "warn",
                    format!(
                        "{} records failed at {step} and were dead-lettered (last error: {})",
                        t.count, t.last_error
                    ),
                ),
            })
            .collect()
    }

    pub fn fatal_errors(&self) -> Vec<String> {
        self.fatal.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_once_per_kind_and_step() {
        let stats = PipelineStats::new("p", &["check".to_owned()], &[]);
        for i in 0..500 {
            stats.note(Event::Retried, "check", 1, &format!("bad {i}"));
            stats.note(Event::DeadLettered, "check", 1, &format!("bad {i}"));
        }
        stats.note(Event::DeadLettered, "topic out", 2, "too large");
        let lines = stats.take_events();
        assert_eq!(
            lines,
            [
                (
                    "warn",
                    "step check: 500 retries of failed records (last error: bad 499)".to_owned()
                ),
                (
                    "warn",
                    "500 records failed at check and were dead-lettered (last error: bad 499)"
                        .to_owned()
                ),
                (
                    "warn",
                    "2 records failed at topic out and were dead-lettered (last error: too large)"
                        .to_owned()
                ),
            ]
        );
        assert!(stats.take_events().is_empty());
    }
}
