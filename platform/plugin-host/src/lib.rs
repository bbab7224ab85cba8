//! `fjord-plugin-host`: runs Fjord plugins, whatever they were built as.
//!
//! A plugin reference is a built-in name (`filter`), a WebAssembly component
//! (`path/to/plugin.wasm`) or a native library (`path/to/libplugin.so`).
//! [`PluginHost::load`] resolves it to a [`LoadedPlugin`];
//! [`PluginHost::instantiate`] gives a [`PluginInstance`] whose methods —
//! `process`, `poll`, `write`, `partition`, `serialize`, … — are the same for
//! all three. The pipeline runtime and the CLI never know which they run.
//!
//! Inside, each origin implements one trait per plugin kind (a processor's
//! `process` and `on_timer`, a source's `poll`, …): the built-ins call the
//! SDK's kind traits directly, the WebAssembly instances call their world's
//! typed exports, and native libraries translate to the C ABI of
//! `fjord-plugin-abi`, the only place operation codes exist.
//!
//! The host compiles in no plugin: the binary passes its built-ins
//! ([`Builtin`], e.g. `fjord_builtins::all()`) to [`PluginHost::new`].
//!
//! A plugin that traps, panics, runs past its deadline, exhausts its memory,
//! returns an error or returns malformed output fails that one call with a
//! [`PluginError`] naming it; an instance that cannot be trusted any more is
//! replaced by a fresh one; the process carries on.
//!
//! What plugins may reach on the host is the operator's [`HostPolicy`]
//! (given in [`HostConfig`]): native libraries load only from the
//! directories it lists, and built-in connectors' files and addresses and
//! WebAssembly grants must fall inside its allow-lists. The host applies it
//! when it loads and instantiates; [`PluginHost::check`] applies it to a
//! manifest's plugin before anything is loaded.
//!
//! ```no_run
//! use fjord_plugin_host::{InstanceOptions, PluginHost};
//! use fjord_sdk::{Config, Record};
//!
//! let host = PluginHost::new(Default::default(), fjord_builtins::all())?;
//! let filter = host.load("filter")?;
//! let mut instance = host.instantiate(
//!     &filter,
//!     InstanceOptions::new(Config::from_pairs([("expr", "status >= 500")])),
//! )?;
//! let out = instance.process(0, &fjord_sdk::encode(&[Record::new(r#"{"status":503}"#)]))?;
//! assert_eq!(fjord_sdk::decode(&out).unwrap().len(), 1);
//! # Ok::<(), fjord_plugin_host::PluginError>(())
//! ```
//!
//! Not for: deciding what runs where, reading topics or committing offsets —
//! that is the pipeline runtime's job.

mod backend;
mod builtin;
mod capabilities;
mod error;
mod instance;
mod native;
mod policy;
mod services;
mod wasm;

pub use builtin::Builtin;
pub use capabilities::{Capabilities, DirGrant};
pub use error::{ErrorKind, PluginError};
pub use instance::{InstanceOptions, LoadedPlugin, Origin, PluginInstance};
pub use policy::{
    ALLOWED_CONNECT, ALLOWED_LISTEN, ALLOWED_PATHS, HostPolicy, LOOPBACK, NATIVE_DIRS, Refusal,
};
pub use services::{MemoryStateStore, PluginLog, PluginMetrics, Services, StateStore, Summary};
pub use wasm::WasmLimits;

use fjord_sdk::{Config, PluginKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Settings of a [`PluginHost`].
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Where compiled WebAssembly components are cached; `None` compiles on
    /// every load.
    pub cache_dir: Option<PathBuf>,
    pub wasm: WasmLimits,
    /// What plugins may reach on the host.
    pub policy: HostPolicy,
}

/// Loads and instantiates plugins. One per process is enough; it is cheap to
/// share behind an `Arc`.
pub struct PluginHost {
    config: HostConfig,
    builtins: Vec<Builtin>,
    // The wasmtime engine reserves its instance pool up front; only pay for
    // it when a WebAssembly plugin is loaded.
    wasm: OnceLock<Arc<wasm::WasmRuntime>>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.config)
            .finish()
    }
}

/// Whether a reference names a file (a `.wasm` component or a native
/// library) rather than a built-in.
pub fn is_file_reference(reference: &str) -> bool {
    reference.contains('/')
        || [".wasm", ".so", ".dylib", ".dll"]
            .iter()
            .any(|ext| reference.ends_with(ext))
}

impl PluginHost {
    /// A host that knows `builtins` by name, besides the files it loads.
    pub fn new(config: HostConfig, builtins: Vec<Builtin>) -> Result<PluginHost, PluginError> {
        Ok(PluginHost {
            config,
            builtins,
            wasm: OnceLock::new(),
        })
    }

    /// The built-ins this host was given.
    pub fn builtins(&self) -> &[Builtin] {
        &self.builtins
    }

