//! Committed offsets as records of the internal topic `__consumer_offsets`,
//! written through the same partition log as any data and read back when
//! the broker starts.
//!
//! Records use Kafka's own schemas, so Kafka tools that decode this topic
//! understand them:
//!
//! - key, version 1 (offset commit): `i16 version = 1`, `string group`,
//!   `string topic`, `i32 partition` (strings: `i16` length + UTF-8);
//! - value, version 3: `i16 version = 3`, `i64 offset`, `i32 leader epoch`,
//!   `string metadata`, `i64 commit timestamp (ms)`;
//! - a null value is a tombstone: the offset was deleted (OffsetDelete,
//!   DeleteGroups).
//!
//! Keys of other versions (2 = group metadata, written by Kafka) are
//! skipped on load. The topic is created on the first commit with
//! `offsets.topic.num.partitions` partitions and `cleanup.policy=compact`;
//! a group's records go to partition `abs(java hashCode(group)) % N` as in
//! Kafka.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use fjord_log::{BatchBuilder, LogError};
use kafka_protocol::ResponseError;

use super::coordinator::GroupCoordinator;
use super::state::CommittedOffset;
use crate::clock::now_ms;
use crate::error::GroupError;
use crate::metadata::{Metadata, NewTopic, Replication};
use crate::partition::Partition;
use crate::topic_registry::{Topic, TopicRegistry};

/// The internal topic's name (Kafka's).
pub(crate) const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why a stored record could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OffsetsRecordError {
    /// The bytes end before the schema does.
    #[error("record truncated")]
    Truncated,
    /// A string is not UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// A value version this broker does not know.
    #[error("unknown value version {0}")]
    UnknownValueVersion(i16),
}

/// Java's `String.hashCode` (over UTF-16 code units), which Kafka uses to
/// place a group.
fn java_hash(text: &str) -> i32 {
    text.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of `__consumer_offsets` that holds `group`'s records.
pub(crate) fn partition_for(group: &str, partitions: i32) -> i32 {
    // Kafka's Utils.abs: masks the sign bit, so i32::MIN maps to 0.
    (java_hash(group) & 0x7fff_ffff) % partitions.max(1)
}

pub(super) fn put_string(buf: &mut BytesMut, text: &str) {
    // Group, topic and metadata lengths are checked (≤ 4096 metadata,
    // ≤ 249 topic); group ids are clamped rather than wrapped.
    let len = text.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&text.as_bytes()[..len]);
}

pub(super) fn get_string(buf: &mut Bytes) -> Result<String, OffsetsRecordError> {
    if buf.remaining() < 2 {
        return Err(OffsetsRecordError::Truncated);
    }
    let len = buf.get_i16();
    let len = usize::try_from(len).map_err(|_| OffsetsRecordError::Truncated)?;
    if buf.remaining() < len {
        return Err(OffsetsRecordError::Truncated);
    }
    String::from_utf8(buf.split_to(len).to_vec()).map_err(|_| OffsetsRecordError::NotUtf8)
}

/// The key of an offset commit record.
pub(crate) fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(8 + group.len() + topic.len());
    buf.put_i16(1);
    put_string(&mut buf, group);
    put_string(&mut buf, topic);
    buf.put_i32(partition);
    buf.freeze()
}

/// The value of an offset commit record.
pub(crate) fn offset_value(offset: &CommittedOffset) -> Bytes {
    let mut buf = BytesMut::with_capacity(24 + offset.metadata.len());
    buf.put_i16(3);
    buf.put_i64(offset.offset);
    buf.put_i32(offset.leader_epoch);
    put_string(&mut buf, &offset.metadata);
    buf.put_i64(offset.commit_timestamp_ms);
    buf.freeze()
}

/// `(group, topic, partition)` of an offset commit key; `None` for other
/// key versions.
fn decode_key(mut key: Bytes) -> Result<Option<(String, String, i32)>, OffsetsRecordError> {
    if key.remaining() < 2 {
        return Err(OffsetsRecordError::Truncated);
    }
    let version = key.get_i16();
    if !matches!(version, 0 | 1) {
        return Ok(None);
    }
    let group = get_string(&mut key)?;
    let topic = get_string(&mut key)?;
    if key.remaining() < 4 {
        return Err(OffsetsRecordError::Truncated);
    }
    Ok(Some((group, topic, key.get_i32())))
}

