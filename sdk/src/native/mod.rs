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
        // SAFETY: the host filled `buf` (a live buffer, or EMPTY) during the
        // call that just returned; it is read before being given back.
        let v = unsafe { buf.as_slice().to_vec() };
        // SAFETY: `buf` goes back, once, to the `free` of the host that
        // filled it, and is not used after.
        unsafe { (self.0.free)(buf) };
        v
    }
}

impl Host for FfiHost {
    fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let mut out = FjBuf::EMPTY;
        // SAFETY: `ctx` is the host's, passed back as is (FjHost); `key` and
        // `out` are live for the whole call, which the host does not keep.
        let found = unsafe { (self.0.state_get)(self.0.ctx, key.as_ptr(), key.len(), &mut out) };
        (found == 1).then(|| self.take(out))
    }
    fn state_put(&mut self, key: &[u8], value: &[u8]) {
        // SAFETY: `ctx` is the host's; `key` and `value` outlive the call,
        // and the host copies what it keeps.
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
        // SAFETY: `ctx` is the host's; `key` outlives the call.
        unsafe { (self.0.state_delete)(self.0.ctx, key.as_ptr(), key.len()) }
    }
    fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = FjBuf::EMPTY;
        // SAFETY: `ctx` is the host's; `prefix` and `out` outlive the call.
        unsafe { (self.0.state_scan_prefix)(self.0.ctx, prefix.as_ptr(), prefix.len(), &mut out) };
        decode_pairs(&self.take(out))
    }
    fn counter(&mut self, name: &str, delta: u64) {
        // SAFETY: `ctx` is the host's; `name` outlives the call.
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
        // SAFETY: `ctx` is the host's; `name` outlives the call.
        unsafe { (self.0.metric)(self.0.ctx, METRIC_GAUGE, name.as_ptr(), name.len(), value) }
    }
    fn histogram(&mut self, name: &str, value: f64) {
        // SAFETY: `ctx` is the host's; `name` outlives the call.
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
        // SAFETY: `ctx` is the host's; `message` outlives the call.
        unsafe { (self.0.log)(self.0.ctx, level.as_u32(), message.as_ptr(), message.len()) }
    }
}

/// What `fjord_plugin_init` returns: the plugin and the host it talks to.
struct Instance {
    plugin: Box<dyn DynPlugin>,
    host: FfiHost,
}

/// # Safety
/// A non-null `ptr` points to `len` readable bytes, live for `'a`.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-null; the ABI (fjord-plugin-abi) has the host pass
        // `len` readable bytes at `ptr`, live for the call this slice is
        // used in.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }
}

/// `fjord_plugin_describe`.
///
/// # Safety
/// `out` must be valid for writes.
pub unsafe fn describe<E: Exported>(out: *mut FjBuf) {
    let json = serde_json::to_vec(&E::describe()).unwrap_or_default();
    // SAFETY: the caller's contract: `out` is valid for writes.
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
        // SAFETY: the caller's contract: `err` is valid for writes.
        unsafe { err.write(FjBuf::from_vec(msg.into_bytes())) };
        std::ptr::null_mut()
    };
    if host.is_null() {
        return fail("no host".into());
    }
    // SAFETY: `config`/`config_len` describe the host's buffer (ABI), only
    // read while parsing below.
    let config = unsafe { slice(config, config_len) }.unwrap_or_default();
    let config: Config = match serde_json::from_slice(config) {
        Ok(c) => c,
        Err(e) => return fail(format!("config is not valid JSON: {e}")),
    };
    // SAFETY: `position`/`position_len` describe the host's buffer or are
    // null (ABI); the slice is only read during `instantiate`.
    let position = unsafe { slice(position, position_len) };
    match instantiate::<E>(&config, position) {
        Ok(plugin) => {
            let instance = Instance {
                plugin: Box::new(plugin),
                // SAFETY: checked non-null above; the host passes a live
                // FjHost, copied here (it is `Copy`) so the host need not keep it.
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
    // SAFETY: the caller's contract: a non-null `instance` is the live Box
    // `init` leaked, and the host calls one instance from one thread at a
    // time, so this is the only reference to it.
    let Some(instance) = (unsafe { instance.cast::<Instance>().as_mut() }) else {
        // SAFETY: the caller's contract: `out` is valid for writes.
        unsafe { out.write(FjBuf::from_vec(b"null instance".to_vec())) };
        return STATUS_ERROR;
    };
    let Some(op) = Op::from_u32(op) else {
        // SAFETY: the caller's contract: `out` is valid for writes.
        unsafe {
            out.write(FjBuf::from_vec(
                format!("unknown operation {op}").into_bytes(),
            ))
        };
        return STATUS_WRONG_OP;
    };
    // SAFETY: `a`/`b` describe the host's buffers or are null (ABI); the
    // slices are dropped before this call returns.
    let (a, b) = unsafe { (slice(a, a_len), slice(b, b_len)) };
    let (status, bytes) = match instance.plugin.call(op, a, b, arg, &mut instance.host) {
        Ok(v) => (STATUS_OK, v),
        Err(CallError::Plugin(e)) => (STATUS_ERROR, e.message().as_bytes().to_vec()),
        Err(CallError::Panic(m)) => (STATUS_PANIC, m.into_bytes()),
        Err(CallError::WrongOp(op)) => (STATUS_WRONG_OP, format!("{op:?}").into_bytes()),
    };
    // SAFETY: the caller's contract: `out` is valid for writes.
    unsafe { out.write(FjBuf::from_vec(bytes)) };
    status
}

/// `fjord_plugin_free`.
///
/// # Safety
/// `buf` filled by this library, freed once.
pub unsafe fn free(buf: FjBuf) {
    // SAFETY: the caller's contract: this library's `from_vec` made `buf`,
    // and it is freed once.
    drop(unsafe { buf.into_vec() });
}

/// `fjord_plugin_drop`.
///
/// # Safety
/// `instance` from `init`, dropped once.
pub unsafe fn drop_instance(instance: *mut c_void) {
    if !instance.is_null() {
        // SAFETY: the caller's contract: the Box `init` leaked, dropped once
        // and not called after.
        let instance = unsafe { Box::from_raw(instance.cast::<Instance>()) };
        // A panic must not unwind into the host.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(instance)));
    }
}
