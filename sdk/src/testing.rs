//! Run a plugin natively in a unit test, through the same code path the
//! host uses.
//!
//! ```
//! use fjord_sdk::testing::Harness;
//! # use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Processor, Record, RecordRef};
//! # struct Upper;
//! # impl Plugin for Upper {
//! #     fn info() -> PluginInfo { PluginInfo::new("upper", "0.1.0") }
//! #     fn init(_: &Config) -> Result<Self, Error> { Ok(Upper) }
//! # }
//! # impl Processor for Upper {
//! #     fn process(&mut self, r: RecordRef<'_>, out: &mut BatchWriter, ctx: &mut Context) -> Result<(), Error> {
//! #         ctx.counter("seen", 1);
//! #         let v = r.value_str().unwrap_or("").to_uppercase();
//! #         out.emit_with_value(&r, Some(v.as_bytes()));
//! #         Ok(())
//! #     }
//! # }
//! let mut h = Harness::<Upper>::new(&[])?;
//! let out = h.process(vec![Record::new("hi")])?;
//! assert_eq!(out[0].value_str(), Some("HI"));
//! assert_eq!(h.host.counter("seen"), 1);
//! # Ok::<(), Error>(())
//! ```

use crate::{
    Config, Context, Error, Host, Level, Partitioner, Plugin, Processor, Record, Serializer, Sink,
    Source, batch, kinds,
};
use std::collections::{BTreeMap, HashMap};

/// An in-memory [`Host`]: state in a map, metrics and log lines kept for
/// assertions.
#[derive(Debug, Default, Clone)]
pub struct TestHost {
    pub state: BTreeMap<Vec<u8>, Vec<u8>>,
    pub counters: HashMap<String, u64>,
    pub gauges: HashMap<String, f64>,
    pub histograms: HashMap<String, Vec<f64>>,
    pub logs: Vec<(Level, String)>,
}

impl TestHost {
    /// A counter's total, 0 if never touched.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }
}

impl Host for TestHost {
    fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }
    fn state_put(&mut self, key: &[u8], value: &[u8]) {
        self.state.insert(key.to_vec(), value.to_vec());
    }
    fn state_delete(&mut self, key: &[u8]) {
        self.state.remove(key);
    }
    fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn counter(&mut self, name: &str, delta: u64) {
        *self.counters.entry(name.to_owned()).or_default() += delta;
    }
    fn gauge(&mut self, name: &str, value: f64) {
        self.gauges.insert(name.to_owned(), value);
    }
    fn histogram(&mut self, name: &str, value: f64) {
        self.histograms
            .entry(name.to_owned())
            .or_default()
            .push(value);
    }
    fn log(&mut self, level: Level, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}

/// A plugin instance with a [`TestHost`].
#[derive(Debug)]
pub struct Harness<P> {
    pub plugin: P,
    pub host: TestHost,
}

impl<P: Plugin> Harness<P> {
    /// Builds the plugin from `config` pairs, as the host would.
    pub fn new(config: &[(&str, &str)]) -> Result<Self, Error> {
        let plugin = P::init(&Config::from_pairs(config.iter().copied()))?;
        Ok(Harness {
            plugin,
            host: TestHost::default(),
        })
    }
}

impl<P: Processor> Harness<P> {
    /// Runs one batch; input offsets are numbered from 0 when all are 0.
    pub fn process(&mut self, mut records: Vec<Record>) -> Result<Vec<Record>, Error> {
        if records.iter().all(|r| r.offset == 0) {
            for (i, r) in records.iter_mut().enumerate() {
                r.offset = i as i64;
            }
        }
        let input = batch::encode(&records);
        let out = kinds::run_process(&mut self.plugin, &input, &mut Context::new(&mut self.host))?;
        batch::decode(&out).map_err(|e| Error::msg(e.to_string()))
    }

    pub fn on_timer(&mut self, now_ms: i64) -> Result<Vec<Record>, Error> {
        let out = kinds::run_timer(&mut self.plugin, now_ms, &mut Context::new(&mut self.host))?;
        batch::decode(&out).map_err(|e| Error::msg(e.to_string()))
    }
}

impl<S: Source> Harness<S> {
    /// One poll: the records and the position after them.
    pub fn poll(&mut self, max: u32) -> Result<(Vec<Record>, Vec<u8>), Error> {
        let (out, position) =
            kinds::run_poll(&mut self.plugin, max, &mut Context::new(&mut self.host))?;
        Ok((
            batch::decode(&out).map_err(|e| Error::msg(e.to_string()))?,
            position,
        ))
    }

    pub fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
        self.plugin.seek(position)
    }
}

impl<S: Sink> Harness<S> {
    /// Writes the records, then flushes.
    pub fn write(&mut self, records: Vec<Record>) -> Result<(), Error> {
        let input = batch::encode(&records);
        let mut ctx = Context::new(&mut self.host);
        kinds::run_write(&mut self.plugin, &input, &mut ctx)?;
        self.plugin.flush(&mut ctx)
    }
}

impl<P: Partitioner> Harness<P> {
    pub fn partition(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partition_count: u32,
    ) -> u32 {
        self.plugin.partition(key, value, partition_count) % partition_count.max(1)
    }
}

impl<S: Serializer> Harness<S> {
    pub fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        self.plugin.serialize(input)
    }

    pub fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        self.plugin.deserialize(bytes)
    }
}

/// Builds a processor from `config` and runs one batch through it.
pub fn process<P: Processor>(
    config: &[(&str, &str)],
    records: Vec<Record>,
) -> Result<Vec<Record>, Error> {
    Harness::<P>::new(config)?.process(records)
}

pub use crate::jsonl::{record_to_json, records_from_jsonl};
