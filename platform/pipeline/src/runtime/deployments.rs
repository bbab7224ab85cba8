//! Where deployed pipelines live: internal compacted topics of the broker
//! they run on, keyed by pipeline name — the manifests and whether each is
//! paused, the status every broker publishes, the pipelines' log lines and
//! the positions of source connectors.
//!
//! Keeping them in topics (as Kafka Connect keeps its configs, status and
//! offsets) means they survive restarts, are replicated with the rest of
//! the log in a cluster, and any Kafka client can read them (`fjord
//! pipeline status` is a consume). Only the broker writes them: `fjord
//! pipeline deploy` calls the admin API, which calls [`super::deploy_local`].
//! In a cluster each broker runs the partitions it leads and publishes its
//! own status (key `name@node`); [`merge_statuses`] makes one of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::PipelineError;

/// Manifests by pipeline name; a tombstone deletes the pipeline.
pub const DEPLOYMENTS_TOPIC: &str = "__fjord_pipelines";
/// The latest [`PipelineStatus`] of each pipeline.
pub const STATUS_TOPIC: &str = "__fjord_pipeline_status";
/// Log lines ([`LogLine`]) of every pipeline, keyed by pipeline name.
pub const LOGS_TOPIC: &str = "__fjord_pipeline_logs";
/// The last position each source connector returned, by pipeline name.
pub const POSITIONS_TOPIC: &str = "__fjord_connector_positions";

/// One deployed pipeline, the value of its record in [`DEPLOYMENTS_TOPIC`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The manifest's YAML text, as deployed.
    pub manifest: String,
    /// The file it was deployed from (for error messages).
    pub file: String,
    /// Paused pipelines keep their manifest and progress but run no task.
    #[serde(default)]
    pub paused: bool,
    /// Who deployed it, in Kafka's form (`User:alice`, `User:ANONYMOUS`):
    /// the principal it runs as unless the manifest names one
    /// (`metadata.principal`). `None` is the operator — a `--pipelines`
    /// file, the platform's own deploys, and every record from before
    /// pipelines had principals — whose pipelines run as the platform
    /// (see [`super::access`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_by: Option<String>,
}

impl Deployment {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a deployment serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Deployment, PipelineError> {
        serde_json::from_slice(bytes).map_err(PipelineError::NotADeployment)
    }
}

/// What a pipeline is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Paused,
    /// A task stopped on an error it cannot get past (a record failed with
    /// no dead-letter topic, an unreadable batch); `resume` restarts it.
    Failed,
    /// The manifest does not validate on this broker.
    Invalid,
}

/// One step's counters since the pipeline (re)started on this broker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStatus {
    pub name: String,
    pub records_in: u64,
    pub records_out: u64,
    /// Records a step consumed without an output record of their own: a
    /// filter's drops, but also the records an `aggregate` folded into a
    /// window (its windows come out when they close). Why is in `counters`
    /// (`late_records`, `future_records` …).
    pub dropped: u64,
    /// Records that failed this step after their retries (dead-lettered).
    pub failed: u64,
    /// Input records per second over the last status interval.
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The counters the step's plugin recorded (`ctx.counter`), by name:
    /// an `aggregate`'s `late_records`, a `validate`'s `rejected` …
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
}

/// One source partition's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The next offset the pipeline reads.
    pub position: i64,
    /// The partition's high watermark.
    pub end: i64,
    pub lag: i64,
}

/// A pipeline's status as one broker sees it, published to
/// [`STATUS_TOPIC`] every second while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    pub name: String,
    /// The offset of the deployment record being run.
    pub revision: i64,
    pub state: RunState,
    pub node_id: i32,
    /// When this status was taken, ms since the epoch.
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What runs, but not as the manifest asks: `parallelism` above the
    /// source topic's partition count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub source: String,
    pub steps: Vec<StepStatus>,
    pub sinks: Vec<StepStatus>,
    pub partitions: Vec<PartitionStatus>,
    pub lag: i64,
    pub dead_lettered: u64,
    /// The counters the source connector's plugin recorded
    /// (`ctx.counter`), by name: a `syslog` source's `udp_dropped`, say.
    /// Empty for a topic source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_counters: BTreeMap<String, u64>,
}

/// One line of a pipeline's log ([`LOGS_TOPIC`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub time_ms: i64,
    pub level: String,
    pub pipeline: String,
    pub message: String,
}

/// The key of a broker's status record of pipeline `name`: the name on a
/// single node, `name@node` in a cluster (`@` is not allowed in pipeline
/// names).
pub fn status_key(name: &str, node: Option<i32>) -> String {
    match node {
        Some(node) => format!("{name}@{node}"),
        None => name.to_owned(),
    }
}

/// How far behind a pipeline's freshest status another broker's status may
/// be and still count: a broker publishes every second, so an older one is
/// from a broker that stopped or no longer runs the pipeline.
pub(crate) const STALE_STATUS_MS: i64 = 10_000;

