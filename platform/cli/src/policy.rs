//! What plugins may reach on the host: the operator's `plugin.native.dirs`
//! and `pipeline.allowed.*` settings, as `fjord server` flags and
//! `FJORD_*` variables, made into the plugin host's policy.
//!
//! The commands that run plugins locally (`fjord pipeline validate`,
//! `fjord plugin test` and `inspect`, `--serializer` and `--partitioner` of
//! `produce` and `consume`) apply the same policy as the server on this
//! machine would: from the config file (`FJORD_CONFIG` or `./fjord.yaml`)
//! and the same variables, so a manifest valid here runs there.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;
use fjord_broker::BrokerConfig;
use fjord_plugin_host::{HostPolicy, LOOPBACK};

/// The policy flags of `fjord server`; each also reads its `FJORD_*`
/// variable, and replaces the config file's list when given.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PolicyArgs {
    /// Directories native plugin libraries may be loaded from
    /// (`plugin.native.dirs`; default: none).
    #[arg(
        long = "native-dir",
        env = "FJORD_PLUGIN_NATIVE_DIRS",
        value_delimiter = ','
    )]
    pub native_dirs: Vec<PathBuf>,
    /// Directories pipelines may read and write files in and grant to
    /// WebAssembly plugins (`pipeline.allowed.paths`; default:
    /// DATA_DIR/pipelines).
    #[arg(
        long = "allow-path",
        env = "FJORD_PIPELINE_ALLOWED_PATHS",
        value_delimiter = ','
    )]
    pub allowed_paths: Vec<PathBuf>,
    /// Addresses pipelines may listen on: `host`, `host:port` or `*`
    /// (`pipeline.allowed.listen`; default: loopback, any port).
    #[arg(
        long = "allow-listen",
        env = "FJORD_PIPELINE_ALLOWED_LISTEN",
        value_delimiter = ','
    )]
    pub allowed_listen: Vec<String>,
    /// Destinations pipelines may connect to: `host`, `host:port` or `*`
    /// (`pipeline.allowed.connect`; default: loopback, any port).
    #[arg(
        long = "allow-connect",
        env = "FJORD_PIPELINE_ALLOWED_CONNECT",
        value_delimiter = ','
    )]
    pub allowed_connect: Vec<String>,
}

impl PolicyArgs {
    /// Overrides the config file's settings with the lists given.
    pub fn apply(&self, config: &mut BrokerConfig) {
        if !self.native_dirs.is_empty() {
            config.plugin_native_dirs = self.native_dirs.clone();
        }
        if !self.allowed_paths.is_empty() {
            config.pipeline_allowed_paths = Some(self.allowed_paths.clone());
        }
        if !self.allowed_listen.is_empty() {
            config.pipeline_allowed_listen = Some(self.allowed_listen.clone());
        }
        if !self.allowed_connect.is_empty() {
            config.pipeline_allowed_connect = Some(self.allowed_connect.clone());
        }
    }
}

/// The plugin host's policy from the broker's settings, defaults applied;
/// an error when it would let a pipeline write where native libraries load
/// from.
pub fn host_policy(config: &BrokerConfig) -> Result<HostPolicy> {
    let loopback = || LOOPBACK.map(String::from).to_vec();
    let policy = HostPolicy {
        native_dirs: config.plugin_native_dirs.clone(),
        paths: config.allowed_paths(),
        listen: config
            .pipeline_allowed_listen
            .clone()
            .unwrap_or_else(loopback),
        connect: config
            .pipeline_allowed_connect
            .clone()
            .unwrap_or_else(loopback),
    };
    let problems = policy.problems();
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(policy)
}

/// The settings a local command reads from the environment, as
/// `fjord server` would.
#[derive(Parser, Debug)]
struct Environment {
    #[arg(long, env = "FJORD_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "FJORD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// The policy `fjord server` would apply here: config file, data
/// directory and policy variables.
pub fn local() -> Result<HostPolicy> {
    let env = Environment::try_parse_from(["fjord"])?;
    let mut config = crate::server::read_config(env.config.as_deref())?;
    if let Some(dir) = env.data_dir {
        config.data_dir = dir;
    }
    env.policy.apply(&mut config);
    host_policy(&config)
}
