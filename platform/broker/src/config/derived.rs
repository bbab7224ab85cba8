//! Settings turned into the values the subsystems take: timeouts and
//! intervals as durations, the log and cleaner configs, request limits,
//! pipeline paths. Not for checks: see `validate`.

use std::path::PathBuf;
use std::time::Duration;

use fjord_log::LogConfig;

use super::BrokerConfig;

impl BrokerConfig {
    /// `<log.dir>/pipelines`: the directory pipelines may use when
    /// `pipeline.allowed.paths` is not set.
    pub fn pipelines_dir(&self) -> PathBuf {
        self.data_dir.join("pipelines")
    }

    /// `pipeline.allowed.paths`, or its default.
    pub fn allowed_paths(&self) -> Vec<PathBuf> {
        self.pipeline_allowed_paths
            .clone()
            .unwrap_or_else(|| vec![self.pipelines_dir()])
    }

    /// How long a connection may wait between requests.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.connections_max_idle_ms)
    }

    /// The per-API request limits, by setting name: checked at startup
    /// and listed by DescribeConfigs.
    pub(crate) fn request_limits(&self) -> [(&'static str, usize); 5] {
        [
            (
                "request.max.metadata.topics",
                self.request_max_metadata_topics,
            ),
            (
                "request.max.produce.partitions",
                self.request_max_produce_partitions,
            ),
            (
                "request.max.fetch.partitions",
                self.request_max_fetch_partitions,
            ),
            ("request.max.admin.topics", self.request_max_admin_topics),
            ("request.max.groups", self.request_max_groups),
        ]
    }

    /// How long a request frame may take to arrive once it has started.
    pub(crate) fn frame_read_timeout(&self) -> Duration {
        Duration::from_millis(self.socket_request_read_timeout_ms)
    }

    /// How many segment files the broker keeps open: `log.open.files.max`,
    /// or half the soft `RLIMIT_NOFILE` now in force.
    pub fn open_files_capacity(&self) -> usize {
        self.log_open_files_max
            .unwrap_or_else(fjord_log::FileCache::default_capacity)
            .max(fjord_log::MIN_OPEN_FILES)
    }

    /// The log settings topics start from before their own overrides.
    pub fn default_log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms.filter(|ms| *ms > 0),
            retention_ms: self.retention_ms.filter(|ms| *ms >= 0),
            retention_bytes: self.retention_bytes.filter(|b| *b >= 0).map(|b| b as u64),
            flush_messages: self.flush_messages,
            flush_ms: self.flush_ms,
            durability: self.durability.into(),
            max_message_bytes: self.max_message_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            ..LogConfig::default()
        }
    }

    /// The cleaner's settings.
    pub fn cleaner_config(&self) -> fjord_log::CleanerConfig {
        fjord_log::CleanerConfig {
            dedupe_buffer_size: self.log_cleaner_dedupe_buffer_size,
            io_max_bytes_per_second: self.log_cleaner_io_max_bytes_per_second,
            threads: self.log_cleaner_threads.max(1),
        }
    }

    pub(crate) fn retention_check_interval(&self) -> Duration {
        Duration::from_millis(self.retention_check_interval_ms.max(10))
    }

    pub(crate) fn flush_check_interval(&self) -> Duration {
        Duration::from_millis(self.flush_check_interval_ms.max(10))
    }

    pub(crate) fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms.max(100))
    }
}
