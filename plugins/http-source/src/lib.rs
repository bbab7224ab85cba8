//! `http` (source): an HTTP endpoint that turns what clients `POST` into
//! records — log shippers with an HTTP output (Fluent Bit, Vector,
//! Logstash), webhooks, `curl` from a script.
//!
//! A body becomes records by its `Content-Type`:
//! - `application/json`: an array gives one record per element, anything
//!   else one record (values re-written compactly); invalid JSON is refused
//!   with `400` and the parser's message.
//! - anything else (`text/plain`, `application/x-ndjson`, none): one record
//!   per non-empty line.
//!
//! The reply is `200 {"accepted": N}` once the records are queued for the
//! pipeline, `503` with `Retry-After` when the queue has no room for the
//! whole body (nothing of it is taken, so a retry does not duplicate),
//! `413` above `max_body_bytes`, `405` for another method and `404` for
//! another path. Records carry the time they arrived and the header
//! `content-type`.
//!
//! Config:
//! - `listen`: `host:port` (default `127.0.0.1:8088`; port 0 picks one).
//! - `path`: where to `POST` (default `/`).
//! - `key_field`: for JSON objects, the field whose value is the key.
//! - `max_body_bytes` (default 10485760) and `queue` (records held for the
//!   pipeline, default 100000).
//! - `bound_file`: a file the bound address is written to, for tests and
//!   scripts that use port 0.
//!
//! Records accepted but not yet written to the log when the broker dies
//! are lost: the client got `200` for them. Not for: TLS or
//! authentication (put a reverse proxy in front), or WebAssembly (no
//! listening sockets for components).

use fjord_sdk::inbox::Inbox;
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Record, Source,
};
use serde_json::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tiny_http::{Header, Method, Response, Server};

/// The source: the server thread fills the inbox, `poll` empties it.
pub struct HttpSource {
    inbox: Inbox<Record>,
    /// Unblocked when the source is dropped, which ends its thread.
    server: Arc<Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where it listens, with the port the OS picked for port 0.
    pub addr: SocketAddr,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("addr", &self.addr)
            .finish()
    }
}

/// What the server thread needs.
struct Endpoint {
    path: String,
    key_field: Option<String>,
    max_body: usize,
    inbox: Inbox<Record>,
}

