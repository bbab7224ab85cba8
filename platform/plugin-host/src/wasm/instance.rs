//! One WebAssembly instance: a store, the typed exports of its world, and
//! the mapping of traps, deadlines and memory exhaustion to plugin errors.
//! Each world's exports implement the kind trait of [`crate::backend`].

use super::bindings::{self, partitioner, processor, serializer, sink, source};
use super::{StoreData, WasmPlugin};
use crate::backend::{
    Backend, CallFailure, PartitionerBackend, Polled, ProcessorBackend, SerializerBackend,
    SinkBackend, SourceBackend,
};
use crate::error::{ErrorKind, PluginError};
use crate::{Capabilities, Services};
use fjord_sdk::{Config, PluginInfo, PluginKind};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::InstancePre;

/// Pre-linked instantiation of each world.
pub enum TypedPre {
    Processor(processor::ProcessorPre<StoreData>),
    Source(source::SourcePre<StoreData>),
    Sink(sink::SinkPre<StoreData>),
    Partitioner(partitioner::PartitionerPre<StoreData>),
    Serializer(serializer::SerializerPre<StoreData>),
}

impl TypedPre {
    pub fn new(kind: PluginKind, pre: InstancePre<StoreData>) -> wasmtime::Result<TypedPre> {
        Ok(match kind {
            PluginKind::Processor => TypedPre::Processor(processor::ProcessorPre::new(pre)?),
            PluginKind::Source => TypedPre::Source(source::SourcePre::new(pre)?),
            PluginKind::Sink => TypedPre::Sink(sink::SinkPre::new(pre)?),
            PluginKind::Partitioner => {
                TypedPre::Partitioner(partitioner::PartitionerPre::new(pre)?)
            }
            PluginKind::Serializer => TypedPre::Serializer(serializer::SerializerPre::new(pre)?),
        })
    }

    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<Typed> {
        Ok(match self {
            TypedPre::Processor(p) => Typed::Processor(p.instantiate(store)?),
            TypedPre::Source(p) => Typed::Source(p.instantiate(store)?),
            TypedPre::Sink(p) => Typed::Sink(p.instantiate(store)?),
            TypedPre::Partitioner(p) => Typed::Partitioner(p.instantiate(store)?),
            TypedPre::Serializer(p) => Typed::Serializer(p.instantiate(store)?),
        })
    }
}

/// The exports of an instantiated component, by world.
enum Typed {
    Processor(processor::Processor),
    Source(source::Source),
    Sink(sink::Sink),
    Partitioner(partitioner::Partitioner),
    Serializer(serializer::Serializer),
}

/// A live instance of a WebAssembly plugin whose exports are `W`, the
/// bindings of its world.
pub struct WasmInstance<W> {
    plugin: Arc<WasmPlugin>,
    store: Store<StoreData>,
    exports: W,
}

impl<W> std::fmt::Debug for WasmInstance<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmInstance")
            .field("plugin", &self.plugin.info.name)
            .finish()
    }
}

/// What a failed wasmtime call means, given the store it ran in.
fn classify(err: &wasmtime::Error, store: &Store<StoreData>, plugin: &WasmPlugin) -> ErrorKind {
    let data = store.data();
    if data.limiter.exceeded {
        return ErrorKind::OutOfMemory(data.limiter.limit as u64);
    }
    if matches!(
        err.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        return ErrorKind::Deadline(plugin.runtime.limits.deadline);
    }
    let stderr = data.stderr.contents();
    let stderr = String::from_utf8_lossy(&stderr);
    let stderr = stderr.trim();
    if stderr.is_empty() {
        ErrorKind::Trap(format!("{err:#}"))
    } else {
        // A Rust guest prints its panic message before it traps.
        ErrorKind::Trap(format!("{}; stderr: {stderr}", err.root_cause()))
    }
}

/// Instantiates `plugin` just to read its description.
pub fn describe(plugin: &WasmPlugin) -> Result<PluginInfo, PluginError> {
    let name = plugin.info.name.clone();
    let mut store = plugin
        .runtime
        .store(Services::in_memory(&name), &Capabilities::default())?;
    store.set_epoch_deadline(plugin.runtime.deadline_ticks());
    let fail = |e: wasmtime::Error, store: &Store<StoreData>| {
        PluginError::new(&name, classify(&e, store, plugin))
    };
    let typed = match plugin.pre.instantiate(&mut store) {
        Ok(t) => t,
        Err(e) => return Err(fail(e, &store)),
    };
    let info = match &typed {
        Typed::Processor(p) => p.fjord_plugin_processor_plugin().call_describe(&mut store),
        Typed::Source(p) => p.fjord_plugin_source_plugin().call_describe(&mut store),
        Typed::Sink(p) => p.fjord_plugin_sink_plugin().call_describe(&mut store),
        Typed::Partitioner(p) => p
            .fjord_plugin_partitioner_plugin()
            .call_describe(&mut store),
        Typed::Serializer(p) => p.fjord_plugin_serializer_plugin().call_describe(&mut store),
    };
    info.map(bindings::plugin_info).map_err(|e| fail(e, &store))
}

