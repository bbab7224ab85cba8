//! One WebAssembly instance: a store, the typed exports of its world, and
//! the mapping of traps, deadlines and memory exhaustion to plugin errors.

use super::bindings::{self, partitioner, processor, serializer, sink, source};
use super::{StoreData, WasmPlugin};
use crate::backend::{Backend, CallFailure};
use crate::error::{ErrorKind, PluginError};
use crate::{Capabilities, Services};
use fjord_sdk::dispatch::{Op, encode_polled};
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

enum Typed {
    Processor(processor::Processor),
    Source(source::Source),
    Sink(sink::Sink),
    Partitioner(partitioner::Partitioner),
    Serializer(serializer::Serializer),
}

/// A live instance of a WebAssembly plugin.
pub struct WasmInstance {
    plugin: Arc<WasmPlugin>,
    store: Store<StoreData>,
    typed: Typed,
}

impl std::fmt::Debug for WasmInstance {
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

impl WasmInstance {
    /// Instantiates and initialises the plugin.
    pub fn new(
        plugin: &Arc<WasmPlugin>,
        config: &Config,
        position: Option<&[u8]>,
        services: Services,
        caps: &Capabilities,
    ) -> Result<WasmInstance, PluginError> {
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
            Ok(Ok(())) => Ok(WasmInstance {
                plugin: Arc::clone(plugin),
                store,
                typed,
            }),
            Ok(Err(msg)) => Err(PluginError::new(&name, ErrorKind::Init(msg))),
            Err(e) => Err(PluginError::new(&name, classify(&e, &store, plugin))),
        }
    }

    fn dispatch(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        partition: i32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let store = &mut self.store;
        let a_bytes = a.unwrap_or_default();
        let wrong = || {
            Ok(Err(format!(
                "operation {op:?} is not part of this plugin's world"
            )))
        };
        match (&self.typed, op) {
            (Typed::Processor(p), Op::Process) => p
                .fjord_plugin_processor_plugin()
                .call_process(store, partition, a_bytes),
            (Typed::Processor(p), Op::OnTimer) => p
                .fjord_plugin_processor_plugin()
                .call_on_timer(store, partition, arg),
            (Typed::Source(p), Op::Poll) => {
                let max = u32::try_from(arg).unwrap_or(u32::MAX);
                Ok(p.fjord_plugin_source_plugin()
                    .call_poll(store, max)?
                    .map(|polled| encode_polled(&polled.batch, &polled.position)))
            }
            (Typed::Sink(p), Op::Write) => Ok(p
                .fjord_plugin_sink_plugin()
                .call_write(store, a_bytes)?
                .map(|()| Vec::new())),
            (Typed::Sink(p), Op::Flush) => Ok(p
                .fjord_plugin_sink_plugin()
                .call_flush(store)?
                .map(|()| Vec::new())),
            (Typed::Partitioner(p), Op::Partition) => {
                let count = u32::try_from(arg).unwrap_or(u32::MAX);
                Ok(Ok(p
                    .fjord_plugin_partitioner_plugin()
                    .call_partition(store, a, b, count)?
                    .to_le_bytes()
                    .to_vec()))
            }
            (Typed::Serializer(p), Op::Serialize) => p
                .fjord_plugin_serializer_plugin()
                .call_serialize(store, a_bytes),
            (Typed::Serializer(p), Op::Deserialize) => p
                .fjord_plugin_serializer_plugin()
                .call_deserialize(store, a_bytes),
            _ => wrong(),
        }
    }
}

impl Backend for WasmInstance {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        partition: i32,
    ) -> Result<Vec<u8>, CallFailure> {
        self.store.data_mut().services.partition = partition;
        self.store
            .set_epoch_deadline(self.plugin.runtime.deadline_ticks());
        match self.dispatch(op, a, b, arg, partition) {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(msg)) => Err(CallFailure::Failed(msg)),
            Err(e) => Err(CallFailure::Fatal(classify(&e, &self.store, &self.plugin))),
        }
    }
}
