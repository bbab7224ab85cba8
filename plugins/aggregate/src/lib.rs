//! `aggregate`: a processor that summarises records per time window and
//! group — requests per minute by route, error rate, p99 latency — or keeps
//! a running total per key (account balances).
//!
//! Input values are JSON objects. Config:
//! - `aggregations` (required): output field → function, a YAML mapping in
//!   the manifest (or `name=function; …`). Functions: `count()`,
//!   `count(CONDITION)`, `ratio(CONDITION)` (the share of records matching,
//!   0 to 1), `sum(FIELD)`, `min(FIELD)`, `max(FIELD)`, `avg(FIELD)`,
//!   `p50(FIELD)` … `p99(FIELD)`, `p999(FIELD)` and `percentile(FIELD, Q)`.
//!   Conditions are the language of `filter` and `when`; fields are dotted
//!   paths. A field that is missing or not a number is left out of its
//!   function. Percentiles come from a DDSketch with 1 % relative error.
//! - `window`: `tumbling` (default), `hopping` or `global` (one window per
//!   group that never closes). `size` (required for the first two: `60s`,
//!   `1m`, …) and, for hopping, `advance` (a window starts every `advance`).
//! - `time_field`: the event time, as epoch milliseconds or an RFC 3339
//!   string (default: the record's timestamp).
//! - `lateness`: how far behind the latest event time a record may be and
//!   still count (default `0s`). A window closes once the latest event time
//!   minus `lateness` passes its end; a record for a closed window is
//!   dropped and counted (`late_records`). Each partition's event time is
//!   the latest it has seen among the records not ahead of `max_skew`.
//! - `max_skew` (default `1m`, or `none`): how far ahead of the clock of
//!   the broker running the step (processing time) a record's event time
//!   may be. A record further ahead would drag the event time, and with it
//!   the closing of windows, into the future — one line from a host whose
//!   clock is five minutes fast would make every record of those five
//!   minutes late. It is counted (`future_records`) and, like an invalid
//!   record, fails (so the pipeline dead-letters it, the reason in
//!   `fjord.error`) or, with `on_invalid: drop`, is dropped. Windowed
//!   aggregates only (a `global` window has no event time to protect).
//!   With `lateness` at least `max_skew`, a record on time is never late.
//! - `idle` (default `10s`, or `never`): when a partition has had no record
//!   for this long, its event time is taken to move on with the wall clock,
//!   so the last windows of a stream that stopped still close.
//! - `group_by`: fields (a YAML list or comma list) whose values make a
//!   group; none means one group.
//! - `emit`: `final` (default for windows: one record per window and group
//!   when the window closes) or `update` (default for `global`: the group's
//!   new aggregate after each record).
//! - `on_invalid`: `fail` (default: the batch fails, so the pipeline
//!   dead-letters the record) or `drop` (counted as `invalid_records`), for
//!   a value that is not a JSON object or has no usable event time (and for
//!   an event time beyond `max_skew`, counted as `future_records`).
//!
//! An output value holds the group fields, `window_start` and `window_end`
//! (epoch ms; not for `global`) and the aggregations; its key is the group
//! (the value of a single group field, else the values as a JSON array) and
//! its timestamp the window start (for `global`, the input's).
//!
//! State lives in the host's state store — for a pipeline, a compacted
//! changelog topic restored after a restart together with the source
//! position it reflects — so a restarted broker resumes its windows without
//! counting a record twice. Each partition has its own windows and event
//! time.
//!
//! Not for: joins, session windows, or arithmetic between aggregates
//! (compute `errors / requests` downstream, or use `ratio`).

mod acc;
pub mod spec;

use acc::{Acc, Input};
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use spec::{Aggregation, Field, Function, Window};
use std::time::{Instant, UNIX_EPOCH};

/// State key of the partition's event-time bookkeeping.
const META_KEY: &[u8] = b"m";
/// Prefix of windowed aggregates: `w`, the start (sortable), the group.
const WINDOW_PREFIX: &[u8] = b"w";
/// Prefix of `global` aggregates: `g`, the group.
const GLOBAL_PREFIX: &[u8] = b"g";

/// The default `max_skew`: far more than hosts kept in time by NTP drift
/// apart (well under a second) or than a shipper holds lines back, far less
/// than the minutes of windows a fast clock would otherwise close early.
const DEFAULT_MAX_SKEW_MS: i64 = 60_000;

/// A partition's event time, kept in the state store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    /// The latest event time seen.
    max_event: i64,
    /// Windows ending at or before this are closed.
    closed_through: i64,
    /// The earliest end among open windows, so closing is looked for only
    /// when it can find something.
    earliest_end: Option<i64>,
    /// Wall-clock ms of the last record, for `idle`.
    last_record_wall: i64,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            max_event: i64::MIN,
            closed_through: i64::MIN,
            earliest_end: None,
            last_record_wall: 0,
        }
    }
}

