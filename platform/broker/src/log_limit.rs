//! Rate-limited warnings: the one helper every noisy log line goes
//! through (bad frames, failed TLS handshakes and SASL logins, refused
//! connections, running out of descriptors).
//!
//! It is for deciding whether a line may be written now: at most one per
//! key (a client's address, or `()` for a broker-wide event) per
//! interval, and at most [`MAX_LINES`] per interval over all keys, so a
//! fuzzer or a flood from many addresses writes a bounded log. A line
//! that is written carries the count of lines suppressed for its key since
//! the one before (`suppressed`). Memory is bounded: at most [`MAX_KEYS`]
//! keys are tracked; past that, keys not seen for an interval are dropped (their counts go to
//! the shared overflow entry) and new keys share that entry.
//!
//! It is not for deciding what is logged, nor for counting events for
//! metrics.
//!
//! ```ignore
//! static BAD_FRAME: LogLimit = LogLimit::new();
//! if let Some(suppressed) = BAD_FRAME.admit(peer.ip()) {
//!     tracing::warn!(%peer, suppressed, "closing connection: bad frame");
//! }
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most one line per key per this interval.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// At most this many lines per interval over all keys of one limiter.
pub(crate) const MAX_LINES: u32 = 20;

/// Keys tracked at most by one limiter.
pub(crate) const MAX_KEYS: usize = 1024;

/// One kind of log line's limiter; a `static` next to the line.
#[derive(Debug)]
pub(crate) struct LogLimit<K = IpAddr> {
    state: Mutex<State<K>>,
}

#[derive(Debug)]
struct State<K> {
    keys: BTreeMap<K, Entry>,
    /// Keys that did not fit, and the counts of keys dropped while stale.
    overflow: Entry,
    /// Lines written over all keys since `window`.
    window: Option<Instant>,
    lines: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// When its last line was written; `None`: never.
    logged: Option<Instant>,
    /// When it was last asked about, logged or not.
    seen: Option<Instant>,
    suppressed: u64,
}

impl<K: Ord + Copy> LogLimit<K> {
    /// A limiter with nothing logged yet.
    pub(crate) const fn new() -> Self {
        LogLimit {
            state: parking_lot::const_mutex(State {
                keys: BTreeMap::new(),
                overflow: Entry {
                    logged: None,
                    seen: None,
                    suppressed: 0,
                },
                window: None,
                lines: 0,
            }),
        }
    }

    /// `Some(suppressed)` when a line about `key` may be written now (with
    /// the count of its lines suppressed since its last one); `None` when
    /// it is suppressed (and counted).
    pub(crate) fn admit(&self, key: K) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: K, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        let state = &mut *state;
        let due = |logged: Option<Instant>| {
            logged.is_none_or(|at| now.saturating_duration_since(at) >= LOG_INTERVAL)
        };
        if due(state.window) {
            state.window = Some(now);
            state.lines = 0;
        }
        if !state.keys.contains_key(&key) && state.keys.len() >= MAX_KEYS {
            let mut dropped = 0;
            state.keys.retain(|_, entry| {
                let keep = !due(entry.seen);
                if !keep {
                    dropped += entry.suppressed;
                }
                keep
            });
            state.overflow.suppressed += dropped;
        }
        let entry = if state.keys.contains_key(&key) || state.keys.len() < MAX_KEYS {
            state.keys.entry(key).or_default()
        } else {
            &mut state.overflow
        };
        entry.seen = Some(now);
        if due(entry.logged) && state.lines < MAX_LINES {
            state.lines += 1;
            entry.logged = Some(now);
            Some(std::mem::take(&mut entry.suppressed))
        } else {
            entry.suppressed += 1;
            None
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::from(i.to_be_bytes())
    }

    #[test]
    fn one_line_per_key_per_interval_with_the_count_suppressed() {
        let limit = LogLimit::new();
        let start = Instant::now();
        assert_eq!(limit.admit_at(ip(1), start), Some(0));
        for _ in 0..5 {
            assert_eq!(limit.admit_at(ip(1), start + Duration::from_secs(1)), None);
        }
        // Another address has its own line.
        assert_eq!(limit.admit_at(ip(2), start), Some(0));
        let later = start + LOG_INTERVAL;
        assert_eq!(limit.admit_at(ip(1), later), Some(5));
        assert_eq!(limit.admit_at(ip(1), later), None);
        assert_eq!(limit.admit_at(ip(1), later + LOG_INTERVAL), Some(1));
    }

    #[test]
    fn lines_over_all_keys_are_bounded() {
        let limit = LogLimit::new();
        let now = Instant::now();
        let written = (0..1000)
            .filter(|i| limit.admit_at(ip(*i), now).is_some())
            .count();
        assert_eq!(written, MAX_LINES as usize);
        // The suppressed ones are counted with their key's next line.
        let later = now + LOG_INTERVAL;
        assert_eq!(limit.admit_at(ip(999), later), Some(1));
    }

    #[test]
    fn memory_is_bounded_whatever_the_keys() {
        let limit = LogLimit::new();
        let now = Instant::now();
        for i in 0..(MAX_KEYS as u32 * 3) {
            limit.admit_at(ip(i), now);
        }
        assert_eq!(limit.tracked(), MAX_KEYS);
        // Stale keys make room; what they had suppressed is not lost.
        let later = now + LOG_INTERVAL;
        assert_eq!(limit.admit_at(ip(u32::MAX), later), Some(0));
        assert_eq!(limit.tracked(), 1);
        let overflow = limit.state.lock().overflow.suppressed;
        assert_eq!(overflow, MAX_KEYS as u64 * 3 - u64::from(MAX_LINES));
    }

    #[test]
    fn broker_wide_events_use_the_unit_key() {
        let limit: LogLimit<()> = LogLimit::new();
        let now = Instant::now();
        assert_eq!(limit.admit_at((), now), Some(0));
        assert_eq!(limit.admit_at((), now), None);
        assert_eq!(limit.admit_at((), now + LOG_INTERVAL), Some(1));
    }
}
