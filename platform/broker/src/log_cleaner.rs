//! Runs the log cleaner (fjord-log's compaction) for partitions whose
//! `cleanup.policy` contains `compact`: `log.cleaner.threads` dedicated
//! threads, each owning a share of the partitions, look every
//! `log.cleaner.backoff.ms` for logs due for cleaning and clean them, and
//! at once when one of their logs rolls a segment (the log's roll hook
//! wakes them; they do not poll). The `log.cleaner.*` settings are dynamic
//! broker configs ([`LogCleaner::reconfigure`]): each thread uses them
//! from its next pass, and threads are started or retire to match
//! `log.cleaner.threads`. While the threads' shares are redistributed a
//! log may be picked by two threads; its cleans are serialised by the log
//! (`Log::clean` holds the log's cleaner lock), so that only costs a
//! pass that finds nothing due.
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
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjord_log::{CleanerConfig, RollHook};
use parking_lot::{Condvar, Mutex};

use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::partition::Partition;
use crate::topic_registry::TopicRegistry;

/// The cleaner threads of a broker.
pub(crate) struct LogCleaner {
    shared: Arc<Shared>,
}

/// What the cleaner threads share: their settings, and what they wait on
/// between passes (a roll of a compacted log, counted by the logs' roll
/// hook; a change of settings; the broker stopping).
struct Shared {
    registry: Arc<TopicRegistry>,
    state: Mutex<State>,
    changed: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct State {
    rolls: u64,
    stop: bool,
    settings: Settings,
    /// Which thread indexes run (a thread past `settings.threads` retires
    /// itself; one is started again where none runs).
    running: Vec<bool>,
}

/// The dynamic settings of the cleaner (`log.cleaner.*`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub cleaner: CleanerConfig,
    /// `log.cleaner.backoff.ms`.
    pub backoff: Duration,
}

impl Settings {
    pub(crate) fn of(config: &BrokerConfig) -> Settings {
        Settings {
            cleaner: config.cleaner_config(),
            backoff: Duration::from_millis(config.log_cleaner_backoff_ms),
        }
    }
}

/// Starts `log.cleaner.threads` cleaner threads over the compacted
/// partitions of `registry`, looking every `log.cleaner.backoff.ms`, and
/// has every log of the registry wake them when a compacted log rolls a
/// segment.
pub(crate) fn start(registry: Arc<TopicRegistry>, settings: Settings) -> LogCleaner {
    let shared = Arc::new(Shared {
        registry: Arc::clone(&registry),
        state: Mutex::new(State {
            rolls: 0,
            stop: false,
            settings: settings.clone(),
            running: Vec::new(),
        }),
        changed: Condvar::new(),
        threads: Mutex::new(Vec::new()),
    });
    // Weak: the registry keeps its hooks, and the cleaner keeps the
    // registry.
    let hook = Arc::downgrade(&shared);
    registry.on_roll(RollHook::new(move |log| {
        if log.config().cleanup_policy.compacts()
            && let Some(shared) = hook.upgrade()
        {
            shared.state.lock().rolls += 1;
            shared.changed.notify_all();
        }
    }));
    spawn_missing(&shared, &mut shared.state.lock());
    LogCleaner { shared }
}

/// Starts a thread for every index below `settings.threads` where none
/// runs.
fn spawn_missing(shared: &Arc<Shared>, state: &mut State) {
    let count = state.settings.cleaner.threads.max(1);
    if state.running.len() < count {
        state.running.resize(count, false);
    }
    for index in 0..count {
        if state.running[index] {
            continue;
        }
        let worker = Arc::clone(shared);
        match std::thread::Builder::new()
            .name(format!("fjord-cleaner-{index}"))
            .spawn(move || work(&worker, index))
        {
            Ok(thread) => {
                state.running[index] = true;
                shared.threads.lock().push(thread);
            }
            Err(e) => tracing::error!(error = %e, "cannot start a log cleaner thread"),
        }
    }
}

impl LogCleaner {
    /// A handle that gives this cleaner new settings (dynamic broker
    /// configs) while it runs: the threads use them from their next pass;
    /// threads are started or retire (one in the middle of a clean
    /// finishes it first) to match `log.cleaner.threads`. It does not keep
    /// the cleaner alive (the registry's dynamic config hook holds it).
    pub(crate) fn reconfigurer(&self) -> impl Fn(Settings) + Send + Sync + 'static {
        let shared: Weak<Shared> = Arc::downgrade(&self.shared);
        move |settings| {
            if let Some(shared) = shared.upgrade() {
                reconfigure(&shared, settings);
            }
        }
    }

    /// Stops the threads, waiting for a clean in progress to finish (a
    /// clean is not interrupted half-way; its swap is crash-safe anyway).
    pub(crate) fn stop(self) {
        self.shared.stop();
        let threads = std::mem::take(&mut *self.shared.threads.lock());
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("a log cleaner thread panicked");
            }
        }
    }
}

fn reconfigure(shared: &Arc<Shared>, settings: Settings) {
    let mut state = shared.state.lock();
    if state.stop || state.settings == settings {
        return;
    }
    tracing::info!(?settings, "log cleaner settings changed");
    state.settings = settings;
    spawn_missing(shared, &mut state);
    shared.changed.notify_all();
}

impl Shared {
    fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
    }

    fn stopped(&self) -> bool {
        self.state.lock().stop
    }
}

impl Drop for LogCleaner {
    /// A broker task that ends without [`LogCleaner::stop`] still stops
    /// its cleaner threads (they finish the clean in progress on their own).
    fn drop(&mut self) {
        self.shared.stop();
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

fn work(shared: &Shared, index: usize) {
    lower_priority();
    let registry = &shared.registry;
    let mut at_last_pass = ActiveAtLastPass::new();
    let mut rolls_seen = 0;
    let mut last_round = Instant::now();
    loop {
        // Until the next round (every `log.cleaner.backoff.ms`) or a roll
        // of one of this thread's logs, whichever comes first. A roll of
        // another thread's log wakes this one too, and it waits on; so does
        // a change of settings (the round's time is computed again).
        let (count, cleaner) = loop {
            let mut state = shared.state.lock();
            if state.stop {
                return;
            }
            let count = state.settings.cleaner.threads.max(1);
            if index >= count {
                // Retired by a lower `log.cleaner.threads`; marked under
                // the lock so that a raise in between starts a new one.
                state.running[index] = false;
                return;
            }
            let every = state.settings.backoff.max(Duration::from_millis(10));
            let cleaner = state.settings.cleaner.clone();
            if state.rolls != rolls_seen {
                rolls_seen = state.rolls;
                drop(state);
                if mine(registry, index, count)
                    .iter()
                    .any(|p| rolled(p, &at_last_pass))
                {
                    break (count, cleaner);
                }
                continue;
            }
            let next_round = last_round + every;
            if Instant::now() >= next_round
                || shared
                    .changed
                    .wait_until(&mut state, next_round)
                    .timed_out()
            {
                break (count, cleaner);
            }
        };
        last_round = Instant::now();
        let mine = mine(registry, index, count);
        at_last_pass = mine
            .iter()
            .map(|p| {
                let key = (p.topic().to_string(), p.index());
                (key, p.log().active_base_offset())
            })
            .collect();
        for partition in mine {
            if shared.stopped() {
                return;
            }
            let log = partition.log();
            match log.clean(now_ms(), &cleaner) {
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
