//! Accepting connections on one listener: each accepted socket waits out
//! the connection creation rate, takes its place in the connection counts
//! or is closed at once, and goes to the server loop with its [`Slot`].
//!
//! Running out of file descriptors (EMFILE, ENFILE) does not spin the
//! loop nor leave clients hanging in the listen backlog: the loop keeps one
//! spare descriptor, and when accepting fails for want of one it gives the
//! spare up, accepts the connections waiting and closes them (their
//! clients see the connection closed and retry later), takes the spare
//! back, logs (once per interval) and pauses 10 ms; if no connection could
//! be closed so (the spare was taken meanwhile), the pause doubles, up to a
//! second. Once descriptors are free again (connections closed, idle ones
//! timed out), the next accept succeeds and the loop serves as before.
//!
//! A connection refused (over a limit, or for want of descriptors) is
//! reset, not closed: see [`abort`]. One over its address's
//! `connection_creation_rate` quota (KIP-612, `crate::quotas`) is held
//! unserved for its throttle time and then closed, as Kafka delays it.
//!
//! It is not for the limits' arithmetic (`connection_limits`) nor for what
//! an accepted connection does (`server::open_connection`, `connection`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::broker_state::BrokerState;
use crate::connection_limits::{ConnectionLimits, Refused, Slot};
use crate::listeners::BoundListener;
use crate::log_limit::LogLimit;
use crate::tls::ServerTls;

/// The first pause after a failed accept; it doubles while accepting
/// keeps failing.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause between failed accepts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An accepted connection, counted, with the listener it came in on.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub listener: Arc<BoundListener>,
    pub tls: Option<Arc<ServerTls>>,
    /// Given back when the connection ends.
    pub slot: Slot,
}

/// One listener's socket and what its connections need.
#[derive(Debug)]
pub(crate) struct Acceptor {
    pub socket: TcpListener,
    pub listener: Arc<BoundListener>,
    /// The listener's index in `listeners` (for its limits).
    pub index: usize,
    pub tls: Option<Arc<ServerTls>>,
    pub limits: Arc<ConnectionLimits>,
    /// For the connection quotas of client addresses.
    pub state: Arc<BrokerState>,
}