    fn wasm_runtime(&self) -> Result<&Arc<wasm::WasmRuntime>, PluginError> {
        if let Some(rt) = self.wasm.get() {
            return Ok(rt);
        }
        let rt = Arc::new(wasm::WasmRuntime::new(
            self.config.cache_dir.clone(),
            self.config.wasm.clone(),
        )?);
        Ok(self.wasm.get_or_init(|| rt))
    }

    /// Resolves a reference: a built-in name, a `.wasm` component or a
    /// native library.
    pub fn load(&self, reference: &str) -> Result<Arc<LoadedPlugin>, PluginError> {
        self.load_reference(reference, None)
    }

    /// Like [`PluginHost::load`], for a caller that needs a plugin of
    /// `kind`: a built-in name shared by two kinds resolves to this one,
    /// and a plugin of another kind is refused.
    pub fn load_kind(
        &self,
        reference: &str,
        kind: PluginKind,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        let plugin = self.load_reference(reference, Some(kind))?;
        plugin.expect_kind(kind)?;
        Ok(plugin)
    }

    fn load_reference(
        &self,
        reference: &str,
        kind: Option<PluginKind>,
    ) -> Result<Arc<LoadedPlugin>, PluginError> {
        if !is_file_reference(reference) {
            return match builtin::find(&self.builtins, reference, kind) {
                builtin::Lookup::Found(b) => Ok(Arc::new(LoadedPlugin::builtin(*b))),
                builtin::Lookup::Ambiguous(names) => Err(PluginError::new(
                    reference,
                    ErrorKind::NotFound(format!(
                        "several built-ins have that name; say which: {}",
                        names.join(", ")
                    )),
                )),
                builtin::Lookup::None => {
                    let names: Vec<String> = self.builtins.iter().map(|b| b.info().name).collect();
                    Err(PluginError::new(
                        reference,
                        ErrorKind::NotFound(format!(
                            "no built-in plugin of that name (built-ins: {})",
                            names.join(", ")
                        )),
                    ))
                }
            };
        }
        let path = Path::new(reference);
        if !path.is_file() {
            return Err(PluginError::new(
                reference,
                ErrorKind::NotFound(format!("no file {}", path.display())),
            ));
        }
        if is_wasm(path) {
            let plugin = self.wasm_runtime()?.load(path)?;
            Ok(Arc::new(LoadedPlugin::wasm(plugin)))
        } else {
            // Loading runs the library's code: only from an allowed
            // directory, and what was checked is what is loaded.
            let real = self
                .config
                .policy
                .check_native(path)
                .map_err(|r| refused(reference, r))?;
            let lib = native::NativeLibrary::load(&real)?;
            Ok(Arc::new(LoadedPlugin::native(lib)))
        }
    }

    /// Whether the policy allows what the plugin `reference` (of `kind`)
    /// would touch with `config` and `capabilities`, decided without
    /// loading or running anything: a native library's directory and
    /// exports, a built-in connector's files and addresses, WebAssembly
    /// grants. A reference that names nothing passes (loading it will say
    /// so).
    pub fn check(
        &self,
        reference: &str,
        kind: PluginKind,
        config: &Config,
        capabilities: &Capabilities,
    ) -> Result<(), PluginError> {
        let policy = &self.config.policy;
        policy
            .check_grants(capabilities)
            .map_err(|r| refused(reference, r))?;
        if !is_file_reference(reference) {
            if let builtin::Lookup::Found(b) = builtin::find(&self.builtins, reference, Some(kind))
            {
                policy
                    .check_builtin(&b.info(), config)
                    .map_err(|r| refused(reference, r))?;
            }
            return Ok(());
        }
        let path = Path::new(reference);
        if !path.is_file() || is_wasm(path) {
            return Ok(());
        }
        let real = policy
            .check_native(path)
            .map_err(|r| refused(reference, r))?;
        native::check_exports(&real)
    }

    /// A new, initialised instance of `plugin`.
    pub fn instantiate(
        &self,
        plugin: &Arc<LoadedPlugin>,
        options: InstanceOptions,
    ) -> Result<PluginInstance, PluginError> {
        // Whoever built the options (a manifest's author, a CLI user), the
        // policy decides before the instance opens anything.
        let policy = &self.config.policy;
        let name = &plugin.info().name;
        policy
            .check_grants(&options.capabilities)
            .map_err(|r| refused(name, r))?;
        if plugin.origin() == Origin::Builtin {
            policy
                .check_builtin(plugin.info(), &options.config)
                .map_err(|r| refused(name, r))?;
        }
        PluginInstance::new(Arc::clone(plugin), options)
    }
}

/// Whether the file starts like WebAssembly.
fn is_wasm(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"\0asm")
}

fn refused(plugin: &str, r: Refusal) -> PluginError {
    PluginError::new(
        plugin,
        ErrorKind::NotAllowed {
            field: r.field,
            reason: r.reason,
        },
    )
}
