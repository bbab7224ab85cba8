//! TLS and SASL on the controller quorum's links: the Raft RPCs between
//! voters, and the proposals, heartbeats and metadata of brokers that
//! follow them.
//!
//! It is for: reading `controller.listener.names` and the named listener's
//! settings into the [`LinkSecurity`] the controller and the controller
//! client use (`fjord_controller::link`). By the listener's protocol:
//! PLAINTEXT, plain TCP; SSL, TLS with certificates required both ways and
//! verified against the listener's truststore; SASL_SSL, TLS whose server
//! certificate is verified (a client certificate as the listener's
//! `ssl.client.auth` says, none by default) and then a SCRAM login
//! (`controller_login`); SASL_PLAINTEXT, that login over plain TCP.
//! Certificates are reloaded like a Kafka listener's. It is not for what
//! is sent over the links (`fjord-controller`), nor for choosing the
//! addresses (`controller.quorum.voters`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fjord_controller::link::{BoxedStream, LinkFuture, LinkSecurity, Security};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::controller_login::LinkLogin;
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
    /// The SCRAM login on a SASL listener.
    login: Option<Arc<LinkLogin>>,
    reload_every: Duration,
}

impl ControllerLinks {
    /// Reads `controller.listener.names` and its listener's settings, and
    /// loads its keystore and truststore. Plain TCP when the setting is not
    /// set or names a PLAINTEXT listener; with SSL or SASL_SSL a truststore
    /// is needed (peers are verified against it: both ways with SSL, the
    /// server with SASL_SSL); with SASL a login line (`controller_login`).
    pub fn from_config(config: &BrokerConfig) -> Result<ControllerLinks, BrokerError> {
        let listeners = Listeners::from_config(config)?;
        let Some(spec) = listeners.controller else {
            return Ok(ControllerLinks {
                listen: None,
                tls: None,
                login: None,
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
                        "controller.listener.names: {} is an {} listener: controllers and brokers verify each other's certificates with ssl.truststore.location (or listener.name.{lower}.ssl.truststore.location), which is not set",
                        spec.name,
                        spec.protocol.name()
                    )));
                }
                let settings = if spec.protocol.requires_sasl() {
                    // The login proves who the client is; its certificate
                    // is as the listener's ssl.client.auth says.
                    settings
                } else {
                    // Both ends show a certificate the truststore vouches
                    // for, whatever ssl.client.auth says for Kafka
                    // listeners.
                    TlsSettings {
                        client_auth: ClientAuth::Required,
                        ..settings
                    }
                };
                Some(Arc::new(ServerTls::load(&spec.name, settings)?))
            }
        };
        let login = if spec.protocol.requires_sasl() {
            Some(Arc::new(LinkLogin::from_config(config, &spec)?))
        } else {
            None
        };
        Ok(ControllerLinks {
            listen,
            tls,
            login,
            reload_every: Duration::from_millis(config.ssl_reload_interval_ms.max(10)),
        })
    }

    /// What the controller and the controller client secure their
    /// connections with (`None`: plain TCP). With TLS, starts checking the
    /// files for changes (every `ssl.reload.interval.ms`) until
    /// `shutdown`: must be called within a Tokio runtime.
    pub fn security(&self, shutdown: watch::Receiver<bool>) -> Security {
        if self.tls.is_none() && self.login.is_none() {
            return None;
        }
        if let Some(tls) = &self.tls {
            Arc::clone(tls).watch(self.reload_every, shutdown);
        }
        Some(Arc::new(ControllerSecurity {
            tls: self.tls.clone(),
            login: self.login.clone(),
        }))
    }

    /// Whether the links are TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether the links log in with SASL (SCRAM) before quorum traffic.
    pub fn uses_sasl(&self) -> bool {
        self.login.is_some()
    }
}

/// TLS, then the login, as the listener's protocol asks.
#[derive(Debug)]
struct ControllerSecurity {
    tls: Option<Arc<ServerTls>>,
    login: Option<Arc<LinkLogin>>,
}

impl LinkSecurity for ControllerSecurity {
    fn accept(&self, stream: TcpStream, peer: SocketAddr) -> LinkFuture<'_> {
        Box::pin(async move {
            let mut stream: BoxedStream = match &self.tls {
                None => Box::new(stream),
                Some(tls) => match tls.accept(stream, peer).await {
                    Some(accepted) => Box::new(accepted.stream),
                    // Logged (rate-limited) by `accept`.
                    None => {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            "TLS handshake failed",
                        ));
                    }
                },
            };
            if let Some(login) = &self.login {
                login.accept(&mut stream, peer).await?;
            }
            Ok(stream)
        })
    }

    fn connect<'a>(&'a self, stream: TcpStream, addr: &'a str) -> LinkFuture<'a> {
        Box::pin(async move {
            let mut stream: BoxedStream = match &self.tls {
                None => Box::new(stream),
                Some(tls) => Box::new(tls.connect(stream, addr).await?),
            };
            if let Some(login) = &self.login {
                login.connect(&mut stream, addr).await?;
            }
            Ok(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn links(password: &str) -> ControllerLinks {
        let yaml = format!(
            "listeners: PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             controller.listener.names: CONTROLLER\n\
             listener.security.protocol.map: PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT\n\
             listener.name.controller.scram-sha-512.sasl.jaas.config: >-\n  \
             org.apache.kafka.common.security.scram.ScramLoginModule required\n  \
             username=\"fjord-internal\" password=\"{password}\";\n"
        );
        let config: BrokerConfig = crate::yaml::from_str(&yaml).unwrap();
        ControllerLinks::from_config(&config).unwrap()
    }

    /// A SASL_PLAINTEXT controller listener's security, as the controller
    /// uses it over real sockets: after the login the link carries bytes
    /// both ways; a node with another password gets no link.
    #[tokio::test]
    async fn a_sasl_plaintext_link_logs_in_then_carries_the_quorums_bytes() {
        let (_stop, stopped) = watch::channel(false);
        let server_links = links("s3cret-of-the-quorum");
        assert!(server_links.uses_sasl() && !server_links.uses_tls());
        let server = server_links.security(stopped.clone()).unwrap();
        let client = links("s3cret-of-the-quorum")
            .security(stopped.clone())
            .unwrap();
        let stranger = links("a guess").security(stopped).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();

        let accepting = async {
            let (tcp, peer) = listener.accept().await.unwrap();
            let mut link = server.accept(tcp, peer).await.unwrap();
            let mut request = [0u8; 4];
            link.read_exact(&mut request).await.unwrap();
            link.write_all(b"pong").await.unwrap();
            link.flush().await.unwrap();
            request
        };
        let connecting = async {
            let tcp = TcpStream::connect(&addr).await.unwrap();
            let mut link = client.connect(tcp, &addr).await.unwrap();
            link.write_all(b"ping").await.unwrap();
            link.flush().await.unwrap();
            let mut answer = [0u8; 4];
            link.read_exact(&mut answer).await.unwrap();
            answer
        };
        let (request, answer) = tokio::join!(accepting, connecting);
        assert_eq!((&request, &answer), (b"ping", b"pong"));

        let accepting = async {
            let (tcp, peer) = listener.accept().await.unwrap();
            server.accept(tcp, peer).await.map(|_| ())
        };
        let connecting = async {
            let tcp = TcpStream::connect(&addr).await.unwrap();
            stranger.connect(tcp, &addr).await.map(|_| ())
        };
        let (accepted, connected) = tokio::join!(accepting, connecting);
        assert_eq!(
            accepted.unwrap_err().kind(),
            io::ErrorKind::PermissionDenied
        );
        assert!(connected.is_err());
    }
}
