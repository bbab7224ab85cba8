//! Where deployed pipelines live: internal compacted topics of the broker
//! they run on, keyed by pipeline name — the manifests and whether each is
//! paused, the status every broker publishes, the pipelines' log lines and
//! the positions of source connectors.
//!
//! Keeping them in topics (as Kafka Connect keeps its configs, status and
//! offsets) means they survive restarts, will be replicated with the rest
//! of the log in a cluster, and any Kafka client can write and read them:
//! `fjord pipeline deploy` is a produce, `fjord pipeline status` a consume.

use serde::{Deserialize, Serialize};

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
}

impl Deployment {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a deployment serializes")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Deployment, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a deployment record: {e}"))
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
    /// Records a step consumed without output (a filter's drops).
    pub dropped: u64,
    /// Records that failed this step after their retries (dead-lettered).
    pub failed: u64,
    /// Input records per second over the last status interval.
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
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
    pub source: String,
    pub steps: Vec<StepStatus>,
    pub sinks: Vec<StepStatus>,
    pub partitions: Vec<PartitionStatus>,
    pub lag: i64,
    pub dead_lettered: u64,
}

/// One line of a pipeline's log ([`LOGS_TOPIC`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub time_ms: i64,
    pub level: String,
    pub pipeline: String,
    pub message: String,
}
