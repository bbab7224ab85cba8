//! Plugins compiled into the binary, addressable by name.
//!
//! Each is a first-party plugin crate from `plugins/`, built with
//! `fjord-sdk`'s `embedded` feature so their C ABI symbols stay out.

use fjord_sdk::dispatch::{Builtin, SinkAdapter};

/// Every built-in plugin.
pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::of::<SinkAdapter<fjord_plugin_stdout::Stdout>>()]
}

/// The built-in called `name`.
pub fn find(name: &str) -> Option<Builtin> {
    builtins().into_iter().find(|b| (b.describe)().name == name)
}
