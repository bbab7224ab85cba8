//! The traits a plugin implements, one per kind.
//!
//! Implement [`Plugin`] and one kind trait, then put the kind's attribute
//! (`#[fjord_sdk::processor]`, `#[fjord_sdk::source]`, …) on the kind
//! trait's `impl` block. The attribute exports the type as a WebAssembly
//! component when built for `wasm32-wasip2`, and through Fjord's C ABI when
//! built as a `cdylib`.

use crate::{BatchReader, BatchWriter, Config, Context, Error, PluginInfo, RecordRef};

/// What every plugin has: a description and a constructor.
pub trait Plugin: Sized + Send + 'static {
    /// Name, version, description and config keys (`fjord plugin inspect`).
    /// The kind is filled in by the export.
    fn info() -> PluginInfo;

    /// Builds the plugin from its configuration. An error here fails the
    /// deploy with the message.
    fn init(config: &Config) -> Result<Self, Error>;
}

/// A stream processor: each input record becomes zero, one or several
/// output records.
///
/// ```
/// use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Processor, RecordRef};
///
/// /// Keeps records whose value contains a word.
/// struct Grep { word: String }
///
/// impl Plugin for Grep {
///     fn info() -> PluginInfo { PluginInfo::new("grep", "0.1.0") }
///     fn init(config: &Config) -> Result<Self, Error> {
///         Ok(Grep { word: config.require("word")?.to_owned() })
///     }
/// }
///
/// #[fjord_sdk::processor]
/// impl Processor for Grep {
///     fn process(&mut self, r: RecordRef<'_>, out: &mut BatchWriter, _: &mut Context) -> Result<(), Error> {
///         if r.value_str().is_some_and(|v| v.contains(&self.word)) {
///             out.forward(&r);
///         }
///         Ok(())
///     }
/// }
///
/// let out = fjord_sdk::testing::process::<Grep>(
///     &[("word", "error")],
///     vec![fjord_sdk::Record::new("an error"), fjord_sdk::Record::new("fine")],
/// )?;
/// assert_eq!(out.len(), 1);
/// # Ok::<(), Error>(())
/// ```
pub trait Processor: Plugin {
    /// Handles one record. Returning an error fails the whole batch; the
    /// pipeline then retries it or sends its records to the dead-letter topic.
    fn process(
        &mut self,
        record: RecordRef<'_>,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error>;

    /// Called periodically per partition with the wall-clock time, for
    /// windowed work (emit a window when it closes). Does nothing by default.
    fn on_timer(
        &mut self,
        _now_ms: i64,
        _out: &mut BatchWriter,
        _ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        Ok(())
    }
}

/// A source connector: brings records into Fjord.
///
/// The host stores [`Source::position`] after each poll whose records it has
/// written, and passes it to [`Source::seek`] after a restart.
///
/// ```
/// use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Record, Source};
///
/// /// Counts upward; the position is the next number.
/// struct Counter { next: u64 }
///
/// impl Plugin for Counter {
///     fn info() -> PluginInfo { PluginInfo::new("counter", "0.1.0") }
///     fn init(_: &Config) -> Result<Self, Error> { Ok(Counter { next: 0 }) }
/// }
///
/// #[fjord_sdk::source]
/// impl Source for Counter {
///     fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
///         self.next = std::str::from_utf8(position)?.parse()?;
///         Ok(())
///     }
///     fn poll(&mut self, max: u32, out: &mut BatchWriter, _: &mut Context) -> Result<(), Error> {
///         for _ in 0..max.min(3) {
///             out.emit(&Record::new(self.next.to_string()));
///             self.next += 1;
///         }
///         Ok(())
///     }
///     fn position(&self) -> Vec<u8> { self.next.to_string().into_bytes() }
/// }
///
/// let mut h = fjord_sdk::testing::Harness::<Counter>::new(&[])?;
/// let (records, position) = h.poll(10)?;
/// assert_eq!(records.len(), 3);
/// assert_eq!(position, b"3");
/// # Ok::<(), Error>(())
/// ```
pub trait Source: Plugin {
    /// Continues from a position that [`Source::position`] returned earlier.
    fn seek(&mut self, position: &[u8]) -> Result<(), Error>;

    /// Writes up to `max` records to `out`; none when nothing is new.
    fn poll(&mut self, max: u32, out: &mut BatchWriter, ctx: &mut Context<'_>)
    -> Result<(), Error>;

    /// Where the next poll starts.
    fn position(&self) -> Vec<u8>;
}

/// A sink connector: takes records out of Fjord.
///
/// ```
/// use fjord_sdk::{Config, Context, Error, Plugin, PluginInfo, Record, RecordRef, Sink};
///
/// /// Counts bytes; a real sink would send them somewhere.
/// struct ByteCounter { pending: u64 }
///
/// impl Plugin for ByteCounter {
///     fn info() -> PluginInfo { PluginInfo::new("byte-counter", "0.1.0") }
///     fn init(_: &Config) -> Result<Self, Error> { Ok(ByteCounter { pending: 0 }) }
/// }
///
/// #[fjord_sdk::sink]
/// impl Sink for ByteCounter {
///     fn write(&mut self, r: RecordRef<'_>, _: &mut Context) -> Result<(), Error> {
///         self.pending += r.value.map_or(0, |v| v.len() as u64);
///         Ok(())
///     }
///     fn flush(&mut self, ctx: &mut Context) -> Result<(), Error> {
///         ctx.counter("bytes", std::mem::take(&mut self.pending));
///         Ok(())
///     }
/// }
///
/// let mut h = fjord_sdk::testing::Harness::<ByteCounter>::new(&[])?;
/// h.write(vec![Record::new("abc"), Record::new("de")])?;
/// assert_eq!(h.host.counter("bytes"), 5);
/// # Ok::<(), Error>(())
/// ```
pub trait Sink: Plugin {
    fn write(&mut self, record: RecordRef<'_>, ctx: &mut Context<'_>) -> Result<(), Error>;

