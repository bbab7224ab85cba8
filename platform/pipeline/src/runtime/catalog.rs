//! The deployed pipelines as the broker's internal topics hold them, read
//! and changed in-process: the admin HTTP API works through these. (The CLI
//! does the same over the Kafka protocol: a deploy is a produce to
//! [`DEPLOYMENTS_TOPIC`], a status a read of [`STATUS_TOPIC`].)

use std::collections::BTreeMap;

use fjord_broker::{LocalBroker, LocalError, Partition};
use fjord_sdk::Record;

use super::records;
use super::{
    DEPLOYMENTS_TOPIC, Deployment, LOGS_TOPIC, LogLine, PipelineStatus, STATUS_TOPIC, now_ms,
};

/// The latest value of each key of partition 0 of a compacted internal
/// topic, with its offset; a tombstone removes the key. An absent topic
/// reads as empty.
pub fn latest_by_key(
    local: &LocalBroker,
    topic: &str,
) -> Result<BTreeMap<String, (i64, Vec<u8>)>, LocalError> {
    let mut latest = BTreeMap::new();
    let Some(log) = local.topic(topic).and_then(|t| t.partition(0)) else {
        return Ok(latest);
    };
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = records::read(&log, offset, 1 << 20).map_err(LocalError::from_message)?;
        if read.next <= offset {
            break;
        }
        offset = read.next;
        for r in read.records {
            let Some(key) = r.key.and_then(|k| String::from_utf8(k).ok()) else {
                continue;
            };
            match r.value {
                Some(value) => latest.insert(key, (r.offset, value)),
                None => latest.remove(&key),
            };
        }
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

/// The latest published status of each pipeline.
pub fn statuses(local: &LocalBroker) -> Result<BTreeMap<String, PipelineStatus>, LocalError> {
    Ok(latest_by_key(local, STATUS_TOPIC)?
        .into_iter()
        .filter_map(|(name, (_, value))| serde_json::from_slice(&value).ok().map(|s| (name, s)))
        .collect())
}

/// The latest `limit` log lines of pipeline `name`, oldest first. Reads
/// the tail of the logs topic only (its last 4 MiB of batches at most).
pub fn logs(local: &LocalBroker, name: &str, limit: usize) -> Result<Vec<LogLine>, LocalError> {
    let Some(log) = local.topic(LOGS_TOPIC).and_then(|t| t.partition(0)) else {
        return Ok(Vec::new());
    };
    let mut lines: Vec<LogLine> = tail(&log, 20_000)?
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
pub fn tail(partition: &Partition, count: usize) -> Result<Vec<Record>, LocalError> {
    let end = partition.high_watermark();
    let start = end
        .saturating_sub(count as i64)
        .max(partition.log_start_offset());
    let mut out = Vec::new();
    let mut offset = start;
    while offset < end && out.len() < count {
        let read = records::read(partition, offset, 1 << 20).map_err(LocalError::from_message)?;
        if read.next <= offset {
            break;
        }
        offset = read.next;
        out.extend(read.records.into_iter().filter(|r| r.offset < end));
    }
    let skip = out.len().saturating_sub(count);
    out.drain(..skip);
    Ok(out)
}

/// Pauses or resumes pipeline `name` (a resumed failed pipeline starts
/// again). Returns the new revision.
pub async fn set_paused(local: &LocalBroker, name: &str, paused: bool) -> Result<i64, LocalError> {
    let (_, mut deployment) = deployments(local)?
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
    if !deployments(local)?.contains_key(name) {
        return Err(not_deployed(name));
    }
    write(local, name, None).await.map(|_| ())
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
    let topic = local
        .ensure_topic(DEPLOYMENTS_TOPIC, Some(1), &[("cleanup.policy", "compact")])
        .await?;
    let log = topic
        .partition(0)
        .ok_or_else(|| LocalError::from_message("the deployments topic has no partition 0"))?;
    let record = Record {
        key: Some(name.as_bytes().to_vec()),
        value,
        timestamp: now_ms(),
        ..Record::default()
    };
    let batch = records::encode([&record]).map_err(LocalError::from_message)?;
    log.append(batch)
        .await
        .map(|info| info.first_offset)
        .map_err(|e| LocalError::from_message(e.to_string()))
}
