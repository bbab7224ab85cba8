//! The C ABI export's view of a plugin: one object-safe entry point,
//! [`DynPlugin::call`], over the five kind traits, selected by the ABI's
//! operation code.
//!
//! Only the native export ([`super`]) uses this; the host calls built-ins and
//! WebAssembly components through its own typed traits, and a native library
//! through the same ABI from the other side.

use crate::kinds::{self, Caught, guarded};
use crate::{
    Config, Context, Error, Host, Partitioner, PluginInfo, PluginKind, Processor, Serializer, Sink,
    Source,
};
use fjord_plugin_abi::{Op, encode_polled};

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

impl From<Caught> for CallError {
    fn from(c: Caught) -> Self {
        match c {
            Caught::Error(e) => CallError::Plugin(e),
            Caught::Panic(m) => CallError::Panic(m),
        }
    }
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
    fn describe() -> PluginInfo;
    fn new(config: &Config, position: Option<&[u8]>) -> Result<Self, Error>;
}

/// Builds an instance, catching a panic in `init`.
pub fn instantiate<E: Exported>(config: &Config, position: Option<&[u8]>) -> Result<E, CallError> {
    call_guarded(|| E::new(config, position))
}

macro_rules! adapter {
    ($(#[$doc:meta])* $name:ident, $bound:ident, $kind:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T: $bound> Exported for $name<T> {
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

fn call_guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, CallError> {
    guarded(f).map_err(CallError::from)
}

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
            Op::Process => call_guarded(|| kinds::run_process(&mut self.0, bytes(a), &mut ctx)),
            Op::OnTimer => call_guarded(|| kinds::run_timer(&mut self.0, arg, &mut ctx)),
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
            Op::Poll => call_guarded(|| {
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
            Op::Write => call_guarded(|| {
                kinds::run_write(&mut self.0, bytes(a), &mut ctx).map(|()| Vec::new())
            }),
            Op::Flush => call_guarded(|| self.0.flush(&mut ctx).map(|()| Vec::new())),
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
            Op::Partition => call_guarded(|| {
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
            Op::Serialize => call_guarded(|| self.0.serialize(bytes(a))),
            Op::Deserialize => call_guarded(|| self.0.deserialize(bytes(a))),
            other => Err(CallError::WrongOp(other)),
        }
    }
}
