//! Every error the API answers: a status code and a JSON body with a
//! message (and the Kafka error name when the broker refused something).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fjord_broker::LocalError;
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kafka_error: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kafka_error: Option<&'a str>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kafka_error: None,
        }
    }
}

// Kafka error codes that are the caller's fault or a conflict.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC: i16 = 17;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const POLICY_VIOLATION: i16 = 44;

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> Self {
        let status = match e.code() {
            UNKNOWN_TOPIC_OR_PARTITION => StatusCode::NOT_FOUND,
            TOPIC_ALREADY_EXISTS => StatusCode::CONFLICT,
            INVALID_TOPIC
            | INVALID_PARTITIONS
            | INVALID_REPLICATION_FACTOR
            | INVALID_CONFIG
            | INVALID_REQUEST
            | POLICY_VIOLATION => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            kafka_error: Some(e.code_name()),
            message: e.message(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            kafka_error: self.kafka_error.as_deref(),
        };
        (self.status, Json(body)).into_response()
    }
}
