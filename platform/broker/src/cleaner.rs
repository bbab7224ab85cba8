//! Schedules the log cleaner (fjord-log's compaction) for partitions whose
//! `cleanup.policy` contains `compact`: every `log.cleaner.backoff.ms`, the
//! logs due for cleaning are cleaned on up to `log.cleaner.threads` blocking
//! threads, so the async runtime never waits for it.

use std::sync::Arc;
use std::time::Duration;

use crate::partition::Partition;
use crate::server::{BrokerState, now_ms};

/// Runs until the broker's task set is dropped.
pub(crate) async fn run(state: Arc<BrokerState>) {
    let every = Duration::from_millis(state.config.log_cleaner_backoff_ms.max(10));
    let cleaner = state.config.cleaner_config();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = now_ms();
        let due: Vec<Arc<Partition>> = state
            .registry
            .list()
            .iter()
            .flat_map(|topic| topic.partitions())
            .filter(|p| p.log().config().cleanup_policy.compacts())
            .filter(|p| p.log().cleanability(now).is_ok_and(|c| c.due))
            .collect();
        if due.is_empty() {
            continue;
        }
        let threads = cleaner.threads.max(1);
        let mut workers = Vec::with_capacity(threads);
        for t in 0..threads {
            let mine: Vec<Arc<Partition>> = due.iter().skip(t).step_by(threads).cloned().collect();
            if mine.is_empty() {
                continue;
            }
            let cleaner = cleaner.clone();
            workers.push(tokio::task::spawn_blocking(move || {
                for partition in mine {
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
                        Err(e) => tracing::error!(
                            dir = %log.dir().display(),
                            error = %e,
                            "log cleaning failed"
                        ),
                    }
                }
            }));
        }
        for worker in workers {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "log cleaner task failed");
            }
        }
    }
}
