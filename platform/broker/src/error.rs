//! The broker's error type, and the mapping of log errors onto Kafka codes.

use std::path::PathBuf;

use fjord_log::LogError;
use kafka_protocol::ResponseError;

use crate::auth::AuthError;
use crate::sasl::SaslError;

/// What can stop the broker from starting, persisting metadata or shutting
/// down cleanly. Errors a client causes never become a `BrokerError`: they
/// are answered with a Kafka error code or end that one connection.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is unusable (bad listener address, bad values).
    #[error("invalid broker configuration: {0}")]
    Config(String),
    /// Binding or accepting on the listener failed.
    #[error("listener {addr}: {source}")]
    Listen {
        /// The address we tried to bind.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A metadata file (topic definitions, cluster id) could not be read or
    /// written.
    #[error("metadata file {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A partition log failed to open, flush or close.
    #[error("log {path}: {source}")]
    Log {
        /// The partition directory.
        path: PathBuf,
        /// The log's error.
        source: LogError,
    },
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// Another broker process has the data directory open.
    #[error(
        "data directory {path} is in use by another fjord server{holder}; stop it, or give this one another data directory"
    )]
    DataDirInUse {
        /// The data directory.
        path: PathBuf,
        /// ` (pid N)` when the lock file says.
        holder: String,
    },
}

impl BrokerError {
    pub(crate) fn metadata(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        BrokerError::Metadata {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// The Kafka error code a client gets for a log error: CORRUPT_MESSAGE
/// (retriable) only for bytes that do not match their CRC; a batch whose
/// CRC matches but whose records are wrong is INVALID_RECORD (not
/// retriable: the producer wrote it so), decompressing past
/// `message.max.decompressed.bytes` and an unknown codec included.
pub(crate) fn log_error_code(error: &LogError) -> i16 {
    match error {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage.code(),
        LogError::InvalidRecord { .. } => ResponseError::InvalidRecord.code(),
        LogError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Io(_) => ResponseError::KafkaStorageError.code(),
        _ => ResponseError::UnknownServerError.code(),
    }
}

/// The Kafka error code a client gets for a request its principal may not
/// make (Kafka refuses appends to its internal topics with the same code).
pub(crate) fn auth_error_code(error: &AuthError) -> i16 {
    match error {
        AuthError::InternalTopic { .. } => ResponseError::InvalidTopicException.code(),
    }
}

/// The Kafka error code of a refused SASL step.
pub(crate) fn sasl_error_code(error: &SaslError) -> i16 {
    match error {
        SaslError::UnsupportedMechanism(_) => ResponseError::UnsupportedSaslMechanism.code(),
        SaslError::IllegalState(_) => ResponseError::IllegalSaslState.code(),
        SaslError::Failed => ResponseError::SaslAuthenticationFailed.code(),
    }
}
