//! The topics this broker hosts: creation, deletion, partition growth,
//! config changes, and their persistence in the data directory.
//!
//! Layout: `<data>/topics/<name>.yaml` holds a topic's id, partition count,
//! leader epoch and config overrides (written to a temporary file, fsynced
//! and renamed); `<data>/<name>-<partition>/` is each partition's log;
//! `<data>/cluster.yaml` keeps the cluster id.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use fjord_log::{Log, LogConfig, RollHook};
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dynamic_config::{BrokerConfigTable, DynamicDefaults, DynamicHook, DynamicHooks};
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::topic_config::TopicConfigs;

mod creation;
mod deletion;
mod names;
mod replicas;

pub(crate) use creation::check_partition_limit;
use creation::discard;

pub(crate) use names::check_collision;
pub use names::validate_topic_name;

/// The most partitions one topic may have (a guard against a request that
/// would open millions of logs).
pub(crate) const MAX_PARTITIONS: i32 = 10_000;

/// A Kafka error code with a message, for admin answers.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: i16,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(error: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            code: error.code(),
            message: message.into(),
        }
    }

    /// No topic is called `name`.
    pub(crate) fn unknown_topic(name: &str) -> Self {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name:?} does not exist"),
        )
    }
}

/// One topic: its id, the partitions this broker hosts, and config
/// overrides. A single node hosts every partition; in a cluster a broker
/// hosts the partitions it is a replica of.
#[derive(Debug)]
pub struct Topic {
    name: String,
    id: Uuid,
    /// The topic's partition count, hosted here or not.
    partition_count: AtomicI32,
    /// Created through the controller quorum and replicated by other
    /// brokers; a single node's topics (and internal topics) are not.
    replicated: bool,
    partitions: RwLock<BTreeMap<i32, Arc<Partition>>>,
    configs: RwLock<TopicConfigs>,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic id (Metadata v10+, DeleteTopics v6).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The partition with this index, if this broker hosts it.
    pub fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        self.partitions.read().get(&index).cloned()
    }

    /// The partitions this broker hosts, by index.
    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }

    /// Number of partitions of the topic (including those hosted by other
    /// brokers).
    pub fn partition_count(&self) -> i32 {
        self.partition_count.load(Ordering::Acquire)
    }

    /// Whether the topic came from the controller quorum (cluster mode).
    pub(crate) fn is_replicated(&self) -> bool {
        self.replicated
    }

    /// The config overrides.
    pub fn configs(&self) -> TopicConfigs {
        self.configs.read().clone()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    name: String,
    topic_id: String,
    partitions: i32,
    #[serde(default)]
    leader_epoch: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    /// The partitions hosted here, when not all of them (a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hosted: Option<Vec<i32>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
}

/// Every topic of the broker, shared by all connections.
#[derive(Debug)]
pub struct TopicRegistry {
    data_dir: PathBuf,
    /// The log settings of a topic without overrides: `base_defaults`
    /// with the dynamic broker configs applied.
    defaults: RwLock<LogConfig>,
    /// The defaults the broker's config file gives.
    base_defaults: LogConfig,
    /// The dynamic broker configs that apply here.
    dynamic: RwLock<Arc<DynamicDefaults>>,
    /// Told of the dynamic configs on every change ([`TopicRegistry::on_dynamic`]).
    dynamic_hooks: DynamicHooks,
    cluster_id: String,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises creation, deletion and alteration.
    admin: Mutex<()>,
    /// `max.partitions`: the most partitions this broker hosts (see
    /// [`TopicRegistry::set_partition_limit`]).
    partition_limit: AtomicUsize,
    /// Set on every log of the registry, now and to come (see
    /// [`TopicRegistry::on_roll`]).
    roll_hook: Mutex<Option<RollHook>>,
    /// Partition directories renamed for deletion and when (ms) to delete
    /// them (`file.delete.delay.ms`, see `deletion.rs`).
    pending_dir_deletes: Mutex<Vec<(i64, PathBuf)>>,
    /// One broker per data directory.
    _lock: crate::data_dir_lock::DataDirLock,
}

