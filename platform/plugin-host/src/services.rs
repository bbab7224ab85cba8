//! What the host gives a running plugin: partition-scoped state, metrics
//! and logs — the implementation of the WIT imports `state`, `metrics`,
//! `logging` and of the SDK's [`Host`] trait for native plugins.

use fjord_sdk::{Host, Level};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

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

impl MemoryStateStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStateStore {
    fn get(&self, partition: i32, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().get(&(partition, key.to_vec())).cloned()
    }
    fn put(&self, partition: i32, key: &[u8], value: &[u8]) {
        self.lock()
            .insert((partition, key.to_vec()), value.to_vec());
    }
    fn delete(&self, partition: i32, key: &[u8]) {
        self.lock().remove(&(partition, key.to_vec()));
    }
    fn scan_prefix(&self, partition: i32, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.lock()
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

/// The metrics plugins reported, by plugin name and metric name; the admin
/// API exports them.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    counters: Mutex<HashMap<(String, String), u64>>,
    gauges: Mutex<HashMap<(String, String), f64>>,
    histograms: Mutex<HashMap<(String, String), Summary>>,
}

impl PluginMetrics {
    pub fn counter(&self, plugin: &str, name: &str) -> u64 {
        let c = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        c.get(&(plugin.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub fn gauge(&self, plugin: &str, name: &str) -> Option<f64> {
        let g = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
        g.get(&(plugin.to_owned(), name.to_owned())).copied()
    }

    pub fn histogram(&self, plugin: &str, name: &str) -> Summary {
        let h = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
        let mut c = self
            .metrics
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *c.entry((self.plugin.clone(), name.to_owned())).or_default() += delta;
    }
    fn gauge(&mut self, name: &str, value: f64) {
        let mut g = self
            .metrics
            .gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.insert((self.plugin.clone(), name.to_owned()), value);
    }
    fn histogram(&mut self, name: &str, value: f64) {
        let mut h = self
            .metrics
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
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
        if let Some(sink) = &self.log {
            if matches!(level, Level::Info | Level::Warn | Level::Error) {
                sink.log(plugin, level, message);
            }
        }
    }
}
