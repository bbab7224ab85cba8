//! Starting and stopping the broker: the listeners, the accept loops, the
//! background log maintenance, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::accept::{Acceptor, Incoming, accept_loop};
use crate::auth::Principal;
use crate::broker_state::{Advertised, BrokerState};
use crate::client_session::Session;
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::connection;
use crate::connection_limits::ConnectionLimits;
use crate::error::BrokerError;
use crate::group::GroupCoordinator;
use crate::listeners::{BoundListener, ListenerSpec, Listeners, SecurityProtocol};
use crate::replication::Replicas;
use crate::shutdown::stopped;
use crate::tls::client::PeerConnector;
use crate::tls::{ServerTls, TlsSettings};
use crate::topic_registry::TopicRegistry;

/// How long shutdown waits for open connections to finish their request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running broker. Dropping it stops the server too, but only
/// [`Broker::shutdown`] waits for the logs to be flushed and closed.
#[derive(Debug)]
pub struct Broker {
    local_addr: SocketAddr,
    /// Every listener's name and bound address, in `listeners` order.
    listener_addrs: Vec<(String, SocketAddr)>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), BrokerError>>,
    state: Arc<BrokerState>,
}

impl Broker {
    /// Opens the data directory (reopening and recovering every topic's
    /// logs), binds the listener and starts serving. Returns once clients
    /// can connect.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        Self::start_with(config, None).await
    }

    /// Starts a broker of a cluster: it registers with the controller
    /// quorum behind `link`, takes its topics and partition roles from the
    /// quorum's metadata, and replicates its partitions with the other
    /// brokers.
    pub async fn start_in_cluster(
        config: BrokerConfig,
        link: crate::quorum_link::ClusterLink,
    ) -> Result<Broker, BrokerError> {
        Self::start_with(config, Some(Arc::new(link))).await
    }

    async fn start_with(
        config: BrokerConfig,
        cluster: Option<Arc<crate::quorum_link::ClusterLink>>,
    ) -> Result<Broker, BrokerError> {
        config.validate()?;
        let listeners = Listeners::from_config(&config)?;
        crate::tls::check_overrides(&config, &listeners)?;
        // Every TLS listener's files load before anything is bound.
        let mut tls = Vec::new();
        for spec in &listeners.specs {
            tls.push(match TlsSettings::for_listener(&config, spec)? {
                Some(settings) => Some(Arc::new(ServerTls::load(&spec.name, settings)?)),
                None => None,
            });
        }
        let inter_tls = tls[listeners.inter_broker].clone();
        if let Some(tls) = &inter_tls
            && cluster.is_some()
            && !tls.verifies_peers()
        {
            return Err(BrokerError::Config(format!(
                "inter.broker.listener.name: {name} is a TLS listener: brokers verify each other's certificates with ssl.truststore.location (or listener.name.{lower}.ssl.truststore.location), which is not set",
                name = tls.listener(),
                lower = tls.listener().to_ascii_lowercase(),
            )));
        }
        // One process, one descriptor limit: one cache of segment files.
        let open_files = config.open_files_capacity();
        fjord_log::FileCache::global().set_capacity(open_files);
        tracing::info!(
            log_open_files_max = open_files,
            "segment files kept open at most"
        );
        let defaults = config.default_log_config();
        let (data_dir, cluster_id) = (config.data_dir.clone(), config.cluster_id.clone());
        let limits = Arc::new(ConnectionLimits::from_config(&config, &listeners).await?);
        let registry = tokio::task::spawn_blocking(move || {
            TopicRegistry::open(data_dir, defaults, cluster_id)
        })
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))??;
        let mut bound = Vec::new();
        for (spec, tls) in listeners.specs.iter().zip(tls) {
            let (socket, listener) = bind(spec).await?;
            bound.push((socket, Arc::new(listener), tls));
        }
        let listener_addrs: Vec<(String, SocketAddr)> = bound
            .iter()
            .map(|(socket, listener, _)| {
                let addr = socket.local_addr().map_err(|source| BrokerError::Listen {
                    addr: listener.name.clone(),
                    source,
                })?;
                Ok((listener.name.clone(), addr))
            })
            .collect::<Result<_, BrokerError>>()?;
        let local_addr = listener_addrs[0].1;
        let inter = Arc::clone(&bound[listeners.inter_broker].1);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let groups = GroupCoordinator::new(crate::broker_state::group_settings(&config));
        // Committed offsets come back from `__consumer_offsets` before the
        // first client can ask for them.
        let (registry, groups) = tokio::task::spawn_blocking(move || {
            let loaded = crate::group::offsets_topic::load(&registry, &groups);
            if loaded > 0 {
                tracing::info!(records = loaded, "committed offsets loaded");
            }
            (registry, groups)
        })
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))?;
        let stores = crate::metadata::LocalStores::open(&config.data_dir)?;
        if cluster.is_none() {
            // A single node's dynamic broker and group configs (a
            // cluster's come with the quorum's metadata).
            crate::metadata::load_broker_configs(&registry, &config.data_dir, config.node_id)?;
            crate::metadata::load_group_configs(&groups, &config.data_dir)?;
        }
        let (config, registry, groups) = (Arc::new(config), Arc::new(registry), Arc::new(groups));
        {
            // The dynamic broker configs' connection limits, now and on
            // every change (resolving host names of overrides blocks).
            let (registry, limits, base) = (
                Arc::clone(&registry),
                Arc::clone(&limits),
                Arc::clone(&config),
            );
            tokio::task::spawn_blocking(move || {
                registry.on_dynamic(Box::new(move |dynamic| {
                    limits.reconfigure(&dynamic.broker_config(&base))
                }))
            })
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))?;
        }
        let token_validator = {
            let config = Arc::clone(&config);
            tokio::task::spawn_blocking(move || crate::oauth::TokenValidator::from_config(&config))
                .await
                .map_err(|e| BrokerError::Task(e.to_string()))??
                .map(Arc::new)
        };
        let state = Arc::new(
            BrokerState::new(
                Arc::clone(&config),
                Arc::clone(&registry),
                stores,
                Arc::clone(&groups),
                Advertised {
                    host: inter.advertised_host.clone(),
                    port: inter.advertised_port,
                    listener: inter.name.clone(),
                    tls: inter_tls.clone(),
                },
                shutdown_rx.clone(),
                cluster.clone(),
            )
            .with_token_validator(token_validator),
        );
        for ((name, addr), (_, listener, _)) in listener_addrs.iter().zip(&bound) {
            tracing::info!(
                listener = %name,
                protocol = listener.protocol.name(),
                local_addr = %addr,
                advertised = %format!("{}:{}", listener.advertised_host, listener.advertised_port),
                node_id = state.config().node_id,
                data_dir = %state.config().data_dir.display(),
                "broker listening"
            );
        }
        let reload_every = Duration::from_millis(config.ssl_reload_interval_ms.max(10));
        for (_, _, tls) in &bound {
            if let Some(tls) = tls {
                Arc::clone(tls).watch(reload_every, shutdown_rx.clone());
            }
        }
        // Before the cluster's followers can open partitions: each log
        // opened from now on gets the cleaner's wake-up on a roll.
        let log_cleaner = crate::log_cleaner::start(
            Arc::clone(state.registry()),
            crate::log_cleaner::Settings::of(
                &state.registry().dynamic().broker_config(state.config()),
            ),
        );
        {
            // The dynamic broker configs' cleaner settings, on every change.
            let (reconfigure, base) = (log_cleaner.reconfigurer(), Arc::clone(state.config()));
            state.registry().on_dynamic(Box::new(move |dynamic| {
                reconfigure(crate::log_cleaner::Settings::of(
                    &dynamic.broker_config(&base),
                ))
            }));
        }
        if let Some(link) = &cluster {
            // Users of a single node that formed or joined a cluster.
            tokio::spawn(crate::users::carry_local_users(
                state.metadata(),
                Arc::clone(state.local_credentials()),
                Arc::clone(link),
                shutdown_rx.clone(),
            ));
        }
        if let Some(link) = cluster {
            let all: Vec<BoundListener> = bound.iter().map(|(_, l, _)| (**l).clone()).collect();
            crate::quorum_link::start(
                &link,
                &all,
                &inter,
                config.broker_session_timeout_ms,
                shutdown_rx.clone(),
            );
            crate::replication::start(Replicas {
                registry,
                groups,
                link,
                config,
                connector: PeerConnector::new(&inter.name, inter_tls),
                shutdown: shutdown_rx,
            });
        }
        let admin = state.config();
        if let (Some(user), Some(password)) = (&admin.sasl_admin_user, &admin.sasl_admin_password) {
            let password = password.expose().to_owned();
            if state.cluster().is_some() {
                // The quorum may not take changes yet: retried until it does.
                tokio::spawn(crate::users::ensure_admin(
                    state.metadata(),
                    user.clone(),
                    password,
                    state.shutdown(),
                ));
            } else {
                // Made before the first client can try to log in.
                let made = crate::users::create_missing(&state.metadata(), user, &password)
                    .await
                    .map_err(|e| {
                        BrokerError::Config(format!("creating sasl.admin.user: {}", e.message))
                    })?;
                if made > 0 {
                    tracing::info!(user = ?user, "admin user created");
                }
            }
        }
        let task = tokio::spawn(serve(bound, limits, Arc::clone(&state), log_cleaner));
        Ok(Broker {
            local_addr,
            listener_addrs,
            shutdown: shutdown_tx,
            task,
            state,
        })
    }

    /// The address the first listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the listener `name` (case-insensitive) is bound to.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listener_addrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, addr)| *addr)
    }

    /// In-process access to this broker's topics and group offsets, for
    /// work that runs next to the data (pipeline tasks).
    pub fn local(&self) -> crate::local::LocalBroker {
        crate::local::LocalBroker {
            state: Arc::clone(&self.state),
        }
    }

    /// Stops accepting, lets connections finish the request they are on
    /// (up to a few seconds), then flushes and checkpoints every log.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        self.shutdown.send_replace(true);
        self.task
            .await
            .map_err(|e| BrokerError::Task(e.to_string()))?
    }
}

