//! The descriptor cache: logs with more segments than the cache has room
//! for are written, read (concurrently), retained, compacted and
//! checkpointed with a cache of two files; the descriptors held are counted
//! in `/proc/self/fd`; running out of descriptors gives an error naming the
//! limit, and the log works again once descriptors are free.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{decode_all, encode, read_all, record};
use fjord_log::{CleanerConfig, CleanupPolicy, FileCache, Log, LogConfig, LogError};
use kafka_protocol::records::Compression;

const NOW: i64 = 1_000_000;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        segment_ms: None,
        retention_ms: None,
        ..LogConfig::default()
    }
}

/// Descriptors of this process open on files under `dir`, and how many of
/// them name a deleted file.
fn held_in(dir: &Path) -> (usize, usize) {
    let mut held = 0;
    let mut deleted = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue; // closed meanwhile (another test's)
        };
        if target.starts_with(dir) {
            held += 1;
            if target.to_string_lossy().ends_with(" (deleted)") {
                deleted += 1;
            }
        }
    }
    (held, deleted)
}

/// Appends one record whose value names the offset it gets (`r{offset}`);
/// the caller is the log's only writer.
fn append_numbered(log: &Log, padding: usize) -> i64 {
    let offset = log.log_end_offset();
    let value = format!("r{offset}-{}", "x".repeat(padding));
    let mut batch = encode(
        &[record(Some(b"k"), value.as_bytes(), NOW + offset)],
        Compression::None,
    );
    let info = log.append(&mut batch, 0).unwrap();
    assert_eq!(info.first_offset, offset);
    offset
}

/// Reads from `offset` and checks that every record served carries the
/// value naming its offset. `Ok(false)` when the offset is gone (retention).
fn check_read_at(log: &Log, offset: i64) -> Result<bool, LogError> {
    let read = match log.read(offset, 4096, i64::MAX) {
        Ok(read) => read,
        Err(LogError::OffsetOutOfRange { log_start, .. }) if offset < log_start => {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let bytes = read.slice.expect("data below the log end").bytes().unwrap();
    let records = decode_all(&bytes);
    assert!(!records.is_empty());
    assert!(records[0].offset <= offset);
    for r in records {
        let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
        assert!(
            value.starts_with(&format!("r{}-", r.offset)),
            "offset {} holds {value:?}",
            r.offset
        );
    }
    Ok(true)
}

#[test]
fn many_segments_are_read_through_a_cache_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let log = Log::open_with(dir.path(), config(1024), &cache).unwrap();
    for _ in 0..600 {
        append_numbered(&log, 100);
        assert!(held_in(dir.path()).0 <= 2, "{:?}", held_in(dir.path()));
    }
    let segments = log.segment_count();
    assert!(segments > 40, "only {segments} segments");
    let opened_before = cache.opened();
    let records = read_all(&log, 300);
    assert_eq!(records.len(), 600);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
    }
    // Every segment but the two last ones had been evicted: each was opened
    // again to be read.
    assert!(cache.opened() - opened_before >= segments as u64 - 2);
    assert!(cache.open_files() <= 2);
    assert!(held_in(dir.path()).0 <= 2);
    // Reopening the log (recovery reads every segment) stays within the cache.
    drop(log);
    assert_eq!(held_in(dir.path()).0, 0, "a dropped log holds nothing");
    let log = Log::open_with(dir.path(), config(1024), &cache).unwrap();
    assert_eq!(log.segment_count(), segments);
    assert!(held_in(dir.path()).0 <= 2);
    assert_eq!(read_all(&log, 1 << 20).len(), 600);
}

