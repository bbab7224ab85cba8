//! Pipelines: list, describe, deploy, pause, resume, reset, delete, logs.
//!
//! Each is authorized for the caller (the principal the admin API's
//! authentication put on the request, `User:ANONYMOUS` without one) by
//! `fjord_pipeline::runtime::access`: changing a pipeline needs ALTER on
//! the CLUSTER or ALTER_CONFIGS on its group `pipeline.<name>`, seeing it
//! DESCRIBE on the CLUSTER or DESCRIBE_CONFIGS on the group; a refusal is
//! a 403 naming the missing binding. A deploy records the caller as the
//! deployer, whom the pipeline runs as unless its manifest names another
//! principal, which only the principal itself or one with ALTER on the
//! CLUSTER may do.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use fjord_broker::{Access, Principal};
use fjord_pipeline::runtime::access::{self, Denied, PIPELINE_HOST};
use fjord_pipeline::runtime::{Deployment, PipelineStatus, RunState, catalog, deploy_if_changed};
use fjord_pipeline::{HostResolver, Pipeline, check_existing_topics, validate_set};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::groups::{ResetTo, reset_group};
use super::{blocking, json_body};
use crate::{AdminState, ApiError};

#[derive(Serialize)]
pub(crate) struct PipelineSummary {
    name: String,
    /// The runtime's state, `pending` before its first status.
    state: String,
    paused: bool,
    revision: i64,
    source: String,
    lag: i64,
    dead_lettered: u64,
    /// Records into the first step (or the sinks when there is no step).
    records_in: u64,
    /// Records the sinks wrote.
    records_out: u64,
}

#[derive(Serialize)]
pub(crate) struct PipelineDetail {
    name: String,
    manifest: String,
    paused: bool,
    revision: i64,
    /// Who deployed it (`User:alice`); absent: the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    deployed_by: Option<String>,
    /// Who it runs as: `metadata.principal`, else the deployer, else the
    /// platform (`User:fjord-internal`).
    principal: String,
    dead_letter_topic: Option<String>,
    status: Option<PipelineStatus>,
}

fn state_name(status: Option<&PipelineStatus>, paused: bool) -> String {
    match status.map(|s| s.state) {
        Some(RunState::Running) => "running",
        Some(RunState::Paused) => "paused",
        Some(RunState::Failed) => "failed",
        Some(RunState::Invalid) => "invalid",
        None if paused => "paused",
        None => "pending",
    }
    .to_owned()
}

/// Who is asking, and what the ACLs let them do: the [`Access`] the admin
/// API's authentication put on the request (its principal at the caller's
/// address, decided by the broker's authorizer as for the Kafka port), or
/// `User:ANONYMOUS` at [`PIPELINE_HOST`] when it put none (a router
/// built without the authentication layer, as in tests).
fn caller(state: &AdminState, access: Option<Extension<Access>>) -> Access {
    access.map_or_else(
        || state.broker.access(Principal::Anonymous, PIPELINE_HOST),
        |Extension(a)| a,
    )
}

fn forbidden(denied: &Denied) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, denied.to_string())
}

/// Lists the pipelines the caller may describe.
pub(crate) async fn list(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
) -> Result<Json<Vec<PipelineSummary>>, ApiError> {
    let access = caller(&state, access);
    let broker = state.broker.clone();
    let (deployments, mut statuses) =
        blocking(move || Ok((catalog::deployments(&broker)?, catalog::statuses(&broker)?))).await?;
    Ok(Json(
        deployments
            .into_iter()
            .filter(|(name, _)| access::may_describe(&access, name).is_ok())
            .map(|(name, (revision, d))| {
                let status = statuses.remove(&name);
                let s = status.as_ref();
                PipelineSummary {
                    state: state_name(s, d.paused),
                    paused: d.paused,
                    revision,
                    source: s.map(|s| s.source.clone()).unwrap_or_default(),
                    lag: s.map_or(0, |s| s.lag),
                    dead_lettered: s.map_or(0, |s| s.dead_lettered),
                    records_in: s.map_or(0, |s| {
                        s.steps.first().map_or_else(
                            || s.sinks.iter().map(|k| k.records_in).sum(),
                            |f| f.records_in,
                        )
                    }),
                    records_out: s.map_or(0, |s| s.sinks.iter().map(|k| k.records_out).sum()),
                    name,
                }
            })
            .collect(),
    ))
}

