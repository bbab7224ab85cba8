//! Connection quotas, as Kafka's `ConnectionQuotas`: how many connections
//! may be open from one client address (`max.connections.per.ip`, its
//! `max.connections.per.ip.overrides`), on one listener
//! (`listener.name.<name>.max.connections`) and on the broker
//! (`max.connections`), and how fast new ones may be made
//! (`max.connection.creation.rate`, broker-wide and per listener).
//!
//! It is for the counting and the arithmetic: [`ConnectionLimits::admit`]
//! gives an accepted connection its [`Slot`] (given back when the slot is
//! dropped) or says which limit refuses it, and
//! [`ConnectionLimits::creation_delay`] says how long an accepted
//! connection waits before it is served. It is not for accepting sockets,
//! closing refused ones or logging (that is `accept`), nor for what a
//! connection may send (`connection`).
//!
//! As in Kafka, the inter-broker listener is exempt from the broker-wide
//! limits (`max.connections` and the broker-wide creation rate) when the
//! broker has more than one listener: its connections count towards the
//! total but are never refused by it, so replication and the platform's
//! own clients get in while clients fill the broker. Unlike Kafka, which
//! then closes the least recently used connection of another listener, a
//! broker over `max.connections` this way stays over it until
//! connections close. Also unlike Kafka, whose acceptor waits for a slot,
//! a connection over a count limit is closed at once (the client backs
//! off and reconnects), so a flood does not sit in the listen backlog.
//!
//! The broker-wide limits are dynamic broker configs (`crate::dynamic_config`):
//! [`ConnectionLimits::reconfigure`] takes new values, which the next
//! connection is checked against; open connections over a lowered limit
//! stay open, as in Kafka. The per-listener ones are read-only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::{BrokerConfig, LISTENER_PREFIX};
use crate::error::BrokerError;
use crate::listeners::Listeners;

/// Kafka's default of its `Int` limits: no limit.
pub(crate) const UNLIMITED: u64 = i32::MAX as u64;

/// The settings a listener may override with `listener.name.<name>.`.
pub(crate) const PER_LISTENER: [&str; 2] = ["max.connections", "max.connection.creation.rate"];

/// A new rate limiter lets this much time's worth of connections in at
/// once before it spaces them out.
const BURST: Duration = Duration::from_secs(1);

/// Which limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("its address already has max.connections.per.ip ({0}) connections open")]
    PerIp(u64),
    #[error("the listener already has its max.connections ({0}) open")]
    Listener(u64),
    #[error("the broker already has max.connections ({0}) open")]
    Broker(u64),
}

/// The limits of one broker and the counts they are checked against.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    /// The broker-wide limits (dynamic: replaced whole on a change).
    broker: RwLock<Arc<BrokerLimits>>,
    listeners: Vec<ListenerLimits>,
    /// The inter-broker listener, when it is exempt from the broker-wide
    /// limits (the broker has other listeners).
    protected: Option<usize>,
    counts: Mutex<Counts>,
}

/// The limits `max.connections`, `max.connections.per.ip` (and its
/// overrides) and `max.connection.creation.rate` set.
#[derive(Debug)]
struct BrokerLimits {
    max_connections: u64,
    per_ip: u64,
    /// As written (to tell a change), and resolved.
    overrides_text: Vec<String>,
    per_ip_overrides: HashMap<IpAddr, u64>,
    rate_per_second: u64,
    rate: Rate,
}

#[derive(Debug)]
struct ListenerLimits {
    max_connections: u64,
    rate: Rate,
}

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    per_ip: HashMap<IpAddr, u64>,
    per_listener: Vec<u64>,
}