#[test]
fn concurrent_readers_and_writers_share_a_cache_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let logs: Vec<Arc<Log>> = (0..3)
        .map(|i| {
            Arc::new(
                Log::open_with(dir.path().join(format!("t-{i}")), config(2048), &cache).unwrap(),
            )
        })
        .collect();
    for log in &logs {
        for _ in 0..50 {
            append_numbered(log, 200);
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4u64)
        .map(|seed| {
            let logs = logs.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut rng = common::Rng::new(seed + 1);
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) || reads < 200 {
                    let log = &logs[rng.below(3) as usize];
                    let end = log.log_end_offset();
                    let offset = rng.below(end as u64) as i64;
                    assert!(check_read_at(log, offset).unwrap());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for _ in 0..200 {
        for log in &logs {
            append_numbered(log, 200);
        }
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() >= 200);
    }
    assert!(cache.evicted() > 100, "evicted {}", cache.evicted());
    for log in &logs {
        assert!(log.segment_count() > 20);
        assert_eq!(read_all(log, 1 << 20).len(), 250);
    }
}

#[test]
fn retention_deletes_segments_while_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let log = Arc::new(
        Log::open_with(
            dir.path(),
            LogConfig {
                retention_bytes: Some(8 * 1024),
                ..config(1024)
            },
            &cache,
        )
        .unwrap(),
    );
    for _ in 0..100 {
        append_numbered(&log, 100);
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let log = Arc::clone(&log);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let (mut served, mut gone) = (0u64, 0u64);
                while !done.load(Ordering::Acquire) {
                    // The oldest offset: the segment retention deletes next.
                    match check_read_at(&log, log.log_start_offset()) {
                        Ok(true) => served += 1,
                        Ok(false) => gone += 1,
                        Err(e) => panic!("read failed: {e}"),
                    }
                }
                (served, gone)
            })
        })
        .collect();
    let mut deleted = 0;
    for round in 0..300 {
        append_numbered(&log, 100);
        deleted += log.enforce_retention(NOW + round).unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        let (served, _) = reader.join().unwrap();
        assert!(served > 0);
    }
    assert!(deleted > 50, "retention deleted {deleted} segments");
    let (held, held_deleted) = held_in(dir.path());
    assert!(held <= 2, "{held} descriptors held");
    assert_eq!(
        held_deleted, 0,
        "a deleted segment's descriptor is still open"
    );
    let start = log.log_start_offset();
    let records = read_all(&log, 1 << 20);
    assert_eq!(records.first().map(|r| r.offset), Some(start));
    assert_eq!(records.len() as i64, log.log_end_offset() - start);
}

/// Appends `n` updates of `keys` keys, one batch of `per_batch` records at a
/// time; returns each key's latest offset.
fn fill_keys(log: &Log, n: usize, keys: usize, per_batch: usize) -> BTreeMap<String, i64> {
    let mut latest = BTreeMap::new();
    let mut i = 0;
    while i < n {
        let items: Vec<String> = (i..(i + per_batch).min(n))
            .map(|j| format!("key-{}", j % keys))
            .collect();
        let records: Vec<_> = items
            .iter()
            .map(|k| record(Some(k.as_bytes()), &[b'v'; 40], NOW + i as i64))
            .collect();
        let info = log
            .append(&mut encode(&records, Compression::None), 0)
            .unwrap();
        for (k, key) in items.into_iter().enumerate() {
            latest.insert(key, info.first_offset + k as i64);
        }
        i += per_batch;
    }
    latest
}

/// Every offset readable from the log start, following the cleaner's gaps.
fn offsets(log: &Log) -> Vec<i64> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 4096, i64::MAX).unwrap();
        let bytes = read.slice.expect("data below the log end").bytes().unwrap();
        let records = decode_all(&bytes);
        let Some(last) = records.last() else { break };
        offset = last.offset + 1;
        out.extend(records.iter().map(|r| r.offset));
        // A batch the cleaner emptied carries no record: step over it.
        for item in fjord_log::validated_batches(&bytes) {
            offset = offset.max(item.unwrap().0.next_offset());
        }
    }
    out
}

