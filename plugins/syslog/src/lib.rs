//! `syslog`: a source that receives syslog messages — RFC 5424 and RFC
//! 3164 alike — over UDP and TCP, as rsyslog, syslog-ng, journald
//! forwarders, network gear and container runtimes send them.
//!
//! Each message becomes one record: the value is the message as sent
//! (`<34>1 2026-11-23T04:00:00Z host app …` or `<13>Nov 23 04:00:00 host
//! app: …`), the timestamp the time it arrived, headers `peer` (the
//! sender's address) and `transport` (`udp` or `tcp`). Parsing is the
//! `parse` processor's job (`format: syslog` or `auto`), so the same
//! pipeline takes syslog from this source, from files, or from a Kafka
//! producer.
//!
//! Config:
//! - `listen`: `host:port` (default `127.0.0.1:5514`; 514 needs root).
//! - `protocol`: `udp`, `tcp` or `both` (default), on the same port.
//! - `max_message_bytes`: longer messages are cut there (default 65536).
//! - `queue`: messages held between the listeners and the pipeline
//!   (default 100000).
//!
//! Framing over TCP (RFC 6587), per message: octet counting (`LEN SP MSG`,
//! when the frame starts with a digit) or newline-terminated. Over UDP one
//! datagram is one message (RFC 5426); trailing newlines are removed.
//!
//! Delivery: when the queue is full, TCP senders wait (back-pressure) and
//! UDP messages are dropped and counted (`udp_dropped`) — UDP syslog is
//! lossy by design. Syslog has no replay: messages received but not yet
//! written to the log when the broker dies are lost, as with any syslog
//! receiver; use TCP and a relay with a disk queue where that matters.
//!
//! Not for: TLS (RFC 5425; terminate it in a relay), or WebAssembly (the
//! host gives components no listening sockets): built-in and native only.

mod listen;

use fjord_sdk::inbox::Inbox;
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Record, Source,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The source: listener threads fill the inbox, `poll` empties it.
#[derive(Debug)]
pub struct Syslog {
    inbox: Inbox<Record>,
    stop: Arc<AtomicBool>,
    udp_dropped: Arc<AtomicU64>,
    reported_drops: u64,
    listeners: Vec<std::thread::JoinHandle<()>>,
    /// Where it listens, with the port the OS picked for port 0.
    pub udp_addr: Option<SocketAddr>,
    pub tcp_addr: Option<SocketAddr>,
}

impl Plugin for Syslog {
    fn info() -> PluginInfo {
        PluginInfo::new("syslog", env!("CARGO_PKG_VERSION"))
            .description("receives syslog messages (RFC 5424, RFC 3164) over UDP and TCP")
            .key(ConfigKey::optional(
                "listen",
                Some("127.0.0.1:5514"),
                "host:port to listen on",
            ))
            .key(ConfigKey::optional(
                "protocol",
                Some("both"),
                "udp, tcp or both",
            ))
            .key(ConfigKey::optional(
                "max_message_bytes",
                Some("65536"),
                "longer messages are cut",
            ))
            .key(ConfigKey::optional(
                "queue",
                Some("100000"),
                "messages held for the pipeline; then TCP waits and UDP drops",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let listen = config.get("listen").unwrap_or("127.0.0.1:5514");
        let addr: SocketAddr = listen.parse().map_err(|e| {
            Error::msg(format!(
                "config key `listen`: {listen:?} is not host:port: {e}"
            ))
        })?;
        let (udp, tcp) = match config.get("protocol").unwrap_or("both") {
            "udp" => (true, false),
            "tcp" => (false, true),
            "both" => (true, true),
            other => {
                return Err(Error::msg(format!(
                    "config key `protocol`: {other:?} is not udp, tcp or both"
                )));
            }
        };
        let max: usize = config.parse_or("max_message_bytes", 65536)?;
        let inbox = Inbox::new(config.parse_or("queue", 100_000)?);
        let stop = Arc::new(AtomicBool::new(false));
        let udp_dropped = Arc::new(AtomicU64::new(0));
        let settings = listen::Settings {
            inbox: inbox.clone(),
            stop: Arc::clone(&stop),
            max: max.max(1),
        };
        let bind_error = |proto: &str, e: std::io::Error| {
            stop.store(true, Ordering::Relaxed);
            Error::msg(format!("cannot listen on {proto} {addr}: {e}"))
        };
        let mut listeners = Vec::new();
        let tcp_addr = if tcp {
            let (bound, thread) =
                listen::tcp(addr, settings.clone()).map_err(|e| bind_error("tcp", e))?;
            listeners.push(thread);
            Some(bound)
        } else {
            None
        };
        // UDP on the port TCP got, so `:0` gives one port for both.
        let udp_addr = if udp {
            let at = tcp_addr.unwrap_or(addr);
            match listen::udp(at, settings, Arc::clone(&udp_dropped)) {
                Ok((bound, thread)) => {
                    listeners.push(thread);
                    Some(bound)
                }
                Err(e) => {
                    let error = bind_error("udp", e);
                    // The TCP listener gives its port up before the error
                    // is returned: a retry binds it again.
                    if listen::wake(tcp_addr, None) {
                        for thread in listeners {
                            let _ = thread.join();
                        }
                    }
                    return Err(error);
                }
            }
        } else {
            None
        };
        Ok(Syslog {
            inbox,
            stop,
            udp_dropped,
            reported_drops: 0,
            listeners,
            udp_addr,
            tcp_addr,
        })
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        // Waiting for the listeners frees the port for a redeployed
        // pipeline that binds it again.
        self.stop.store(true, Ordering::Relaxed);
        if listen::wake(self.tcp_addr, self.udp_addr) {
            for thread in self.listeners.drain(..) {
                let _ = thread.join();
            }
        }
    }
}

#[fjord_sdk::source]
impl Source for Syslog {
    fn seek(&mut self, _position: &[u8]) -> Result<(), Error> {
        // Nothing to resume: syslog senders do not replay.
        Ok(())
    }

    fn poll(
        &mut self,
        max: u32,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        for r in self.inbox.take(max as usize) {
            out.emit(&r);
        }
        let dropped = self.udp_dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            ctx.counter("udp_dropped", dropped - self.reported_drops);
            self.reported_drops = dropped;
        }
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        Vec::new()
    }
}
