//! The log cleaner: compaction keeps each key's latest record at its
//! offset, removes tombstones after `delete.retention.ms`, never shows a
//! reader a gap, survives a kill at every step of its segment swap, and
//! keeps compressed batches compressed.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use common::{CODECS, copy_dir, decode_all, encode, record};
use fjord_log::{BatchHeader, CleanerConfig, CleanupPolicy, Log, LogConfig, SwapStep};
use kafka_protocol::records::{Compression, Record};

const NOW: i64 = 1_000_000;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        cleanup_policy: CleanupPolicy::Compact,
        retention_ms: None,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

fn cleaner() -> CleanerConfig {
    CleanerConfig::default()
}

/// One batch of `(key, value)` updates; `None` value = tombstone.
fn updates(items: &[(String, Option<String>)], ts: i64, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = items
        .iter()
        .map(|(k, v)| {
            let mut r = record(Some(k.as_bytes()), b"", ts);
            r.value = v.as_ref().map(|v| Bytes::copy_from_slice(v.as_bytes()));
            r
        })
        .collect();
    encode(&records, compression)
}

/// Every stored batch from the log start, as (header, bytes), following
/// gaps left by the cleaner.
fn stored_batches(log: &Log) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, i64::MAX).expect("read");
        let bytes = read
            .slice
            .expect("a batch below the log end")
            .bytes()
            .unwrap();
        for item in fjord_log::validated_batches(&bytes) {
            let (h, range) = item.expect("valid stored batch");
            assert!(
                h.last_offset() >= offset,
                "batch {h:?} is before offset {offset}"
            );
            offset = h.next_offset();
            out.push((h, bytes[range].to_vec()));
        }
    }
    out
}

/// Every record from the log start: (offset, key, value).
fn records(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    for (_, bytes) in stored_batches(log) {
        for r in decode_all(&bytes) {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
            out.push((r.offset, key, value));
        }
    }
    out
}

/// Appends `n` updates over `keys` keys in batches of `per_batch`; returns
/// each key's latest (offset, value).
fn fill(
    log: &Log,
    n: usize,
    keys: usize,
    per_batch: usize,
    compression: Compression,
) -> BTreeMap<String, (i64, Option<String>)> {
    let mut latest = BTreeMap::new();
    let mut i = 0;
    while i < n {
        let items: Vec<(String, Option<String>)> = (i..(i + per_batch).min(n))
            .map(|j| (format!("key-{}", j % keys), Some(format!("value-{j}"))))
            .collect();
        let info = log
            .append(&mut updates(&items, NOW + i as i64, compression), 0)
            .unwrap();
        for (k, (key, value)) in items.into_iter().enumerate() {
            latest.insert(key, (info.first_offset + k as i64, value));
        }
        i += per_batch;
    }
    latest
}

/// After cleaning: reading from 0 yields offsets in increasing order, each
/// key's latest value is the last one read for it, and below the first
/// dirty offset each key occurs once.
fn assert_compacted(log: &Log, latest: &BTreeMap<String, (i64, Option<String>)>) {
    let read = records(log);
    let first_dirty = log.first_dirty_offset().unwrap();
    let mut last_seen: HashMap<String, (i64, Option<String>)> = HashMap::new();
    let mut clean_keys = HashMap::new();
    let mut previous = -1;
    for (offset, key, value) in read {
        assert!(offset > previous, "offsets go {previous} -> {offset}");
        previous = offset;
        if offset < first_dirty {
            assert!(
                clean_keys.insert(key.clone(), offset).is_none(),
                "key {key} twice in the cleaned section"
            );
        }
        last_seen.insert(key, (offset, value));
    }
    let expected: HashMap<String, (i64, Option<String>)> = latest
        .iter()
        .filter(|(_, (_, v))| v.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let seen: HashMap<String, (i64, Option<String>)> = last_seen
        .into_iter()
        .filter(|(_, (_, v))| v.is_some())
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn hundred_thousand_updates_over_a_thousand_keys() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(256 << 10)).unwrap();
    let latest = fill(&log, 100_000, 1_000, 100, Compression::None);
    let before = log.size_bytes();
    assert!(log.segment_count() > 5);
    assert!(log.cleanability(NOW + 200_000).unwrap().due);
    // A small map: 300 keys per pass, so the dirty section takes several passes.
    let small = CleanerConfig {
        dedupe_buffer_size: 300 * (9 + 48),
        ..cleaner()
    };
    let stats = log.clean(NOW + 200_000, &small).unwrap().expect("due");
    assert!(stats.passes > 1, "{stats:?}");
    assert_eq!(
        stats.first_dirty_offset,
        log.segment_base_offsets().last().copied().unwrap()
    );
    assert!(
        log.size_bytes() * 10 < before,
        "{} -> {}",
        before,
        log.size_bytes()
    );
    assert_compacted(&log, &latest);
    // Nothing dirty is left: the next call does nothing.
    assert!(log.clean(NOW + 200_000, &small).unwrap().is_none());

    // Survives a reopen, and the cleaned section holds each key once.
    drop(log);
    let log = Log::open(dir.path(), config(256 << 10)).unwrap();
    assert_compacted(&log, &latest);
    let cleaned: Vec<_> = records(&log)
        .into_iter()
        .filter(|r| r.0 < log.first_dirty_offset().unwrap())
        .collect();
    assert!(cleaned.len() <= 1_000);
}

