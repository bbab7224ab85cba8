//! `fjord-sdk`: what a Fjord plugin author depends on.
//!
//! Write a plugin once — implement [`Plugin`] and one kind trait
//! ([`Processor`], [`Source`], [`Sink`], [`Partitioner`], [`Serializer`]) and
//! put the kind's attribute on the `impl` — and build it either way:
//!
//! - `cargo build --target wasm32-wasip2` gives a sandboxed WebAssembly
//!   component implementing the WIT world of its kind (`sdk/wit`);
//! - `cargo build` of a `cdylib` gives a native library exporting Fjord's C
//!   ABI (the `fjord-plugin-abi` crate documents it).
//!
//! The same source, no `cfg` in it. [`testing`] runs a plugin natively in a
//! unit test. The guide is docs/plugins.md; `fjord plugin new` scaffolds a
//! crate.
//!
//! ```
//! use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Processor, RecordRef};
//!
//! /// Drops records without a key.
//! struct KeyedOnly;
//!
//! impl Plugin for KeyedOnly {
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("keyed-only", "0.1.0").description("drops records without a key")
//!     }
//!     fn init(_: &Config) -> Result<Self, Error> {
//!         Ok(KeyedOnly)
//!     }
//! }
//!
//! #[fjord_sdk::processor]
//! impl Processor for KeyedOnly {
//!     fn process(&mut self, r: RecordRef<'_>, out: &mut BatchWriter, _: &mut Context) -> Result<(), Error> {
//!         if r.key.is_some() {
//!             out.forward(&r);
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Not for: talking to a broker, or anything on the host side — the host
//! (`fjord-plugin-host`) depends on this crate, never the reverse, and calls
//! plugins through traits of its own. The C ABI's types are in
//! `fjord-plugin-abi`, which both sides use.

mod batch;
mod context;
mod export;
pub mod inbox;
pub mod jsonl;
#[doc(hidden)]
pub mod kinds;
mod plugin;

#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod native;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod wasm;

pub use batch::{
    BatchReader, BatchWriter, DecodeError, Header, Headers, Record, RecordRef, decode, encode,
    validate,
};
pub use context::{Context, Host, Level};
pub use fjord_sdk_macros::{partitioner, processor, serializer, sink, source};
pub use kinds::{Partitioner, Plugin, Processor, Serializer, Sink, Source};
pub use plugin::{Config, ConfigKey, Error, PluginInfo, PluginKind};

/// The wall clock in milliseconds since the Unix epoch, as record
/// timestamps count it (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
