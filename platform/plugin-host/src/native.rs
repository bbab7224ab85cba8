//! Native plugins: a `cdylib` speaking Fjord's C ABI (`fjord-plugin-abi`),
//! loaded with libloading. The ABI's operation codes stop here: the rest of
//! the host calls a [`NativeInstance`] through the kind traits of
//! [`crate::backend`].
//!
//! Native plugins are trusted. They run in the broker's address space with
//! no sandbox, no memory limit and no deadline; a panic is caught at the ABI
//! boundary, but a segfault or an abort takes the process down. Use the
//! WebAssembly build of a plugin you do not trust.
//!
//! Loading a library runs its initialisers, so nothing is loaded before the
//! host has checked where it comes from (`plugin.native.dirs`, see
//! `policy.rs`) and, by reading the file, that it exports the ABI's
//! symbols ([`check_exports`]).

use crate::backend::{
    Backend, CallFailure, PartitionerBackend, Polled, ProcessorBackend, SerializerBackend,
    SinkBackend, SourceBackend,
};
use crate::error::{ErrorKind, PluginError};
use crate::services::Services;
use fjord_plugin_abi::{
    ABI_VERSION, AbiVersionFn, CallFn, DescribeFn, DropFn, FjBuf, FjHost, FreeFn, InitFn,
    METRIC_COUNTER, METRIC_GAUGE, Op, STATUS_OK, STATUS_PANIC, STATUS_WRONG_OP, SYMBOLS,
    decode_polled, encode_pairs,
};
use fjord_sdk::{Config, Host, Level, PluginInfo, PluginKind};
use libloading::{Library, Symbol};
use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;

/// A loaded native plugin library, with its entry points resolved.
pub struct NativeLibrary {
    init: InitFn,
    call: CallFn,
    free: FreeFn,
    drop: DropFn,
    pub info: PluginInfo,
    // Keeps the code above mapped; dropped last.
    _lib: Library,
}

impl std::fmt::Debug for NativeLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeLibrary")
            .field("info", &self.info)
            .finish()
    }
}

fn not_a_plugin(path: &Path, why: impl std::fmt::Display) -> PluginError {
    PluginError::new(
        path.display().to_string(),
        ErrorKind::NotAPlugin(why.to_string()),
    )
}

/// An error unless `path` is a shared library (ELF, Mach-O or PE) exporting
/// every symbol of the ABI. Reads the file; loads and runs nothing.
pub fn check_exports(path: &Path) -> Result<(), PluginError> {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(path).map_err(|e| {
        PluginError::new(
            path.display().to_string(),
            ErrorKind::NotFound(e.to_string()),
        )
    })?;
    let file = object::File::parse(bytes.as_slice())
        .map_err(|e| not_a_plugin(path, format!("not a shared library: {e}")))?;
    let mut exported: Vec<Vec<u8>> = file
        .exports()
        .map_err(|e| not_a_plugin(path, format!("unreadable exports: {e}")))?
        .iter()
        .map(|e| e.name().to_vec())
        .collect();
    exported.extend(
        file.dynamic_symbols()
            .filter(|s| s.is_definition() && s.is_global())
            .filter_map(|s| s.name_bytes().ok().map(<[u8]>::to_vec)),
    );
    for symbol in SYMBOLS {
        // Mach-O prefixes C names with an underscore.
        let found = exported.iter().any(|name| {
            name == symbol.as_bytes() || name.strip_prefix(b"_") == Some(symbol.as_bytes())
        });
        if !found {
            return Err(not_a_plugin(
                path,
                format!("no `{symbol}` symbol (not built with fjord-sdk?)"),
            ));
        }
    }
    Ok(())
}