/// An offset commit value of any of Kafka's versions (0–3).
fn decode_value(mut value: Bytes) -> Result<CommittedOffset, OffsetsRecordError> {
    let need = |buf: &Bytes, n: usize| {
        if buf.remaining() < n {
            Err(OffsetsRecordError::Truncated)
        } else {
            Ok(())
        }
    };
    need(&value, 2)?;
    let version = value.get_i16();
    if !(0..=3).contains(&version) {
        return Err(OffsetsRecordError::UnknownValueVersion(version));
    }
    need(&value, 8)?;
    let offset = value.get_i64();
    let leader_epoch = if version >= 3 {
        need(&value, 4)?;
        value.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut value)?;
    need(&value, 8)?;
    let commit_timestamp_ms = value.get_i64();
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// One record batch of `(key, value)` records (value `None`: tombstone).
fn encode_batch(records: &[(Bytes, Option<Bytes>)]) -> Result<Vec<u8>, LogError> {
    let now = now_ms();
    let mut batch = BatchBuilder::with_capacity(records.len());
    for (key, value) in records {
        batch.push(now, Some(key.clone()), value.clone());
    }
    batch.build()
}

/// What the offsets topic is written with: the metadata frontend that
/// creates it, and from the broker's config its partition count
/// (`offsets.topic.num.partitions`) and how long a commit waits for the
/// in-sync replicas (`offsets.commit.timeout.ms`).
#[derive(Debug)]
pub(crate) struct OffsetsTopic {
    pub metadata: Metadata,
    pub partitions: i32,
    pub commit_timeout: Duration,
}

/// The offsets topic, created with the configured partition count on first
/// use. In a cluster it is replicated like any topic, so coordination
/// survives the loss of a broker (Kafka's offsets.topic.replication.factor,
/// 3, or fewer while fewer brokers are up).
pub(crate) async fn topic(offsets: &OffsetsTopic) -> Result<Arc<Topic>, GroupError> {
    let topic = NewTopic {
        partitions: Some(offsets.partitions),
        replication: Replication::Internal,
        // Compaction keeps the last commit per key; nothing is deleted by
        // time (retention is per offset, by `offsets.retention.minutes`, in
        // the coordinator).
        configs: vec![("cleanup.policy".to_owned(), "compact".to_owned())],
        ..NewTopic::named(OFFSETS_TOPIC)
    };
    match offsets.metadata.create_or_get(topic, Duration::ZERO).await {
        Ok(topic) => Ok(topic),
        // Too few brokers yet, or created by another broker and not known
        // here yet: clients retry, as with Kafka.
        Err(e)
            if e.code == ResponseError::CoordinatorNotAvailable.code()
                || e.code == ResponseError::TopicAlreadyExists.code() =>
        {
            tracing::debug!(error = %e.message, "__consumer_offsets not created yet");
            Err(GroupError::CoordinatorNotAvailable)
        }
        Err(e) => {
            tracing::error!(error = %e.message, "cannot create __consumer_offsets");
            Err(GroupError::CoordinatorNotAvailable)
        }
    }
}

/// Appends `records` of `group` to its partition of the offsets topic.
pub(crate) async fn append(
    offsets: &OffsetsTopic,
    group: &str,
    records: &[(Bytes, Option<Bytes>)],
) -> Result<(), GroupError> {
    if records.is_empty() {
        return Ok(());
    }
    append_batch(offsets, group, |_| encode_batch(records)).await?;
    Ok(())
}

/// Appends the batch `encode` makes to `group`'s partition of the offsets
/// topic (waiting for the in-sync replicas as a commit does). Returns the
/// partition's index. `encode` gets the time to stamp the records with.
pub(crate) async fn append_batch(
    offsets: &OffsetsTopic,
    group: &str,
    encode: impl FnOnce(i64) -> Result<Vec<u8>, LogError>,
) -> Result<i32, GroupError> {
    let topic = topic(offsets).await?;
    let index = partition_for(group, topic.partition_count());
    let partition = topic
        .partition(index)
        .filter(|p| p.is_leader())
        .ok_or(GroupError::NotCoordinator)?;
    let batch = encode(now_ms()).map_err(|e| {
        tracing::error!(error = %e, "cannot encode an offsets batch");
        GroupError::Encode(e)
    })?;
    let info = partition.append(batch).await.map_err(|e| {
        tracing::warn!(%group, error = %e, "offsets not persisted");
        GroupError::NotPersisted(e)
    })?;
    // Replicated: a commit counts once the in-sync replicas have it (Kafka
    // writes offsets with acks=all), so a new coordinator has it too.
    if partition.is_replicated() {
        partition
            .wait_committed(info.last_offset + 1, offsets.commit_timeout)
            .await
            .map_err(GroupError::NotReplicated)?;
    }
    Ok(index)
}

/// Replays `__consumer_offsets` (if it exists) into `coordinator`; later
/// records win, tombstones delete. Returns the number of records applied.
/// A record that does not decode is skipped with a warning: one bad record
/// must not cost every group its offsets.
pub(crate) fn load(registry: &TopicRegistry, coordinator: &GroupCoordinator) -> usize {
    let Some(topic) = registry.get(OFFSETS_TOPIC) else {
        return 0;
    };
    topic
        .partitions()
        .iter()
        .map(|partition| load_partition(coordinator, partition, partition.high_watermark()))
        .sum()
}

/// Replays one partition of `__consumer_offsets` up to `end` into
/// `coordinator`. Returns the number of records applied.
pub(crate) fn load_partition(
    coordinator: &GroupCoordinator,
    partition: &Partition,
    end: i64,
) -> usize {
    let mut applied = 0;
    let mut next = partition.log_start_offset();
    while next < end {
        let read = match partition.log().read(next, 1 << 20, end) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(partition = partition.index(), error = %e, "cannot read __consumer_offsets");
                break;
            }
        };
        let Some(bytes) = read.slice.and_then(|s| s.bytes().ok()) else {
            break;
        };
        let before = next;
        let limits = fjord_log::DecodeLimits::of(&partition.log().config());
        let mut at = 0;
        while let Ok(header) = fjord_log::BatchHeader::parse(&bytes[at..]) {
            // A compacted batch may have lost records, or all of them
            // (an empty batch): go on after its last offset, not its
            // last record's.
            next = next.max(header.next_offset());
            let Some(raw) = bytes.get(at..at + header.size()) else {
                break;
            };
            at += header.size();
            let batch = match fjord_log::decode_batch(raw, limits) {
                Ok(batch) => batch,
                Err(e) => {
                    // Bounded whatever it holds; skipped, not fatal: one
                    // bad batch must not cost every group its offsets.
                    tracing::warn!(
                        topic = OFFSETS_TOPIC,
                        partition = partition.index(),
                        offset = header.base_offset,
                        error = %e,
                        "undecodable batch in __consumer_offsets skipped"
                    );
                    continue;
                }
            };
            if header.is_control() {
                // A transaction marker: completes that producer's pending
                // offsets written before it to this partition.
                match fjord_log::TxnMarker::parse(raw) {
                    Ok(Some(marker)) if header.last_offset() >= before => {
                        coordinator.complete_txn(
                            partition.index(),
                            marker.producer_id,
                            marker.commit,
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "bad control batch skipped"),
                }
                continue;
            }
            // Offsets of a transaction: pending until its marker (which may
            // come after `end`, or later still).
            let transactional = header.attributes & fjord_log::TRANSACTIONAL_ATTRIBUTE != 0;
            for record in batch.records() {
                if record.offset < before {
                    continue;
                }
                let Some(key) = record.key.map(Bytes::copy_from_slice) else {
                    continue;
                };
                let value = record.value.map(Bytes::copy_from_slice);
                if let Some(group) = super::metadata_record::decode_group_key(&key) {
                    let restored = group.and_then(|g| {
                        value
                            .map(super::metadata_record::decode_generation)
                            .transpose()
                            .map(|v| (g, v))
                    });
                    match restored {
                        Ok((group, Some((protocol_type, generation)))) => {
                            coordinator.restore_generation(&group, &protocol_type, generation);
                            applied += 1;
                        }
                        Ok((group, None)) => coordinator.forget_empty(&group),
                        Err(e) => tracing::warn!(error = %e, "bad group record skipped"),
                    }
                    continue;
                }
                match decode_key(key) {
                    Ok(Some((group, topic, p))) => {
                        let value = match value.map(decode_value).transpose() {
                            Ok(value) => value,
                            Err(e) => {
                                tracing::warn!(%group, error = %e, "bad offset record skipped");
                                continue;
                            }
                        };
                        match value {
                            Some(value) if transactional => {
                                coordinator.txn_offsets.lock().add(
                                    header.producer_id,
                                    &group,
                                    partition.index(),
                                    [((topic, p), value)],
                                );
                            }
                            value => coordinator.set_offset(&group, (topic, p), value),
                        }
                        applied += 1;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "bad offsets key skipped"),
                }
            }
        }
        if next == before {
            // Nothing decodable advanced us: stop rather than spin.
            break;
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_placement_matches_kafka() {
        // Java: "".hashCode() == 0, "a" == 97, "ab" == 97 * 31 + 98.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("ab"), 97 * 31 + 98);
        for g in ["g", "my-group", "fjord", "ääkkönen"] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p));
            assert_eq!(p, partition_for(g, 50));
        }
    }

    #[test]
    fn offset_records_round_trip() {
        let offset = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".to_string(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let key = offset_key("g", "t", 7);
        assert_eq!(
            decode_key(key).ok().flatten(),
            Some(("g".to_string(), "t".to_string(), 7))
        );
        assert_eq!(decode_value(offset_value(&offset)).ok(), Some(offset));
        assert!(decode_value(Bytes::from_static(&[0, 3, 0])).is_err());
        assert!(decode_key(Bytes::from_static(&[0, 1, 0, 9])).is_err());
        assert!(matches!(
            decode_key(Bytes::from_static(&[0, 2, 0, 0])),
            Ok(None)
        ));
    }
}
