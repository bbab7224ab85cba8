//! `fjord plugin`: scaffold, build, try out and describe plugins.
//!
//! `new` and `build` work on a plugin crate's sources (they run cargo);
//! `test` and `inspect` load a plugin — a built-in name, a `.wasm`
//! component or a native library — with `fjord-plugin-host`, the same host
//! the broker uses, so what they show is what a pipeline would do.
//!
//! [`instance`] is also how `fjord produce` and `fjord consume` run their
//! `--serializer` and `--partitioner` plugins.

mod build;
mod inspect;
mod new;
mod run_test;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use fjord_plugin_host::{
    ErrorKind, HostConfig, InstanceOptions, LoadedPlugin, PluginHost, PluginInstance,
};
use fjord_sdk::{Config, PluginKind};

/// `fjord plugin …`
#[derive(clap::Subcommand, Debug)]
pub enum PluginCommand {
    /// Create a plugin crate that builds as WebAssembly and as a native
    /// library, with a working minimal implementation and a unit test.
    New(new::NewArgs),
    /// Build a plugin crate: native library and/or WebAssembly component.
    Build(build::BuildArgs),
    /// Run a plugin on records from a JSON Lines file and print the result.
    Test(run_test::TestArgs),
    /// Show a plugin's kind, version, origin and configuration keys.
    Inspect(inspect::InspectArgs),
}

pub fn run(command: PluginCommand) -> Result<()> {
    init_logging();
    match command {
        PluginCommand::New(a) => new::run(a),
        PluginCommand::Build(a) => build::run(a),
        PluginCommand::Test(a) => run_test::run(a),
        PluginCommand::Inspect(a) => inspect::run(a),
    }
}

/// Plugin log lines (`ctx.log`) are part of what `fjord plugin test` shows,
/// so info is on by default here, unlike the client subcommands.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FJORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

/// Where compiled WebAssembly components are cached: `fjord/plugins` under
/// the user's cache directory, when there is one.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("fjord").join("plugins"))
}

/// A host with the on-disk compilation cache and the policy the server
/// here would apply (see `policy.rs`).
pub fn host() -> Result<PluginHost> {
    PluginHost::new(
        HostConfig {
            cache_dir: cache_dir(),
            policy: crate::policy::local()?,
            ..HostConfig::default()
        },
        fjord_builtins::all(),
    )
    .context("could not start the plugin host")
}

/// Loads a plugin reference (built-in name or file).
pub fn load(host: &PluginHost, reference: &str) -> Result<Arc<LoadedPlugin>> {
    match host.load(reference) {
        Ok(plugin) => Ok(plugin),
        // The host's reason is the loader's ("dlopen failed"); say what a
        // plugin file should be.
        Err(e) if matches!(e.kind, ErrorKind::NotAPlugin(_)) => {
            Err(anyhow::Error::new(e).context(format!(
                "{reference} is not a Fjord plugin: expected a WebAssembly component (.wasm) \
                 or a native library built with fjord-sdk"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// An initialised instance of the plugin `reference`, which must be of
/// `kind`; `config` is its `key=value` configuration.
pub fn instance(
    reference: &str,
    kind: PluginKind,
    config: &[(String, String)],
) -> Result<PluginInstance> {
    let host = host()?;
    let plugin = load(&host, reference)?;
    plugin.expect_kind(kind)?;
    Ok(host.instantiate(
        &plugin,
        InstanceOptions::new(Config::from_pairs(config.iter().cloned())),
    )?)
}

/// Bytes as text for a terminal: UTF-8 as is, anything else as hex.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}
