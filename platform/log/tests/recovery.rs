//! Crash recovery: a log cut at every byte of its last batch, and a log
//! with random flipped bytes, reopens with exactly the whole valid batches
//! before the damage.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::{RecordView, Rng, decode_all, view};
use fjord_log::{Log, LogConfig, MAX_TIMESTAMP, RECOVERY_POINT_CHECKPOINT};
use kafka_protocol::records::Compression;

/// One stored batch: where it is and what it holds.
#[derive(Debug, Clone)]
struct Stored {
    file: std::path::PathBuf,
    position: u64,
    size: u64,
    base: i64,
    records: Vec<RecordView>,
}

/// The batches of every segment file in `dir`, in offset order.
fn stored_batches(dir: &Path) -> Vec<Stored> {
    let mut out = Vec::new();
    for file in common::segment_files(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for item in fjord_log::validated_batches(&bytes) {
            let (h, range) = item.unwrap();
            out.push(Stored {
                file: file.clone(),
                position: range.start as u64,
                size: range.len() as u64,
                base: h.base_offset,
                records: decode_all(&bytes[range]).iter().map(view).collect(),
            });
        }
    }
    out
}

/// Linear-scan answer to ListOffsets(MAX_TIMESTAMP): first record with the
/// largest timestamp.
fn max_timestamp_of(records: &[RecordView]) -> Option<(i64, i64)> {
    let max = records.iter().map(|r| r.1).max()?;
    records.iter().find(|r| r.1 == max).map(|r| (r.0, r.1))
}

/// Every record the log serves, walking from the log start; checks each
/// served batch's CRC. Tolerates offset gaps (the log allows them).
fn served(log: &Log) -> Vec<RecordView> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 16, i64::MAX).unwrap();
        let bytes = read.slice.expect("data below the log end").bytes().unwrap();
        let ranges = common::check_batches(&bytes);
        assert!(ranges[0].1 >= offset);
        out.extend(
            decode_all(&bytes)
                .iter()
                .map(view)
                .filter(|r| r.0 >= offset),
        );
        offset = ranges.last().unwrap().1 + 1;
    }
    out
}

/// The bytes of every batch the log serves, walking from the log start.
fn served_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 16, i64::MAX).unwrap();
        let bytes = read.slice.expect("data below the log end").bytes().unwrap();
        let ranges = common::check_batches(&bytes);
        assert_eq!(ranges[0].0, offset, "no gap");
        out.extend_from_slice(&bytes);
        offset = ranges.last().unwrap().1 + 1;
    }
    out
}

