//! OffsetCommit v1, decoded by hand: Kafka 4 no longer serves it (KIP-896)
//! and the crate's schemas no longer hold it, but Sarama 1.22 (Debian 12's
//! `golang-github-shopify-sarama-dev`) commits with it unless
//! `Consumer.Offsets.Retention` is set, whatever Kafka version it is
//! configured for — so its consumer groups never commit otherwise.
//!
//! v1 is v2 without the retention time and with a commit timestamp per
//! partition (which Kafka 2.1 stopped honouring, as here: commits expire by
//! `offsets.retention.minutes`). Its answer is v2's, field for field. So a
//! v1 request becomes a v2 one, handled and answered as v2.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, GroupId, OffsetCommitRequest, RequestHeader, RequestKind, TopicName,
};
use kafka_protocol::protocol::Decodable;

use crate::legacy_list_offsets::{get_nullable_string, get_string};
use crate::request::{DecodeError, DecodedRequest};

/// The smallest a topic (name length, partition count) and a partition
/// (index, offset, timestamp, metadata length) are on the wire.
const MIN_TOPIC_BYTES: usize = 2 + 4;
const MIN_PARTITION_BYTES: usize = 4 + 8 + 8 + 2;

/// Decodes an OffsetCommit v1 frame (without its length prefix) into the v2
/// request it is, with at most `max_elements` topics and partitions; also
/// returns how many it built.
pub fn decode(frame: Bytes, max_elements: usize) -> Result<(DecodedRequest, usize), DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        api: ApiKey::OffsetCommit,
        version: 1,
        reason,
    };
    let mut buf = frame;
    let mut header =
        RequestHeader::decode(&mut buf, 1).map_err(|e| malformed(format!("header: {e}")))?;
    let group_id = get_string(&mut buf).map_err(|e| malformed(format!("group id: {e}")))?;
    let generation_id = get_i32(&mut buf).ok_or_else(|| malformed("generation id".into()))?;
    let member_id = get_string(&mut buf).map_err(|e| malformed(format!("member id: {e}")))?;
    let mut used = 0usize;
    let mut count = |buf: &mut Bytes, min_bytes: usize, what: &str| -> Result<usize, DecodeError> {
        let n = get_i32(buf).ok_or_else(|| malformed(format!("{what}: the frame ends")))?;
        let n = usize::try_from(n).map_err(|_| malformed(format!("{what}: negative count {n}")))?;
        // Checked against the bytes after the count, before allocating.
        if n > buf.remaining() / min_bytes {
            return Err(malformed(format!(
                "{what}: {n} elements in {} bytes",
                buf.remaining()
            )));
        }
        used = used.saturating_add(n);
        if used > max_elements {
            return Err(DecodeError::TooManyElements {
                api: ApiKey::OffsetCommit,
                version: 1,
                limit: max_elements,
            });
        }
        Ok(n)
    };
    let topic_count = count(&mut buf, MIN_TOPIC_BYTES, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = get_string(&mut buf).map_err(|e| malformed(format!("topic name: {e}")))?;
        let partition_count = count(&mut buf, MIN_PARTITION_BYTES, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            // The count check left MIN_PARTITION_BYTES for each partition.
            let index = buf.get_i32();
            let offset = buf.get_i64();
            let _commit_timestamp = buf.get_i64();
            let metadata =
                get_nullable_string(&mut buf).map_err(|e| malformed(format!("metadata: {e}")))?;
            partitions.push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(index)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(metadata),
            );
        }
        topics.push(
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id_or_member_epoch(generation_id)
        .with_member_id(member_id)
        .with_retention_time_ms(-1)
        .with_topics(topics);
    // Handled and answered as the v2 it is.
    header.request_api_version = 2;
    Ok((
        DecodedRequest {
            header,
            api_key: ApiKey::OffsetCommit,
            version: 2,
            body: RequestKind::OffsetCommit(request),
        },
        used,
    ))
}

/// Reads an i32, `None` at the end of the frame.
fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};

    fn frame(body: &[u8]) -> Bytes {
        let mut f = BytesMut::new();
        f.put_i16(ApiKey::OffsetCommit as i16);
        f.put_i16(1);
        f.put_i32(7);
        f.put_i16(-1); // null client id
        f.put_slice(body);
        f.freeze()
    }

    fn body(partitions: i32) -> BytesMut {
        let mut b = BytesMut::new();
        b.put_i16(1);
        b.put_slice(b"g");
        b.put_i32(3);
        b.put_i16(1);
        b.put_slice(b"m");
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(partitions);
        for i in 0..partitions {
            b.put_i32(i);
            b.put_i64(10 + i64::from(i));
            b.put_i64(-1);
            if i == 0 {
                b.put_i16(-1);
            } else {
                b.put_i16(2);
                b.put_slice(b"md");
            }
        }
        b
    }

    #[test]
    fn becomes_a_v2_request() {
        let (decoded, used) = decode(frame(&body(2)), 100).expect("decodes");
        assert_eq!((decoded.version, used), (2, 3));
        let RequestKind::OffsetCommit(r) = decoded.body else {
            panic!("not an offset commit");
        };
        assert_eq!(
            (r.group_id.as_str(), r.generation_id_or_member_epoch),
            ("g", 3)
        );
        assert_eq!(r.member_id.as_str(), "m");
        let got: Vec<_> = r.topics[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.committed_metadata.as_deref().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(got, vec![(0, 10, None), (1, 11, Some("md".to_owned()))]);
    }

    /// Every truncation is refused, hostile counts before allocating, and
    /// counts past the element limit; none panics.
    #[test]
    fn hostile_frames_are_refused() {
        let valid = body(2);
        for len in 0..valid.len() {
            assert!(decode(frame(&valid[..len]), 100).is_err(), "{len} bytes");
        }
        let mut huge = body(0);
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            decode(frame(&huge), 100),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(frame(&body(20)), 10),
            Err(DecodeError::TooManyElements { limit: 10, .. })
        ));
    }
}
