//! Produce v0–2: advertised (so old clients find a version they speak) but
//! not served. Decodes such a request only to answer every partition it
//! names with UNSUPPORTED_VERSION, in the v0–2 layout.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader};
use kafka_protocol::protocol::Decodable;

use super::{DecodeError, Frame};

/// Decodes a Produce v0–2 to refuse it: its header is v1, and its body is
/// v3's without the leading nullable transactional id, so it is decoded as
/// v3 behind a null one.
pub(super) fn decode_legacy_produce(
    frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<Frame, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        api: ApiKey::Produce,
        version,
        reason,
    };
    let mut buf = frame;
    RequestHeader::decode(&mut buf, 1).map_err(|e| malformed(format!("header: {e}")))?;
    let mut body = BytesMut::with_capacity(buf.len() + 2);
    body.put_i16(-1);
    body.put_slice(&buf);
    let request = ProduceRequest::decode(&mut body.freeze(), 3)
        .map_err(|e| malformed(format!("body: {e}")))?;
    Ok(Frame::LegacyProduce {
        correlation_id,
        version,
        request: Box::new(request),
    })
}

/// The answer to a Produce v0–2 ([`Frame::LegacyProduce`]): every
/// partition UNSUPPORTED_VERSION, in the v0–2 layout (which the crate's
/// schemas no longer hold): per partition index, error code, base offset
/// (-1) and from v2 the log append time (-1); from v1 a throttle time.
pub fn encode_legacy_produce_refusal(
    correlation_id: i32,
    version: i16,
    request: &ProduceRequest,
) -> BytesMut {
    let code = kafka_protocol::ResponseError::UnsupportedVersion.code();
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(request.topic_data.len() as i32);
    for topic in &request.topic_data {
        let name = topic.name.as_bytes();
        buf.put_i16(name.len() as i16);
        buf.put_slice(name);
        buf.put_i32(topic.partition_data.len() as i32);
        for partition in &topic.partition_data {
            buf.put_i32(partition.index);
            buf.put_i16(code);
            buf.put_i64(-1);
            if version >= 2 {
                buf.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0);
    }
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    buf
}
