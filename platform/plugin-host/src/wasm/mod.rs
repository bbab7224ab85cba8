//! WebAssembly plugins: components run by wasmtime, sandboxed.
//!
//! - Compiled components are cached on disk by content hash (and the
//!   engine's compatibility hash), so a restart deserializes instead of
//!   compiling.
//! - The pooling allocator preallocates instance slots; every instance has a
//!   memory limit (default 64 MiB) and every call an epoch deadline (default
//!   1 s).
//! - WASI gives nothing unless the manifest grants it: directories, listed
//!   network hosts, environment variables. Standard output is discarded;
//!   standard error is kept (bounded) so a panic's message reaches the error.

mod bindings;
mod instance;

pub use instance::start;

use crate::Capabilities;
use crate::error::{ErrorKind, PluginError};
use fjord_sdk::{PluginInfo, PluginKind};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the epoch advances: the granularity of deadlines.
const TICK: Duration = Duration::from_millis(10);
/// How much of a guest's standard error is kept for error messages.
const STDERR_BYTES: usize = 16 * 1024;

/// Limits applied to every WebAssembly instance.
#[derive(Debug, Clone)]
pub struct WasmLimits {
    /// Largest linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Longest a single call may run.
    pub deadline: Duration,
    /// Instances that may exist at once (pooling allocator slots).
    pub max_instances: u32,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            memory_bytes: 64 << 20,
            deadline: Duration::from_secs(1),
            max_instances: 64,
        }
    }
}

/// Per-store state: the instance's services, its WASI context and limits.
pub struct StoreData {
    pub(crate) services: crate::Services,
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the limit and remembers that it did, so the
/// trap that follows is reported as "out of memory".
struct MemoryLimiter {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Advances the engine's epoch every [`TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("fjord-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            // Without the ticker deadlines never fire; say so loudly.
            tracing::error!("cannot start the WebAssembly epoch thread, deadlines are off: {e}");
        }
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The wasmtime engine, linker and component cache shared by all
/// WebAssembly plugins of a process.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<StoreData>,
    cache_dir: Option<PathBuf>,
    limits: WasmLimits,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("cache_dir", &self.cache_dir)
            .field("limits", &self.limits)
            .finish()
    }
}

fn host_err(plugin: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::new(plugin, ErrorKind::Host(e.to_string()))
}