/// A directory for thousands of copy-cut-reopen rounds: in memory when the
/// machine has `/dev/shm`, since the rounds cost file creations and
/// deletions, not I/O the test is about (the crash is simulated by the cut).
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// Makes `to` an exact copy of the flat directory `from`.
fn refill(to: &Path, from: &Path) {
    for entry in std::fs::read_dir(to).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn build_log(dir: &Path, config: &LogConfig, last_batch_records: usize) {
    let log = Log::open(dir, config.clone()).unwrap();
    let codecs = common::CODECS;
    for i in 0..49u64 {
        let mut b = common::rich_batch(
            2 + (i % 3) as usize,
            40,
            10_000 + i as i64 * 100,
            codecs[i as usize % 5],
            i,
        );
        log.append(&mut b, 0).unwrap();
    }
    // The last batch carries the newest timestamps of the log. (Same epoch:
    // a cut that drops an epoch rewrites the epoch checkpoint with fsyncs,
    // which thousands of reopens cannot afford; epochs.rs covers that.)
    let mut last = common::rich_batch(last_batch_records, 120, 90_000, Compression::None, 99);
    log.append(&mut last, 0).unwrap();
    assert!(log.segment_count() >= 3);
    log.close().unwrap();
}

#[test]
fn crash_at_every_byte_of_the_last_batch() {
    // With an index entry on every batch, a cut inside the last batch meets
    // the light open-time check; with sparse entries, the full one.
    for index_interval_bytes in [1, 4_096] {
        let config = LogConfig {
            segment_bytes: 4_800,
            index_interval_bytes,
            ..LogConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        build_log(dir.path(), &config, 26);
        let batches = stored_batches(dir.path());
        let last = batches.last().unwrap().clone();
        assert!(last.size > 3_000, "last batch of {} bytes", last.size);
        assert!(
            batches[batches.len() - 2].file == last.file,
            "not alone in its segment: {:?}",
            batches
                .iter()
                .map(|b| (b.position, b.size))
                .collect::<Vec<_>>()
        );
        let kept: Vec<RecordView> = batches[..batches.len() - 1]
            .iter()
            .flat_map(|b| b.records.clone())
            .collect();
        let want_max = max_timestamp_of(&kept).unwrap();
        let active = last.file.file_name().unwrap().to_owned();

        // The bytes the log must serve: the whole batches before the cut.
        let kept_bytes: Vec<u8> = batches[..batches.len() - 1]
            .iter()
            .flat_map(|b| {
                let bytes = std::fs::read(&b.file).unwrap();
                bytes[b.position as usize..(b.position + b.size) as usize].to_vec()
            })
            .collect();
        let copy = scratch_dir();
        for cut in last.position..last.position + last.size {
            for keep_checkpoint in [true, false] {
                refill(copy.path(), dir.path());
                OpenOptions::new()
                    .write(true)
                    .open(copy.path().join(&active))
                    .unwrap()
                    .set_len(cut)
                    .unwrap();
                if !keep_checkpoint {
                    std::fs::remove_file(copy.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
                }
                let ctx = format!(
                    "interval {index_interval_bytes}, cut at {cut}, checkpoint {keep_checkpoint}"
                );
                let log = Log::open(copy.path(), config.clone()).unwrap();
                assert_eq!(log.log_end_offset(), last.base, "{ctx}");
                assert_eq!(served_bytes(&log), kept_bytes, "{ctx}");
                let max = log.offset_for_timestamp(MAX_TIMESTAMP).unwrap().unwrap();
                assert_eq!((max.offset, max.timestamp), want_max, "{ctx}");
                // Appends continue where the whole batches end.
                let mut next = common::batch(3, 10, 11_000, Compression::Gzip);
                let info = log.append(&mut next, 0).unwrap();
                assert_eq!(info.first_offset, last.base, "{ctx}");
                let tail = log.read(last.base, 1 << 20, i64::MAX).unwrap();
                let tail = decode_all(&tail.slice.unwrap().bytes().unwrap());
                assert_eq!(tail.len(), 3, "{ctx}");
                assert_eq!(tail[0].offset, last.base, "{ctx}");
                // The next newest timestamp is still found where it is.
                let max = log.offset_for_timestamp(MAX_TIMESTAMP).unwrap().unwrap();
                assert_eq!((max.offset, max.timestamp), want_max, "{ctx}");
            }
        }
    }
}

#[test]
fn flipped_bytes_never_serve_a_damaged_batch() {
    let config = LogConfig {
        segment_bytes: 3_000,
        index_interval_bytes: 500,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..49u64 {
            let mut b = common::rich_batch(
                1 + (i % 4) as usize,
                30 + (i % 7) as usize * 20,
                5_000 + i as i64 * 7,
                common::CODECS[i as usize % 5],
                i,
            );
            log.append(&mut b, 0).unwrap();
        }
        // Dropped without close: no recovery checkpoint.
    }
    assert!(!dir.path().join(RECOVERY_POINT_CHECKPOINT).exists());
    let batches = stored_batches(dir.path());
    let total: u64 = batches.iter().map(|b| b.size).sum();
    let end = {
        let last = batches.last().unwrap();
        last.base + last.records.len() as i64
    };

    // FLIP_SEED and FLIP_ROUNDS run other or more rounds than the default.
    let mut rng = Rng::new(std::env::var("FLIP_SEED").map_or(0xF11B, |s| s.parse().unwrap()));
    for round in 0..std::env::var("FLIP_ROUNDS").map_or(300, |s| s.parse().unwrap()) {
        // A byte of the log, uniformly: find its batch.
        let mut at = rng.below(total);
        let damaged = batches
            .iter()
            .position(|b| {
                if at < b.size {
                    true
                } else {
                    at -= b.size;
                    false
                }
            })
            .unwrap();
        let target = &batches[damaged];
        let within = at; // byte inside the damaged batch
        let mask = 1 + rng.below(255) as u8;
        let copy = common::copy_dir(dir.path());
        let path = copy.path().join(target.file.file_name().unwrap());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[(target.position + within) as usize] ^= mask;
        std::fs::write(&path, &bytes).unwrap();

        let ctx = format!("round {round}: batch {damaged} byte {within} ^ {mask:#x}");
        let log = Log::open(copy.path(), config.clone()).unwrap();
        let got = served(&log);
        let before: Vec<RecordView> = batches[..damaged]
            .iter()
            .flat_map(|b| b.records.clone())
            .collect();
        assert!(
            got.len() >= before.len(),
            "{ctx}: lost data before the damage"
        );
        assert_eq!(got[..before.len()], before[..], "{ctx}");
        let rest = &got[before.len()..];
        match within {
            // The leader epoch is not covered by the CRC: the records are intact.
            12..16 => {
                let all: Vec<RecordView> = batches.iter().flat_map(|b| b.records.clone()).collect();
                assert_eq!(got, all, "{ctx}");
                assert_eq!(log.log_end_offset(), end, "{ctx}");
            }
            // Nor is the base offset. A smaller one breaks the offset order
            // and ends the log there; a larger one that still fits the
            // segment cannot be told from a gap (as in Kafka): the batch's
            // records are served at the shifted offsets, and the log ends
            // after it.
            0..8 => {
                if rest.is_empty() {
                    assert_eq!(log.log_end_offset(), target.base, "{ctx}");
                } else {
                    let delta = rest[0].0 - target.base;
                    assert!(delta > 0, "{ctx}");
                    let shifted: Vec<RecordView> = target
                        .records
                        .iter()
                        .map(|r| {
                            let mut r = r.clone();
                            r.0 += delta;
                            r
                        })
                        .collect();
                    assert_eq!(rest, &shifted[..], "{ctx}");
                    let segment_base = log.segment_base_offsets().into_iter().last().unwrap();
                    let last = rest.last().unwrap().0;
                    assert!(
                        last - segment_base <= i32::MAX as i64,
                        "{ctx}: batch at {} cannot belong to segment {segment_base}",
                        rest[0].0
                    );
                    assert_eq!(log.log_end_offset(), last + 1, "{ctx}");
                }
            }
            // Length, magic, CRC or anything the CRC covers: the batch and
            // everything after it are gone.
            _ => {
                assert!(
                    rest.is_empty(),
                    "{ctx}: served {} records past the damage",
                    rest.len()
                );
                assert_eq!(log.log_end_offset(), target.base, "{ctx}");
            }
        }
        // And the log takes appends at its end.
        let end_now = log.log_end_offset();
        let mut b = common::batch(2, 5, 9_000, Compression::None);
        assert_eq!(
            log.append(&mut b, 3).unwrap().first_offset,
            end_now,
            "{ctx}"
        );
    }
}

#[test]
fn a_base_offset_beyond_the_segment_is_refused_on_recovery() {
    // Flipping the top byte of a stored base offset leaves a batch whose
    // CRC still checks but whose offsets cannot belong to its segment.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::default();
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..3 {
            let mut b = common::batch(2, 10, 100 + i, Compression::None);
            log.append(&mut b, 0).unwrap();
        }
    }
    let batches = stored_batches(dir.path());
    let path = &batches[1].file;
    let mut bytes = std::fs::read(path).unwrap();
    bytes[batches[1].position as usize] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 2);
    let records = served(&log);
    assert_eq!(records, batches[0].records);
    let mut b = common::batch(1, 10, 100, Compression::None);
    assert_eq!(log.append(&mut b, 0).unwrap().first_offset, 2);
}

#[test]
fn a_base_offset_reaching_the_next_segment_is_refused_on_recovery() {
    // The last batch of a closed segment gets a larger base offset that
    // still fits its segment's range but overlaps the next segment: served
    // as is, reads of the offsets it skipped would find nothing below the
    // log end.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    };
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        for i in 0..12 {
            let mut b = common::batch(2, 40, 100 + i, Compression::None);
            log.append(&mut b, 0).unwrap();
        }
        assert!(log.segment_count() >= 3);
    }
    let batches = stored_batches(dir.path());
    let first_file = &batches[0].file;
    let victim = batches.iter().rposition(|b| &b.file == first_file).unwrap();
    let path = &batches[victim].file;
    let mut bytes = std::fs::read(path).unwrap();
    bytes[batches[victim].position as usize + 6] ^= 0x01; // +256
    std::fs::write(path, &bytes).unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), batches[victim].base);
    let want: Vec<RecordView> = batches[..victim]
        .iter()
        .flat_map(|b| b.records.clone())
        .collect();
    assert_eq!(served(&log), want);
}
