//! What a plugin can ask of the host while it runs: state, metrics, logs.
//!
//! Plugin code talks to a [`Context`]. Built as WebAssembly, a `Context`
//! calls the component's imports; built natively (a `cdylib`, a built-in, or
//! `fjord_sdk::testing`), it calls the [`Host`] the host passed in.

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    pub fn from_u32(n: u32) -> Level {
        match n {
            0 => Level::Trace,
            1 => Level::Debug,
            2 => Level::Info,
            3 => Level::Warn,
            _ => Level::Error,
        }
    }
}

/// The services a host gives a natively running plugin. The WIT interfaces
/// `state`, `metrics` and `logging` are the same services for WebAssembly.
///
/// State is scoped by the host to the partition being processed.
pub trait Host {
    fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    fn state_put(&mut self, key: &[u8], value: &[u8]);
    fn state_delete(&mut self, key: &[u8]);
    fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
    fn counter(&mut self, name: &str, delta: u64);
    fn gauge(&mut self, name: &str, value: f64);
    fn histogram(&mut self, name: &str, value: f64);
    fn log(&mut self, level: Level, message: &str);
}

/// The plugin's handle on the host during one call.
///
/// ```
/// use fjord_sdk::{testing::TestHost, Context, Level};
/// let mut host = TestHost::default();
/// let mut ctx = Context::new(&mut host);
/// ctx.state_put(b"count", b"1");
/// ctx.counter("seen", 1);
/// ctx.log(Level::Info, "hello");
/// assert_eq!(ctx.state_get(b"count").as_deref(), Some(&b"1"[..]));
/// ```
pub struct Context<'a> {
    #[cfg(not(target_arch = "wasm32"))]
    host: &'a mut dyn Host,
    #[cfg(target_arch = "wasm32")]
    _call: std::marker::PhantomData<&'a mut ()>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl<'a> Context<'a> {
    /// A context that forwards to `host`.
    pub fn new(host: &'a mut dyn Host) -> Self {
        Context { host }
    }

    pub fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.host.state_get(key)
    }

    pub fn state_put(&mut self, key: &[u8], value: &[u8]) {
        self.host.state_put(key, value)
    }

    pub fn state_delete(&mut self, key: &[u8]) {
        self.host.state_delete(key)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.host.state_scan_prefix(prefix)
    }

    pub fn counter(&mut self, name: &str, delta: u64) {
        self.host.counter(name, delta)
    }

    pub fn gauge(&mut self, name: &str, value: f64) {
        self.host.gauge(name, value)
    }

    pub fn histogram(&mut self, name: &str, value: f64) {
        self.host.histogram(name, value)
    }

    pub fn log(&mut self, level: Level, message: &str) {
        self.host.log(level, message)
    }
}

#[cfg(target_arch = "wasm32")]
impl Context<'_> {
    #[doc(hidden)]
    pub fn wasm() -> Self {
        Context {
            _call: std::marker::PhantomData,
        }
    }

    pub fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        crate::wasm::imports::state::get(key)
    }

    pub fn state_put(&mut self, key: &[u8], value: &[u8]) {
        crate::wasm::imports::state::put(key, value)
    }

    pub fn state_delete(&mut self, key: &[u8]) {
        crate::wasm::imports::state::delete(key)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        crate::wasm::imports::state::scan_prefix(prefix)
    }

    pub fn counter(&mut self, name: &str, delta: u64) {
        crate::wasm::imports::metrics::counter(name, delta)
    }

    pub fn gauge(&mut self, name: &str, value: f64) {
        crate::wasm::imports::metrics::gauge(name, value)
    }

    pub fn histogram(&mut self, name: &str, value: f64) {
        crate::wasm::imports::metrics::histogram(name, value)
    }

    pub fn log(&mut self, level: Level, message: &str) {
        use crate::wasm::imports::logging::{self, Level as L};
        let level = match level {
            Level::Trace => L::Trace,
            Level::Debug => L::Debug,
            Level::Info => L::Info,
            Level::Warn => L::Warn,
            Level::Error => L::Error,
        };
        logging::log(level, message)
    }
}