/// A truncation below the cleaned part lowers the cleaner checkpoint:
/// records appended again there are dirty and get cleaned, and a restart
/// does not bring the old checkpoint back.
#[test]
fn truncation_lowers_the_cleaner_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(4 << 10)).unwrap();
    fill(&log, 2_000, 10, 20, Compression::None);
    log.clean_until(NOW, &cleaner(), None).unwrap();
    let cleaned_to = log.first_dirty_offset().unwrap();
    assert!(cleaned_to > 1_000, "cleaned up to {cleaned_to}");
    log.truncate_to(500).unwrap();
    // Cleaning left gaps: the end is the base of the first batch at or
    // after 500, still well below what was cleaned.
    let end = log.log_end_offset();
    assert!(end < cleaned_to, "end {end}, cleaned to {cleaned_to}");
    // Append past the old checkpoint again.
    fill(&log, 2_000, 10, 20, Compression::None);
    assert!(log.log_end_offset() > cleaned_to);
    assert_eq!(
        log.first_dirty_offset().unwrap(),
        end,
        "the re-appended records are dirty"
    );
    drop(log);
    let log = Log::open(dir.path(), config(4 << 10)).unwrap();
    assert_eq!(
        log.first_dirty_offset().unwrap(),
        end,
        "and stay dirty after a restart"
    );
}

#[test]
fn batches_keep_offsets_and_producer_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(4 << 10)).unwrap();
    fill(&log, 2_000, 10, 20, Compression::None);
    let original: HashMap<i64, BatchHeader> = stored_batches(&log)
        .into_iter()
        .map(|(h, _)| (h.base_offset, h))
        .collect();
    log.clean_until(NOW, &cleaner(), None).unwrap();
    let after = stored_batches(&log);
    assert!(after.len() < original.len());
    for (h, _) in after {
        let o = original[&h.base_offset];
        assert_eq!(
            (
                h.last_offset_delta,
                h.producer_id,
                h.producer_epoch,
                h.base_sequence
            ),
            (
                o.last_offset_delta,
                o.producer_id,
                o.producer_epoch,
                o.base_sequence
            )
        );
    }
}

#[test]
fn tombstones_go_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(2 << 10)).unwrap();
    let mut latest = fill(&log, 500, 50, 10, Compression::None);
    // Delete keys 0..10.
    let items: Vec<(String, Option<String>)> =
        (0..10).map(|k| (format!("key-{k}"), None)).collect();
    let info = log
        .append(&mut updates(&items, NOW, Compression::None), 0)
        .unwrap();
    for (i, (k, v)) in items.into_iter().enumerate() {
        latest.insert(k, (info.first_offset + i as i64, v));
    }
    // Close the segment holding the tombstones.
    // (key-0 gets a value again after its tombstone.)
    latest.extend(fill(&log, 300, 1, 10, Compression::None));

    let tombstones = |log: &Log| records(log).into_iter().filter(|r| r.2.is_none()).count();
    log.clean_until(NOW, &cleaner(), None).unwrap();
    assert_compacted(&log, &latest);
    assert_eq!(tombstones(&log), 9, "tombstones stay until the horizon");
    // Before the horizon, a clean keeps them.
    assert!(!log.cleanability(NOW + 999).unwrap().due);
    log.clean_until(NOW + 999, &cleaner(), None).unwrap();
    assert_eq!(tombstones(&log), 9);
    // At the horizon the log is due for cleaning and they go.
    assert!(log.cleanability(NOW + 1_000).unwrap().due);
    log.clean(NOW + 1_000, &cleaner()).unwrap().expect("due");
    assert_eq!(tombstones(&log), 0);
    assert_compacted(&log, &latest);
    for k in 1..10 {
        assert!(!records(&log).iter().any(|r| r.1 == format!("key-{k}")));
    }
}