/// An open connection's place in the counts, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<ConnectionLimits>,
    listener: usize,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock();
        counts.total -= 1;
        counts.per_listener[self.listener] -= 1;
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// The limits the config sets for `listeners` (in their order);
    /// host names in `max.connections.per.ip.overrides` are resolved now,
    /// once, as Kafka does.
    pub(crate) async fn from_config(
        config: &BrokerConfig,
        listeners: &Listeners,
    ) -> Result<ConnectionLimits, BrokerError> {
        let mut per_ip_overrides = HashMap::new();
        for (host, count) in parse_overrides(&config.max_connections_per_ip_overrides)? {
            for ip in resolve(&host).await? {
                per_ip_overrides.insert(ip, count);
            }
        }
        let mut per_listener = Vec::new();
        for spec in &listeners.specs {
            let setting = |key: &str, default: u64| -> Result<u64, BrokerError> {
                let key = format!("{LISTENER_PREFIX}{}.{key}", spec.name.to_ascii_lowercase());
                match config.listener_overrides.get(&key) {
                    None => Ok(default),
                    Some(text) => text.trim().parse::<u64>().map_err(|_| {
                        BrokerError::Config(format!("{key}: {text:?} is not a count"))
                    }),
                }
            };
            per_listener.push(ListenerLimits {
                max_connections: setting("max.connections", UNLIMITED)?,
                rate: Rate::per_second(positive(
                    &format!("listener.name.<{}>.max.connection.creation.rate", spec.name),
                    setting("max.connection.creation.rate", UNLIMITED)?,
                )?),
            });
        }
        let protected = (listeners.specs.len() > 1).then_some(listeners.inter_broker);
        Ok(ConnectionLimits {
            broker: RwLock::new(Arc::new(BrokerLimits {
                max_connections: config.max_connections,
                per_ip: config.max_connections_per_ip,
                overrides_text: config.max_connections_per_ip_overrides.clone(),
                per_ip_overrides,
                rate_per_second: config.max_connection_creation_rate,
                rate: Rate::per_second(config.max_connection_creation_rate),
            })),
            counts: Mutex::new(Counts {
                per_listener: vec![0; per_listener.len()],
                ..Counts::default()
            }),
            listeners: per_listener,
            protected,
        })
    }

    /// Takes the broker-wide limits of `config` (the dynamic broker
    /// configs applied) for the connections to come. Host names in the
    /// overrides are resolved now, blocking (it runs where the change is
    /// applied, off the async runtime); one that does not resolve is left
    /// out with a warning. The creation rate's budget starts afresh only
    /// when the rate changes.
    pub(crate) fn reconfigure(&self, config: &BrokerConfig) {
        let current = Arc::clone(&self.broker.read());
        if current.max_connections == config.max_connections
            && current.per_ip == config.max_connections_per_ip
            && current.overrides_text == config.max_connections_per_ip_overrides
            && current.rate_per_second == config.max_connection_creation_rate
        {
            return;
        }
        let mut per_ip_overrides = HashMap::new();
        let entries =
            parse_overrides(&config.max_connections_per_ip_overrides).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "max.connections.per.ip.overrides ignored");
                Vec::new()
            });
        for (host, count) in entries {
            match resolve_blocking(&host) {
                Ok(ips) => per_ip_overrides.extend(ips.into_iter().map(|ip| (ip, count))),
                Err(e) => {
                    tracing::warn!(host, error = %e, "max.connections.per.ip.overrides: host left out")
                }
            }
        }
        let rate = if current.rate_per_second == config.max_connection_creation_rate {
            current.rate.clone()
        } else {
            Rate::per_second(config.max_connection_creation_rate)
        };
        *self.broker.write() = Arc::new(BrokerLimits {
            max_connections: config.max_connections,
            per_ip: config.max_connections_per_ip,
            overrides_text: config.max_connections_per_ip_overrides.clone(),
            per_ip_overrides,
            rate_per_second: config.max_connection_creation_rate,
            rate,
        });
        tracing::info!(
            max_connections = config.max_connections,
            max_connections_per_ip = config.max_connections_per_ip,
            overrides = ?config.max_connections_per_ip_overrides,
            max_connection_creation_rate = config.max_connection_creation_rate,
            "connection limits changed"
        );
    }

    /// Counts a connection accepted on the listener at index `listener`
    /// from `ip`, or says which limit refuses it.
    pub(crate) fn admit(self: &Arc<Self>, listener: usize, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let broker = Arc::clone(&self.broker.read());
        let mut counts = self.counts.lock();
        let per_ip = broker
            .per_ip_overrides
            .get(&ip)
            .copied()
            .unwrap_or(broker.per_ip);
        if counts.per_ip.get(&ip).copied().unwrap_or(0) >= per_ip {
            return Err(Refused::PerIp(per_ip));
        }
        let listener_max = self.listeners[listener].max_connections;
        if counts.per_listener[listener] >= listener_max {
            return Err(Refused::Listener(listener_max));
        }
        if self.protected != Some(listener) && counts.total >= broker.max_connections {
            return Err(Refused::Broker(broker.max_connections));
        }
        counts.total += 1;
        counts.per_listener[listener] += 1;
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            listener,
            ip,
        })
    }

    /// How long a connection accepted now on the listener at index
    /// `listener` waits before it is served, to keep to the creation
    /// rates (Kafka throttles the acceptor so, rather than refusing).
    pub(crate) fn creation_delay(&self, listener: usize) -> Duration {
        let now = Instant::now();
        let own = self.listeners[listener].rate.book(now);
        if self.protected == Some(listener) {
            return own;
        }
        let broker = Arc::clone(&self.broker.read());
        own.max(broker.rate.book(now))
    }

    /// Open connections from `ip` (for tests).
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> u64 {
        self.counts.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }
}

