//! Cluster, brokers and health.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fjord_broker::{BrokerInfo, ClusterInfo};
use serde_json::{Value, json};

use crate::AdminState;

pub(crate) async fn cluster(State(state): State<AdminState>) -> Json<ClusterInfo> {
    Json(state.broker.cluster())
}

pub(crate) async fn brokers(State(state): State<AdminState>) -> Json<Vec<BrokerInfo>> {
    Json(state.broker.cluster().brokers)
}

pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

pub(crate) async fn ready(State(state): State<AdminState>) -> (StatusCode, Json<Value>) {
    let shutting_down = *state.broker.shutting_down().borrow();
    if state.ready.load(Ordering::Acquire) && !shutting_down {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready"})),
        )
    }
}
