//! The Prometheus metrics that `/metrics` serves.
//!
//! Two kinds of series end up in one answer:
//!
//! - what the broker and the pipelines record where things happen, through
//!   the `metrics` facade (requests per API, purgatories, the cleaner, pipeline
//!   steps, plugin calls). [`Metrics::install`] installs the Prometheus
//!   recorder that keeps them; it must run before the broker starts, since
//!   what is recorded without a recorder is dropped.
//! - what is read from the broker's state when the page is rendered (log
//!   sizes and offsets, per-partition traffic, group lag). These are written
//!   as text by [`Metrics::render`] instead of going through the global
//!   registry, which never forgets a series: a deleted topic or group would
//!   otherwise keep reporting its last value forever.
//!
//! Every metric is listed, with its type and labels, in `docs/metrics.md`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use fjord_broker::{GroupDescription, GroupOffset, LocalBroker};
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetricsError {
    /// The exporter refused its configuration (histogram buckets).
    #[error("cannot build the Prometheus recorder: {0}")]
    Build(String),
    /// Another recorder was installed in this process first; only one can be.
    #[error("cannot install the Prometheus recorder: {0}")]
    Install(String),
}

/// The process's Prometheus recorder, rendered on demand. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// Bucket upper bounds of the latency histograms, 100 µs to 10 s: a fetch
/// answered from the page cache takes well under a millisecond, a parked
/// fetch up to its `max_wait_ms`, a plugin call anything in between.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The metrics recorded through the `metrics` facade: name, kind, unit, help.
const RECORDED: &[(&str, Kind, Unit, &str)] = &[
    (
        "fjord_requests_total",
        Kind::Counter,
        Unit::Count,
        "Kafka requests handled, by API.",
    ),
    (
        "fjord_request_errors_total",
        Kind::Counter,
        Unit::Count,
        "Kafka requests whose answer carried an error code or that closed the connection, by API.",
    ),
    (
        "fjord_request_duration_seconds",
        Kind::Histogram,
        Unit::Seconds,
        "Time from a decoded request to its answer, by API (a parked fetch counts its wait).",
    ),
    (
        "fjord_fetch_purgatory_size",
        Kind::Gauge,
        Unit::Count,
        "Fetches parked waiting for min_bytes or max_wait_ms.",
    ),
    (
        "fjord_produce_purgatory_size",
        Kind::Gauge,
        Unit::Count,
        "Appends waiting for their fsync (durability: fsync or flush.messages) before the produce is answered.",
    ),
    (
        "fjord_isr_shrinks_total",
        Kind::Counter,
        Unit::Count,
        "In-sync replica set shrinks; always 0 until replication exists.",
    ),
    (
        "fjord_isr_expands_total",
        Kind::Counter,
        Unit::Count,
        "In-sync replica set expansions; always 0 until replication exists.",
    ),
    (
        "fjord_cleaner_runs_total",
        Kind::Counter,
        Unit::Count,
        "Log cleanings (compactions) that rewrote something.",
    ),
    (
        "fjord_cleaner_bytes_read_total",
        Kind::Counter,
        Unit::Bytes,
        "Bytes of segments the log cleaner read.",
    ),
    (
        "fjord_cleaner_bytes_written_total",
        Kind::Counter,
        Unit::Bytes,
        "Bytes of cleaned segments the log cleaner wrote.",
    ),
    (
        "fjord_cleaner_records_removed_total",
        Kind::Counter,
        Unit::Count,
        "Records the log cleaner removed (superseded keys, expired tombstones).",
    ),
    (
        "fjord_cleaner_last_run_timestamp_seconds",
        Kind::Gauge,
        Unit::Seconds,
        "Unix time of the last log cleaning that rewrote something; 0 before the first.",
    ),
    (
        "fjord_pipeline_step_records_in_total",
        Kind::Counter,
        Unit::Count,
        "Records into a pipeline step, by pipeline and step.",
    ),
    (
        "fjord_pipeline_step_records_out_total",
        Kind::Counter,
        Unit::Count,
        "Records out of a pipeline step, by pipeline and step.",
    ),
    (
        "fjord_pipeline_step_records_failed_total",
        Kind::Counter,
        Unit::Count,
        "Records a pipeline step failed after their retries, by pipeline and step.",
    ),
    (
        "fjord_pipeline_dead_lettered_total",
        Kind::Counter,
        Unit::Count,
        "Records written to a pipeline's dead-letter topic, by pipeline.",
    ),
    (
        "fjord_pipeline_plugin_counter_total",
        Kind::Counter,
        Unit::Count,
        "A counter a pipeline step's (or sink's) plugin records with ctx.counter, by pipeline, step and counter name; updated with the pipeline's status every second.",
    ),
    (
        "fjord_pipeline_plugin_gauge",
        Kind::Gauge,
        Unit::Count,
        "A gauge a pipeline step's (or sink's) plugin sets with ctx.gauge, by pipeline, step and gauge name; updated with the pipeline's status every second.",
    ),
    (
        "fjord_plugin_call_duration_seconds",
        Kind::Histogram,
        Unit::Seconds,
        "Duration of one plugin call (one batch), by plugin.",
    ),
];

