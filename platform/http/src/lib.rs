//! `fjord-http` is the broker's admin HTTP listener (default
//! `127.0.0.1:9644`): the JSON admin API under `/api/v1` (documented in
//! `docs/admin-api.md` and `docs/admin-api.openapi.yaml`), Prometheus
//! metrics on `/metrics` ([`metrics`], `docs/metrics.md`), and the health
//! checks `/health/live` and `/health/ready`, and the web console on `/`
//! (`docs/console.md`).
//!
//! It is for: operators and their scripts — reading topics, partitions,
//! groups and pipelines, and making the changes the Kafka admin APIs make,
//! through the same checks ([`fjord_broker::LocalBroker`] and
//! [`fjord_pipeline::runtime::catalog`] do the work).
//!
//! Who may call it: HTTPS with the broker's TLS code when
//! `admin.ssl.keystore.location` is set (`listener.rs`); HTTP Basic
//! against the SCRAM users, the console's session cookie or a client
//! certificate (`auth.rs`, `session.rs`), required once the broker is
//! secured (`admin.api.require.auth`); the broker's ACLs on every route
//! (`api/authorize.rs`). Before all of that it refuses what a browser on
//! another site could send it (a foreign `Host` or `Origin`, a form's
//! content type: `guard.rs`), so a web page cannot drive it.
//! `docs/security.md`, "The admin HTTP API", says it all.
//!
//! It is not for: clients' data (produce and fetch are the Kafka
//! listener's), or cluster membership.
//!
//! ```no_run
//! # async fn example(broker: fjord_broker::LocalBroker, host: std::sync::Arc<fjord_plugin_host::PluginHost>) -> Result<(), fjord_http::AdminError> {
//! let admin = fjord_http::AdminServer::start("127.0.0.1:9644", fjord_http::AdminState::new(broker, host)).await?;
//! admin.set_ready(true); // once the broker and the pipelines run
//! # admin.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod console;
mod error;
mod guard;
mod listener;
pub mod metrics;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fjord_broker::{LocalBroker, ServerTls};
use fjord_plugin_host::PluginHost;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::ApiError;

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot listen on {address} for the admin API: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// Every route of the admin API with what it needs: (method, path as
/// routed, rule: `open`, `TOPIC DESCRIBE`, …). For the route table test
/// and the documentation.
pub fn route_rules() -> impl Iterator<Item = (&'static str, &'static str, String)> {
    api::authorize::RULES
        .iter()
        .map(|(method, path, rule)| (*method, *path, rule.to_string()))
}

/// What the handlers work on. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub(crate) broker: LocalBroker,
    /// Resolves plugins when a pipeline is deployed over HTTP, so a bad
    /// manifest is refused before it is stored.
    pub(crate) host: Arc<PluginHost>,
    pub(crate) ready: Arc<AtomicBool>,
    /// What `/metrics` renders; `None` answers 404 there.
    pub(crate) metrics: Option<metrics::Metrics>,
    /// The controller quorum this node is a voter of; `None` (a single
    /// node) answers 404 at `/api/v1/cluster/quorum`.
    pub(crate) quorum: Option<Arc<dyn QuorumView>>,
    /// `admin.allowed.hosts`: the names `Host` may carry besides loopback
    /// and the address a request arrived at.
    pub(crate) allowed_hosts: Arc<guard::AllowedHosts>,
    /// Whether credentials are required, their checks and the console's
    /// sessions.
    pub(crate) auth: Arc<auth::Authentication>,
    /// HTTPS (`admin.ssl.*`), reloaded every this often; `None`: HTTP.
    pub(crate) tls: Option<(Arc<ServerTls>, std::time::Duration)>,
}

/// What the admin API shows of the controller quorum. Implemented by the
/// server over its controller, so this crate needs no Raft types.
pub trait QuorumView: Send + Sync + std::fmt::Debug {
    /// The quorum's state as the `/api/v1/cluster/quorum` JSON body.
    fn status(&self) -> serde_json::Value;
}

impl AdminState {
    pub fn new(broker: LocalBroker, host: Arc<PluginHost>) -> Self {
        AdminState {
            broker,
            host,
            ready: Arc::new(AtomicBool::new(false)),
            metrics: None,
            quorum: None,
            allowed_hosts: Arc::default(),
            auth: Arc::default(),
            tls: None,
        }
    }

    /// Requires credentials (`admin.api.require.auth`, see
    /// [`fjord_broker::BrokerConfig::admin_requires_auth`]): requests
    /// without them are refused with 401, but for `/health/*` and the
    /// console's files and login.
    pub fn with_authentication(mut self, required: bool) -> Self {
        self.auth = Arc::new(auth::Authentication {
            required,
            ..Default::default()
        });
        self
    }

    /// Serves HTTPS with `tls` ([`fjord_broker::admin_tls`]), checking its
    /// files for changes every `reload_every` (`ssl.reload.interval.ms`).
    pub fn with_tls(mut self, tls: Arc<ServerTls>, reload_every: std::time::Duration) -> Self {
        self.tls = Some((tls, reload_every));
        self
    }

    /// Answers requests whose `Host` is one of `names` (host names or
    /// IPs, any port; `*` for any), besides the loopback names and the
    /// address a request arrived at, which are always allowed.
    pub fn with_allowed_hosts(mut self, names: &[String]) -> Self {
        self.allowed_hosts = Arc::new(guard::AllowedHosts::new(names));
        self
    }

    /// Shows `quorum` at `/api/v1/cluster/quorum`.
    pub fn with_quorum(mut self, quorum: Arc<dyn QuorumView>) -> Self {
        self.quorum = Some(quorum);
        self
    }

    /// Serves `/metrics` from `metrics` (installed before the broker
    /// started, see [`metrics::Metrics::install`]).
    pub fn with_metrics(mut self, metrics: metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// A running admin listener.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// Binds `address` (`host:port`; port 0 picks one) and serves until
    /// [`AdminServer::shutdown`].
    pub async fn start(address: &str, state: AdminState) -> Result<AdminServer, AdminError> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| AdminError::Bind {
                address: address.to_owned(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| AdminError::Bind {
            address: address.to_owned(),
            source,
        })?;
        let ready = Arc::clone(&state.ready);
        let (stop, mut stopped) = watch::channel(false);
        let tls = state.tls.clone();
        if let Some((tls, every)) = &tls {
            Arc::clone(tls).watch(*every, stopped.clone());
        }
        let listener = listener::AdminListener::new(listener, local_addr, tls.map(|(t, _)| t));
        let scheme = if state.tls.is_some() { "https" } else { "http" };
        let authentication = state.auth.required;
        let app = api::router(state);
        let task = tokio::spawn(async move {
            // The arrival address is one of the names `Host` may carry; the
            // peer and its certificate say who sends.
            let app = app.into_make_service_with_connect_info::<listener::Arrival>();
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "admin listener failed");
            }
        });
        tracing::info!(address = %local_addr, scheme, authentication, "admin API listening");
        Ok(AdminServer {
            local_addr,
            ready,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What `/health/ready` answers: true once the broker accepts Kafka
    /// connections and the pipeline runtime runs, false again while the
    /// server shuts down.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Stops accepting, finishes the requests in flight, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