/// The delete horizon lives in the batches (KIP-534): a log reopened after
/// its tombstones were stamped is due for cleaning at their horizon, not
/// only when it next gets dirty.
#[test]
fn tombstone_horizon_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(2 << 10)).unwrap();
    let mut latest = fill(&log, 300, 30, 10, Compression::Lz4);
    let items: Vec<(String, Option<String>)> =
        (10..15).map(|k| (format!("key-{k}"), None)).collect();
    let info = log
        .append(&mut updates(&items, NOW, Compression::Lz4), 0)
        .unwrap();
    for (i, (k, v)) in items.into_iter().enumerate() {
        latest.insert(k, (info.first_offset + i as i64, v));
    }
    // Close the tombstones' segment (keys 0..5 only: the tombstones stay).
    latest.extend(fill(&log, 200, 5, 10, Compression::Lz4));
    log.clean_until(NOW, &cleaner(), None).unwrap();
    let tombstones = |log: &Log| records(log).into_iter().filter(|r| r.2.is_none()).count();
    assert_eq!(tombstones(&log), 5);
    log.close().unwrap();
    drop(log);

    let log = Log::open(dir.path(), config(2 << 10)).unwrap();
    assert!(
        !log.cleanability(NOW + 999).unwrap().due,
        "not dirty, horizon ahead"
    );
    assert!(
        log.cleanability(NOW + 1_000).unwrap().due,
        "due at the horizon"
    );
    log.clean(NOW + 1_000, &cleaner()).unwrap().expect("due");
    assert_eq!(tombstones(&log), 0);
    assert_compacted(&log, &latest);
    assert!(
        !log.cleanability(NOW + 1_000).unwrap().due,
        "nothing left to expire"
    );
}

#[test]
fn readers_see_no_gap_while_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), config(8 << 10)).unwrap());
    let latest = fill(&log, 20_000, 200, 50, Compression::None);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        let latest = latest.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) || reads < 2 {
                let offsets: std::collections::HashSet<i64> =
                    records(&log).into_iter().map(|r| r.0).collect();
                for (key, (offset, _)) in &latest {
                    assert!(
                        offsets.contains(offset),
                        "read {reads} misses {key} at {offset}"
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    // Throttled, so the cleaning lasts long enough for readers to overlap it.
    let slow = CleanerConfig {
        io_max_bytes_per_second: Some(4.0 * 1024.0 * 1024.0),
        dedupe_buffer_size: 50 * (9 + 48),
        ..cleaner()
    };
    log.clean_until(NOW, &slow, None).unwrap();
    log.clean_until(NOW, &slow, None).unwrap();
    done.store(true, Ordering::Release);
    let reads = reader.join().unwrap();
    assert!(reads >= 2);
    assert_compacted(&log, &latest);
}

/// The log's records, decoded, as a comparable value.
fn content(dir: &std::path::Path, config: &LogConfig) -> Vec<(i64, String, Option<String>)> {
    let log = Log::open(dir, config.clone()).unwrap();
    records(&log)
}

#[test]
fn a_kill_at_any_swap_step_leaves_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    let small = config(2 << 10);
    {
        let log = Log::open(dir.path(), small.clone()).unwrap();
        fill(&log, 1_000, 20, 10, Compression::None);
        log.close().unwrap();
    }
    // Segments are rolled small, cleaned into one group.
    let big = config(1 << 20);
    let old = content(dir.path(), &big);
    let new = {
        let copy = copy_dir(dir.path());
        let log = Log::open(copy.path(), big.clone()).unwrap();
        assert!(log.segment_count() > 3);
        log.clean_until(NOW, &cleaner(), None).unwrap();
        assert_eq!(
            log.segment_count(),
            2,
            "one cleaned group and the active segment"
        );
        records(&log)
    };
    assert_ne!(old, new);
    let steps = [
        (SwapStep::WriteCleaned, false),
        (SwapStep::RenameIndexesToSwap, false),
        (SwapStep::RenameLogToSwap, false),
        (SwapStep::DeleteOld, true),
        (SwapStep::RenameIndexesFromSwap, true),
        (SwapStep::RenameLogFromSwap, true),
        (SwapStep::Checkpoint, true),
    ];
    for (step, committed) in steps {
        let copy = copy_dir(dir.path());
        {
            let log = Log::open(copy.path(), big.clone()).unwrap();
            let err = log.clean_until(NOW, &cleaner(), Some(step));
            assert!(err.is_err(), "{step:?}");
            // The process dies here: nothing else is written.
        }
        let after = content(copy.path(), &big);
        let expected = if committed { &new } else { &old };
        assert!(
            after == *expected,
            "{step:?}: reopened log is neither the old nor the new set as expected"
        );
        let leftovers: Vec<String> = std::fs::read_dir(copy.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
            .collect();
        assert!(leftovers.is_empty(), "{step:?}: {leftovers:?}");
        // And cleaning again from there reaches the same result.
        let log = Log::open(copy.path(), big.clone()).unwrap();
        log.clean_until(NOW, &cleaner(), None).unwrap();
        assert_eq!(records(&log), new, "{step:?}");
    }
}

#[test]
fn compressed_batches_stay_compressed_with_their_codec() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config(4 << 10)).unwrap();
        let latest = fill(&log, 2_000, 30, 25, codec);
        let stats = log.clean_until(NOW, &cleaner(), None).unwrap();
        assert!(stats.records_removed > 0);
        assert_compacted(&log, &latest);
        for (h, _) in stored_batches(&log) {
            if h.records_count > 0 {
                assert_eq!(h.codec(), codec as i16, "{codec:?}");
            }
        }
    }
}

