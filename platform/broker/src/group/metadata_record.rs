//! Group metadata records of `__consumer_offsets`: Kafka's key version 2
//! (`i16 2`, `string group`) and value version 3 (protocol type,
//! generation, protocol, leader, state timestamp, and the members with
//! their subscription and assignment), so Kafka tooling can decode them.
//!
//! They are written whenever a group gets a new generation (the periodic
//! tick writes the groups marked dirty), and a tombstone when a group is
//! deleted or forgotten. On load only the generation and protocol type are
//! restored: members are not, they rejoin — the group comes back Empty with
//! its generation, so generation ids keep growing across restarts.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::coordinator::GroupCoordinator;
use super::offsets_topic::{OffsetsRecordError, get_string, put_string};
use super::state::Group;

fn put_nullable(buf: &mut BytesMut, text: Option<&str>) {
    match text {
        Some(t) => put_string(buf, t),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    buf.put_i32(bytes.len() as i32);
    buf.put_slice(bytes);
}

/// The key of `group`'s metadata record.
pub(crate) fn group_key(group: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + group.len());
    buf.put_i16(2);
    put_string(&mut buf, group);
    buf.freeze()
}

/// The group id of a metadata key; `None` for other key versions.
pub(crate) fn decode_group_key(key: &Bytes) -> Option<Result<String, OffsetsRecordError>> {
    if key.len() < 2 || i16::from_be_bytes([key[0], key[1]]) != 2 {
        return None;
    }
    let mut rest = key.slice(2..);
    Some(get_string(&mut rest))
}

/// Kafka's GroupMetadataValue v3 of `group` as it is now.
pub(crate) fn group_value(group: &Group, now_ms: i64) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(3);
    put_string(&mut buf, group.protocol_type.as_deref().unwrap_or(""));
    buf.put_i32(group.generation);
    put_nullable(&mut buf, group.protocol_name.as_deref());
    put_nullable(&mut buf, group.leader.as_deref());
    buf.put_i64(now_ms);
    let protocol = group.protocol_name.clone().unwrap_or_default();
    buf.put_i32(group.members.len() as i32);
    for m in group.members.values() {
        put_string(&mut buf, &m.id);
        put_nullable(&mut buf, m.instance_id.as_deref());
        put_string(&mut buf, &m.client_id);
        put_string(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.metadata(&protocol));
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// `(protocol type, generation)` of a metadata value (versions 0–3 share
/// this prefix).
pub(crate) fn decode_generation(mut value: Bytes) -> Result<(String, i32), OffsetsRecordError> {
    if value.remaining() < 2 {
        return Err(OffsetsRecordError::Truncated);
    }
    let version = value.get_i16();
    if !(0..=3).contains(&version) {
        return Err(OffsetsRecordError::UnknownValueVersion(version));
    }
    let protocol_type = get_string(&mut value)?;
    if value.remaining() < 4 {
        return Err(OffsetsRecordError::Truncated);
    }
    Ok((protocol_type, value.get_i32()))
}

impl GroupCoordinator {
    /// The group metadata records to write: `(group, key, value)` for every
    /// group with a new generation, and tombstones for forgotten groups.
    pub(crate) fn take_metadata_writes(&self, now_ms: i64) -> Vec<(String, Bytes, Option<Bytes>)> {
        let mut writes = Vec::new();
        for group in self.lock().values_mut().filter(|g| g.metadata_dirty) {
            group.metadata_dirty = false;
            writes.push((
                group.id.clone(),
                group_key(&group.id),
                Some(group_value(group, now_ms)),
            ));
        }
        let forgotten = std::mem::take(&mut *self.forgotten.lock());
        for id in forgotten {
            writes.push((id.clone(), group_key(&id), None));
        }
        writes
    }

    /// Restores a group's generation from its metadata record (members are
    /// not restored: they rejoin).
    pub(crate) fn restore_generation(&self, group_id: &str, protocol_type: &str, generation: i32) {
        let mut groups = self.lock();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id));
        group.generation = generation;
        group.protocol_type = (!protocol_type.is_empty()).then(|| protocol_type.to_string());
    }

    /// A metadata tombstone while loading: the group is gone unless offsets
    /// of it come later.
    pub(crate) fn forget_empty(&self, group_id: &str) {
        let mut groups = self.lock();
        if groups.get(group_id).is_some_and(|g| g.offsets.is_empty()) {
            groups.remove(group_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::group::coordinator::GroupSettings;

    #[test]
    fn only_groups_with_a_metadata_record_get_a_tombstone() {
        let groups = GroupCoordinator::new(GroupSettings::for_tests());
        // Looked up only (generation 0), and once joined (generation 3):
        // both are empty with no offsets, so both are dropped from memory.
        groups.restore_generation("joined-once", "consumer", 3);
        groups
            .lock()
            .insert("looked-up".to_string(), Group::new("looked-up"));
        groups.tick(Instant::now(), 1);
        assert!(groups.lock().is_empty());
        let writes = groups.take_metadata_writes(1);
        let ids: Vec<_> = writes
            .iter()
            .map(|(id, _, value)| (id.as_str(), value.is_none()))
            .collect();
        assert_eq!(ids, [("joined-once", true)]);
    }

    #[test]
    fn group_records_round_trip() {
        let mut group = Group::new("g");
        group.generation = 7;
        group.protocol_type = Some("consumer".to_string());
        let key = group_key("g");
        assert_eq!(
            decode_group_key(&key).and_then(Result::ok),
            Some("g".to_string())
        );
        assert!(decode_group_key(&Bytes::from_static(&[0, 1, 0, 1, b'g'])).is_none());
        let value = group_value(&group, 1);
        assert_eq!(
            decode_generation(value).ok(),
            Some(("consumer".to_string(), 7))
        );
    }
}
