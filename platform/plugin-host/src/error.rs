//! How a plugin can fail, as the pipeline runtime sees it.

use fjord_sdk::PluginKind;
use std::time::Duration;

/// A failed load, instantiation or call, naming the plugin.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin `{plugin}`: {kind}")]
pub struct PluginError {
    /// The plugin's name, or the reference it was loaded from.
    pub plugin: String,
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// The reference names no built-in and no readable file.
    #[error("not found: {0}")]
    NotFound(String),
    /// The file is not a Fjord plugin (not a component, no ABI symbols, …).
    #[error("not a Fjord plugin: {0}")]
    NotAPlugin(String),
    /// The operator's policy does not allow what the plugin would touch
    /// (`reason` names the setting); `field` is where in the plugin's
    /// place in a manifest (`config.path`, `capabilities.dirs[0].host`,
    /// `plugin`).
    #[error("{reason}")]
    NotAllowed { field: String, reason: String },
    /// A native library built against another version of the C ABI.
    #[error("native ABI version {found}, this host speaks {expected}")]
    AbiMismatch { found: u32, expected: u32 },
    /// The plugin is of another kind than the caller needs.
    #[error("is a {found}, not a {expected}")]
    WrongKind {
        expected: PluginKind,
        found: PluginKind,
    },
    /// `init` refused the configuration.
    #[error("init failed: {0}")]
    Init(String),
    /// The plugin returned an error for this call.
    #[error("{0}")]
    Failed(String),
    /// The WebAssembly instance trapped (a Rust panic, `unreachable`, …).
    #[error("trapped: {0}")]
    Trap(String),
    /// A native or built-in plugin panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// The call ran past its deadline and was interrupted.
    #[error("exceeded its deadline of {0:?}")]
    Deadline(Duration),
    /// The instance tried to grow its memory past the limit.
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(u64),
    /// The plugin returned bytes that do not follow the batch encoding.
    #[error("returned malformed output: {0}")]
    MalformedOutput(String),
    /// The host could not set up the plugin (compilation, cache, WASI).
    #[error("host error: {0}")]
    Host(String),
}

impl PluginError {
    pub fn new(plugin: impl Into<String>, kind: ErrorKind) -> Self {
        PluginError {
            plugin: plugin.into(),
            kind,
        }
    }

    /// Whether the instance is gone and the host replaced it with a new one
    /// (trap, panic, deadline, memory).
    pub fn recycled_instance(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Trap(_)
                | ErrorKind::Panic(_)
                | ErrorKind::Deadline(_)
                | ErrorKind::OutOfMemory(_)
        )
    }
}