impl NativeLibrary {
    /// Loads a library, checks its ABI version before calling anything
    /// else, and reads its description. The caller has checked where it
    /// comes from; this checks its exports before loading it.
    pub fn load(path: &Path) -> Result<Arc<NativeLibrary>, PluginError> {
        check_exports(path)?;
        // SAFETY: loading runs the library's initialisers; native plugins are
        // trusted code by definition (module docs), from a directory the
        // operator allowed.
        let lib = unsafe { Library::new(path) }.map_err(|e| not_a_plugin(path, e))?;
        // SAFETY: the exports were checked above and the ABI version is read
        // before anything else is called; each symbol is transmuted to the
        // signature fjord_plugin_abi declares for it, and the pointers stay
        // valid while `lib`, kept in the result, stays loaded. `describe`
        // fills `out`, which goes back to the same library's `free`.
        unsafe {
            let version: Symbol<AbiVersionFn> = lib
                .get(b"fjord_plugin_abi_version\0")
                .map_err(|_| not_a_plugin(path, "no `fjord_plugin_abi_version` symbol"))?;
            let found = version();
            if found != ABI_VERSION {
                return Err(PluginError::new(
                    path.display().to_string(),
                    ErrorKind::AbiMismatch {
                        found,
                        expected: ABI_VERSION,
                    },
                ));
            }
            let sym = |name: &[u8]| -> Result<*const (), PluginError> {
                let s: Symbol<*const ()> = lib.get(name).map_err(|_| {
                    not_a_plugin(
                        path,
                        format!(
                            "no `{}` symbol",
                            String::from_utf8_lossy(&name[..name.len() - 1])
                        ),
                    )
                })?;
                Ok(*s)
            };
            let describe: DescribeFn = std::mem::transmute(sym(b"fjord_plugin_describe\0")?);
            let init: InitFn = std::mem::transmute(sym(b"fjord_plugin_init\0")?);
            let call: CallFn = std::mem::transmute(sym(b"fjord_plugin_call\0")?);
            let free: FreeFn = std::mem::transmute(sym(b"fjord_plugin_free\0")?);
            let drop: DropFn = std::mem::transmute(sym(b"fjord_plugin_drop\0")?);
            let mut out = FjBuf::EMPTY;
            describe(&mut out);
            let info = serde_json::from_slice::<PluginInfo>(out.as_slice());
            free(out);
            let info =
                info.map_err(|e| not_a_plugin(path, format!("unreadable description: {e}")))?;
            Ok(Arc::new(NativeLibrary {
                init,
                call,
                free,
                drop,
                info,
                _lib: lib,
            }))
        }
    }

    fn take(&self, buf: FjBuf) -> Vec<u8> {
        // SAFETY: the library filled `buf` (a live buffer, or EMPTY) in the
        // call that just returned; it is read before being given back.
        let v = unsafe { buf.as_slice().to_vec() };
        // SAFETY: `buf` goes back, once, to the `free` of the library that
        // filled it, and is not used after.
        unsafe { (self.free)(buf) };
        v
    }

    /// A new instance, as the backend of the kind the library describes.
    pub fn start(
        self: &Arc<Self>,
        config: &Config,
        position: Option<&[u8]>,
        services: Services,
    ) -> Result<Backend, PluginError> {
        let instance = Box::new(self.instantiate(config, position, services)?);
        Ok(match self.info.kind {
            PluginKind::Processor => Backend::Processor(instance),
            PluginKind::Source => Backend::Source(instance),
            PluginKind::Sink => Backend::Sink(instance),
            PluginKind::Partitioner => Backend::Partitioner(instance),
            PluginKind::Serializer => Backend::Serializer(instance),
        })
    }

    /// A new instance; `services` is moved to the heap so the pointer the
    /// library keeps stays valid.
    fn instantiate(
        self: &Arc<Self>,
        config: &Config,
        position: Option<&[u8]>,
        services: Services,
    ) -> Result<NativeInstance, PluginError> {
        let services = Box::into_raw(Box::new(services));
        let host = FjHost {
            ctx: services.cast(),
            state_get,
            state_put,
            state_delete,
            state_scan_prefix,
            metric,
            log,
            free: free_host_buf,
        };
        let config = serde_json::to_vec(config)
            .map_err(|e| PluginError::new(&self.info.name, ErrorKind::Host(e.to_string())))?;
        let (pos_ptr, pos_len) = position.map_or((std::ptr::null(), 0), |p| (p.as_ptr(), p.len()));
        let mut err = FjBuf::EMPTY;
        // SAFETY: the entry point has the ABI's signature (`load`); `host`,
        // `config`, the position and `err` are live for the call, and the
        // library copies `host` rather than keeping a pointer to it.
        let instance = unsafe {
            (self.init)(
                &host,
                config.as_ptr(),
                config.len(),
                pos_ptr,
                pos_len,
                &mut err,
            )
        };
        if instance.is_null() {
            // SAFETY: from `Box::into_raw` above; a library that fails to
            // start keeps no instance, hence nothing that could use `ctx`.
            drop(unsafe { Box::from_raw(services) });
            let msg = String::from_utf8_lossy(&self.take(err)).into_owned();
            return Err(PluginError::new(&self.info.name, ErrorKind::Init(msg)));
        }
        Ok(NativeInstance {
            lib: Arc::clone(self),
            instance,
            services,
        })
    }
}

