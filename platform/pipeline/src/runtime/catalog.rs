//! The deployed pipelines as the broker's internal topics hold them, read
//! and changed in-process (in a cluster through the partitions' leaders):
//! the admin HTTP API works through these. (The CLI
//! does the same over the Kafka protocol: a deploy is a produce to
//! [`DEPLOYMENTS_TOPIC`], a status a read of [`STATUS_TOPIC`].)

use std::collections::BTreeMap;

use fjord_broker::{LocalBroker, LocalError, Partition};
use fjord_sdk::Record;

use super::changelog;
use super::records::{self, SkippedBatch};
use super::topics::Topics;
use super::{
    DEPLOYMENTS_TOPIC, Deployment, LOGS_TOPIC, LogLine, PipelineStatus, RunState, STATUS_TOPIC,
    merge_statuses, now_ms,
};

/// The latest value of each key of partition 0 of a compacted internal
/// topic, with its offset; a tombstone removes the key. An absent topic
/// reads as empty. Blocks while it reads from another broker.
pub fn latest_by_key(
    local: &LocalBroker,
    topic: &str,
) -> Result<BTreeMap<String, (i64, Vec<u8>)>, LocalError> {
    let mut latest = BTreeMap::new();
    let read = Topics::of(local)
        .read_to_end(topic, 0, 0)
        .map_err(|e| LocalError::from_message(e.to_string()))?;
    for r in read.records {
        let Some(key) = r.key.and_then(|k| String::from_utf8(k).ok()) else {
            continue;
        };
        match r.value {
            Some(value) => latest.insert(key, (r.offset, value)),
            None => latest.remove(&key),
        };
    }
    Ok(latest)
}

/// Every deployed pipeline by name, with its revision (the offset of its
/// deployment record). Records that do not parse are left out.
pub fn deployments(local: &LocalBroker) -> Result<BTreeMap<String, (i64, Deployment)>, LocalError> {
    Ok(latest_by_key(local, DEPLOYMENTS_TOPIC)?
        .into_iter()
        .filter_map(|(name, (offset, value))| {
            Deployment::from_json(&value)
                .ok()
                .map(|d| (name, (offset, d)))
        })
        .collect())
}

/// The latest published status of each pipeline (in a cluster, the
/// brokers' statuses merged).
pub fn statuses(local: &LocalBroker) -> Result<BTreeMap<String, PipelineStatus>, LocalError> {
    let latest = latest_by_key(local, STATUS_TOPIC)?;
    Ok(merge_statuses(latest.values().map(|(_, v)| v.as_slice())))
}

/// The latest `limit` log lines of pipeline `name`, oldest first. Reads
/// the tail of the logs topic only (its last 4 MiB of batches at most).
pub fn logs(local: &LocalBroker, name: &str, limit: usize) -> Result<Vec<LogLine>, LocalError> {
    let topics = Topics::of(local);
    let (start, end) = topics
        .bounds(LOGS_TOPIC, 0)
        .map_err(|e| LocalError::from_message(e.to_string()))?;
    let read = topics
        .read_to_end(LOGS_TOPIC, 0, end.saturating_sub(20_000).max(start))
        .map_err(|e| LocalError::from_message(e.to_string()))?;
    let mut lines: Vec<LogLine> = read
        .records
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(name.as_bytes()))
        .filter_map(|r| serde_json::from_slice(r.value.as_deref()?).ok())
        .collect();
    let skip = lines.len().saturating_sub(limit);
    lines.drain(..skip);
    Ok(lines)
}

/// The last `count` records of `partition` (fewer when the partition holds
/// fewer, or when compaction left gaps), in offset order.
pub fn tail(partition: &Partition, count: usize) -> Result<Tail, LocalError> {
    let end = partition.high_watermark();
    let start = end
        .saturating_sub(count as i64)
        .max(partition.log_start_offset());
    let mut out = Tail::default();
    let mut offset = start;
    while offset < end && out.records.len() < count {
        let read = records::read(partition, offset, 1 << 20)
            .map_err(|e| LocalError::from_message(e.to_string()))?;
        if read.next <= offset {
            break;
        }
        offset = read.next;
        out.records
            .extend(read.records.into_iter().filter(|r| r.offset < end));
        out.skipped.extend(read.skipped);
    }
    let skip = out.records.len().saturating_sub(count);
    out.records.drain(..skip);
    Ok(out)
}

