//! The admin listener's sockets: plain TCP, or TLS with the broker's own
//! TLS code ([`fjord_broker::ServerTls`]: the `admin.ssl.*` PEM files,
//! client certificates, reloading). What a connection is — where it
//! arrived, who is at the other end, the user its client certificate
//! names — travels to every request as [`Arrival`].
//!
//! TLS handshakes run on their own tasks, at most [`MAX_HANDSHAKES`] at
//! once, each within the broker's handshake timeout: a slow or silent
//! client cannot hold up the accepting of others.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use fjord_broker::ServerTls;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

/// TLS handshakes in progress at most; more connections wait in the
/// kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// Where a connection arrived and who sent it.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    /// The local address: a name `Host` may carry (`guard`).
    pub local: SocketAddr,
    /// The client's address: ACLs' host, the log lines' peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS (cookies are then `Secure`).
    pub tls: bool,
    /// The user a verified client certificate names (after
    /// `ssl.principal.mapping.rules`).
    pub certificate_user: Option<String>,
}

impl Connected<IncomingStream<'_, AdminListener>> for Arrival {
    fn connect_info(stream: IncomingStream<'_, AdminListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A plain or TLS connection.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The accepted connections, past their TLS handshake when there is TLS.
pub(crate) struct AdminListener {
    local: SocketAddr,
    tls: bool,
    ready: mpsc::Receiver<(Conn, Arrival)>,
    accepting: JoinHandle<()>,
}

impl AdminListener {
    pub(crate) fn new(tcp: TcpListener, local: SocketAddr, tls: Option<Arc<ServerTls>>) -> Self {
        let (tx, ready) = mpsc::channel(16);
        let is_tls = tls.is_some();
        let accepting = tokio::spawn(accept_loop(tcp, local, tls, tx));
        AdminListener {
            local,
            tls: is_tls,
            ready,
            accepting,
        }
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    local: SocketAddr,
    tls: Option<Arc<ServerTls>>,
    tx: mpsc::Sender<(Conn, Arrival)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: pause, as axum does.
                    tracing::debug!(error = %e, "admin listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tx.closed() => return,
        };
        let _ = stream.set_nodelay(true);
        let arrival = Arrival {
            local,
            peer,
            tls: tls.is_some(),
            certificate_user: None,
        };
        let Some(tls) = &tls else {
            if tx.send((Conn::Plain(stream), arrival)).await.is_err() {
                return;
            }
            continue;
        };
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (tls, tx) = (Arc::clone(tls), tx.clone());
        tokio::spawn(async move {
            // Failures are logged (rate-limited) by the broker's TLS code.
            let accepted = tls.accept(stream, peer).await;
            drop(permit);
            if let Some(accepted) = accepted {
                let arrival = Arrival {
                    certificate_user: accepted.user,
                    ..arrival
                };
                let _ = tx
                    .send((Conn::Tls(Box::new(accepted.stream)), arrival))
                    .await;
            }
        });
    }
}

impl Listener for AdminListener {
    type Io = Conn;
    type Addr = Arrival;

    async fn accept(&mut self) -> (Conn, Arrival) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended (it does not on its own): wait for
            // the shutdown that follows.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Arrival> {
        Ok(Arrival {
            local: self.local,
            peer: self.local,
            tls: self.tls,
            certificate_user: None,
        })
    }
}
