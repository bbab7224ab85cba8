//! Host bindings generated from `sdk/wit/plugin.wit`, and the host side of
//! its imports.

use super::StoreData;
use fjord_sdk::{Host as _, Level};

pub mod processor {
    wasmtime::component::bindgen!({
        path: "../../sdk/wit",
        world: "processor",
    });
}

macro_rules! world {
    ($module:ident, $world:literal) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                path: "../../sdk/wit",
                world: $world,
                with: {
                    "fjord:plugin/types": super::processor::fjord::plugin::types,
                    "fjord:plugin/state": super::processor::fjord::plugin::state,
                    "fjord:plugin/metrics": super::processor::fjord::plugin::metrics,
                    "fjord:plugin/logging": super::processor::fjord::plugin::logging,
                },
            });
        }
    };
}

world!(source, "source");
world!(sink, "sink");
world!(partitioner, "partitioner");
world!(serializer, "serializer");

use processor::fjord::plugin::{logging, metrics, state, types};

impl types::Host for StoreData {}

impl state::Host for StoreData {
    fn get(&mut self, key: Vec<u8>) -> Option<Vec<u8>> {
        self.services.state_get(&key)
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.services.state_put(&key, &value)
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.services.state_delete(&key)
    }
    fn scan_prefix(&mut self, prefix: Vec<u8>) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.services.state_scan_prefix(&prefix)
    }
}

impl metrics::Host for StoreData {
    fn counter(&mut self, name: String, delta: u64) {
        self.services.counter(&name, delta)
    }
    fn gauge(&mut self, name: String, value: f64) {
        self.services.gauge(&name, value)
    }
    fn histogram(&mut self, name: String, value: f64) {
        self.services.histogram(&name, value)
    }
}

impl logging::Host for StoreData {
    fn log(&mut self, level: logging::Level, message: String) {
        let level = match level {
            logging::Level::Trace => Level::Trace,
            logging::Level::Debug => Level::Debug,
            logging::Level::Info => Level::Info,
            logging::Level::Warn => Level::Warn,
            logging::Level::Error => Level::Error,
        };
        self.services.log(level, &message)
    }
}

/// Adds the Fjord imports (not WASI) to a linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<StoreData>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    types::add_to_linker::<_, HasSelf<_>>(linker, |d| d)?;
    state::add_to_linker::<_, HasSelf<_>>(linker, |d| d)?;
    metrics::add_to_linker::<_, HasSelf<_>>(linker, |d| d)?;
    logging::add_to_linker::<_, HasSelf<_>>(linker, |d| d)?;
    Ok(())
}

/// The SDK's description from the WIT one.
pub fn plugin_info(info: types::PluginInfo) -> fjord_sdk::PluginInfo {
    use fjord_sdk::PluginKind as K;
    fjord_sdk::PluginInfo {
        name: info.name,
        version: info.version,
        kind: match info.kind {
            types::PluginKind::Processor => K::Processor,
            types::PluginKind::Source => K::Source,
            types::PluginKind::Sink => K::Sink,
            types::PluginKind::Partitioner => K::Partitioner,
            types::PluginKind::Serializer => K::Serializer,
        },
        description: info.description,
        config_keys: info
            .config_keys
            .into_iter()
            .map(|k| fjord_sdk::ConfigKey {
                name: k.name,
                description: k.description,
                required: k.required,
                default_value: k.default_value,
            })
            .collect(),
    }
}
