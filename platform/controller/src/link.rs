//! What carries the controllers' connections (between voters, and from
//! brokers that follow them): plain TCP, or what a [`LinkSecurity`] makes
//! of each TCP connection — TLS with certificates both ways, as the broker
//! provides it for a `controller.listener.names` listener of protocol SSL.
//!
//! It is for the seam only: this crate frames and answers requests over any
//! [`LinkStream`], and knows nothing of certificates; the broker's `tls`
//! module loads, checks and reloads them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A controller connection: a TCP socket, or TLS over one.
pub trait LinkStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> LinkStream for T {}

/// A connection once secured.
pub type BoxedStream = Box<dyn LinkStream>;

/// What [`LinkSecurity`] returns: the secured connection, later.
pub type LinkFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send + 'a>>;

/// Secures controller connections, both ways. An error closes the
/// connection (and, when connecting, fails the call as unreachable).
pub trait LinkSecurity: Send + Sync + std::fmt::Debug {
    /// A connection accepted from `peer` (the handshake, within a time
    /// limit of the implementation's).
    fn accept(&self, stream: TcpStream, peer: SocketAddr) -> LinkFuture<'_>;
    /// A connection opened to `addr` (`host:port`, as in the voter list).
    fn connect<'a>(&'a self, stream: TcpStream, addr: &'a str) -> LinkFuture<'a>;
}

/// How a controller or a controller client secures its connections:
/// `None` is plain TCP.
pub type Security = Option<Arc<dyn LinkSecurity>>;

/// `stream` as `security` makes it, accepted from `peer`.
pub(crate) async fn accept(
    security: &Security,
    stream: TcpStream,
    peer: SocketAddr,
) -> io::Result<BoxedStream> {
    match security {
        None => Ok(Box::new(stream)),
        Some(security) => security.accept(stream, peer).await,
    }
}

/// `stream` as `security` makes it, connected to `addr`.
pub(crate) async fn connect(
    security: &Security,
    stream: TcpStream,
    addr: &str,
) -> io::Result<BoxedStream> {
    match security {
        None => Ok(Box::new(stream)),
        Some(security) => security.connect(stream, addr).await,
    }
}
