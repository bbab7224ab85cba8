//! DescribeConfigs v0, decoded and answered by hand: Kafka 4 no longer
//! serves it (KIP-896) and the crate's schemas no longer hold it, but
//! Sarama 1.22 (Debian 12's) sends it from `ClusterAdmin.ListTopics` and
//! `DescribeConfig`, whatever Kafka version it is configured for.
//!
//! v0 is v1 without `include_synonyms`; its answer has `is_default` where
//! v1 has `config_source`, and no synonyms. It is served by the v1 handler
//! and answered with `is_default` true for DEFAULT_CONFIG (5), as Kafka
//! derived it.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::legacy_wire::WireReader;
use crate::request::DecodeError;

/// A decoded DescribeConfigs v0.
#[derive(Debug)]
pub struct LegacyDescribeConfigs {
    /// Echoed in the answer.
    pub correlation_id: i32,
    /// The request in v1's shape, for the v1 handler.
    pub request: DescribeConfigsRequest,
}

/// The smallest a resource (type, name length, key count) and a key (its
/// length) are on the wire.
const MIN_RESOURCE_BYTES: usize = 1 + 2 + 4;
const MIN_KEY_BYTES: usize = 2;
/// `config_source` of a default.
const DEFAULT_CONFIG: i8 = 5;

/// Decodes a DescribeConfigs v0 frame (without its length prefix), with at
/// most `max_elements` resources and keys; also returns how many it built.
pub fn decode(
    frame: Bytes,
    max_elements: usize,
) -> Result<(LegacyDescribeConfigs, usize), DecodeError> {
    let (header, mut r) = WireReader::new(frame, ApiKey::DescribeConfigs, 0, max_elements)?;
    let resource_count = r.count(MIN_RESOURCE_BYTES, "resources")?;
    let mut resources = Vec::with_capacity(resource_count);
    for _ in 0..resource_count {
        let resource_type = r.i8("resource type")?;
        let name = r.string("resource name")?;
        let keys = match r.nullable_count(MIN_KEY_BYTES, "configuration keys")? {
            None => None,
            Some(n) => Some(
                (0..n)
                    .map(|_| r.string("configuration key"))
                    .collect::<Result<Vec<StrBytes>, _>>()?,
            ),
        };
        resources.push(
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(name)
                .with_configuration_keys(keys),
        );
    }
    Ok((
        LegacyDescribeConfigs {
            correlation_id: header.correlation_id,
            request: DescribeConfigsRequest::default().with_resources(resources),
        },
        r.used(),
    ))
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

/// The v0 answer (length prefix included) to `legacy`, from the v1
/// handler's `response`.
pub fn encode(legacy: &LegacyDescribeConfigs, response: &DescribeConfigsResponse) -> BytesMut {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    buf.put_i32(legacy.correlation_id);
    buf.put_i32(response.throttle_time_ms);
    buf.put_i32(response.results.len() as i32);
    for r in &response.results {
        buf.put_i16(r.error_code);
        put_nullable_string(&mut buf, r.error_message.as_deref());
        buf.put_i8(r.resource_type);
        put_string(&mut buf, &r.resource_name);
        buf.put_i32(r.configs.len() as i32);
        for c in &r.configs {
            put_string(&mut buf, &c.name);
            put_nullable_string(&mut buf, c.value.as_deref());
            buf.put_i8(i8::from(c.read_only));
            buf.put_i8(i8::from(c.config_source == DEFAULT_CONFIG));
            buf.put_i8(i8::from(c.is_sensitive));
        }
    }
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Bytes {
        let mut f = BytesMut::new();
        f.put_i16(ApiKey::DescribeConfigs as i16);
        f.put_i16(0);
        f.put_i32(7);
        f.put_i16(-1); // null client id
        f.put_slice(body);
        f.freeze()
    }

    fn body() -> BytesMut {
        let mut b = BytesMut::new();
        b.put_i32(2);
        b.put_i8(2);
        put_string(&mut b, "t");
        b.put_i32(-1);
        b.put_i8(2);
        put_string(&mut b, "u");
        b.put_i32(1);
        put_string(&mut b, "retention.ms");
        b
    }

    #[test]
    fn decodes_resources_and_keys() {
        let (legacy, used) = decode(frame(&body()), 100).expect("decodes");
        assert_eq!((legacy.correlation_id, used), (7, 3));
        let r = &legacy.request.resources;
        assert_eq!(r[0].resource_name.as_str(), "t");
        assert!(r[0].configuration_keys.is_none());
        assert_eq!(
            r[1].configuration_keys.as_deref().map(|k| k[0].as_str()),
            Some("retention.ms")
        );
    }

    /// Every truncation, a huge count and too many elements are refused;
    /// none panics.
    #[test]
    fn hostile_frames_are_refused() {
        let valid = body();
        for len in 0..valid.len() {
            assert!(decode(frame(&valid[..len]), 100).is_err(), "{len} bytes");
        }
        let mut huge = BytesMut::new();
        huge.put_i32(i32::MAX);
        assert!(matches!(
            decode(frame(&huge), 100),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(frame(&valid), 2),
            Err(DecodeError::TooManyElements { limit: 2, .. })
        ));
    }
}
