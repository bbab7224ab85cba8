//! The descriptor cache: segment `.log` files are opened on demand and kept
//! open in a bounded, least-recently-used cache, so the descriptors a broker
//! holds do not grow with its partitions and segments.
//!
//! A process has one limit on open descriptors (`RLIMIT_NOFILE`), so one
//! cache ([`FileCache::global`]) serves every [`Log`](crate::Log) of the
//! process by default; a log can be given its own ([`Log::open_with`](crate::Log::open_with)),
//! which tests do. Each segment's file is a [`CachedFile`]: the path and a
//! key into the cache. An operation takes the file's `Arc<File>` once and
//! uses it to the end, so eviction never closes a descriptor under a reader:
//! the descriptor closes when the last holder drops it (a fetch answer being
//! sent holds it until sent). The bound is therefore the capacity plus the
//! reads in flight.
//!
//! A segment deleted by retention or replaced by the cleaner is *retired*
//! first: it is never reopened by path (the path may already name the
//! cleaned replacement), and an operation that finds it retired gets an
//! error [`is_retired`] recognises, so the log can retry on the segments it
//! has now.
//!
//! Not for index files: their entries live in memory, and their files are
//! opened only to append, truncate or fsync (see `index.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use lru::LruCache;
use parking_lot::Mutex;

use crate::LogError;

/// The fewest descriptors a cache keeps, whatever it is told: a log needs
/// its active segment and the segment being read.
pub const MIN_OPEN_FILES: usize = 2;

/// A bounded cache of open segment files, least recently used evicted first.
///
/// ```
/// use fjord_log::FileCache;
/// let cache = FileCache::new(100);
/// assert_eq!((cache.capacity(), cache.open_files()), (100, 0));
/// ```
pub struct FileCache {
    capacity: AtomicUsize,
    next_key: AtomicU64,
    files: Mutex<LruCache<u64, Arc<File>>>,
    opened: AtomicU64,
    evicted: AtomicU64,
    /// When the last "out of descriptors" warning was logged (ms).
    warned_ms: AtomicI64,
}

impl std::fmt::Debug for FileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileCache")
            .field("capacity", &self.capacity())
            .field("open_files", &self.open_files())
            .finish()
    }
}

impl FileCache {
    /// A cache keeping at most `capacity` files open (at least
    /// [`MIN_OPEN_FILES`]).
    pub fn new(capacity: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            capacity: AtomicUsize::new(capacity.max(MIN_OPEN_FILES)),
            next_key: AtomicU64::new(0),
            files: Mutex::new(LruCache::unbounded()),
            opened: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            warned_ms: AtomicI64::new(i64::MIN),
        })
    }

    /// The process's cache, used by [`Log::open`](crate::Log::open). Its
    /// capacity starts at [`FileCache::default_capacity`] for the limit in
    /// force when it is first used; the broker sets it at start.
    pub fn global() -> &'static Arc<FileCache> {
        static GLOBAL: OnceLock<Arc<FileCache>> = OnceLock::new();
        GLOBAL.get_or_init(|| FileCache::new(FileCache::default_capacity()))
    }

    /// Half the soft `RLIMIT_NOFILE` in force: the other half is left for
    /// connections, index files being written and everything else.
    pub fn default_capacity() -> usize {
        let (soft, _) = nofile_limit();
        usize::try_from(soft / 2).unwrap_or(usize::MAX)
    }

    /// The most files kept open.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Changes the capacity (at least [`MIN_OPEN_FILES`]), closing the least
    /// recently used files beyond it.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity.max(MIN_OPEN_FILES), Ordering::Relaxed);
        let evicted = self.trim(&mut self.files.lock());
        drop(evicted);
    }

    /// Files open in the cache now.
    pub fn open_files(&self) -> usize {
        self.files.lock().len()
    }

    /// Files opened since the cache was made (misses).
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Files closed to make room since the cache was made.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    fn lookup(&self, key: u64) -> Option<Arc<File>> {
        self.files.lock().get(&key).cloned()
    }

    fn insert(&self, key: u64, file: Arc<File>) {
        let evicted = {
            let mut files = self.files.lock();
            files.put(key, file);
            self.trim(&mut files)
        };
        // Closing is a system call: not under the lock.
        drop(evicted);
    }

    fn forget(&self, key: u64) {
        let removed = self.files.lock().pop(&key);
        drop(removed);
    }

    /// Pops the least recently used files beyond the capacity; the caller
    /// drops them after releasing the lock.
    fn trim(&self, files: &mut LruCache<u64, Arc<File>>) -> Vec<Arc<File>> {
        let capacity = self.capacity();
        let mut evicted = Vec::new();
        while files.len() > capacity {
            match files.pop_lru() {
                Some((_, file)) => evicted.push(file),
                None => break,
            }
        }
        self.evicted
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        evicted
    }

    /// Closes half of the cached files (at least one) because the process
    /// ran out of descriptors; returns how many were closed.
    fn shed(&self) -> usize {
        let evicted: Vec<Arc<File>> = {
            let mut files = self.files.lock();
            let count = files.len().div_ceil(2);
            (0..count)
                .filter_map(|_| files.pop_lru())
                .map(|(_, f)| f)
                .collect()
        };
        self.evicted
            .fetch_add(evicted.len() as u64, Ordering::Relaxed);
        evicted.len()
    }

    /// Opens with `open`; when the process is out of descriptors, closes
    /// half the cache and tries once more. Still out: the error names the
    /// limit ([`LogError::TooManyOpenFiles`]).
    fn open_retrying(&self, open: impl Fn() -> io::Result<File>) -> Result<File, LogError> {
        let file = match open() {
            Err(e) if out_of_descriptors(&e) => {
                let shed = self.shed();
                let now = crate::log::now_ms();
                let last = self.warned_ms.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 60_000
                    && self
                        .warned_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    let (soft, hard) = nofile_limit();
                    tracing::warn!(
                        soft_limit = soft,
                        hard_limit = hard,
                        capacity = self.capacity(),
                        closed = shed,
                        "out of file descriptors: closed cached segment files (logged once a minute)"
                    );
                }
                if shed == 0 {
                    return Err(e.into());
                }
                open()?
            }
            other => other?,
        };
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(file)
    }
}

