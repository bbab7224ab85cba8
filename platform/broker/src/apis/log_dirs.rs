//! DescribeLogDirs and AlterReplicaLogDirs. A broker has one log
//! directory, its data directory (`log.dir`), so every partition it hosts
//! is in it and no replica is ever being moved between directories: the
//! offset lag of every partition is 0 (Kafka's lag of a current replica is
//! its high watermark minus its log end, at least 0) and none is a future
//! replica. Describing needs DESCRIBE on the cluster, altering ALTER, as
//! in Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;

/// The log directory as clients see it: absolute, as Kafka reports
/// `getAbsolutePath` (symbolic links are not resolved).
fn log_dir(state: &BrokerState) -> PathBuf {
    let dir = &state.config().data_dir;
    std::path::absolute(dir).unwrap_or_else(|_| dir.clone())
}

/// The partitions the request asks about: `None` for all of them (a null
/// topic list), else each named topic's named partitions, deduplicated.
fn wanted(request: &DescribeLogDirsRequest) -> Option<BTreeMap<&str, BTreeSet<i32>>> {
    let topics = request.topics.as_ref()?;
    let mut wanted: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for topic in topics {
        wanted
            .entry(topic.topic.as_str())
            .or_default()
            .extend(topic.partitions.iter().copied());
    }
    Some(wanted)
}

pub(crate) fn describe(
    state: &BrokerState,
    version: i16,
    request: DescribeLogDirsRequest,
    access: &Access,
) -> DescribeLogDirsResponse {
    if !access.cluster(Operation::Describe) {
        // No directories. v1–2 have no top-level error code on the wire
        // (the encoder leaves it out), so they see only the empty answer,
        // as from Kafka.
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted = wanted(&request);
    let mut topics = Vec::new();
    for topic in state.registry().list() {
        let partitions_wanted = match &wanted {
            None => None,
            Some(wanted) => match wanted.get(topic.name()) {
                Some(partitions) => Some(partitions),
                None => continue,
            },
        };
        // Partitions not hosted here are left out, as in Kafka.
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions()
            .into_iter()
            .filter(|p| partitions_wanted.is_none_or(|w| w.contains(&p.index())))
            .map(|p| {
                DescribeLogDirsPartition::default()
                    .with_partition_index(p.index())
                    .with_partition_size(i64::try_from(p.log().size_bytes()).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
                    .with_is_future_key(false)
            })
            .collect();
        if partitions.is_empty() {
            continue;
        }
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name().to_string())))
                .with_partitions(partitions),
        );
    }
    let dir = log_dir(state);
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    if version >= 4 {
        // -1 when the file system cannot be asked, Kafka's "unknown".
        let (total, usable) = match crate::disk_space::file_system_space(&dir) {
            Ok(space) => (
                i64::try_from(space.total_bytes).unwrap_or(i64::MAX),
                i64::try_from(space.usable_bytes).unwrap_or(i64::MAX),
            ),
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "statvfs failed");
                (-1, -1)
            }
        };
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Moving a replica to another directory: there is none, so the data
/// directory itself is a no-op for a hosted partition and
/// REPLICA_NOT_AVAILABLE for one not hosted here (Kafka's answer when the
/// replica does not exist), and any other path LOG_DIR_NOT_FOUND.
pub(crate) fn alter(
    state: &BrokerState,
    request: AlterReplicaLogDirsRequest,
    access: &Access,
) -> AlterReplicaLogDirsResponse {
    let authorized = access.cluster(Operation::Alter);
    let ours = log_dir(state);
    let mut results: BTreeMap<TopicName, Vec<AlterReplicaLogDirPartitionResult>> = BTreeMap::new();
    for dir in request.dirs {
        let known = same_dir(&ours, dir.path.as_str());
        for topic in dir.topics {
            let hosted = state.registry().get(topic.name.as_str());
            let answers = results.entry(topic.name).or_default();
            for index in topic.partitions {
                let error = if !authorized {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else if !known {
                    ResponseError::LogDirNotFound.code()
                } else if hosted.as_ref().and_then(|t| t.partition(index)).is_none() {
                    ResponseError::ReplicaNotAvailable.code()
                } else {
                    0
                };
                answers.push(
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error),
                );
            }
        }
    }
    let results = results
        .into_iter()
        .map(|(topic_name, partitions)| {
            AlterReplicaLogDirTopicResult::default()
                .with_topic_name(topic_name)
                .with_partitions(partitions)
        })
        .collect();
    AlterReplicaLogDirsResponse::default().with_results(results)
}

/// Whether the client's `path` names the log directory `ours` (made
/// absolute the same way; `a/b/` and `a/b` are the same directory).
fn same_dir(ours: &Path, path: &str) -> bool {
    !path.is_empty() && std::path::absolute(path).is_ok_and(|p| p == ours)
}