/// Runs a broker until `shutdown` completes, then stops it gracefully.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BrokerError> {
    let broker = Broker::start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    broker.shutdown().await
}

/// Binds `spec`'s socket, and works out what it advertises: the
/// configured host and port, else the bound ones (`localhost` for a
/// wildcard address, with a warning).
async fn bind(spec: &ListenerSpec) -> Result<(TcpListener, BoundListener), BrokerError> {
    let listen_error = |source| BrokerError::Listen {
        addr: format!("{} ({})", spec.bind, spec.name),
        source,
    };
    let socket = TcpListener::bind(&spec.bind).await.map_err(listen_error)?;
    let local_addr = socket.local_addr().map_err(listen_error)?;
    let advertised_host = spec.advertised_host.clone().unwrap_or_else(|| {
        if local_addr.ip().is_unspecified() {
            tracing::warn!(
                listener = %spec.name,
                "listening on a wildcard address; advertising localhost (set advertised.listeners)"
            );
            "localhost".to_string()
        } else {
            local_addr.ip().to_string()
        }
    });
    let advertised_port = i32::from(spec.advertised_port.unwrap_or(local_addr.port()));
    Ok((
        socket,
        BoundListener {
            name: spec.name.clone(),
            protocol: spec.protocol,
            advertised_host,
            advertised_port,
        },
    ))
}

