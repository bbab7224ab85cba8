//! Free space of the data directory's file system, and what the broker
//! does when it runs low: below `log.dir.reserve.bytes` produce to user
//! topics is refused (KAFKA_STORAGE_ERROR, Kafka's answer when a log
//! directory cannot be written) and `/health/ready` reports degraded, so
//! that the rest stays for the offsets topic, the platform's internal
//! topics and the topic metadata files: group commits keep working.
//! Refused produces, for the reserve or a write that failed, are logged
//! as one ERROR line per interval with a count of the others.
//!
//! Not for: quotas on how fast a client writes, or retention (which frees
//! space by its own settings); replication into a follower is not refused
//! either (its leader took the records already).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Refused produces are logged at most once per this interval.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The free space of the data directory against its reserve.
#[derive(Debug)]
pub(crate) struct DiskSpace {
    dir: PathBuf,
    /// `log.dir.reserve.bytes`; 0: never below it.
    reserve: u64,
    interval: Duration,
    log: Mutex<RefusalLog>,
}

#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<Instant>,
    /// Refusals since the last line.
    unlogged: u64,
}

/// The data directory's free space as `/health/ready` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskStatus {
    /// Bytes an unprivileged writer may still use; `None` when the file
    /// system could not be asked.
    pub free_bytes: Option<u64>,
    /// `log.dir.reserve.bytes`.
    pub reserve_bytes: u64,
}

impl DiskStatus {
    /// Below the reserve: produce to user topics is refused.
    pub fn degraded(&self) -> bool {
        self.free_bytes
            .is_some_and(|free| free < self.reserve_bytes)
    }
}

impl DiskSpace {
    /// The space of `dir`'s file system, kept above `reserve` bytes.
    pub(crate) fn new(dir: impl Into<PathBuf>, reserve: u64) -> Self {
        DiskSpace {
            dir: dir.into(),
            reserve,
            interval: REFUSAL_LOG_INTERVAL,
            log: Mutex::new(RefusalLog::default()),
        }
    }

    /// The free space now.
    pub(crate) fn status(&self) -> DiskStatus {
        let free_bytes = if self.reserve == 0 {
            None
        } else {
            match free_bytes(&self.dir) {
                Ok(free) => Some(free),
                Err(e) => {
                    tracing::debug!(dir = %self.dir.display(), error = %e, "statvfs failed");
                    None
                }
            }
        };
        DiskStatus {
            free_bytes,
            reserve_bytes: self.reserve,
        }
    }

    /// Why a produce to a user topic is refused now: the free bytes, when
    /// they are below the reserve. One `statvfs` call.
    pub(crate) fn below_reserve(&self) -> Option<u64> {
        let status = self.status();
        status.free_bytes.filter(|_| status.degraded())
    }

    /// The answer's message for a produce refused at `free` bytes.
    pub(crate) fn refusal_message(&self, free: u64) -> String {
        format!(
            "the broker's disk has {free} bytes free, below log.dir.reserve.bytes={}",
            self.reserve
        )
    }

    /// Logs a produce to `topic`-`partition` refused for `reason`: one
    /// ERROR line per interval, with the free bytes and how many others
    /// were refused since the last line. Returns whether it logged.
    pub(crate) fn refused(&self, topic: &str, partition: i32, reason: &str) -> bool {
        let now = Instant::now();
        let others = {
            let mut log = self.log.lock();
            if log
                .last
                .is_some_and(|last| now.duration_since(last) < self.interval)
            {
                log.unlogged += 1;
                return false;
            }
            log.last = Some(now);
            std::mem::take(&mut log.unlogged)
        };
        let free_bytes = free_bytes(&self.dir).ok();
        tracing::error!(
            topic,
            partition,
            free_bytes,
            reserve_bytes = self.reserve,
            others,
            reason,
            "produce refused: the data directory is (nearly) full (others: produces refused since the last such line)"
        );
        true
    }
}

/// Bytes of `dir`'s file system an unprivileged writer may still use
/// (`statvfs`: available blocks times the fragment size).
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    Ok(file_system_space(dir)?.usable_bytes)
}

/// The size of a file system and what is left of it for an unprivileged
/// writer (DescribeLogDirs v4 reports both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSystemSpace {
    /// All blocks times the fragment size.
    pub total_bytes: u64,
    /// Available blocks times the fragment size.
    pub usable_bytes: u64,
}

/// The space of the file system `dir` is on (`statvfs`).
pub fn file_system_space(dir: &Path) -> io::Result<FileSystemSpace> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call,
    // and `stat` points to memory for one `statvfs`, which the call fills
    // when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `stat`.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ by platform
    let fragment = stat.f_frsize as u64;
    #[allow(clippy::unnecessary_cast)]
    Ok(FileSystemSpace {
        total_bytes: (stat.f_blocks as u64).saturating_mul(fragment),
        usable_bytes: (stat.f_bavail as u64).saturating_mul(fragment),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_of_a_real_directory() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let free = free_bytes(dir.path())?;
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
        let space = file_system_space(dir.path())?;
        assert!(space.total_bytes >= space.usable_bytes && space.usable_bytes > 0);
        Ok(())
    }

    #[test]
    fn a_reserve_above_the_free_space_is_degraded() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let free = free_bytes(dir.path())?;
        assert_eq!(DiskSpace::new(dir.path(), 0).below_reserve(), None);
        assert!(!DiskSpace::new(dir.path(), 0).status().degraded());
        assert_eq!(DiskSpace::new(dir.path(), 1).below_reserve(), None);
        let full = DiskSpace::new(dir.path(), free.saturating_mul(4).max(1 << 40));
        assert!(full.status().degraded());
        assert!(full.below_reserve().is_some_and(|f| f > 0));
        Ok(())
    }

    #[test]
    fn refusals_are_logged_once_per_interval() {
        let mut disk = DiskSpace::new("/", u64::MAX);
        disk.interval = Duration::from_millis(300);
        let start = Instant::now();
        let (mut lines, mut calls) = (0, 0);
        while start.elapsed() < Duration::from_millis(1000) {
            lines += usize::from(disk.refused("t", 0, "test"));
            calls += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        // At 0, 300, 600 and 900 ms at most (fewer on a busy machine).
        assert!((2..=4).contains(&lines), "{lines} lines");
        assert!(calls > 20, "{calls} refusals");
    }
}
