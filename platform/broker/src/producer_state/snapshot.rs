//! The producer-state snapshot: the idempotence state of one partition,
//! written at clean shutdown so the next start reads it instead of scanning
//! the whole log.
//!
//! File `producer.snapshot` in the partition directory, little-endian:
//! `"FJPS" version:u8 end_offset:i64 producers:u32
//! (producer_id:i64 epoch:i16 last_write_ms:i64 coordinator_epoch:i32
//! last_timestamp:i64 batches:u8
//! (first_seq:i32 last_seq:i32 first_offset:i64)*)* crc32c:u32` — the CRC
//! covers everything before it. Version 1 (before producers expired) has no
//! `last_write_ms`; its producers count as written when it is read. Versions
//! 1 and 2 have no `coordinator_epoch` nor `last_timestamp` (written before
//! transactions): -1.
//!
//! A snapshot is read once and removed: the state then lives in memory, and
//! a crash before the next clean shutdown falls back to the full scan,
//! which is always right. A damaged or unreadable file is ignored the same
//! way.

use super::{Producer, ProducerStates, StoredBatch};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"FJPS";
const VERSION: u8 = 3;
pub(crate) const FILE_NAME: &str = "producer.snapshot";

/// Where a partition's snapshot lives.
pub(crate) fn path(partition_dir: &Path) -> PathBuf {
    partition_dir.join(FILE_NAME)
}

/// Encodes the state as of `end_offset` (the log end when written).
pub(crate) fn encode(states: &ProducerStates, end_offset: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + states.producers.len() * 80);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&end_offset.to_le_bytes());
    out.extend_from_slice(&(states.producers.len() as u32).to_le_bytes());
    for (id, p) in &states.producers {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&p.epoch.to_le_bytes());
        out.extend_from_slice(&p.last_write_ms.to_le_bytes());
        out.extend_from_slice(&p.coordinator_epoch.to_le_bytes());
        out.extend_from_slice(&p.last_timestamp.to_le_bytes());
        out.push(p.batches.len() as u8);
        for b in &p.batches {
            out.extend_from_slice(&b.first_seq.to_le_bytes());
            out.extend_from_slice(&b.last_seq.to_le_bytes());
            out.extend_from_slice(&b.first_offset.to_le_bytes());
        }
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

/// Decodes a snapshot: the state and the offset it is valid up to. `None`
/// for anything damaged.
pub(crate) fn decode(bytes: &[u8]) -> Option<(ProducerStates, i64)> {
    let (body, crc) = bytes.split_last_chunk::<4>()?;
    if crc32c::crc32c(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let mut r = Reader(body);
    if &r.take::<4>()? != MAGIC {
        return None;
    }
    let version = r.take::<1>()?[0];
    if !(1..=VERSION).contains(&version) {
        return None;
    }
    let read_at = crate::clock::now_ms();
    let end_offset = i64::from_le_bytes(r.take()?);
    let count = u32::from_le_bytes(r.take()?);
    let mut states = ProducerStates::default();
    for _ in 0..count {
        let id = i64::from_le_bytes(r.take()?);
        let epoch = i16::from_le_bytes(r.take()?);
        let last_write_ms = if version >= 2 {
            i64::from_le_bytes(r.take()?)
        } else {
            read_at
        };
        let (coordinator_epoch, last_timestamp) = if version >= 3 {
            (i32::from_le_bytes(r.take()?), i64::from_le_bytes(r.take()?))
        } else {
            (-1, -1)
        };
        let n = r.take::<1>()?[0];
        let mut producer = Producer {
            epoch,
            coordinator_epoch,
            last_timestamp,
            batches: Default::default(),
            last_write_ms,
        };
        for _ in 0..n {
            producer.batches.push_back(StoredBatch {
                first_seq: i32::from_le_bytes(r.take()?),
                last_seq: i32::from_le_bytes(r.take()?),
                first_offset: i64::from_le_bytes(r.take()?),
            });
        }
        states.producers.insert(id, producer);
    }
    r.0.is_empty().then_some((states, end_offset))
}

/// Reads and removes the snapshot of a partition, if there is a usable one.
pub(crate) fn take(partition_dir: &Path) -> Option<(ProducerStates, i64)> {
    let path = path(partition_dir);
    let bytes = std::fs::read(&path).ok()?;
    if let Err(e) = std::fs::remove_file(&path) {
        // Keeping it could apply a stale state after a crash: refuse to use it.
        tracing::warn!(path = %path.display(), error = %e, "cannot remove the producer snapshot; scanning the log instead");
        return None;
    }
    let decoded = decode(&bytes);
    if decoded.is_none() {
        tracing::warn!(path = %path.display(), "damaged producer snapshot ignored; scanning the log instead");
    }
    decoded
}

/// Writes the snapshot (write to a temporary file, then rename).
pub(crate) fn write(
    partition_dir: &Path,
    states: &ProducerStates,
    end_offset: i64,
) -> std::io::Result<()> {
    let path = path(partition_dir);
    let tmp = path.with_extension("snapshot.tmp");
    std::fs::write(&tmp, encode(states, end_offset))?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer_state::Verdict;
    use crate::producer_state::tests::{NOW, header};

    #[test]
    fn roundtrip_and_every_damage_is_refused() {
        let mut s = ProducerStates::default();
        s.record(&header(7, 2, 0, 3), 100, NOW);
        s.record(&header(7, 2, 3, 1), 103, NOW);
        s.record(&header(9, 0, 0, 1), 104, NOW);
        // A marker with a bumped epoch: sequences start over, epoch 0 fenced.
        s.mark(11, 1, 4, NOW.now_ms);
        let bytes = encode(&s, 105);
        let (back, end) = decode(&bytes).expect("decodes");
        assert_eq!(back.producers[&11].coordinator_epoch, 4);
        assert_eq!(back.check(&header(11, 1, 0, 1), NOW), Ok(Verdict::Append));
        assert!(back.check(&header(11, 0, 0, 1), NOW).is_err());
        assert_eq!(end, 105);
        assert_eq!(
            back.check(&header(7, 2, 3, 1), NOW),
            Ok(Verdict::Duplicate(103))
        );
        assert_eq!(
            back.check(&header(9, 0, 0, 1), NOW),
            Ok(Verdict::Duplicate(104))
        );
        assert_eq!(back.check(&header(7, 2, 4, 1), NOW), Ok(Verdict::Append));
        for len in 0..bytes.len() {
            assert!(
                decode(&bytes[..len]).is_none(),
                "a prefix of {len} bytes decoded"
            );
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x40;
            assert!(decode(&flipped).is_none(), "a flip at byte {i} decoded");
        }
    }

    /// A snapshot written before producers expired (version 1) still
    /// loads; its producers count as written when it is read.
    #[test]
    fn a_version_1_snapshot_loads() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        v1.push(1);
        v1.extend_from_slice(&50i64.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&7i64.to_le_bytes());
        v1.extend_from_slice(&2i16.to_le_bytes());
        v1.push(1);
        v1.extend_from_slice(&0i32.to_le_bytes());
        v1.extend_from_slice(&2i32.to_le_bytes());
        v1.extend_from_slice(&40i64.to_le_bytes());
        let crc = crc32c::crc32c(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let (back, end) = decode(&v1).expect("a version 1 snapshot decodes");
        assert_eq!(end, 50);
        let now = crate::producer_state::Expiry {
            now_ms: crate::clock::now_ms(),
            after_ms: 60_000,
        };
        assert_eq!(
            back.check(&header(7, 2, 0, 3), now),
            Ok(Verdict::Duplicate(40))
        );
    }
}
