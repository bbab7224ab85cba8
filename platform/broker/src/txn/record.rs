//! The records of `__transaction_state`, in Kafka's schemas
//! (TransactionLogKey.json, TransactionLogValue.json), so Kafka's tools
//! read ours and a log written by Kafka loads here:
//!
//! - key, version 0: `i16 version = 0`, `string transactional_id`;
//! - value, version 0 (what this broker writes): `i16 version = 0`,
//!   `i64 producer_id`, `i16 producer_epoch`, `i32 txn_timeout_ms`,
//!   `i8 status`, `[] (string topic, [] i32 partition)` (nullable),
//!   `i64 last_update_ms`, `i64 start_ms`;
//! - value, version 1 (Kafka 4.0 with transaction.version 2): the same
//!   fields in the flexible encoding (compact strings and arrays, tagged
//!   fields: 0 previous producer id, 1 next producer id, 2 client
//!   transaction version), decoded and the tags skipped;
//! - a null value is a tombstone: the transactional id expired.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnStatus};

/// Why a stored record could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum TxnRecordError {
    #[error("record truncated")]
    Truncated,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    #[error("unknown value version {0}")]
    UnknownValueVersion(i16),
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
}

fn need(buf: &Bytes, n: usize) -> Result<(), TxnRecordError> {
    if buf.remaining() < n {
        Err(TxnRecordError::Truncated)
    } else {
        Ok(())
    }
}

fn put_string(buf: &mut BytesMut, text: &str) {
    // Transactional ids and topic names are far below i16::MAX bytes
    // (the request decoder bounds them); clamp rather than wrap.
    let len = text.len().min(i16::MAX as usize);
    buf.put_i16(len as i16);
    buf.put_slice(&text.as_bytes()[..len]);
}

fn get_string(buf: &mut Bytes) -> Result<String, TxnRecordError> {
    need(buf, 2)?;
    let len = usize::try_from(buf.get_i16()).map_err(|_| TxnRecordError::Truncated)?;
    need(buf, len)?;
    String::from_utf8(buf.split_to(len).to_vec()).map_err(|_| TxnRecordError::NotUtf8)
}

fn get_varint(buf: &mut Bytes) -> Result<u64, TxnRecordError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        need(buf, 1)?;
        let byte = buf.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(TxnRecordError::Truncated)
}

/// A compact length (stored + 1; 0 is null, returned as `None`).
fn get_compact_len(buf: &mut Bytes) -> Result<Option<usize>, TxnRecordError> {
    let n = get_varint(buf)?;
    if n == 0 {
        return Ok(None);
    }
    let len = usize::try_from(n - 1).map_err(|_| TxnRecordError::Truncated)?;
    // Every element is at least one byte: a length past the buffer is
    // damage, not a reason to allocate.
    need(buf, len.min(buf.remaining() + 1))?;
    Ok(Some(len))
}

fn get_compact_string(buf: &mut Bytes) -> Result<String, TxnRecordError> {
    let len = get_compact_len(buf)?.unwrap_or(0);
    need(buf, len)?;
    String::from_utf8(buf.split_to(len).to_vec()).map_err(|_| TxnRecordError::NotUtf8)
}

