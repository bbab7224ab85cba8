//! The pipeline runtime's error: why a deployed pipeline did not start, or
//! why a task could not save its state or goes no further. Its text is what
//! users read in `fjord pipeline status` ("cannot start: …") and the
//! pipeline's log, so each variant displays as the message it replaces.
//! [`TopicsError`] is the error of the runtime's access to partitions
//! (`Topics`), which [`PipelineError`] carries as its source.

use std::time::Duration;

use fjord_broker::{LocalError, PartitionError};
use fjord_log::LogError;
use fjord_plugin_host::PluginError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What went wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plugin did not load or instantiate: `name` is the step, `source`,
    /// a sink's label, `partitioner`, `serializer` or a built-in.
    #[error("{name}: {source}")]
    Plugin {
        /// What the plugin is to the pipeline.
        name: String,
        /// The plugin host's error.
        source: PluginError,
    },
    /// A topic the pipeline reads or writes could not be created.
    #[error("topic {topic}: {source}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's error.
        source: LocalError,
    },
    /// A sink's `when` does not parse (validation refuses such manifests;
    /// a deployment from an older version may still hold one).
    #[error("{sink}: when: {source}")]
    Condition {
        /// The sink's label.
        sink: String,
        /// The expression's error.
        source: fjord_expr::ParseError,
    },
    /// A sink with neither topic nor connector.
    #[error("{0}: neither topic nor connector")]
    SinkWithoutTarget(String),
    /// A source with neither topic nor connector.
    #[error("the source has neither topic nor connector")]
    SourceWithoutTarget,
    /// The operating system refused a task thread.
    #[error("cannot start a task thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A state changelog topic could not be created.
    #[error("{source}")]
    ChangelogTopic {
        /// The changelog topic.
        topic: String,
        /// The broker's error.
        source: LocalError,
    },
    /// A state changelog could not be written.
    #[error("{topic}: {source}")]
    Changelog {
        /// The changelog topic.
        topic: String,
        /// Why, as the topic access reports it (boxed, as in `Topics`).
        source: Box<TopicsError>,
    },
    /// Reading or writing the pipeline's topics failed (`Topics`: the
    /// partition in-process, or its leader through the cluster's Kafka
    /// client). Boxed: the Kafka client's errors are large, and every
    /// `Result` of the runtime carries this type.
    #[error(transparent)]
    Topics(Box<TopicsError>),
    /// A record failed (a step after its retries, a serializer, a
    /// partitioner, a sink topic too small for it) and the pipeline has
    /// no dead-letter topic to put it in: the task stops on it.
    #[error("step {step} failed on a record and the pipeline has no deadLetter topic: {error}")]
    NoDeadLetter {
        /// The step or sink that failed.
        step: String,
        /// Its error, as the dead-letter header would have carried it.
        error: String,
    },
    /// A record of the deployments topic is not a deployment.
    #[error("not a deployment record: {0}")]
    NotADeployment(#[source] serde_json::Error),
    /// A partition's log could not be read.
    #[error("{topic}-{partition}: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The log's error.
        source: fjord_log::LogError,
    },
    /// The bytes of a read could not be had.
    #[error("{0}")]
    ReadBytes(#[source] std::io::Error),
    /// A task met a stored batch that does not decode: it stops rather
    /// than pass over records (docs/security.md).
    #[error(transparent)]
    Undecodable(#[from] super::records::SkippedBatch),
    /// A blocking thread the runtime waited on panicked or was cancelled.
    #[error("{0}")]
    Interrupted(String),
}

/// Why reading or writing a partition through `Topics` (runtime/topics.rs) failed, with the
/// error of the log, the broker or the Kafka client under it. Users read
/// these in a pipeline's status and log and in the admin API's answers.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// In a cluster, before the controller quorum drew the internal
    /// secret the runtime's client authenticates with.
    #[error("no client for {bootstrap} yet: the cluster's internal secret is not drawn yet")]
    NoSecretYet {
        /// This broker's address.
        bootstrap: String,
    },
    /// librdkafka refused the producer's configuration.
    #[error("cannot make a Kafka producer for {bootstrap}: {source}")]
    Producer {
        /// This broker's address.
        bootstrap: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// librdkafka refused a consumer's configuration.
    #[error("cannot make a Kafka consumer: {0}")]
    Consumer(#[source] Box<KafkaError>),
    /// This broker has no such partition (a single node).
    #[error("{topic} has no partition {partition}")]
    NoPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The records do not make a batch.
    #[error("{0}")]
    Encode(#[source] LogError),
    /// The local partition refused an append.
    #[error("{0}")]
    Append(#[source] PartitionError),
    /// The cluster refused an append, or it timed out.
    #[error("{topic}-{partition}: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// The producer was dropped before it confirmed an append.
    #[error("{topic}-{partition}: the producer went away")]
    ProducerGone {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A local partition could not be read, or holds a batch that does
    /// not decode (which a changelog or state read must not pass over).
    #[error(transparent)]
    Local(Box<PipelineError>),
    /// Reading a partition (or its bounds) through the cluster failed.
    #[error("reading {topic}-{partition} at {bootstrap}: {source}")]
    Read {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// This broker's address.
        bootstrap: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// A read through the cluster made no progress for its timeout.
    #[error(
        "reading {topic}-{partition} at {bootstrap}: stuck at offset {at} of {end} for {timeout:?}"
    )]
    Stuck {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// This broker's address.
        bootstrap: String,
        /// The next offset to read.
        at: i64,
        /// The high watermark the read goes to.
        end: i64,
        /// How long it waited.
        timeout: Duration,
    },
    /// The local group coordinator refused a commit.
    #[error("{0}")]
    LocalCommit(#[source] LocalError),
    /// An exactly-once task's transaction was refused (fenced, timed out,
    /// an append or a commit in it failed).
    #[error("{0}")]
    Transaction(#[source] LocalError),
    /// An exactly-once task's transactional call through the cluster
    /// failed.
    #[error("transaction {id}: {what}: {source}")]
    ClusterTransaction {
        /// The transactional id.
        id: String,
        /// What was asked.
        what: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// An exactly-once task's transaction through the cluster could not be
    /// committed and was aborted: the task starts again from its last
    /// commit.
    #[error("transaction {id} was aborted: the pipeline's tasks start again from the last commit")]
    TransactionLost {
        /// The transactional id.
        id: String,
    },
    /// librdkafka gave no group metadata for a group's committer.
    #[error("no consumer group metadata for group {group}")]
    NoGroupMetadata {
        /// The group.
        group: String,
    },
    /// A commit through the cluster failed.
    #[error("committing {group} at {bootstrap}: {source}")]
    Commit {
        /// The group.
        group: String,
        /// This broker's address.
        bootstrap: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// A group's committed offsets could not be read through the cluster.
    #[error("reading {group}'s offsets at {bootstrap}: {source}")]
    Committed {
        /// The group.
        group: String,
        /// This broker's address.
        bootstrap: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
}

impl From<TopicsError> for PipelineError {
    fn from(e: TopicsError) -> Self {
        PipelineError::Topics(Box::new(e))
    }
}

impl TopicsError {
    /// Whether an append failed because a record is larger than the topic
    /// takes: retrying cannot help. Other append errors (no leader yet, a
    /// broker down) are worth retrying.
    pub(crate) fn too_large(&self) -> bool {
        match self {
            TopicsError::Append(PartitionError::Log(LogError::MessageTooLarge { .. })) => true,
            TopicsError::Produce { source, .. } => {
                source.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use fjord_plugin_host::ErrorKind;

    use super::*;

    /// Users read these in `fjord pipeline status` and the pipeline's log:
    /// each renders as the message it replaced.
    #[test]
    fn messages_read_as_before() {
        let plugin = PluginError {
            plugin: "enrich".into(),
            kind: ErrorKind::Init("no table".into()),
        };
        let cases = [
            (
                PipelineError::Plugin {
                    name: "lookup".into(),
                    source: plugin.clone(),
                },
                format!("lookup: {plugin}"),
            ),
            (
                PipelineError::Topic {
                    topic: "orders".into(),
                    source: LocalError::from_message("no brokers"),
                },
                format!("topic orders: {}", LocalError::from_message("no brokers")),
            ),
            (
                PipelineError::Condition {
                    sink: "sink 0".into(),
                    source: fjord_expr::ParseError {
                        column: 3,
                        message: "unexpected end".into(),
                    },
                },
                "sink 0: when: column 3: unexpected end".into(),
            ),
            (
                PipelineError::SinkWithoutTarget("sink 1".into()),
                "sink 1: neither topic nor connector".into(),
            ),
            (
                PipelineError::SourceWithoutTarget,
                "the source has neither topic nor connector".into(),
            ),
            (
                PipelineError::Changelog {
                    topic: "pipeline.p.s.changelog".into(),
                    source: Box::new(TopicsError::NoPartition {
                        topic: "pipeline.p.s.changelog".into(),
                        partition: 3,
                    }),
                },
                "pipeline.p.s.changelog: pipeline.p.s.changelog has no partition 3".into(),
            ),
            (
                PipelineError::from(TopicsError::NoSecretYet {
                    bootstrap: "b1:9092".into(),
                }),
                "no client for b1:9092 yet: the cluster's internal secret is not drawn yet".into(),
            ),
            (
                PipelineError::NoDeadLetter {
                    step: "split".into(),
                    error: "no match".into(),
                },
                "step split failed on a record and the pipeline has no deadLetter topic: no match"
                    .into(),
            ),
            (
                PipelineError::ChangelogTopic {
                    topic: "pipeline.p.s.changelog".into(),
                    source: LocalError::from_message("disk full"),
                },
                LocalError::from_message("disk full").to_string(),
            ),
            (
                PipelineError::Read {
                    topic: "orders".into(),
                    partition: 2,
                    source: fjord_log::LogError::OffsetOutOfRange {
                        offset: 9,
                        log_start: 0,
                        log_end: 5,
                    },
                },
                "orders-2: offset 9 is outside the log [0, 5]".into(),
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
        let not_json = crate::runtime::Deployment::from_json(b"{")
            .err()
            .map(|e| e.to_string());
        assert!(
            not_json.is_some_and(|t| t.starts_with("not a deployment record: EOF")),
            "a broken record is refused with its reason"
        );
    }
}
