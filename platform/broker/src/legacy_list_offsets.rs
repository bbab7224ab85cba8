//! ListOffsets v0, decoded and answered by hand: Kafka 4 no longer serves
//! it (KIP-896) and the crate's schemas no longer hold it, but Burrow 1.2
//! (Debian 12's `burrow`) asks every partition's end offset with it,
//! whatever Kafka version it is configured for, and so cannot report lag
//! without it.
//!
//! v0 is v1 with a `max_num_offsets` after each partition's timestamp, and
//! answers an array of offsets (`old_style_offsets`) where v1 answers a
//! timestamp and an offset. It is served by the v1 handler: the answer
//! holds that one offset (none on an error, or when `max_num_offsets` is 0).
//! Kafka before 4 answered a v0 timestamp lookup with the base offsets of
//! the segments older than the timestamp; here it is v1's first offset at or
//! after the timestamp. Earliest (-2) and latest (-1), what clients ask, are
//! the same in both.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse, TopicName};

use crate::legacy_wire::WireReader;
use crate::request::DecodeError;

/// A decoded ListOffsets v0.
#[derive(Debug)]
pub struct LegacyListOffsets {
    /// Echoed in the answer.
    pub correlation_id: i32,
    /// The request in v1's shape, for the v1 handler.
    pub request: ListOffsetsRequest,
    /// Each partition's `max_num_offsets`, in request order.
    pub max_num_offsets: Vec<i32>,
}

/// The smallest a topic (name length, partition count) and a partition
/// (index, timestamp, max_num_offsets) are on the wire.
const MIN_TOPIC_BYTES: usize = 2 + 4;
const MIN_PARTITION_BYTES: usize = 4 + 8 + 4;

/// Decodes a ListOffsets v0 frame (without its length prefix), with at most
/// `max_elements` topics and partitions; also returns how many it built.
pub fn decode(
    frame: Bytes,
    max_elements: usize,
) -> Result<(LegacyListOffsets, usize), DecodeError> {
    let (header, mut r) = WireReader::new(frame, ApiKey::ListOffsets, 0, max_elements)?;
    let replica_id = r.i32("replica id")?;
    let topic_count = r.count(MIN_TOPIC_BYTES, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    let mut max_num_offsets = Vec::new();
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(MIN_PARTITION_BYTES, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition")?;
            let timestamp = r.i64("timestamp")?;
            max_num_offsets.push(r.i32("max_num_offsets")?);
            partitions.push(
                ListOffsetsPartition::default()
                    .with_partition_index(index)
                    .with_timestamp(timestamp),
            );
        }
        topics.push(
            ListOffsetsTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions),
        );
    }
    let request = ListOffsetsRequest::default()
        .with_replica_id(replica_id.into())
        .with_topics(topics);
    Ok((
        LegacyListOffsets {
            correlation_id: header.correlation_id,
            request,
            max_num_offsets,
        },
        r.used(),
    ))
}

/// The v0 answer (length prefix included) to `legacy`, from the v1
/// handler's `response`, which answers each partition in request order.
pub fn encode(legacy: &LegacyListOffsets, response: &ListOffsetsResponse) -> BytesMut {
    let mut max = legacy.max_num_offsets.iter();
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    buf.put_i32(legacy.correlation_id);
    buf.put_i32(response.topics.len() as i32);
    for topic in &response.topics {
        buf.put_i16(topic.name.len() as i16);
        buf.put_slice(topic.name.as_bytes());
        buf.put_i32(topic.partitions.len() as i32);
        for p in &topic.partitions {
            let wanted = max.next().copied().unwrap_or(1);
            buf.put_i32(p.partition_index);
            buf.put_i16(p.error_code);
            if p.error_code == 0 && p.offset >= 0 && wanted > 0 {
                buf.put_i32(1);
                buf.put_i64(p.offset);
            } else {
                buf.put_i32(0);
            }
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
        f.put_i16(ApiKey::ListOffsets as i16);
        f.put_i16(0);
        f.put_i32(7);
        f.put_i16(-1); // null client id
        f.put_slice(body);
        f.freeze()
    }

    #[test]
    fn decodes_topics_partitions_and_max_offsets() {
        let mut body = BytesMut::new();
        body.put_i32(-1);
        body.put_i32(1);
        body.put_i16(1);
        body.put_slice(b"t");
        body.put_i32(2);
        for (index, ts, max) in [(0, -1i64, 1), (1, -2, 3)] {
            body.put_i32(index);
            body.put_i64(ts);
            body.put_i32(max);
        }
        let (legacy, used) = decode(frame(&body), 100).expect("decodes");
        assert_eq!(used, 3);
        assert_eq!(legacy.correlation_id, 7);
        assert_eq!(legacy.max_num_offsets, vec![1, 3]);
        let t = &legacy.request.topics[0];
        assert_eq!(t.name.as_str(), "t");
        assert_eq!(
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.timestamp))
                .collect::<Vec<_>>(),
            vec![(0, -1), (1, -2)]
        );
    }

    /// Every truncation of a valid request is refused, none panics.
    #[test]
    fn truncations_are_refused() {
        let mut body = BytesMut::new();
        body.put_i32(-1);
        body.put_i32(2);
        for name in [&b"ab"[..], b"c"] {
            body.put_i16(name.len() as i16);
            body.put_slice(name);
            body.put_i32(2);
            for index in 0..2 {
                body.put_i32(index);
                body.put_i64(-1);
                body.put_i32(1);
            }
        }
        assert!(decode(frame(&body), 100).is_ok());
        for len in 0..body.len() {
            assert!(decode(frame(&body[..len]), 100).is_err(), "{len} bytes");
        }
    }

    /// Counts larger than the frame, negative counts and lengths, a
    /// truncated partition and counts past the element limit are refused
    /// before anything is allocated for them.
    #[test]
    fn hostile_counts_are_refused() {
        let mut huge = BytesMut::new();
        huge.put_i32(-1);
        huge.put_i32(i32::MAX);
        assert!(matches!(
            decode(frame(&huge), 100),
            Err(DecodeError::Malformed { .. })
        ));

        let mut negative = BytesMut::new();
        negative.put_i32(-1);
        negative.put_i32(-5);
        assert!(matches!(
            decode(frame(&negative), 100),
            Err(DecodeError::Malformed { .. })
        ));

        let mut name = BytesMut::new();
        name.put_i32(-1);
        name.put_i32(1);
        name.put_i16(-3);
        name.put_i32(0);
        assert!(matches!(
            decode(frame(&name), 100),
            Err(DecodeError::Malformed { .. })
        ));

        let mut truncated = BytesMut::new();
        truncated.put_i32(-1);
        truncated.put_i32(1);
        truncated.put_i16(1);
        truncated.put_slice(b"t");
        truncated.put_i32(1);
        truncated.put_i32(0);
        truncated.put_i64(-1);
        assert!(matches!(
            decode(frame(&truncated), 100),
            Err(DecodeError::Malformed { .. })
        ));

        let mut many = BytesMut::new();
        many.put_i32(-1);
        many.put_i32(1);
        many.put_i16(1);
        many.put_slice(b"t");
        many.put_i32(20);
        for i in 0..20 {
            many.put_i32(i);
            many.put_i64(-1);
            many.put_i32(1);
        }
        assert!(matches!(
            decode(frame(&many), 10),
            Err(DecodeError::TooManyElements { limit: 10, .. })
        ));
        assert!(decode(frame(&many), 100).is_ok());
        assert!(matches!(
            decode(frame(&[0, 0]), 100),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
