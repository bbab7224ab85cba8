//! `fjord server`: run a broker.
//!
//! Settings come from, highest precedence first: command-line flags, then
//! `FJORD_*` environment variables, then the YAML config file (`--config`,
//! or `./fjord.yaml` when it exists), then the built-in defaults — an
//! embedded single node on 127.0.0.1:9092 with its data in `./fjord-data`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fjord_broker::{BrokerConfig, DurabilityConfig};

/// `fjord server` flags; each also reads the `FJORD_*` variable it names.
#[derive(clap::Args, Debug)]
pub struct ServerArgs {
    /// YAML config file (default: ./fjord.yaml when present).
    #[arg(short, long, env = "FJORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (`log.dir`).
    #[arg(long, env = "FJORD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Kafka listener, host:port (`listener`): one PLAINTEXT listener,
    /// in place of `listeners` from the config file.
    #[arg(long, env = "FJORD_LISTEN", conflicts_with = "listeners")]
    pub listen: Option<String>,
    /// Kafka listeners, `NAME://host:port,...` (`listeners`), e.g.
    /// `PLAINTEXT://127.0.0.1:9092,SSL://0.0.0.0:9093`; their TLS
    /// settings come from the config file.
    #[arg(long, env = "FJORD_LISTENERS")]
    pub listeners: Option<String>,
    /// What each listener advertises, `NAME://host:port,...`
    /// (`advertised.listeners`).
    #[arg(long, env = "FJORD_ADVERTISED_LISTENERS")]
    pub advertised_listeners: Option<String>,
    /// Host clients are told to connect to (`advertised.host`).
    #[arg(long, env = "FJORD_ADVERTISED_HOST", conflicts_with = "advertise")]
    pub advertised_host: Option<String>,
    /// Address clients and other brokers are told to connect to,
    /// host:port (`advertised.host` and `advertised.port`; default: the
    /// listener's).
    #[arg(long, env = "FJORD_ADVERTISE")]
    pub advertise: Option<String>,
    /// Admin HTTP API, metrics and web console, host:port, or `off`
    /// (`admin.listener`; default 127.0.0.1:9644).
    #[arg(long, env = "FJORD_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Names the admin API answers to in `Host`, comma-separated, besides
    /// loopback and the address a request arrives at
    /// (`admin.allowed.hosts`).
    #[arg(long, env = "FJORD_ADMIN_ALLOWED_HOSTS", value_delimiter = ',')]
    pub admin_allowed_hosts: Option<Vec<String>>,
    /// Broker id (`node.id`).
    #[arg(long, env = "FJORD_NODE_ID")]
    pub node_id: Option<i32>,
    /// Controller quorum voters, `1@host:port,2@host:port,3@host:port`
    /// (`controller.quorum.voters`): this node also runs its controller
    /// and registers with the quorum. Unset: a single node.
    #[arg(long, env = "FJORD_CONTROLLER_VOTERS")]
    pub controller_voters: Option<String>,
    /// Where this node's controller listens (`controller.listener`;
    /// default: its address in the voters).
    #[arg(long, env = "FJORD_CONTROLLER_LISTEN")]
    pub controller_listen: Option<String>,
    /// Partitions of auto-created topics (`num.partitions`).
    #[arg(long, env = "FJORD_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// `page-cache` (ack once written, Kafka's default) or `fsync` (ack once
    /// on disk; concurrent produces share one fsync).
    #[arg(long, env = "FJORD_DURABILITY", value_parser = ["page-cache", "fsync"])]
    pub durability: Option<String>,
    /// A user created at start if missing, with `--admin-password`, and a
    /// super user (`sasl.admin.user`). Also turns the admin API's login on
    /// unless `admin.api.require.auth: false`.
    #[arg(long, env = "FJORD_ADMIN_USER", requires = "admin_password")]
    pub admin_user: Option<String>,
    /// The admin user's password (`sasl.admin.password`); prefer the
    /// variable to the flag, which other local users can see.
    #[arg(
        long,
        env = "FJORD_ADMIN_PASSWORD",
        requires = "admin_user",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
    /// Pipeline manifests (files, or directories of `.yaml` files) to
    /// deploy when the server starts; a manifest already deployed unchanged
    /// is left running as it is.
    #[arg(long = "pipelines", env = "FJORD_PIPELINES", value_delimiter = ',')]
    pub pipelines: Vec<PathBuf>,
    /// What pipelines' plugins may reach on this host.
    #[command(flatten)]
    pub policy: crate::policy::PolicyArgs,
    /// Log format: `human` or `json`.
    #[arg(long, env = "FJORD_LOG_FORMAT", default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// Log filter, e.g. `info` or `fjord_broker=debug`.
    #[arg(long, env = "FJORD_LOG", default_value = "info")]
    pub log: String,
}

