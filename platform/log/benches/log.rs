//! Benchmarks of the partition log, each next to a baseline of plain file
//! I/O measured in the same run on the same file system.
//!
//! Everything is written under cargo's target tmp dir (`target/tmp`, on the
//! same disk as the repository; `/tmp` may be a tmpfs, which would make the
//! fsync figures meaningless) and removed at the end.
//!
//! Groups (see `docs/benchmarks.md` for figures and goals):
//! - `append_1KiB_page_cache`: `Log::append` of one 1 KiB batch
//!   (`Durability::PageCache`) vs `write` of the same bytes to a plain file.
//! - `append_1KiB_fsync`: `Log::append` with `Durability::Fsync` from 4
//!   threads (group commit) and from 1 thread, vs `write` + `fdatasync` per
//!   write from 4 threads (one file each) and from 1 thread.
//! - `read_1GiB_page_cache`: the whole 1 GiB log through `Log::read` with
//!   1 MiB `max_bytes` vs `pread` of the same files in 1 MiB chunks.
//! - `open_1GiB`: `Log::open` of a cleanly closed 1 GiB log, and after an
//!   unclean stop (recovery checkpoint removed), vs reading and CRC-32C
//!   checking the same bytes.
//!
//! Run with `cargo bench -p fjord-log`; pass a filter to run one group
//! (`cargo bench -p fjord-log -- append_1KiB_fsync`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::cell::OnceCell;
use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use fjord_log::{BatchHeader, Durability, Log, LogConfig, RECOVERY_POINT_CHECKPOINT};
use kafka_protocol::records::Compression;

/// Records per benchmark batch.
const RECORDS: usize = 10;
/// Target size of a benchmark batch.
const BATCH_BYTES: usize = 1024;
/// Appending threads in the group-commit benchmark.
const THREADS: usize = 4;
/// Page-cache append files are started afresh (outside the timing) once
/// they grow past this, so a run does not fill the disk or the page cache.
const RESET_BYTES: u64 = 256 << 20;
/// Size of the log the read and open benchmarks use.
const BIG_LOG_BYTES: u64 = 1 << 30;
/// `max_bytes` of a read, and the chunk of the raw read baselines.
const READ_CHUNK: usize = 1 << 20;

/// RecordBatch v2 field positions the benchmark patches (see docs/storage.md).
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let root = tempfile::Builder::new()
        .prefix("fjord-log-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("bench dir under the target dir");
    let batch = kib_batch();
    eprintln!(
        "bench dir {}; batch of {RECORDS} records, {} bytes",
        root.path().display(),
        batch.len()
    );
    append_page_cache(&mut c, root.path(), &batch);
    append_fsync(&mut c, root.path(), &batch);
    let big = OnceCell::new();
    read_page_cache(&mut c, root.path(), &batch, &big);
    open(&mut c, root.path(), &batch, &big);
    c.final_summary();
}

/// A batch of [`RECORDS`] records, as large as possible up to
/// [`BATCH_BYTES`] (records of about 100 bytes each: a 5-byte key, the
/// value and the record framing), encoded by the real Kafka encoder.
fn kib_batch() -> Vec<u8> {
    (1..=BATCH_BYTES / RECORDS)
        .rev()
        .map(|value| common::batch(RECORDS, value, 1_700_000_000_000, Compression::None))
        .find(|b| b.len() <= BATCH_BYTES)
        .expect("a batch fits")
}

/// Shifts the timestamps of one batch by `delta` ms and fixes its CRC, so
/// a log built from one template still has increasing timestamps, as a
/// producer's would (record timestamps are deltas from the base timestamp).
fn restamp(batch: &mut [u8], delta: i64) {
    for at in [BASE_TIMESTAMP, MAX_TIMESTAMP] {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&batch[at..at + 8]);
        let ts = i64::from_be_bytes(ts) + delta;
        batch[at..at + 8].copy_from_slice(&ts.to_be_bytes());
    }
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