impl TopicRegistry {
    /// Opens the data directory: loads the cluster id and every topic, and
    /// reopens their logs (recovering them if the broker crashed).
    pub fn open(
        data_dir: impl Into<PathBuf>,
        defaults: LogConfig,
        cluster_id: Option<String>,
    ) -> Result<Self, BrokerError> {
        let data_dir = data_dir.into();
        let topics_dir = data_dir.join("topics");
        fs::create_dir_all(&topics_dir).map_err(|e| BrokerError::metadata(&topics_dir, e))?;
        let lock = crate::data_dir_lock::DataDirLock::acquire(&data_dir)?;
        let cluster_id = load_cluster_id(&data_dir, cluster_id)?;
        let registry = TopicRegistry {
            data_dir,
            defaults: RwLock::new(defaults.clone()),
            base_defaults: defaults,
            dynamic: RwLock::default(),
            dynamic_hooks: DynamicHooks::default(),
            cluster_id,
            topics: RwLock::new(HashMap::new()),
            admin: Mutex::new(()),
            partition_limit: AtomicUsize::new(usize::MAX),
            roll_hook: Mutex::new(None),
            pending_dir_deletes: Mutex::new(Vec::new()),
            _lock: lock,
        };
        remove_leftovers(&registry.data_dir);
        remove_leftovers(&topics_dir);
        deletion::remove_deleted_dirs(&registry.data_dir);
        let entries =
            fs::read_dir(&topics_dir).map_err(|e| BrokerError::metadata(&topics_dir, e))?;
        for entry in entries {
            let path = entry
                .map_err(|e| BrokerError::metadata(&topics_dir, e))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| BrokerError::metadata(&path, e))?;
            let file: TopicFile =
                crate::yaml::from_str(&text).map_err(|e| BrokerError::metadata(&path, e))?;
            let topic = registry.load_topic(file, &path)?;
            tracing::info!(
                topic = topic.name(),
                partitions = topic.partition_count(),
                "loaded topic"
            );
            registry.topics.write().insert(topic.name.clone(), topic);
        }
        Ok(registry)
    }

    fn load_topic(&self, file: TopicFile, path: &Path) -> Result<Arc<Topic>, BrokerError> {
        validate_topic_name(&file.name).map_err(|e| BrokerError::metadata(path, e))?;
        let id = Uuid::parse_str(&file.topic_id).map_err(|e| BrokerError::metadata(path, e))?;
        let configs =
            TopicConfigs::from_pairs(file.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| BrokerError::metadata(path, e))?;
        let log_config = configs.log_config(&self.defaults());
        let count = file.partitions.clamp(0, MAX_PARTITIONS);
        let replicated = file.hosted.is_some();
        let hosted = file.hosted.unwrap_or_else(|| (0..count).collect());
        let mut partitions = BTreeMap::new();
        for index in hosted.into_iter().filter(|i| (0..count).contains(i)) {
            let partition = self.open_partition(
                &file.name,
                index,
                &log_config,
                file.leader_epoch,
                replicated,
            )?;
            partitions.insert(index, Arc::new(partition));
        }
        Ok(Arc::new(Topic {
            name: file.name,
            id,
            partition_count: AtomicI32::new(count),
            replicated,
            partitions: RwLock::new(partitions),
            configs: RwLock::new(configs),
        }))
    }

    fn open_partition(
        &self,
        topic: &str,
        index: i32,
        config: &LogConfig,
        leader_epoch: i32,
        replicated: bool,
    ) -> Result<Partition, BrokerError> {
        let dir = self.data_dir.join(format!("{topic}-{index}"));
        let log = Log::open(&dir, config.clone()).map_err(|source| BrokerError::Log {
            path: dir.clone(),
            source,
        })?;
        if let Some(hook) = &*self.roll_hook.lock() {
            log.on_roll(hook.clone());
        }
        Ok(if replicated {
            Partition::replicated(topic, index, log, leader_epoch)
        } else {
            Partition::new(topic, index, log, leader_epoch)
        })
    }

    /// Calls `hook` after every roll that closes a segment of any of the
    /// registry's logs, those open now and those opened later (the log
    /// cleaner's wake-up: [`Log::on_roll`]).
    pub(crate) fn on_roll(&self, hook: RollHook) {
        // The broker sets it before it serves: a partition opened
        // concurrently could otherwise miss both the field and the loop.
        let mut slot = self.roll_hook.lock();
        *slot = Some(hook.clone());
        for topic in self.list() {
            for partition in topic.partitions() {
                partition.log().on_roll(hook.clone());
            }
        }
    }

    /// The cluster id reported in Metadata.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The broker-wide default log settings (the config file's, with the
    /// dynamic broker configs applied).
    pub fn defaults(&self) -> LogConfig {
        self.defaults.read().clone()
    }

    /// The dynamic broker configs that apply to this broker.
    pub(crate) fn dynamic(&self) -> Arc<DynamicDefaults> {
        Arc::clone(&self.dynamic.read())
    }

    /// Applies the dynamic broker configs `table` (this broker being
    /// `node_id`): new defaults for every topic's logs where the topic
    /// does not override them. Nothing happens when the table is the one
    /// applied already.
    pub(crate) fn set_dynamic(&self, table: &BrokerConfigTable, node_id: i32) {
        if self.dynamic.read().table == *table {
            return;
        }
        let _admin = self.admin.lock();
        let dynamic = DynamicDefaults::new(table.clone(), node_id);
        let defaults = dynamic.apply(&self.base_defaults);
        *self.defaults.write() = defaults.clone();
        *self.dynamic.write() = Arc::new(dynamic.clone());
        for topic in self.list() {
            let log_config = topic.configs().log_config(&defaults);
            for partition in topic.partitions() {
                partition.set_config(log_config.clone());
            }
        }
        self.dynamic_hooks.call(&dynamic);
        tracing::info!(?table, "applied dynamic broker configs");
    }

    /// Calls `hook` with the dynamic broker configs in force now, and
    /// again on every change (the broker settings among them are applied
    /// by whoever uses them: connection limits, the log cleaner).
    pub(crate) fn on_dynamic(&self, hook: DynamicHook) {
        let _admin = self.admin.lock();
        hook(&self.dynamic());
        self.dynamic_hooks.add(hook);
    }

    /// Every config of a topic with `configs` as its overrides, as
    /// DescribeConfigs answers: `(name, value, source, type)`.
    pub(crate) fn describe_configs(&self, configs: &TopicConfigs) -> Vec<(String, String, i8, i8)> {
        configs.describe(&self.defaults(), &self.dynamic())
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    /// The topic with this id.
    pub fn by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// The topics with these ids, in one pass over the registry (a request
    /// naming many topics by id costs one scan, not one per topic).
    pub fn by_ids(&self, ids: &std::collections::HashSet<Uuid>) -> HashMap<Uuid, Arc<Topic>> {
        if ids.is_empty() {
            return HashMap::new();
        }
        self.topics
            .read()
            .values()
            .filter(|t| ids.contains(&t.id))
            .map(|t| (t.id, Arc::clone(t)))
            .collect()
    }

    /// Every topic, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.topics.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// Creates a topic (or only checks that it could be, with
    /// `validate_only`).
    pub(crate) fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
        validate_only: bool,
    ) -> Result<Option<Arc<Topic>>, ApiError> {
        validate_topic_name(name)
            .map_err(|e| ApiError::new(ResponseError::InvalidTopicException, e))?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!("number of partitions must be in [1, {MAX_PARTITIONS}], not {partitions}"),
            ));
        }
        let _admin = self.admin.lock();
        if self.get(name).is_some() {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("topic {name:?} already exists"),
            ));
        }
        check_collision(name, self.topics.read().keys().map(String::as_str))?;
        self.check_partition_limit(name, partitions as usize)?;
        if validate_only {
            return Ok(None);
        }
        let log_config = configs.log_config(&self.defaults());
        let opened = self.open_new_partitions(name, 0..partitions, &log_config, false)?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: random_uuid(),
            partition_count: AtomicI32::new(partitions),
            replicated: false,
            partitions: RwLock::new(opened),
            configs: RwLock::new(configs),
        });
        if let Err(e) = self.persist(&topic) {
            tracing::error!(topic = name, error = %e, "cannot write topic metadata");
            let _ = fs::remove_file(self.topic_file(name));
            discard(topic.partitions());
            return Err(ApiError::new(
                ResponseError::KafkaStorageError,
                e.to_string(),
            ));
        }
        self.topics
            .write()
            .insert(name.to_string(), Arc::clone(&topic));
        tracing::info!(topic = name, partitions, "created topic");
        Ok(Some(topic))
    }

    /// Deletes a topic: forgets it, then removes its metadata file and logs.
    pub(crate) fn delete(&self, name: &str) -> Result<(), ApiError> {
        let _admin = self.admin.lock();
        let Some(topic) = self.topics.write().remove(name) else {
            return Err(ApiError::unknown_topic(name));
        };
        let path = self.topic_file(name);
        if let Err(e) = fs::remove_file(&path) {
            tracing::error!(path = %path.display(), error = %e, "cannot remove topic metadata");
        }
        for partition in topic.partitions() {
            partition.wake();
            self.remove_partition_dir(&partition);
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub(crate) fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _admin = self.admin.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| ApiError::unknown_topic(name))?;
        let current = topic.partition_count();
        if count <= current || count > MAX_PARTITIONS {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                format!(
                    "topic {name:?} has {current} partitions; the new count must be in ({current}, {MAX_PARTITIONS}], not {count}"
                ),
            ));
        }
        self.check_partition_limit(name, (count - current) as usize)?;
        if validate_only {
            return Ok(());
        }
        let log_config = topic.configs().log_config(&self.defaults());
        // Published together once all are open: a producer must not write
        // to a partition that a later failure takes away again.
        let opened =
            self.open_new_partitions(name, current..count, &log_config, topic.replicated)?;
        let added: Vec<Arc<Partition>> = opened.values().cloned().collect();
        topic.partitions.write().extend(opened);
        topic.partition_count.store(count, Ordering::Release);
        if let Err(e) = self.persist(&topic) {
            tracing::error!(topic = name, error = %e, "cannot write topic metadata");
            topic.partition_count.store(current, Ordering::Release);
            topic.partitions.write().retain(|&index, _| index < current);
            discard(added);
            return Err(ApiError::new(
                ResponseError::KafkaStorageError,
                e.to_string(),
            ));
        }
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides and applies them to its logs.
    pub(crate) fn set_configs(&self, name: &str, configs: TopicConfigs) -> Result<(), ApiError> {
        let _admin = self.admin.lock();
        let topic = self
            .get(name)
            .ok_or_else(|| ApiError::unknown_topic(name))?;
        let log_config = configs.log_config(&self.defaults());
        *topic.configs.write() = configs;
        for partition in topic.partitions() {
            partition.set_config(log_config.clone());
        }
        self.persist(&topic)
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }

    fn topic_file(&self, name: &str) -> PathBuf {
        self.data_dir.join("topics").join(format!("{name}.yaml"))
    }

    fn persist(&self, topic: &Topic) -> Result<(), BrokerError> {
        let file = TopicFile {
            name: topic.name.clone(),
            topic_id: topic.id.to_string(),
            partitions: topic.partition_count(),
            leader_epoch: topic.partitions().first().map_or(0, |p| p.leader_epoch()),
            configs: topic.configs().overrides().clone(),
            hosted: topic
                .replicated
                .then(|| topic.partitions.read().keys().copied().collect()),
        };
        let text = crate::yaml::to_string(&file)
            .map_err(|e| BrokerError::metadata(self.topic_file(&topic.name), e))?;
        write_atomically(&self.topic_file(&topic.name), text.as_bytes())
    }

    /// Flushes and checkpoints every log (graceful shutdown).
    pub fn close_all(&self) -> Result<(), BrokerError> {
        let mut first_error = None;
        for topic in self.list() {
            for partition in topic.partitions() {
                partition.wake();
                if let Err(e) = partition.checkpoint_high_watermark() {
                    tracing::warn!(dir = %partition.log().dir().display(), error = %e, "high watermark not checkpointed");
                }
                if let Err(e) = partition.snapshot_producers() {
                    // Not fatal: the next start scans the log instead.
                    tracing::warn!(dir = %partition.log().dir().display(), error = %e, "producer snapshot not written");
                }
                if let Err(source) = partition.log().close() {
                    let path = partition.log().dir().to_path_buf();
                    tracing::error!(path = %path.display(), error = %source, "cannot close log");
                    first_error.get_or_insert(BrokerError::Log { path, source });
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One round of periodic log work; errors are logged, not returned.
    pub(crate) fn maintain(&self, now_ms: i64, retention: bool, checkpoint: bool) {
        if retention {
            self.delete_expired_dirs(now_ms);
        }
        for topic in self.list() {
            for partition in topic.partitions() {
                // A partition deleted meanwhile is skipped; one being
                // deleted waits for this round's work on it.
                partition.with_files(|| {
                    Self::maintain_partition(&partition, now_ms, retention, checkpoint)
                });
            }
        }
    }

    /// The periodic work on one partition (under its files lock).
    fn maintain_partition(partition: &Partition, now_ms: i64, retention: bool, checkpoint: bool) {
        let log = partition.log();
        if let Err(e) = log.maybe_flush(now_ms) {
            tracing::error!(dir = %log.dir().display(), error = %e, "flush failed");
        }
        if retention {
            match log.enforce_retention(now_ms) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(dir = %log.dir().display(), segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::error!(dir = %log.dir().display(), error = %e, "retention failed")
                }
            }
        }
        if checkpoint {
            if let Err(e) = partition.checkpoint_high_watermark() {
                tracing::error!(dir = %log.dir().display(), error = %e, "high watermark checkpoint failed");
            }
            if let Err(e) = log.checkpoint() {
                tracing::error!(dir = %log.dir().display(), error = %e, "checkpoint failed");
            }
        }
    }
}

fn load_cluster_id(data_dir: &Path, configured: Option<String>) -> Result<String, BrokerError> {
    let path = data_dir.join("cluster.yaml");
    if let Some(id) = configured {
        return Ok(id);
    }
    match fs::read_to_string(&path) {
        Ok(text) => {
            let file: ClusterFile =
                crate::yaml::from_str(&text).map_err(|e| BrokerError::metadata(&path, e))?;
            Ok(file.cluster_id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let file = ClusterFile {
                cluster_id: format!("fjord-{}", random_uuid().simple()),
            };
            let text =
                crate::yaml::to_string(&file).map_err(|e| BrokerError::metadata(&path, e))?;
            write_atomically(&path, text.as_bytes())?;
            Ok(file.cluster_id)
        }
        Err(e) => Err(BrokerError::metadata(&path, e)),
    }
}

/// Writes `path` so that a crash leaves either the old or the new content.
///
/// The temporary file has a short name of its own, not `path` with a
/// suffix: a topic's file is `<name>.yaml`, 254 bytes for a 249-character
/// name, and a suffix would pass the file system's 255-byte limit.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), BrokerError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_file_name(format!(
        "{TMP_PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        // A disk that is full must not keep the half-written copy too.
        let _ = fs::remove_file(&tmp);
        BrokerError::metadata(path, e)
    })
}

/// How the temporary files of [`write_atomically`] begin; those left by a
/// crash are removed when the registry opens.
const TMP_PREFIX: &str = ".tmp-";

/// Removes the temporary files of [`write_atomically`] a crash left in
/// `dir` (the data directory: `cluster.yaml`, `acls.yaml`; `topics/`).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let leftover = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TMP_PREFIX));
        if leftover {
            tracing::info!(path = %path.display(), "removing a temporary file left by a crash");
            let _ = fs::remove_file(&path);
        }
    }
}

/// A random (version 4) UUID from the standard library's hasher seeds.
fn random_uuid() -> Uuid {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let word = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(elapsed.as_nanos());
        }
        hasher.finish()
    };
    let (high, low) = (word(), word());
    uuid::Builder::from_random_bytes(((u128::from(high) << 64) | u128::from(low)).to_be_bytes())
        .into_uuid()
}

#[cfg(test)]
mod tests;