/// The newest records of a partition, and the stored batches among them
/// that did not decode (passed over, so the records after them still show).
#[derive(Debug, Default)]
pub struct Tail {
    pub records: Vec<Record>,
    pub skipped: Vec<SkippedBatch>,
}

/// Pauses or resumes pipeline `name` (a resumed failed pipeline starts
/// again). Returns the new revision.
pub async fn set_paused(local: &LocalBroker, name: &str, paused: bool) -> Result<i64, LocalError> {
    let (_, mut deployment) = deployments_blocking(local)
        .await?
        .remove(name)
        .ok_or_else(|| not_deployed(name))?;
    deployment.paused = paused;
    // Written even when unchanged: resuming a failed pipeline restarts it.
    write(local, name, Some(deployment.to_json())).await
}

/// Deletes pipeline `name`: its tasks stop; its consumer group and
/// changelog topics stay (as Kafka Connect leaves a deleted connector's
/// offsets).
pub async fn delete(local: &LocalBroker, name: &str) -> Result<(), LocalError> {
    if !deployments_blocking(local).await?.contains_key(name) {
        return Err(not_deployed(name));
    }
    write(local, name, None).await.map(|_| ())
}

/// Whether pipeline `name`'s tasks have stopped at deployment `revision`
/// (a pause) on every broker that publishes its status: each fresh status
/// is of that revision or later, and not running. A task that is still
/// running would commit its position and flush its state over a reset.
pub fn stopped_at(local: &LocalBroker, name: &str, revision: i64) -> Result<bool, LocalError> {
    let latest = latest_by_key(local, STATUS_TOPIC)?;
    let statuses: Vec<PipelineStatus> = latest
        .values()
        .filter_map(|(_, v)| serde_json::from_slice::<PipelineStatus>(v).ok())
        .filter(|s| s.name == name)
        .collect();
    let Some(freshest) = statuses.iter().map(|s| s.updated_ms).max() else {
        return Ok(false);
    };
    Ok(statuses
        .iter()
        .filter(|s| s.updated_ms >= freshest - super::deployments::STALE_STATUS_MS)
        .all(|s| s.revision >= revision && s.state != RunState::Running))
}

/// Empties the state of pipeline `name`'s steps `steps`: every key of
/// each step's changelog that exists gets a tombstone, its source position
/// too, so the next tasks restore nothing and read from the group's
/// committed offset. For `fjord pipeline reset`, on a pipeline whose tasks
/// have stopped (see [`stopped_at`]). Returns the changelogs emptied.
pub async fn clear_state(
    local: &LocalBroker,
    name: &str,
    steps: &[String],
) -> Result<Vec<String>, LocalError> {
    let topics = Topics::of(local);
    let mut cleared = Vec::new();
    for step in steps {
        let topic = changelog::changelog_topic(name, step);
        let Some(partitions) = local.topic(&topic).map(|t| t.partition_count()) else {
            continue;
        };
        changelog::clear(&topics, &topic, partitions)
            .await
            .map_err(|e| LocalError::from_message(e.to_string()))?;
        cleared.push(topic);
    }
    Ok(cleared)
}

/// [`deployments`] off the async threads: in a cluster it reads from
/// another broker.
pub(crate) async fn deployments_blocking(
    local: &LocalBroker,
) -> Result<BTreeMap<String, (i64, Deployment)>, LocalError> {
    let local = local.clone();
    tokio::task::spawn_blocking(move || deployments(&local))
        .await
        .map_err(|e| LocalError::from_message(e.to_string()))?
}

fn not_deployed(name: &str) -> LocalError {
    LocalError::from_message(format!("no pipeline called {name:?} is deployed"))
}

/// Appends `value` (or a tombstone) for `name` to the deployments topic.
pub(crate) async fn write(
    local: &LocalBroker,
    name: &str,
    value: Option<Vec<u8>>,
) -> Result<i64, LocalError> {
    local
        .ensure_topic(DEPLOYMENTS_TOPIC, Some(1), &[("cleanup.policy", "compact")])
        .await?;
    let record = Record {
        key: Some(name.as_bytes().to_vec()),
        value,
        timestamp: now_ms(),
        ..Record::default()
    };
    Topics::of(local)
        .append(DEPLOYMENTS_TOPIC, 0, &[record])
        .await
        .map_err(|e| LocalError::from_message(e.to_string()))
}