/// Accepts on one listener until the server loop stops taking
/// connections.
pub(crate) async fn accept_loop(acceptor: Acceptor, incoming: mpsc::Sender<Incoming>) {
    let mut spare = spare_descriptor();
    let mut backoff = MIN_BACKOFF;
    loop {
        match acceptor.socket.accept().await {
            Ok((stream, peer)) => {
                backoff = MIN_BACKOFF;
                let Some(item) = admit(&acceptor, stream, peer).await else {
                    continue;
                };
                if incoming.send(item).await.is_err() {
                    return;
                }
            }
            Err(e) if out_of_descriptors(&e) => {
                // Backing off only while no connection could be closed:
                // with the spare, each one is answered as it comes.
                if refuse_for_want_of_descriptors(&acceptor, &mut spare, &e).await > 0 {
                    backoff = MIN_BACKOFF;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                // A connection reset before it was accepted, and the like.
                static FAILED: LogLimit<()> = LogLimit::new();
                if let Some(suppressed) = FAILED.admit(()) {
                    tracing::warn!(listener = %acceptor.listener.name, error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(MIN_BACKOFF).await;
            }
        }
    }
}

/// Waits out the creation rate, then counts the connection or closes it.
async fn admit(acceptor: &Acceptor, stream: TcpStream, peer: SocketAddr) -> Option<Incoming> {
    let delay = acceptor.limits.creation_delay(acceptor.index);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let throttle = ip_throttle(&acceptor.state, peer.ip());
    if !throttle.is_zero() {
        hold(stream, peer, throttle);
        return None;
    }
    let slot = match acceptor.limits.admit(acceptor.index, peer.ip()) {
        Ok(slot) => slot,
        Err(refused) => {
            abort(&stream);
            refuse(&acceptor.listener, peer, refused);
            return None;
        }
    };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    Some(Incoming {
        stream,
        peer,
        listener: Arc::clone(&acceptor.listener),
        tls: acceptor.tls.clone(),
        slot,
    })
}

/// How long a new connection from `ip` is throttled by its address's
/// `connection_creation_rate` quota (zero: none applies, or it is within).
fn ip_throttle(state: &BrokerState, ip: IpAddr) -> Duration {
    let table = state.metadata().ip_quotas();
    let Some(bound) = crate::quotas::connection_rate_for(&table, ip) else {
        return Duration::ZERO;
    };
    state
        .client_quotas()
        .connection_from(ip, bound, Instant::now())
}

/// Throttled connections held at most at once; beyond, one is reset at
/// once (a flood cannot make the broker hold every socket it sends).
const MAX_HELD: usize = 1024;

/// Throttled connections held now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Holds a throttled connection unserved for `throttle`, then closes it
/// (Kafka's delayed close: the client does not reconnect at once).
fn hold(stream: TcpStream, peer: SocketAddr, throttle: Duration) {
    tracing::debug!(%peer, ?throttle, "connection throttled: over its address's connection_creation_rate");
    if HELD.fetch_add(1, Ordering::Relaxed) >= MAX_HELD {
        HELD.fetch_sub(1, Ordering::Relaxed);
        abort(&stream);
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(throttle).await;
        drop(stream);
        HELD.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Makes dropping `stream` reset the connection instead of closing it:
/// a refused connection must not look like a listener whose process is
/// gone (accepted and closed without a byte, what a proxy in front of a
/// dead broker does), or the controller's liveness probe
/// (`fjord_controller::liveness`) would fence a live broker that is only
/// full. Clients retry either way.
fn abort(stream: &TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "cannot set SO_LINGER on a refused connection");
    }
}

/// Logs (rate-limited per client address) a connection closed for a
/// limit; dropping the stream resets it ([`abort`]).
fn refuse(listener: &BoundListener, peer: SocketAddr, refused: Refused) {
    static REFUSED: LogLimit = LogLimit::new();
    if let Some(suppressed) = REFUSED.admit(peer.ip()) {
        tracing::warn!(
            listener = %listener.name,
            %peer,
            reason = %refused,
            suppressed,
            "connection closed: over a connection limit (suppressed: such lines for this address since the last one)"
        );
    }
}

/// Whether accepting failed because the process (EMFILE) or the system
/// (ENFILE) has no descriptor left.
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// A descriptor held in reserve, given up to refuse a connection when
/// none is left.
fn spare_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// At most this many waiting connections are closed in one round.
const MAX_REFUSED_AT_ONCE: usize = 1024;

/// With the spare descriptor, accepts the connections waiting in the
/// backlog and closes each (the one freed descriptor serves them in
/// turn), so their clients hear a close now instead of waiting; then takes
/// the spare back. Returns how many were closed: none when the spare was
/// gone (another thread took the freed descriptor first; it is retried
/// next time).
async fn refuse_for_want_of_descriptors(
    acceptor: &Acceptor,
    spare: &mut Option<std::fs::File>,
    error: &std::io::Error,
) -> usize {
    let mut refused = 0;
    if spare.take().is_some() {
        while refused < MAX_REFUSED_AT_ONCE {
            // Zero time: only a connection already waiting. Dropping it
            // closes it.
            match tokio::time::timeout(Duration::ZERO, acceptor.socket.accept()).await {
                Ok(Ok((waiting, _))) => {
                    abort(&waiting);
                    refused += 1;
                }
                _ => break,
            }
        }
    }
    *spare = spare_descriptor();
    static OUT_OF_DESCRIPTORS: LogLimit<()> = LogLimit::new();
    if let Some(suppressed) = OUT_OF_DESCRIPTORS.admit(()) {
        tracing::warn!(
            listener = %acceptor.listener.name,
            error = %error,
            closed = refused,
            suppressed,
            "out of file descriptors: closing new connections until some are free (raise the open-file limit, RLIMIT_NOFILE, or lower max.connections; suppressed: such lines since the last one)"
        );
    }
    refused
}
