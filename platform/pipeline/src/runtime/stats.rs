//! Live counters of a running pipeline, shared by its tasks and read by the
//! status publisher.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::deployments::{PartitionStatus, StepStatus};

/// Counters of one step or sink.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub name: String,
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

    pub fn add(&self, records_in: usize, records_out: usize) {
        self.records_in
            .fetch_add(records_in as u64, Ordering::Relaxed);
        self.records_out
            .fetch_add(records_out as u64, Ordering::Relaxed);
    }

    pub fn fail(&self, error: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.error(error);
    }

    pub fn error(&self, error: &str) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.to_owned());
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
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
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
}

impl PipelineStats {
    pub fn new(steps: &[String], sinks: &[String]) -> Self {
        PipelineStats {
            steps: steps.iter().map(|s| Counters::new(s)).collect(),
            sinks: sinks.iter().map(|s| Counters::new(s)).collect(),
            ..PipelineStats::default()
        }
    }

    pub fn position(&self, partition: i32, position: i64, end: i64) {
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, (position, end));
    }

    pub fn partitions(&self) -> Vec<PartitionStatus> {
        self.positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(error);
    }

    pub fn fatal_errors(&self) -> Vec<String> {
        self.fatal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