/// One instance of a native plugin.
pub struct NativeInstance {
    lib: Arc<NativeLibrary>,
    instance: *mut c_void,
    /// What the library's `FjHost::ctx` points to: from `Box::into_raw`,
    /// freed in `drop`. A raw pointer rather than a `Box` because the
    /// library's callbacks turn `ctx` into `&mut Services` during a call: a
    /// `Box`, unique by contract, would be aliased by them.
    services: *mut Services,
}

// SAFETY: the ABI requires instances to be callable from any thread (one at a
// time), like `Send` Rust plugins, which is what the SDK builds.
unsafe impl Send for NativeInstance {}

impl std::fmt::Debug for NativeInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeInstance")
            .field("plugin", &self.lib.info.name)
            .finish()
    }
}

impl Drop for NativeInstance {
    fn drop(&mut self) {
        // SAFETY: created by this library's init, dropped once.
        unsafe { (self.lib.drop)(self.instance) }
        // SAFETY: from `Box::into_raw` in `instantiate`, freed once, after
        // the library dropped the instance that could call back with it.
        drop(unsafe { Box::from_raw(self.services) });
    }
}

fn ptr_len(b: Option<&[u8]>) -> (*const u8, usize) {
    b.map_or((std::ptr::null(), 0), |b| (b.as_ptr(), b.len()))
}

impl NativeInstance {
    /// `fjord_plugin_call`: the one place an operation code is used.
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        partition: i32,
    ) -> Result<Vec<u8>, CallFailure> {
        // SAFETY: `services` is live until drop; no callback runs outside
        // `call` below, so nothing else refers to it now.
        unsafe { (*self.services).partition = partition };
        let (a, a_len) = ptr_len(a);
        let (b, b_len) = ptr_len(b);
        let mut out = FjBuf::EMPTY;
        // SAFETY: the entry point has the ABI's signature; `instance` is live
        // (dropped only in `drop`) and called from one thread at a time
        // (`&mut self`); `a`, `b` and `out` are live for the call.
        let status =
            unsafe { (self.lib.call)(self.instance, op as u32, a, a_len, b, b_len, arg, &mut out) };
        let bytes = self.lib.take(out);
        match status {
            STATUS_OK => Ok(bytes),
            STATUS_PANIC => Err(CallFailure::Fatal(ErrorKind::Panic(
                String::from_utf8_lossy(&bytes).into_owned(),
            ))),
            STATUS_WRONG_OP => Err(CallFailure::Fatal(ErrorKind::Host(format!(
                "operation {op:?} not supported"
            )))),
            _ => Err(CallFailure::Failed(
                String::from_utf8_lossy(&bytes).into_owned(),
            )),
        }
    }
}

impl ProcessorBackend for NativeInstance {
    fn process(&mut self, partition: i32, batch: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(
            Op::Process,
            Some(batch),
            None,
            i64::from(partition),
            partition,
        )
    }

    fn on_timer(&mut self, partition: i32, now_ms: i64) -> Result<Vec<u8>, CallFailure> {
        self.call(Op::OnTimer, None, None, now_ms, partition)
    }
}

impl SourceBackend for NativeInstance {
    fn poll(&mut self, max: u32) -> Result<Polled, CallFailure> {
        let out = self.call(Op::Poll, None, None, i64::from(max), 0)?;
        let (batch, position) =
            decode_polled(&out).ok_or_else(|| CallFailure::Malformed("poll result".into()))?;
        Ok(Polled {
            batch: batch.to_vec(),
            position: position.to_vec(),
        })
    }
}

impl SinkBackend for NativeInstance {
    fn write(&mut self, batch: &[u8]) -> Result<(), CallFailure> {
        self.call(Op::Write, Some(batch), None, 0, 0).map(drop)
    }

    fn flush(&mut self) -> Result<(), CallFailure> {
        self.call(Op::Flush, None, None, 0, 0).map(drop)
    }
}

