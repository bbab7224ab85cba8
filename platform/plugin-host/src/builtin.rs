//! Plugins compiled into the binary, addressable by name.
//!
//! The host knows no plugin crate: the binary that embeds it lists its
//! built-ins (`fjord-builtins` for `fjord`) as [`Builtin`]s, made from the
//! SDK's kind traits, and passes them to [`crate::PluginHost::new`]. A
//! built-in runs the same SDK code (`fjord_sdk::kinds`) as the plugin's C
//! ABI export, called directly.
//!
//! A name may belong to two kinds (`file` is a source and a sink);
//! `NAME-KIND` (`file-source`) always names one, and a caller that knows the
//! kind it needs passes it.

use crate::backend::{
    Backend, CallFailure, PartitionerBackend, Polled, ProcessorBackend, SerializerBackend,
    SinkBackend, SourceBackend,
};
use crate::error::ErrorKind;
use crate::services::Services;
use fjord_sdk::kinds::{self, Caught, guarded};
use fjord_sdk::{
    Config, Context, Partitioner, PluginInfo, PluginKind, Processor, Serializer, Sink, Source,
};

/// Starts an instance from its config, its services and, for a source,
/// its position; an error is the plugin's refusal (or panic) as text.
type Start = fn(&Config, Option<&[u8]>, Services) -> Result<Backend, String>;

/// A plugin compiled into the host binary: its description and how to
/// start it.
#[derive(Clone, Copy)]
pub struct Builtin {
    describe: fn() -> PluginInfo,
    start: Start,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builtin")
            .field("name", &(self.describe)().name)
            .finish()
    }
}

/// A plugin's init, catching a panic.
fn init<T: fjord_sdk::Plugin>(config: &Config) -> Result<T, String> {
    guarded(|| T::init(config)).map_err(|c| match c {
        Caught::Error(e) => e.message().to_owned(),
        Caught::Panic(m) => format!("panicked: {m}"),
    })
}

impl Builtin {
    /// The built-in of a [`Processor`].
    pub fn processor<T: Processor>() -> Builtin {
        Builtin {
            describe: || T::info().with_kind(PluginKind::Processor),
            start: |config, _, services| {
                let plugin = init::<T>(config)?;
                Ok(Backend::Processor(Box::new(Instance { plugin, services })))
            },
        }
    }

    /// The built-in of a [`Source`]; a position given at start is sought.
    pub fn source<T: Source>() -> Builtin {
        Builtin {
            describe: || T::info().with_kind(PluginKind::Source),
            start: |config, position, services| {
                let mut plugin = init::<T>(config)?;
                if let Some(p) = position {
                    guarded(|| plugin.seek(p)).map_err(|c| match c {
                        Caught::Error(e) => e.message().to_owned(),
                        Caught::Panic(m) => format!("panicked: {m}"),
                    })?;
                }
                Ok(Backend::Source(Box::new(Instance { plugin, services })))
            },
        }
    }

    /// The built-in of a [`Sink`].
    pub fn sink<T: Sink>() -> Builtin {
        Builtin {
            describe: || T::info().with_kind(PluginKind::Sink),
            start: |config, _, services| {
                let plugin = init::<T>(config)?;
                Ok(Backend::Sink(Box::new(Instance { plugin, services })))
            },
        }
    }

    /// The built-in of a [`Partitioner`].
    pub fn partitioner<T: Partitioner>() -> Builtin {
        Builtin {
            describe: || T::info().with_kind(PluginKind::Partitioner),
            start: |config, _, services| {
                let plugin = init::<T>(config)?;
                Ok(Backend::Partitioner(Box::new(Instance {
                    plugin,
                    services,
                })))
            },
        }
    }

    /// The built-in of a [`Serializer`].
    pub fn serializer<T: Serializer>() -> Builtin {
        Builtin {
            describe: || T::info().with_kind(PluginKind::Serializer),
            start: |config, _, services| {
                let plugin = init::<T>(config)?;
                Ok(Backend::Serializer(Box::new(Instance { plugin, services })))
            },
        }
    }

    /// Name, version, kind, description, config keys.
    pub fn info(&self) -> PluginInfo {
        (self.describe)()
    }

    pub(crate) fn start(
        &self,
        config: &Config,
        position: Option<&[u8]>,
        services: Services,
    ) -> Result<Backend, String> {
        (self.start)(config, position, services)
    }
}

/// A running built-in: the plugin and the services its calls use.
struct Instance<T> {
    plugin: T,
    services: Services,
}

fn failure(c: Caught) -> CallFailure {
    match c {
        Caught::Error(e) => CallFailure::Failed(e.message().to_owned()),
        Caught::Panic(m) => CallFailure::Fatal(ErrorKind::Panic(m)),
    }
}

impl<T: Processor> ProcessorBackend for Instance<T> {
    fn process(&mut self, partition: i32, batch: &[u8]) -> Result<Vec<u8>, CallFailure> {
        self.services.partition = partition;
        let mut ctx = Context::new(&mut self.services);
        guarded(|| kinds::run_process(&mut self.plugin, batch, &mut ctx)).map_err(failure)
    }

