//! Topics: list, describe, create, delete, configs, and the latest records.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fjord_broker::{ConfigEntry, Operation, Partition, PartitionReplicas, ResourceType, Topic};
use fjord_pipeline::runtime::catalog;
use serde::{Deserialize, Serialize};

use super::authorize::refused;
use super::{blocking, json_body};
use crate::auth::Caller;
use crate::{AdminState, ApiError};

#[derive(Serialize)]
pub(crate) struct TopicSummary {
    name: String,
    internal: bool,
    partitions: i32,
    replication_factor: i32,
    size_bytes: u64,
    /// Records held: high watermark − log start, summed over partitions.
    records: i64,
    /// Partitions whose ISR is smaller than their replica set: always 0 on
    /// a single node (the one replica is the leader).
    under_replicated_partitions: i32,
}

#[derive(Serialize)]
pub(crate) struct TopicDetail {
    name: String,
    id: String,
    internal: bool,
    replication_factor: i32,
    size_bytes: u64,
    records: i64,
    configs: Vec<ConfigEntry>,
    partitions: Vec<PartitionDetail>,
}

#[derive(Serialize)]
struct PartitionDetail {
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    log_start_offset: i64,
    high_watermark: i64,
    log_end_offset: i64,
    size_bytes: u64,
    segments: usize,
}

/// The broker's own definition: what clients may not produce to.
fn internal(name: &str) -> bool {
    fjord_broker::is_internal_topic(name)
}

fn records_held(p: &Partition) -> i64 {
    (p.high_watermark() - p.log_start_offset()).max(0)
}

fn summary(state: &AdminState, topic: &Topic) -> TopicSummary {
    let partitions = topic.partitions();
    let replicas: Vec<_> = (0..topic.partition_count())
        .filter_map(|p| state.broker.partition_replicas(topic.name(), p))
        .collect();
    TopicSummary {
        name: topic.name().to_owned(),
        internal: internal(topic.name()),
        partitions: topic.partition_count(),
        replication_factor: replication_factor(&replicas),
        size_bytes: partitions.iter().map(|p| p.log().size_bytes()).sum(),
        records: partitions.iter().map(|p| records_held(p)).sum(),
        under_replicated_partitions: replicas
            .iter()
            .filter(|r| r.isr.len() < r.replicas.len())
            .count() as i32,
    }
}

/// A topic's replication factor: its partitions' replica count (the
/// largest, while a reassignment changes one).
fn replication_factor(replicas: &[PartitionReplicas]) -> i32 {
    replicas
        .iter()
        .map(|r| r.replicas.len() as i32)
        .max()
        .unwrap_or(1)
}

fn detail(state: &AdminState, topic: &Topic) -> TopicDetail {
    // Partitions this broker hosts; in a cluster the others are on other
    // brokers, whose logs this one cannot measure.
    let replicas: Vec<_> = (0..topic.partition_count())
        .filter_map(|p| state.broker.partition_replicas(topic.name(), p))
        .collect();
    let partitions: Vec<PartitionDetail> = topic
        .partitions()
        .iter()
        .map(|p| {
            let held = state
                .broker
                .partition_replicas(topic.name(), p.index())
                .unwrap_or(PartitionReplicas {
                    leader: -1,
                    leader_epoch: p.leader_epoch(),
                    replicas: Vec::new(),
                    isr: Vec::new(),
                });
            PartitionDetail {
                partition: p.index(),
                leader: held.leader,
                leader_epoch: held.leader_epoch,
                replicas: held.replicas,
                isr: held.isr,
                log_start_offset: p.log_start_offset(),
                high_watermark: p.high_watermark(),
                log_end_offset: p.log().log_end_offset(),
                size_bytes: p.log().size_bytes(),
                segments: p.log().segment_base_offsets().len(),
            }
        })
        .collect();
    TopicDetail {
        name: topic.name().to_owned(),
        id: topic.id().to_string(),
        internal: internal(topic.name()),
        replication_factor: replication_factor(&replicas),
        size_bytes: partitions.iter().map(|p| p.size_bytes).sum(),
        records: partitions
            .iter()
            .map(|p| (p.high_watermark - p.log_start_offset).max(0))
            .sum(),
        configs: state.broker.topic_configs(topic),
        partitions,
    }
}

fn find(state: &AdminState, name: &str) -> Result<Arc<Topic>, ApiError> {
    state
        .broker
        .topic(name)
        .ok_or_else(|| ApiError::not_found(format!("topic {name:?} does not exist")))
}

/// The topics the caller may describe (Metadata's filter).
pub(crate) async fn list(
    State(state): State<AdminState>,
    axum::Extension(access): Caller,
) -> Json<Vec<TopicSummary>> {
    Json(
        state
            .broker
            .topics()
            .iter()
            .filter(|t| access.topic(Operation::Describe, t.name()))
            .map(|t| summary(&state, t))
            .collect(),
    )
}