/// Instantiates and initialises `plugin` as the backend of its world.
pub fn start(
    plugin: &Arc<WasmPlugin>,
    config: &Config,
    position: Option<&[u8]>,
    services: Services,
    caps: &Capabilities,
) -> Result<Backend, PluginError> {
    let name = plugin.info.name.clone();
    let mut store = plugin.runtime.store(services, caps)?;
    store.set_epoch_deadline(plugin.runtime.deadline_ticks());
    let typed = match plugin.pre.instantiate(&mut store) {
        Ok(t) => t,
        Err(e) => return Err(PluginError::new(&name, classify(&e, &store, plugin))),
    };
    let pairs = config.pairs();
    let result = match &typed {
        Typed::Processor(p) => p
            .fjord_plugin_processor_plugin()
            .call_init(&mut store, pairs),
        Typed::Source(p) => p
            .fjord_plugin_source_plugin()
            .call_init(&mut store, pairs, position),
        Typed::Sink(p) => p.fjord_plugin_sink_plugin().call_init(&mut store, pairs),
        Typed::Partitioner(p) => p
            .fjord_plugin_partitioner_plugin()
            .call_init(&mut store, pairs),
        Typed::Serializer(p) => p
            .fjord_plugin_serializer_plugin()
            .call_init(&mut store, pairs),
    };
    match result {
        Ok(Ok(())) => {}
        Ok(Err(msg)) => return Err(PluginError::new(&name, ErrorKind::Init(msg))),
        Err(e) => return Err(PluginError::new(&name, classify(&e, &store, plugin))),
    }
    let plugin = Arc::clone(plugin);
    fn boxed<W>(
        plugin: Arc<WasmPlugin>,
        store: Store<StoreData>,
        exports: W,
    ) -> Box<WasmInstance<W>> {
        Box::new(WasmInstance {
            plugin,
            store,
            exports,
        })
    }
    Ok(match typed {
        Typed::Processor(w) => Backend::Processor(boxed(plugin, store, w)),
        Typed::Source(w) => Backend::Source(boxed(plugin, store, w)),
        Typed::Sink(w) => Backend::Sink(boxed(plugin, store, w)),
        Typed::Partitioner(w) => Backend::Partitioner(boxed(plugin, store, w)),
        Typed::Serializer(w) => Backend::Serializer(boxed(plugin, store, w)),
    })
}

impl<W> WasmInstance<W> {
    /// Runs one export under a fresh deadline, with state scoped to
    /// `partition`; a trap, deadline or memory exhaustion is fatal.
    fn call<T>(
        &mut self,
        partition: i32,
        f: impl FnOnce(&W, &mut Store<StoreData>) -> wasmtime::Result<Result<T, String>>,
    ) -> Result<T, CallFailure> {
        self.store.data_mut().services.partition = partition;
        self.store
            .set_epoch_deadline(self.plugin.runtime.deadline_ticks());
        match f(&self.exports, &mut self.store) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(msg)) => Err(CallFailure::Failed(msg)),
            Err(e) => Err(CallFailure::Fatal(classify(&e, &self.store, &self.plugin))),
        }
    }
}

impl ProcessorBackend for WasmInstance<processor::Processor> {
    fn process(&mut self, partition: i32, batch: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(partition, |w, store| {
            w.fjord_plugin_processor_plugin()
                .call_process(store, partition, batch)
        })
    }

    fn on_timer(&mut self, partition: i32, now_ms: i64) -> Result<Vec<u8>, CallFailure> {
        self.call(partition, |w, store| {
            w.fjord_plugin_processor_plugin()
                .call_on_timer(store, partition, now_ms)
        })
    }
}

impl SourceBackend for WasmInstance<source::Source> {
    fn poll(&mut self, max: u32) -> Result<Polled, CallFailure> {
        self.call(0, |w, store| {
            Ok(w.fjord_plugin_source_plugin()
                .call_poll(store, max)?
                .map(|p| Polled {
                    batch: p.batch,
                    position: p.position,
                }))
        })
    }
}

impl SinkBackend for WasmInstance<sink::Sink> {
    fn write(&mut self, batch: &[u8]) -> Result<(), CallFailure> {
        self.call(0, |w, store| {
            w.fjord_plugin_sink_plugin().call_write(store, batch)
        })
    }

    fn flush(&mut self) -> Result<(), CallFailure> {
        self.call(0, |w, store| w.fjord_plugin_sink_plugin().call_flush(store))
    }
}

impl PartitionerBackend for WasmInstance<partitioner::Partitioner> {
    fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> Result<u32, CallFailure> {
        self.call(0, |w, store| {
            Ok(Ok(w.fjord_plugin_partitioner_plugin().call_partition(
                store,
                key,
                value,
                partition_count,
            )?))
        })
    }
}

impl SerializerBackend for WasmInstance<serializer::Serializer> {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(0, |w, store| {
            w.fjord_plugin_serializer_plugin()
                .call_serialize(store, input)
        })
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(0, |w, store| {
            w.fjord_plugin_serializer_plugin()
                .call_deserialize(store, bytes)
        })
    }
}