    fn on_timer(&mut self, partition: i32, now_ms: i64) -> Result<Vec<u8>, CallFailure> {
        self.services.partition = partition;
        let mut ctx = Context::new(&mut self.services);
        guarded(|| kinds::run_timer(&mut self.plugin, now_ms, &mut ctx)).map_err(failure)
    }
}

// Connectors, partitioners and serializers are not partitioned: their
// services act for partition 0, as the other backends' do.

impl<T: Source> SourceBackend for Instance<T> {
    fn poll(&mut self, max: u32) -> Result<Polled, CallFailure> {
        self.services.partition = 0;
        let mut ctx = Context::new(&mut self.services);
        let (batch, position) =
            guarded(|| kinds::run_poll(&mut self.plugin, max, &mut ctx)).map_err(failure)?;
        Ok(Polled { batch, position })
    }
}

impl<T: Sink> SinkBackend for Instance<T> {
    fn write(&mut self, batch: &[u8]) -> Result<(), CallFailure> {
        self.services.partition = 0;
        let mut ctx = Context::new(&mut self.services);
        guarded(|| kinds::run_write(&mut self.plugin, batch, &mut ctx)).map_err(failure)
    }

    fn flush(&mut self) -> Result<(), CallFailure> {
        self.services.partition = 0;
        let mut ctx = Context::new(&mut self.services);
        guarded(|| self.plugin.flush(&mut ctx)).map_err(failure)
    }
}

impl<T: Partitioner> PartitionerBackend for Instance<T> {
    fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> Result<u32, CallFailure> {
        guarded(|| Ok(self.plugin.partition(key, value, partition_count))).map_err(failure)
    }
}

impl<T: Serializer> SerializerBackend for Instance<T> {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, CallFailure> {
        guarded(|| self.plugin.serialize(input)).map_err(failure)
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, CallFailure> {
        guarded(|| self.plugin.deserialize(bytes)).map_err(failure)
    }
}

/// What looking a name up found.
pub enum Lookup<'a> {
    Found(&'a Builtin),
    None,
    /// Several kinds share the name; the qualified names of each.
    Ambiguous(Vec<String>),
}

/// The built-in of `builtins` called `name` (or `name-kind`), of `kind`
/// when given.
pub fn find<'a>(builtins: &'a [Builtin], name: &str, kind: Option<PluginKind>) -> Lookup<'a> {
    let mut matches: Vec<(&Builtin, String)> = builtins
        .iter()
        .filter_map(|b| {
            let info = b.info();
            let qualified = format!("{}-{}", info.name, info.kind);
            let named = info.name == name || qualified == name;
            (named && kind.is_none_or(|k| k == info.kind)).then_some((b, qualified))
        })
        .collect();
    match matches.len() {
        0 => Lookup::None,
        1 => Lookup::Found(matches.remove(0).0),
        _ => Lookup::Ambiguous(matches.into_iter().map(|(_, q)| q).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::{BatchWriter, Error, Plugin, RecordRef};

    // Two plugins that share a name across kinds, as `file` does.
    struct FileSource;
    struct FileSink;

    impl Plugin for FileSource {
        fn info() -> PluginInfo {
            PluginInfo::new("file", "0.1.0")
        }
        fn init(_: &Config) -> Result<Self, Error> {
            Ok(FileSource)
        }
    }
    impl Source for FileSource {
        fn poll(&mut self, _: u32, _: &mut BatchWriter, _: &mut Context) -> Result<(), Error> {
            Ok(())
        }
        fn position(&self) -> Vec<u8> {
            Vec::new()
        }
        fn seek(&mut self, _: &[u8]) -> Result<(), Error> {
            Ok(())
        }
    }
    impl Plugin for FileSink {
        fn info() -> PluginInfo {
            PluginInfo::new("file", "0.1.0")
        }
        fn init(_: &Config) -> Result<Self, Error> {
            Ok(FileSink)
        }
    }
    impl Sink for FileSink {
        fn write(&mut self, _: RecordRef<'_>, _: &mut Context) -> Result<(), Error> {
            Ok(())
        }
        fn flush(&mut self, _: &mut Context) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn a_shared_name_needs_a_kind_or_a_qualified_name() {
        let builtins = [Builtin::source::<FileSource>(), Builtin::sink::<FileSink>()];
        assert!(
            matches!(find(&builtins, "file", None), Lookup::Ambiguous(q) if q == ["file-source", "file-sink"])
        );
        assert!(matches!(
            find(&builtins, "file", Some(PluginKind::Sink)),
            Lookup::Found(b) if b.info().kind == PluginKind::Sink
        ));
        assert!(matches!(
            find(&builtins, "file-source", None),
            Lookup::Found(b) if b.info().kind == PluginKind::Source
        ));
        assert!(matches!(
            find(&builtins, "file", Some(PluginKind::Processor)),
            Lookup::None
        ));
        assert!(matches!(find(&builtins, "json", None), Lookup::None));
    }
}
