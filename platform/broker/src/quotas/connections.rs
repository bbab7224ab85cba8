//! Connection-creation-rate quotas per client address (KIP-612's `ip`
//! entities, `connection_creation_rate`): new connections per second from
//! one address, measured with the same windowed rate as byte quotas.
//!
//! As in Kafka, a connection over its address's quota is not counted
//! (it is taken back) and is throttled: the acceptor holds it unserved for
//! the throttle time, then closes it (`crate::accept`). The quota of an
//! address is its own entity's, else the default address's; without
//! either, nothing is measured.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::ClientQuotas;
use crate::metadata::IpQuotaTable;

/// The key of an `ip` quota.
const KEY: &str = fjord_controller::IP_QUOTA_KEY;

/// `ip`'s `connection_creation_rate` in `table`, if any.
pub(crate) fn rate_for(table: &IpQuotaTable, ip: IpAddr) -> Option<f64> {
    let own = table.get(&Some(ip.to_canonical().to_string()));
    own.or_else(|| table.get(&None))
        .and_then(|values| values.get(KEY))
        .map(|v| v.0)
}

impl ClientQuotas {
    /// Records a new connection from `ip` at `now` under `bound`
    /// connections a second; returns how long it is throttled (zero: it
    /// may be served). A throttled connection is taken back, as Kafka takes
    /// back the connections it does not accept.
    pub(crate) fn connection_from(&self, ip: IpAddr, bound: f64, now: Instant) -> Duration {
        let ip = ip.to_canonical();
        let mut state = self.state.lock();
        state.sweep(self.windows, now);
        let rate = state.ips.entry(ip).or_default();
        rate.record(self.windows, 1.0, now);
        let measured = rate.measure(self.windows, now);
        if measured <= bound || bound <= 0.0 {
            return Duration::ZERO;
        }
        rate.record(self.windows, -1.0, now);
        let window = rate.window_size(self.windows, now).as_secs_f64();
        let throttle = (measured - bound) / bound * window;
        Duration::from_secs_f64(throttle.min(i32::MAX as f64 / 1000.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quotas::Windows;
    use fjord_controller::QuotaValue;

    #[test]
    fn an_address_gets_its_own_quota_or_the_default() {
        let mut table = IpQuotaTable::new();
        table.insert(
            Some("10.0.0.1".into()),
            [(KEY.to_owned(), QuotaValue(5.0))].into(),
        );
        let ip = |s: &str| s.parse::<IpAddr>().expect("address");
        assert_eq!(rate_for(&table, ip("10.0.0.1")), Some(5.0));
        assert_eq!(rate_for(&table, ip("::ffff:10.0.0.1")), Some(5.0));
        assert_eq!(rate_for(&table, ip("10.0.0.2")), None);
        table.insert(None, [(KEY.to_owned(), QuotaValue(2.0))].into());
        assert_eq!(rate_for(&table, ip("10.0.0.2")), Some(2.0));
    }

    /// Ten windows' worth at once, then throttled; throttled connections
    /// do not count.
    #[test]
    fn a_burst_then_throttled_connections_not_counted() {
        let quotas = ClientQuotas::new(Windows {
            samples: 11,
            window: Duration::from_secs(1),
        });
        let ip: IpAddr = "10.0.0.1".parse().expect("address");
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(quotas.connection_from(ip, 2.0, now), Duration::ZERO);
        }
        // The 21st: 21 over 10 s is 5 % over: half a second.
        let throttle = quotas.connection_from(ip, 2.0, now);
        assert_eq!(throttle, Duration::from_millis(500));
        // Taken back: the next one is throttled as long, not longer.
        assert_eq!(quotas.connection_from(ip, 2.0, now), throttle);
        // Another address has its own rate.
        let other: IpAddr = "10.0.0.2".parse().expect("address");
        assert_eq!(quotas.connection_from(other, 2.0, now), Duration::ZERO);
    }
}
