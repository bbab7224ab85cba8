//! The client side of TLS: this broker's own connections to its peers
//! (replica fetchers to leaders, and the controller quorum's links) over a
//! TLS listener.
//!
//! It is for: the rustls client config a TLS listener's files make (the
//! truststore's CAs verify the peer's certificate and its name, the
//! keystore is this broker's client certificate when the peer asks for
//! one), and opening a connection with it ([`PeerConnector`]). The config
//! is loaded and reloaded with the listener's server config (`super`), so
//! a rotated certificate is used by new outgoing connections too. It is
//! not for what is sent over the connection (`replication::peer`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{ServerTls, TlsError};

/// The client config of a listener with a truststore: its CAs are the only
/// roots, and its keystore is offered as client certificate.
pub(super) fn config(
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A connection to read and write: a TCP socket, or TLS over one.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

/// Opens this broker's connections to a peer's listener: plain TCP, or TLS
/// with the listener's current client config.
#[derive(Debug, Clone)]
pub(crate) struct PeerConnector {
    /// The name of the listener connected to (peers are reached at the
    /// endpoint they registered under it).
    listener: String,
    /// `None`: plain TCP.
    tls: Option<Arc<ServerTls>>,
}

impl PeerConnector {
    /// Connects to peers' listener `listener` as `tls` (a listener with a
    /// truststore) says; `None` for plain TCP.
    pub(crate) fn new(listener: &str, tls: Option<Arc<ServerTls>>) -> PeerConnector {
        PeerConnector {
            listener: listener.to_owned(),
            tls,
        }
    }

    /// The name of the listener connected to.
    pub(crate) fn listener(&self) -> &str {
        &self.listener
    }

    /// Connects to `addr` (`host:port`, `[v6]:port`) within `timeout`, TLS
    /// handshake included; the peer's certificate must be signed by a CA of
    /// the truststore and name `host`.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> io::Result<Box<dyn Stream>> {
        let open = async {
            let tcp = TcpStream::connect(addr).await?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => Ok(Box::new(tcp) as Box<dyn Stream>),
                Some(tls) => Ok(Box::new(tls.connect(tcp, addr).await?) as Box<dyn Stream>),
            }
        };
        tokio::time::timeout(timeout, open)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }
}

impl ServerTls {
    /// The TLS handshake, as a client, over `tcp` connected to `addr`
    /// (`host:port`): the peer's certificate must be signed by a CA of this
    /// listener's truststore and name `host`; this broker's keystore is its
    /// client certificate.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        addr: &str,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let config = self.client_config().ok_or_else(|| {
            io::Error::other(format!(
                "listener {}: no ssl.truststore.location to verify peers with",
                self.listener()
            ))
        })?;
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
    }
}