/// The processor.
#[derive(Debug)]
pub struct Aggregate {
    window: Window,
    lateness: i64,
    /// How far ahead of processing time an event time may be, in ms.
    max_skew: Option<i64>,
    idle: Option<i64>,
    time_field: Option<Field>,
    group_by: Vec<Field>,
    aggregations: Vec<Aggregation>,
    emit_updates: bool,
    drop_invalid: bool,
    /// When this instance started: after a restart the stored wall-clock
    /// times are old, and the backlog must get a chance to arrive before a
    /// partition counts as idle.
    started: Instant,
    inputs: Vec<Input>,
}

impl Plugin for Aggregate {
    fn info() -> PluginInfo {
        PluginInfo::new("aggregate", env!("CARGO_PKG_VERSION"))
            .description("aggregates records per event-time window and group: count, ratio, sum, min, max, avg, percentiles")
            .key(ConfigKey::required(
                "aggregations",
                "output field -> function: count(), count(COND), ratio(COND), sum(F), min(F), max(F), avg(F), p50(F)..p999(F), percentile(F, Q)",
            ))
            .key(ConfigKey::optional("window", Some("tumbling"), "tumbling, hopping or global"))
            .key(ConfigKey::optional("size", None, "window length, e.g. 60s (tumbling and hopping)"))
            .key(ConfigKey::optional("advance", None, "how often a hopping window starts, e.g. 10s"))
            .key(ConfigKey::optional("time_field", None, "field with the event time (epoch ms or RFC 3339); default: the record timestamp"))
            .key(ConfigKey::optional("lateness", Some("0s"), "how late a record may be and still count"))
            .key(ConfigKey::optional("max_skew", Some("1m"), "how far ahead of the clock an event time may be; records further ahead fail (dead-lettered) or, with on_invalid=drop, are dropped; `none` to turn off"))
            .key(ConfigKey::optional("idle", Some("10s"), "after this long without records event time follows the wall clock; `never` to turn off"))
            .key(ConfigKey::optional("group_by", None, "fields whose values make a group"))
            .key(ConfigKey::optional("emit", None, "final (windows) or update (global)"))
            .key(ConfigKey::optional("on_invalid", Some("fail"), "fail or drop a record that is not a JSON object or has no event time"))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let bad = |key: &str, e: String| Error::msg(format!("config key `{key}`: {e}"));
        let duration = |key: &str| -> Result<Option<i64>, Error> {
            config
                .get(key)
                .map(|v| spec::duration_ms(v).map_err(|e| bad(key, e)))
                .transpose()
        };
        let positive = |key: &str| -> Result<i64, Error> {
            match duration(key)? {
                Some(ms) if ms > 0 => Ok(ms),
                Some(_) => Err(bad(key, "must be at least 1ms".into())),
                None => Err(bad(key, "required for this window".into())),
            }
        };
        let window = match config.get("window").unwrap_or("tumbling") {
            "tumbling" => Window::Tumbling {
                size: positive("size")?,
            },
            "hopping" => {
                let (size, advance) = (positive("size")?, positive("advance")?);
                if advance > size {
                    return Err(bad("advance", "longer than `size` leaves gaps".into()));
                }
                Window::Hopping { size, advance }
            }
            "global" => Window::Global,
            other => {
                return Err(bad(
                    "window",
                    format!("{other:?} is not tumbling, hopping or global"),
                ));
            }
        };
        let emit_updates = match config.get("emit") {
            None => window == Window::Global,
            Some("update") => true,
            Some("final") if window == Window::Global => {
                return Err(bad(
                    "emit",
                    "a global window never closes, so it needs `update`".into(),
                ));
            }
            Some("final") => false,
            Some(other) => return Err(bad("emit", format!("{other:?} is not final or update"))),
        };
        let idle = match config.get("idle") {
            Some("never") => None,
            _ => Some(duration("idle")?.unwrap_or(10_000)),
        };
        let max_skew = match config.get("max_skew") {
            Some("none") => None,
            _ => Some(duration("max_skew")?.unwrap_or(DEFAULT_MAX_SKEW_MS)),
        };
        let group_by = config
            .list("group_by")?
            .iter()
            .map(|n| Field::parse(n))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("group_by", e))?;
        let aggregations = spec::aggregations(config.require("aggregations")?)
            .map_err(|e| bad("aggregations", e))?;
        let drop_invalid = match config.get("on_invalid").unwrap_or("fail") {
            "fail" => false,
            "drop" => true,
            other => return Err(bad("on_invalid", format!("{other:?} is not fail or drop"))),
        };
        Ok(Aggregate {
            window,
            lateness: duration("lateness")?.unwrap_or(0),
            max_skew,
            idle,
            time_field: config
                .get("time_field")
                .map(Field::parse)
                .transpose()
                .map_err(|e| bad("time_field", e))?,
            group_by,
            inputs: Vec::with_capacity(aggregations.len()),
            aggregations,
            emit_updates,
            drop_invalid,
            started: Instant::now(),
        })
    }
}

