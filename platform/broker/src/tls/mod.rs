//! TLS on the Kafka listeners (SSL and SASL_SSL), with rustls.
//!
//! It is for: reading a listener's `ssl.*` settings (Kafka's
//! `listener.name.<name>.` prefix over the plain keys), loading its PEM
//! keystore and truststore into a rustls server config, reloading them
//! when their files change, and turning an accepted socket into a TLS
//! stream (with a handshake timeout) and the client certificate into a
//! principal (`principal`). It is not for what the connection then does
//! (`connection`), nor for SASL (`sasl`).
//!
//! Reloading: a task per TLS listener checks the files' modification time
//! and size every `ssl.reload.interval.ms`; a change is loaded whole, and
//! new connections get it from then on, while open ones keep the
//! certificate they were made with. A file that does not load (half
//! written, wrong key) leaves the old certificate in place and is logged,
//! once per change.

mod admin;
pub(crate) mod client;
pub(crate) mod controller;
pub(crate) mod controller_login;
pub(crate) mod principal;

pub use admin::admin_tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;

use crate::config::{BrokerConfig, LISTENER_PREFIX};
use crate::error::BrokerError;
use crate::listeners::{ListenerSpec, Listeners};
use crate::log_limit::LogLimit;
use principal::MappingRules;

/// How long a client has to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings a listener may override with `listener.name.<name>.`.
const PER_LISTENER: [&str; 6] = [
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
];

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// No client certificate asked for.
    None,
    /// Asked for; a client without one is anonymous.
    Requested,
    /// A client without a certificate the truststore vouches for fails the
    /// handshake.
    Required,
}

/// One TLS listener's settings.
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub keystore: PathBuf,
    pub truststore: Option<PathBuf>,
    pub client_auth: ClientAuth,
    pub rules: MappingRules,
}

