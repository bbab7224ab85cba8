//! What the broker records through the `metrics` facade: requests per API
//! (count, errors, duration), the fetch purgatory and the log cleaner. The
//! recorder (Prometheus, in `fjord-http`) is installed by the process;
//! without one these calls cost next to nothing. Per-partition byte and
//! record counters are not here: they live on each [`Partition`] (see
//! [`Partition::traffic`]) so they disappear with their topic.
//!
//! [`Partition`]: crate::Partition
//! [`Partition::traffic`]: crate::Partition::traffic

use std::sync::OnceLock;
use std::time::Duration;

use fjord_log::CleanStats;
use kafka_protocol::messages::{ApiKey, ResponseKind};

/// The API's name as Kafka spells it (`Produce`, `Fetch`, …), the `api`
/// label. Built once so a request pays an index, not a format.
pub(crate) fn api_name(key: ApiKey) -> &'static str {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let max = ApiKey::iter().map(|k| k as i16).max().unwrap_or(0).max(0) as usize;
        let mut names = vec!["Unknown"; max + 1];
        for key in ApiKey::iter() {
            if let Ok(i) = usize::try_from(key as i16) {
                // Leaked once per API key, for the life of the process.
                names[i] = Box::leak(format!("{key:?}").into_boxed_str());
            }
        }
        names
    });
    usize::try_from(key as i16)
        .ok()
        .and_then(|i| names.get(i).copied())
        .unwrap_or("Unknown")
}

/// Records one handled request: `fjord_requests_total`,
/// `fjord_request_duration_seconds` and, when `failed`,
/// `fjord_request_errors_total`.
pub(crate) fn request(api: ApiKey, elapsed: Duration, failed: bool) {
    let api = api_name(api);
    metrics::counter!("fjord_requests_total", "api" => api).increment(1);
    metrics::histogram!("fjord_request_duration_seconds", "api" => api).record(elapsed);
    if failed {
        metrics::counter!("fjord_request_errors_total", "api" => api).increment(1);
    }
}

/// Whether an answer carries an error code: anywhere per partition for the
/// data APIs, per topic for topic administration, at the top for the rest.
/// APIs not listed here count as errors only when they close the connection.
pub(crate) fn response_failed(response: &ResponseKind) -> bool {
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|p| p.error_code != 0),
        ResponseKind::Fetch(r) => {
            r.error_code != 0
                || r.responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.error_code != 0)
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.error_code != 0),
        ResponseKind::CreateTopics(r) => r.topics.iter().any(|t| t.error_code != 0),
        ResponseKind::DeleteTopics(r) => r.responses.iter().any(|t| t.error_code != 0),
        ResponseKind::JoinGroup(r) => r.error_code != 0,
        ResponseKind::SyncGroup(r) => r.error_code != 0,
        ResponseKind::Heartbeat(r) => r.error_code != 0,
        ResponseKind::LeaveGroup(r) => r.error_code != 0,
        ResponseKind::InitProducerId(r) => r.error_code != 0,
        _ => false,
    }
}

/// Counts a fetch parked waiting for data in `fjord_fetch_purgatory_size`
/// while it lives, so a fetch dropped with its connection leaves the gauge
/// too.
pub(crate) struct FetchPurgatory;

impl FetchPurgatory {
    pub(crate) fn enter() -> Self {
        metrics::gauge!("fjord_fetch_purgatory_size").increment(1.0);
        FetchPurgatory
    }
}

impl Drop for FetchPurgatory {
    fn drop(&mut self) {
        metrics::gauge!("fjord_fetch_purgatory_size").decrement(1.0);
    }
}

/// Records one log cleaning that did something.
pub(crate) fn cleaned(stats: &CleanStats, now_ms: i64) {
    metrics::counter!("fjord_cleaner_runs_total").increment(1);
    metrics::counter!("fjord_cleaner_bytes_read_total").increment(stats.bytes_read);
    metrics::counter!("fjord_cleaner_bytes_written_total").increment(stats.bytes_written);
    metrics::counter!("fjord_cleaner_records_removed_total").increment(stats.records_removed);
    metrics::gauge!("fjord_cleaner_last_run_timestamp_seconds").set(now_ms as f64 / 1000.0);
}

/// Number of records in the stored batches `bytes` (whole batches, as a
/// fetch serves them), from the batch headers: nothing is decompressed.
pub(crate) fn records_in_batches(bytes: &[u8]) -> u64 {
    let mut at = 0;
    let mut records = 0u64;
    while at < bytes.len() {
        let Ok(header) = fjord_log::BatchHeader::parse(&bytes[at..]) else {
            break;
        };
        records += header.records_count.max(0) as u64;
        at += header.size().max(fjord_log::HEADER_LEN);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_are_kafkas() {
        assert_eq!(api_name(ApiKey::Produce), "Produce");
        assert_eq!(api_name(ApiKey::Fetch), "Fetch");
        assert_eq!(api_name(ApiKey::OffsetCommit), "OffsetCommit");
    }

    #[test]
    fn garbage_counts_no_records() {
        assert_eq!(records_in_batches(&[]), 0);
        assert_eq!(records_in_batches(&[1, 2, 3]), 0);
    }
}