    /// Makes everything written so far durable; the pipeline commits its
    /// progress only after this returns `Ok`.
    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), Error>;
}

/// Chooses the partition of a record.
///
/// ```
/// use fjord_sdk::{Config, Error, Partitioner, Plugin, PluginInfo};
///
/// /// Partitions by key length.
/// struct ByLength;
///
/// impl Plugin for ByLength {
///     fn info() -> PluginInfo { PluginInfo::new("by-length", "0.1.0") }
///     fn init(_: &Config) -> Result<Self, Error> { Ok(ByLength) }
/// }
///
/// #[fjord_sdk::partitioner]
/// impl Partitioner for ByLength {
///     fn partition(&mut self, key: Option<&[u8]>, _: Option<&[u8]>, count: u32) -> u32 {
///         key.map_or(0, |k| k.len() as u32 % count)
///     }
/// }
///
/// let mut h = fjord_sdk::testing::Harness::<ByLength>::new(&[])?;
/// assert_eq!(h.partition(Some(b"abcd"), None, 3), 1);
/// # Ok::<(), Error>(())
/// ```
pub trait Partitioner: Plugin {
    /// Returns a partition below `partition_count` (the host takes the
    /// remainder of anything larger).
    fn partition(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, partition_count: u32) -> u32;
}

/// Converts between a user-facing format and the bytes stored in a topic.
///
/// ```
/// use fjord_sdk::{Config, Error, Plugin, PluginInfo, Serializer};
///
/// /// Stores text reversed, shows it the right way round.
/// struct Reverse;
///
/// impl Plugin for Reverse {
///     fn info() -> PluginInfo { PluginInfo::new("reverse", "0.1.0") }
///     fn init(_: &Config) -> Result<Self, Error> { Ok(Reverse) }
/// }
///
/// #[fjord_sdk::serializer]
/// impl Serializer for Reverse {
///     fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
///         Ok(input.iter().rev().copied().collect())
///     }
///     fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
///         Ok(bytes.iter().rev().copied().collect())
///     }
/// }
///
/// let mut h = fjord_sdk::testing::Harness::<Reverse>::new(&[])?;
/// assert_eq!(h.serialize(b"abc")?, b"cba");
/// assert_eq!(h.deserialize(b"cba")?, b"abc");
/// # Ok::<(), Error>(())
/// ```
pub trait Serializer: Plugin {
    /// User-facing format to stored bytes (`fjord produce --serializer`).
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error>;
    /// Stored bytes to the user-facing format (`fjord consume --serializer`).
    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Runs a processor over an encoded batch. Every export (WebAssembly, C ABI,
/// built-in, testing) goes through here, so they behave the same.
pub fn run_process<P: Processor>(
    p: &mut P,
    batch: &[u8],
    ctx: &mut Context<'_>,
) -> Result<Vec<u8>, Error> {
    let reader = BatchReader::new(batch).map_err(|e| Error::msg(e.to_string()))?;
    let mut out = BatchWriter::with_capacity(batch.len());
    for r in reader {
        let r = r.map_err(|e| Error::msg(e.to_string()))?;
        p.process(r, &mut out, ctx)?;
    }
    Ok(out.finish())
}

/// Runs a processor's timer.
pub fn run_timer<P: Processor>(
    p: &mut P,
    now_ms: i64,
    ctx: &mut Context<'_>,
) -> Result<Vec<u8>, Error> {
    let mut out = BatchWriter::new();
    p.on_timer(now_ms, &mut out, ctx)?;
    Ok(out.finish())
}

/// Polls a source: its records and its position after them.
pub fn run_poll<S: Source>(
    s: &mut S,
    max: u32,
    ctx: &mut Context<'_>,
) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let mut out = BatchWriter::new();
    s.poll(max, &mut out, ctx)?;
    Ok((out.finish(), s.position()))
}

/// Writes an encoded batch to a sink.
pub fn run_write<S: Sink>(s: &mut S, batch: &[u8], ctx: &mut Context<'_>) -> Result<(), Error> {
    for r in BatchReader::new(batch).map_err(|e| Error::msg(e.to_string()))? {
        s.write(r.map_err(|e| Error::msg(e.to_string()))?, ctx)?;
    }
    Ok(())
}

/// How a call into plugin code failed, as [`guarded`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caught {
    /// The plugin returned an error; it can be called again.
    Error(Error),
    /// The plugin panicked; the instance must not be used again.
    Panic(String),
}

/// Runs plugin code, turning a panic into [`Caught::Panic`] so that it does
/// not unwind into the caller (the C ABI export, the host's built-ins).
pub fn guarded<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Caught> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(Caught::Error),
        Err(payload) => Err(Caught::Panic(panic_message(&*payload))),
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
