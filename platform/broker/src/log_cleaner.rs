//! Runs the log cleaner (fjord-log's compaction) for partitions whose
//! `cleanup.policy` contains `compact`: `log.cleaner.threads` dedicated
//! threads, each owning a share of the partitions, look every
//! `log.cleaner.backoff.ms` for logs due for cleaning and clean them, and
//! at once (within a second) when one of their logs rolls a segment.
//!
//! The threads run at a lower CPU priority (nice +10 on Linux): compaction
//! is background work, and on a busy machine it should yield the CPU to the
//! threads answering produce and fetch requests rather than share it
//! evenly with them. (Not measured on its own: `scripts/bench-cleaner-latency`
//! shows produce latency ~1.07× with the cleaner running, docs/benchmarks.md.)
//! Dedicated threads, not the runtime's blocking pool, so the lowered
//! priority stays with the cleaner, the due check (which may read batch
//! headers) never runs on the async runtime, and shutdown can wait for a
//! clean in progress before the logs are closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::partition::Partition;
use crate::topic_registry::TopicRegistry;

/// The cleaner threads of a broker.
pub(crate) struct LogCleaner {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts `cleaner.threads` (`log.cleaner.threads`) cleaner threads over
/// the compacted partitions of `registry`, looking every `backoff`
/// (`log.cleaner.backoff.ms`).
pub(crate) fn start(
    registry: Arc<TopicRegistry>,
    cleaner: fjord_log::CleanerConfig,
    backoff: Duration,
) -> LogCleaner {
    let stop = Arc::new(AtomicBool::new(false));
    let count = cleaner.threads.max(1);
    let threads = (0..count)
        .filter_map(|index| {
            let registry = Arc::clone(&registry);
            let cleaner = cleaner.clone();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("fjord-cleaner-{index}"))
                .spawn(move || work(&registry, &cleaner, backoff, index, count, &stop))
                .map_err(|e| tracing::error!(error = %e, "cannot start a log cleaner thread"))
                .ok()
        })
        .collect();
    LogCleaner { stop, threads }
}

impl LogCleaner {
    /// Stops the threads, waiting for a clean in progress to finish (a
    /// clean is not interrupted half-way; its swap is crash-safe anyway).
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in &self.threads {
            thread.thread().unpark();
        }
        for thread in std::mem::take(&mut self.threads) {
            if thread.join().is_err() {
                tracing::error!("a log cleaner thread panicked");
            }
        }
    }
}

impl Drop for LogCleaner {
    /// A broker task that ends without [`LogCleaner::stop`] still stops
    /// its cleaner threads (they finish the clean in progress on their own).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for thread in &self.threads {
            thread.thread().unpark();
        }
    }
}

/// How often a cleaner thread between passes looks whether one of its logs
/// rolled a segment. A closed segment of a compacted log may be due for
/// cleaning at once, and waiting out `log.cleaner.backoff.ms` (15 s) would
/// leave it on disk beside the new active one meanwhile: a pipeline's
/// changelog then passes its bound of twice its live keys plus one segment
/// (docs/benchmarks.md).
const ROLL_CHECK: Duration = Duration::from_secs(1);

/// This thread's share of the compacted partitions.
fn mine(registry: &TopicRegistry, index: usize, count: usize) -> Vec<Arc<Partition>> {
    registry
        .list()
        .iter()
        .flat_map(|topic| topic.partitions())
        .filter(|p| p.log().config().cleanup_policy.compacts())
        .enumerate()
        .filter(|(i, _)| i % count == index)
        .map(|(_, p)| p)
        .collect()
}

/// A partition's key in a map of partitions held by the map itself.
fn address(partition: &Arc<Partition>) -> usize {
    Arc::as_ptr(partition) as usize
}

fn work(
    registry: &TopicRegistry,
    cleaner: &fjord_log::CleanerConfig,
    backoff: Duration,
    index: usize,
    count: usize,
    stop: &AtomicBool,
) {
    lower_priority();
    let every = backoff.max(Duration::from_millis(10));
    // Each partition's active segment when the last pass began: a roll
    // since (appends go on during a pass) moves it forward.
    let mut at_last_pass: HashMap<usize, (Arc<Partition>, i64)> = HashMap::new();
    while !stop.load(Ordering::Acquire) {
        let wake = Instant::now() + every;
        while Instant::now() < wake {
            if stop.load(Ordering::Acquire) {
                return;
            }
            // Unparked by `stop`. Between passes (every
            // `log.cleaner.backoff.ms`) the thread wakes once a second to
            // look for a roll, which starts a pass at once.
            std::thread::park_timeout(
                wake.saturating_duration_since(Instant::now())
                    .min(ROLL_CHECK),
            );
            // A partition new since the last pass has rolled once it has
            // more than its first segment.
            let rolled = mine(registry, index, count).iter().any(|p| {
                let log = p.log();
                match at_last_pass.get(&address(p)) {
                    Some((_, active)) => log.active_base_offset() > *active,
                    None => log.segment_count() > 1,
                }
            });
            if rolled {
                break;
            }
        }
        let mine = mine(registry, index, count);
        at_last_pass = mine
            .iter()
            .map(|p| (address(p), (Arc::clone(p), p.log().active_base_offset())))
            .collect();
        for partition in mine {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let log = partition.log();
            match log.clean(now_ms(), cleaner) {
                Ok(Some(stats)) => {
                    crate::instruments::cleaned(&stats, now_ms());
                    tracing::debug!(
                        topic = partition.topic(),
                        partition = partition.index(),
                        ?stats,
                        "compacted"
                    )
                }
                Ok(None) => {}
                // Retried at the next round; the other logs are cleaned.
                Err(e) => tracing::error!(
                    topic = partition.topic(),
                    partition = partition.index(),
                    dir = %log.dir().display(),
                    error = %e,
                    "log cleaning failed"
                ),
            }
        }
    }
}

/// Nice +10 (at most 19) for the calling thread, relative to the process's
/// (Linux keeps a nice value per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id.
        let done = unsafe {
            let tid = libc::gettid() as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, (current + 10).min(19))
        };
        if done != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the log cleaner's priority"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The nice value lands on the cleaner thread only, not the process.
    #[test]
    fn lowering_priority_is_per_thread() {
        let nice_of = |tid: libc::pid_t| {
            // SAFETY: reads the scheduling priority of a thread id; no
            // memory is passed.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
        };
        // SAFETY: gettid takes nothing and cannot fail.
        let main = unsafe { libc::gettid() };
        let before = nice_of(main);
        let cleaner = std::thread::spawn(move || {
            super::lower_priority();
            // SAFETY: gettid takes nothing and cannot fail.
            nice_of(unsafe { libc::gettid() })
        })
        .join()
        .unwrap();
        assert_eq!(cleaner, (before + 10).min(19));
        assert_eq!(nice_of(main), before);
    }
}