/// `x` as bytes that sort as the number does.
fn sortable(x: i64) -> [u8; 8] {
    ((x as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(b: &[u8]) -> Option<i64> {
    Some((u64::from_be_bytes(b.try_into().ok()?) ^ (1 << 63)) as i64)
}

fn load_meta(ctx: &mut Context<'_>) -> Result<Meta, Error> {
    match ctx.state_get(META_KEY) {
        None => Ok(Meta::default()),
        Some(b) => postcard::from_bytes(&b)
            .map_err(|e| Error::msg(format!("stored event time unreadable: {e}"))),
    }
}

fn store_meta(ctx: &mut Context<'_>, meta: &Meta) {
    ctx.state_put(META_KEY, &postcard::to_allocvec(meta).unwrap_or_default());
}

impl Aggregate {
    fn event_time(&self, value: &Value, r: &RecordRef<'_>) -> Result<i64, String> {
        let Some(field) = &self.time_field else {
            return Ok(r.timestamp);
        };
        match field.get(value) {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| format!("`{}` is not a time", field.name())),
            Some(Value::String(s)) => humantime::parse_rfc3339_weak(s)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .ok_or_else(|| format!("`{}`: {s:?} is not an RFC 3339 time", field.name())),
            _ => Err(format!("no event time in `{}`", field.name())),
        }
    }

    /// Whether event time `t` may move this partition's event time: not
    /// further ahead of processing time than `max_skew`.
    fn check_skew(&self, t: i64) -> Result<(), String> {
        let (Some(max_skew), Some(_)) = (self.max_skew, self.window.size()) else {
            return Ok(());
        };
        let now = fjord_sdk::now_ms();
        if t <= now.saturating_add(max_skew) {
            return Ok(());
        }
        let ms = |ms: i64| humantime::format_duration(std::time::Duration::from_millis(ms as u64));
        // RFC 3339 up to the year 9999 (humantime's formatter fails past it).
        let time = if t < 253_402_300_800_000 {
            humantime::format_rfc3339_millis(
                UNIX_EPOCH + std::time::Duration::from_millis(t as u64),
            )
            .to_string()
        } else {
            format!("{t} ms since the epoch")
        };
        Err(format!(
            "event time {time} is {} ahead of the clock, more than max_skew ({})",
            ms(t - now),
            ms(max_skew)
        ))
    }

    /// The group's values as a JSON array: the state key suffix and,
    /// decoded again, the output's group fields.
    fn group(&self, value: &Value) -> Vec<u8> {
        let values: Vec<&Value> = self
            .group_by
            .iter()
            .map(|f| f.get(value).unwrap_or(&Value::Null))
            .collect();
        serde_json::to_vec(&values).unwrap_or_default()
    }

    fn read_inputs(&mut self, raw: &[u8], value: &Value) {
        self.inputs.clear();
        for agg in &self.aggregations {
            self.inputs.push(match &agg.function {
                Function::Count(None) => Input::Matched(true),
                Function::Count(Some(c)) | Function::Ratio(c) => {
                    Input::Matched(c.matches(raw).unwrap_or(false))
                }
                other => {
                    let field = other.field().and_then(|f| f.get(value));
                    Input::Number(match field {
                        Some(Value::Number(n)) => n.as_f64(),
                        Some(Value::String(s)) => s.trim().parse().ok(),
                        _ => None,
                    })
                }
            });
        }
    }

    /// Adds the record's inputs to one aggregate; emits it when updates are
    /// wanted.
    fn update(
        &self,
        key: &[u8],
        window_start: Option<i64>,
        group: &[u8],
        timestamp: i64,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let mut acc = match ctx.state_get(key) {
            Some(b) => Acc::decode(&b).map_err(Error::msg)?,
            None => Acc::new(&self.aggregations),
        };
        acc.add(&self.inputs);
        ctx.state_put(key, &acc.encode());
        if self.emit_updates {
            self.emit(out, window_start, group, &acc, timestamp);
        }
        Ok(())
    }

    fn emit(
        &self,
        out: &mut BatchWriter,
        window_start: Option<i64>,
        group: &[u8],
        acc: &Acc,
        timestamp: i64,
    ) {
        let values: Vec<Value> = serde_json::from_slice(group).unwrap_or_default();
        let mut object = Map::new();
        for (field, v) in self.group_by.iter().zip(&values) {
            object.insert(field.name().to_owned(), v.clone());
        }
        if let (Some(start), Some(size)) = (window_start, self.window.size()) {
            object.insert("window_start".into(), start.into());
            object.insert("window_end".into(), (start + size).into());
        }
        for (agg, v) in self
            .aggregations
            .iter()
            .zip(acc.results(&self.aggregations))
        {
            object.insert(agg.name.clone(), v);
        }
        let key = match values.as_slice() {
            [] => None,
            [Value::String(s)] => Some(s.as_bytes().to_vec()),
            [one] => Some(one.to_string().into_bytes()),
            _ => Some(group.to_vec()),
        };
        let value = serde_json::to_vec(&object).unwrap_or_default();
        out.emit_parts(window_start.unwrap_or(timestamp), key.as_deref(), &value);
    }

    /// Emits (for `final`) and forgets every window ending at or before
    /// `watermark`.
    fn close(
        &self,
        watermark: i64,
        meta: &mut Meta,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let size = self.window.size().unwrap_or(i64::MAX);
        let mut earliest: Option<i64> = None;
        let mut closed = 0;
        // Keys are in start order, so the closed windows come first.
        for (key, bytes) in ctx.state_scan_prefix(WINDOW_PREFIX) {
            let Some(start) = key.get(1..9).and_then(unsortable) else {
                continue;
            };
            let end = start.saturating_add(size);
            if end > watermark {
                earliest = Some(earliest.map_or(end, |e: i64| e.min(end)));
                continue;
            }
            if !self.emit_updates {
                let acc = Acc::decode(&bytes).map_err(Error::msg)?;
                self.emit(out, Some(start), &key[9..], &acc, start);
            }
            ctx.state_delete(&key);
            closed += 1;
        }
        meta.earliest_end = earliest;
        meta.closed_through = meta.closed_through.max(watermark);
        ctx.counter("windows_closed", closed);
        Ok(())
    }
}

#[fjord_sdk::processor]
impl Processor for Aggregate {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let raw = r.value.unwrap_or_default();
        let parsed = match serde_json::from_slice::<Value>(raw) {
            Ok(v) if v.is_object() => self.event_time(&v, &r).map(|t| (v, t)),
            Ok(_) => Err("not a JSON object".to_owned()),
            Err(e) => Err(format!("not JSON: {e}")),
        };
        let (value, t) = match parsed {
            Ok(p) => p,
            Err(_) if self.drop_invalid => {
                ctx.counter("invalid_records", 1);
                return Ok(());
            }
            Err(e) => return Err(Error::msg(format!("record at offset {}: {e}", r.offset))),
        };
        if let Err(e) = self.check_skew(t) {
            ctx.counter("future_records", 1);
            if self.drop_invalid {
                return Ok(());
            }
            return Err(Error::msg(format!("record at offset {}: {e}", r.offset)));
        }
        self.read_inputs(raw, &value);
        let group = self.group(&value);
        let mut meta = load_meta(ctx)?;
        meta.max_event = meta.max_event.max(t);
        meta.last_record_wall = fjord_sdk::now_ms();

        let Some(size) = self.window.size() else {
            let key = [GLOBAL_PREFIX, &group].concat();
            self.update(&key, None, &group, r.timestamp, out, ctx)?;
            store_meta(ctx, &meta);
            return Ok(());
        };
        let watermark = meta
            .closed_through
            .max(meta.max_event.saturating_sub(self.lateness));
        let mut late = true;
        for start in self.window.starts(t) {
            let end = start + size;
            if end <= watermark {
                continue;
            }
            late = false;
            let key = [WINDOW_PREFIX, &sortable(start), &group].concat();
            self.update(&key, Some(start), &group, r.timestamp, out, ctx)?;
            meta.earliest_end = Some(meta.earliest_end.map_or(end, |e| e.min(end)));
        }
        if late {
            ctx.counter("late_records", 1);
        }
        if meta.earliest_end.is_some_and(|e| e <= watermark) {
            self.close(watermark, &mut meta, out, ctx)?;
        }
        meta.closed_through = watermark;
        store_meta(ctx, &meta);
        Ok(())
    }

    fn on_timer(
        &mut self,
        now_ms: i64,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let Some(idle) = self.idle else {
            return Ok(());
        };
        if self.window == Window::Global || (self.started.elapsed().as_millis() as i64) < idle {
            return Ok(());
        }
        let mut meta = load_meta(ctx)?;
        let quiet = now_ms - meta.last_record_wall;
        let Some(earliest_end) = meta.earliest_end else {
            return Ok(());
        };
        if quiet < idle {
            return Ok(());
        }
        let watermark = meta
            .closed_through
            .max(meta.max_event.saturating_add(quiet) - self.lateness);
        if earliest_end <= watermark {
            self.close(watermark, &mut meta, out, ctx)?;
            store_meta(ctx, &meta);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
