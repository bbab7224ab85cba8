//! `fjord-plugin-abi`: Fjord's C ABI for native plugins (a `cdylib`).
//!
//! The `extern "C"` types, symbols and byte layouts that both sides of the
//! boundary share: `fjord-sdk` exports them from a plugin (its kind
//! attributes generate the symbols), `fjord-plugin-host` loads and calls
//! them. Nothing else lives here, so neither side depends on the other's
//! code to agree on the contract.
//!
//! A native plugin exports these symbols:
//!
//! | symbol | signature |
//! |---|---|
//! | `fjord_plugin_abi_version` | `() -> u32` — must equal [`ABI_VERSION`]; checked before anything else is called |
//! | `fjord_plugin_describe` | `(out: *mut FjBuf)` — the plugin's description (`fjord_sdk::PluginInfo`) as JSON |
//! | `fjord_plugin_init` | `(host: *const FjHost, config: *const u8, config_len: usize, position: *const u8, position_len: usize, err: *mut FjBuf) -> *mut c_void` — config as JSON `{"pairs": [[k, v], …]}`; `position` null when none; null return = error in `err` |
//! | `fjord_plugin_call` | `(instance, op: u32, a, a_len, b, b_len, arg: i64, out: *mut FjBuf) -> u32` — see [`Op`]; a null `a`/`b` is "none"; status [`STATUS_OK`], [`STATUS_ERROR`], [`STATUS_PANIC`], [`STATUS_WRONG_OP`] with a message in `out` |
//! | `fjord_plugin_free` | `(buf: FjBuf)` — frees a buffer the plugin filled |
//! | `fjord_plugin_drop` | `(instance)` |
//!
//! The host promises that an instance is called from one thread at a time
//! (not always the same one), and that `FjHost::ctx` is valid for any call
//! made during a call into the plugin.
//!
//! Native plugins run inside the broker process and are trusted: they are not
//! sandboxed and a crash in one (as opposed to a panic, which is caught) is a
//! crash of the broker.
//!
//! Not for: plugin authors (they implement `fjord-sdk`'s kind traits and
//! never see this) or the host's callers (they call `fjord-plugin-host`'s
//! typed methods). The operation codes of [`Op`] exist only on this
//! boundary.

use std::ffi::c_void;

/// The version of this ABI. A host refuses a library that reports another.
pub const ABI_VERSION: u32 = 1;

/// `fjord_plugin_call` succeeded; `out` holds the result.
pub const STATUS_OK: u32 = 0;
/// The plugin returned an error (message in `out`); the instance is still good.
pub const STATUS_ERROR: u32 = 1;
/// The plugin panicked (message in `out`); the instance must not be called again.
pub const STATUS_PANIC: u32 = 2;
/// The operation is not one of the plugin's kind.
pub const STATUS_WRONG_OP: u32 = 3;

/// The operations of all kinds, as `fjord_plugin_call` numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// processor: `a` = batch, `arg` = partition → batch
    Process = 1,
    /// processor: `arg` = now (ms) → batch
    OnTimer = 2,
    /// source: `arg` = max records → [`encode_polled`]
    Poll = 3,
    /// sink: `a` = batch → nothing
    Write = 4,
    /// sink: → nothing
    Flush = 5,
    /// partitioner: `a` = key, `b` = value, `arg` = partition count → u32 LE
    Partition = 6,
    /// serializer: `a` = input → bytes
    Serialize = 7,
    /// serializer: `a` = bytes → output
    Deserialize = 8,
}

impl Op {
    pub fn from_u32(n: u32) -> Option<Op> {
        Some(match n {
            1 => Op::Process,
            2 => Op::OnTimer,
            3 => Op::Poll,
            4 => Op::Write,
            5 => Op::Flush,
            6 => Op::Partition,
            7 => Op::Serialize,
            8 => Op::Deserialize,
            _ => return None,
        })
    }
}

