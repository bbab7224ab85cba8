//! The routes of the admin listener, one module per resource.

pub(crate) mod authorize;
mod cluster;
mod groups;
mod pipelines;
mod topics;

use axum::Router;
use axum::routing::{get, post};

use crate::auth;
use serde::de::DeserializeOwned;

use crate::{AdminState, ApiError};

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/", get(crate::console::index))
        .route("/console/app.js", get(crate::console::app))
        .route("/console/style.css", get(crate::console::style))
        .route(
            "/api/v1/session",
            get(auth::whoami).post(auth::login).delete(auth::logout),
        )
        .route("/health/live", get(cluster::live))
        .route("/health/ready", get(cluster::ready))
        .route("/metrics", get(cluster::metrics))
        .route("/api/v1/cluster", get(cluster::cluster))
        .route("/api/v1/cluster/quorum", get(cluster::quorum))
        .route("/api/v1/brokers", get(cluster::brokers))
        .route("/api/v1/topics", get(topics::list).post(topics::create))
        .route(
            "/api/v1/topics/{topic}",
            get(topics::describe).delete(topics::delete),
        )
        .route(
            "/api/v1/topics/{topic}/configs",
            get(topics::configs).patch(topics::alter_configs),
        )
        .route("/api/v1/topics/{topic}/records", get(topics::records))
        .route("/api/v1/groups", get(groups::list))
        .route("/api/v1/groups/{group}", get(groups::describe))
        .route(
            "/api/v1/groups/{group}/reset-offsets",
            post(groups::reset_offsets),
        )
        .route(
            "/api/v1/pipelines",
            get(pipelines::list).post(pipelines::deploy),
        )
        .route(
            "/api/v1/pipelines/{name}",
            get(pipelines::describe).delete(pipelines::delete),
        )
        .route("/api/v1/pipelines/{name}/logs", get(pipelines::logs))
        .route("/api/v1/pipelines/{name}/pause", post(pipelines::pause))
        .route("/api/v1/pipelines/{name}/resume", post(pipelines::resume))
        .route("/api/v1/pipelines/{name}/reset", post(pipelines::reset))
        // Every route's ACL rule; the route is known only inside.
        .route_layer(axum::middleware::from_fn(authorize::check))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Who sends the request, for the rules and the handlers.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Outermost, so it also covers the fallbacks: a cross-site request
        // is refused before any password is checked.
        .layer(axum::middleware::from_fn_with_state(
            state.allowed_hosts.clone(),
            crate::guard::check,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such path in the admin API (see docs/admin-api.md)")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this path".to_owned(),
        kafka_error: None,
    }
}

/// Parses a JSON body ourselves, so a malformed one gets our JSON error
/// (with serde's line and column) rather than the framework's text.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Runs blocking work (log reads, plugin loading) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))?
}
