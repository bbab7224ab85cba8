//! The pure request path: frame bytes in, a decoded request (or a reason to
//! refuse it) out; and response encoding. No sockets here, so the decoder
//! can be fed arbitrary bytes in tests.
//!
//! This file holds what the path produces ([`Frame`], [`DecodedRequest`],
//! [`DecodeError`]); `decode` turns bytes into them, `legacy_produce` refuses
//! Produce v0–2, `encode` writes response frames. What a handler does with a
//! request is `apis`' job, not this module's.

use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, RequestKind};

mod decode;
mod encode;
mod legacy_produce;
#[cfg(test)]
pub(crate) mod samples;
#[cfg(test)]
mod tests;

pub use decode::{DEFAULT_MAX_ELEMENTS, decode_request, decode_request_limited};
pub use encode::{encode_response, encode_unsupported_api_versions};
pub use legacy_produce::encode_legacy_produce_refusal;

/// A decoded request.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The request header (correlation id, client id, …).
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// The version, within the advertised range.
    pub version: i16,
    /// The body.
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Frame {
    /// A request to handle.
    Request(Box<DecodedRequest>),
    /// An ApiVersions request of a version this broker does not know: it is
    /// answered in v0 with `UNSUPPORTED_VERSION` and the broker's ranges,
    /// so the client retries lower.
    UnsupportedApiVersions {
        /// Echoed in the answer.
        correlation_id: i32,
    },
    /// A DescribeConfigs v0 (see `legacy_describe_configs`): served by the
    /// v1 handler, answered in v0's layout.
    LegacyDescribeConfigs(Box<crate::legacy_describe_configs::LegacyDescribeConfigs>),
    /// A ListOffsets v0 (see `legacy_list_offsets`): served by the v1
    /// handler, answered in v0's layout.
    LegacyListOffsets(Box<crate::legacy_list_offsets::LegacyListOffsets>),
    /// A Produce v0–2: advertised (see `versions::ADVERTISED_BELOW`) but
    /// not served. Answered with UNSUPPORTED_VERSION for every partition it
    /// names (nothing when `acks` is 0), as Kafka 4.0 does.
    LegacyProduce {
        /// Echoed in the answer.
        correlation_id: i32,
        /// 0, 1 or 2.
        version: i16,
        /// The request (decoded as v3: its body is v3's without the
        /// transactional id).
        request: Box<ProduceRequest>,
    },
}

/// Why a frame is refused; the connection is closed after a log line.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the 8 bytes of api key, version and correlation id.
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API this broker does not implement.
    #[error("API {0:?} is not supported")]
    UnsupportedApi(ApiKey),
    /// A version outside the advertised range.
    #[error("{api:?} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
    },
    /// The request holds more array elements and tagged fields than
    /// `request.max.array.elements`; decoding stopped before allocating them.
    #[error(
        "{api:?} v{version} request holds more than {limit} array elements and tagged fields (request.max.array.elements)"
    )]
    TooManyElements {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The limit.
        limit: usize,
    },
    /// The header or body does not decode.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
}