fn not_deployed(name: &str) -> ApiError {
    ApiError::not_found(format!("no pipeline called {name:?} is deployed"))
}

pub(crate) async fn describe(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<Json<PipelineDetail>, ApiError> {
    access::may_describe(&caller(&state, access), &name).map_err(|d| forbidden(&d))?;
    let broker = state.broker.clone();
    let wanted = name.clone();
    let (deployment, status) = blocking(move || {
        let deployment = catalog::deployments(&broker)?.remove(&wanted);
        let status = catalog::statuses(&broker)?.remove(&wanted);
        Ok((deployment, status))
    })
    .await?;
    let (revision, deployment) = deployment.ok_or_else(|| not_deployed(&name))?;
    let parsed = Pipeline::from_yaml(&deployment.file, &deployment.manifest).ok();
    let principal = parsed
        .as_ref()
        .map(|p| access::run_as(p, &deployment).to_string())
        .unwrap_or_default();
    let dead_letter_topic = parsed.and_then(|p| p.spec.dead_letter.map(|d| d.topic));
    Ok(Json(PipelineDetail {
        name,
        manifest: deployment.manifest,
        paused: deployment.paused,
        revision,
        deployed_by: deployment.deployed_by,
        principal,
        dead_letter_topic,
        status,
    }))
}

#[derive(Deserialize)]
pub(crate) struct DeployQuery {
    /// Store it paused (`fjord pipeline deploy --paused`).
    #[serde(default)]
    paused: bool,
    /// What its errors call the manifest (`fjord pipeline deploy` sends
    /// the file's path); default `NAME (admin API)`.
    file: Option<String>,
}

/// Deploys the manifest in the body after checking it as `fjord pipeline
/// validate` does: its structure, its plugins on this broker, and that it
/// fits with the pipelines already deployed and the topics that exist
/// (`create: {partitions: N}` of an existing topic must match it).
///
/// Authorized before any plugin is resolved: the caller may change the
/// pipeline (see the module), and may lend it the principal its manifest
/// names. Under an authorizer a manifest that does not parse is refused
/// with its structural errors only.
pub(crate) async fn deploy(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Query(query): Query<DeployQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::bad_request("the manifest is not UTF-8 text"))?;
    let access = caller(&state, access);
    let deployed_by = access.principal.to_string();
    let broker = state.broker.clone();
    let host = state.host.clone();
    let manifest = text.clone();
    let shown = query.file.clone();
    let name = blocking(move || {
        let file = shown.as_deref().unwrap_or("request body");
        match Pipeline::from_yaml(file, &manifest) {
            Ok(parsed) => authorize_deploy(&access, &parsed)?,
            Err(e) if access.enforced() => return Err(ApiError::bad_request(e.to_string())),
            Err(_) => {}
        }
        let pipeline = Pipeline::load(file, &manifest, &HostResolver::new(&host))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        check_existing_topics(&pipeline, &|topic| {
            broker.topic(topic).map(|t| t.partition_count())
        })
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut set: Vec<Pipeline> = catalog::deployments(&broker)?
            .into_iter()
            .filter(|(name, _)| *name != pipeline.metadata.name)
            .filter_map(|(_, (_, d))| Pipeline::from_yaml(&d.file, &d.manifest).ok())
            .collect();
        let name = pipeline.metadata.name.clone();
        set.push(pipeline);
        validate_set(&set).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(name)
    })
    .await?;
    let deployment = Deployment {
        manifest: text,
        file: query.file.unwrap_or_else(|| format!("{name} (admin API)")),
        paused: query.paused,
        deployed_by: Some(deployed_by),
    };
    let deployed = deploy_if_changed(&state.broker, &name, &deployment).await?;
    // The same manifest again is no new revision (and restarts nothing).
    let status = if deployed.changed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "name": name,
            "revision": deployed.revision,
            "unchanged": !deployed.changed,
        })),
    ))
}

/// Whether `access` may deploy `pipeline`: change it, and lend it the
/// principal its manifest names.
fn authorize_deploy(access: &Access, pipeline: &Pipeline) -> Result<(), ApiError> {
    access::may_change(access, &pipeline.metadata.name).map_err(|d| forbidden(&d))?;
    if let Some(named) = pipeline.named_principal() {
        access::may_run_as(access, &named).map_err(|d| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "metadata.principal: only {named} itself, or a principal with ALTER on \
                     the CLUSTER, may deploy a pipeline that runs as {named}: {d}"
                ),
            )
        })?;
    }
    Ok(())
}

