//! `prometheus`: a sink that serves metric records on an HTTP endpoint in
//! the Prometheus text exposition format (0.0.4), for Prometheus (or any
//! scraper of that format) to pull — the end of a metrics pipeline.
//!
//! Each record is a JSON object. Two shapes:
//! - one metric per record (default): `{"name":"http_requests","value":5,
//!   "route":"/api"}` → `fjord_http_requests{route="/api"} 5`;
//! - wide records (`metrics` set): each listed numeric field is its own
//!   metric, e.g. a window aggregate `{"route":"/api","window_start":…,
//!   "count":12,"p99":0.3}` with `metrics=count,p99` →
//!   `fjord_count{route="/api"} 12` and `fjord_p99{route="/api"} 0.3`.
//!
//! The latest value per metric name and label set wins; values are shown as
//! given, so with `type=counter` the records must carry running totals.
//! Series are kept in memory until the sink stops.
//!
//! Config:
//! - `listen` (required): `host:port` to serve on; port 0 picks a free one.
//! - `bound_file`: a file the bound address (`127.0.0.1:41234`) is written
//!   to once listening, for tests and scripts that use port 0.
//! - `path` (`/metrics`): where the exposition is served; other paths 404.
//! - `name_field` (`name`) and `value_field` (`value`): where a
//!   one-metric record keeps its name (a string) and value (a number).
//! - `labels`: comma list of fields that become labels (a missing one is
//!   left out; numbers and booleans as text). Default: every other string
//!   field of the record.
//! - `metrics`: the numeric fields of wide records (then
//!   `name_field`/`value_field` are not used): a comma list (each field is
//!   exported under its own name), or a mapping field → `NAME` or
//!   `NAME{label="value",…}` — so two fields can be one metric told apart by
//!   a label, e.g. `p50: 'latency_seconds{quantile="0.5"}'`, `p99:
//!   'latency_seconds{quantile="0.99"}'`.
//! - `prefix` (`fjord_`): put before every metric name. Pick one of your
//!   own (`myapp_`) when the broker's `/metrics` is scraped by the same
//!   Prometheus: its metrics are `fjord_…` too.
//! - `help`: a mapping metric name (as in `metrics`, without the prefix) →
//!   help text, for `# HELP` lines.
//! - `type`: `gauge` (default) or `counter`, for the `# TYPE` lines.
//! - `max_series` (10000): series beyond this are skipped, so a label with
//!   unbounded values cannot exhaust memory.
//!
//! Metric and label names are sanitised to `[a-zA-Z_:][a-zA-Z0-9_:]*`
//! (labels without `:`), other characters becoming `_`. A record that is not
//! a JSON object, or lacks the name or a numeric value, is skipped and
//! counted (`skipped`) — not an error, so one bad record does not stop the
//! pipeline.
//!
//! Not for: histograms or summaries computed here (aggregate upstream and
//! export the quantiles), pushing to a Pushgateway or remote-write (use the
//! `http` sink), or several instances on one address — run the sink's
//! pipeline with one task. Built-in and native only: WebAssembly components
//! get no listening sockets from the host.

mod names;

use fjord_sdk::{Config, ConfigKey, Context, Error, Plugin, PluginInfo, RecordRef, Sink};
use names::{Labels, MetricField, comma_list, sanitise};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

/// What `/metrics` shows; shared with the serving thread.
#[derive(Debug, Default)]
struct Registry {
    /// Metric name → label set → latest value.
    metrics: BTreeMap<String, BTreeMap<Labels, f64>>,
    series: usize,
    /// `# HELP` texts by metric name, from the config.
    help: BTreeMap<String, String>,
}

impl Registry {
    /// Sets a series; `false` when it is new and the registry is full.
    fn set(&mut self, name: String, labels: Labels, value: f64, max_series: usize) -> bool {
        if let Some(v) = self.metrics.get_mut(&name).and_then(|m| m.get_mut(&labels)) {
            *v = value;
            return true;
        }
        if self.series >= max_series {
            return false;
        }
        self.series += 1;
        self.metrics.entry(name).or_default().insert(labels, value);
        true
    }

