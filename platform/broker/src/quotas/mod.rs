//! Client quotas enforced (KIP-13 byte rates and KIP-124 request time,
//! with KIP-219's muting): which quota applies to a request's user and
//! client id, the rate it is measured against, and how long the client is
//! throttled for going over.
//!
//! What is enforced: `producer_byte_rate` (the bytes of each Produce
//! request's record batches), `consumer_byte_rate` (the record bytes a
//! Fetch answers) and `request_percentage` (the time the broker's threads
//! spend on a client's requests, as a percentage of one thread:
//! [`timed`]), per user (the principal's name, `ANONYMOUS` before
//! authentication) and client id. A client over its quota gets its answer
//! with `throttle_time_ms`, and its connection reads no further request for
//! that long (`crate::connection`); a throttled Fetch is answered empty and
//! its bytes are not counted, as Kafka answers it. Replica fetches and the
//! platform's own principal are never throttled.
//!
//! Not here: where quotas are stored (`crate::metadata`, with
//! DescribeClientQuotas/AlterClientQuotas in `crate::apis::quotas`), which
//! requests are timed and how a throttle is put in an answer
//! (`crate::apis`). `controller_mutation_rate` (KIP-599) is measured
//! with a token bucket of its own: `mutation`; `connection_creation_rate`
//! per client address (KIP-612) in `connections`.
//!
//! **Which quota.** Kafka's precedence, per key: the first of user and
//! client id, user and default client id, user, default user and client
//! id, default user and default client id, default user, client id,
//! default client id that sets the key. What shares a rate is the shape of
//! the level that matched, not its entity: a quota of the default user is
//! every user's own, one of user `alice` alone is shared by all her client
//! ids (Kafka's quota metric tags).

mod connections;
mod mutation;
mod rate;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fjord_controller::QuotaEntity;
use parking_lot::Mutex;

use crate::metadata::QuotaTable;
pub(crate) use connections::rate_for as connection_rate_for;
pub(crate) use mutation::{Mutations, QuotaExceeded};
pub(crate) use rate::{Rate, Windows};

/// The rates enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QuotaKind {
    /// `producer_byte_rate`: bytes per second.
    Produce,
    /// `consumer_byte_rate`: bytes per second.
    Fetch,
    /// `request_percentage`: percent of one thread's time.
    Request,
    /// `controller_mutation_rate`: partitions created, added or deleted
    /// per second (`mutation`).
    ControllerMutation,
}

impl QuotaKind {
    /// Its key in the quota table.
    pub(crate) fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
            QuotaKind::ControllerMutation => "controller_mutation_rate",
        }
    }
}

/// What `busy`, the time a request kept a thread, counts towards a
/// `request_percentage` quota: Kafka's `nanosToPercentage`, so that the
/// rate per second is the percentage of one thread.
pub(crate) fn percentage(busy: Duration) -> f64 {
    busy.as_secs_f64() * 100.0
}

/// Runs `work` and returns its output with the time spent polling it:
/// the time a thread worked on it (Kafka's request thread time), without
/// the time it waited (a long-polling Fetch, a JoinGroup, a write to the
/// quorum), as Kafka does not count time in purgatory. Work handed to a
/// blocking thread is not counted.
pub(crate) async fn timed<F: std::future::Future>(work: F) -> (F::Output, Duration) {
    let mut work = std::pin::pin!(work);
    let mut busy = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let start = Instant::now();
        let polled = work.as_mut().poll(cx);
        busy += start.elapsed();
        polled
    })
    .await;
    (output, busy)
}

/// Whose rate a recording counts towards: the quota's kind and its metric
/// tags (empty where the level that matched does not name that type).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SensorKey {
    kind: QuotaKind,
    user: String,
    client_id: String,
}

/// The quota that applies to a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quota {
    /// Per second: bytes, or percent of a thread.
    pub bound: f64,
    sensor: SensorKey,
}

/// The quota of `kind` that applies to `user` and `client_id` in `table`
/// (see the module doc for the precedence), if any.
pub(crate) fn resolve(
    table: &QuotaTable,
    kind: QuotaKind,
    user: &str,
    client_id: &str,
) -> Option<Quota> {
    if table.is_empty() {
        return None;
    }
    let named = |n: &str| Some(Some(n.to_owned()));
    // (entity user part, entity client part, tag the user, tag the client)
    let levels = [
        (named(user), named(client_id), true, true),
        (named(user), Some(None), true, true),
        (named(user), None, true, false),
        (Some(None), named(client_id), true, true),
        (Some(None), Some(None), true, true),
        (Some(None), None, true, false),
        (None, named(client_id), false, true),
        (None, Some(None), false, true),
    ];
    levels.into_iter().find_map(|(u, c, tag_user, tag_client)| {
        let entity = QuotaEntity {
            user: u,
            client_id: c,
        };
        let value = table.get(&entity)?.get(kind.key())?;
        Some(Quota {
            bound: value.0,
            sensor: SensorKey {
                kind,
                user: if tag_user {
                    user.to_owned()
                } else {
                    String::new()
                },
                client_id: if tag_client {
                    client_id.to_owned()
                } else {
                    String::new()
                },
            },
        })
    })
}