impl WasmRuntime {
    pub fn new(cache_dir: Option<PathBuf>, limits: WasmLimits) -> Result<WasmRuntime, PluginError> {
        let mut pool = PoolingAllocationConfig::default();
        let n = limits.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(16))
            .total_stacks(n)
            .max_memory_size(limits.memory_bytes);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| host_err("wasmtime", format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| host_err("wasmtime", format!("{e:#}")))?;
        bindings::add_to_linker(&mut linker).map_err(|e| host_err("wasmtime", format!("{e:#}")))?;
        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| host_err("wasmtime", format!("{}: {e}", dir.display())))?;
        }
        let ticker = EpochTicker::start(engine.clone());
        Ok(WasmRuntime {
            engine,
            linker,
            cache_dir,
            limits,
            _ticker: ticker,
        })
    }

    /// Where the compiled form of `bytes` is cached.
    fn cache_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{hex}-{:016x}.cwasm", engine_hash.finish())))
    }

    /// Compiles `bytes`, or loads the cached compilation; `true` when it
    /// came from the cache.
    fn component(&self, name: &str, bytes: &[u8]) -> Result<(Component, bool), PluginError> {
        let cached = self.cache_path(bytes);
        if let Some(path) = cached.as_ref().filter(|p| p.exists()) {
            // Read into memory rather than mapped: a cache file truncated
            // under a mapping would kill the process with SIGBUS.
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the name), in
            // a directory only this host writes; wasmtime checks its header.
            let loaded = std::fs::read(path)
                .map_err(wasmtime::Error::from)
                .and_then(|b| unsafe { Component::deserialize(&self.engine, b) });
            match loaded {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!(
                    plugin = name,
                    "ignoring unreadable cache entry {}: {e:#}",
                    path.display()
                ),
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            let why = if wasmparser_is_core_module(bytes) {
                "a core WebAssembly module, not a component (build with `--target wasm32-wasip2`)"
                    .to_owned()
            } else {
                format!("{e:#}")
            };
            PluginError::new(name, ErrorKind::NotAPlugin(why))
        })?;
        if let Some(path) = cached
            && let Err(e) = write_atomically(
                &path,
                &component.serialize().map_err(|e| host_err(name, e))?,
            )
        {
            tracing::warn!(
                plugin = name,
                "cannot cache the compiled component at {}: {e}",
                path.display()
            );
        }
        Ok((component, false))
    }

    /// Loads a component file: compile (or load from cache), check it is a
    /// Fjord plugin, and read its description.
    pub fn load(self: &Arc<Self>, path: &Path) -> Result<Arc<WasmPlugin>, PluginError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| PluginError::new(&name, ErrorKind::NotFound(e.to_string())))?;
        let (component, from_cache) = self.component(&name, &bytes)?;
        let kind = kind_of(&self.engine, &component).ok_or_else(|| {
            PluginError::new(
                &name,
                ErrorKind::NotAPlugin("exports no Fjord plugin world".into()),
            )
        })?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::new(
                &name,
                ErrorKind::NotAPlugin(format!(
                    "imports something this host does not provide: {e:#}"
                )),
            )
        })?;
        let pre = instance::TypedPre::new(kind, pre).map_err(|e| {
            PluginError::new(
                &name,
                ErrorKind::NotAPlugin(format!("does not match the `{kind}` world: {e:#}")),
            )
        })?;
        let mut plugin = WasmPlugin {
            info: PluginInfo::new(&name, "").with_kind(kind),
            pre,
            runtime: Arc::clone(self),
            from_cache,
        };
        // Describing needs an instance; it is dropped straight away.
        let info = instance::describe(&plugin)?;
        if info.kind != kind {
            return Err(PluginError::new(
                &name,
                ErrorKind::NotAPlugin(format!("describes itself as a {}", info.kind)),
            ));
        }
        plugin.info = info;
        Ok(Arc::new(plugin))
    }

    fn store(
        &self,
        services: crate::Services,
        caps: &Capabilities,
    ) -> Result<wasmtime::Store<StoreData>, PluginError> {
        let plugin = services.plugin.clone();
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        wasi.stderr(stderr.clone());
        for (k, v) in &caps.env {
            wasi.env(k, v);
        }
        for dir in &caps.dirs {
            let perms = if dir.read_only {
                wasmtime_wasi::FsPerms::ReadOnly
            } else {
                wasmtime_wasi::FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| {
                    PluginError::new(
                        &plugin,
                        ErrorKind::Host(format!("directory {}: {e:#}", dir.host.display())),
                    )
                })?;
        }
        if !caps.network.is_empty() {
            let allowed = caps
                .resolve_network()
                .map_err(|e| PluginError::new(&plugin, ErrorKind::Host(e)))?;
            let allowed = Arc::new(allowed);
            wasi.allow_tcp(true)
                .allow_udp(false)
                .allow_ip_name_lookup(true)
                .socket_addr_check(move |addr, use_| {
                    use wasmtime_wasi::sockets::SocketAddrUse;
                    let ok = match use_ {
                        // Connecting binds an ephemeral local port first.
                        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                        SocketAddrUse::TcpConnect => allowed.contains(&addr),
                        _ => false,
                    };
                    Box::pin(async move { ok })
                });
        } else {
            wasi.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        let data = StoreData {
            services,
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: self.limits.memory_bytes,
                exceeded: false,
            },
            stderr,
        };
        let mut store = wasmtime::Store::new(&self.engine, data);
        store.limiter(|d| &mut d.limiter);
        Ok(store)
    }

    /// Epoch ticks in one deadline.
    fn deadline_ticks(&self) -> u64 {
        (self.limits.deadline.as_millis() / TICK.as_millis()).max(1) as u64
    }
}

/// Whether `bytes` start like a core module (version 1) rather than a
/// component.
fn wasmparser_is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The plugin kind a component's exports say it is.
fn kind_of(engine: &Engine, component: &Component) -> Option<PluginKind> {
    let ty = component.component_type();
    let names: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
    [
        ("processor-plugin", PluginKind::Processor),
        ("source-plugin", PluginKind::Source),
        ("sink-plugin", PluginKind::Sink),
        ("partitioner-plugin", PluginKind::Partitioner),
        ("serializer-plugin", PluginKind::Serializer),
    ]
    .into_iter()
    .find(|(interface, _)| {
        let prefix = format!("fjord:plugin/{interface}@");
        names.iter().any(|n| n.starts_with(&prefix))
    })
    .map(|(_, k)| k)
}

/// A compiled, checked WebAssembly plugin, ready to instantiate.
pub struct WasmPlugin {
    pub info: PluginInfo,
    /// Whether the compiled code was read from the cache.
    pub from_cache: bool,
    pre: instance::TypedPre,
    runtime: Arc<WasmRuntime>,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("info", &self.info)
            .finish()
    }
}
