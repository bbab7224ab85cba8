//! Cluster, brokers and health.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fjord_broker::{BrokerInfo, ClusterInfo};
use serde_json::{Value, json};

use crate::{AdminState, ApiError};

pub(crate) async fn cluster(State(state): State<AdminState>) -> Json<ClusterInfo> {
    Json(state.broker.cluster())
}

pub(crate) async fn brokers(State(state): State<AdminState>) -> Json<Vec<BrokerInfo>> {
    Json(state.broker.cluster().brokers)
}

pub(crate) async fn quorum(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let quorum = state
        .quorum
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server is a single node, not a quorum voter"))?;
    Ok(Json(quorum.status()))
}

pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

pub(crate) async fn ready(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let shutting_down = *state.broker.shutting_down().borrow();
    if state.ready.load(Ordering::Acquire) && !shutting_down {
        // A statvfs call: cheap enough for a probe every few seconds.
        let disk = state.broker.disk();
        if disk.degraded() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "degraded",
                    "reason": "the data directory's free space is below log.dir.reserve.bytes: produce to user topics is refused",
                    "free_bytes": disk.free_bytes,
                    "reserve_bytes": disk.reserve_bytes,
                })),
            );
        }
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready"})),
        )
    }
}

/// Prometheus text exposition format, version 0.0.4.
pub(crate) async fn metrics(
    State(state): State<AdminState>,
) -> Result<([(axum::http::header::HeaderName, &'static str); 1], String), ApiError> {
    let metrics = state
        .metrics
        .clone()
        .ok_or_else(|| ApiError::not_found("metrics are not recorded by this server"))?;
    let broker = state.broker.clone();
    let text = super::blocking(move || Ok(metrics.render(&broker))).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