async fn set_paused(
    state: &AdminState,
    access: &Access,
    name: &str,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    access::may_change(access, name).map_err(|d| forbidden(&d))?;
    let broker = state.broker.clone();
    let wanted = name.to_owned();
    let deployed =
        blocking(move || Ok(catalog::deployments(&broker)?.contains_key(&wanted))).await?;
    if !deployed {
        return Err(not_deployed(name));
    }
    let revision = catalog::set_paused(&state.broker, name, paused).await?;
    Ok(Json(
        json!({"name": name, "paused": paused, "revision": revision}),
    ))
}

pub(crate) async fn pause(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = caller(&state, access);
    set_paused(&state, &access, &name, true).await
}

pub(crate) async fn resume(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let access = caller(&state, access);
    set_paused(&state, &access, &name, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetRequest {
    to: ResetTo,
}

/// How long a reset waits for a just-paused pipeline's tasks to stop (its
/// status says so within about a second).
const STOPPING: std::time::Duration = std::time::Duration::from_secs(20);

/// Moves a paused pipeline's committed position (as `POST
/// /groups/{group}/reset-offsets` moves a group's) and empties its steps'
/// state, so that it reads again from there and counts each record once.
/// Refused while it runs, as Kafka refuses resetting an active group: its
/// tasks would commit and flush over the reset. Refused for a source
/// connector, whose position is the connector's own.
pub(crate) async fn reset(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    access::may_change(&caller(&state, access), &name).map_err(|d| forbidden(&d))?;
    let request: ResetRequest = json_body(&body)?;
    let broker = state.broker.clone();
    let wanted = name.clone();
    let (revision, deployment) =
        blocking(move || Ok(catalog::deployments(&broker)?.remove(&wanted)))
            .await?
            .ok_or_else(|| not_deployed(&name))?;
    if !deployment.paused {
        return Err(ApiError::conflict(format!(
            "pipeline {name:?} is running: pause it first (its tasks would commit over the reset)"
        )));
    }
    let pipeline = Pipeline::from_yaml(&deployment.file, &deployment.manifest)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let Some(topic) = pipeline.spec.source.topic.clone() else {
        return Err(ApiError::bad_request(format!(
            "pipeline {name:?} reads a source connector, whose position is its own: \
             only a topic source can be reset"
        )));
    };
    if state.broker.topic(&topic).is_none() {
        return Err(ApiError::not_found(format!(
            "topic {topic:?} does not exist"
        )));
    }
    let deadline = tokio::time::Instant::now() + STOPPING;
    loop {
        let broker = state.broker.clone();
        let wanted = name.clone();
        if blocking(move || Ok(catalog::stopped_at(&broker, &wanted, revision)?)).await? {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::conflict(format!(
                "pipeline {name:?} is paused but its tasks have not stopped yet; try again"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let steps: Vec<String> = pipeline.spec.steps.iter().map(|s| s.name.clone()).collect();
    let changelogs = catalog::clear_state(&state.broker, &name, &steps).await?;
    let group = pipeline.group_id();
    let offsets = reset_group(&state, &group, &topic, None, request.to).await?;
    Ok(Json(json!({
        "name": name,
        "group": group,
        "topic": topic,
        "offsets": offsets
            .iter()
            .map(|(partition, offset)| json!({"partition": partition, "offset": offset}))
            .collect::<Vec<_>>(),
        "changelogs": changelogs,
    })))
}

pub(crate) async fn delete(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    access::may_change(&caller(&state, access), &name).map_err(|d| forbidden(&d))?;
    let broker = state.broker.clone();
    let wanted = name.clone();
    let deployed =
        blocking(move || Ok(catalog::deployments(&broker)?.contains_key(&wanted))).await?;
    if !deployed {
        return Err(not_deployed(&name));
    }
    catalog::delete(&state.broker, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    limit: Option<usize>,
}

pub(crate) async fn logs(
    State(state): State<AdminState>,
    access: Option<Extension<Access>>,
    Path(name): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Json<Vec<fjord_pipeline::runtime::LogLine>>, ApiError> {
    access::may_describe(&caller(&state, access), &name).map_err(|d| forbidden(&d))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let broker = state.broker.clone();
    let lines = blocking(move || Ok(catalog::logs(&broker, &name, limit)?)).await?;
    Ok(Json(lines))
}
