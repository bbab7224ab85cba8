//! The plugin side of Fjord's C ABI (`fjord-plugin-abi`): what the kind
//! attributes' expansion calls from the exported `extern "C"` symbols when a
//! plugin is built as a `cdylib`.
//!
//! Plugin authors never call this; it is public only because the macros
//! expand in the plugin's crate.

mod adapter;

pub use adapter::{
    PartitionerAdapter, ProcessorAdapter, SerializerAdapter, SinkAdapter, SourceAdapter,
};
pub use fjord_plugin_abi::{ABI_VERSION, FjBuf, FjHost};

use crate::{Config, Host, Level};
use adapter::{CallError, DynPlugin, Exported, instantiate};
use fjord_plugin_abi::{
    METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM, Op, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
    STATUS_WRONG_OP, decode_pairs,
};
use std::ffi::c_void;

/// The plugin side's view of an [`FjHost`].
struct FfiHost(FjHost);

// SAFETY: the host promises `ctx` may be used from whichever thread calls the
// plugin (documented on the ABI); the plugin only uses it during a call.
unsafe impl Send for FfiHost {}

impl FfiHost {
    fn take(&self, buf: FjBuf) -> Vec<u8> {
        // SAFETY: the host filled `buf` and we hand it back to its `free`.
        let v = unsafe { buf.as_slice().to_vec() };
        unsafe { (self.0.free)(buf) };
        v
    }
}

impl Host for FfiHost {
    fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let mut out = FjBuf::EMPTY;
        // SAFETY: pointers are valid for the call; see FjHost.
        let found = unsafe { (self.0.state_get)(self.0.ctx, key.as_ptr(), key.len(), &mut out) };
        (found == 1).then(|| self.take(out))
    }
    fn state_put(&mut self, key: &[u8], value: &[u8]) {
        unsafe {
            (self.0.state_put)(
                self.0.ctx,
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
            )
        }
    }
    fn state_delete(&mut self, key: &[u8]) {
        unsafe { (self.0.state_delete)(self.0.ctx, key.as_ptr(), key.len()) }
    }
    fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = FjBuf::EMPTY;
        unsafe { (self.0.state_scan_prefix)(self.0.ctx, prefix.as_ptr(), prefix.len(), &mut out) };
        decode_pairs(&self.take(out))
    }
    fn counter(&mut self, name: &str, delta: u64) {
        unsafe {
            (self.0.metric)(
                self.0.ctx,
                METRIC_COUNTER,
                name.as_ptr(),
                name.len(),
                delta as f64,
            )
        }
    }
    fn gauge(&mut self, name: &str, value: f64) {
        unsafe { (self.0.metric)(self.0.ctx, METRIC_GAUGE, name.as_ptr(), name.len(), value) }
    }
    fn histogram(&mut self, name: &str, value: f64) {
        unsafe {
            (self.0.metric)(
                self.0.ctx,
                METRIC_HISTOGRAM,
                name.as_ptr(),
                name.len(),
                value,
            )
        }
    }
    fn log(&mut self, level: Level, message: &str) {
        unsafe { (self.0.log)(self.0.ctx, level.as_u32(), message.as_ptr(), message.len()) }
    }
}

/// What `fjord_plugin_init` returns: the plugin and the host it talks to.
struct Instance {
    plugin: Box<dyn DynPlugin>,
    host: FfiHost,
}

unsafe fn slice<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }
}

/// `fjord_plugin_describe`.
///
/// # Safety
/// `out` must be valid for writes.
pub unsafe fn describe<E: Exported>(out: *mut FjBuf) {
    let json = serde_json::to_vec(&E::describe()).unwrap_or_default();
    unsafe { out.write(FjBuf::from_vec(json)) };
}

/// `fjord_plugin_init`.
///
/// # Safety
/// Pointers as documented on the module.
pub unsafe fn init<E: Exported>(
    host: *const FjHost,
    config: *const u8,
    config_len: usize,
    position: *const u8,
    position_len: usize,
    err: *mut FjBuf,
) -> *mut c_void {
    let fail = |msg: String| {
        unsafe { err.write(FjBuf::from_vec(msg.into_bytes())) };
        std::ptr::null_mut()
    };
    if host.is_null() {
        return fail("no host".into());
    }
    let config: Config =
        match serde_json::from_slice(unsafe { slice(config, config_len) }.unwrap_or_default()) {
            Ok(c) => c,
            Err(e) => return fail(format!("config is not valid JSON: {e}")),
        };
    let position = unsafe { slice(position, position_len) };
    match instantiate::<E>(&config, position) {
        Ok(plugin) => {
            let instance = Instance {
                plugin: Box::new(plugin),
                host: FfiHost(unsafe { *host }),
            };
            Box::into_raw(Box::new(instance)).cast()
        }
        Err(CallError::Plugin(e)) => fail(e.message().to_owned()),
        Err(CallError::Panic(m)) => fail(format!("panicked in init: {m}")),
        Err(CallError::WrongOp(op)) => fail(format!("unsupported operation {op:?}")),
    }
}

/// `fjord_plugin_call`.
///
/// # Safety
/// `instance` from `init` and not dropped; pointers as documented.
#[allow(clippy::too_many_arguments)]
pub unsafe fn call(
    instance: *mut c_void,
    op: u32,
    a: *const u8,
    a_len: usize,
    b: *const u8,
    b_len: usize,
    arg: i64,
    out: *mut FjBuf,
) -> u32 {
    let Some(instance) = (unsafe { instance.cast::<Instance>().as_mut() }) else {
        unsafe { out.write(FjBuf::from_vec(b"null instance".to_vec())) };
        return STATUS_ERROR;
    };
    let Some(op) = Op::from_u32(op) else {
        unsafe {
            out.write(FjBuf::from_vec(
                format!("unknown operation {op}").into_bytes(),
            ))
        };
        return STATUS_WRONG_OP;
    };
    let (a, b) = unsafe { (slice(a, a_len), slice(b, b_len)) };
    let (status, bytes) = match instance.plugin.call(op, a, b, arg, &mut instance.host) {
        Ok(v) => (STATUS_OK, v),
        Err(CallError::Plugin(e)) => (STATUS_ERROR, e.message().as_bytes().to_vec()),
        Err(CallError::Panic(m)) => (STATUS_PANIC, m.into_bytes()),
        Err(CallError::WrongOp(op)) => (STATUS_WRONG_OP, format!("{op:?}").into_bytes()),
    };
    unsafe { out.write(FjBuf::from_vec(bytes)) };
    status
}

/// `fjord_plugin_free`.
///
/// # Safety
/// `buf` filled by this library, freed once.
pub unsafe fn free(buf: FjBuf) {
    drop(unsafe { buf.into_vec() });
}

/// `fjord_plugin_drop`.
///
/// # Safety
/// `instance` from `init`, dropped once.
pub unsafe fn drop_instance(instance: *mut c_void) {
    if !instance.is_null() {
        let instance = unsafe { Box::from_raw(instance.cast::<Instance>()) };
        // A panic must not unwind into the host.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(instance)));
    }
}
