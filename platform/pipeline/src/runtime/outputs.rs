//! Where a pipeline's records go: its sinks (topics, with their
//! partitioner and serializer plugins, or sink connectors), chosen per
//! record by the sink's `when` condition or by the topic a processor named,
//! and the dead-letter topic for the records that failed.
//!
//! Delivery is retried until it succeeds or the task is stopped: a sink
//! that is down holds the task on its batch, so reading pauses and nothing
//! is dropped (back-pressure). Offsets are committed only after delivery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fjord_broker::Topic;
use fjord_plugin_host::PluginInstance;
use fjord_sdk::{Header, Record};

use super::chain::Failure;
use super::records;
use super::stats::PipelineStats;
use super::task::{Io, Stopped};

/// A topic a pipeline writes to, with its plugins.
pub(crate) struct TopicOutput {
    pub topic: Arc<Topic>,
    pub partitioner: Option<PluginInstance>,
    /// The default partitioner for keyed records: Kafka's murmur2.
    pub keyed: PluginInstance,
    pub serializer: Option<PluginInstance>,
    /// Keyless records without a partitioner go to one partition per
    /// delivery, in turn (as Kafka's sticky partitioner does per batch).
    pub next: u32,
}

impl TopicOutput {
    /// Serializes and partitions `records`; the ones a plugin failed on
    /// come back as failures.
    fn prepare(
        &mut self,
        label: &str,
        records: Vec<Record>,
        failures: &mut Vec<Failure>,
    ) -> BTreeMap<i32, Vec<Record>> {
        let count = self.topic.partition_count().max(1) as u32;
        let sticky = self.next % count;
        self.next = self.next.wrapping_add(1);
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for mut record in records {
            if let Some(serializer) = &mut self.serializer {
                if let Some(value) = &record.value {
                    match serializer.serialize(value) {
                        Ok(v) => record.value = Some(v),
                        Err(e) => {
                            failures.push(Failure {
                                record,
                                step: label.to_owned(),
                                error: e.to_string(),
                            });
                            continue;
                        }
                    }
                }
            }
            let chosen = match (&mut self.partitioner, &record.key) {
                (Some(p), _) => p.partition(record.key.as_deref(), record.value.as_deref(), count),
                (None, Some(key)) => self.keyed.partition(Some(key), None, count),
                (None, None) => Ok(sticky),
            };
            match chosen {
                Ok(p) => by_partition.entry(p as i32).or_default().push(record),
                Err(e) => failures.push(Failure {
                    record,
                    step: label.to_owned(),
                    error: e.to_string(),
                }),
            }
        }
        by_partition
    }

    /// Appends `records`, retrying until the log takes them.
    fn deliver(
        &mut self,
        io: &Io,
        by_partition: BTreeMap<i32, Vec<Record>>,
    ) -> Result<(), Stopped> {
        for (index, mut batch) in by_partition {
            let Some(partition) = self.topic.partition(index) else {
                continue;
            };
            for r in &mut batch {
                r.topic = None;
            }
            let encoded = match records::encode(&batch) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(topic = self.topic.name(), error = %e, "cannot encode a batch");
                    continue;
                }
            };
            io.retry(&format!("append to {}", self.topic.name()), || {
                io.handle
                    .block_on(partition.append(encoded.clone()))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })?;
        }
        Ok(())
    }
}

/// What a sink writes to.
pub(crate) enum Target {
    Topic(Box<TopicOutput>),
    Connector(Box<PluginInstance>),
}

/// One of the manifest's sinks.
pub(crate) struct Output {
    /// `topic name` or `connector plugin`, for status and dead letters.
    pub label: String,
    /// The topic, for records a processor sent to it by name.
    pub topic_name: Option<String>,
    /// The `when` condition, run by the `filter` plugin.
    pub when: Option<PluginInstance>,
    pub target: Target,
}

/// All sinks of one task, and the dead-letter topic.
pub(crate) struct Router {
    pub outputs: Vec<Output>,
    pub dead_letter: Option<TopicOutput>,
    pub pipeline: String,
    pub source: String,
    pub stats: Arc<PipelineStats>,
}

