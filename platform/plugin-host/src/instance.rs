//! Loaded plugins and their instances: the one interface over built-in,
//! native and WebAssembly plugins.

use crate::backend::{Backend, CallFailure};
use crate::builtin::Builtin;
use crate::error::{ErrorKind, PluginError};
use crate::native::NativeLibrary;
use crate::wasm::WasmPlugin;
use crate::{Capabilities, Services};
use fjord_sdk::{Config, PluginInfo, PluginKind};
use std::sync::Arc;

/// Where a plugin's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    Native,
    Wasm,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Builtin => "built-in",
            Origin::Native => "native",
            Origin::Wasm => "wasm",
        })
    }
}

enum Code {
    Builtin(Builtin),
    Native(Arc<NativeLibrary>),
    Wasm(Arc<WasmPlugin>),
}

/// A plugin ready to instantiate, with its description.
pub struct LoadedPlugin {
    info: PluginInfo,
    code: Code,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("info", &self.info)
            .field("origin", &self.origin())
            .finish()
    }
}

impl LoadedPlugin {
    pub(crate) fn builtin(b: Builtin) -> Self {
        LoadedPlugin {
            info: b.info(),
            code: Code::Builtin(b),
        }
    }

    pub(crate) fn native(lib: Arc<NativeLibrary>) -> Self {
        LoadedPlugin {
            info: lib.info.clone(),
            code: Code::Native(lib),
        }
    }

    pub(crate) fn wasm(p: Arc<WasmPlugin>) -> Self {
        LoadedPlugin {
            info: p.info.clone(),
            code: Code::Wasm(p),
        }
    }

    /// Name, version, kind, description, config keys.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub fn origin(&self) -> Origin {
        match self.code {
            Code::Builtin(_) => Origin::Builtin,
            Code::Native(_) => Origin::Native,
            Code::Wasm(_) => Origin::Wasm,
        }
    }

    /// For WebAssembly: whether its compiled code came from the on-disk
    /// cache rather than a compilation.
    pub fn compiled_from_cache(&self) -> bool {
        matches!(&self.code, Code::Wasm(p) if p.from_cache)
    }

    /// An error unless the plugin is of `kind`.
    pub fn expect_kind(&self, kind: PluginKind) -> Result<(), PluginError> {
        if self.info.kind == kind {
            Ok(())
        } else {
            Err(PluginError::new(
                &self.info.name,
                ErrorKind::WrongKind {
                    expected: kind,
                    found: self.info.kind,
                },
            ))
        }
    }
}

/// How to build an instance.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    pub config: Config,
    /// For sources: where to resume.
    pub position: Option<Vec<u8>>,
    /// For WebAssembly plugins: what they may reach.
    pub capabilities: Capabilities,
    /// State store and metrics; `None` gives in-memory ones.
    pub services: Option<Services>,
}

impl InstanceOptions {
    pub fn new(config: Config) -> Self {
        InstanceOptions {
            config,
            position: None,
            capabilities: Capabilities::default(),
            services: None,
        }
    }
}

/// A running plugin. Calls go to one instance at a time (`&mut self`); a
/// pipeline with parallelism holds several.
pub struct PluginInstance {
    plugin: Arc<LoadedPlugin>,
    options: InstanceOptions,
    services: Services,
    backend: Option<Backend>,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.plugin.info.name)
            .finish()
    }
}

fn start(
    plugin: &LoadedPlugin,
    options: &InstanceOptions,
    services: &Services,
) -> Result<Backend, PluginError> {
    let position = options.position.as_deref();
    let backend = match &plugin.code {
        Code::Builtin(b) => b
            .start(&options.config, position, services.clone())
            .map_err(|m| PluginError::new(&plugin.info.name, ErrorKind::Init(m)))?,
        Code::Native(lib) => lib.start(&options.config, position, services.clone())?,
        Code::Wasm(p) => crate::wasm::start(
            p,
            &options.config,
            position,
            services.clone(),
            &options.capabilities,
        )?,
    };
    Ok(backend)
}

/// Picks the backend of one kind out of a [`Backend`], or says why not.
macro_rules! kind_of {
    ($backend:expr, $variant:ident) => {
        match $backend {
            Backend::$variant(b) => Ok(b),
            other => Err(ErrorKind::WrongKind {
                expected: PluginKind::$variant,
                found: other.kind(),
            }),
        }
    };
}