impl TlsSettings {
    /// The TLS settings of `listener` (`None` for a listener without TLS):
    /// each `listener.name.<name>.<key>`, else `<key>`.
    pub(crate) fn for_listener(
        config: &BrokerConfig,
        listener: &ListenerSpec,
    ) -> Result<Option<TlsSettings>, BrokerError> {
        if !listener.protocol.uses_tls() {
            return Ok(None);
        }
        let prefix = format!("{LISTENER_PREFIX}{}.", listener.name.to_ascii_lowercase());
        let setting = |key: &str, plain: Option<String>| -> (String, Option<String>) {
            let scoped = format!("{prefix}{key}");
            match config.listener_overrides.get(&scoped) {
                Some(value) => (scoped, Some(value.clone())),
                None => (key.to_owned(), plain),
            }
        };
        let bad = |key: &str, why: String| {
            BrokerError::Config(format!("{key}: {why} (listener {})", listener.name))
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        for (key, plain) in [
            ("ssl.keystore.type", config.ssl_keystore_type.clone()),
            ("ssl.truststore.type", config.ssl_truststore_type.clone()),
        ] {
            if let (key, Some(kind)) = setting(key, plain)
                && !kind.eq_ignore_ascii_case("PEM")
            {
                return Err(bad(
                    &key,
                    format!("{kind} is not supported; only PEM files are read"),
                ));
            }
        }
        let (_, keystore) = setting("ssl.keystore.location", path(&config.ssl_keystore_location));
        let Some(keystore) = keystore.filter(|k| !k.is_empty()) else {
            return Err(bad(
                "ssl.keystore.location",
                format!(
                    "needed for a {} listener (or {prefix}ssl.keystore.location)",
                    listener.protocol.name()
                ),
            ));
        };
        let (_, truststore) = setting(
            "ssl.truststore.location",
            path(&config.ssl_truststore_location),
        );
        let truststore = truststore.filter(|t| !t.is_empty()).map(PathBuf::from);
        let (key, auth) = setting("ssl.client.auth", config.ssl_client_auth.clone());
        let client_auth = match auth.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("none") => ClientAuth::None,
            Some("requested") => ClientAuth::Requested,
            Some("required") => ClientAuth::Required,
            Some(other) => {
                return Err(bad(
                    &key,
                    format!("{other:?} is not required, requested or none"),
                ));
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(bad(
                &key,
                "client certificates are checked against ssl.truststore.location, which is not set"
                    .to_owned(),
            ));
        }
        let (key, rules) = setting(
            "ssl.principal.mapping.rules",
            config.ssl_principal_mapping_rules.clone(),
        );
        let rules = match rules {
            Some(text) => MappingRules::parse(&text).map_err(|why| bad(&key, why))?,
            None => MappingRules::default(),
        };
        Ok(Some(TlsSettings {
            keystore: PathBuf::from(keystore),
            truststore,
            client_auth,
            rules,
        }))
    }
}

/// Refuses `listener.name.*` keys that name no listener or no setting a
/// listener can have.
pub(crate) fn check_overrides(
    config: &BrokerConfig,
    listeners: &Listeners,
) -> Result<(), BrokerError> {
    for (key, value) in &config.listener_overrides {
        let rest = &key[LISTENER_PREFIX.len()..];
        let known = listeners
            .specs
            .iter()
            .chain(&listeners.controller)
            .find_map(|spec| {
                let name = spec.name.to_ascii_lowercase();
                rest.strip_prefix(&name)?.strip_prefix('.')
            });
        let controller_login = listeners.controller.as_ref().is_some_and(|c| {
            rest.strip_prefix(&c.name.to_ascii_lowercase())
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|setting| {
                    ["scram-sha-512", "scram-sha-256"]
                        .iter()
                        .any(|m| setting == format!("{m}.sasl.jaas.config"))
                })
        });
        match known {
            // The quorum links' login (`controller_login` reads it).
            Some(_) if controller_login => {}
            None => {
                return Err(BrokerError::Config(format!(
                    "{key}: no listener of that name (listener names are written lower-case here)"
                )));
            }
            // Kafka users' per-listener OAUTHBEARER lines, where they
            // say what the `sasl.oauthbearer.*` settings do here.
            Some(setting)
                if crate::oauth::check_listener_setting(setting, value)
                    .map_err(|why| BrokerError::Config(format!("{key}: {why}")))? => {}
            Some(setting)
                if !PER_LISTENER.contains(&setting)
                    && !crate::connection_limits::PER_LISTENER.contains(&setting) =>
            {
                return Err(BrokerError::Config(format!(
                    "{key}: {setting} is not a per-listener setting; these are: {}, {}",
                    PER_LISTENER.join(", "),
                    crate::connection_limits::PER_LISTENER.join(", ")
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Why a keystore or truststore did not load.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn file_error(path: &Path, why: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// What a listener's files make: the server config for its clients, and
/// the client config (the truststore's CAs, the keystore as client
/// certificate) with which this broker connects to its peers' listeners of
/// the same name, when a truststore is set.
#[derive(Debug, Clone)]
struct Loaded {
    server: Arc<ServerConfig>,
    client: Option<Arc<rustls::ClientConfig>>,
}

/// The rustls configs `settings` describe, from the files as they are now.
fn load(settings: &TlsSettings) -> Result<Loaded, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.keystore)
        .map_err(|e| file_error(&settings.keystore, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&settings.keystore, e))?;
    if chain.is_empty() {
        return Err(file_error(&settings.keystore, "no CERTIFICATE in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&settings.keystore).map_err(|e| {
        file_error(
            &settings.keystore,
            format!("no unencrypted private key: {e}"),
        )
    })?;
    let roots = match &settings.truststore {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))? {
                let cert = cert.map_err(|e| file_error(path, e))?;
                roots.add(cert).map_err(|e| file_error(path, e))?;
            }
            if roots.is_empty() {
                return Err(file_error(path, "no CERTIFICATE in the file"));
            }
            Some(Arc::new(roots))
        }
        None => None,
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match (&roots, settings.client_auth) {
        (Some(roots), ClientAuth::Requested | ClientAuth::Required) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::clone(roots),
                Arc::clone(&provider),
            );
            let verifier = if settings.client_auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
        _ => builder.with_no_client_auth(),
    };
    let client = match roots {
        Some(roots) => Some(client::config(
            provider,
            roots,
            chain.clone(),
            key.clone_key(),
        )?),
        None => None,
    };
    let server = builder.with_single_cert(chain, key)?;
    Ok(Loaded {
        server: Arc::new(server),
        client,
    })
}

/// What a file looked like when last loaded: a change of either is a new
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(SystemTime, u64)>>);

fn stamp(settings: &TlsSettings) -> Stamp {
    let files = std::iter::once(&settings.keystore).chain(settings.truststore.as_ref());
    Stamp(
        files
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.modified().ok()?, meta.len()))
            })
            .collect(),
    )
}