pub fn run(args: ServerArgs) -> Result<()> {
    init_logging(&args.log_format, &args.log)?;
    raise_open_files_limit();
    let mut config = load_config(&args)?;
    tracing::info!(
        listeners = %config
            .listeners
            .as_ref()
            .map_or_else(|| config.listener.clone(), |l| l.join(",")),
        data_dir = %config.data_dir.display(),
        "starting fjord server"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("fjord-broker")
        .build()
        .context("could not start the async runtime")?;
    let manifests = crate::pipeline::manifest_files(&args.pipelines)?;
    let quorum_plan = crate::quorum::QuorumPlan::from_config(&config)?;
    if let Some(plan) = &quorum_plan {
        // Every broker of a cluster reports the same cluster id (clients
        // warn, and refuse to mix, when ids differ).
        config.cluster_id.get_or_insert_with(|| plan.cluster_id());
    }
    let cache_dir = config.data_dir.join("plugin-cache");
    let policy = crate::policy::host_policy(&config)?;
    if config.pipeline_allowed_paths.is_none() {
        // The default allowed directory exists, so pipelines can use it.
        let dir = config.pipelines_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let admin_listener = match config.admin_listener.as_str() {
        "" | "off" => None,
        address => Some(address.to_owned()),
    };
    let admin_allowed_hosts = config.admin_allowed_hosts.clone();
    let admin_requires_auth = config.admin_requires_auth();
    let admin_tls = match &admin_listener {
        Some(_) => fjord_broker::admin_tls(&config).context("admin listener TLS")?,
        None => None,
    };
    let tls_reload = std::time::Duration::from_millis(config.ssl_reload_interval_ms.max(1));
    // Before the broker starts: what is recorded without a recorder is lost.
    let metrics = fjord_http::metrics::Metrics::install()
        .context("cannot install the Prometheus recorder")?;
    runtime.block_on(async move {
        // In a cluster the controller comes first: the broker registers
        // with it and takes its topics from it.
        let quorum = match quorum_plan {
            Some(plan) => Some(plan.start().await?),
            None => None,
        };
        let broker = match &quorum {
            Some(q) => {
                let session = std::time::Duration::from_millis(config.broker_session_timeout_ms);
                fjord_broker::Broker::start_in_cluster(config, q.link(session)).await
            }
            None => fjord_broker::Broker::start(config).await,
        }
        .context("broker failed to start")?;
        let host = std::sync::Arc::new(
            fjord_plugin_host::PluginHost::new(
                fjord_plugin_host::HostConfig {
                    cache_dir: Some(cache_dir),
                    policy,
                    ..Default::default()
                },
                fjord_builtins::all(),
            )
            .context("cannot start the plugin host")?,
        );
        let local = broker.local();
        // Bound before the pipelines start so a taken port fails fast;
        // ready once everything runs.
        let admin = match &admin_listener {
            Some(address) => Some(
                fjord_http::AdminServer::start(address, {
                    let state =
                        fjord_http::AdminState::new(local.clone(), std::sync::Arc::clone(&host))
                            .with_metrics(metrics.clone())
                            .with_allowed_hosts(&admin_allowed_hosts)
                            .with_authentication(admin_requires_auth);
                    let state = match &admin_tls {
                        Some(tls) => state.with_tls(std::sync::Arc::clone(tls), tls_reload),
                        None => state,
                    };
                    match &quorum {
                        Some(q) => state.with_quorum(q.view()),
                        None => state,
                    }
                })
                .await
                .context("cannot start the admin API (--admin-listen off disables it)")?,
            ),
            None => None,
        };
        let deployments = manifests
            .iter()
            .map(|file| crate::pipeline::read_deployment(file).map(|d| (file.clone(), d)))
            .collect::<Result<Vec<_>>>()?;
        // Checked here as a deploy through the admin API would be: a
        // manifest the policy refuses stops the start, rather than being
        // stored and refused by the runtime.
        let mut pipelines = Vec::new();
        for (_, (_, d)) in &deployments {
            let resolver = fjord_pipeline::HostResolver::new(&host);
            let pipeline = fjord_pipeline::Pipeline::load(&d.file, &d.manifest, &resolver)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("--pipelines: invalid pipeline manifest")?;
            // Said, not refused: a data directory from before the check may
            // hold such a topic, and the broker must still start.
            if let Err(e) = fjord_pipeline::check_existing_topics(&pipeline, &|topic| {
                local.topic(topic).map(|t| t.partition_count())
            }) {
                tracing::warn!("--pipelines: {e}");
            }
            pipelines.push(pipeline);
        }
        fjord_pipeline::validate_set(&pipelines)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("--pipelines: the manifests do not fit together")?;
        if local.in_cluster() {
            // The pipelines' topics wait for enough brokers to replicate
            // them, and writes to them for the cluster's internal secret;
            // the broker serves meanwhile.
            let local = local.clone();
            tokio::spawn(async move {
                while !local.replicas_available() || local.internal_credentials().is_none() {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                if let Err(e) = deploy_manifests(&local, &deployments).await {
                    tracing::error!(error = format!("{e:#}"), "--pipelines");
                }
            });
        } else {
            deploy_manifests(&local, &deployments).await?;
        }
        let pipelines = fjord_pipeline::runtime::PipelineRuntime::start(local, host)
            .await
            .context("cannot start the pipeline runtime")?;
        if let Some(admin) = &admin {
            admin.set_ready(true);
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        if let Some(admin) = admin {
            admin.set_ready(false);
            admin.shutdown().await;
        }
        // Pipelines first: their tasks commit what they delivered while the
        // logs are still open.
        pipelines.stop().await;
        let stopped = broker.shutdown().await.context("broker failed");
        if let Some(quorum) = quorum {
            quorum.shutdown().await;
        }
        stopped
    })?;
    tracing::info!("fjord server stopped");
    Ok(())
}

/// The config file `path`, or `./fjord.yaml` when it exists, or the
/// defaults.
pub fn read_config(path: Option<&Path>) -> Result<BrokerConfig> {
    let default_file = Path::new("fjord.yaml");
    let file = match path {
        Some(path) => Some(path),
        None => default_file.exists().then_some(default_file),
    };
    Ok(match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            // The error names the line and column, and the field.
            fjord_broker::yaml::from_str(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        None => BrokerConfig::default(),
    })
}

fn load_config(args: &ServerArgs) -> Result<BrokerConfig> {
    let mut config = read_config(args.config.as_deref())?;
    args.policy.apply(&mut config);
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if let Some(listen) = &args.listen {
        config.listener = listen.clone();
        config.listeners = None;
        config.advertised_listeners = None;
    }
    if let Some(listeners) = &args.listeners {
        config.listeners = Some(list(listeners));
    }
    if let Some(advertised) = &args.advertised_listeners {
        config.advertised_listeners = Some(list(advertised));
    }
    if config.listeners.is_some() && (args.advertised_host.is_some() || args.advertise.is_some()) {
        anyhow::bail!(
            "--advertise and --advertised-host go with --listen (one PLAINTEXT listener); with listeners, use --advertised-listeners NAME://host:port"
        );
    }
    if let Some(host) = &args.advertised_host {
        config.advertised_host = Some(host.clone());
    }
    if let Some(address) = &args.advertise {
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
            .filter(|(host, _)| !host.is_empty())
            .with_context(|| format!("--advertise {address}: expected host:port"))?;
        config.advertised_host = Some(host.trim_matches(['[', ']']).to_owned());
        config.advertised_port = Some(port);
    }
    if let Some(admin) = &args.admin_listen {
        config.admin_listener = admin.clone();
    }
    if let Some(hosts) = &args.admin_allowed_hosts {
        config.admin_allowed_hosts = hosts.clone();
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    if let Some(voters) = &args.controller_voters {
        config.controller_voters = Some(voters.clone());
    }
    if let Some(listen) = &args.controller_listen {
        config.controller_listener = Some(listen.clone());
    }
    if let Some(n) = args.num_partitions {
        config.num_partitions = n;
    }
    if let (Some(user), Some(password)) = (&args.admin_user, &args.admin_password) {
        config.sasl_admin_user = Some(user.clone());
        config.sasl_admin_password = Some(fjord_broker::Password::new(password.clone()));
    }
    if let Some(mode) = &args.durability {
        config.durability = match mode.as_str() {
            "fsync" => DurabilityConfig::Fsync,
            _ => DurabilityConfig::PageCache,
        };
    }
    Ok(config)
}

fn init_logging(format: &str, filter: &str) -> Result<()> {
    // openraft logs every failed RPC, several times a second while a voter
    // is down; the controller reports what matters itself. Named in the
    // filter (`--log info,openraft=warn`), it is shown.
    let filter = if filter.contains("openraft") {
        filter.to_owned()
    } else {
        format!("{filter},openraft=off")
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let env_filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    // Behind a reload layer, so that Kafka's BROKER_LOGGER configs can
    // change levels while the server runs.
    let (layer, handle) = tracing_subscriber::reload::Layer::new(env_filter);
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(layer);
    if format == "json" {
        registry.with(output.json()).init();
    } else {
        registry.with(output).init();
    }
    fjord_broker::install_log_control(&filter, std::sync::Arc::new(LogFilter(handle)));
    Ok(())
}

/// The server's log filter, swapped at run time (BROKER_LOGGER).
struct LogFilter(
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
);

impl fjord_broker::LogControl for LogFilter {
    fn apply(&self, directives: &str) -> Result<(), String> {
        let filter = tracing_subscriber::EnvFilter::try_new(directives)
            .map_err(|e| format!("invalid log filter {directives:?}: {e}"))?;
        self.0.reload(filter).map_err(|e| e.to_string())
    }
}

/// Resolves on SIGINT or SIGTERM, so the broker can flush and checkpoint.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown requested; flushing logs");
}

/// Deploys `--pipelines` manifests (unchanged ones keep their revision).
async fn deploy_manifests(
    local: &fjord_broker::LocalBroker,
    deployments: &[(PathBuf, (String, fjord_pipeline::runtime::Deployment))],
) -> Result<()> {
    for (file, (name, deployment)) in deployments {
        fjord_pipeline::runtime::deploy_local(local, name, deployment)
            .await
            .with_context(|| format!("deploying {}", file.display()))?;
        tracing::info!(pipeline = %name, file = %file.display(), "pipeline deployed");
    }
    Ok(())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as a server that holds
/// a descriptor per connection and per open segment file should: the usual
/// soft limit of 1 024 is for interactive shells. The broker sizes its cache
/// of segment files (`log.open.files.max`) from the limit it finds after.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-files limit (RLIMIT_NOFILE)");
        return;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; a soft limit up to the hard
        // one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            tracing::warn!(
                soft = before,
                hard = limit.rlim_max,
                error = %std::io::Error::last_os_error(),
                "cannot raise the open-files limit (RLIMIT_NOFILE) to the hard limit"
            );
            return;
        }
    }
    tracing::info!(
        soft_before = before,
        soft = limit.rlim_max.max(before),
        hard = limit.rlim_max,
        "open-files limit (RLIMIT_NOFILE): soft raised to the hard limit"
    );
}