/// How often idle rates are dropped.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The rates of one broker's quota'd clients.
#[derive(Debug)]
pub(crate) struct ClientQuotas {
    windows: Windows,
    state: Mutex<Rates>,
}

#[derive(Debug)]
struct Rates {
    rates: HashMap<SensorKey, Rate>,
    /// Controller mutation quotas' token buckets (`mutation`).
    buckets: HashMap<SensorKey, mutation::Bucket>,
    /// Connection creation rates by client address (`connections`).
    ips: HashMap<std::net::IpAddr, Rate>,
    last_sweep: Instant,
}

impl Rates {
    /// Bounded memory: a client id seen once is forgotten once what it
    /// did no longer counts.
    fn sweep(&mut self, windows: Windows, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.rates.retain(|_, r| !r.is_idle(windows, now));
        self.buckets.retain(|_, b| !b.is_full(now));
        self.ips.retain(|_, r| !r.is_idle(windows, now));
        self.last_sweep = now;
    }
}

impl ClientQuotas {
    /// Rates sampled as `windows` says.
    pub(crate) fn new(windows: Windows) -> Self {
        ClientQuotas {
            windows,
            state: Mutex::new(Rates {
                rates: HashMap::new(),
                buckets: HashMap::new(),
                ips: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Records `amount` (bytes, or [`percentage`]) against `quota` at
    /// `now` and returns how long the client is throttled (zero within its
    /// quota): Kafka's `(rate - bound) / bound × window`, the time after
    /// which the rate over the window is back at the bound. A request quota's
    /// throttle is at most one window, as Kafka bounds it (a request's time
    /// is not the client's to choose as its bytes are).
    pub(crate) fn record(&self, quota: &Quota, amount: f64, now: Instant) -> Duration {
        let mut state = self.state.lock();
        state.sweep(self.windows, now);
        let rate = state.rates.entry(quota.sensor.clone()).or_default();
        rate.record(self.windows, amount, now);
        let measured = rate.measure(self.windows, now);
        if measured <= quota.bound || quota.bound <= 0.0 {
            return Duration::ZERO;
        }
        let window = rate.window_size(self.windows, now).as_secs_f64();
        let mut throttle = (measured - quota.bound) / quota.bound * window;
        if quota.sensor.kind == QuotaKind::Request {
            throttle = throttle.min(self.windows.window.as_secs_f64());
        }
        Duration::from_secs_f64(throttle.min(i32::MAX as f64 / 1000.0))
    }

    /// Takes back `bytes` recorded against `quota` (a throttled Fetch's,
    /// which are not sent).
    pub(crate) fn unrecord(&self, quota: &Quota, bytes: f64, now: Instant) {
        if let Some(rate) = self.state.lock().rates.get_mut(&quota.sensor) {
            rate.record(self.windows, -bytes, now);
        }
    }

    /// The most bytes one answer may carry under `quota` (Kafka's
    /// `getMaxValueInQuotaWindow`): the bound over all windows but the
    /// current one, so a large fetch cannot take more than the window holds.
    pub(crate) fn max_in_window(&self, quota: &Quota) -> u64 {
        let span = self.windows.window.as_secs_f64() * f64::from(self.windows.samples.max(2) - 1);
        (quota.bound * span).min(i32::MAX as f64) as u64
    }
}

/// Milliseconds for a response's `throttle_time_ms`.
pub(crate) fn throttle_ms(throttle: Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_controller::QuotaValue;

    /// An entity's part in a test: absent, default, or named.
    type Part<'a> = Option<Option<&'a str>>;

    fn table(entries: &[(Part<'_>, Part<'_>, f64)]) -> QuotaTable {
        entries
            .iter()
            .map(|(u, c, v)| {
                let own = |p: &Part<'_>| p.map(|n| n.map(str::to_owned));
                (
                    QuotaEntity {
                        user: own(u),
                        client_id: own(c),
                    },
                    [("producer_byte_rate".to_owned(), QuotaValue(*v))].into(),
                )
            })
            .collect()
    }

    /// Each of Kafka's eight levels wins over those after it, and what
    /// shares a rate follows the level's shape.
    #[test]
    fn the_eight_levels_in_kafkas_order() {
        let levels: [(Part<'_>, Part<'_>); 8] = [
            (Some(Some("alice")), Some(Some("app"))),
            (Some(Some("alice")), Some(None)),
            (Some(Some("alice")), None),
            (Some(None), Some(Some("app"))),
            (Some(None), Some(None)),
            (Some(None), None),
            (None, Some(Some("app"))),
            (None, Some(None)),
        ];
        let tags = [
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("", "app"),
            ("", "app"),
        ];
        for first in 0..levels.len() {
            let entries: Vec<_> = levels[first..]
                .iter()
                .enumerate()
                .map(|(i, (u, c))| (*u, *c, (first + i + 1) as f64))
                .collect();
            let quota = resolve(&table(&entries), QuotaKind::Produce, "alice", "app")
                .expect("a quota applies");
            assert_eq!(quota.bound, (first + 1) as f64, "level {}", first + 1);
            assert_eq!(
                (quota.sensor.user.as_str(), quota.sensor.client_id.as_str()),
                tags[first]
            );
        }
        // Another user's and another client's quotas do not apply, nor
        // another key.
        let other = table(&[(Some(Some("bob")), None, 1.0), (None, Some(Some("x")), 1.0)]);
        assert_eq!(resolve(&other, QuotaKind::Produce, "alice", "app"), None);
        let all = table(&[(None, Some(None), 1.0)]);
        assert_eq!(resolve(&all, QuotaKind::Fetch, "alice", "app"), None);
    }

    #[test]
    fn throttle_brings_the_rate_back_to_the_bound() {
        let quotas = ClientQuotas::new(Windows {
            samples: 11,
            window: Duration::from_secs(1),
        });
        let table = table(&[(None, Some(Some("app")), 1000.0)]);
        let quota = resolve(&table, QuotaKind::Produce, "ANONYMOUS", "app").expect("quota");
        let now = Instant::now();
        // 10 000 bytes over the 10 s window the first recording is
        // measured over: exactly the bound.
        assert_eq!(quota_record(&quotas, &quota, 10_000, now), Duration::ZERO);
        // 5 000 more: 15 000 / 10 s, 50 % over: throttled half the window.
        let throttle = quota_record(&quotas, &quota, 5_000, now);
        assert_eq!(throttle, Duration::from_secs(5));
        // Unrecorded, they no longer count.
        quotas.unrecord(&quota, 5_000.0, now);
        assert_eq!(quota_record(&quotas, &quota, 0, now), Duration::ZERO);
        assert_eq!(quotas.max_in_window(&quota), 10_000);
    }

    fn quota_record(q: &ClientQuotas, quota: &Quota, bytes: u64, now: Instant) -> Duration {
        q.record(quota, bytes as f64, now)
    }

    /// Request time is a percentage of a thread, and its throttle at most
    /// a window.
    #[test]
    fn request_time_is_a_percentage_of_a_thread_and_its_throttle_one_window() {
        let quotas = ClientQuotas::new(Windows {
            samples: 11,
            window: Duration::from_secs(1),
        });
        let mut table = table(&[]);
        table.insert(
            QuotaEntity {
                user: None,
                client_id: Some(None),
            },
            [("request_percentage".to_owned(), QuotaValue(10.0))].into(),
        );
        let quota = resolve(&table, QuotaKind::Request, "ANONYMOUS", "app").expect("quota");
        assert_eq!(
            resolve(&table, QuotaKind::Produce, "ANONYMOUS", "app"),
            None
        );
        let now = Instant::now();
        // 10 % of a thread over the 10 s a first recording is measured
        // over: one second of thread time.
        let second = percentage(Duration::from_secs(1));
        assert_eq!(quotas.record(&quota, second, now), Duration::ZERO);
        // Half a second more is 50 % over: five seconds by the formula,
        // one window by Kafka's bound.
        let more = percentage(Duration::from_millis(500));
        assert_eq!(quotas.record(&quota, more, now), Duration::from_secs(1));
    }

    /// The time a future is polled counts; the time it waits does not.
    #[tokio::test]
    async fn timed_counts_work_not_waiting() {
        let (out, busy) = timed(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::thread::sleep(Duration::from_millis(30));
            7
        })
        .await;
        assert_eq!(out, 7);
        assert!(
            busy >= Duration::from_millis(30) && busy < Duration::from_millis(150),
            "{busy:?}"
        );
    }
}