fn fresh_dir(path: &Path) {
    if path.exists() {
        fs::remove_dir_all(path).expect("remove bench dir");
    }
    fs::create_dir_all(path).expect("create bench dir");
}

fn fresh_log(dir: &Path, config: LogConfig) -> Log {
    fresh_dir(dir);
    Log::open(dir, config).expect("open log")
}

fn fresh_file(path: &Path) -> File {
    if path.exists() {
        fs::remove_file(path).expect("remove bench file");
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .expect("create bench file")
}

fn append_page_cache(c: &mut Criterion, root: &Path, batch: &[u8]) {
    let mut g = c.benchmark_group("append_1KiB_page_cache");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("fjord_log", |b| {
        let dir = root.join("append-page-cache");
        let mut log = fresh_log(&dir, LogConfig::default());
        let mut buf = batch.to_vec();
        b.iter_custom(|iters| {
            if log.size_bytes() > RESET_BYTES {
                log = fresh_log(&dir, LogConfig::default());
            }
            let start = Instant::now();
            for _ in 0..iters {
                // Append patches base offset and epoch in place: start from
                // the producer's bytes each time.
                buf.copy_from_slice(batch);
                black_box(log.append(&mut buf, 0).expect("append"));
            }
            start.elapsed()
        });
        drop(log);
        fs::remove_dir_all(&dir).expect("remove log");
    });
    // For information: the same append without offset/time index entries
    // (one 8-byte index write and at most one 12-byte time-index write per
    // `index.interval.bytes`, i.e. every 4th append here).
    g.bench_function("fjord_log_no_index_entries", |b| {
        let dir = root.join("append-page-cache-no-index");
        let config = LogConfig {
            index_interval_bytes: usize::MAX / 4,
            ..LogConfig::default()
        };
        let mut log = fresh_log(&dir, config.clone());
        let mut buf = batch.to_vec();
        b.iter_custom(|iters| {
            if log.size_bytes() > RESET_BYTES {
                log = fresh_log(&dir, config.clone());
            }
            let start = Instant::now();
            for _ in 0..iters {
                buf.copy_from_slice(batch);
                black_box(log.append(&mut buf, 0).expect("append"));
            }
            start.elapsed()
        });
        drop(log);
        fs::remove_dir_all(&dir).expect("remove log");
    });
    g.bench_function("raw_write", |b| {
        let path = root.join("append-page-cache.raw");
        let mut file = fresh_file(&path);
        let mut written = 0u64;
        let mut buf = batch.to_vec();
        b.iter_custom(|iters| {
            if written > RESET_BYTES {
                file = fresh_file(&path);
                written = 0;
            }
            let start = Instant::now();
            for _ in 0..iters {
                buf.copy_from_slice(batch);
                file.write_all(black_box(&buf)).expect("write");
            }
            let elapsed = start.elapsed();
            written += iters * buf.len() as u64;
            elapsed
        });
        drop(file);
        fs::remove_file(&path).expect("remove file");
    });
    g.finish();
}

/// Runs `work(thread, iters)` on `threads` threads started together and
/// returns the wall time until the last one finished.
fn timed_threads(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || {
                    barrier.wait();
                    work(t, iters);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("bench thread");
        }
        start.elapsed()
    })
}

