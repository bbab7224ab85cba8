//! `http` (`http-sink`): a sink that POSTs record values in batches to an
//! HTTP endpoint — a log collector, a webhook, a search engine's bulk API.
//!
//! Config:
//! - `url` (required): `http://` or `https://` endpoint that receives the POSTs.
//! - `format`: `ndjson` (default: each value then a newline,
//!   `application/x-ndjson`) or `json-array` (`[v1,v2,…]`,
//!   `application/json`; a value that is not JSON goes in as a JSON string,
//!   a null value as `null`).
//! - `batch_max_records` (500) and `batch_max_bytes` (1 MiB, counting
//!   values): a batch is sent once the next record would not fit. A single
//!   larger value is sent on its own.
//! - `timeout_ms` (5000): for one whole request.
//! - `retries` (5) and `backoff_ms` (100): a request that fails to connect,
//!   times out, or gets 5xx or 429 is retried after `backoff_ms`, doubling
//!   each time up to 10 s. Any other status fails at once.
//! - `headers`: a JSON object of extra headers, e.g.
//!   `{"Authorization":"Bearer …"}`; they override `Content-Type`.
//!
//! Delivery: at least once. `flush` returns `Ok` only when every buffered
//! record got a 2xx. When a batch cannot be delivered, `write` or `flush`
//! returns an error naming the URL, the status and the start of the body, and
//! the records stay buffered: the host backs off and calls again, and the
//! same batch is sent again. An error from `write` means that record was not
//! taken (the buffer is full and could not be sent), so the host offers it
//! again; the buffer never grows past one batch.
//!
//! Not for: exactly-once delivery (a request that reached the server but
//! whose answer was lost is sent again), or receiving HTTP (see the `http`
//! source). Built-in and native only: WebAssembly components get no sockets
//! from the host.

use fjord_sdk::{Config, ConfigKey, Context, Error, Plugin, PluginInfo, RecordRef, Sink};
use std::time::Duration;

/// The request body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    JsonArray,
}

/// Backoff never waits longer than this between two attempts, so a sink
/// with many retries still reports within minutes.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How much of an error response's body goes into the error message.
const BODY_EXCERPT: usize = 200;

/// The sink. Values wait in `pending` until a batch is full or `flush`.
#[derive(Debug)]
pub struct HttpSink {
    url: String,
    format: Format,
    batch_max_records: usize,
    batch_max_bytes: usize,
    retries: u32,
    backoff: Duration,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
    /// Values not yet delivered (`None` for a null value), in order.
    pending: Vec<Option<Vec<u8>>>,
    /// Sum of the pending values' lengths.
    pending_bytes: usize,
    /// The request body, reused between batches.
    body: Vec<u8>,
}

impl Plugin for HttpSink {
    fn info() -> PluginInfo {
        PluginInfo::new("http", env!("CARGO_PKG_VERSION"))
            .description("POSTs record values in batches to an HTTP endpoint")
            .key(ConfigKey::required(
                "url",
                "the http:// or https:// endpoint to POST to",
            ))
            .key(ConfigKey::optional(
                "format",
                Some("ndjson"),
                "`ndjson` (one value per line) or `json-array`",
            ))
            .key(ConfigKey::optional(
                "batch_max_records",
                Some("500"),
                "most records in one request",
            ))
            .key(ConfigKey::optional(
                "batch_max_bytes",
                Some("1048576"),
                "most value bytes in one request",
            ))
            .key(ConfigKey::optional(
                "timeout_ms",
                Some("5000"),
                "deadline of one request",
            ))
            .key(ConfigKey::optional(
                "retries",
                Some("5"),
                "retries after a connection error, timeout, 5xx or 429",
            ))
            .key(ConfigKey::optional(
                "backoff_ms",
                Some("100"),
                "first wait between retries; doubles, up to 10 s",
            ))
            .key(ConfigKey::optional(
                "headers",
                None,
                "JSON object of extra request headers",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let url = config.require("url")?.to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::msg(format!(
                "config key `url`: `{url}` does not start with http:// or https://"
            )));
        }
        url.parse::<ureq::http::Uri>()
            .map_err(|e| Error::msg(format!("config key `url`: `{url}`: {e}")))?;
        let format = match config.get("format").unwrap_or("ndjson") {
            "ndjson" => Format::Ndjson,
            "json-array" => Format::JsonArray,
            other => {
                return Err(Error::msg(format!(
                    "config key `format`: `{other}` is not `ndjson` or `json-array`"
                )));
            }
        };
        let batch_max_records: usize = config.parse_or("batch_max_records", 500)?;
        let batch_max_bytes: usize = config.parse_or("batch_max_bytes", 1 << 20)?;
        for (key, v) in [
            ("batch_max_records", batch_max_records),
            ("batch_max_bytes", batch_max_bytes),
        ] {
            if v == 0 {
                return Err(Error::msg(format!("config key `{key}`: must be above 0")));
            }
        }
        let timeout_ms: u64 = config.parse_or("timeout_ms", 5000)?;
        let headers = match config.get("headers") {
            None => Vec::new(),
            Some(text) => parse_headers(text)?,
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            // Statuses are answers to inspect (retry or not), not errors.
            .http_status_as_error(false)
            .build()
            .into();
        Ok(HttpSink {
            url,
            format,
            batch_max_records,
            batch_max_bytes,
            retries: config.parse_or("retries", 5)?,
            backoff: Duration::from_millis(config.parse_or("backoff_ms", 100)?),
            headers,
            agent,
            pending: Vec::new(),
            pending_bytes: 0,
            body: Vec::new(),
        })
    }
}

/// `{"Name":"value",…}` → header pairs.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, Error> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| Error::msg(format!("config key `headers`: not a JSON object: {e}")))?;
    object
        .into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(v) => Ok((name, v)),
            other => Err(Error::msg(format!(
                "config key `headers`: `{name}` is {other}, not a string"
            ))),
        })
        .collect()
}

