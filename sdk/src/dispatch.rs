//! One object-safe entry point over the five kind traits.
//!
//! The C ABI export and the host's built-ins both call a plugin through
//! [`DynPlugin::call`], so a built-in and a native build of the same plugin
//! run the same code. (WebAssembly calls the kind traits through the
//! component's typed exports instead, in [`crate::wasm`].)

use crate::{
    Config, Context, Error, Host, Partitioner, PluginInfo, PluginKind, Processor, Serializer, Sink,
    Source, kinds,
};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The operations of all kinds. The numbers are part of the C ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Op {
    /// processor: `a` = batch, `arg` = partition → batch
    Process = 1,
    /// processor: `arg` = now (ms) → batch
    OnTimer = 2,
    /// source: `arg` = max records → position-length:u32, position, batch
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

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The plugin returned an error.
    Plugin(Error),
    /// The plugin panicked; the instance must not be used again.
    Panic(String),
    /// The operation does not belong to the plugin's kind.
    WrongOp(Op),
}

/// A plugin instance behind one object-safe method.
pub trait DynPlugin: Send {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        host: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError>;
}

/// A plugin type that can be instantiated through [`DynPlugin`].
pub trait Exported: DynPlugin + Sized + 'static {
    const KIND: PluginKind;
    fn describe() -> PluginInfo;
    fn new(config: &Config, position: Option<&[u8]>) -> Result<Self, Error>;
}

fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, CallError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(CallError::Plugin),
        Err(payload) => Err(CallError::Panic(panic_message(&*payload))),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Builds an instance, catching a panic in `init`.
pub fn instantiate<E: Exported>(config: &Config, position: Option<&[u8]>) -> Result<E, CallError> {
    guarded(|| E::new(config, position))
}

macro_rules! adapter {
    ($(#[$doc:meta])* $name:ident, $bound:ident, $kind:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T: $bound> Exported for $name<T> {
            const KIND: PluginKind = PluginKind::$kind;
            fn describe() -> PluginInfo {
                T::info().with_kind(PluginKind::$kind)
            }
            fn new(config: &Config, position: Option<&[u8]>) -> Result<Self, Error> {
                adapter!(@new $kind, T, config, position)
            }
        }
    };
    (@new Source, $t:ty, $config:ident, $position:ident) => {{
        let mut s = <$t>::init($config)?;
        if let Some(p) = $position {
            s.seek(p)?;
        }
        Ok(SourceAdapter(s))
    }};
    (@new $kind:ident, $t:ty, $config:ident, $position:ident) => {{
        let _ = $position;
        Ok(Self(<$t>::init($config)?))
    }};
}

adapter!(
    /// A [`Processor`] as a [`DynPlugin`].
    ProcessorAdapter, Processor, Processor
);
adapter!(
    /// A [`Source`] as a [`DynPlugin`].
    SourceAdapter, Source, Source
);
adapter!(
    /// A [`Sink`] as a [`DynPlugin`].
    SinkAdapter, Sink, Sink
);
adapter!(
    /// A [`Partitioner`] as a [`DynPlugin`].
    PartitionerAdapter, Partitioner, Partitioner
);
adapter!(
    /// A [`Serializer`] as a [`DynPlugin`].
    SerializerAdapter, Serializer, Serializer
);

fn bytes(a: Option<&[u8]>) -> &[u8] {
    a.unwrap_or_default()
}

impl<T: Processor> DynPlugin for ProcessorAdapter<T> {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        _: Option<&[u8]>,
        arg: i64,
        host: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError> {
        let mut ctx = Context::new(host);
        match op {
            Op::Process => guarded(|| kinds::run_process(&mut self.0, bytes(a), &mut ctx)),
            Op::OnTimer => guarded(|| kinds::run_timer(&mut self.0, arg, &mut ctx)),
            other => Err(CallError::WrongOp(other)),
        }
    }
}

impl<T: Source> DynPlugin for SourceAdapter<T> {
    fn call(
        &mut self,
        op: Op,
        _: Option<&[u8]>,
        _: Option<&[u8]>,
        arg: i64,
        host: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError> {
        let mut ctx = Context::new(host);
        match op {
            Op::Poll => guarded(|| {
                let max = u32::try_from(arg).unwrap_or(u32::MAX);
                let (batch, position) = kinds::run_poll(&mut self.0, max, &mut ctx)?;
                Ok(encode_polled(&batch, &position))
            }),
            other => Err(CallError::WrongOp(other)),
        }
    }
}

impl<T: Sink> DynPlugin for SinkAdapter<T> {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        _: Option<&[u8]>,
        _: i64,
        host: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError> {
        let mut ctx = Context::new(host);
        match op {
            Op::Write => {
                guarded(|| kinds::run_write(&mut self.0, bytes(a), &mut ctx).map(|()| Vec::new()))
            }
            Op::Flush => guarded(|| self.0.flush(&mut ctx).map(|()| Vec::new())),
            other => Err(CallError::WrongOp(other)),
        }
    }
}

impl<T: Partitioner> DynPlugin for PartitionerAdapter<T> {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        _: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError> {
        match op {
            Op::Partition => guarded(|| {
                let count = u32::try_from(arg).unwrap_or(u32::MAX);
                Ok(self.0.partition(a, b, count).to_le_bytes().to_vec())
            }),
            other => Err(CallError::WrongOp(other)),
        }
    }
}

impl<T: Serializer> DynPlugin for SerializerAdapter<T> {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        _: Option<&[u8]>,
        _: i64,
        _: &mut dyn Host,
    ) -> Result<Vec<u8>, CallError> {
        match op {
            Op::Serialize => guarded(|| self.0.serialize(bytes(a))),
            Op::Deserialize => guarded(|| self.0.deserialize(bytes(a))),
            other => Err(CallError::WrongOp(other)),
        }
    }
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

/// Builds a built-in instance from its config and, for a source, position.
pub type BuiltinConstructor = fn(&Config, Option<&[u8]>) -> Result<Box<dyn DynPlugin>, CallError>;

/// A plugin compiled into the host binary: what the host's registry of
/// built-ins holds.
#[derive(Clone, Copy)]
pub struct Builtin {
    pub describe: fn() -> PluginInfo,
    pub new: BuiltinConstructor,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &(self.describe)().name)
            .finish()
    }
}

impl Builtin {
    /// The built-in for an adapted plugin type, e.g.
    /// `Builtin::of::<ProcessorAdapter<Filter>>()`.
    pub fn of<E: Exported>() -> Builtin {
        Builtin {
            describe: E::describe,
            new: |config, position| {
                instantiate::<E>(config, position).map(|e| Box::new(e) as Box<dyn DynPlugin>)
            },
        }
    }
}
