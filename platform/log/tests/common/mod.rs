//! Batches made by a real encoder (the `kafka-protocol` crate), shared by
//! the log's tests and benchmarks.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record of a test batch.
pub fn record(key: Option<&[u8]>, value: &[u8], timestamp: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: key.map(Bytes::copy_from_slice),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
    }
}

/// Encodes `records` as one RecordBatch v2 with base offset 0, as a producer would.
pub fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut records = records.to_vec();
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
        // The encoder starts a new batch whenever `offset - sequence`
        // changes; this keeps one batch with base sequence -1 (no producer id).
        r.sequence = i as i32 - 1;
    }
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.to_vec()
}

/// A batch of `count` records of `value_size` bytes, timestamps from `ts`.
pub fn batch(count: usize, value_size: usize, ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let key = format!("key-{i}");
            let value = vec![b'a' + (i % 26) as u8; value_size];
            record(Some(key.as_bytes()), &value, ts + i as i64)
        })
        .collect();
    encode(&records, compression)
}

/// Decodes every record of concatenated batches.
pub fn decode_all(bytes: &[u8]) -> Vec<Record> {
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode batches")
        .into_iter()
        .flat_map(|set| set.records)
        .collect()
}