/// Why one attempt failed.
struct Failure {
    message: String,
    retry: bool,
}

impl HttpSink {
    fn encode_body(&mut self) {
        self.body.clear();
        match self.format {
            Format::Ndjson => {
                for v in &self.pending {
                    self.body
                        .extend_from_slice(v.as_deref().unwrap_or_default());
                    self.body.push(b'\n');
                }
            }
            Format::JsonArray => {
                self.body.push(b'[');
                for (i, v) in self.pending.iter().enumerate() {
                    if i > 0 {
                        self.body.push(b',');
                    }
                    match v {
                        None => self.body.extend_from_slice(b"null"),
                        Some(v) if is_json(v) => self.body.extend_from_slice(v),
                        Some(v) => {
                            // A string serializes infallibly into a Vec.
                            let _ = serde_json::to_writer(
                                &mut self.body,
                                String::from_utf8_lossy(v).as_ref(),
                            );
                        }
                    }
                }
                self.body.push(b']');
            }
        }
    }

    fn content_type(&self) -> &'static str {
        match self.format {
            Format::Ndjson => "application/x-ndjson",
            Format::JsonArray => "application/json",
        }
    }

    /// One POST of `self.body`.
    fn attempt(&self) -> Result<(), Failure> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", self.content_type());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let mut response = match request.send(&self.body[..]) {
            Ok(r) => r,
            Err(e) => {
                return Err(Failure {
                    message: format!("POST {}: {e}", self.url),
                    retry: true,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        let mut excerpt: String = body.chars().take(BODY_EXCERPT).collect();
        if excerpt.len() < body.len() {
            excerpt.push('…');
        }
        Err(Failure {
            message: format!(
                "POST {}: status {}: {}",
                self.url,
                status.as_u16(),
                excerpt.trim()
            ),
            retry: status.is_server_error() || status.as_u16() == 429,
        })
    }

    /// Delivers the pending batch, retrying; on failure it stays pending.
    fn send_pending(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.encode_body();
        let mut wait = self.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt() {
                Ok(()) => break,
                Err(f) if f.retry && attempts <= self.retries => {
                    ctx.counter("retries", 1);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(f) => {
                    return Err(Error::msg(format!(
                        "{} (gave up after {attempts} attempt{}; {} records kept for the next try)",
                        f.message,
                        if attempts == 1 { "" } else { "s" },
                        self.pending.len()
                    )));
                }
            }
        }
        ctx.counter("records", self.pending.len() as u64);
        ctx.counter("requests", 1);
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }
}

fn is_json(v: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok()
}

#[fjord_sdk::sink]
impl Sink for HttpSink {
    fn write(&mut self, record: RecordRef<'_>, ctx: &mut Context<'_>) -> Result<(), Error> {
        let len = record.value.map_or(0, <[u8]>::len);
        let full = self.pending.len() >= self.batch_max_records
            || self.pending_bytes + len > self.batch_max_bytes;
        if full && !self.pending.is_empty() {
            // Sent before this record is taken: on failure the caller
            // still owns it, and the buffer stays one batch.
            self.send_pending(ctx)?;
        }
        self.pending.push(record.value.map(<[u8]>::to_vec));
        self.pending_bytes += len;
        Ok(())
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        self.send_pending(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::Harness;
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// A real HTTP server on a free port that records each request and
    /// answers with scripted statuses (200 once the script runs out).
    struct Server {
        server: Arc<tiny_http::Server>,
        url: String,
        requests: Arc<Mutex<Vec<Request>>>,
        script: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    #[derive(Debug, Clone)]
    struct Request {
        body: String,
        headers: Vec<(String, String)>,
    }

    impl Request {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    impl Server {
        fn start(script: &[(u16, &'static str)]) -> Server {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let url = format!("http://{}/ingest", server.server_addr().to_ip().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
            let thread = {
                let (server, requests, script) = (server.clone(), requests.clone(), script.clone());
                std::thread::spawn(move || {
                    for mut rq in server.incoming_requests() {
                        let mut body = String::new();
                        rq.as_reader().read_to_string(&mut body).unwrap();
                        let headers = rq
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect();
                        requests.lock().unwrap().push(Request { body, headers });
                        let (status, text) =
                            script.lock().unwrap().pop_front().unwrap_or((200, ""));
                        let _ = rq.respond(
                            tiny_http::Response::from_string(text).with_status_code(status),
                        );
                    }
                })
            };
            Server {
                server,
                url,
                requests,
                script,
                thread: Some(thread),
            }
        }

        fn bodies(&self) -> Vec<String> {
            self.requests
                .lock()
                .unwrap()
                .iter()
                .map(|r| r.body.clone())
                .collect()
        }

        fn answer(&self, script: &[(u16, &'static str)]) {
            *self.script.lock().unwrap() = script.iter().copied().collect();
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn records(values: &[&str]) -> Vec<Record> {
        values.iter().map(|v| Record::new(*v)).collect()
    }

    #[test]
    fn batches_by_record_count_and_flushes_the_rest() {
        let s = Server::start(&[]);
        let mut h =
            Harness::<HttpSink>::new(&[("url", &s.url), ("batch_max_records", "2")]).unwrap();
        h.write(records(&["a", "b", "c", "d", "e"])).unwrap();
        assert_eq!(s.bodies(), ["a\nb\n", "c\nd\n", "e\n"]);
        let first = s.requests.lock().unwrap()[0].clone();
        assert_eq!(first.header("Content-Type"), Some("application/x-ndjson"));
        assert_eq!(h.host.counter("records"), 5);
        assert_eq!(h.host.counter("requests"), 3);
    }

    #[test]
    fn batches_by_bytes_and_sends_an_oversized_value_alone() {
        let s = Server::start(&[]);
        let mut h = Harness::<HttpSink>::new(&[("url", &s.url), ("batch_max_bytes", "4")]).unwrap();
        h.write(records(&["ab", "cd", "e", "toolong", "f"]))
            .unwrap();
        assert_eq!(s.bodies(), ["ab\ncd\n", "e\n", "toolong\n", "f\n"]);
    }

    #[test]
    fn nothing_is_sent_before_a_batch_is_full_or_flushed() {
        let s = Server::start(&[]);
        let mut h = Harness::<HttpSink>::new(&[("url", &s.url)]).unwrap();
        let batch = fjord_sdk::encode(&records(&["x", "y"]));
        let mut ctx = Context::new(&mut h.host);
        fjord_sdk::kinds::run_write(&mut h.plugin, &batch, &mut ctx).unwrap();
        assert!(s.bodies().is_empty());
        h.plugin.flush(&mut ctx).unwrap();
        assert_eq!(s.bodies(), ["x\ny\n"]);
        // Nothing pending: a flush sends no empty request.
        h.plugin.flush(&mut ctx).unwrap();
        assert_eq!(s.bodies().len(), 1);
    }

    #[test]
    fn json_array_format_and_extra_headers() {
        let s = Server::start(&[]);
        let mut h = Harness::<HttpSink>::new(&[
            ("url", &s.url),
            ("format", "json-array"),
            (
                "headers",
                r#"{"Authorization":"Bearer t0k","X-Source":"fjord"}"#,
            ),
        ])
        .unwrap();
        let null = Record {
            value: None,
            ..Record::default()
        };
        h.write(vec![
            Record::new(r#"{"a":1}"#),
            Record::new("plain \"text\""),
            null,
            Record::new("42"),
        ])
        .unwrap();
        let rq = s.requests.lock().unwrap()[0].clone();
        let body: serde_json::Value = serde_json::from_str(&rq.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!([{"a":1}, "plain \"text\"", null, 42])
        );
        assert_eq!(rq.header("Content-Type"), Some("application/json"));
        assert_eq!(rq.header("Authorization"), Some("Bearer t0k"));
        assert_eq!(rq.header("X-Source"), Some("fjord"));
    }

    #[test]
    fn retries_after_503s_and_429() {
        let s = Server::start(&[(503, "busy"), (429, "slow down"), (503, "busy")]);
        let mut h = Harness::<HttpSink>::new(&[("url", &s.url), ("backoff_ms", "1")]).unwrap();
        h.write(records(&["one", "two"])).unwrap();
        assert_eq!(s.bodies(), ["one\ntwo\n"; 4]);
        assert_eq!(h.host.counter("retries"), 3);
        assert_eq!(h.host.counter("records"), 2);
    }

    #[test]
    fn giving_up_names_url_status_and_body() {
        let s = Server::start(&[(500, "database is down"); 10]);
        let mut h =
            Harness::<HttpSink>::new(&[("url", &s.url), ("retries", "2"), ("backoff_ms", "1")])
                .unwrap();
        let err = h.write(records(&["x"])).unwrap_err();
        let msg = err.message();
        assert!(msg.contains(&s.url), "{msg}");
        assert!(msg.contains("status 500"), "{msg}");
        assert!(msg.contains("database is down"), "{msg}");
        assert!(msg.contains("3 attempts"), "{msg}");
        assert_eq!(s.bodies().len(), 3);
    }

    #[test]
    fn a_client_error_is_not_retried() {
        let s = Server::start(&[(400, "bad field `ts`")]);
        let mut h = Harness::<HttpSink>::new(&[("url", &s.url), ("backoff_ms", "1")]).unwrap();
        let err = h.write(records(&["x"])).unwrap_err();
        assert!(
            err.message().contains("status 400: bad field `ts`"),
            "{err}"
        );
        assert_eq!(s.bodies().len(), 1);
    }

    #[test]
    fn a_refused_connection_is_retried_then_reported() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/x");
        let mut h =
            Harness::<HttpSink>::new(&[("url", &url), ("retries", "1"), ("backoff_ms", "1")])
                .unwrap();
        let err = h.write(records(&["x"])).unwrap_err();
        assert!(err.message().contains(&url), "{err}");
        assert!(err.message().contains("2 attempts"), "{err}");
    }

    #[test]
    fn nothing_is_lost_across_a_failed_flush() {
        let s = Server::start(&[(503, "down"); 2]);
        let mut h = Harness::<HttpSink>::new(&[
            ("url", &s.url),
            ("retries", "0"),
            ("batch_max_records", "3"),
        ])
        .unwrap();
        let batch = fjord_sdk::encode(&records(&["r1", "r2", "r3", "r4"]));
        let mut ctx = Context::new(&mut h.host);
        let mut reader = fjord_sdk::BatchReader::new(&batch)
            .unwrap()
            .map(Result::unwrap);
        for r in reader.by_ref().take(3) {
            h.plugin.write(r, &mut ctx).unwrap();
        }
        // The batch is full: the fourth record needs it sent, which fails,
        // so the fourth is refused and the three stay buffered.
        let r4 = reader.next().unwrap();
        assert!(h.plugin.write(r4, &mut ctx).is_err());
        assert!(h.plugin.flush(&mut ctx).is_err());
        assert_eq!(s.bodies(), ["r1\nr2\nr3\n"; 2]);
        // The endpoint is back: the host offers the refused record again.
        h.plugin.write(r4, &mut ctx).unwrap();
        h.plugin.flush(&mut ctx).unwrap();
        let bodies = s.bodies();
        assert_eq!(bodies[2..], ["r1\nr2\nr3\n", "r4\n"]);
        assert_eq!(h.host.counter("records"), 4);
    }

    #[test]
    fn later_writes_after_a_failure_keep_the_order() {
        let s = Server::start(&[(502, "bad gateway")]);
        let mut h = Harness::<HttpSink>::new(&[("url", &s.url), ("retries", "0")]).unwrap();
        assert!(h.write(records(&["a"])).is_err());
        s.answer(&[]);
        h.write(records(&["b"])).unwrap();
        assert_eq!(s.bodies(), ["a\n", "a\nb\n"]);
    }

    #[test]
    fn bad_config_names_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "`url`"),
            (&[("url", "ftp://x")], "`url`"),
            (&[("url", "http://exa mple")], "`url`"),
            (&[("url", "http://x"), ("format", "xml")], "`format`"),
            (
                &[("url", "http://x"), ("batch_max_records", "0")],
                "`batch_max_records`",
            ),
            (
                &[("url", "http://x"), ("batch_max_bytes", "-1")],
                "`batch_max_bytes`",
            ),
            (
                &[("url", "http://x"), ("timeout_ms", "soon")],
                "`timeout_ms`",
            ),
            (&[("url", "http://x"), ("headers", "[1]")], "`headers`"),
            (
                &[("url", "http://x"), ("headers", r#"{"A":1}"#)],
                "`headers`",
            ),
        ];
        for (config, key) in cases {
            let err = Harness::<HttpSink>::new(config).unwrap_err();
            assert!(err.message().contains(key), "{config:?}: {err}");
        }
    }

    #[test]
    fn info_lists_every_key() {
        let info = HttpSink::info();
        assert_eq!(info.name, "http");
        let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "url",
                "format",
                "batch_max_records",
                "batch_max_bytes",
                "timeout_ms",
                "retries",
                "backoff_ms",
                "headers"
            ]
        );
    }
}
