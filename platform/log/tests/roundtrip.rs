//! Append and read back batches made by the real encoder, with every codec,
//! across rolled segments; bounds of `read`; refusal of bad batches.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::{CODECS, RecordView, Rng, decode_all, expected_views, read_all, view};
use fjord_log::{Log, LogConfig, LogError};
use kafka_protocol::records::Compression;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4_000,
        index_interval_bytes: 700,
        ..LogConfig::default()
    }
}

/// What was appended: each stored batch's producer bytes and its base offset.
struct Appended {
    batches: Vec<(Vec<u8>, i64, i32)>,
    records: Vec<RecordView>,
}

fn fill(log: &Log, codec: Compression, batches: usize, seed: u64) -> Appended {
    let mut rng = Rng::new(seed);
    let mut out = Appended {
        batches: Vec::new(),
        records: Vec::new(),
    };
    let mut ts = 1_000;
    let mut i = 0;
    while i < batches {
        let epoch = (i / 10) as i32;
        // Every fifth call carries three concatenated batches.
        let group = if i % 5 == 4 { 3 } else { 1 };
        let produced: Vec<Vec<u8>> = (0..group)
            .map(|j| {
                let count = 1 + rng.below(8) as usize;
                let size = 20 + rng.below(300) as usize;
                ts += 10;
                common::rich_batch(count, size, ts, codec, seed * 1000 + (i + j) as u64)
            })
            .collect();
        let mut buf: Vec<u8> = produced.concat();
        let end_before = log.log_end_offset();
        let info = log.append(&mut buf, epoch).unwrap();
        assert_eq!(info.first_offset, end_before);
        assert_eq!(info.bytes, buf.len());
        let mut next = end_before;
        for p in produced {
            let views = expected_views(&p, next);
            out.records.extend(views.iter().cloned());
            out.batches.push((p, next, epoch));
            next += views.len() as i64;
        }
        assert_eq!(info.last_offset, next - 1, "consecutive offsets");
        assert_eq!(log.log_end_offset(), next);
        i += group;
    }
    out
}

#[test]
fn every_codec_round_trips_over_rolled_segments() {
    for (n, codec) in CODECS.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        let appended = fill(&log, codec, 60, n as u64 + 1);
        assert!(
            log.segment_count() >= 4,
            "{codec:?}: {} segments",
            log.segment_count()
        );
        for max_bytes in [1, 100, 999, 4_000, 1 << 20] {
            let got: Vec<RecordView> = read_all(&log, max_bytes).iter().map(view).collect();
            assert_eq!(got, appended.records, "{codec:?} max_bytes {max_bytes}");
        }
        // Byte for byte: each stored batch is the producer's, with the base
        // offset and leader epoch written by the log.
        for (produced, base, epoch) in &appended.batches {
            let read = log.read(*base, 1, i64::MAX).unwrap();
            let stored = read.slice.unwrap().bytes().unwrap();
            assert_eq!(
                stored.len(),
                produced.len(),
                "only the first batch fits 1 byte"
            );
            assert_eq!(stored[0..8], base.to_be_bytes());
            assert_eq!(stored[8..12], produced[8..12]);
            assert_eq!(stored[12..16], epoch.to_be_bytes());
            assert_eq!(stored[16..], produced[16..]);
        }
        // Reopen: the same records.
        log.close().unwrap();
        drop(log);
        let log = Log::open(dir.path(), small_config()).unwrap();
        let got: Vec<RecordView> = read_all(&log, 2_000).iter().map(view).collect();
        assert_eq!(got, appended.records, "{codec:?} after reopen");
    }
}

