//! `fjord-plugin-host`: runs Fjord plugins, whatever they were built as.
//!
//! A plugin reference is a built-in name (`filter`), a WebAssembly component
//! (`path/to/plugin.wasm`) or a native library (`path/to/libplugin.so`).
//! [`PluginHost::load`] resolves it to a [`LoadedPlugin`];
//! [`PluginHost::instantiate`] gives a [`PluginInstance`] whose methods —
//! `process`, `poll`, `write`, `partition`, `serialize`, … — are the same for
//! all three. The pipeline runtime and the CLI never know which they run.
//!
//! A plugin that traps, panics, runs past its deadline, exhausts its memory,
//! returns an error or returns malformed output fails that one call with a
//! [`PluginError`] naming it; an instance that cannot be trusted any more is
//! replaced by a fresh one; the process carries on.
//!
//! ```no_run
//! use fjord_plugin_host::{InstanceOptions, PluginHost};
//! use fjord_sdk::{Config, Record};
//!
//! let host = PluginHost::new(Default::default())?;
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
mod services;
mod wasm;

pub use builtin::builtins;
pub use capabilities::{Capabilities, DirGrant};
pub use error::{ErrorKind, PluginError};
pub use instance::{InstanceOptions, LoadedPlugin, Origin, PluginInstance};
pub use services::{MemoryStateStore, PluginLog, PluginMetrics, Services, StateStore, Summary};
pub use wasm::WasmLimits;

use fjord_sdk::PluginKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Settings of a [`PluginHost`].
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Where compiled WebAssembly components are cached; `None` compiles on
    /// every load.
    pub cache_dir: Option<PathBuf>,
    pub wasm: WasmLimits,
}

/// Loads and instantiates plugins. One per process is enough; it is cheap to
/// share behind an `Arc`.
pub struct PluginHost {
    config: HostConfig,
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

/// Whether a reference names a file rather than a built-in.
fn is_path(reference: &str) -> bool {
    reference.contains('/')
        || [".wasm", ".so", ".dylib", ".dll"]
            .iter()
            .any(|ext| reference.ends_with(ext))
}

impl PluginHost {
    pub fn new(config: HostConfig) -> Result<PluginHost, PluginError> {
        Ok(PluginHost {
            config,
            wasm: OnceLock::new(),
        })
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
        if !is_path(reference) {
            return match builtin::find(reference, kind) {
                builtin::Lookup::Found(b) => Ok(Arc::new(LoadedPlugin::builtin(b))),
                builtin::Lookup::Ambiguous(names) => Err(PluginError::new(
                    reference,
                    ErrorKind::NotFound(format!(
                        "several built-ins have that name; say which: {}",
                        names.join(", ")
                    )),
                )),
                builtin::Lookup::None => {
                    let names: Vec<String> =
                        builtins().iter().map(|b| (b.describe)().name).collect();
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
        let mut magic = [0u8; 4];
        let is_wasm = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok_and(|()| &magic == b"\0asm");
        if is_wasm {
            let plugin = self.wasm_runtime()?.load(path)?;
            Ok(Arc::new(LoadedPlugin::wasm(plugin)))
        } else {
            let lib = native::NativeLibrary::load(path)?;
            Ok(Arc::new(LoadedPlugin::native(lib)))
        }
    }

    /// A new, initialised instance of `plugin`.
    pub fn instantiate(
        &self,
        plugin: &Arc<LoadedPlugin>,
        options: InstanceOptions,
    ) -> Result<PluginInstance, PluginError> {
        PluginInstance::new(Arc::clone(plugin), options)
    }
}
