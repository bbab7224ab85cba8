//! TLS on the controller quorum's links: the Raft RPCs between voters, and
//! the proposals, heartbeats and metadata of brokers that follow them.
//!
//! It is for: reading `controller.listener.names` and the named listener's
//! `ssl.*` settings into the [`LinkSecurity`] the controller and the
//! controller client use (`fjord_controller::link`), with certificates
//! required both ways and verified against the listener's truststore, and
//! reloaded like a Kafka listener's. It is not for what is sent over the
//! links (`fjord-controller`), nor for choosing the addresses
//! (`controller.quorum.voters`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fjord_controller::link::{BoxedStream, LinkFuture, LinkSecurity, Security};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{ClientAuth, ServerTls, TlsSettings};
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::listeners::Listeners;

/// How this node's controller quorum links are carried, from its config.
#[derive(Debug)]
pub struct ControllerLinks {
    /// Where this node's controller listens when the controller's listener
    /// is in `listeners`; `None`: `controller.listener`, or its own voter
    /// address.
    pub listen: Option<String>,
    tls: Option<Arc<ServerTls>>,
    reload_every: Duration,
}

impl ControllerLinks {
    /// Reads `controller.listener.names` and its listener's settings, and
    /// loads its keystore and truststore. Plain TCP when the setting is not
    /// set or names a PLAINTEXT listener; with SSL a truststore is needed
    /// (peers are verified against it, both ways).
    pub fn from_config(config: &BrokerConfig) -> Result<ControllerLinks, BrokerError> {
        let listeners = Listeners::from_config(config)?;
        let Some(spec) = listeners.controller else {
            return Ok(ControllerLinks {
                listen: None,
                tls: None,
                reload_every: Duration::ZERO,
            });
        };
        let listen = (!spec.bind.is_empty()).then(|| spec.bind.clone());
        let tls = match TlsSettings::for_listener(config, &spec)? {
            None => None,
            Some(settings) => {
                if settings.truststore.is_none() {
                    let lower = spec.name.to_ascii_lowercase();
                    return Err(BrokerError::Config(format!(
                        "controller.listener.names: {} is an SSL listener: controllers and brokers verify each other's certificates with ssl.truststore.location (or listener.name.{lower}.ssl.truststore.location), which is not set",
                        spec.name
                    )));
                }
                // Both ends show a certificate the truststore vouches for,
                // whatever ssl.client.auth says for Kafka listeners.
                let settings = TlsSettings {
                    client_auth: ClientAuth::Required,
                    ..settings
                };
                Some(Arc::new(ServerTls::load(&spec.name, settings)?))
            }
        };
        Ok(ControllerLinks {
            listen,
            tls,
            reload_every: Duration::from_millis(config.ssl_reload_interval_ms.max(10)),
        })
    }

    /// What the controller and the controller client secure their
    /// connections with (`None`: plain TCP). With TLS, starts checking the
    /// files for changes (every `ssl.reload.interval.ms`) until
    /// `shutdown`: must be called within a Tokio runtime.
    pub fn security(&self, shutdown: watch::Receiver<bool>) -> Security {
        let tls = self.tls.as_ref()?;
        Arc::clone(tls).watch(self.reload_every, shutdown);
        Some(Arc::new(ControllerTls(Arc::clone(tls))))
    }

    /// Whether the links are TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }
}

#[derive(Debug)]
struct ControllerTls(Arc<ServerTls>);

impl LinkSecurity for ControllerTls {
    fn accept(&self, stream: TcpStream, peer: SocketAddr) -> LinkFuture<'_> {
        Box::pin(async move {
            match self.0.accept(stream, peer).await {
                Some(accepted) => Ok(Box::new(accepted.stream) as BoxedStream),
                // Logged (rate-limited) by `accept`.
                None => Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "TLS handshake failed",
                )),
            }
        })
    }

    fn connect<'a>(&'a self, stream: TcpStream, addr: &'a str) -> LinkFuture<'a> {
        Box::pin(async move {
            let stream = self.0.connect(stream, addr).await?;
            Ok(Box::new(stream) as BoxedStream)
        })
    }
}
