//! `parse`: a processor that turns common log lines — nginx and Apache
//! access logs, syslog, JSON — into JSON objects with typed fields, fast
//! enough to sit at the front of a log pipeline.
//!
//! Config:
//! - `format`: `nginx` (combined, optionally followed by `$request_time`),
//!   `apache` (common or combined), `syslog` (RFC 5424, RFC 3164, and the
//!   PRI-less lines syslog daemons write to files), `json` (a JSON object,
//!   passed through), or `auto` (default: JSON for `{`, then access log,
//!   then syslog).
//! - `field`: the value is a JSON object and this string field holds the
//!   line; the parsed fields are merged into the object (replacing fields
//!   of the same name). Without it the whole value is the line.
//! - `service_from`: `path` (default: `service` is the first path segment,
//!   `/api/users` → `api`), or the name of a parsed string field (`client`,
//!   `user`, `app`, `hostname`, …) or, with `field`, of an input field.
//! - `on_error`: `fail` (default: fail the batch, so the pipeline
//!   dead-letters it), `keep` (forward the record unchanged) or `drop`.
//!   Failures are counted (`parse_errors`) either way.
//!
//! Fields of an access-log line: `client`, `ident`, `user`, `time` (as
//! written), `timestamp_ms`, `method`, `path`, `route` (path without the
//! query string), `protocol`, `status`, `bytes` (`-` is 0), `referer`,
//! `user_agent`, `request_time` (seconds, nginx only, when present),
//! `service`, `level` (`error` for 5xx, `warn` for 4xx, else `info`). A `-`
//! in `ident`, `user`, `referer` or `user_agent` is `null`. A request line
//! that is not `METHOD PATH [PROTOCOL]` (a TLS handshake sent to a plain
//! port) leaves `method`, `path`, `route`, `protocol` and `service` null.
//!
//! Fields of a syslog line: `facility`, `severity`, `level` (`emerg`,
//! `alert`, `crit`, `error`, `warn`, `notice`, `info`, `debug`; the three
//! are absent without `<PRI>`), `time` (as written), `timestamp_ms` (RFC
//! 3164 has no year or zone: UTC, in the year that is not in the future),
//! `hostname`, `app`, `procid`, `msgid`, `structured_data` (RFC 5424, as
//! written), `message`.
//!
//! Lines are scanned byte by byte and the output written into one reused
//! buffer; see `benches/parse.rs` for the throughput. Not for: arbitrary
//! formats (`regex-parse`), custom nginx `log_format`s, or multi-line
//! records (Java stack traces).

mod access;
mod syslog;
mod time;

pub use access::Dialect;
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};
use serde_json::{Map, Value};

/// Which parser(s) a line goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Nginx,
    Apache,
    Syslog,
    Json,
    Auto,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Nginx => "nginx",
            Format::Apache => "apache",
            Format::Syslog => "syslog",
            Format::Json => "json",
            Format::Auto => "auto",
        }
    }
}

/// What to do with a line that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    Keep,
    Drop,
    Fail,
}

/// The processor.
#[derive(Debug)]
pub struct Parse {
    format: Format,
    field: Option<String>,
    /// `None`: the first path segment.
    service_from: Option<String>,
    on_error: OnError,
    /// The output value, reused across records.
    buf: Vec<u8>,
}