fn append_fsync(c: &mut Criterion, root: &Path, batch: &[u8]) {
    let mut g = c.benchmark_group("append_1KiB_fsync");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let fsync_config = LogConfig {
        durability: Durability::Fsync,
        ..LogConfig::default()
    };
    for threads in [THREADS, 1] {
        // One iteration is one append (write + fsync) per thread.
        g.throughput(Throughput::Bytes((threads * batch.len()) as u64));
        g.bench_function(format!("fjord_log_group_commit_{threads}_threads"), |b| {
            let dir = root.join("append-fsync");
            let log = fresh_log(&dir, fsync_config.clone());
            b.iter_custom(|iters| {
                timed_threads(threads, iters, |_, iters| {
                    let mut buf = batch.to_vec();
                    for _ in 0..iters {
                        buf.copy_from_slice(batch);
                        black_box(log.append(&mut buf, 0).expect("append"));
                    }
                })
            });
            drop(log);
            fs::remove_dir_all(&dir).expect("remove log");
        });
        g.bench_function(format!("raw_write_fdatasync_{threads}_threads"), |b| {
            let paths: Vec<PathBuf> = (0..threads)
                .map(|t| root.join(format!("append-fsync-{t}.raw")))
                .collect();
            let files: Vec<File> = paths.iter().map(|p| fresh_file(p)).collect();
            b.iter_custom(|iters| {
                timed_threads(threads, iters, |t, iters| {
                    let mut buf = batch.to_vec();
                    let mut file = &files[t];
                    for _ in 0..iters {
                        buf.copy_from_slice(batch);
                        file.write_all(&buf).expect("write");
                        file.sync_data().expect("fdatasync");
                    }
                })
            });
            drop(files);
            for path in paths {
                fs::remove_file(path).expect("remove file");
            }
        });
    }
    g.finish();
}

/// The cleanly closed log of [`BIG_LOG_BYTES`] the read and open benchmarks share.
struct BigLog {
    dir: PathBuf,
    bytes: u64,
    /// The index files as `Log::close` left them, before any reopen.
    indexes: Vec<(PathBuf, Vec<u8>)>,
}

impl BigLog {
    /// Puts the index files back as they were right after the close that
    /// followed the writes (an open may rewrite them).
    fn restore_indexes(&self) {
        for (path, bytes) in &self.indexes {
            fs::write(path, bytes).expect("restore index");
        }
    }
}

fn big_log<'a>(cell: &'a OnceCell<BigLog>, root: &Path, batch: &[u8]) -> &'a BigLog {
    cell.get_or_init(|| {
        let dir = root.join("big");
        let log = fresh_log(&dir, LogConfig::default());
        let start = Instant::now();
        // One append call carries ~1 MiB of batches; each batch gets its own
        // timestamps (1 ms apart), as if many producers had sent them.
        let per_call = READ_CHUNK / batch.len();
        let mut template = Vec::with_capacity(per_call * batch.len());
        for _ in 0..per_call {
            template.extend_from_slice(batch);
        }
        let mut buf = template.clone();
        let mut delta = 0;
        while log.size_bytes() < BIG_LOG_BYTES {
            buf.copy_from_slice(&template);
            for one in buf.chunks_exact_mut(batch.len()) {
                restamp(one, delta);
                delta += 1;
            }
            log.append(&mut buf, 0).expect("append");
        }
        log.close().expect("close");
        let bytes = log.size_bytes();
        eprintln!(
            "built a {bytes}-byte log of {} segments in {:.1?}",
            log.segment_count(),
            start.elapsed()
        );
        let indexes = fs::read_dir(&dir)
            .expect("read log dir")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "index" || e == "timeindex")
            })
            .map(|p| {
                let bytes = fs::read(&p).expect("read index");
                (p, bytes)
            })
            .collect();
        BigLog {
            dir,
            bytes,
            indexes,
        }
    })
}

/// The segment files of a log directory, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read log dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// Reads `files` with positioned reads of [`READ_CHUNK`] into one buffer,
/// passing each chunk to `visit`; returns the bytes read.
fn raw_read(files: &[PathBuf], buf: &mut [u8], mut visit: impl FnMut(&[u8])) -> u64 {
    let mut total = 0;
    for path in files {
        let file = File::open(path).expect("open segment");
        let len = file.metadata().expect("metadata").len();
        let mut pos = 0;
        while pos < len {
            let want = buf.len().min((len - pos) as usize);
            file.read_exact_at(&mut buf[..want], pos).expect("pread");
            visit(&buf[..want]);
            pos += want as u64;
        }
        total += len;
    }
    total
}

