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

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, RequestKind, TopicName};

use crate::legacy_wire::WireReader;
use crate::request::{DecodeError, DecodedRequest};

/// The smallest a topic (name length, partition count) and a partition
/// (index, offset, timestamp, metadata length) are on the wire.
const MIN_TOPIC_BYTES: usize = 2 + 4;
const MIN_PARTITION_BYTES: usize = 4 + 8 + 8 + 2;

/// Decodes an OffsetCommit v1 frame (without its length prefix) into the v2
/// request it is, with at most `max_elements` topics and partitions; also
/// returns how many it built.
pub fn decode(frame: Bytes, max_elements: usize) -> Result<(DecodedRequest, usize), DecodeError> {
    let (mut header, mut r) = WireReader::new(frame, ApiKey::OffsetCommit, 1, max_elements)?;
    let group_id = r.string("group id")?;
    let generation_id = r.i32("generation id")?;
    let member_id = r.string("member id")?;
    let topic_count = r.count(MIN_TOPIC_BYTES, "topics")?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r.string("topic name")?;
        let partition_count = r.count(MIN_PARTITION_BYTES, "partitions")?;
        let mut partitions = Vec::with_capacity(partition_count);
        for _ in 0..partition_count {
            let index = r.i32("partition")?;
            let offset = r.i64("offset")?;
            let _commit_timestamp = r.i64("commit timestamp")?;
            let metadata = r.nullable_string("metadata")?;
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
        r.used(),
    ))
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