/// One status per pipeline from the status records' values (the latest of
/// each key of [`STATUS_TOPIC`]; values that do not parse are left out).
///
/// In a cluster the brokers' statuses of a pipeline merge: partitions and
/// counters add up, errors join, a failed or invalid state shows, and
/// `node_id` names a broker that runs partitions.
///
/// ```
/// use fjord_pipeline::runtime::{merge_statuses, PipelineStatus, RunState};
/// let status = |node, partition| PipelineStatus {
///     name: "p".into(), revision: 3, state: RunState::Running, node_id: node,
///     updated_ms: 1_000, errors: vec![], warnings: vec![], source: "topic in".into(),
///     steps: vec![], sinks: vec![], dead_lettered: 0, lag: 5,
///     source_counters: Default::default(),
///     partitions: vec![fjord_pipeline::runtime::PartitionStatus {
///         partition, position: 10, end: 15, lag: 5 }],
/// };
/// let values = [status(1, 0), status(2, 1)].map(|s| serde_json::to_vec(&s).unwrap());
/// let merged = merge_statuses(values.iter().map(Vec::as_slice));
/// assert_eq!(merged["p"].partitions.len(), 2);
/// assert_eq!(merged["p"].lag, 10);
/// ```
pub fn merge_statuses<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> BTreeMap<String, PipelineStatus> {
    let mut by_name: BTreeMap<String, Vec<PipelineStatus>> = BTreeMap::new();
    for value in values {
        if let Ok(s) = serde_json::from_slice::<PipelineStatus>(value) {
            by_name.entry(s.name.clone()).or_default().push(s);
        }
    }
    by_name
        .into_iter()
        .filter_map(|(name, mut all)| {
            // Freshest first: it wins where brokers disagree.
            all.sort_by_key(|s| std::cmp::Reverse(s.updated_ms));
            let mut all = all.into_iter();
            let mut merged = all.next()?;
            let since = merged.updated_ms - STALE_STATUS_MS;
            for s in all.filter(|s| s.updated_ms >= since) {
                // The broker named is one that runs partitions.
                if merged.partitions.is_empty() && !s.partitions.is_empty() {
                    merged.node_id = s.node_id;
                }
                merged.revision = merged.revision.max(s.revision);
                merged.state = match (merged.state, s.state) {
                    (RunState::Failed, _) | (_, RunState::Failed) => RunState::Failed,
                    (RunState::Invalid, _) | (_, RunState::Invalid) => RunState::Invalid,
                    (state, _) => state,
                };
                for e in s.errors {
                    if !merged.errors.contains(&e) {
                        merged.errors.push(e);
                    }
                }
                for w in s.warnings {
                    if !merged.warnings.contains(&w) {
                        merged.warnings.push(w);
                    }
                }
                for p in s.partitions {
                    if !merged.partitions.iter().any(|m| m.partition == p.partition) {
                        merged.partitions.push(p);
                    }
                }
                add_counters(&mut merged.steps, &s.steps);
                add_counters(&mut merged.sinks, &s.sinks);
                merged.dead_lettered += s.dead_lettered;
                for (name, value) in s.source_counters {
                    *merged.source_counters.entry(name).or_default() += value;
                }
            }
            merged.partitions.sort_by_key(|p| p.partition);
            merged.lag = merged.partitions.iter().map(|p| p.lag).sum();
            Some((name, merged))
        })
        .collect()
}

fn add_counters(into: &mut [StepStatus], from: &[StepStatus]) {
    for (a, b) in into.iter_mut().zip(from) {
        if a.name != b.name {
            continue;
        }
        a.records_in += b.records_in;
        a.records_out += b.records_out;
        a.dropped += b.dropped;
        a.failed += b.failed;
        a.rate += b.rate;
        for (name, value) in &b.counters {
            *a.counters.entry(name.clone()).or_default() += value;
        }
        if a.last_error.is_none() {
            a.last_error.clone_from(&b.last_error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_statuses_add_up_the_plugin_counters() {
        let status = |node: i32, late: u64, future: Option<u64>| {
            let mut counters = BTreeMap::from([("late_records".to_owned(), late)]);
            if let Some(future) = future {
                counters.insert("future_records".to_owned(), future);
            }
            PipelineStatus {
                name: "p".into(),
                revision: 1,
                state: RunState::Running,
                node_id: node,
                updated_ms: 1_000,
                errors: vec![],
                warnings: vec![],
                source: "topic in".into(),
                steps: vec![StepStatus {
                    name: "per-minute".into(),
                    counters,
                    ..StepStatus::default()
                }],
                sinks: vec![],
                partitions: vec![],
                lag: 0,
                dead_lettered: 0,
                source_counters: BTreeMap::from([("udp_dropped".to_owned(), late)]),
            }
        };
        let values =
            [status(1, 2, None), status(2, 3, Some(4))].map(|s| serde_json::to_vec(&s).unwrap());
        let merged = merge_statuses(values.iter().map(Vec::as_slice));
        let counters = &merged["p"].steps[0].counters;
        assert_eq!(counters["late_records"], 5);
        assert_eq!(counters["future_records"], 4);
        assert_eq!(merged["p"].source_counters["udp_dropped"], 5);
    }
}