/// The recorded gauges without labels.
const UNLABELLED_GAUGES: &[&str] = &[
    "fjord_fetch_purgatory_size",
    "fjord_produce_purgatory_size",
    "fjord_cleaner_last_run_timestamp_seconds",
];

/// The recorded counters without labels.
const UNLABELLED_COUNTERS: &[&str] = &[
    "fjord_isr_shrinks_total",
    "fjord_isr_expands_total",
    "fjord_cleaner_runs_total",
    "fjord_cleaner_bytes_read_total",
    "fjord_cleaner_bytes_written_total",
    "fjord_cleaner_records_removed_total",
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The metrics read from the broker at render time that carry no labels
/// beyond topic/partition: name, help, and how to read them.
type PartitionGauge = (&'static str, &'static str, &'static str, PartitionValue);
type PartitionValue = fn(&fjord_broker::Partition) -> u64;

const PARTITION_FAMILIES: &[PartitionGauge] = &[
    (
        "fjord_log_size_bytes",
        "gauge",
        "Bytes of the partition's log segments on disk.",
        |p| p.log().size_bytes(),
    ),
    (
        "fjord_log_start_offset",
        "gauge",
        "First offset the partition's log holds.",
        |p| p.log_start_offset().max(0) as u64,
    ),
    (
        "fjord_log_end_offset",
        "gauge",
        "Offset the partition's next append gets.",
        |p| p.log().log_end_offset().max(0) as u64,
    ),
    (
        "fjord_high_watermark",
        "gauge",
        "The partition's high watermark: consumers read below it.",
        |p| p.high_watermark().max(0) as u64,
    ),
    (
        "fjord_log_segments",
        "gauge",
        "Segments of the partition's log.",
        |p| p.log().segment_count() as u64,
    ),
    (
        "fjord_topic_bytes_in_total",
        "counter",
        "Bytes of record batches appended to the partition since this process opened it.",
        |p| p.traffic().bytes_in,
    ),
    (
        "fjord_topic_records_in_total",
        "counter",
        "Records appended to the partition since this process opened it.",
        |p| p.traffic().records_in,
    ),
    (
        "fjord_topic_bytes_out_total",
        "counter",
        "Bytes of record batches served to fetches from the partition since this process opened it.",
        |p| p.traffic().bytes_out,
    ),
    (
        "fjord_topic_records_out_total",
        "counter",
        "Records in the batches served to fetches from the partition (whole batches, so a fetch from the middle of one counts all of it).",
        |p| p.traffic().records_out,
    ),
];

impl Metrics {
    /// Installs the Prometheus recorder as the process's global `metrics`
    /// recorder and describes every metric. Only the first call installs;
    /// later ones return a handle on the same recorder (or the same error).
    pub fn install() -> Result<Metrics, MetricsError> {
        static INSTALLED: OnceLock<Result<PrometheusHandle, MetricsError>> = OnceLock::new();
        INSTALLED
            .get_or_init(install_recorder)
            .clone()
            .map(|handle| Metrics { handle })
    }

    /// The Prometheus text exposition of every metric: what was recorded,
    /// then what `broker` holds now (logs, per-partition traffic, groups).
    pub fn render(&self, broker: &LocalBroker) -> String {
        // Upkeep bounds the histograms' memory; a scrape is a fine moment.
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        render_broker(&mut out, broker);
        out
    }
}

fn install_recorder() -> Result<PrometheusHandle, MetricsError> {
    let build = |e: metrics_exporter_prometheus::BuildError| MetricsError::Build(e.to_string());
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("fjord_request_duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )
        .map_err(build)?
        .set_buckets_for_metric(
            Matcher::Full("fjord_plugin_call_duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )
        .map_err(build)?
        .install_recorder()
        .map_err(|e| MetricsError::Install(e.to_string()))?;
    for &(name, kind, unit, help) in RECORDED {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, unit, help);
            }
            Kind::Gauge => {
                metrics::describe_gauge!(name, unit, help);
            }
            Kind::Histogram => {
                metrics::describe_histogram!(name, unit, help);
            }
        }
    }
    // Series without labels show from the first scrape, at 0, so a
    // dashboard or alert finds them before anything happened (and the ISR
    // ones, which stay 0 until replication exists).
    for name in UNLABELLED_COUNTERS {
        metrics::counter!(*name).increment(0);
    }
    for name in UNLABELLED_GAUGES {
        metrics::gauge!(*name).increment(0.0);
    }
    Ok(handle)
}

/// Appends the families read from `broker` now.
fn render_broker(out: &mut String, broker: &LocalBroker) {
    let partitions: Vec<_> = broker
        .topics()
        .iter()
        .flat_map(|topic| topic.partitions())
        .collect();
    for &(name, kind, help, value) in PARTITION_FAMILIES {
        family(out, name, kind, help);
        for p in &partitions {
            let _ = write!(out, "{name}{{topic=\"");
            escape(out, p.topic());
            let _ = writeln!(out, "\",partition=\"{}\"}} {}", p.index(), value(p));
        }
    }
    family(
        out,
        "fjord_partitions",
        "gauge",
        "Partitions this broker leads.",
    );
    let _ = writeln!(out, "fjord_partitions {}", partitions.len());
    family(
        out,
        "fjord_under_replicated_partitions",
        "gauge",
        "Partitions with fewer in-sync replicas than replicas; 0 on a single node, whose one replica is always in sync.",
    );
    let _ = writeln!(out, "fjord_under_replicated_partitions 0");

    let groups = broker.groups();
    for &(name, help, value) in GROUP_PARTITION_FAMILIES {
        family(out, name, "gauge", help);
        for group in &groups {
            // Offsets on topics deleted since are left out.
            for offset in group.offsets.iter().filter(|o| o.high_watermark >= 0) {
                let _ = write!(out, "{name}{{group=\"");
                escape(out, &group.group_id);
                out.push_str("\",topic=\"");
                escape(out, &offset.topic);
                let _ = writeln!(
                    out,
                    "\",partition=\"{}\"}} {}",
                    offset.partition,
                    value(offset)
                );
            }
        }
    }
    for &(name, help, value) in GROUP_FAMILIES {
        family(out, name, "gauge", help);
        for group in &groups {
            let _ = write!(out, "{name}{{group=\"");
            escape(out, &group.group_id);
            let _ = writeln!(out, "\"}} {}", value(group));
        }
    }
}

/// Per group and partition: name, help, value.
type GroupPartitionFamily = (&'static str, &'static str, fn(&GroupOffset) -> i64);

const GROUP_PARTITION_FAMILIES: &[GroupPartitionFamily] = &[
    (
        "fjord_consumer_group_lag",
        "High watermark minus the group's committed offset, per partition it committed on.",
        |o| o.lag,
    ),
    (
        "fjord_consumer_group_committed_offset",
        "The group's committed offset (the next offset it reads), per partition it committed on whose topic still exists; a pipeline's position is its group `pipeline.NAME`'s.",
        |o| o.committed,
    ),
];

/// Per group: name, help, value.
type GroupFamily = (&'static str, &'static str, fn(&GroupDescription) -> i64);

const GROUP_FAMILIES: &[GroupFamily] = &[
    (
        "fjord_consumer_group_lag_sum",
        "The group's lag summed over its partitions.",
        |g| g.lag,
    ),
    (
        "fjord_consumer_group_members",
        "Members of the group now.",
        |g| g.members.len() as i64,
    ),
];

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlabelled_counters_are_described_counters() {
        for name in UNLABELLED_COUNTERS {
            assert!(
                RECORDED
                    .iter()
                    .any(|(n, kind, _, _)| n == name && matches!(kind, Kind::Counter)),
                "{name}"
            );
        }
        for name in UNLABELLED_GAUGES {
            assert!(
                RECORDED
                    .iter()
                    .any(|(n, kind, _, _)| n == name && matches!(kind, Kind::Gauge)),
                "{name}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape(&mut out, "a\"b\\c\nd");
        assert_eq!(out, "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn install_twice_gives_the_same_recorder() {
        let first = Metrics::install().expect("installs");
        metrics::counter!("fjord_requests_total", "api" => "UnitTest").increment(3);
        let second = Metrics::install().expect("second call succeeds");
        assert!(
            second
                .handle
                .render()
                .contains("fjord_requests_total{api=\"UnitTest\"} 3"),
            "{}",
            first.handle.render()
        );
        assert!(second.handle.render().contains("fjord_isr_shrinks_total 0"));
    }
}