/// The offset after the last of the whole batches in `bytes`, found as a
/// consumer would: hop over the batches by their length field, then read
/// the last batch's header.
fn next_offset(bytes: &[u8]) -> i64 {
    let mut pos = 0;
    let mut last = 0;
    while pos < bytes.len() {
        last = pos;
        let mut len = [0u8; 4];
        len.copy_from_slice(&bytes[pos + 8..pos + 12]);
        pos += 12 + i32::from_be_bytes(len) as usize;
    }
    BatchHeader::parse(&bytes[last..])
        .expect("header")
        .next_offset()
}

fn read_page_cache(c: &mut Criterion, root: &Path, batch: &[u8], big: &OnceCell<BigLog>) {
    let mut g = c.benchmark_group("read_1GiB_page_cache");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Bytes(BIG_LOG_BYTES));
    g.bench_function("fjord_log", |b| {
        let big = big_log(big, root, batch);
        let log = Log::open(&big.dir, LogConfig::default()).expect("open");
        b.iter(|| {
            let mut offset = log.log_start_offset();
            let mut total = 0u64;
            while offset < log.log_end_offset() {
                let read = log.read(offset, READ_CHUNK, i64::MAX).expect("read");
                let bytes = read.slice.expect("slice").bytes().expect("bytes");
                offset = next_offset(&bytes);
                total += bytes.len() as u64;
            }
            assert_eq!(total, big.bytes);
            total
        });
    });
    g.bench_function("raw_pread", |b| {
        let big = big_log(big, root, batch);
        let files = segment_files(&big.dir);
        let mut buf = vec![0u8; READ_CHUNK];
        b.iter(|| {
            let total = raw_read(&files, &mut buf, |chunk| {
                black_box(chunk);
            });
            assert_eq!(total, big.bytes);
            total
        });
    });
    g.finish();
}

fn open(c: &mut Criterion, root: &Path, batch: &[u8], big: &OnceCell<BigLog>) {
    let mut g = c.benchmark_group("open_1GiB");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(BIG_LOG_BYTES));
    g.bench_function("fjord_log_clean", |b| {
        let big = big_log(big, root, batch);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // The first open after the close that followed the writes.
                big.restore_indexes();
                let start = Instant::now();
                let log = Log::open(&big.dir, LogConfig::default()).expect("open");
                total += start.elapsed();
                assert_eq!(log.size_bytes(), big.bytes);
                log.close().expect("close");
            }
            total
        });
    });
    g.bench_function("fjord_log_clean_reopen", |b| {
        let big = big_log(big, root, batch);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // A log that was already reopened (and closed) once since
                // its segments were written.
                let start = Instant::now();
                let log = Log::open(&big.dir, LogConfig::default()).expect("open");
                total += start.elapsed();
                assert_eq!(log.size_bytes(), big.bytes);
                log.close().expect("close");
            }
            total
        });
    });
    g.bench_function("fjord_log_unclean", |b| {
        let big = big_log(big, root, batch);
        let checkpoint = big.dir.join(RECOVERY_POINT_CHECKPOINT);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // As if the broker died before its first checkpoint: every
                // batch of every segment is checked.
                let _ = fs::remove_file(&checkpoint);
                let start = Instant::now();
                let log = Log::open(&big.dir, LogConfig::default()).expect("open");
                total += start.elapsed();
                assert_eq!(log.size_bytes(), big.bytes);
            }
            total
        });
        // Leave it cleanly closed again, as it was after the writes.
        Log::open(&big.dir, LogConfig::default())
            .and_then(|log| log.close())
            .expect("reopen and close");
        big.restore_indexes();
    });
    g.bench_function("raw_pread_crc32c", |b| {
        let big = big_log(big, root, batch);
        let files = segment_files(&big.dir);
        let mut buf = vec![0u8; READ_CHUNK];
        b.iter(|| {
            let mut crc = 0;
            raw_read(&files, &mut buf, |chunk| {
                crc = crc32c::crc32c_append(crc, chunk);
            });
            crc
        });
    });
    g.finish();
}