/// A creation rate: each connection books the next free instant, spaced
/// `1 / rate` apart; up to [`BURST`] of them may be booked ahead of now
/// without waiting (the generic cell rate algorithm).
#[derive(Debug, Clone)]
struct Rate {
    /// `None`: unlimited.
    spacing: Option<Duration>,
    /// Shared by the copies of one rate (a change of another limit keeps
    /// what was booked).
    next: Arc<Mutex<Option<Instant>>>,
}

impl Rate {
    fn per_second(rate: u64) -> Rate {
        Rate {
            spacing: (rate < UNLIMITED).then(|| Duration::from_secs(1) / rate.max(1) as u32),
            next: Arc::new(Mutex::new(None)),
        }
    }

    /// Books one connection at `now`; returns how long it must wait.
    fn book(&self, now: Instant) -> Duration {
        let Some(spacing) = self.spacing else {
            return Duration::ZERO;
        };
        let mut next = self.next.lock();
        let booked = next.map_or(now, |t| t.max(now)) + spacing;
        *next = Some(booked);
        booked.saturating_duration_since(now + BURST)
    }
}

fn positive(key: &str, value: u64) -> Result<u64, BrokerError> {
    if value == 0 {
        return Err(BrokerError::Config(format!("{key} must be at least 1")));
    }
    Ok(value)
}

/// `max.connections.per.ip.overrides`: `host:count` entries (an IPv6
/// address may be written in brackets).
pub(crate) fn parse_overrides(entries: &[String]) -> Result<Vec<(String, u64)>, BrokerError> {
    entries
        .iter()
        .map(|entry| {
            let bad = |why: &str| {
                BrokerError::Config(format!(
                    "max.connections.per.ip.overrides: {entry:?}: {why} (host:count,host:count)"
                ))
            };
            let (host, count) = entry.rsplit_once(':').ok_or_else(|| bad("no count"))?;
            let host = host.trim();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                return Err(bad("no host"));
            }
            let count = count
                .trim()
                .parse::<u64>()
                .map_err(|_| bad("the count is not a number"))?;
            Ok((host.to_owned(), count))
        })
        .collect()
}

/// Every address `host` names (itself, when it is an address), looked up
/// on the calling thread.
fn resolve_blocking(host: &str) -> std::io::Result<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip.to_canonical()]);
    }
    Ok((host, 0)
        .to_socket_addrs()?
        .map(|a| a.ip().to_canonical())
        .collect())
}

/// Every address `host` names (itself, when it is an address).
async fn resolve(host: &str) -> Result<Vec<IpAddr>, BrokerError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip.to_canonical()]);
    }
    let addrs = tokio::net::lookup_host((host, 0)).await.map_err(|e| {
        BrokerError::Config(format!(
            "max.connections.per.ip.overrides: cannot resolve {host:?}: {e}"
        ))
    })?;
    Ok(addrs.map(|a| a.ip().to_canonical()).collect())
}

