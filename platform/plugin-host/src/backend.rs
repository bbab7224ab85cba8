//! How the host calls a running plugin: one trait per kind, implemented by
//! the built-ins ([`crate::builtin`]), the native C ABI ([`crate::native`])
//! and the WebAssembly bindings ([`crate::wasm`]). The kind is chosen once,
//! when the instance starts ([`Backend`]); each call is a typed method.

use crate::error::ErrorKind;
use fjord_sdk::PluginKind;

/// How a backend call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// The plugin returned an error; the instance is still good.
    Failed(String),
    /// The plugin returned something its kind's contract does not allow
    /// (a poll result or a partition number the ABI cannot read); the
    /// instance is kept.
    Malformed(String),
    /// The instance is unusable (trap, panic, deadline, memory) and must be
    /// replaced.
    Fatal(ErrorKind),
}

/// What a source's poll returned: records and the position after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    pub batch: Vec<u8>,
    pub position: Vec<u8>,
}

/// A processor: batches in, batches out, per partition.
pub trait ProcessorBackend: Send {
    fn process(&mut self, partition: i32, batch: &[u8]) -> Result<Vec<u8>, CallFailure>;
    fn on_timer(&mut self, partition: i32, now_ms: i64) -> Result<Vec<u8>, CallFailure>;
}

/// A source connector.
pub trait SourceBackend: Send {
    fn poll(&mut self, max: u32) -> Result<Polled, CallFailure>;
}

/// A sink connector.
pub trait SinkBackend: Send {
    fn write(&mut self, batch: &[u8]) -> Result<(), CallFailure>;
    fn flush(&mut self) -> Result<(), CallFailure>;
}

/// A partitioner. The result is not yet reduced below `partition_count`.
pub trait PartitionerBackend: Send {
    fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> Result<u32, CallFailure>;
}

/// A serializer.
pub trait SerializerBackend: Send {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, CallFailure>;
    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, CallFailure>;
}

/// A running plugin instance of any origin, as the trait of its kind.
pub enum Backend {
    Processor(Box<dyn ProcessorBackend>),
    Source(Box<dyn SourceBackend>),
    Sink(Box<dyn SinkBackend>),
    Partitioner(Box<dyn PartitionerBackend>),
    Serializer(Box<dyn SerializerBackend>),
}

impl Backend {
    /// The kind whose trait this backend implements.
    pub fn kind(&self) -> PluginKind {
        match self {
            Backend::Processor(_) => PluginKind::Processor,
            Backend::Source(_) => PluginKind::Source,
            Backend::Sink(_) => PluginKind::Sink,
            Backend::Partitioner(_) => PluginKind::Partitioner,
            Backend::Serializer(_) => PluginKind::Serializer,
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({})", self.kind())
    }
}
