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
use super::error::PipelineError;
use super::stats::{Event, PipelineStats};
use super::stop::Stopped;
use super::task::Io;

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
            if let Some(serializer) = &mut self.serializer
                && let Some(value) = &record.value
            {
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

    /// Appends `records`, retrying until the log takes them, in batches of
    /// at most [`APPEND_BYTES`]. A record too large for the topic on its
    /// own is a failure (retrying cannot help); it comes back in `failures`.
    fn deliver(
        &mut self,
        io: &Io,
        label: &str,
        by_partition: BTreeMap<i32, Vec<Record>>,
        failures: &mut Vec<Failure>,
    ) -> Result<(), Stopped> {
        let name = self.topic.name();
        for (index, mut records) in by_partition {
            let now = super::now_ms();
            for r in &mut records {
                r.topic = None;
                // Sources may leave the time to the host.
                if r.timestamp <= 0 {
                    r.timestamp = now;
                }
            }
            // Through a cluster, librdkafka makes its own batches: one call
            // keeps every record of the delivery in flight at once instead
            // of one round trip to the in-sync replicas per chunk. Only a
            // record too large for the topic sends the delivery the chunked
            // way, which finds it (what went before may be written twice:
            // delivery is at least once).
            if io.topics.batches_appends() {
                let mut too_large = false;
                io.retry(&format!("append to {name}"), || {
                    match io.handle.block_on(io.topics.append(name, index, &records)) {
                        Ok(_) => Ok(()),
                        Err(e) if e.too_large() => {
                            too_large = true;
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                })?;
                if !too_large {
                    continue;
                }
            }
            for mut batch in chunks(records) {
                let mut too_large = None;
                io.retry(&format!("append to {name}"), || {
                    match io.handle.block_on(io.topics.append(name, index, &batch)) {
                        Ok(_) => Ok(()),
                        Err(e) if e.too_large() && batch.len() == 1 => {
                            too_large = Some(e.to_string());
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                })?;
                if let Some(error) = too_large {
                    failures.push(Failure {
                        record: batch.remove(0),
                        step: label.to_owned(),
                        error,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The most record bytes one append carries: well below the default
/// `max.message.bytes` (1 MiB), as a producer's `batch.size` keeps its
/// batches below it.
const APPEND_BYTES: usize = 256 * 1024;

/// `records` in runs of at most [`APPEND_BYTES`] (a larger record alone).
fn chunks(records: Vec<Record>) -> Vec<Vec<Record>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for r in records {
        let size = 32
            + r.key.as_ref().map_or(0, Vec::len)
            + r.value.as_ref().map_or(0, Vec::len)
            + r.headers
                .iter()
                .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len) + 8)
                .sum::<usize>();
        if bytes + size > APPEND_BYTES && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("never empty").push(r);
    }
    out.retain(|c| !c.is_empty());
    out
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
    /// The `when` condition, evaluated here directly rather than through a
    /// plugin call per sink.
    pub when: Option<fjord_expr::Condition>,
    pub target: Target,
}

/// All sinks of one task, and the dead-letter topic.
pub(crate) struct Router {
    pub outputs: Vec<Output>,
    /// The outputs' `when` conditions, in output order, evaluated in one
    /// pass per record.
    pub conditions: fjord_expr::ConditionSet,
    pub dead_letter: Option<TopicOutput>,
    pub pipeline: String,
    pub source: String,
    pub stats: Arc<PipelineStats>,
}

impl Router {
    /// Delivers `records` to their sinks and `failures` (plus the records
    /// no sink could take) to the dead-letter topic. Without a dead-letter
    /// topic a failure is an error that stops the task before any record
    /// of the delivery is written: nothing is dropped silently, and the
    /// records after the failed one are not delivered ahead of it.
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
        // Each record goes to every sink whose condition holds: copies for
        // all but the last of them, which takes the record itself.
        let mut targets: Vec<usize> = Vec::with_capacity(self.outputs.len());
        let mut verdicts = Vec::with_capacity(self.conditions.len());
        for record in unnamed {
            targets.clear();
            if !self.conditions.is_empty() {
                // A value that is not a JSON object matches no condition.
                let value = record.value.as_deref().unwrap_or_default();
                self.conditions.matches(value, &mut verdicts);
            }
            let mut verdict = verdicts.iter();
            for (i, output) in self.outputs.iter().enumerate() {
                let wanted = match &output.when {
                    None => true,
                    Some(_) => verdict.next().copied().unwrap_or(false),
                };
                if wanted {
                    targets.push(i);
                }
            }
            if let Some((&last, rest)) = targets.split_last() {
                for &i in rest {
                    per_output[i].push(record.clone());
                }
                per_output[last].push(record);
            }
        }
        // Serializers and partitioners run before anything is written, so
        // that a record they fail stops a pipeline without a dead-letter
        // topic before any record is delivered.
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(per_output.len());
        let mut counts: Vec<(usize, usize)> = vec![(0, 0); per_output.len()];
        for (i, batch) in per_output.into_iter().enumerate() {
            if batch.is_empty() {
                prepared.push(None);
                continue;
            }
            let output = &mut self.outputs[i];
            let before = failures.len();
            let count = batch.len();
            prepared.push(Some(match &mut output.target {
                Target::Topic(t) => Prepared::Topic(t.prepare(&output.label, batch, &mut failures)),
                Target::Connector(_) => Prepared::Connector(fjord_sdk::encode(&batch)),
            }));
            counts[i] = (count, failures.len() - before);
        }
        // Without a dead-letter topic a failed record stops the task here,
        // before any of the batch is delivered: the position stays before
        // the failed record, so neither it nor what follows it is written,
        // now or on a `resume` that meets it again.
        if !failures.is_empty() && self.dead_letter.is_none() {
            return Err(no_dead_letter(&failures[0]));
        }
        for (i, prepared) in prepared.into_iter().enumerate() {
            let Some(prepared) = prepared else {
                continue;
            };
            let output = &mut self.outputs[i];
            let counters = &self.stats.sinks[i];
            let (count, prepare_failed) = counts[i];
            let before = failures.len();
            match (&mut output.target, prepared) {
                (Target::Topic(t), Prepared::Topic(by_partition)) => {
                    t.deliver(io, &output.label, by_partition, &mut failures)
                        .map_err(|_| RouteError::Stopped)?;
                }
                (Target::Connector(sink), Prepared::Connector(encoded)) => {
                    // Once the sink took the batch, only its flush is
                    // retried: writing again would buffer it twice.
                    let mut written = false;
                    io.retry(&format!("sink {}", output.label), || {
                        if !written {
                            sink.write(&encoded).map_err(|e| {
                                counters.error(&e.to_string());
                                e.to_string()
                            })?;
                            written = true;
                        }
                        sink.flush().map_err(|e| {
                            counters.error(&e.to_string());
                            e.to_string()
                        })
                    })
                    .map_err(|_| RouteError::Stopped)?;
                }
                _ => unreachable!("prepared for its own target"),
            }
            let failed = prepare_failed + failures.len() - before;
            counters.add(count, count - failed);
        }
        if failures.is_empty() {
            return Ok(());
        }
        let Some(dead_letter) = &mut self.dead_letter else {
            // Only a record too large for its sink topic gets here: found
            // while appending, after what went before it was written.
            return Err(no_dead_letter(&failures[0]));
        };
        let count = failures.len();
        for f in &failures {
            self.stats.note(Event::DeadLettered, &f.step, 1, &f.error);
        }
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
        // What the dead-letter topic itself cannot take (a record too
        // large for it) is logged: there is nowhere further to send it.
        let mut lost = Vec::new();
        let prepared = dead_letter.prepare("deadLetter", letters, &mut lost);
        dead_letter
            .deliver(io, "deadLetter", prepared, &mut lost)
            .map_err(|_| RouteError::Stopped)?;
        for f in lost {
            io.logs.push(
                &self.pipeline,
                "error",
                format!("a record could not be dead-lettered either: {}", f.error),
            );
        }
        self.stats
            .dead_lettered
            .fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!("fjord_pipeline_dead_lettered_total", "pipeline" => self.pipeline.clone())
            .increment(count as u64);
        Ok(())
    }
}

/// A sink's share of a delivery, ready to write.
enum Prepared {
    Topic(BTreeMap<i32, Vec<Record>>),
    Connector(Vec<u8>),
}

/// The error that stops a task without a dead-letter topic.
fn no_dead_letter(f: &Failure) -> RouteError {
    RouteError::Failed(Box::new(PipelineError::NoDeadLetter {
        step: f.step.clone(),
        error: f.error.clone(),
    }))
}

/// Why a delivery did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RouteError {
    /// The task was asked to stop while a sink was retrying.
    #[error("stopped while a sink was retrying")]
    Stopped,
    /// A record failed and there is nowhere to put it. (Boxed: an error
    /// of every delivery's `Result`, it is rare and large.)
    #[error(transparent)]
    Failed(Box<PipelineError>),
}

/// How long back-pressure waits between delivery attempts, at most.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);