#[test]
fn read_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    let appended = fill(&log, Compression::Lz4, 40, 7);
    let end = log.log_end_offset();

    // Every offset: the first batch served holds it, even with max_bytes 0.
    for o in 0..end {
        let read = log.read(o, 0, i64::MAX).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let ranges = common::check_batches(&bytes);
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].0 <= o && o <= ranges[0].1);
        assert_eq!(read.log_end_offset, end);
        assert_eq!(read.log_start_offset, 0);
    }

    // max_bytes: whole batches, never more than asked beyond the first.
    for (o, max) in [(0, 2_500), (17, 1_200), (40, 10_000)] {
        let bytes = log
            .read(o, max, i64::MAX)
            .unwrap()
            .slice
            .unwrap()
            .bytes()
            .unwrap();
        let ranges = common::check_batches(&bytes);
        assert!(bytes.len() <= max || ranges.len() == 1);
        // And it stopped only because the next batch did not fit.
        let next = ranges.last().unwrap().1 + 1;
        if next < end {
            let more = log.read(next, 0, i64::MAX).unwrap().slice.unwrap();
            let segment_change = log.segment_base_offsets().contains(&next);
            assert!(
                bytes.len() + more.len() > max || segment_change,
                "read of {max} bytes at {o} stopped early"
            );
        }
    }

    // The high watermark bound: no batch whose base offset is at or past it.
    let bases: Vec<i64> = appended.batches.iter().map(|b| b.1).collect();
    for &hw in &[bases[3], bases[3] + 1, bases[20], end - 1] {
        let mut offset = 0;
        let mut served = Vec::new();
        loop {
            let read = log.read(offset, 1 << 20, hw).unwrap();
            let Some(slice) = read.slice else { break };
            let bytes = slice.bytes().unwrap();
            for (base, last) in common::check_batches(&bytes) {
                assert!(base < hw, "batch at {base} served past high watermark {hw}");
                served.push(base);
                offset = last + 1;
            }
        }
        let want: Vec<i64> = bases.iter().copied().filter(|&b| b < hw).collect();
        assert_eq!(served, want, "high watermark {hw}");
        assert!(
            log.read(hw.max(offset), 1 << 20, hw)
                .unwrap()
                .slice
                .is_none()
        );
    }

    // At the log end: nothing. Outside [start, end]: OffsetOutOfRange.
    let at_end = log.read(end, 1 << 20, i64::MAX).unwrap();
    assert!(at_end.slice.is_none());
    assert_eq!(at_end.log_end_offset, end);
    for bad in [-1, end + 1, end + 1_000] {
        match log.read(bad, 1 << 20, i64::MAX) {
            Err(LogError::OffsetOutOfRange {
                offset,
                log_start,
                log_end,
            }) => assert_eq!((offset, log_start, log_end), (bad, 0, end)),
            other => panic!("read at {bad}: {other:?}"),
        }
    }
}

fn recrc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn bad_batches_are_refused_and_leave_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_message_bytes: 3_000,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    fill(&log, Compression::None, 12, 3);
    log.flush().unwrap();
    let good = common::batch(4, 50, 5_000, Compression::Snappy);

    type Check = fn(&LogError) -> bool;
    let corrupt: Check = |e| matches!(e, LogError::CorruptBatch { .. });
    let invalid: Check = |e| matches!(e, LogError::InvalidRecord { .. });
    let too_large: Check = |e| matches!(e, LogError::MessageTooLarge { max: 3_000, .. });
    let mut cases: Vec<(&str, Vec<u8>, Check)> = Vec::new();

    let mut b = good.clone();
    b.truncate(b.len() - 1);
    cases.push(("truncated", b, corrupt));
    cases.push(("header only", good[..40].to_vec(), corrupt));
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    cases.push(("bad crc", b, corrupt));
    let mut b = good.clone();
    b[16] = 1;
    cases.push(("magic 1", b, corrupt));
    let mut b = good.clone();
    b[57..61].copy_from_slice(&5i32.to_be_bytes());
    recrc(&mut b);
    cases.push(("record count 5 for 4 records", b, invalid));
    let b = common::batch(2, 3_100, 5_000, Compression::None);
    cases.push(("over max.message.bytes", b, too_large));
    let mut b = good.clone();
    b[0..8].copy_from_slice(&7i64.to_be_bytes());
    cases.push(("base offset 7", b, invalid));
    // A good batch followed by a bad one: nothing is written.
    let mut b = good.clone();
    let mut bad = good.clone();
    bad[70] ^= 1;
    b.extend_from_slice(&bad);
    cases.push(("good then bad crc", b, corrupt));
    let mut b = good.clone();
    b.extend_from_slice(&good[..30]);
    cases.push(("good then a torn one", b, corrupt));
    cases.push(("empty", Vec::new(), invalid));

    for (name, mut bytes, check) in cases {
        let end = log.log_end_offset();
        let files = common::dir_snapshot(dir.path());
        match log.append(&mut bytes, 1) {
            Err(e) => assert!(check(&e), "{name}: wrong error {e:?}"),
            Ok(info) => panic!("{name}: accepted as {info:?}"),
        }
        assert_eq!(log.log_end_offset(), end, "{name}");
        assert_eq!(
            common::dir_snapshot(dir.path()),
            files,
            "{name}: files changed"
        );
        let mut next = good.clone();
        assert_eq!(
            log.append(&mut next, 1).unwrap().first_offset,
            end,
            "{name}"
        );
        let read = log.read(end, 1 << 20, i64::MAX).unwrap();
        let recs = decode_all(&read.slice.unwrap().bytes().unwrap());
        assert_eq!(recs.len(), 4);
        assert_eq!(recs[0].offset, end);
    }
}