impl Router {
    /// Delivers `records` to their sinks and `failures` (plus the records
    /// no sink could take) to the dead-letter topic. Without a dead-letter
    /// topic a failure is an error that stops the task: nothing is dropped
    /// silently.
    pub fn deliver(
        &mut self,
        io: &Io,
        records: Vec<Record>,
        mut failures: Vec<Failure>,
    ) -> Result<(), RouteError> {
        let (named, unnamed): (Vec<Record>, Vec<Record>) =
            records.into_iter().partition(|r| r.topic.is_some());
        let mut per_output: Vec<Vec<Record>> = vec![Vec::new(); self.outputs.len()];
        for record in named {
            let wanted = record.topic.as_deref().unwrap_or_default();
            match self
                .outputs
                .iter()
                .position(|o| o.topic_name.as_deref() == Some(wanted))
            {
                Some(i) => per_output[i].push(record),
                None => failures.push(Failure {
                    error: format!("no sink writes to topic {wanted:?}, which a step named"),
                    step: "route".to_owned(),
                    record,
                }),
            }
        }
        let last = self.outputs.len().saturating_sub(1);
        let mut unnamed = Some(unnamed);
        for (i, output) in self.outputs.iter_mut().enumerate() {
            // Only the last sink may take the records without a copy.
            let mine = if i == last {
                unnamed.take().unwrap_or_default()
            } else {
                unnamed.clone().unwrap_or_default()
            };
            let selected = match &mut output.when {
                None => mine,
                Some(_) if mine.is_empty() => mine,
                Some(filter) => match filter.process(0, &fjord_sdk::encode(&mine)) {
                    Ok(out) => fjord_sdk::decode(&out).unwrap_or_default(),
                    Err(e) => {
                        let error = format!("`when` condition failed: {e}");
                        failures.extend(mine.into_iter().map(|record| Failure {
                            record,
                            step: output.label.clone(),
                            error: error.clone(),
                        }));
                        Vec::new()
                    }
                },
            };
            per_output[i].extend(selected);
        }
        for (i, batch) in per_output.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let output = &mut self.outputs[i];
            let counters = &self.stats.sinks[i];
            let count = batch.len();
            let before = failures.len();
            match &mut output.target {
                Target::Topic(t) => {
                    let prepared = t.prepare(&output.label, batch, &mut failures);
                    t.deliver(io, prepared).map_err(|_| RouteError::Stopped)?;
                }
                Target::Connector(sink) => {
                    let encoded = fjord_sdk::encode(&batch);
                    io.retry(&format!("sink {}", output.label), || {
                        sink.write(&encoded)
                            .and_then(|()| sink.flush())
                            .map_err(|e| {
                                counters.error(&e.to_string());
                                e.to_string()
                            })
                    })
                    .map_err(|_| RouteError::Stopped)?;
                }
            }
            let failed = failures.len() - before;
            counters.add(count, count - failed);
        }
        if failures.is_empty() {
            return Ok(());
        }
        let Some(dead_letter) = &mut self.dead_letter else {
            let f = &failures[0];
            return Err(RouteError::Failed(format!(
                "step {} failed on a record and the pipeline has no deadLetter topic: {}",
                f.step, f.error
            )));
        };
        let count = failures.len();
        let letters: Vec<Record> = failures
            .into_iter()
            .map(|f| {
                let mut record = f.record;
                record.topic = None;
                for (name, value) in [
                    ("fjord.pipeline", self.pipeline.clone()),
                    ("fjord.step", f.step),
                    ("fjord.error", f.error),
                    ("fjord.source", self.source.clone()),
                ] {
                    record.headers.push(Header {
                        name: name.to_owned(),
                        value: Some(value.into_bytes()),
                    });
                }
                record
            })
            .collect();
        let mut ignored = Vec::new();
        let prepared = dead_letter.prepare("deadLetter", letters, &mut ignored);
        dead_letter
            .deliver(io, prepared)
            .map_err(|_| RouteError::Stopped)?;
        self.stats
            .dead_lettered
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Why a delivery did not complete.
#[derive(Debug)]
pub(crate) enum RouteError {
    /// The task was asked to stop while a sink was retrying.
    Stopped,
    /// A record failed and there is nowhere to put it.
    Failed(String),
}

/// How long back-pressure waits between delivery attempts, at most.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
