//! The WebAssembly side of the contract: bindings generated from
//! `sdk/wit/plugin.wit` and the glue the kind attributes expand to.
//!
//! Only compiled for `wasm32`. Plugin authors never use it directly.

pub mod processor {
    wit_bindgen::generate!({
        path: "wit",
        world: "processor",
        default_bindings_module: "fjord_sdk::wasm::processor",
        pub_export_macro: true,
        export_macro_name: "__export_processor_world",
        generate_all,
    });
}

/// The host services every world imports, shared by all worlds.
pub use processor::fjord::plugin as imports;

macro_rules! world {
    ($module:ident, $world:literal, $bindings:literal, $export:literal) => {
        pub mod $module {
            wit_bindgen::generate!({
                path: "wit",
                world: $world,
                default_bindings_module: $bindings,
                pub_export_macro: true,
                export_macro_name: $export,
                with: {
                    "fjord:plugin/types@0.1.0": crate::wasm::imports::types,
                    "fjord:plugin/state@0.1.0": crate::wasm::imports::state,
                    "fjord:plugin/metrics@0.1.0": crate::wasm::imports::metrics,
                    "fjord:plugin/logging@0.1.0": crate::wasm::imports::logging,
                },
            });
        }
    };
}

world!(
    source,
    "source",
    "fjord_sdk::wasm::source",
    "__export_source_world"
);
world!(sink, "sink", "fjord_sdk::wasm::sink", "__export_sink_world");
world!(
    partitioner,
    "partitioner",
    "fjord_sdk::wasm::partitioner",
    "__export_partitioner_world"
);
world!(
    serializer,
    "serializer",
    "fjord_sdk::wasm::serializer",
    "__export_serializer_world"
);

use crate::{Config, Error, Plugin, PluginKind};
use imports::types as wit;

/// The WIT form of a plugin's description.
pub fn describe<P: Plugin>(kind: PluginKind) -> wit::PluginInfo {
    let info = P::info();
    wit::PluginInfo {
        name: info.name,
        version: info.version,
        kind: match kind {
            PluginKind::Processor => wit::PluginKind::Processor,
            PluginKind::Source => wit::PluginKind::Source,
            PluginKind::Sink => wit::PluginKind::Sink,
            PluginKind::Partitioner => wit::PluginKind::Partitioner,
            PluginKind::Serializer => wit::PluginKind::Serializer,
        },
        description: info.description,
        config_keys: info
            .config_keys
            .into_iter()
            .map(|k| wit::ConfigKey {
                name: k.name,
                description: k.description,
                required: k.required,
                default_value: k.default_value,
            })
            .collect(),
    }
}

/// Builds the plugin from WIT config pairs.
pub fn init<P: Plugin>(config: Vec<(String, String)>) -> Result<P, String> {
    P::init(&Config::from_pairs(config)).map_err(|e| e.message().to_owned())
}

/// Runs `f` on the instance `init` stored.
pub fn with<P, T>(
    slot: &mut Option<P>,
    f: impl FnOnce(&mut P) -> Result<T, Error>,
) -> Result<T, String> {
    match slot {
        Some(p) => f(p).map_err(|e| e.message().to_owned()),
        None => Err("plugin called before init".to_owned()),
    }
}