#[test]
fn compaction_with_a_cache_of_two_keeps_readers_whole() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let compacted = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config(2048)
    };
    let log = Arc::new(Log::open_with(dir.path(), compacted, &cache).unwrap());
    let latest = fill_keys(&log, 3000, 40, 20);
    assert!(log.segment_count() > 20);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        let latest = latest.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Acquire) || reads < 2 {
                let seen: HashSet<i64> = offsets(&log).into_iter().collect();
                for (key, offset) in &latest {
                    assert!(
                        seen.contains(offset),
                        "read {reads} misses {key} at {offset}"
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    let slow = CleanerConfig {
        io_max_bytes_per_second: Some(2.0 * 1024.0 * 1024.0),
        ..CleanerConfig::default()
    };
    let stats = log.clean_until(NOW, &slow, None).unwrap();
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() >= 2);
    assert!(stats.records_removed > 2000, "{stats:?}");
    let left = offsets(&log);
    for offset in latest.values() {
        assert!(left.contains(offset));
    }
    let (held, deleted) = held_in(dir.path());
    assert!(held <= 2, "{held} descriptors held");
    assert_eq!(deleted, 0, "a replaced segment's descriptor is still open");
}

#[test]
fn retention_during_compaction_with_a_cache_of_two() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let both = LogConfig {
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_bytes: Some(16 * 1024),
        ..config(2048)
    };
    let log = Arc::new(Log::open_with(dir.path(), both, &cache).unwrap());
    fill_keys(&log, 4000, 400, 20);
    let done = Arc::new(AtomicBool::new(false));
    let retention = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut deleted = 0;
            while !done.load(Ordering::Acquire) {
                deleted += log.enforce_retention(NOW).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            deleted
        })
    };
    let slow = CleanerConfig {
        io_max_bytes_per_second: Some(1024.0 * 1024.0),
        ..CleanerConfig::default()
    };
    // Cleaning that meets a segment retention deleted stops without error.
    for _ in 0..3 {
        log.clean_until(NOW, &slow, None).unwrap();
        fill_keys(&log, 400, 400, 20);
    }
    done.store(true, Ordering::Release);
    assert!(retention.join().unwrap() > 0);
    log.clean_until(NOW, &CleanerConfig::default(), None)
        .unwrap();
    let read = offsets(&log);
    assert!(read.windows(2).all(|w| w[0] < w[1]));
    assert!(held_in(dir.path()).0 <= 2);
}

#[test]
fn checkpoints_of_idle_logs_open_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(2);
    let logs: Vec<Log> = (0..5)
        .map(|i| Log::open_with(dir.path().join(format!("t-{i}")), config(1024), &cache).unwrap())
        .collect();
    for log in &logs {
        for _ in 0..30 {
            append_numbered(log, 100);
        }
        log.checkpoint().unwrap();
    }
    let opened = cache.opened();
    for _ in 0..3 {
        for log in &logs {
            log.checkpoint().unwrap();
            log.flush().unwrap();
        }
    }
    assert_eq!(cache.opened(), opened, "idle checkpoints reopened files");
}

/// Runs in a child process (the test re-runs itself): lowers its own
/// `RLIMIT_NOFILE`, which cannot be done to the shared test process.
#[test]
fn running_out_of_descriptors_names_the_limit() {
    const CHILD: &str = "FJORD_LOG_TEST_EMFILE_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "running_out_of_descriptors_names_the_limit",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("child done"),
            "child did not run:\n{stdout}"
        );
        return;
    }
    let limit = 64;
    let lowered = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit; lowering needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let dir = tempfile::tempdir().unwrap();
    let cache = FileCache::new(8);
    // A log of more segments than the cache holds, opened before the
    // descriptors run out.
    let old = Log::open_with(dir.path().join("old"), config(1024), &cache).unwrap();
    for _ in 0..200 {
        append_numbered(&old, 100);
    }
    // Everything else takes every descriptor left.
    let mut hogs = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    assert!(!hogs.is_empty());
    // Reading old segments closes cached files to make room: still served.
    assert_eq!(read_all(&old, 1 << 20).len(), 200);
    // With nothing cached left to close, the error names the limit.
    drop(old);
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    let err = Log::open_with(dir.path().join("new"), config(1024), &cache).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            LogError::TooManyOpenFiles {
                soft: 64,
                hard: 64,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains("RLIMIT_NOFILE) is 64"), "{message}");
    // Descriptors free again: the same log opens and works.
    hogs.truncate(hogs.len().saturating_sub(16));
    let new = Log::open_with(dir.path().join("new"), config(1024), &cache).unwrap();
    append_numbered(&new, 10);
    assert_eq!(read_all(&new, 1 << 20).len(), 1);
    println!("child done");
}
