//! Kafka's windowed rate (`org.apache.kafka.common.metrics.stats.Rate` over
//! a `SampledStat`), which client quotas are measured with: what was
//! recorded in the last `samples` windows, divided by the time they span —
//! at least `samples - 1` whole windows, so that a client's first bytes are
//! not measured over a few milliseconds.
//!
//! Not a token bucket: like Kafka's, a client that has been idle may send
//! up to `(samples - 1) × window × quota` at once before it is throttled.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How a rate is sampled: Kafka's `quota.window.num` and
/// `quota.window.size.seconds`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    pub samples: u32,
    pub window: Duration,
}

impl Windows {
    /// The span after which a sample no longer counts.
    fn expiry(&self) -> Duration {
        self.window * self.samples
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    value: f64,
}

/// A sampled rate, per second.
#[derive(Debug, Default)]
pub(crate) struct Rate {
    samples: VecDeque<Sample>,
}

impl Rate {
    /// Adds `value` at `now` (negative takes back what was recorded, as
    /// Kafka unrecords a throttled fetch).
    pub(crate) fn record(&mut self, windows: Windows, value: f64, now: Instant) {
        self.purge(windows, now);
        let fresh = match self.samples.back() {
            Some(current) => now.saturating_duration_since(current.start) >= windows.window,
            None => true,
        };
        if fresh {
            self.samples.push_back(Sample {
                start: now,
                value: 0.0,
            });
            while self.samples.len() > windows.samples as usize {
                self.samples.pop_front();
            }
        }
        if let Some(current) = self.samples.back_mut() {
            current.value += value;
        }
    }

    /// The rate at `now`: the samples' sum over [`Rate::window_size`].
    pub(crate) fn measure(&mut self, windows: Windows, now: Instant) -> f64 {
        let span = self.window_size(windows, now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / span.as_secs_f64()
    }

    /// The time the samples span (Kafka's `Rate.windowSize`): since the
    /// oldest sample started, but at least `samples - 1` whole windows and
    /// at least a millisecond.
    pub(crate) fn window_size(&mut self, windows: Windows, now: Instant) -> Duration {
        self.purge(windows, now);
        let oldest = self.samples.front().map_or(now, |s| s.start);
        let mut elapsed = now.saturating_duration_since(oldest);
        let full = (elapsed.as_nanos() / windows.window.as_nanos().max(1)) as u32;
        let least = windows.samples.saturating_sub(1);
        if full < least {
            elapsed += windows.window * (least - full);
        }
        elapsed.max(Duration::from_millis(1))
    }

    /// Whether nothing recorded still counts at `now`.
    pub(crate) fn is_idle(&mut self, windows: Windows, now: Instant) -> bool {
        self.purge(windows, now);
        self.samples.is_empty()
    }

    /// Drops the samples that started a whole expiry ago.
    fn purge(&mut self, windows: Windows, now: Instant) {
        while let Some(oldest) = self.samples.front() {
            if now.saturating_duration_since(oldest.start) >= windows.expiry() {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAFKA: Windows = Windows {
        samples: 11,
        window: Duration::from_secs(1),
    };

    #[test]
    fn a_first_burst_is_measured_over_ten_windows() {
        let start = Instant::now();
        let mut rate = Rate::default();
        rate.record(KAFKA, 5_000_000.0, start);
        // 5 MB in the first instant: 5 MB over 10 s, not over 0 s.
        assert_eq!(rate.window_size(KAFKA, start), Duration::from_secs(10));
        assert!((rate.measure(KAFKA, start) - 500_000.0).abs() < 1.0);
    }

    #[test]
    fn samples_roll_and_expire() {
        let start = Instant::now();
        let mut rate = Rate::default();
        for second in 0..20u64 {
            rate.record(KAFKA, 1000.0, start + Duration::from_secs(second));
        }
        let now = start + Duration::from_millis(19_500);
        // Eleven samples kept (9..=19), spanning 10.5 s.
        assert_eq!(rate.window_size(KAFKA, now), Duration::from_millis(10_500));
        assert!((rate.measure(KAFKA, now) - 11_000.0 / 10.5).abs() < 0.01);
        // Taken back, a recording no longer counts.
        rate.record(KAFKA, -1000.0, now);
        assert!((rate.measure(KAFKA, now) - 10_000.0 / 10.5).abs() < 0.01);
        assert!(!rate.is_idle(KAFKA, now));
        assert!(rate.is_idle(KAFKA, now + Duration::from_secs(11)));
    }
}
