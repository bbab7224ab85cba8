//! Runs the log cleaner (fjord-log's compaction) for partitions whose
//! `cleanup.policy` contains `compact`: `log.cleaner.threads` dedicated
//! threads, each owning a share of the partitions, look every
//! `log.cleaner.backoff.ms` for logs due for cleaning and clean them, and
//! at once when one of their logs rolls a segment (the log's roll hook
//! wakes them; they do not poll).
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
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjord_log::RollHook;
use parking_lot::{Condvar, Mutex};

use crate::clock::now_ms;
use crate::partition::Partition;
use crate::topic_registry::TopicRegistry;

/// The cleaner threads of a broker.
pub(crate) struct LogCleaner {
    wake: Arc<Wake>,
    threads: Vec<JoinHandle<()>>,
}

/// What the cleaner threads wait on between passes: a roll of a compacted
/// log (counted by the logs' roll hook), or the broker stopping.
#[derive(Default)]
struct Wake {
    state: Mutex<WakeState>,
    changed: Condvar,
}

#[derive(Default)]
struct WakeState {
    rolls: u64,
    stop: bool,
}

impl Wake {
    fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
    }

    fn stopped(&self) -> bool {
        self.state.lock().stop
    }
}

/// Starts `cleaner.threads` (`log.cleaner.threads`) cleaner threads over
/// the compacted partitions of `registry`, looking every `backoff`
/// (`log.cleaner.backoff.ms`), and has every log of the registry wake them
/// when a compacted log rolls a segment.
pub(crate) fn start(
    registry: Arc<TopicRegistry>,
    cleaner: fjord_log::CleanerConfig,
    backoff: Duration,
) -> LogCleaner {
    let wake = Arc::new(Wake::default());
    let hook = Arc::clone(&wake);
    registry.on_roll(RollHook::new(move |log| {
        if log.config().cleanup_policy.compacts() {
            hook.state.lock().rolls += 1;
            hook.changed.notify_all();
        }
    }));
    let count = cleaner.threads.max(1);
    let threads = (0..count)
        .filter_map(|index| {
            let registry = Arc::clone(&registry);
            let cleaner = cleaner.clone();
            let wake = Arc::clone(&wake);
            std::thread::Builder::new()
                .name(format!("fjord-cleaner-{index}"))
                .spawn(move || work(&registry, &cleaner, backoff, index, count, &wake))
                .map_err(|e| tracing::error!(error = %e, "cannot start a log cleaner thread"))
                .ok()
        })
        .collect();
    LogCleaner { wake, threads }
}

impl LogCleaner {
    /// Stops the threads, waiting for a clean in progress to finish (a
    /// clean is not interrupted half-way; its swap is crash-safe anyway).
    pub(crate) fn stop(mut self) {
        self.wake.stop();
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
        self.wake.stop();
    }
}

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

/// Each partition's active segment when the last pass began, by topic and
/// index (not holding the partition: a deleted topic's log is closed).
type ActiveAtLastPass = HashMap<(String, i32), i64>;

/// Whether `partition` rolled a segment since the last pass: a closed
/// segment of a compacted log may be due for cleaning at once, and waiting
/// out `log.cleaner.backoff.ms` (15 s) would leave it on disk beside the
/// new active one meanwhile: a pipeline's changelog then passes its bound
/// of twice its live keys plus one segment (docs/benchmarks.md).
fn rolled(partition: &Partition, at_last_pass: &ActiveAtLastPass) -> bool {
    let log = partition.log();
    match at_last_pass.get(&(partition.topic().to_string(), partition.index())) {
        Some(active) => log.active_base_offset() > *active,
        // New since the last pass: it has rolled once it has more than
        // its first segment.
        None => log.segment_count() > 1,
    }
}

fn work(
    registry: &TopicRegistry,
    cleaner: &fjord_log::CleanerConfig,
    backoff: Duration,
    index: usize,
    count: usize,
    wake: &Wake,
) {
    lower_priority();
    let every = backoff.max(Duration::from_millis(10));
    let mut at_last_pass = ActiveAtLastPass::new();
    let mut rolls_seen = 0;
    loop {
        // Until the next round (every `log.cleaner.backoff.ms`) or a roll
        // of one of this thread's logs, whichever comes first. A roll of
        // another thread's log wakes this one too, and it waits on.
        let next_round = Instant::now() + every;
        loop {
            let mut woken = wake.state.lock();
            if woken.stop {
                return;
            }
            if woken.rolls != rolls_seen {
                rolls_seen = woken.rolls;
                drop(woken);
                if mine(registry, index, count)
                    .iter()
                    .any(|p| rolled(p, &at_last_pass))
                {
                    break;
                }
                continue;
            }
            if wake.changed.wait_until(&mut woken, next_round).timed_out() {
                break;
            }
        }
        let mine = mine(registry, index, count);
        at_last_pass = mine
            .iter()
            .map(|p| {
                let key = (p.topic().to_string(), p.index());
                (key, p.log().active_base_offset())
            })
            .collect();
        for partition in mine {
            if wake.stopped() {
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