/// One connection: the TLS handshake first on a TLS listener (its client
/// certificate names the principal on an SSL listener), then requests. Its
/// place in the connection counts is given back when it ends.
async fn open_connection(accepted: Incoming, state: Arc<BrokerState>) {
    let Incoming {
        stream,
        peer,
        listener,
        tls,
        slot: _slot,
    } = accepted;
    let Some(tls) = tls else {
        let session = Session::new(peer, listener, Principal::Anonymous);
        return connection::serve(stream, state, session).await;
    };
    let Some(accepted) = tls.accept(stream, peer).await else {
        return;
    };
    // On SASL_SSL the SASL exchange names the principal, as in Kafka.
    let principal = match accepted.user {
        Some(user) if listener.protocol == SecurityProtocol::Ssl => Principal::User(user),
        _ => Principal::Anonymous,
    };
    tracing::debug!(%peer, %principal, "TLS connection");
    let session = Session::new(peer, listener, principal);
    connection::serve(accepted.stream, state, session).await
}

async fn serve(
    listeners: Vec<(TcpListener, Arc<BoundListener>, Option<Arc<ServerTls>>)>,
    limits: Arc<ConnectionLimits>,
    state: Arc<BrokerState>,
    log_cleaner: crate::log_cleaner::LogCleaner,
) -> Result<(), BrokerError> {
    let maintenance = tokio::spawn(maintain(Arc::clone(&state)));
    let group_timers = tokio::spawn(tick_groups(Arc::clone(&state)));
    let txn_timers = tokio::spawn(tick_transactions(Arc::clone(&state)));
    let (incoming_tx, mut incoming) = tokio::sync::mpsc::channel(64);
    let mut accepting = JoinSet::new();
    for (index, (socket, listener, tls)) in listeners.into_iter().enumerate() {
        let acceptor = Acceptor {
            socket,
            listener,
            index,
            tls,
            limits: Arc::clone(&limits),
            state: Arc::clone(&state),
        };
        accepting.spawn(accept_loop(acceptor, incoming_tx.clone()));
    }
    drop(incoming_tx);
    let mut connections = JoinSet::new();
    let mut shutdown = state.shutdown();
    loop {
        tokio::select! {
            Some(accepted) = incoming.recv() => {
                connections.spawn(open_connection(accepted, Arc::clone(&state)));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    // Stops accepting: the sockets close with their loops.
    accepting.shutdown().await;
    drop(incoming);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections that did not finish in time"
        );
        connections.shutdown().await;
    }
    maintenance.abort();
    group_timers.abort();
    txn_timers.abort();
    // Before the logs close: a clean in progress finishes first.
    tokio::task::spawn_blocking(move || log_cleaner.stop())
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))?;
    let registry = Arc::clone(state.registry());
    tokio::task::spawn_blocking(move || registry.close_all())
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))??;
    tracing::info!("broker stopped; logs flushed and checkpointed");
    Ok(())
}