/// A byte buffer handed across the ABI; freed by the side that filled it.
#[repr(C)]
#[derive(Debug)]
pub struct FjBuf {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl FjBuf {
    pub const EMPTY: FjBuf = FjBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    pub fn from_vec(v: Vec<u8>) -> FjBuf {
        let mut v = std::mem::ManuallyDrop::new(v);
        FjBuf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Takes back a buffer made by [`FjBuf::from_vec`] in the same binary.
    ///
    /// # Safety
    /// `self` must come from `from_vec` of the binary calling this, once.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the caller promises ptr/len/cap are those of a Vec of this
        // binary's allocator, given up once by `from_vec`.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// The bytes, without taking ownership.
    ///
    /// # Safety
    /// `ptr`/`len` must describe live memory.
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the caller promises the memory is live for `len` bytes.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// `FjHost::metric`'s `kind` for a counter (`value` is the delta).
pub const METRIC_COUNTER: u32 = 0;
/// `FjHost::metric`'s `kind` for a gauge.
pub const METRIC_GAUGE: u32 = 1;
/// `FjHost::metric`'s `kind` for a histogram observation.
pub const METRIC_HISTOGRAM: u32 = 2;

/// The host's services as C function pointers; `ctx` is passed back as is.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FjHost {
    pub ctx: *mut c_void,
    /// Returns 1 and fills `out` when the key exists, else 0.
    pub state_get: unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        out: *mut FjBuf,
    ) -> u32,
    pub state_put: unsafe extern "C" fn(
        ctx: *mut c_void,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ),
    pub state_delete: unsafe extern "C" fn(ctx: *mut c_void, key: *const u8, key_len: usize),
    /// Fills `out` with [`encode_pairs`].
    pub state_scan_prefix: unsafe extern "C" fn(
        ctx: *mut c_void,
        prefix: *const u8,
        prefix_len: usize,
        out: *mut FjBuf,
    ),
    /// `kind`: [`METRIC_COUNTER`] (value = delta), [`METRIC_GAUGE`],
    /// [`METRIC_HISTOGRAM`].
    pub metric: unsafe extern "C" fn(
        ctx: *mut c_void,
        kind: u32,
        name: *const u8,
        name_len: usize,
        value: f64,
    ),
    pub log:
        unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: *const u8, message_len: usize),
    /// Frees a buffer the host filled.
    pub free: unsafe extern "C" fn(buf: FjBuf),
}

/// `fjord_plugin_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// `fjord_plugin_describe`.
pub type DescribeFn = unsafe extern "C" fn(out: *mut FjBuf);
/// `fjord_plugin_init`.
pub type InitFn = unsafe extern "C" fn(
    host: *const FjHost,
    config: *const u8,
    config_len: usize,
    position: *const u8,
    position_len: usize,
    err: *mut FjBuf,
) -> *mut c_void;
/// `fjord_plugin_call`.
pub type CallFn = unsafe extern "C" fn(
    instance: *mut c_void,
    op: u32,
    a: *const u8,
    a_len: usize,
    b: *const u8,
    b_len: usize,
    arg: i64,
    out: *mut FjBuf,
) -> u32;
/// `fjord_plugin_free`.
pub type FreeFn = unsafe extern "C" fn(buf: FjBuf);
/// `fjord_plugin_drop`.
pub type DropFn = unsafe extern "C" fn(instance: *mut c_void);

/// The symbols every native plugin exports.
pub const SYMBOLS: [&str; 6] = [
    "fjord_plugin_abi_version",
    "fjord_plugin_describe",
    "fjord_plugin_init",
    "fjord_plugin_call",
    "fjord_plugin_free",
    "fjord_plugin_drop",
];

/// The layout of [`FjHost::state_scan_prefix`]'s result:
/// `count:u32 (len:u32 key len:u32 value)*`, little-endian.
pub fn encode_pairs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Reads [`encode_pairs`]; a truncated tail is dropped.
pub fn decode_pairs(mut buf: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn take<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
        let out = buf.get(4..4 + n)?;
        *buf = &buf[4 + n..];
        Some(out)
    }
    let mut out = Vec::new();
    if buf.len() < 4 {
        return out;
    }
    buf = &buf[4..];
    while let (Some(k), Some(v)) = (take(&mut buf), take(&mut buf)) {
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

/// The result of [`Op::Poll`]: `position-length:u32 LE, position, batch`.
pub fn encode_polled(batch: &[u8], position: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + position.len() + batch.len());
    out.extend_from_slice(&(position.len() as u32).to_le_bytes());
    out.extend_from_slice(position);
    out.extend_from_slice(batch);
    out
}

/// Splits the result of [`Op::Poll`] into `(batch, position)`.
pub fn decode_polled(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = u32::from_le_bytes(out.get(..4)?.try_into().ok()?) as usize;
    let position = out.get(4..4usize.checked_add(n)?)?;
    Some((&out[4 + n..], position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_numbers_round_trip_and_unknown_ones_are_refused() {
        for n in 1..=8 {
            assert_eq!(Op::from_u32(n).map(|op| op as u32), Some(n));
        }
        assert_eq!(Op::from_u32(0), None);
        assert_eq!(Op::from_u32(9), None);
    }

    #[test]
    fn pairs_and_polls_round_trip() {
        let pairs = vec![(b"k".to_vec(), b"v".to_vec()), (Vec::new(), b"x".to_vec())];
        assert_eq!(decode_pairs(&encode_pairs(&pairs)), pairs);
        let polled = encode_polled(b"batch", b"pos");
        assert_eq!(decode_polled(&polled), Some((&b"batch"[..], &b"pos"[..])));
        assert_eq!(decode_polled(&[9, 0, 0, 0, 1]), None);
    }
}