/// One TLS listener's current server config (and client config for the
/// broker's connections to its peers' listener of the same name),
/// reloaded when its files change. Public for the admin HTTP listener
/// ([`admin_tls`]).
#[derive(Debug)]
pub struct ServerTls {
    listener: String,
    settings: TlsSettings,
    current: RwLock<Loaded>,
}

impl ServerTls {
    /// Loads the listener's files; an error stops the broker's start.
    pub(crate) fn load(listener: &str, settings: TlsSettings) -> Result<ServerTls, BrokerError> {
        let config = load(&settings)
            .map_err(|e| BrokerError::Config(format!("listener {listener}: TLS: {e}")))?;
        Ok(ServerTls {
            listener: listener.to_owned(),
            settings,
            current: RwLock::new(config),
        })
    }

    /// The listener's name.
    pub(crate) fn listener(&self) -> &str {
        &self.listener
    }

    /// Whether a truststore is set, so that this broker can verify peers
    /// and connect to them with [`client::PeerConnector`].
    pub(crate) fn verifies_peers(&self) -> bool {
        self.settings.truststore.is_some()
    }

    /// The listener's settings.
    pub(crate) fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The client config for connecting to a peer's listener of this name,
    /// as loaded last (`None` without a truststore).
    pub(crate) fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.current.read().client.clone()
    }

    /// Checks the files every `every` until `shutdown`, loading them again
    /// when they change.
    pub fn watch(self: Arc<Self>, every: Duration, mut shutdown: watch::Receiver<bool>) {
        tokio::spawn(async move {
            let mut seen = stamp(&self.settings);
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = crate::shutdown::stopped(&mut shutdown) => return,
                }
                let now = stamp(&self.settings);
                if now == seen {
                    continue;
                }
                seen = now;
                let settings = self.settings.clone();
                let loaded = tokio::task::spawn_blocking(move || load(&settings)).await;
                match loaded {
                    Ok(Ok(loaded)) => {
                        *self.current.write() = loaded;
                        tracing::info!(
                            listener = %self.listener,
                            keystore = %self.settings.keystore.display(),
                            "TLS certificate reloaded; new connections use it"
                        );
                    }
                    Ok(Err(e)) => tracing::warn!(
                        listener = %self.listener,
                        error = %e,
                        "TLS files changed but do not load; keeping the previous certificate"
                    ),
                    Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
                }
            }
        });
    }

    /// Runs the TLS handshake on an accepted socket, within
    /// [`HANDSHAKE_TIMEOUT`]. A failure is logged (rate-limited: a port
    /// scanner or a plaintext client in a loop must not flood the log).
    pub async fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.current.read().server));
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                handshake_failed(&self.listener, peer, &e.to_string());
                return None;
            }
            Err(_) => {
                handshake_failed(&self.listener, peer, "no handshake within 10 s");
                return None;
            }
        };
        let user = match stream.get_ref().1.peer_certificates() {
            Some([leaf, ..]) => match principal::subject(leaf)
                .and_then(|subject| self.settings.rules.apply(&subject))
            {
                Ok(user) => Some(user),
                Err(e) => {
                    handshake_failed(&self.listener, peer, &e.to_string());
                    return None;
                }
            },
            _ => None,
        };
        Some(Accepted { stream, user })
    }
}