impl Plugin for Parse {
    fn info() -> PluginInfo {
        PluginInfo::new("parse", env!("CARGO_PKG_VERSION"))
            .description("parses nginx, Apache, syslog and JSON log lines into JSON objects")
            .key(ConfigKey::optional(
                "format",
                Some("auto"),
                "`nginx`, `apache`, `syslog`, `json` or `auto`",
            ))
            .key(ConfigKey::optional(
                "field",
                None,
                "parse this string field of a JSON value and merge the result",
            ))
            .key(ConfigKey::optional(
                "service_from",
                Some("path"),
                "`path` (first path segment) or a field name",
            ))
            .key(ConfigKey::optional(
                "on_error",
                Some("fail"),
                "`fail`, `keep` or `drop`",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let format = match config.get("format").unwrap_or("auto") {
            "nginx" => Format::Nginx,
            "apache" => Format::Apache,
            "syslog" => Format::Syslog,
            "json" => Format::Json,
            "auto" => Format::Auto,
            other => {
                return Err(Error::msg(format!(
                    "config key `format`: `{other}` is not nginx, apache, syslog, json or auto"
                )));
            }
        };
        let on_error = match config.get("on_error").unwrap_or("fail") {
            "keep" => OnError::Keep,
            "drop" => OnError::Drop,
            "fail" => OnError::Fail,
            other => {
                return Err(Error::msg(format!(
                    "config key `on_error`: `{other}` is not fail, keep or drop"
                )));
            }
        };
        let service_from = match config.get("service_from") {
            None | Some("path") => None,
            Some("") => return Err(Error::msg("config key `service_from`: empty")),
            Some(f) => Some(f.to_owned()),
        };
        Ok(Parse {
            format,
            field: config.get("field").map(str::to_owned),
            service_from,
            on_error,
            buf: Vec::with_capacity(1024),
        })
    }
}

/// A parsed line.
enum Parsed<'a> {
    Access(access::Access<'a>),
    Syslog(syslog::Syslog<'a>),
    /// A JSON object (the text, checked).
    Json(&'a str),
}

/// Writes `"key":value` pairs of one JSON object.
struct Obj<'b> {
    buf: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Obj<'b> {
    fn open(buf: &'b mut Vec<u8>) -> Self {
        buf.push(b'{');
        Obj { buf, first: true }
    }

    /// Keys are this crate's own names: nothing to escape.
    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        write_str(self.buf, v);
    }

    fn opt_str(&mut self, key: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(key, v),
            None => {
                self.key(key);
                self.buf.extend_from_slice(b"null");
            }
        }
    }

    fn int(&mut self, key: &str, v: impl itoa::Integer) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// `v` is already valid JSON.
    fn raw(&mut self, key: &str, v: &str) {
        self.key(key);
        self.buf.extend_from_slice(v.as_bytes());
    }

    fn close(self) {
        self.buf.push(b'}');
    }
}

/// A JSON string. Log text rarely needs escaping, so the check comes first
/// and serde_json does the escaping when it is needed.
fn write_str(buf: &mut Vec<u8>, v: &str) {
    if v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Serializing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *buf, v);
    } else {
        buf.reserve(v.len() + 2);
        buf.push(b'"');
        buf.extend_from_slice(v.as_bytes());
        buf.push(b'"');
    }
}

/// Is `s` a JSON object?
fn json_object(s: &str) -> bool {
    s.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
}