/// One segment file reached through a [`FileCache`].
pub(crate) struct CachedFile {
    cache: Arc<FileCache>,
    key: u64,
    path: PathBuf,
    /// Set when the segment is deleted or replaced; held while opening, so
    /// that no open of the path can follow retirement.
    retired: Mutex<bool>,
}

impl std::fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedFile")
            .field("path", &self.path)
            .field("retired", &*self.retired.lock())
            .finish()
    }
}

impl CachedFile {
    /// Opens (`create`: or creates) the file at `path` for reading and
    /// writing and caches its descriptor.
    pub(crate) fn open(
        cache: &Arc<FileCache>,
        path: PathBuf,
        create: bool,
    ) -> Result<(CachedFile, Arc<File>), LogError> {
        let file = Arc::new(cache.open_retrying(|| open_rw(&path, create))?);
        let cached = CachedFile {
            cache: Arc::clone(cache),
            key: cache.next_key.fetch_add(1, Ordering::Relaxed),
            path,
            retired: Mutex::new(false),
        };
        cache.insert(cached.key, Arc::clone(&file));
        Ok((cached, file))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, opened again if it was evicted. Fails with an error
    /// [`is_retired`] recognises once the file is retired.
    pub(crate) fn get(&self) -> Result<Arc<File>, LogError> {
        if let Some(file) = self.cache.lookup(self.key) {
            return Ok(file);
        }
        let retired = self.retired.lock();
        if *retired {
            return Err(retired_error(&self.path));
        }
        // Another reader may have opened it while this one waited.
        if let Some(file) = self.cache.lookup(self.key) {
            return Ok(file);
        }
        let file = Arc::new(self.cache.open_retrying(|| open_rw(&self.path, false))?);
        self.cache.insert(self.key, Arc::clone(&file));
        Ok(file)
    }

    /// Closes the cached descriptor and refuses every later open: called
    /// before the file is deleted or replaced. Holders of the file keep
    /// reading it.
    pub(crate) fn retire(&self) {
        let mut retired = self.retired.lock();
        *retired = true;
        self.cache.forget(self.key);
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.cache.forget(self.key);
    }
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .create(create)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
}

/// The marker inside the I/O error of a retired segment.
#[derive(Debug)]
struct Retired(PathBuf);

impl std::fmt::Display for Retired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "segment {} was deleted or replaced while in use",
            self.0.display()
        )
    }
}

impl std::error::Error for Retired {}

fn retired_error(path: &Path) -> LogError {
    LogError::Io(io::Error::new(
        io::ErrorKind::NotFound,
        Retired(path.to_path_buf()),
    ))
}

/// Whether `error` comes from a segment retired while an operation used
/// it: the operation can start over on the log's current segments.
pub(crate) fn is_retired(error: &LogError) -> bool {
    match error {
        LogError::Io(e) => e.get_ref().is_some_and(|inner| inner.is::<Retired>()),
        _ => false,
    }
}

/// Whether an I/O error means the process (`EMFILE`) or the system
/// (`ENFILE`) has no descriptor left.
pub(crate) fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE)
    )
}

/// The process's `RLIMIT_NOFILE`: (soft, hard), `u64::MAX` for unlimited.
#[allow(
    clippy::unnecessary_cast,
    reason = "rlim_t is u64 on 64-bit Linux, narrower on some other targets"
)]
pub fn nofile_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok {
        return (1024, 1024);
    }
    let unlimited = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v as u64
        }
    };
    (unlimited(limit.rlim_cur), unlimited(limit.rlim_max))
}