/// Periodic log work: the `flush.ms` policy, retention, checkpoints.
async fn maintain(state: Arc<BrokerState>) {
    let flush_every = state.config().flush_check_interval();
    let retention_every = state.config().retention_check_interval();
    let checkpoint_every = state.config().checkpoint_interval();
    let mut ticker = tokio::time::interval(flush_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = tokio::time::Instant::now();
    let (mut last_retention, mut last_checkpoint) = (started, started);
    loop {
        ticker.tick().await;
        let now = tokio::time::Instant::now();
        let retention = now.duration_since(last_retention) >= retention_every;
        let checkpoint = now.duration_since(last_checkpoint) >= checkpoint_every;
        if retention {
            last_retention = now;
        }
        if checkpoint {
            last_checkpoint = now;
        }
        let registry = Arc::clone(state.registry());
        let work = tokio::task::spawn_blocking(move || {
            registry.maintain(now_ms(), retention, checkpoint);
        });
        if let Err(e) = work.await {
            tracing::error!(error = %e, "log maintenance task failed");
        }
    }
}

/// Drives the transaction coordinator's round (`crate::txn::timeouts`).
async fn tick_transactions(state: Arc<BrokerState>) {
    let every = std::time::Duration::from_millis(
        state
            .config()
            .transaction_abort_timed_out_transaction_cleanup_interval_ms,
    );
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        state.txns().tick(&state).await;
    }
}

/// Drives the group coordinator's timers: session expiry, rebalance
/// timeouts and delays, offset retention.
async fn tick_groups(state: Arc<BrokerState>) {
    let mut ticker = tokio::time::interval(crate::group::coordinator::TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        state.groups().tick(std::time::Instant::now(), now_ms());
        for (group, key, value) in state.groups().take_metadata_writes(now_ms()) {
            tracing::debug!(%group, tombstone = value.is_none(), "writing group metadata");
            let record = [(key, value)];
            if let Err(e) =
                crate::group::offsets_topic::append(&state.offsets_topic(), &group, &record).await
            {
                let code = crate::error::group_error_code(&e);
                tracing::warn!(%group, code, "group metadata not persisted");
            }
        }
    }
}