pub(crate) async fn describe(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<TopicDetail>, ApiError> {
    let topic = find(&state, &name)?;
    Ok(Json(detail(&state, &topic)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTopic {
    name: String,
    partitions: Option<i32>,
    replication_factor: Option<i32>,
    #[serde(default)]
    configs: BTreeMap<String, ConfigValue>,
}

/// A config value as JSON gives it: text, or a number or boolean written
/// without quotes.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigValue {
    Text(String),
    Number(serde_json::Number),
    Bool(bool),
}

impl ConfigValue {
    fn into_text(self) -> String {
        match self {
            ConfigValue::Text(t) => t,
            ConfigValue::Number(n) => n.to_string(),
            ConfigValue::Bool(b) => b.to_string(),
        }
    }
}

/// CreateTopics' right: CREATE on the cluster or on the topic.
pub(crate) async fn create(
    State(state): State<AdminState>,
    axum::Extension(access): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<TopicDetail>), ApiError> {
    let request: NewTopic = json_body(&body)?;
    if !access.may_create_topic(&request.name) {
        return Err(refused(
            &access,
            Operation::Create,
            ResourceType::Topic,
            &request.name,
        ));
    }
    let replication_factor = request
        .replication_factor
        .map(|rf| {
            i16::try_from(rf).map_err(|_| {
                ApiError::bad_request(format!("replication factor {rf} is out of range"))
            })
        })
        .transpose()?;
    if request.partitions.is_some_and(|p| p < 1) {
        return Err(ApiError::bad_request("partitions must be at least 1"));
    }
    let configs: Vec<(String, String)> = request
        .configs
        .into_iter()
        .map(|(k, v)| (k, v.into_text()))
        .collect();
    let topic = state
        .broker
        .create_topic(
            &request.name,
            request.partitions,
            replication_factor,
            &configs,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(detail(&state, &topic))))
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    find(&state, &name)?;
    // The platform's `__` topics cannot be deleted; a pipeline's changelog
    // (internal too) can, so that a deleted pipeline's state can go.
    if name.starts_with("__") {
        return Err(ApiError::bad_request(format!(
            "{name} is an internal topic of the broker and cannot be deleted"
        )));
    }
    state.broker.delete_topic(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn configs(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<ConfigEntry>>, ApiError> {
    let topic = find(&state, &name)?;
    Ok(Json(state.broker.topic_configs(&topic)))
}

pub(crate) async fn alter_configs(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Vec<ConfigEntry>>, ApiError> {
    let changes: BTreeMap<String, Option<ConfigValue>> = json_body(&body)?;
    if changes.is_empty() {
        return Err(ApiError::bad_request("no config to change"));
    }
    let changes: Vec<(String, Option<String>)> = changes
        .into_iter()
        .map(|(k, v)| (k, v.map(ConfigValue::into_text)))
        .collect();
    state.broker.alter_topic_configs(&name, &changes).await?;
    let topic = find(&state, &name)?;
    Ok(Json(state.broker.topic_configs(&topic)))
}

#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    partition: Option<i32>,
    limit: Option<usize>,
}

/// Most records one request returns.
const MAX_RECORDS: usize = 500;

#[derive(Serialize)]
pub(crate) struct RecordView {
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_json: Option<serde_json::Value>,
    headers: Vec<HeaderView>,
}

/// A stored batch the records view passed over: it does not decode within
/// the bounds every reader uses (written by an older version, or damaged).
#[derive(Serialize)]
pub(crate) struct SkippedView {
    partition: i32,
    offset: i64,
    next_offset: i64,
    error: String,
}

/// `GET /topics/{name}/records`.
#[derive(Serialize)]
pub(crate) struct RecordsView {
    records: Vec<RecordView>,
    skipped: Vec<SkippedView>,
}

#[derive(Serialize)]
struct HeaderView {
    key: String,
    value: Option<String>,
}

fn text(bytes: Option<&[u8]>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

pub(crate) async fn records(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(query): Query<RecordsQuery>,
) -> Result<Json<RecordsView>, ApiError> {
    let topic = find(&state, &name)?;
    let limit = query.limit.unwrap_or(20).clamp(1, MAX_RECORDS);
    let partitions: Vec<Arc<Partition>> =
        match query.partition {
            Some(p) => vec![topic.partition(p).ok_or_else(|| {
                ApiError::not_found(format!("topic {name:?} has no partition {p}"))
            })?],
            None => topic.partitions(),
        };
    let (records, skipped) = blocking(move || {
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        for partition in &partitions {
            let tail = catalog::tail(partition, limit)?;
            records.extend(tail.records);
            skipped.extend(tail.skipped);
        }
        Ok((records, skipped))
    })
    .await?;
    let mut views: Vec<RecordView> = records
        .into_iter()
        .map(|r| RecordView {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            key: text(r.key.as_deref()),
            value_json: r
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice(v).ok()),
            value: text(r.value.as_deref()),
            headers: r
                .headers
                .into_iter()
                .map(|h| HeaderView {
                    key: h.name,
                    value: text(h.value.as_deref()),
                })
                .collect(),
        })
        .collect();
    // Newest first across partitions.
    views.sort_by_key(|v| std::cmp::Reverse((v.timestamp, v.offset)));
    views.truncate(limit);
    let skipped = skipped
        .into_iter()
        .map(|s| SkippedView {
            error: s.to_string(),
            partition: s.partition,
            offset: s.offset,
            next_offset: s.next_offset,
        })
        .collect();
    Ok(Json(RecordsView {
        records: views,
        skipped,
    }))
}
