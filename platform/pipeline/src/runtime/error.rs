//! The pipeline runtime's error: why a deployed pipeline did not start, or
//! why a task could not save its state. Its text is what users read in
//! `fjord pipeline status` ("cannot start: …") and the pipeline's log, so
//! each variant displays as the message it replaces.

use fjord_broker::LocalError;
use fjord_plugin_host::PluginError;

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
    #[error("{topic}: {reason}")]
    Changelog {
        /// The changelog topic.
        topic: String,
        /// Why, as the topic access reports it.
        reason: String,
    },
    /// Reading or writing the pipeline's topics failed (`Topics`: the
    /// partition in-process, or its leader through the cluster's Kafka
    /// client), as that layer reports it.
    #[error("{0}")]
    Topics(String),
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
                    reason: "no leader".into(),
                },
                "pipeline.p.s.changelog: no leader".into(),
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
