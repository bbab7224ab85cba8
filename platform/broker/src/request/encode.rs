//! Response encoding: a handler's response to a length-prefixed frame with
//! the right header version. Not for decoding, nor for the v0 layouts the
//! crate's schemas no longer hold (those live beside their legacy decoders).

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Encodes a response frame, length prefix included. ApiVersions always
/// gets response header v0.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<BytesMut, String> {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| format!("response header: {e}"))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| format!("{api_key:?} v{version} response: {e}"))?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}

/// The v0 ApiVersions answer to an ApiVersions request of unknown version.
pub fn encode_unsupported_api_versions(
    correlation_id: i32,
    response: &ApiVersionsResponse,
) -> Result<BytesMut, String> {
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(response.clone()),
    )
}
