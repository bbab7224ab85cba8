//! Decoding one request frame: checks the API and version against the
//! advertised ranges before decoding, bounds the array elements a frame may
//! build, and routes the legacy versions to their own decoders. Not for
//! answering: see `encode`.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::limits::decode_with_element_limit;

use super::legacy_produce::decode_legacy_produce;
use super::{DecodeError, DecodedRequest, Frame};
use crate::versions::{advertised_range, supported_range};

/// `request.max.array.elements`' default.
pub const DEFAULT_MAX_ELEMENTS: usize = 100_000;

/// Decodes one request frame (without its length prefix) with at most
/// [`DEFAULT_MAX_ELEMENTS`] array elements and tagged fields; see
/// [`decode_request_limited`].
pub fn decode_request(frame: Bytes) -> Result<Frame, DecodeError> {
    decode_request_limited(frame, DEFAULT_MAX_ELEMENTS).map(|(frame, _)| frame)
}

/// Decodes one request frame (without its length prefix). Checks the API
/// and version against the advertised ranges *before* decoding, and never
/// panics, whatever the bytes. Every array's and tagged-field section's
/// count is charged against `max_elements` before its elements are built
/// (the element count a frame may hold is no bound: an empty topic name is
/// 2 bytes on the wire and ~90 decoded); also returns how many were built.
pub fn decode_request_limited(
    frame: Bytes,
    max_elements: usize,
) -> Result<(Frame, usize), DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let mut peek = &frame[..8];
    let key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api_key = ApiKey::try_from(key).map_err(|()| DecodeError::UnknownApiKey(key))?;
    let range = supported_range(api_key).ok_or(DecodeError::UnsupportedApi(api_key))?;
    let advertised = advertised_range(api_key).unwrap_or(range);
    if api_key == ApiKey::Produce && (advertised.min..range.min).contains(&version) {
        let (decoded, count) = decode_with_element_limit(max_elements, || {
            decode_legacy_produce(frame, version, correlation_id)
        });
        if count.exceeded {
            return Err(DecodeError::TooManyElements {
                api: api_key,
                version,
                limit: max_elements,
            });
        }
        return decoded.map(|frame| (frame, count.used));
    }
    if api_key == ApiKey::OffsetCommit && (advertised.min..range.min).contains(&version) {
        return crate::legacy_offset_commit::decode(frame, max_elements)
            .map(|(request, used)| (Frame::Request(Box::new(request)), used));
    }
    if api_key == ApiKey::DescribeConfigs && (advertised.min..range.min).contains(&version) {
        return crate::legacy_describe_configs::decode(frame, max_elements)
            .map(|(legacy, used)| (Frame::LegacyDescribeConfigs(Box::new(legacy)), used));
    }
    if api_key == ApiKey::ListOffsets && (advertised.min..range.min).contains(&version) {
        return crate::legacy_list_offsets::decode(frame, max_elements)
            .map(|(legacy, used)| (Frame::LegacyListOffsets(Box::new(legacy)), used));
    }
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions && version > range.max {
            return Ok((Frame::UnsupportedApiVersions { correlation_id }, 0));
        }
        return Err(DecodeError::UnsupportedVersion {
            api: api_key,
            version,
            min: range.min,
            max: range.max,
        });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api: api_key,
        version,
        reason,
    };
    let mut buf = frame;
    let header_version = api_key.request_header_version(version);
    let (decoded, count) = decode_with_element_limit(max_elements, || {
        let header = RequestHeader::decode(&mut buf, header_version)
            .map_err(|e| malformed(format!("header: {e}")))?;
        let body = RequestKind::decode(api_key, &mut buf, version)
            .map_err(|e| malformed(format!("body: {e}")))?;
        Ok((header, body))
    });
    if count.exceeded {
        return Err(DecodeError::TooManyElements {
            api: api_key,
            version,
            limit: max_elements,
        });
    }
    let (header, body) = decoded?;
    Ok((
        Frame::Request(Box::new(DecodedRequest {
            header,
            api_key,
            version,
            body,
        })),
        count.used,
    ))
}
