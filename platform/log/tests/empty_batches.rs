//! Reads skip batches that compaction emptied when records follow.

mod common;

use fjord_log::{BatchHeader, Log, LogConfig};
use kafka_protocol::records::Compression;

/// A header-only batch (no record) covering `base..=base + delta`, as the
/// cleaner leaves behind.
fn empty_batch(base: i64, delta: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(61);
    b.extend_from_slice(&base.to_be_bytes());
    b.extend_from_slice(&49i32.to_be_bytes()); // batch length
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, set below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&delta.to_be_bytes());
    b.extend_from_slice(&1_000i64.to_be_bytes()); // base timestamp
    b.extend_from_slice(&1_000i64.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&0i32.to_be_bytes()); // records count
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn a_segment_of_empty_batches_is_skipped_when_records_follow() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small segments: each empty batch closes its own segment.
    let config = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).expect("open");
    log.append_as_follower(&mut empty_batch(0, 9))
        .expect("empty 0..9");
    log.append_as_follower(&mut empty_batch(10, 9))
        .expect("empty 10..19");
    let mut records = common::batch(5, 50, 2_000, Compression::None);
    records[0..8].copy_from_slice(&20i64.to_be_bytes());
    log.append_as_follower(&mut records)
        .expect("records 20..24");
    assert!(log.segment_count() >= 3, "{:?}", log.segment_base_offsets());

    // Records follow: the read starts at them.
    let read = log.read(0, 1 << 20, i64::MAX).expect("read");
    let bytes = read.slice.expect("slice").bytes().expect("bytes");
    let first = BatchHeader::parse(&bytes).expect("header");
    assert_eq!((first.base_offset, first.records_count), (20, 5));
    assert_eq!(common::decode_all(&bytes).len(), 5);

    // Nothing but empty batches below the limit: the last run of them is
    // served, so the reader moves on to the limit.
    let read = log.read(0, 1 << 20, 20).expect("read");
    let bytes = read.slice.expect("slice").bytes().expect("bytes");
    let first = BatchHeader::parse(&bytes).expect("header");
    assert_eq!((first.base_offset, first.records_count), (10, 0));
}