impl PluginInstance {
    pub(crate) fn new(
        plugin: Arc<LoadedPlugin>,
        options: InstanceOptions,
    ) -> Result<Self, PluginError> {
        let services = options
            .services
            .clone()
            .unwrap_or_else(|| Services::in_memory(&plugin.info.name));
        let backend = start(&plugin, &options, &services)?;
        Ok(PluginInstance {
            plugin,
            options,
            services,
            backend: Some(backend),
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.plugin.info
    }

    pub fn origin(&self) -> Origin {
        self.plugin.origin()
    }

    /// The services (state, metrics) this instance reports to.
    pub fn services(&self) -> &Services {
        &self.services
    }

    fn err(&self, kind: ErrorKind) -> PluginError {
        PluginError::new(&self.plugin.info.name, kind)
    }

    /// Runs `f` on the running instance's backend, starting one first if the
    /// last was replaced and that failed. A fatal failure drops the instance
    /// and starts a fresh one for the next call.
    fn call<T>(
        &mut self,
        kind: PluginKind,
        f: impl FnOnce(&mut Backend) -> Result<Result<T, CallFailure>, ErrorKind>,
    ) -> Result<T, PluginError> {
        self.plugin.expect_kind(kind)?;
        let backend = match &mut self.backend {
            Some(b) => b,
            // The last instance failed and so did its replacement: try again.
            None => self
                .backend
                .insert(start(&self.plugin, &self.options, &self.services)?),
        };
        match f(backend).map_err(|kind| self.err(kind))? {
            Ok(out) => Ok(out),
            Err(CallFailure::Failed(msg)) => Err(self.err(ErrorKind::Failed(msg))),
            Err(CallFailure::Malformed(what)) => Err(self.err(ErrorKind::MalformedOutput(what))),
            Err(CallFailure::Fatal(kind)) => {
                // Never call into a trapped or panicked instance again.
                self.backend = None;
                match start(&self.plugin, &self.options, &self.services) {
                    Ok(b) => self.backend = Some(b),
                    Err(e) => tracing::warn!("cannot replace a failed instance: {e}"),
                }
                Err(self.err(kind))
            }
        }
    }

    fn checked_batch(&self, out: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        fjord_sdk::validate(&out)
            .map_err(|e| self.err(ErrorKind::MalformedOutput(e.to_string())))?;
        Ok(out)
    }

    /// Processor: one batch of `partition` in, the output batch out.
    pub fn process(&mut self, partition: i32, batch: &[u8]) -> Result<Vec<u8>, PluginError> {
        let out = self.call(PluginKind::Processor, |b| {
            Ok(kind_of!(b, Processor)?.process(partition, batch))
        })?;
        self.checked_batch(out)
    }

    /// Processor: the periodic timer for `partition`.
    pub fn on_timer(&mut self, partition: i32, now_ms: i64) -> Result<Vec<u8>, PluginError> {
        let out = self.call(PluginKind::Processor, |b| {
            Ok(kind_of!(b, Processor)?.on_timer(partition, now_ms))
        })?;
        self.checked_batch(out)
    }

    /// Source: up to `max` records, and the position after them. The
    /// position is also kept, so a replaced instance resumes from it.
    pub fn poll(&mut self, max: u32) -> Result<(Vec<u8>, Vec<u8>), PluginError> {
        let polled = self.call(PluginKind::Source, |b| Ok(kind_of!(b, Source)?.poll(max)))?;
        let batch = self.checked_batch(polled.batch)?;
        self.options.position = Some(polled.position.clone());
        Ok((batch, polled.position))
    }

    /// Sink: write a batch.
    pub fn write(&mut self, batch: &[u8]) -> Result<(), PluginError> {
        self.call(PluginKind::Sink, |b| Ok(kind_of!(b, Sink)?.write(batch)))
    }

    /// Sink: make what was written durable.
    pub fn flush(&mut self) -> Result<(), PluginError> {
        self.call(PluginKind::Sink, |b| Ok(kind_of!(b, Sink)?.flush()))
    }

    /// Partitioner: the partition for a record, below `partition_count`.
    pub fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> Result<u32, PluginError> {
        let p = self.call(PluginKind::Partitioner, |b| {
            Ok(kind_of!(b, Partitioner)?.partition(key, value, partition_count))
        })?;
        Ok(p % partition_count.max(1))
    }

    /// Serializer: user-facing format to stored bytes.
    pub fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.call(PluginKind::Serializer, |b| {
            Ok(kind_of!(b, Serializer)?.serialize(input))
        })
    }

    /// Serializer: stored bytes to the user-facing format.
    pub fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.call(PluginKind::Serializer, |b| {
            Ok(kind_of!(b, Serializer)?.deserialize(bytes))
        })
    }
}
