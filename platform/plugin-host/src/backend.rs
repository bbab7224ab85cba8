//! The one call surface over built-in, native and WebAssembly instances.

use crate::error::ErrorKind;
use crate::services::Services;
use fjord_sdk::dispatch::{CallError, DynPlugin, Op};

/// How a backend call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// The plugin returned an error; the instance is still good.
    Failed(String),
    /// The instance is unusable (trap, panic, deadline, memory) and must be
    /// replaced.
    Fatal(ErrorKind),
}

/// A running plugin instance of any origin. Operations and their argument
/// conventions are those of [`Op`].
pub trait Backend: Send {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        partition: i32,
    ) -> Result<Vec<u8>, CallFailure>;
}

/// A plugin compiled into this binary.
pub struct BuiltinInstance {
    pub plugin: Box<dyn DynPlugin>,
    pub services: Services,
}

impl std::fmt::Debug for BuiltinInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinInstance")
            .field("services", &self.services)
            .finish()
    }
}

impl Backend for BuiltinInstance {
    fn call(
        &mut self,
        op: Op,
        a: Option<&[u8]>,
        b: Option<&[u8]>,
        arg: i64,
        partition: i32,
    ) -> Result<Vec<u8>, CallFailure> {
        self.services.partition = partition;
        self.plugin
            .call(op, a, b, arg, &mut self.services)
            .map_err(|e| match e {
                CallError::Plugin(e) => CallFailure::Failed(e.message().to_owned()),
                CallError::Panic(m) => CallFailure::Fatal(ErrorKind::Panic(m)),
                CallError::WrongOp(op) => {
                    CallFailure::Fatal(ErrorKind::Host(format!("operation {op:?} not supported")))
                }
            })
    }
}
