//! A leader's view of its partition's replicas (Kafka's ISR protocol, the
//! leader's half): how far each follower has fetched, when it was last
//! caught up, which followers should join or leave the in-sync replica set,
//! and the high watermark that follows from it.
//!
//! This is bookkeeping only: it does not talk to the controller (the
//! partition proposes the ISR changes it returns, and applies the ISR the
//! controller commits) and it does not read the log.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch. `None`
    /// until it fetches from this leader (in this leader epoch).
    log_end: Option<i64>,
    /// The last time the follower had everything the leader had (Kafka's
    /// `lastCaughtUpTimeMs`).
    caught_up_at: Instant,
    /// The leader's log end at the follower's previous fetch, and when that
    /// fetch came: a fetch reaching it proves the follower was caught up
    /// at that time.
    previous_fetch: Option<(i64, Instant)>,
}

/// A change of the in-sync replica set this leader should propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IsrChange {
    /// The whole new ISR.
    pub isr: Vec<i32>,
}

/// The replicas of a partition this broker leads.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaSet {
    local: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    partition_epoch: i32,
    followers: HashMap<i32, FollowerProgress>,
}

impl ReplicaSet {
    /// A leader `local` of `replicas` with the committed `isr`. Followers
    /// count as caught up now, so that none is dropped from the ISR before
    /// it had `replica.lag.time.max.ms` to fetch from the new leader.
    pub(crate) fn new(
        local: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        partition_epoch: i32,
        now: Instant,
    ) -> Self {
        let followers = replicas
            .iter()
            .filter(|&&r| r != local)
            .map(|&r| {
                (
                    r,
                    FollowerProgress {
                        log_end: None,
                        caught_up_at: now,
                        previous_fetch: None,
                    },
                )
            })
            .collect();
        ReplicaSet {
            local,
            replicas,
            isr,
            partition_epoch,
            followers,
        }
    }

    /// A partition with no other replica (a single node).
    pub(crate) fn solo(local: i32) -> Self {
        ReplicaSet::new(local, vec![local], vec![local], 0, Instant::now())
    }

    /// The committed in-sync replicas.
    pub(crate) fn isr(&self) -> &[i32] {
        &self.isr
    }

    /// The partition epoch the ISR was committed in (AlterPartition must
    /// name it).
    pub(crate) fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The controller committed a new ISR or replica list (same leader
    /// epoch). Progress of followers that stay is kept.
    pub(crate) fn update(
        &mut self,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        partition_epoch: i32,
        now: Instant,
    ) {
        self.followers.retain(|r, _| replicas.contains(r));
        for &r in &replicas {
            if r != self.local {
                self.followers.entry(r).or_insert(FollowerProgress {
                    log_end: None,
                    caught_up_at: now,
                    previous_fetch: None,
                });
            }
        }
        self.replicas = replicas;
        self.isr = isr;
        self.partition_epoch = partition_epoch;
    }

    /// The high watermark: the smallest log end among the ISR (the leader's
    /// own is `local_log_end`). A member that has not fetched yet holds it
    /// where it is (`None`).
    pub(crate) fn high_watermark(&self, local_log_end: i64) -> Option<i64> {
        let mut hw = local_log_end;
        for member in &self.isr {
            if *member == self.local {
                continue;
            }
            // A member that is not a replica any more cannot fetch: leave
            // it out rather than stall (the controller removes it).
            let Some(progress) = self.followers.get(member) else {
                continue;
            };
            hw = hw.min(progress.log_end?);
        }
        Some(hw)
    }

    /// A follower fetched at `fetch_offset` while the leader's log ended at
    /// `leader_log_end`. Returns the ISR change to propose when the
    /// follower is not in the ISR but has caught up to the high watermark
    /// `hw` (Kafka's expansion rule).
    pub(crate) fn record_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_log_end: i64,
        hw: i64,
        now: Instant,
    ) -> Option<IsrChange> {
        let progress = self.followers.get_mut(&replica)?;
        progress.log_end = Some(fetch_offset);
        if fetch_offset >= leader_log_end {
            progress.caught_up_at = now;
        } else if let Some((previous_end, at)) = progress.previous_fetch
            && fetch_offset >= previous_end
        {
            progress.caught_up_at = progress.caught_up_at.max(at);
        }
        progress.previous_fetch = Some((leader_log_end, now));
        if !self.isr.contains(&replica) && fetch_offset >= hw {
            let mut isr = self.isr.clone();
            isr.push(replica);
            isr.sort_unstable();
            return Some(IsrChange { isr });
        }
        None
    }

    /// The ISR without followers that were not caught up for longer than
    /// `max_lag` (`replica.lag.time.max.ms`), if any has to go.
    pub(crate) fn shrink(&self, now: Instant, max_lag: Duration) -> Option<IsrChange> {
        let lagging: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| *r != self.local)
            .filter(|r| {
                self.followers
                    .get(r)
                    .is_some_and(|p| now.saturating_duration_since(p.caught_up_at) > max_lag)
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let isr = self
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        Some(IsrChange { isr })
    }

    /// Whether `replica` is one of the partition's replicas.
    pub(crate) fn is_replica(&self, replica: i32) -> bool {
        self.replicas.contains(&replica)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(now: Instant) -> ReplicaSet {
        ReplicaSet::new(1, vec![1, 2, 3], vec![1, 2, 3], 0, now)
    }

    #[test]
    fn high_watermark_waits_for_every_isr_member() {
        let now = Instant::now();
        let mut s = set(now);
        assert_eq!(s.high_watermark(10), None, "no follower fetched yet");
        s.record_fetch(2, 10, 10, 0, now);
        assert_eq!(s.high_watermark(10), None, "replica 3 has not fetched");
        s.record_fetch(3, 7, 10, 0, now);
        assert_eq!(s.high_watermark(10), Some(7));
        s.update(vec![1, 2, 3], vec![1, 2], 1, now);
        assert_eq!(s.high_watermark(10), Some(10), "3 left the ISR");
    }

    #[test]
    fn lagging_follower_leaves_and_returns() {
        let start = Instant::now();
        let mut s = set(start);
        let lag = Duration::from_millis(100);
        s.record_fetch(2, 10, 10, 0, start);
        s.record_fetch(3, 5, 10, 0, start);
        let later = start + Duration::from_millis(150);
        s.record_fetch(2, 10, 10, 0, later);
        // 3 fetched at 5 while the leader was at 10, and never again.
        assert_eq!(s.shrink(later, lag), Some(IsrChange { isr: vec![1, 2] }));
        s.update(vec![1, 2, 3], vec![1, 2], 1, later);
        // Back at the high watermark: it is proposed for the ISR again.
        assert_eq!(
            s.record_fetch(3, 10, 12, 10, later),
            Some(IsrChange { isr: vec![1, 2, 3] })
        );
    }

    #[test]
    fn a_follower_reaching_the_previous_end_counts_as_caught_up_then() {
        let start = Instant::now();
        let mut s = set(start);
        let lag = Duration::from_millis(100);
        let t1 = start + Duration::from_millis(90);
        s.record_fetch(3, 8, 10, 0, t1);
        let t2 = start + Duration::from_millis(180);
        // Reached 10 (the leader's end at the previous fetch) while the
        // leader moved on to 12: caught up as of t1.
        s.record_fetch(3, 10, 12, 0, t2);
        s.record_fetch(2, 12, 12, 0, t2);
        assert_eq!(s.shrink(t2, lag), None);
        let t3 = t1 + Duration::from_millis(150);
        assert_eq!(s.shrink(t3, lag), Some(IsrChange { isr: vec![1, 2] }));
    }
}