fn skip_tags(buf: &mut Bytes) -> Result<(), TxnRecordError> {
    let count = get_varint(buf)?;
    for _ in 0..count {
        let _tag = get_varint(buf)?;
        let size = usize::try_from(get_varint(buf)?).map_err(|_| TxnRecordError::Truncated)?;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(())
}

/// The key of `transactional_id`'s record.
pub(crate) fn key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(0);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The transactional id of a key.
pub(crate) fn decode_key(mut key: Bytes) -> Result<String, TxnRecordError> {
    need(&key, 2)?;
    match key.get_i16() {
        0 => get_string(&mut key),
        v => Err(TxnRecordError::UnknownKeyVersion(v)),
    }
}

/// The value (version 0) of `txn`.
pub(crate) fn value(txn: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(0);
    buf.put_i64(txn.producer_id);
    buf.put_i16(txn.producer_epoch);
    buf.put_i32(txn.timeout_ms);
    buf.put_i8(txn.status as i8);
    let topics = txn.topics();
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        put_string(&mut buf, &topic);
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i64(txn.last_update_ms);
    buf.put_i64(txn.start_ms);
    buf.freeze()
}

/// A value of version 0 or 1, for `transactional_id`.
pub(crate) fn decode_value(
    transactional_id: &str,
    mut value: Bytes,
) -> Result<TxnMetadata, TxnRecordError> {
    need(&value, 2)?;
    let version = value.get_i16();
    if !(0..=1).contains(&version) {
        return Err(TxnRecordError::UnknownValueVersion(version));
    }
    let flexible = version >= 1;
    need(&value, 8 + 2 + 4 + 1)?;
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let raw_status = value.get_i8();
    let status = TxnStatus::from_id(raw_status).ok_or(TxnRecordError::UnknownStatus(raw_status))?;
    let mut partitions = BTreeSet::new();
    let topics = if flexible {
        get_compact_len(&mut value)?
    } else {
        need(&value, 4)?;
        usize::try_from(value.get_i32()).ok()
    };
    for _ in 0..topics.unwrap_or(0) {
        let topic = if flexible {
            get_compact_string(&mut value)?
        } else {
            get_string(&mut value)?
        };
        let count = if flexible {
            get_compact_len(&mut value)?.unwrap_or(0)
        } else {
            need(&value, 4)?;
            usize::try_from(value.get_i32()).unwrap_or(0)
        };
        for _ in 0..count {
            need(&value, 4)?;
            partitions.insert((topic.clone(), value.get_i32()));
        }
        if flexible {
            skip_tags(&mut value)?;
        }
    }
    need(&value, 16)?;
    let last_update_ms = value.get_i64();
    let start_ms = value.get_i64();
    if flexible {
        skip_tags(&mut value)?;
    }
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        status,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnMetadata {
        TxnMetadata {
            transactional_id: "tx".to_owned(),
            producer_id: 1234,
            producer_epoch: 7,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: [
                ("a".to_owned(), 0),
                ("a".to_owned(), 3),
                ("b".to_owned(), 1),
            ]
            .into_iter()
            .collect(),
            start_ms: 1_700_000_000_000,
            last_update_ms: 1_700_000_000_500,
        }
    }

    #[test]
    fn records_round_trip() {
        assert_eq!(decode_key(key("tx")), Ok("tx".to_owned()));
        let txn = sample();
        assert_eq!(decode_value("tx", value(&txn)), Ok(txn));
    }

    #[test]
    fn version_0_layout_is_kafkas() {
        let mut txn = sample();
        txn.partitions = [("t".to_owned(), 2)].into_iter().collect();
        let bytes = value(&txn);
        let mut expected = vec![0, 0];
        expected.extend(1234i64.to_be_bytes());
        expected.extend(7i16.to_be_bytes());
        expected.extend(60_000i32.to_be_bytes());
        expected.push(1);
        expected.extend(1i32.to_be_bytes());
        expected.extend([0, 1, b't']);
        expected.extend(1i32.to_be_bytes());
        expected.extend(2i32.to_be_bytes());
        expected.extend(1_700_000_000_500i64.to_be_bytes());
        expected.extend(1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&bytes[..], &expected[..]);
        assert_eq!(&key("tx")[..], &[0, 0, 0, 2, b't', b'x']);
    }

    #[test]
    fn version_1_flexible_values_decode() {
        // Kafka 4.0's flexible value: compact arrays/strings, tagged fields
        // (a previous producer id, tag 0) after the fixed fields.
        let mut v = vec![0, 1];
        v.extend(99i64.to_be_bytes());
        v.extend(2i16.to_be_bytes());
        v.extend(30_000i32.to_be_bytes());
        v.push(4); // CompleteCommit
        v.push(2); // one topic
        v.extend([2, b't']);
        v.push(3); // two partitions
        v.extend(0i32.to_be_bytes());
        v.extend(5i32.to_be_bytes());
        v.push(0); // topic tags
        v.extend(10i64.to_be_bytes());
        v.extend(9i64.to_be_bytes());
        v.extend([1, 0, 8]);
        v.extend(77i64.to_be_bytes());
        let txn = decode_value("x", Bytes::from(v)).expect("decodes");
        assert_eq!((txn.producer_id, txn.producer_epoch), (99, 2));
        assert_eq!(txn.status, TxnStatus::CompleteCommit);
        assert_eq!(txn.partitions.len(), 2);
        assert_eq!((txn.last_update_ms, txn.start_ms), (10, 9));
    }

    #[test]
    fn damage_is_an_error() {
        assert_eq!(
            decode_value("x", Bytes::from_static(&[0, 0, 1])),
            Err(TxnRecordError::Truncated)
        );
        assert_eq!(
            decode_value("x", Bytes::from_static(&[0, 9])),
            Err(TxnRecordError::UnknownValueVersion(9))
        );
        assert_eq!(
            decode_key(Bytes::from_static(&[0, 1, 0, 0])),
            Err(TxnRecordError::UnknownKeyVersion(1))
        );
    }
}