/// A connection past its TLS handshake.
#[derive(Debug)]
pub struct Accepted {
    pub stream: TlsStream<TcpStream>,
    /// The user its client certificate names (after the mapping rules);
    /// `None` without one.
    pub user: Option<String>,
}

/// Logs a failed handshake: one line per client address per interval (a
/// port scanner or a plaintext client in a loop must not flood the log).
fn handshake_failed(listener: &str, peer: SocketAddr, why: &str) {
    static FAILED: LogLimit = LogLimit::new();
    if let Some(suppressed) = FAILED.admit(peer.ip()) {
        tracing::warn!(
            %listener,
            %peer,
            reason = why,
            suppressed,
            "TLS handshake failed; connection closed (a plaintext client on a TLS port, or a bad certificate; suppressed: failures from this address since the last such line)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };

    /// What the server checks of the listener settings before binding.
    fn check(config: &BrokerConfig) -> Result<Listeners, BrokerError> {
        let listeners = Listeners::from_config(config)?;
        check_overrides(config, &listeners)?;
        for spec in &listeners.specs {
            TlsSettings::for_listener(config, spec)?;
        }
        Ok(listeners)
    }

    #[test]
    fn per_listener_settings_use_kafkas_prefix() {
        let yaml = "listeners: PLAINTEXT://:9092,SSL://:9093,MTLS://:9094\n\
                    listener.security.protocol.map: PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL\n\
                    ssl.keystore.location: /k.pem\n\
                    listener.name.mtls.ssl.client.auth: required\n\
                    listener.name.mtls.ssl.truststore.location: /ca.pem\n\
                    listener.name.mtls.ssl.principal.mapping.rules: RULE:^CN=(.*?),.*$/$1/L\n";
        let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap();
        let listeners = check(&config).unwrap();
        let tls: Vec<_> = listeners
            .specs
            .iter()
            .map(|spec| TlsSettings::for_listener(&config, spec).unwrap())
            .collect();
        assert!(tls[0].is_none());
        let ssl = tls[1].as_ref().unwrap();
        assert_eq!(ssl.keystore, PathBuf::from("/k.pem"));
        assert_eq!(ssl.client_auth, ClientAuth::None);
        let mtls = tls[2].as_ref().unwrap();
        assert_eq!(mtls.keystore, PathBuf::from("/k.pem"));
        assert_eq!(mtls.client_auth, ClientAuth::Required);
        assert_eq!(mtls.truststore, Some(PathBuf::from("/ca.pem")));
        assert_eq!(mtls.rules.apply("CN=Writer,O=x").unwrap(), "writer");

        let refused = |extra: &str| -> String {
            let yaml = format!("listeners: PLAINTEXT://:1,SSL://:2\n{extra}");
            match crate::yaml::from_str::<BrokerConfig>(&yaml) {
                Ok(config) => check(&config)
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
                Err(e) => e.to_string(),
            }
        };
        for (extra, says) in [
            ("", "ssl.keystore.location: needed for a SSL listener"),
            (
                "ssl.keystore.location: k\nlistener.name.other.ssl.client.auth: required\n",
                "listener.name.other.ssl.client.auth: no listener of that name",
            ),
            (
                "ssl.keystore.location: k\nlistener.name.ssl.ssl.cipher.suites: x\n",
                "listener.name.ssl.ssl.cipher.suites: ssl.cipher.suites is not a per-listener setting",
            ),
            (
                "ssl.keystore.location: k\nssl.client.auth: maybe\n",
                "ssl.client.auth: \"maybe\" is not required, requested or none (listener SSL)",
            ),
            (
                "ssl.keystore.location: k\nlistener.name.ssl.ssl.client.auth: required\n",
                "listener.name.ssl.ssl.client.auth: client certificates are checked against ssl.truststore.location",
            ),
            (
                "ssl.keystore.location: k\nssl.keystore.type: JKS\n",
                "ssl.keystore.type: JKS is not supported; only PEM files are read",
            ),
            (
                "ssl.keystore.location: k\nssl.principal.mapping.rules: RULE:x\n",
                "ssl.principal.mapping.rules: RULE:x: no / after the pattern",
            ),
            ("no.such.key: 1\n", "unknown field `no.such.key`"),
        ] {
            let error = refused(extra);
            assert!(error.contains(says), "{extra}: {error}");
        }
    }

    struct Ca {
        cert: rcgen::Certificate,
        key: KeyPair,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "ca");
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn signed(
        ca: &Ca,
        names: Vec<String>,
        cn: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> (String, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        // Written first to last: the subject reads `CN=…,O=acme`.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "acme");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        (
            params.signed_by(&key, &ca.cert, &ca.key).unwrap().pem(),
            key,
        )
    }

    /// `requested` lets a client without a certificate in, anonymous; a
    /// keystore whose key is not the certificate's does not load.
    #[tokio::test]
    async fn requested_client_auth_and_mismatched_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let (server_pem, server_key) = signed(
            &ca,
            vec!["localhost".into()],
            "broker",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, ca.cert.pem()).unwrap();
        let settings = |keystore: &Path| TlsSettings {
            keystore: keystore.to_owned(),
            truststore: Some(truststore.clone()),
            client_auth: ClientAuth::Requested,
            rules: MappingRules::default(),
        };
        let mismatched = dir.path().join("mismatched.pem");
        let other_key = KeyPair::generate().unwrap();
        std::fs::write(
            &mismatched,
            format!("{server_pem}{}", other_key.serialize_pem()),
        )
        .unwrap();
        assert!(ServerTls::load("SSL", settings(&mismatched)).is_err());

        let keystore = dir.path().join("broker.pem");
        std::fs::write(
            &keystore,
            format!("{server_pem}{}", server_key.serialize_pem()),
        )
        .unwrap();
        let server = ServerTls::load("SSL", settings(&keystore)).unwrap();
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let connecting = tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await
        });
        let (tcp, peer) = socket.accept().await.unwrap();
        let accepted = server.accept(tcp, peer).await.expect("handshake");
        assert_eq!(accepted.user, None);
        connecting.await.unwrap().unwrap();
    }

    /// Over a real socket, a client certificate's subject becomes the user
    /// the mapping rules make of it; without the rules, the whole subject.
    #[tokio::test]
    async fn the_client_certificate_names_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca();
        let (server_pem, server_key) = signed(
            &ca,
            vec!["localhost".into()],
            "broker",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let keystore = dir.path().join("broker.pem");
        std::fs::write(
            &keystore,
            format!("{server_pem}{}", server_key.serialize_pem()),
        )
        .unwrap();
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, ca.cert.pem()).unwrap();
        let (client_pem, client_key) = signed(
            &ca,
            Vec::new(),
            "Writer",
            ExtendedKeyUsagePurpose::ClientAuth,
        );

        for (rules, user) in [
            (Some("RULE:^CN=(.*?),O=acme$/$1@acme/L"), "writer@acme"),
            (None, "CN=Writer,O=acme"),
        ] {
            let settings = TlsSettings {
                keystore: keystore.clone(),
                truststore: Some(truststore.clone()),
                client_auth: ClientAuth::Required,
                rules: rules
                    .map_or_else(MappingRules::default, |r| MappingRules::parse(r).unwrap()),
            };
            let server = ServerTls::load("SSL", settings).unwrap();
            let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();

            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.der().clone()).unwrap();
            let chain = vec![CertificateDer::from_pem_slice(client_pem.as_bytes()).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(client_key.serialize_pem().as_bytes()).unwrap();
            let client = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
            let connecting = tokio::spawn(async move {
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                connector.connect(name, tcp).await
            });
            let (tcp, peer) = socket.accept().await.unwrap();
            let accepted = server.accept(tcp, peer).await.expect("handshake");
            assert_eq!(accepted.user.as_deref(), Some(user));
            connecting.await.unwrap().unwrap();
        }
    }
}