impl Parse {
    fn parse_line<'a>(&self, line: &'a str) -> Result<Parsed<'a>, &'static str> {
        let access = |d| access::parse(line, d).map(Parsed::Access);
        let syslog = || syslog::parse(line, fjord_sdk::now_ms).map(Parsed::Syslog);
        let json = || {
            if json_object(line) {
                Ok(Parsed::Json(line))
            } else {
                Err("a JSON object")
            }
        };
        match self.format {
            Format::Nginx => access(Dialect::Nginx),
            Format::Apache => access(Dialect::Apache),
            Format::Syslog => syslog(),
            Format::Json => json(),
            Format::Auto => match line.as_bytes().first() {
                Some(b'{') => json(),
                Some(b'<') => syslog(),
                _ => access(Dialect::Any)
                    .or_else(|_| syslog())
                    .map_err(|_| "an access-log, syslog or JSON line"),
            },
        }
    }

    /// The `service` of a line, and whether the field is written at all.
    fn service<'a>(
        &self,
        p: &Parsed<'a>,
        input: Option<&'a Map<String, Value>>,
    ) -> Option<Option<&'a str>> {
        match (&self.service_from, p) {
            (None, Parsed::Access(a)) => Some(a.service()),
            (None, _) => None,
            (Some(f), p) => {
                let parsed = match p {
                    Parsed::Access(a) => a.get(f),
                    Parsed::Syslog(s) => s.get(f),
                    Parsed::Json(_) => None,
                };
                Some(parsed.or_else(|| input?.get(f)?.as_str()))
            }
        }
    }

    /// Writes the parsed fields as one JSON object into `self.buf`.
    fn write(&mut self, p: &Parsed<'_>, service: Option<Option<&str>>) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        match p {
            Parsed::Json(text) => buf.extend_from_slice(text.as_bytes()),
            Parsed::Access(a) => {
                let mut o = Obj::open(&mut buf);
                o.str("client", a.client);
                o.opt_str("ident", a.ident);
                o.opt_str("user", a.user);
                o.str("time", a.time);
                o.int("timestamp_ms", a.timestamp_ms);
                o.opt_str("method", a.method);
                o.opt_str("path", a.path);
                o.opt_str("route", a.route());
                o.opt_str("protocol", a.protocol);
                o.int("status", a.status);
                o.int("bytes", a.bytes);
                o.opt_str("referer", a.referer);
                o.opt_str("user_agent", a.user_agent);
                if let Some(t) = a.request_time {
                    o.raw("request_time", t);
                }
                if let Some(s) = service {
                    o.opt_str("service", s);
                }
                o.str("level", a.level());
                o.close();
            }
            Parsed::Syslog(s) => {
                let mut o = Obj::open(&mut buf);
                if let (Some(f), Some(sev), Some(level)) = (s.facility(), s.severity(), s.level()) {
                    o.int("facility", f);
                    o.int("severity", sev);
                    o.str("level", level);
                }
                o.opt_str("time", s.time);
                if let Some(ms) = s.timestamp_ms {
                    o.int("timestamp_ms", ms);
                }
                o.opt_str("hostname", s.hostname);
                o.opt_str("app", s.app);
                o.opt_str("procid", s.procid);
                o.opt_str("msgid", s.msgid);
                if let Some(sd) = s.structured_data {
                    o.str("structured_data", sd);
                }
                if let Some(svc) = service {
                    o.opt_str("service", svc);
                }
                o.str("message", s.message);
                o.close();
            }
        }
        self.buf = buf;
    }

    /// The output value in `self.buf`, or why the record does not parse.
    fn run(&mut self, value: &[u8]) -> Result<(), String> {
        match self.field.clone() {
            None => {
                let line = std::str::from_utf8(value).map_err(|_| "not UTF-8".to_owned())?;
                let line = line.trim_end_matches(['\n', '\r']);
                let parsed = self.parse_line(line).map_err(expected)?;
                if matches!(parsed, Parsed::Json(_)) {
                    // Passed through as it is.
                    self.buf.clear();
                    self.buf.extend_from_slice(value);
                    return Ok(());
                }
                let service = self.service(&parsed, None);
                self.write(&parsed, service);
                Ok(())
            }
            Some(field) => {
                let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(value) else {
                    return Err("the value is not a JSON object".to_owned());
                };
                let Some(Value::String(line)) = object.get(&field) else {
                    return Err(format!("no string field `{field}`"));
                };
                let line = line.trim_end_matches(['\n', '\r']);
                let parsed = self.parse_line(line).map_err(expected)?;
                let service = self.service(&parsed, Some(&object));
                self.write(&parsed, service);
                let fields: Map<String, Value> =
                    serde_json::from_slice(&self.buf).map_err(|e| e.to_string())?;
                object.extend(fields);
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, &object).map_err(|e| e.to_string())?;
                Ok(())
            }
        }
    }
}

fn expected(what: &'static str) -> String {
    format!("expected {what}")
}

/// The start of a value, for an error message.
fn excerpt(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut s: String = text.chars().take(120).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[fjord_sdk::processor]
impl Processor for Parse {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let value = r.value.unwrap_or_default();
        match self.run(value) {
            Ok(()) => {
                out.emit_with_value(&r, Some(&self.buf));
                Ok(())
            }
            Err(why) => {
                ctx.counter("parse_errors", 1);
                match self.on_error {
                    OnError::Keep => out.forward(&r),
                    OnError::Drop => {}
                    OnError::Fail => {
                        return Err(Error::msg(format!(
                            "record at offset {}: not a {} line: {why}: {:?}",
                            r.offset,
                            self.format.name(),
                            excerpt(value)
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
