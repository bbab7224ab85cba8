//! Controller mutation quotas (KIP-599): the partitions a client creates,
//! adds or deletes (CreateTopics, CreatePartitions, DeleteTopics) per
//! second, `controller_mutation_rate`.
//!
//! Measured as Kafka measures it, with a token bucket rather than the
//! windowed rate of byte quotas: a client starts with a burst of
//! `quota.window.num × quota.window.size.seconds × rate` partitions, each
//! mutation takes its partitions from it (it may go below zero), and it
//! refills at the rate. The quota is exceeded while the bucket is below
//! zero, and the throttle is the time it takes to refill to zero.
//!
//! Kafka's two behaviours, by request version: *strict* (CreateTopics v6+,
//! CreatePartitions v3+, DeleteTopics v5+, clients that know the error)
//! refuses a topic with THROTTLING_QUOTA_EXCEEDED while the quota is
//! exceeded, and accepts it otherwise, even when it takes the bucket below
//! zero (the next one is refused); *permissive* (older versions) accepts
//! every topic and throttles the answer once the bucket is below zero.

use std::time::{Duration, Instant};

use super::{ClientQuotas, Quota};

/// A client's bucket of partition mutations, with the rate and burst it
/// was last refilled at (for the sweep).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    at: Instant,
    pub(super) rate: f64,
    pub(super) burst: f64,
}

impl Bucket {
    /// A full bucket at `now`.
    fn full(rate: f64, burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
            rate,
            burst,
        }
    }

    /// Refills at `rate` per second up to `burst` (the quota's, which may
    /// have changed since).
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
        (self.rate, self.burst) = (rate, burst);
    }

    /// How long until the bucket is back at zero.
    fn throttle(&self, rate: f64) -> Duration {
        if self.tokens >= 0.0 || rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((-self.tokens / rate).min(i32::MAX as f64 / 1000.0))
    }

    /// Whether the bucket, refilled to `now`, is full: it can be
    /// forgotten.
    pub(super) fn is_full(&mut self, now: Instant) -> bool {
        self.refill(self.rate, self.burst, now);
        self.tokens >= self.burst
    }
}

/// One request's partition mutations under its client's quota.
#[derive(Debug)]
pub(crate) struct Mutations<'a> {
    quotas: &'a ClientQuotas,
    /// `None`: no quota applies.
    quota: Option<Quota>,
    strict: bool,
    throttle: Duration,
}

/// A mutation refused by a strict quota: the client may retry after
/// `throttle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The throttling quota has been exceeded.")]
pub(crate) struct QuotaExceeded {
    pub throttle: Duration,
}

impl ClientQuotas {
    /// The mutations of one request under `quota` (if any), `strict` or
    /// permissive (see the module doc).
    pub(crate) fn mutations(&self, quota: Option<Quota>, strict: bool) -> Mutations<'_> {
        Mutations {
            quotas: self,
            quota,
            strict,
            throttle: Duration::ZERO,
        }
    }

    /// A bucket's size: the quota over all of its windows.
    fn burst(&self, quota: &Quota) -> f64 {
        quota.bound * self.windows.window.as_secs_f64() * f64::from(self.windows.samples)
    }

    /// Runs `f` on the client's bucket, refilled to `now`.
    fn with_bucket<T>(&self, quota: &Quota, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let burst = self.burst(quota);
        let mut state = self.state.lock();
        state.sweep(self.windows, now);
        let bucket = state
            .buckets
            .entry(quota.sensor.clone())
            .or_insert_with(|| Bucket::full(quota.bound, burst, now));
        bucket.refill(quota.bound, burst, now);
        f(bucket)
    }
}

impl Mutations<'_> {
    /// Whether the next topic may be mutated: under a strict quota that is
    /// exceeded, it is refused with how long the client should wait.
    pub(crate) fn admit(&mut self) -> Result<(), QuotaExceeded> {
        let (Some(quota), true) = (&self.quota, self.strict) else {
            return Ok(());
        };
        let throttle = self
            .quotas
            .with_bucket(quota, Instant::now(), |b| b.throttle(quota.bound));
        if throttle.is_zero() {
            return Ok(());
        }
        self.throttle = self.throttle.max(throttle);
        Err(QuotaExceeded { throttle })
    }

    /// Counts `partitions` mutated; a permissive quota throttles the
    /// answer once the bucket is below zero.
    pub(crate) fn record(&mut self, partitions: u32) {
        let Some(quota) = &self.quota else {
            return;
        };
        let throttle = self.quotas.with_bucket(quota, Instant::now(), |b| {
            b.tokens -= f64::from(partitions);
            b.throttle(quota.bound)
        });
        if !self.strict {
            self.throttle = self.throttle.max(throttle);
        }
    }

    /// How long the answer throttles the client (zero: not at all).
    pub(crate) fn throttle(&self) -> Duration {
        self.throttle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quotas::{QuotaKind, Windows, resolve};
    use fjord_controller::{QuotaEntity, QuotaValue};

    fn quotas_and_quota(rate: f64) -> (ClientQuotas, Quota) {
        let quotas = ClientQuotas::new(Windows {
            samples: 11,
            window: Duration::from_secs(1),
        });
        let table: crate::metadata::QuotaTable = [(
            QuotaEntity {
                user: None,
                client_id: Some(None),
            },
            [("controller_mutation_rate".to_owned(), QuotaValue(rate))].into(),
        )]
        .into_iter()
        .collect();
        let quota =
            resolve(&table, QuotaKind::ControllerMutation, "ANONYMOUS", "admin").expect("quota");
        (quotas, quota)
    }

    /// Strict: a burst of 11 windows' worth, one more request accepted
    /// below zero, then refusals with the time to refill to zero.
    #[test]
    fn strict_refuses_once_the_bucket_is_below_zero() {
        let (quotas, quota) = quotas_and_quota(2.0);
        let mut m = quotas.mutations(Some(quota.clone()), true);
        assert_eq!(m.admit(), Ok(()));
        m.record(20);
        assert_eq!(m.admit(), Ok(()));
        m.record(10);
        assert_eq!(m.throttle(), Duration::ZERO, "accepted: no throttle");
        // 22 - 30 = -8 tokens: 4 s at 2 a second (a little less by now).
        let refused = m.admit().expect_err("refused");
        assert!(
            refused.throttle <= Duration::from_secs(4)
                && refused.throttle > Duration::from_millis(3900),
            "{refused:?}"
        );
        assert_eq!(m.throttle(), refused.throttle);
        // Another request of the same client is refused too.
        let mut next = quotas.mutations(Some(quota), true);
        assert!(next.admit().is_err());
    }

    /// Permissive: everything is accepted, the answer throttled once below
    /// zero; without a quota nothing is counted.
    #[test]
    fn permissive_accepts_and_throttles() {
        let (quotas, quota) = quotas_and_quota(1.0);
        let mut m = quotas.mutations(Some(quota), false);
        m.record(11);
        assert_eq!(m.throttle(), Duration::ZERO);
        assert_eq!(m.admit(), Ok(()));
        m.record(3);
        assert!(
            m.throttle() > Duration::from_millis(2900),
            "{:?}",
            m.throttle()
        );
        let mut none = quotas.mutations(None, true);
        none.record(1000);
        assert_eq!((none.admit(), none.throttle()), (Ok(()), Duration::ZERO));
    }
}