impl PartitionerBackend for NativeInstance {
    fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> Result<u32, CallFailure> {
        let out = self.call(Op::Partition, key, value, i64::from(partition_count), 0)?;
        let bytes: [u8; 4] = out.as_slice().try_into().map_err(|_| {
            CallFailure::Malformed(format!("partition result of {} bytes", out.len()))
        })?;
        Ok(u32::from_le_bytes(bytes))
    }
}

impl SerializerBackend for NativeInstance {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(Op::Serialize, Some(input), None, 0, 0)
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.call(Op::Deserialize, Some(bytes), None, 0, 0)
    }
}

// The host side of FjHost. `ctx` is a NativeInstance's `services`.
// The library calls these only during a call into it (the ABI), on the
// calling thread, one at a time.

/// # Safety
/// `ctx` is a `NativeInstance`'s `services`, and the `&mut` is dropped
/// before the callback returns.
unsafe fn services<'a>(ctx: *mut c_void) -> &'a mut Services {
    // SAFETY: the caller's contract: `ctx` is live (the instance outlives
    // every call into it) and the one callback running is the only user.
    unsafe { &mut *ctx.cast::<Services>() }
}

/// # Safety
/// A non-null `ptr` points to `len` bytes the library keeps live for the
/// callback.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        &[]
    } else {
        // SAFETY: the caller's contract, non-null checked above.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

unsafe extern "C" fn state_get(
    ctx: *mut c_void,
    key: *const u8,
    key_len: usize,
    out: *mut FjBuf,
) -> u32 {
    // SAFETY: the library passes back the `ctx` it was given (see above).
    let s = unsafe { services(ctx) };
    // SAFETY: the library's `key`, live during this callback (ABI).
    match s.state_get(unsafe { bytes(key, key_len) }) {
        Some(v) => {
            // SAFETY: the library's `out`, valid for writes (ABI).
            unsafe { out.write(FjBuf::from_vec(v)) };
            1
        }
        None => 0,
    }
}

unsafe extern "C" fn state_put(
    ctx: *mut c_void,
    key: *const u8,
    key_len: usize,
    value: *const u8,
    value_len: usize,
) {
    // SAFETY: the library passes back the `ctx` it was given (see above).
    let s = unsafe { services(ctx) };
    // SAFETY: the library's `key` and `value`, live during this callback.
    let (key, value) = unsafe { (bytes(key, key_len), bytes(value, value_len)) };
    s.state_put(key, value)
}

unsafe extern "C" fn state_delete(ctx: *mut c_void, key: *const u8, key_len: usize) {
    // SAFETY: the library's `ctx` (see above) and `key`, live during this
    // callback.
    let (s, key) = unsafe { (services(ctx), bytes(key, key_len)) };
    s.state_delete(key)
}

unsafe extern "C" fn state_scan_prefix(
    ctx: *mut c_void,
    prefix: *const u8,
    prefix_len: usize,
    out: *mut FjBuf,
) {
    // SAFETY: the library's `ctx` (see above) and `prefix`, live during this
    // callback.
    let (s, prefix) = unsafe { (services(ctx), bytes(prefix, prefix_len)) };
    let pairs = s.state_scan_prefix(prefix);
    // SAFETY: the library's `out`, valid for writes (ABI).
    unsafe { out.write(FjBuf::from_vec(encode_pairs(&pairs))) }
}

unsafe extern "C" fn metric(
    ctx: *mut c_void,
    kind: u32,
    name: *const u8,
    name_len: usize,
    value: f64,
) {
    // SAFETY: the library's `ctx` (see above) and `name`, live during this
    // callback.
    let (s, name) = unsafe { (services(ctx), bytes(name, name_len)) };
    let name = String::from_utf8_lossy(name);
    match kind {
        METRIC_COUNTER => s.counter(&name, value as u64),
        METRIC_GAUGE => s.gauge(&name, value),
        _ => s.histogram(&name, value),
    }
}

unsafe extern "C" fn log(ctx: *mut c_void, level: u32, message: *const u8, message_len: usize) {
    // SAFETY: the library's `ctx` (see above) and `message`, live during
    // this callback.
    let (s, message) = unsafe { (services(ctx), bytes(message, message_len)) };
    s.log(Level::from_u32(level), &String::from_utf8_lossy(message))
}

unsafe extern "C" fn free_host_buf(buf: FjBuf) {
    // SAFETY: the ABI has the library give back, once, a buffer a callback
    // above filled with this binary's `FjBuf::from_vec`.
    drop(unsafe { buf.into_vec() })
}