    fn render(&self, kind: &str) -> String {
        let mut out = String::new();
        for (name, series) in &self.metrics {
            if let Some(help) = self.help.get(name) {
                let _ = writeln!(out, "# HELP {name} {help}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"");
                        escape_label_value(v, &mut out);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                format_value(*value, &mut out);
                out.push('\n');
            }
        }
        out
    }
}

/// The format's escapes for label values: `\\`, `\"` and `\n`.
fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's ParseFloat spellings for the special values; Rust's `Display`
/// otherwise (shortest text that reads back the same, no exponent).
fn format_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// The sink; the serving thread stops when it is dropped.
pub struct Prometheus {
    registry: Arc<Mutex<Registry>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
    name_field: String,
    value_field: String,
    labels: Option<Vec<String>>,
    metrics: Option<Vec<MetricField>>,
    prefix: String,
    max_series: usize,
}

impl std::fmt::Debug for Prometheus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prometheus")
            .field("addr", &self.addr)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Plugin for Prometheus {
    fn info() -> PluginInfo {
        PluginInfo::new("prometheus", env!("CARGO_PKG_VERSION"))
            .description("serves metric records on an HTTP endpoint for Prometheus to scrape")
            .key(ConfigKey::required(
                "listen",
                "host:port to serve on (port 0: any free port)",
            ))
            .key(ConfigKey::optional(
                "bound_file",
                None,
                "file to write the bound address to",
            ))
            .key(ConfigKey::optional(
                "path",
                Some("/metrics"),
                "path of the exposition",
            ))
            .key(ConfigKey::optional(
                "name_field",
                Some("name"),
                "field holding the metric name",
            ))
            .key(ConfigKey::optional(
                "value_field",
                Some("value"),
                "field holding the numeric value",
            ))
            .key(ConfigKey::optional(
                "labels",
                None,
                "comma list of label fields (default: every other string field)",
            ))
            .key(ConfigKey::optional(
                "metrics",
                None,
                "numeric fields, each its own metric (wide records): a comma list, or a mapping field -> NAME or NAME{label=\"value\"}",
            ))
            .key(ConfigKey::optional(
                "prefix",
                Some("fjord_"),
                "put before every metric name",
            ))
            .key(ConfigKey::optional(
                "help",
                None,
                "mapping metric name -> help text, for the # HELP lines",
            ))
            .key(ConfigKey::optional(
                "type",
                Some("gauge"),
                "`gauge` or `counter`",
            ))
            .key(ConfigKey::optional(
                "max_series",
                Some("10000"),
                "most series kept; more are skipped",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let listen = config.require("listen")?;
        let kind = match config.get("type").unwrap_or("gauge") {
            "gauge" => "gauge",
            "counter" => "counter",
            other => {
                return Err(Error::msg(format!(
                    "config key `type`: `{other}` is not `gauge` or `counter`"
                )));
            }
        };
        let path = config.get("path").unwrap_or("/metrics").to_owned();
        if !path.starts_with('/') {
            return Err(Error::msg(format!(
                "config key `path`: `{path}` does not start with /"
            )));
        }
        let prefix = config.get("prefix").unwrap_or("fjord_").to_owned();
        let labels = comma_list(config, "labels")?;
        let metrics = names::metric_fields(config, &prefix)?;
        let help = names::help(config, &prefix)?;
        let max_series = config.parse_or("max_series", 10_000)?;
        let server = bind(listen)?;
        let addr = server.server_addr().to_ip().ok_or_else(|| {
            Error::msg(format!(
                "config key `listen`: `{listen}` is not an IP address"
            ))
        })?;
        if let Some(file) = config.get("bound_file") {
            std::fs::write(file, addr.to_string()).map_err(|e| {
                Error::msg(format!(
                    "config key `bound_file`: cannot write `{file}`: {e}"
                ))
            })?;
        }
        let server = Arc::new(server);
        let registry = Arc::new(Mutex::new(Registry {
            help,
            ..Registry::default()
        }));
        let thread = {
            let (server, registry) = (server.clone(), registry.clone());
            std::thread::Builder::new()
                .name(format!("prometheus {addr}"))
                .spawn(move || serve(&server, &registry, &path, kind))
                .map_err(|e| Error::msg(format!("cannot start the serving thread: {e}")))?
        };
        Ok(Prometheus {
            registry,
            server,
            thread: Some(thread),
            addr,
            name_field: config.get("name_field").unwrap_or("name").to_owned(),
            value_field: config.get("value_field").unwrap_or("value").to_owned(),
            labels,
            metrics,
            prefix,
            max_series,
        })
    }
}

/// Listens on `listen`. A listener closes a moment after its sink is
/// dropped (tiny_http's accept thread notices on its own), so when the host
/// replaces an instance the new one may find the address still taken: it
/// tries again for up to a second before giving up.
fn bind(listen: &str) -> Result<tiny_http::Server, Error> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match tiny_http::Server::http(listen) {
            Ok(server) => return Ok(server),
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.downcast_ref::<std::io::Error>().map(std::io::Error::kind)
                        == Some(std::io::ErrorKind::AddrInUse) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => {
                return Err(Error::msg(format!(
                    "config key `listen`: cannot listen on `{listen}`: {e}"
                )));
            }
        }
    }
}

/// Answers scrapes until the server is unblocked.
fn serve(server: &tiny_http::Server, registry: &Mutex<Registry>, path: &str, kind: &str) {
    let content_type = tiny_http::Header::from_bytes(
        &b"Content-Type"[..],
        &b"text/plain; version=0.0.4; charset=utf-8"[..],
    )
    .expect("a valid header");
    for rq in server.incoming_requests() {
        let url = rq.url();
        let asked = url.split_once('?').map_or(url, |(p, _)| p);
        let response = if asked == path {
            let body = registry.lock().render(kind);
            tiny_http::Response::from_string(body).with_header(content_type.clone())
        } else {
            tiny_http::Response::from_string(format!("not found; the metrics are at {path}\n"))
                .with_status_code(404)
        };
        // A scraper that hung up is its own problem.
        let _ = rq.respond(response);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Prometheus {
    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The labels of a record; `skip` names the fields that are not labels.
    fn labels(&self, object: &Map<String, Value>, skip: &[&str]) -> Labels {
        let mut labels: Labels = match &self.labels {
            Some(fields) => fields
                .iter()
                .filter_map(|f| {
                    let text = match object.get(f)? {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return None,
                    };
                    Some((sanitise(f, false), text))
                })
                .collect(),
            None => object
                .iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .filter_map(|(k, v)| Some((sanitise(k, false), v.as_str()?.to_owned())))
                .collect(),
        };
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        labels
    }

    /// The series of one record: (name, labels, value).
    fn series(&self, value: Option<&[u8]>) -> Vec<(String, Labels, f64)> {
        let Some(Ok(Value::Object(object))) = value.map(serde_json::from_slice::<Value>) else {
            return Vec::new();
        };
        match &self.metrics {
            Some(fields) => {
                let skip: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
                let labels = self.labels(&object, &skip);
                fields
                    .iter()
                    .filter_map(|f| {
                        let v = object.get(&f.field)?.as_f64()?;
                        let mut labels = labels.clone();
                        if !f.labels.is_empty() {
                            labels.retain(|(k, _)| f.labels.iter().all(|(fixed, _)| fixed != k));
                            labels.extend(f.labels.iter().cloned());
                            labels.sort();
                        }
                        Some((f.name.clone(), labels, v))
                    })
                    .collect()
            }
            None => {
                let (Some(Value::String(name)), Some(v)) = (
                    object.get(&self.name_field),
                    object.get(&self.value_field).and_then(Value::as_f64),
                ) else {
                    return Vec::new();
                };
                let labels = self.labels(&object, &[&self.name_field, &self.value_field]);
                vec![(sanitise(&format!("{}{name}", self.prefix), true), labels, v)]
            }
        }
    }
}

#[fjord_sdk::sink]
impl Sink for Prometheus {
    fn write(&mut self, record: RecordRef<'_>, ctx: &mut Context<'_>) -> Result<(), Error> {
        let series = self.series(record.value);
        if series.is_empty() {
            ctx.counter("skipped", 1);
            return Ok(());
        }
        let mut registry = self.registry.lock();
        for (name, labels, value) in series {
            if !registry.set(name, labels, value, self.max_series) {
                ctx.counter("series_over_limit", 1);
            }
        }
        Ok(())
    }

    /// Values are served from the moment they are written: nothing to do.
    fn flush(&mut self, _: &mut Context<'_>) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::Harness;
    use std::io::{Read, Write};

    /// A sink on a free local port.
    fn sink(extra: &[(&str, &str)]) -> Harness<Prometheus> {
        let mut config = vec![("listen", "127.0.0.1:0")];
        config.extend_from_slice(extra);
        Harness::new(&config).unwrap()
    }

    /// A plain HTTP/1.0 GET over a TcpStream: (status line, headers, body).
    fn get(addr: SocketAddr, path: &str) -> (String, String, String) {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        (status.to_owned(), headers.to_owned(), body.to_owned())
    }

    fn scrape(h: &Harness<Prometheus>) -> String {
        let (status, headers, body) = get(h.plugin.local_addr(), "/metrics");
        assert!(status.contains("200"), "{status}");
        assert!(headers.contains("text/plain; version=0.0.4"), "{headers}");
        body
    }

    fn records(values: &[&str]) -> Vec<Record> {
        values.iter().map(|v| Record::new(*v)).collect()
    }

    #[test]
    fn one_metric_per_record_latest_value_wins() {
        let mut h = sink(&[]);
        h.write(records(&[
            r#"{"name":"http_requests","value":5,"route":"/api","method":"GET","code":200}"#,
            r#"{"name":"http_requests","value":3,"route":"/home","method":"GET"}"#,
            r#"{"name":"http_requests","value":7,"route":"/api","method":"GET"}"#,
            r#"{"name":"queue_depth","value":0.25}"#,
        ]))
        .unwrap();
        assert_eq!(
            scrape(&h),
            "# TYPE fjord_http_requests gauge\n\
             fjord_http_requests{method=\"GET\",route=\"/api\"} 7\n\
             fjord_http_requests{method=\"GET\",route=\"/home\"} 3\n\
             # TYPE fjord_queue_depth gauge\n\
             fjord_queue_depth 0.25\n"
        );
    }

    #[test]
    fn wide_records_export_each_listed_field() {
        let mut h = sink(&[("metrics", "count,p99"), ("type", "counter")]);
        h.write(records(&[
            r#"{"route":"/api","window_start":1700000000000,"count":12,"p99":0.3}"#,
            r#"{"route":"/web","window_start":1700000000000,"count":4}"#,
        ]))
        .unwrap();
        assert_eq!(
            scrape(&h),
            "# TYPE fjord_count counter\n\
             fjord_count{route=\"/api\"} 12\n\
             fjord_count{route=\"/web\"} 4\n\
             # TYPE fjord_p99 counter\n\
             fjord_p99{route=\"/api\"} 0.3\n"
        );
    }

    #[test]
    fn mapped_fields_share_a_metric_told_apart_by_a_label_and_have_help() {
        let mut h = sink(&[
            ("prefix", "web_"),
            ("labels", "route"),
            (
                "metrics",
                r#"{"requests":"requests_per_minute","p50":"request_duration_seconds{quantile=\"0.5\"}","p99":"request_duration_seconds{quantile=\"0.99\"}"}"#,
            ),
            (
                "help",
                r#"{"request_duration_seconds":"Request time quantiles.\nPer minute.","requests_per_minute":"Requests in the minute."}"#,
            ),
        ]);
        h.write(records(&[
            r#"{"route":"/api","requests":12,"p50":0.1,"p99":0.3,"quantile":"ignored"}"#,
        ]))
        .unwrap();
        assert_eq!(
            scrape(&h),
            "# HELP web_request_duration_seconds Request time quantiles.\\nPer minute.\n\
             # TYPE web_request_duration_seconds gauge\n\
             web_request_duration_seconds{quantile=\"0.5\",route=\"/api\"} 0.1\n\
             web_request_duration_seconds{quantile=\"0.99\",route=\"/api\"} 0.3\n\
             # HELP web_requests_per_minute Requests in the minute.\n\
             # TYPE web_requests_per_minute gauge\n\
             web_requests_per_minute{route=\"/api\"} 12\n"
        );
    }

    #[test]
    fn chosen_labels_fields_and_prefix() {
        let mut h = sink(&[
            ("name_field", "metric"),
            ("value_field", "v"),
            ("labels", "host, shard, missing"),
            ("prefix", "app:"),
        ]);
        h.write(records(&[
            r#"{"metric":"lag","v":42,"host":"b-1","shard":3,"ignored":"x"}"#,
        ]))
        .unwrap();
        assert_eq!(
            scrape(&h),
            "# TYPE app:lag gauge\napp:lag{host=\"b-1\",shard=\"3\"} 42\n"
        );
    }

    #[test]
    fn names_are_sanitised_and_label_values_escaped() {
        let mut h = sink(&[("prefix", "")]);
        h.write(records(&[
            r#"{"name":"http.requests-total","value":1,"we ird":"a\"b\\c\nd"}"#,
            r#"{"name":"5xx","value":-1.5e-7}"#,
        ]))
        .unwrap();
        assert_eq!(
            scrape(&h),
            "# TYPE _5xx gauge\n_5xx -0.00000015\n\
             # TYPE http_requests_total gauge\n\
             http_requests_total{we_ird=\"a\\\"b\\\\c\\nd\"} 1\n"
        );
    }

    #[test]
    fn unusable_records_are_skipped_and_counted() {
        let mut h = sink(&[]);
        let null = Record {
            value: None,
            ..Record::default()
        };
        let mut input = records(&[
            "not json",
            "[1,2]",
            r#"{"value":1}"#,
            r#"{"name":"x","value":"12"}"#,
            r#"{"name":7,"value":1}"#,
            r#"{"name":"ok","value":1}"#,
        ]);
        input.push(null);
        h.write(input).unwrap();
        assert_eq!(h.host.counter("skipped"), 6);
        assert_eq!(scrape(&h), "# TYPE fjord_ok gauge\nfjord_ok 1\n");
    }

    #[test]
    fn series_beyond_the_limit_are_skipped() {
        let mut h = sink(&[("max_series", "2")]);
        h.write(records(&[
            r#"{"name":"a","value":1,"user":"u1"}"#,
            r#"{"name":"a","value":1,"user":"u2"}"#,
            r#"{"name":"a","value":1,"user":"u3"}"#,
            r#"{"name":"a","value":9,"user":"u1"}"#,
        ]))
        .unwrap();
        assert_eq!(h.host.counter("series_over_limit"), 1);
        let body = scrape(&h);
        assert!(body.contains("fjord_a{user=\"u1\"} 9\n"), "{body}");
        assert!(!body.contains("u3"), "{body}");
    }

    #[test]
    fn other_paths_404_and_the_path_is_configurable() {
        let h = sink(&[("path", "/m")]);
        let (status, _, body) = get(h.plugin.local_addr(), "/metrics");
        assert!(status.contains("404"), "{status}");
        assert!(body.contains("/m"), "{body}");
        let (status, _, body) = get(h.plugin.local_addr(), "/m?x=1");
        assert!(status.contains("200"), "{status}");
        assert_eq!(body, "");
    }

    #[test]
    fn bound_file_has_the_address_and_the_port_is_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("addr");
        let h = sink(&[("bound_file", file.to_str().unwrap())]);
        let addr: SocketAddr = std::fs::read_to_string(&file).unwrap().parse().unwrap();
        assert_eq!(addr, h.plugin.local_addr());
        assert_ne!(addr.port(), 0);
        // Taken while the sink runs, free after.
        let listen = addr.to_string();
        let err = Harness::<Prometheus>::new(&[("listen", &listen)]).unwrap_err();
        assert!(err.message().contains("`listen`"), "{err}");
        drop(h);
        Harness::<Prometheus>::new(&[("listen", &listen)]).unwrap();
    }

    #[test]
    fn value_formats() {
        let mut out = String::new();
        for v in [12.0, 0.3, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e21] {
            format_value(v, &mut out);
            out.push(' ');
        }
        assert_eq!(out, "12 0.3 NaN +Inf -Inf 1000000000000000000000 ");
    }

    #[test]
    fn bad_config_names_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "`listen`"),
            (&[("listen", "not an address")], "`listen`"),
            (&[("listen", "127.0.0.1:0"), ("type", "summary")], "`type`"),
            (&[("listen", "127.0.0.1:0"), ("path", "metrics")], "`path`"),
            (
                &[("listen", "127.0.0.1:0"), ("metrics", " , ")],
                "`metrics`",
            ),
            (
                &[
                    ("listen", "127.0.0.1:0"),
                    ("metrics", r#"{"p99":"x{q=1}"}"#),
                ],
                "`metrics`",
            ),
            (
                &[("listen", "127.0.0.1:0"), ("help", "not a mapping")],
                "`help`",
            ),
            (
                &[("listen", "127.0.0.1:0"), ("max_series", "lots")],
                "`max_series`",
            ),
            (
                &[("listen", "127.0.0.1:0"), ("bound_file", "/no/such/dir/f")],
                "`bound_file`",
            ),
        ];
        for (config, key) in cases {
            let err = Harness::<Prometheus>::new(config).unwrap_err();
            assert!(err.message().contains(key), "{config:?}: {err}");
        }
    }

    #[test]
    fn info_lists_every_key() {
        let info = Prometheus::info();
        assert_eq!(info.name, "prometheus");
        let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "listen",
                "bound_file",
                "path",
                "name_field",
                "value_field",
                "labels",
                "metrics",
                "prefix",
                "help",
                "type",
                "max_series"
            ]
        );
    }
}
