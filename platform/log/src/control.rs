//! Control batches: the transaction markers (Kafka's `EndTransactionMarker`)
//! a transaction coordinator has a partition leader write when a producer's
//! transaction commits or aborts. Producers may never send such a batch
//! (the validator refuses the control bit); the log writes them only
//! through [`Log::append_control`](crate::Log::append_control).
//!
//! A marker is one batch with the transactional and control attributes,
//! the producer's id and epoch, no sequence, and one record whose key is
//! `i16 version (0), i16 type (0 abort, 1 commit)` and whose value is
//! `i16 version (0), i32 coordinator epoch` — Kafka's layout, so consumers
//! skip it and read_committed consumers learn the transaction's outcome.

use crate::batch::{BatchHeader, HEADER_LEN};
use crate::error::LogError;
use crate::records::{DecodeLimits, decode_batch, put_varlong};

/// Attribute bit of a transactional batch.
pub const TRANSACTIONAL_ATTRIBUTE: i16 = 0x10;
/// Attribute bit of a control batch.
pub const CONTROL_ATTRIBUTE: i16 = 0x20;

/// Control record type of an aborted transaction's marker.
const ABORT: i16 = 0;
/// Control record type of a committed transaction's marker.
const COMMIT: i16 = 1;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch, as the coordinator knows it.
    pub producer_epoch: i16,
    /// Commit (true) or abort (false).
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

impl TxnMarker {
    /// The marker as one control batch at base offset 0 (the append gives
    /// it its offset), stamped with `timestamp` (ms).
    pub fn to_batch(&self, timestamp: i64) -> Vec<u8> {
        let mut key = Vec::with_capacity(4);
        key.extend_from_slice(&0i16.to_be_bytes());
        key.extend_from_slice(&(if self.commit { COMMIT } else { ABORT }).to_be_bytes());
        let mut value = Vec::with_capacity(6);
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&self.coordinator_epoch.to_be_bytes());
        // One record: attributes, timestamp delta, offset delta, key,
        // value, no header.
        let mut body = vec![0u8];
        put_varlong(&mut body, 0);
        put_varlong(&mut body, 0);
        put_varlong(&mut body, key.len() as i64);
        body.extend_from_slice(&key);
        put_varlong(&mut body, value.len() as i64);
        body.extend_from_slice(&value);
        put_varlong(&mut body, 0);
        let mut records = Vec::with_capacity(body.len() + 2);
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
        let header = BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: TRANSACTIONAL_ATTRIBUTE | CONTROL_ATTRIBUTE,
            last_offset_delta: 0,
            base_timestamp: timestamp,
            max_timestamp: timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: -1,
            records_count: 1,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + records.len());
        header.write(&records, &mut out);
        out
    }

    /// The marker a stored control batch (whole, header included) holds;
    /// `Ok(None)` for a control batch whose record is not a transaction
    /// marker (another control type Kafka may define), an error for a batch
    /// that is not a control batch or does not decode.
    pub fn parse(batch: &[u8]) -> Result<Option<TxnMarker>, LogError> {
        let decoded = decode_batch(batch, DecodeLimits::default())?;
        let header = *decoded.header();
        if !header.is_control() {
            return Err(LogError::invalid("not a control batch"));
        }
        let Some(record) = decoded.records().next() else {
            return Ok(None);
        };
        let key = record.key.unwrap_or_default();
        if key.len() < 4 {
            return Err(LogError::corrupt("control record key shorter than 4 bytes"));
        }
        let kind = i16::from_be_bytes([key[2], key[3]]);
        let commit = match kind {
            COMMIT => true,
            ABORT => false,
            _ => return Ok(None),
        };
        let value = record.value.unwrap_or_default();
        let coordinator_epoch = match value.get(2..6) {
            Some(v) => i32::from_be_bytes([v[0], v[1], v[2], v[3]]),
            None => -1,
        };
        Ok(Some(TxnMarker {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            commit,
            coordinator_epoch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_in_kafkas_layout() {
        for commit in [true, false] {
            let marker = TxnMarker {
                producer_id: 42,
                producer_epoch: 7,
                commit,
                coordinator_epoch: 3,
            };
            let batch = marker.to_batch(1_700_000_000_000);
            let header = crate::batch::validate(&batch).unwrap();
            assert_eq!(header.attributes, 0x30);
            assert_eq!((header.producer_id, header.producer_epoch), (42, 7));
            assert_eq!((header.records_count, header.base_sequence), (1, -1));
            let decoded = decode_batch(&batch, DecodeLimits::default()).unwrap();
            let record = decoded.records().next().unwrap();
            assert_eq!(record.key, Some(&[0, 0, 0, commit as u8][..]));
            assert_eq!(record.value, Some(&[0, 0, 0, 0, 0, 3][..]));
            assert_eq!(TxnMarker::parse(&batch).unwrap(), Some(marker));
        }
    }

    #[test]
    fn a_data_batch_is_not_a_marker() {
        let mut builder = crate::BatchBuilder::new();
        builder.push(1, None, Some(bytes::Bytes::from("v")));
        assert!(TxnMarker::parse(&builder.build().unwrap()).is_err());
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;
    use crate::{Log, LogConfig};

    #[test]
    fn the_log_appends_markers_but_refuses_them_from_producers() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let marker = TxnMarker {
            producer_id: 1,
            producer_epoch: 0,
            commit: false,
            coordinator_epoch: 0,
        };
        assert!(log.append(&mut marker.to_batch(1), 0).is_err());
        assert_eq!(log.log_end_offset(), 0);
        let info = log.append_control(&marker, 4).unwrap();
        assert_eq!((info.first_offset, log.log_end_offset()), (0, 1));
        let read = log.read(0, 1 << 20, 1).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        assert_eq!(
            crate::batch::validate(&bytes)
                .unwrap()
                .partition_leader_epoch,
            4
        );
        assert_eq!(TxnMarker::parse(&bytes).unwrap(), Some(marker));
    }
}