/// The read-only connection settings DescribeConfigs lists for the
/// broker: `(name, value, type)` with the type's code in DescribeConfigs
/// (the dynamic ones are `crate::dynamic_config::BROKER_KEYS`).
pub(crate) fn describe(config: &BrokerConfig) -> Vec<(&'static str, String, i8)> {
    use crate::topic_config::TYPE_LONG;
    vec![
        (
            "connections.max.idle.ms",
            config.connections_max_idle_ms.to_string(),
            TYPE_LONG,
        ),
        (
            "socket.request.read.timeout.ms",
            config.socket_request_read_timeout_ms.to_string(),
            TYPE_LONG,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(yaml: &str) -> Arc<ConnectionLimits> {
        let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap();
        config.validate().unwrap();
        let listeners = Listeners::from_config(&config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Arc::new(
            runtime
                .block_on(ConnectionLimits::from_config(&config, &listeners))
                .unwrap(),
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_ip_counts_and_overrides() {
        let limits = limits(
            "max.connections.per.ip: 2\n\
             max.connections.per.ip.overrides: \"10.0.0.9:0,[::2]:3, localhost : 1\"\n",
        );
        let a = ip("10.0.0.1");
        let first = limits.admit(0, a).unwrap();
        let _second = limits.admit(0, a).unwrap();
        assert_eq!(limits.admit(0, a).unwrap_err(), Refused::PerIp(2));
        drop(first);
        let _third = limits.admit(0, a).unwrap();
        assert_eq!(
            limits.admit(0, ip("10.0.0.9")).unwrap_err(),
            Refused::PerIp(0)
        );
        let six: Vec<_> = (0..3)
            .map(|_| limits.admit(0, ip("::2")).unwrap())
            .collect();
        assert_eq!(limits.admit(0, ip("::2")).unwrap_err(), Refused::PerIp(3));
        drop(six);
        assert_eq!(limits.open_from(ip("::2")), 0);
        // An IPv4 client on a dual-stack socket is its IPv4 address.
        let _local = limits.admit(0, ip("::ffff:127.0.0.1")).unwrap();
        assert_eq!(
            limits.admit(0, ip("127.0.0.1")).unwrap_err(),
            Refused::PerIp(1)
        );
    }

    #[test]
    fn the_inter_broker_listener_is_exempt_from_max_connections() {
        let yaml = "max.connections: 2\n\
                    listeners: PLAINTEXT://:1,INTERNAL://:2\n\
                    listener.security.protocol.map: PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT\n\
                    inter.broker.listener.name: INTERNAL\n";
        let limits = limits(yaml);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let _open = [limits.admit(0, a).unwrap(), limits.admit(0, b).unwrap()];
        assert_eq!(limits.admit(0, a).unwrap_err(), Refused::Broker(2));
        let internal: Vec<_> = (0..3).map(|_| limits.admit(1, a).unwrap()).collect();
        assert_eq!(internal.len(), 3);
        // Alone, the inter-broker listener is the broker's only one and
        // not exempt (as in Kafka).
        let alone = self::limits("max.connections: 1\n");
        let _one = alone.admit(0, a).unwrap();
        assert_eq!(alone.admit(0, b).unwrap_err(), Refused::Broker(1));
    }

    #[test]
    fn per_listener_limits_use_kafkas_prefix() {
        let yaml = "listeners: PLAINTEXT://:1,OTHER://:2\n\
                    listener.security.protocol.map: PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT\n\
                    listener.name.other.max.connections: 1\n";
        let limits = limits(yaml);
        let a = ip("10.0.0.1");
        let _one = limits.admit(1, a).unwrap();
        assert_eq!(limits.admit(1, a).unwrap_err(), Refused::Listener(1));
        let _plain = limits.admit(0, a).unwrap();
    }

    #[test]
    fn the_creation_rate_lets_a_second_in_then_spaces_connections() {
        let rate = Rate::per_second(10);
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(rate.book(now), Duration::ZERO);
        }
        assert_eq!(rate.book(now), Duration::from_millis(100));
        assert_eq!(rate.book(now), Duration::from_millis(200));
        // Later, the rate's worth of time has been earned back.
        let later = now + Duration::from_secs(5);
        assert_eq!(rate.book(later), Duration::ZERO);
        assert_eq!(Rate::per_second(UNLIMITED).book(now), Duration::ZERO);
    }

    #[test]
    fn reconfigured_limits_apply_to_the_next_connection_only() {
        let limits = limits("max.connections.per.ip: 3\n");
        let a = ip("10.0.0.1");
        let open: Vec<_> = (0..3).map(|_| limits.admit(0, a).unwrap()).collect();
        let mut config: BrokerConfig =
            crate::yaml::from_str("max.connections.per.ip: 1\n").unwrap();
        limits.reconfigure(&config);
        // The three stay; a fourth is refused by the new limit.
        assert_eq!(limits.admit(0, a).unwrap_err(), Refused::PerIp(1));
        drop(open);
        let _one = limits.admit(0, a).unwrap();
        assert_eq!(limits.admit(0, a).unwrap_err(), Refused::PerIp(1));
        config.max_connections_per_ip_overrides = vec!["10.0.0.1:2".to_owned()];
        limits.reconfigure(&config);
        let _two = limits.admit(0, a).unwrap();
        assert_eq!(limits.admit(0, a).unwrap_err(), Refused::PerIp(2));
    }

    #[test]
    fn bad_overrides_are_refused() {
        for bad in ["host", "host:x", ":3", "[::1]:-1"] {
            assert!(parse_overrides(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert_eq!(
            parse_overrides(&["::1:4".to_owned()]).unwrap(),
            [("::1".to_owned(), 4)]
        );
    }
}