#[test]
fn delete_policy_is_not_cleaned_and_compact_is_not_retained() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            cleanup_policy: CleanupPolicy::Delete,
            ..config(2 << 10)
        },
    )
    .unwrap();
    fill(&log, 500, 5, 10, Compression::None);
    assert!(!log.cleanability(NOW).unwrap().due);
    assert!(log.clean(NOW, &cleaner()).unwrap().is_none());
    log.set_config(LogConfig {
        retention_ms: Some(1),
        ..config(2 << 10)
    });
    assert_eq!(log.enforce_retention(NOW + 1_000_000).unwrap(), 0);
}

/// A stored batch that does not decode within the bounds every reader uses
/// (copied from a leader, which followers trust, or written before the
/// validator existed) fails the cleaning pass with an error naming its
/// offset, inflating no more than the cap; the log is left exactly as it
/// was, readable, and the next pass fails the same way instead of losing
/// the records around it.
#[test]
fn an_undecodable_stored_batch_fails_the_pass_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_decompressed_bytes: 4096,
        ..config(1024)
    };
    let log = Log::open(dir.path().join("bomb-0"), config).unwrap();
    // One keyed record of 1 MiB of zeros, zstd: a few hundred bytes stored,
    // 256 times the cap once inflated.
    let mut bomb = encode(
        &[record(Some(b"key-0"), &[0u8; 1 << 20], NOW)],
        Compression::Zstd,
    );
    assert!(bomb.len() < 1024, "{} bytes", bomb.len());
    log.append_as_follower(&mut bomb).unwrap();
    let latest = fill(&log, 300, 5, 10, Compression::None);
    assert!(log.segment_count() > 3, "segments to clean");
    let before = stored_batches(&log);

    for _ in 0..2 {
        let error = log
            .clean_until(NOW + 10_000, &cleaner(), None)
            .expect_err("the pass cannot decode the bomb")
            .to_string();
        assert!(
            error.contains("offset 0") && error.contains("message.max.decompressed.bytes"),
            "{error}"
        );
        assert_eq!(stored_batches(&log), before, "nothing rewritten");
    }
    // Every record after the bomb is still there.
    let read: Vec<i64> = stored_batches(&log)
        .iter()
        .skip(1)
        .flat_map(|(_, bytes)| decode_all(bytes))
        .map(|r| r.offset)
        .collect();
    assert_eq!(read, (1..=300).collect::<Vec<_>>());
    assert_eq!(latest["key-0"].0, 296);
}

/// The roll hook (what wakes the broker's cleaner threads) is called once
/// for every segment a roll closes, with the log that rolled, and not
/// before a roll.
#[test]
fn the_roll_hook_is_called_once_per_closed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path().join("t-0"), config(2_000)).unwrap();
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    log.on_roll(fjord_log::RollHook::new(move |log| {
        seen.lock().unwrap().push(log.active_base_offset());
    }));
    let mut first = updates(&[("a".into(), Some("1".into()))], NOW, Compression::None);
    log.append(&mut first, 0).unwrap();
    assert!(calls.lock().unwrap().is_empty(), "no roll yet");
    for round in 0..40 {
        let items: Vec<(String, Option<String>)> = (0..5)
            .map(|k| (format!("key-{k}"), Some(format!("value-{round}-{k:0>40}"))))
            .collect();
        let mut batch = updates(&items, NOW, Compression::None);
        log.append(&mut batch, 0).unwrap();
    }
    let calls = calls.lock().unwrap().clone();
    assert!(log.segment_count() > 3, "the test must roll several times");
    assert_eq!(calls.len(), log.segment_count() - 1);
    // Called after the roll, with the new active segment in place.
    assert_eq!(
        calls,
        log.segment_base_offsets()[1..].to_vec(),
        "one call per roll, each seeing the segment it started"
    );
}
