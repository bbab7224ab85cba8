//! The listener threads: sockets in, records into the inbox.

use fjord_sdk::Record;
use fjord_sdk::inbox::Inbox;
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a thread reading an open TCP connection looks at the stop
/// flag. The listening threads block without a timeout: [`wake`] gets
/// them out of `accept` and `recv_from` when the flag is set, so an idle
/// listener costs no wake-ups.
const STOP_CHECK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Settings {
    pub inbox: Inbox<Record>,
    pub stop: Arc<AtomicBool>,
    pub max: usize,
}

fn record(message: &[u8], peer: SocketAddr, transport: &str) -> Record {
    Record::new(message)
        .with_timestamp(fjord_sdk::now_ms())
        .with_header("peer", peer.to_string())
        .with_header("transport", transport)
}

/// A listener's bound address and its thread, which gives the socket up
/// when it ends.
pub type Listening = (SocketAddr, JoinHandle<()>);

/// Binds UDP and starts its thread.
pub fn udp(addr: SocketAddr, s: Settings, dropped: Arc<AtomicU64>) -> io::Result<Listening> {
    let socket = UdpSocket::bind(addr)?;
    let bound = socket.local_addr()?;
    let thread = std::thread::Builder::new()
        .name("syslog-udp".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let received = socket.recv_from(&mut buf);
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok((n, peer)) = received else { continue };
                let message = trim_newlines(&buf[..n.min(s.max)]);
                if message.is_empty() {
                    continue;
                }
                if s.inbox
                    .try_push_all(vec![record(message, peer, "udp")])
                    .is_err()
                {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        })?;
    Ok((bound, thread))
}

/// Binds TCP and starts its accept thread.
pub fn tcp(addr: SocketAddr, s: Settings) -> io::Result<Listening> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let thread = std::thread::Builder::new()
        .name("syslog-tcp".into())
        .spawn(move || {
            loop {
                let accepted = listener.accept();
                if s.stop.load(Ordering::Relaxed) {
                    return;
                }
                match accepted {
                    Ok((stream, peer)) => {
                        let s = s.clone();
                        let _ = std::thread::Builder::new()
                            .name("syslog-tcp-conn".into())
                            .spawn(move || connection(stream, peer, &s));
                    }
                    // Out of file descriptors and the like: back off.
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
    Ok((bound, thread))
}

/// Wakes the listener threads bound to `tcp` and `udp` once the stop flag
/// is set: a connection to the one and an empty datagram to the other.
/// False when the TCP listener could not be reached (its thread then ends
/// at its next connection and must not be waited for).
pub fn wake(tcp: Option<SocketAddr>, udp: Option<SocketAddr>) -> bool {
    let reachable = |mut addr: SocketAddr| {
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        addr
    };
    if let Some(udp) = udp.map(reachable) {
        let any: SocketAddr = if udp.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // A datagram to oneself on loopback is not lost in practice; if it
        // were, the thread would end with the next datagram.
        if let Ok(socket) = UdpSocket::bind(any) {
            let _ = socket.send_to(&[], udp);
        }
    }
    match tcp.map(reachable) {
        Some(tcp) => TcpStream::connect_timeout(&tcp, Duration::from_secs(1)).is_ok(),
        None => true,
    }
}

fn connection(stream: TcpStream, peer: SocketAddr, s: &Settings) {
    if stream.set_nonblocking(false).is_err() || stream.set_read_timeout(Some(STOP_CHECK)).is_err()
    {
        return;
    }
    let mut reader = BufReader::new(Patient {
        inner: stream,
        stop: &s.stop,
    });
    loop {
        match next_frame(&mut reader, s.max) {
            Ok(Some(message)) => {
                let message = trim_newlines(&message);
                if !message.is_empty() && !s.inbox.push_wait(record(message, peer, "tcp"), &s.stop)
                {
                    return;
                }
            }
            // The sender closed, the broker stops, or the stream is broken.
            Ok(None) | Err(_) => return,
        }
    }
}

/// A stream whose read timeouts are retried until the stop flag is set, so
/// a quiet sender keeps its connection.
struct Patient<'a> {
    inner: TcpStream,
    stop: &'a AtomicBool,
}

impl Read for Patient<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.stop.load(Ordering::Relaxed) {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }
}

/// Reads one message: octet-counted when it starts with a digit (`LEN SP
/// MSG`), else up to the next newline. A message longer than `max` is cut
/// there (the rest of it is skipped). `None` at a clean end of stream.
pub fn next_frame(r: &mut impl BufRead, max: usize) -> io::Result<Option<Vec<u8>>> {
    let first = match r.fill_buf()? {
        [] => return Ok(None),
        b => b[0],
    };
    if first.is_ascii_digit() {
        let mut len = 0usize;
        loop {
            let mut byte = [0u8];
            r.read_exact(&mut byte)?;
            match byte[0] {
                b' ' => break,
                d @ b'0'..=b'9' if len < 100_000_000 => len = len * 10 + usize::from(d - b'0'),
                _ => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        "bad octet count in syslog frame",
                    ));
                }
            }
        }
        let mut message = Vec::with_capacity(len.min(max));
        r.by_ref()
            .take(len.min(max) as u64)
            .read_to_end(&mut message)?;
        if message.len() < len.min(max) {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        io::copy(
            &mut r.by_ref().take((len - len.min(max)) as u64),
            &mut io::sink(),
        )?;
        return Ok(Some(message));
    }
    let mut message = Vec::new();
    let n = r
        .by_ref()
        .take(max as u64)
        .read_until(b'\n', &mut message)?;
    if n == max && message.last() != Some(&b'\n') {
        // Cut: skip to the end of the line.
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let n = r.by_ref().take(64 * 1024).read_until(b'\n', &mut rest)?;
            if n == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
    }
    Ok(Some(message))
}

fn trim_newlines(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r' | b'\0'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(input: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut r = BufReader::new(input);
        let mut out = Vec::new();
        while let Ok(Some(f)) = next_frame(&mut r, max) {
            out.push(trim_newlines(&f).to_vec());
        }
        out
    }

    #[test]
    fn octet_counted_and_newline_frames_mix() {
        let input = b"10 <13>hello\n5 <1>ab<14>line two\n<15>three";
        assert_eq!(
            frames(input, 1000),
            [&b"<13>hello"[..], b"<1>ab", b"<14>line two", b"<15>three"]
        );
    }

    #[test]
    fn long_messages_are_cut_and_the_stream_goes_on() {
        assert_eq!(frames(b"<1>abcdefgh\n<2>x\n", 5), [&b"<1>ab"[..], b"<2>x"]);
        assert_eq!(frames(b"8 <1>abcde<2>x\n", 5), [&b"<1>ab"[..], b"<2>x"]);
    }

    proptest! {
        #[test]
        fn framing_never_panics(input in prop::collection::vec(any::<u8>(), 0..512), max in 1usize..64) {
            let _ = frames(&input, max);
        }
    }
}
