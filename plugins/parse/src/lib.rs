//! `parse`: turns common log lines into JSON objects — web-server access
//! logs (nginx and Apache, common and combined formats) and syslog
//! (RFC 5424 and RFC 3164).
//!
//! Config:
//! - `format`: `access` (nginx/Apache common or combined, with nginx's
//!   `$request_time` as an optional last field; `nginx` and `apache` are
//!   other names for it), `syslog`, `json` (checks the value is a JSON
//!   object and passes it on) or `auto` (default: each in turn).
//! - `on_error`: what to do with a line that is none of those — `fail`
//!   (default: fail it, so the pipeline retries it and dead-letters it),
//!   `drop`, or `keep` (forward it unchanged).
//!
//! Access-log lines give `client`, `user`, `time` (as written),
//! `timestamp_ms`, `method`, `path`, `route` (the path without its query),
//! `protocol`, `status`, `bytes`, `referer`, `user_agent` (combined format),
//! `request_time` (seconds, when present), `service` (the first path
//! segment: `/api/users` → `api`) and `level` (`error` for 5xx, `warn` for
//! 4xx, `info` otherwise). Syslog lines give `facility`, `severity`,
//! `level`, `timestamp` (as written), `timestamp_ms` (when it can be
//! read), `hostname`, `app`, `procid`, `msgid` (RFC 5424) and `message`.
//! Fields the line leaves out (`-`) are left out.
//!
//! It is the hot path of the log-aggregation pipeline, so lines are
//! scanned by hand, byte by byte, not with regular expressions, and JSON is
//! written into one reused buffer.
//!
//! Not for: arbitrary formats (use `regex-parse`), or reformatting JSON
//! (use the `json` serializer).

mod access;
mod json_out;
mod syslog;
mod time;

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};

/// Which formats to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Access,
    Syslog,
    Json,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    Fail,
    Drop,
    Keep,
}

/// The processor.
#[derive(Debug)]
pub struct Parse {
    format: Format,
    on_error: OnError,
    buf: Vec<u8>,
    clock: time::Cache,
}

impl Plugin for Parse {
    fn info() -> PluginInfo {
        PluginInfo::new("parse", env!("CARGO_PKG_VERSION"))
            .description(
                "access logs (nginx, Apache) and syslog (RFC 5424, RFC 3164) lines to JSON",
            )
            .key(ConfigKey::optional(
                "format",
                Some("auto"),
                "access (nginx/apache), syslog, json or auto",
            ))
            .key(ConfigKey::optional(
                "on_error",
                Some("fail"),
                "a line of no known format: fail, drop or keep",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let format = match config.get("format").unwrap_or("auto") {
            "access" | "nginx" | "apache" => Format::Access,
            "syslog" => Format::Syslog,
            "json" => Format::Json,
            "auto" => Format::Auto,
            other => {
                return Err(Error::msg(format!(
                    "config key `format`: {other:?} is not access, nginx, apache, syslog, json or auto"
                )));
            }
        };
        let on_error = match config.get("on_error").unwrap_or("fail") {
            "fail" => OnError::Fail,
            "drop" => OnError::Drop,
            "keep" => OnError::Keep,
            other => {
                return Err(Error::msg(format!(
                    "config key `on_error`: {other:?} is not fail, drop or keep"
                )));
            }
        };
        Ok(Parse {
            format,
            on_error,
            buf: Vec::with_capacity(512),
            clock: time::Cache::default(),
        })
    }
}

impl Parse {
    /// Parses `line` into `self.buf`; false when it is not of the format.
    fn parse(&mut self, line: &[u8]) -> bool {
        self.buf.clear();
        let try_access = |p: &mut Parse| access::parse(line, &mut p.buf, &mut p.clock);
        let try_syslog = |p: &mut Parse| syslog::parse(line, &mut p.buf, &mut p.clock);
        let try_json = |p: &mut Parse| {
            let ok =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line).is_ok();
            if ok {
                p.buf.extend_from_slice(line);
            }
            ok
        };
        match self.format {
            Format::Access => try_access(self),
            Format::Syslog => try_syslog(self),
            Format::Json => try_json(self),
            Format::Auto => match line.first() {
                Some(b'<') => try_syslog(self),
                Some(b'{') => try_json(self),
                _ => {
                    try_access(self) || {
                        self.buf.clear();
                        try_syslog(self)
                    }
                }
            },
        }
    }
}

#[fjord_sdk::processor]
impl Processor for Parse {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        _: &mut Context<'_>,
    ) -> Result<(), Error> {
        let line = r.value.unwrap_or_default();
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if self.parse(line) {
            out.emit_with_value(&r, Some(&self.buf));
            return Ok(());
        }
        match self.on_error {
            OnError::Keep => out.forward(&r),
            OnError::Drop => {}
            OnError::Fail => {
                let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
                return Err(Error::msg(format!(
                    "record at offset {}: not a {} line: {shown:?}",
                    r.offset,
                    match self.format {
                        Format::Access => "access-log",
                        Format::Syslog => "syslog",
                        Format::Json => "JSON object",
                        Format::Auto => "access-log, syslog or JSON",
                    }
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
