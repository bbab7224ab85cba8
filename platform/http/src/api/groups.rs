//! Consumer groups: list, describe, and offset resets.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use fjord_broker::{GroupDescription, Operation, ResourceType};
use serde::{Deserialize, Serialize};

use super::authorize::require;
use super::json_body;
use crate::auth::Caller;
use crate::{AdminState, ApiError};

#[derive(Serialize)]
pub(crate) struct GroupSummary {
    group_id: String,
    state: &'static str,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    members: usize,
    lag: i64,
}

/// ListGroups' filter: every group for DESCRIBE on the cluster, else the
/// groups the caller may describe.
pub(crate) async fn list(
    State(state): State<AdminState>,
    axum::Extension(access): Caller,
) -> Json<Vec<GroupSummary>> {
    let all = access.cluster(Operation::Describe);
    Json(
        state
            .broker
            .groups()
            .into_iter()
            .filter(|g| all || access.group(Operation::Describe, &g.group_id))
            .map(|g| GroupSummary {
                members: g.members.len(),
                group_id: g.group_id,
                state: g.state,
                protocol_type: g.protocol_type,
                protocol: g.protocol,
                generation: g.generation,
                lag: g.lag,
            })
            .collect(),
    )
}

fn find(state: &AdminState, id: &str) -> Result<GroupDescription, ApiError> {
    state
        .broker
        .group(id)
        .ok_or_else(|| ApiError::not_found(format!("group {id:?} does not exist")))
}

/// DescribeGroups with OffsetFetch: the offsets of topics the caller may
/// not describe are left out, as Kafka leaves them out.
pub(crate) async fn describe(
    State(state): State<AdminState>,
    axum::Extension(access): Caller,
    Path(id): Path<String>,
) -> Result<Json<GroupDescription>, ApiError> {
    described(&state, &access, &id).map(Json)
}

fn described(
    state: &AdminState,
    access: &fjord_broker::Access,
    id: &str,
) -> Result<GroupDescription, ApiError> {
    let mut group = find(state, id)?;
    if access.enforced() {
        group
            .offsets
            .retain(|o| access.topic(Operation::Describe, &o.topic));
        group.lag = group.offsets.iter().map(|o| o.lag).sum();
    }
    Ok(group)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    topic: String,
    partitions: Option<Vec<i32>>,
    to: ResetTo,
}

/// Where a reset moves a group's offsets.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum ResetTo {
    Named(Named),
    Offset { offset: i64 },
    Timestamp { timestamp: i64 },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Named {
    Earliest,
    Latest,
}

/// Commits new offsets for a group that has no members, as
/// `kafka-consumer-groups --reset-offsets` does: offsets are kept within
/// each partition's log start and high watermark.
pub(crate) async fn reset_offsets(
    State(state): State<AdminState>,
    axum::Extension(access): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<GroupDescription>, ApiError> {
    let request: ResetRequest = json_body(&body)?;
    // OffsetCommit's right on the topic (the group's is the route's rule).
    require(
        &access,
        Operation::Read,
        ResourceType::Topic,
        &request.topic,
    )?;
    reset_group(
        &state,
        &id,
        &request.topic,
        request.partitions.as_deref(),
        request.to,
    )
    .await?;
    described(&state, &access, &id).map(Json)
}

/// Commits `to` for `group` on `topic` (`partitions`, or all of them),
/// refusing while the group has members. Returns the offsets committed,
/// by partition. Also what `fjord pipeline reset` does to a pipeline's
/// group.
pub(crate) async fn reset_group(
    state: &AdminState,
    id: &str,
    topic_name: &str,
    partitions: Option<&[i32]>,
    to: ResetTo,
) -> Result<Vec<(i32, i64)>, ApiError> {
    if let Some(group) = state.broker.group(id)
        && !group.members.is_empty()
    {
        return Err(ApiError::conflict(format!(
            "group {id:?} has {} members: stop its consumers before resetting its offsets",
            group.members.len()
        )));
    }
    let topic = state
        .broker
        .topic(topic_name)
        .ok_or_else(|| ApiError::not_found(format!("topic {topic_name:?} does not exist")))?;
    let partitions = match partitions {
        Some(list) => list
            .iter()
            .map(|p| {
                topic.partition(*p).ok_or_else(|| {
                    ApiError::not_found(format!("topic {topic_name:?} has no partition {p}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => topic.partitions(),
    };
    let mut offsets = Vec::new();
    for p in &partitions {
        let (start, end) = (p.log_start_offset(), p.high_watermark());
        let offset = match to {
            ResetTo::Named(Named::Earliest) => start,
            ResetTo::Named(Named::Latest) => end,
            ResetTo::Offset { offset } => offset,
            ResetTo::Timestamp { timestamp } => p
                .log()
                .offset_for_timestamp(timestamp)
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_or(end, |found| found.offset),
        };
        offsets.push((p.index(), offset.clamp(start, end)));
    }
    let commits: Vec<(&str, i32, i64)> =
        offsets.iter().map(|(p, o)| (topic_name, *p, *o)).collect();
    state.broker.commit(id, &commits).await?;
    Ok(offsets)
}
