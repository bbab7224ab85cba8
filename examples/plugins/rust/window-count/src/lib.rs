//! `window-count`: an example processor that counts records per tumbling
//! window and emits one record per window when it closes:
//!
//! ```json
//! {"window_start":1700000000000,"count":42}
//! ```
//!
//! Config: `window_ms`, the window length in milliseconds (default 60000).
//!
//! What it shows:
//! - state kept in the host's state store (`ctx.state_get/put`), not in the
//!   plugin's memory, so counts survive a restart of the pipeline and an
//!   instance replaced after a failure;
//! - `on_timer` emitting output of its own, independent of input batches;
//! - late records: a record for a window already emitted is dropped and
//!   counted in the `late_records` metric instead of reopening the window.
//!
//! State is scoped by the host to the partition, so each partition has its
//! own windows.

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, Record,
    RecordRef,
};

/// State key prefix of the open windows' counts.
const WINDOW_PREFIX: &[u8] = b"window/";
/// State key of the end of the last window emitted: records older than it
/// are late.
const CLOSED_KEY: &[u8] = b"closed-until";

/// The processor. Only the configuration lives here; counts live in the
/// host's state store.
#[derive(Debug)]
pub struct WindowCount {
    window_ms: i64,
}

/// The state key of the window starting at `start`. Big-endian with the
/// sign bit flipped, so that `state_scan_prefix` (key order) returns windows
/// in time order, negative timestamps included.
fn window_key(start: i64) -> Vec<u8> {
    let mut key = WINDOW_PREFIX.to_vec();
    key.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    key
}

/// The inverse of [`window_key`]; `None` for a key this plugin did not write.
fn window_start(key: &[u8]) -> Option<i64> {
    let bytes: [u8; 8] = key.strip_prefix(WINDOW_PREFIX)?.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// Numbers are stored as decimal text, so tooling that dumps state shows
/// something readable. `None` when absent (or not written by this plugin).
fn read_i64(value: Option<Vec<u8>>) -> Option<i64> {
    std::str::from_utf8(&value?).ok()?.parse().ok()
}

impl WindowCount {
    fn start_of(&self, timestamp: i64) -> i64 {
        timestamp - timestamp.rem_euclid(self.window_ms)
    }
}

impl Plugin for WindowCount {
    fn info() -> PluginInfo {
        PluginInfo::new("window-count", env!("CARGO_PKG_VERSION"))
            .description(
                "counts records per tumbling window; emits each count when the window closes",
            )
            .key(ConfigKey::optional(
                "window_ms",
                Some("60000"),
                "window length in milliseconds",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let window_ms: i64 = config.parse_or("window_ms", 60_000)?;
        if window_ms <= 0 {
            return Err(Error::msg(format!(
                "config key `window_ms`: must be positive, got {window_ms}"
            )));
        }
        Ok(WindowCount { window_ms })
    }
}

#[fjord_sdk::processor]
impl Processor for WindowCount {
    fn process(
        &mut self,
        record: RecordRef<'_>,
        _out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let closed_until = read_i64(ctx.state_get(CLOSED_KEY));
        if closed_until.is_some_and(|end| record.timestamp < end) {
            ctx.counter("late_records", 1);
            return Ok(());
        }
        let key = window_key(self.start_of(record.timestamp));
        let count = read_i64(ctx.state_get(&key)).unwrap_or(0) + 1;
        ctx.state_put(&key, count.to_string().as_bytes());
        // Nothing is emitted per record: output comes from `on_timer`.
        Ok(())
    }

    fn on_timer(
        &mut self,
        now_ms: i64,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        // Windows come back oldest first, so stop at the first still open.
        for (key, value) in ctx.state_scan_prefix(WINDOW_PREFIX) {
            let Some(start) = window_start(&key) else {
                continue;
            };
            let end = start.saturating_add(self.window_ms);
            if end > now_ms {
                break;
            }
            let count = read_i64(Some(value)).unwrap_or(0);
            out.emit(
                &Record::new(format!("{{\"window_start\":{start},\"count\":{count}}}"))
                    .with_timestamp(start),
            );
            // Closed before the count is deleted: a record arriving between
            // the two is then late, never counted into a window already gone.
            ctx.state_put(CLOSED_KEY, end.to_string().as_bytes());
            ctx.state_delete(&key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    fn at(ts: i64) -> Record {
        Record::new("x").with_timestamp(ts)
    }

    fn values(records: &[Record]) -> Vec<&str> {
        records.iter().filter_map(Record::value_str).collect()
    }

    #[test]
    fn emits_each_window_once_it_closes() {
        let mut h = Harness::<WindowCount>::new(&[("window_ms", "1000")]).unwrap();
        let out = h
            .process(vec![at(100), at(999), at(1000), at(2500)])
            .unwrap();
        assert!(out.is_empty(), "nothing is emitted per record");

        // At 1500 only [0, 1000) has closed.
        let out = h.on_timer(1500).unwrap();
        assert_eq!(values(&out), [r#"{"window_start":0,"count":2}"#]);
        assert_eq!(out[0].timestamp, 0);

        // Emitted windows are not emitted again.
        let out = h.on_timer(3000).unwrap();
        assert_eq!(
            values(&out),
            [
                r#"{"window_start":1000,"count":1}"#,
                r#"{"window_start":2000,"count":1}"#
            ]
        );
        assert!(h.on_timer(10_000).unwrap().is_empty());
    }

    #[test]
    fn counts_live_in_host_state_so_they_survive_a_restart() {
        let mut h = Harness::<WindowCount>::new(&[("window_ms", "1000")]).unwrap();
        h.process(vec![at(10), at(20)]).unwrap();
        // A new plugin instance on the same host state, as after a restart.
        let mut restarted = Harness::<WindowCount>::new(&[("window_ms", "1000")]).unwrap();
        restarted.host = h.host.clone();
        restarted.process(vec![at(30)]).unwrap();
        let out = restarted.on_timer(1000).unwrap();
        assert_eq!(values(&out), [r#"{"window_start":0,"count":3}"#]);
    }

    #[test]
    fn late_records_are_dropped_and_counted() {
        let mut h = Harness::<WindowCount>::new(&[("window_ms", "1000")]).unwrap();
        h.process(vec![at(10)]).unwrap();
        h.on_timer(1000).unwrap();
        h.process(vec![at(20), at(1001)]).unwrap();
        assert_eq!(h.host.counter("late_records"), 1);
        let out = h.on_timer(2000).unwrap();
        assert_eq!(values(&out), [r#"{"window_start":1000,"count":1}"#]);
    }

    #[test]
    fn negative_timestamps_sort_before_positive_ones() {
        let mut h = Harness::<WindowCount>::new(&[("window_ms", "1000")]).unwrap();
        h.process(vec![at(5), at(-5)]).unwrap();
        let out = h.on_timer(1000).unwrap();
        assert_eq!(
            values(&out),
            [
                r#"{"window_start":-1000,"count":1}"#,
                r#"{"window_start":0,"count":1}"#
            ]
        );
    }

    #[test]
    fn window_must_be_positive() {
        let err = Harness::<WindowCount>::new(&[("window_ms", "0")]).unwrap_err();
        assert!(err.message().contains("window_ms"), "{err}");
        let err = Harness::<WindowCount>::new(&[("window_ms", "soon")]).unwrap_err();
        assert!(err.message().contains("window_ms"), "{err}");
    }
}
