//! What the host gives a running plugin: partition-scoped state, metrics
//! and logs — the implementation of the WIT imports `state`, `metrics`,
//! `logging` and of the SDK's [`Host`] trait for native plugins.

use fjord_sdk::{Host, Level};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

/// Where plugin state lives. Keys are scoped by partition, so two partitions
/// of one pipeline never see each other's state. The pipeline runtime
/// provides a store backed by a compacted changelog topic; tests and
/// `fjord plugin test` use [`MemoryStateStore`].
pub trait StateStore: Send + Sync {
    fn get(&self, partition: i32, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&self, partition: i32, key: &[u8], value: &[u8]);
    fn delete(&self, partition: i32, key: &[u8]);
    /// Entries whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, partition: i32, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// State entries by (partition, key).
type Entries = BTreeMap<(i32, Vec<u8>), Vec<u8>>;

/// State in memory, lost when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    entries: Mutex<Entries>,
}

impl StateStore for MemoryStateStore {
    fn get(&self, partition: i32, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.lock().get(&(partition, key.to_vec())).cloned()
    }
    fn put(&self, partition: i32, key: &[u8], value: &[u8]) {
        self.entries
            .lock()
            .insert((partition, key.to_vec()), value.to_vec());
    }
    fn delete(&self, partition: i32, key: &[u8]) {
        self.entries.lock().remove(&(partition, key.to_vec()));
    }
    fn scan_prefix(&self, partition: i32, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.entries
            .lock()
            .range((partition, prefix.to_vec())..)
            .take_while(|((p, k), _)| *p == partition && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A histogram's running summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub sum: f64,
}

/// The metrics plugins reported, by plugin name (in a pipeline, the step's
/// or sink's name) and metric name. A pipeline's status and `/metrics` show
/// the counters and gauges ([`PluginMetrics::counters`]).
#[derive(Debug, Default)]
pub struct PluginMetrics {
    counters: Mutex<HashMap<(String, String), u64>>,
    gauges: Mutex<HashMap<(String, String), f64>>,
    histograms: Mutex<HashMap<(String, String), Summary>>,
    /// Counter increments of calls not yet applied, by (plugin, partition)
    /// — for services with `counters_on_success` (see
    /// [`PluginMetrics::apply_counters`]).
    pending: Mutex<HashMap<(String, i32), HashMap<String, u64>>>,
    /// The metric names each plugin has used: a plugin picks them at run
    /// time, and each becomes map entries here and series on `/metrics`,
    /// so their number and length are bounded ([`PluginMetrics::admits`]).
    names: Mutex<HashMap<String, std::collections::HashSet<String>>>,
}

impl PluginMetrics {
    /// Distinct metric names one plugin may use; later new names are
    /// ignored (with one warning).
    pub const MAX_NAMES: usize = 256;
    /// The longest metric name kept.
    pub const MAX_NAME_BYTES: usize = 128;

    /// Whether `plugin` may record metric `name`: a name it used before, or
    /// a new one within [`Self::MAX_NAMES`] and [`Self::MAX_NAME_BYTES`].
    fn admits(&self, plugin: &str, name: &str) -> bool {
        if name.len() > Self::MAX_NAME_BYTES {
            return false;
        }
        let mut names = self.names.lock();
        let used = names.entry(plugin.to_owned()).or_default();
        if used.contains(name) {
            return true;
        }
        if used.len() >= Self::MAX_NAMES {
            return false;
        }
        if used.len() + 1 == Self::MAX_NAMES {
            tracing::warn!(
                plugin,
                "plugin reached {} metric names: further new names are ignored",
                Self::MAX_NAMES
            );
        }
        used.insert(name.to_owned());
        true
    }

    pub fn counter(&self, plugin: &str, name: &str) -> u64 {
        let c = self.counters.lock();
        c.get(&(plugin.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn gauge(&self, plugin: &str, name: &str) -> Option<f64> {
        let g = self.gauges.lock();
        g.get(&(plugin.to_owned(), name.to_owned())).copied()
    }

    /// Adds the counter increments `plugin` made for `partition` since the
    /// last apply or discard: its call succeeded.
    pub fn apply_counters(&self, plugin: &str, partition: i32) {
        let pending = self.pending.lock().remove(&(plugin.to_owned(), partition));
        if let Some(pending) = pending {
            let mut c = self.counters.lock();
            for (name, delta) in pending {
                *c.entry((plugin.to_owned(), name)).or_default() += delta;
            }
        }
    }

    /// Forgets the counter increments `plugin` made for `partition` since
    /// the last apply or discard: its call failed and will be made again
    /// (record by record), so they would count twice.
    pub fn discard_counters(&self, plugin: &str, partition: i32) {
        self.pending.lock().remove(&(plugin.to_owned(), partition));
    }

    fn add_counter(&self, plugin: &str, partition: Option<i32>, name: &str, delta: u64) {
        match partition {
            Some(partition) => {
                let mut p = self.pending.lock();
                *p.entry((plugin.to_owned(), partition))
                    .or_default()
                    .entry(name.to_owned())
                    .or_default() += delta;
            }
            None => {
                let mut c = self.counters.lock();
                *c.entry((plugin.to_owned(), name.to_owned())).or_default() += delta;
            }
        }
    }

    /// Every counter: (plugin, name, value), sorted. The pipeline runtime
    /// reads them into its status and the `/metrics` exposition.
    pub fn counters(&self) -> Vec<(String, String, u64)> {
        let c = self.counters.lock();
        let mut all: Vec<_> = c
            .iter()
            .map(|((plugin, name), &v)| (plugin.clone(), name.clone(), v))
            .collect();
        all.sort();
        all
    }

    /// Every gauge: (plugin, name, latest value), sorted by plugin and name.
    pub fn gauges(&self) -> Vec<(String, String, f64)> {
        let g = self.gauges.lock();
        let mut all: Vec<_> = g
            .iter()
            .map(|((plugin, name), &v)| (plugin.clone(), name.clone(), v))
            .collect();
        all.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        all
    }

    pub fn histogram(&self, plugin: &str, name: &str) -> Summary {
        let h = self.histograms.lock();
        h.get(&(plugin.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

/// Where a plugin's log lines go besides the process log (`tracing`): a
/// pipeline keeps them with its own log lines, so its status and the
/// console show them next to the records they concern.
pub trait PluginLog: Send + Sync {
    /// One line at `Info` or above (debug and trace stay in the process log).
    fn log(&self, plugin: &str, level: Level, message: &str);
}

/// One instance's services: the plugin's name (for logs and metrics), the
/// partition the current call is for, the shared stores, and where its log
/// lines go besides the process log.
#[derive(Clone)]
pub struct Services {
    pub plugin: String,
    pub partition: i32,
    pub state: Arc<dyn StateStore>,
    pub metrics: Arc<PluginMetrics>,
    pub log: Option<Arc<dyn PluginLog>>,
    /// Whether the counters of a call wait for the caller to apply them
    /// ([`PluginMetrics::apply_counters`]) — a pipeline step's, whose
    /// failed calls are made again record by record, as its state writes
    /// wait. Otherwise they count at once.
    pub counters_on_success: bool,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("plugin", &self.plugin)
            .field("partition", &self.partition)
            .finish()
    }
}

impl Services {
    /// Services with in-memory state and their own metrics.
    pub fn in_memory(plugin: &str) -> Self {
        Services {
            plugin: plugin.to_owned(),
            partition: 0,
            state: Arc::new(MemoryStateStore::default()),
            metrics: Arc::new(PluginMetrics::default()),
            log: None,
            counters_on_success: false,
        }
    }
}

impl Host for Services {
    fn state_get(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(self.partition, key)
    }
    fn state_put(&mut self, key: &[u8], value: &[u8]) {
        self.state.put(self.partition, key, value)
    }
    fn state_delete(&mut self, key: &[u8]) {
        self.state.delete(self.partition, key)
    }
    fn state_scan_prefix(&mut self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.scan_prefix(self.partition, prefix)
    }
    fn counter(&mut self, name: &str, delta: u64) {
        if !self.metrics.admits(&self.plugin, name) {
            return;
        }
        let partition = self.counters_on_success.then_some(self.partition);
        self.metrics
            .add_counter(&self.plugin, partition, name, delta);
    }
    fn gauge(&mut self, name: &str, value: f64) {
        if !self.metrics.admits(&self.plugin, name) {
            return;
        }
        let mut g = self.metrics.gauges.lock();
        g.insert((self.plugin.clone(), name.to_owned()), value);
    }
    fn histogram(&mut self, name: &str, value: f64) {
        if !self.metrics.admits(&self.plugin, name) {
            return;
        }
        let mut h = self.metrics.histograms.lock();
        let s = h.entry((self.plugin.clone(), name.to_owned())).or_default();
        s.count += 1;
        s.sum += value;
    }
    fn log(&mut self, level: Level, message: &str) {
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, partition = self.partition, "{message}"),
            Level::Debug => tracing::debug!(plugin, partition = self.partition, "{message}"),
            Level::Info => tracing::info!(plugin, partition = self.partition, "{message}"),
            Level::Warn => tracing::warn!(plugin, partition = self.partition, "{message}"),
            Level::Error => tracing::error!(plugin, partition = self.partition, "{message}"),
        }
        if let Some(sink) = &self.log
            && matches!(level, Level::Info | Level::Warn | Level::Error)
        {
            sink.log(plugin, level, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_of_a_failed_call_are_discarded_and_of_a_good_one_applied() {
        let mut services = Services::in_memory("step");
        services.counters_on_success = true;
        services.partition = 3;
        services.counter("late_records", 2);
        assert_eq!(services.metrics.counter("step", "late_records"), 0);
        services.metrics.discard_counters("step", 3);
        services.counter("late_records", 1);
        services.metrics.apply_counters("step", 3);
        assert_eq!(services.metrics.counter("step", "late_records"), 1);
        assert_eq!(
            services.metrics.counters(),
            vec![("step".to_owned(), "late_records".to_owned(), 1)]
        );
    }

    #[test]
    fn counters_count_at_once_by_default() {
        let mut services = Services::in_memory("sink");
        services.counter("skipped", 4);
        assert_eq!(services.metrics.counter("sink", "skipped"), 4);
    }

    /// A plugin that makes up a metric name per record cannot grow the
    /// host's maps (and `/metrics`) without bound: new names past the cap,
    /// and names past the length cap, are ignored; known ones still count.
    #[test]
    fn a_plugin_cannot_make_metric_names_without_bound() {
        let mut services = Services::in_memory("step");
        for i in 0..10_000 {
            services.counter(&format!("c{i}"), 1);
            services.gauge(&format!("g{i}"), 1.0);
        }
        let names = services.metrics.counters().len() + services.metrics.gauges().len();
        assert_eq!(names, PluginMetrics::MAX_NAMES);
        services.counter("c0", 1);
        assert_eq!(services.metrics.counter("step", "c0"), 2);
        let long = "x".repeat(PluginMetrics::MAX_NAME_BYTES + 1);
        let mut other = Services::in_memory("other");
        other.counter(&long, 1);
        assert!(other.metrics.counters().is_empty());
    }
}