impl Plugin for HttpSource {
    fn info() -> PluginInfo {
        PluginInfo::new("http", env!("CARGO_PKG_VERSION"))
            .description("an HTTP endpoint: POSTed lines or JSON become records")
            .key(ConfigKey::optional(
                "listen",
                Some("127.0.0.1:8088"),
                "host:port to serve on",
            ))
            .key(ConfigKey::optional("path", Some("/"), "where to POST"))
            .key(ConfigKey::optional(
                "key_field",
                None,
                "JSON field whose value is the record key",
            ))
            .key(ConfigKey::optional(
                "max_body_bytes",
                Some("10485760"),
                "larger bodies get 413",
            ))
            .key(ConfigKey::optional(
                "queue",
                Some("100000"),
                "records held for the pipeline; then 503",
            ))
            .key(ConfigKey::optional(
                "bound_file",
                None,
                "file to write the bound address to",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let listen = config.get("listen").unwrap_or("127.0.0.1:8088");
        let addr: SocketAddr = listen.parse().map_err(|e| {
            Error::msg(format!(
                "config key `listen`: {listen:?} is not host:port: {e}"
            ))
        })?;
        let server = bind(addr).map_err(|e| Error::msg(format!("cannot listen on {addr}: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::msg("the server has no IP address"))?;
        if let Some(file) = config.get("bound_file") {
            std::fs::write(file, addr.to_string())
                .map_err(|e| Error::msg(format!("config key `bound_file`: {file}: {e}")))?;
        }
        let inbox = Inbox::new(config.parse_or("queue", 100_000)?);
        let endpoint = Endpoint {
            path: config.get("path").unwrap_or("/").to_owned(),
            key_field: config.get("key_field").map(str::to_owned),
            max_body: config.parse_or("max_body_bytes", 10 << 20)?,
            inbox: inbox.clone(),
        };
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        // Blocks until a request comes or the server is unblocked: an idle
        // source costs no wake-ups.
        let thread = std::thread::Builder::new()
            .name("http-source".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    endpoint.handle(request);
                }
            })
            .map_err(|e| Error::msg(format!("cannot start the server thread: {e}")))?;
        Ok(HttpSource {
            inbox,
            server,
            thread: Some(thread),
            addr,
        })
    }
}

/// Binds, waiting up to 2 s while the address is in use: tiny_http's
/// accept thread lets go of the socket shortly after its `Server` is
/// dropped, so the instance a redeployed pipeline replaces may still hold
/// it for a moment.
fn bind(addr: SocketAddr) -> Result<Server, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match Server::http(addr) {
            Err(e)
                if std::time::Instant::now() < deadline
                    && e.downcast_ref::<std::io::Error>()
                        .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl Drop for HttpSource {
    fn drop(&mut self) {
        // Waiting for the server thread makes it drop the server, which
        // starts releasing the port (see `bind`).
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn json_response(status: u16, body: String) -> Response<std::io::Cursor<Vec<u8>>> {
    let header = Header::from_bytes("Content-Type", "application/json").ok();
    let r = Response::from_string(body).with_status_code(status);
    match header {
        Some(h) => r.with_header(h),
        None => r,
    }
}

fn error(status: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(status, serde_json::json!({ "error": message }).to_string())
}

impl Endpoint {
    fn handle(&self, mut request: tiny_http::Request) {
        let path = request.url().split('?').next().unwrap_or("");
        let response = if path != self.path {
            error(404, &format!("POST to {}", self.path))
        } else if *request.method() != Method::Post {
            error(405, "only POST")
        } else if request.body_length().is_some_and(|n| n > self.max_body) {
            error(413, &format!("the body is above {} bytes", self.max_body))
        } else {
            let content_type = request
                .headers()
                .iter()
                .find(|h| h.field.equiv("Content-Type"))
                .map(|h| h.value.as_str().to_owned())
                .unwrap_or_default();
            let mut body = Vec::new();
            let read = request
                .as_reader()
                .take(self.max_body as u64 + 1)
                .read_to_end(&mut body);
            match read {
                Err(e) => error(400, &format!("reading the body: {e}")),
                Ok(_) if body.len() > self.max_body => {
                    error(413, &format!("the body is above {} bytes", self.max_body))
                }
                Ok(_) => match self.records(&body, &content_type) {
                    Err(message) => error(400, &message),
                    Ok(records) => {
                        let n = records.len();
                        match self.inbox.try_push_all(records) {
                            Ok(()) => json_response(200, format!("{{\"accepted\":{n}}}")),
                            Err(_) => {
                                let r = error(503, "the pipeline is behind; retry");
                                match Header::from_bytes("Retry-After", "1") {
                                    Ok(h) => r.with_header(h),
                                    Err(()) => r,
                                }
                            }
                        }
                    }
                },
            }
        };
        // The client may have gone; nothing to do about it.
        let _ = request.respond(response);
    }

    fn records(&self, body: &[u8], content_type: &str) -> Result<Vec<Record>, String> {
        let now = fjord_sdk::now_ms();
        let record = |value: Vec<u8>, key: Option<String>| {
            let mut r = Record::new(value)
                .with_timestamp(now)
                .with_header("content-type", content_type);
            r.key = key.map(String::into_bytes);
            r
        };
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            let value: Value =
                serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
            let items = match value {
                Value::Array(items) => items,
                one => vec![one],
            };
            return Ok(items
                .into_iter()
                .map(|v| {
                    let key = self.key_field.as_ref().and_then(|f| match v.get(f)? {
                        Value::String(s) => Some(s.clone()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    });
                    record(v.to_string().into_bytes(), key)
                })
                .collect());
        }
        Ok(body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| record(l.to_vec(), None))
            .collect())
    }
}

#[fjord_sdk::source]
impl Source for HttpSource {
    fn seek(&mut self, _position: &[u8]) -> Result<(), Error> {
        // Nothing to resume: clients do not replay what got 200.
        Ok(())
    }

    fn poll(&mut self, max: u32, out: &mut BatchWriter, _: &mut Context<'_>) -> Result<(), Error> {
        for r in self.inbox.take(max as usize) {
            out.emit(&r);
        }
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        Vec::new()
    }
}
