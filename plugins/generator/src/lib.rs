//! `generator`: a source of synthetic web-server access logs, for demos and
//! benchmarks — the input of the log-aggregation and metrics samples.
//!
//! Each record is one request of a made-up fleet of services. The first
//! path segment is the service (`/api/users`, `/auth/login`), so parsing a
//! line gives `service`, `route`, `status` and `request_time`.
//!
//! Config:
//! - `rate`: lines per second (default `1000`); `0` is as fast as polled.
//! - `format`: `nginx` (default: the combined log format followed by the
//!   request time in seconds, as nginx's `$request_time` adds it) or `json`
//!   (the same fields as a JSON object, `time` in epoch ms).
//! - `services`: comma-separated service names (default `api,web,auth`).
//! - `error_ratio`: the share of 5xx answers (default `0.05`); 4xx are as
//!   many again.
//! - `seed`: the same seed gives the same lines (default `1`).
//! - `count`: stop after this many lines (default: never).
//!
//! The position is the number of lines emitted, so a restarted pipeline
//! with `count` goes on where it stopped. Timestamps are the wall clock.
//!
//! Not for: replaying real logs (use `file`), or load that must follow a
//! real traffic shape.

use std::time::Instant;

use fjord_sdk::{BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Source};

const METHODS: [&str; 4] = ["GET", "GET", "POST", "PUT"];
const ROUTES: [&str; 6] = [
    "users",
    "orders",
    "items",
    "login",
    "static/app.js",
    "health",
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "curl/8.5.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Nginx,
    Json,
}

/// The source.
#[derive(Debug)]
pub struct Generator {
    rate: u64,
    format: Format,
    services: Vec<String>,
    /// Out of 1000: 5xx below `errors`, 4xx below `2 * errors`.
    errors: u32,
    count: Option<u64>,
    emitted: u64,
    /// Lines emitted since `started`, for the rate.
    since_start: u64,
    started: Instant,
    rng: u64,
    line: Vec<u8>,
    /// The formatted time of `clock_second`, reused within a second.
    clock_second: i64,
    clock_text: String,
}

impl Plugin for Generator {
    fn info() -> PluginInfo {
        PluginInfo::new("generator", env!("CARGO_PKG_VERSION"))
            .description("synthetic web-server access logs at a set rate")
            .key(ConfigKey::optional(
                "rate",
                Some("1000"),
                "lines per second; 0 = as fast as polled",
            ))
            .key(ConfigKey::optional(
                "format",
                Some("nginx"),
                "nginx (combined + request time) or json",
            ))
            .key(ConfigKey::optional(
                "services",
                Some("api,web,auth"),
                "comma-separated service names",
            ))
            .key(ConfigKey::optional(
                "error_ratio",
                Some("0.05"),
                "share of 5xx answers",
            ))
            .key(ConfigKey::optional(
                "seed",
                Some("1"),
                "the same seed gives the same lines",
            ))
            .key(ConfigKey::optional(
                "count",
                None,
                "stop after this many lines",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let format = match config.get("format").unwrap_or("nginx") {
            "nginx" => Format::Nginx,
            "json" => Format::Json,
            other => {
                return Err(Error::msg(format!(
                    "config key `format`: {other:?} is neither `nginx` nor `json`"
                )));
            }
        };
        let services: Vec<String> = config
            .get("services")
            .unwrap_or("api,web,auth")
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if services.is_empty() {
            return Err(Error::msg("config key `services`: no service named"));
        }
        let ratio: f64 = config.parse_or("error_ratio", 0.05)?;
        if !(0.0..=0.5).contains(&ratio) {
            return Err(Error::msg(
                "config key `error_ratio`: must be between 0 and 0.5",
            ));
        }
        let seed: u64 = config.parse_or("seed", 1)?;
        Ok(Generator {
            rate: config.parse_or("rate", 1000)?,
            format,
            services,
            errors: (ratio * 1000.0).round() as u32,
            count: config
                .get("count")
                .map(str::parse)
                .transpose()
                .map_err(|e| Error::msg(format!("config key `count`: {e}")))?,
            emitted: 0,
            since_start: 0,
            started: Instant::now(),
            // xorshift must not start at zero.
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            line: Vec::with_capacity(256),
            clock_second: i64::MIN,
            clock_text: String::new(),
        })
    }
}

impl Generator {
    fn next(&mut self) -> u64 {
        // xorshift64*: fast and good enough for synthetic traffic.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }

    /// `dd/Mon/yyyy:HH:MM:SS +0000` of `ms`, formatted once per second.
    fn clock(&mut self, ms: i64) -> &str {
        let second = ms.div_euclid(1000);
        if second != self.clock_second {
            self.clock_second = second;
            let (y, m, d) = civil(second.div_euclid(86_400));
            let s = second.rem_euclid(86_400);
            self.clock_text = format!(
                "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
                MONTHS[(m - 1) as usize],
                s / 3600,
                s / 60 % 60,
                s % 60
            );
        }
        &self.clock_text
    }

    fn write_line(&mut self, now_ms: i64) {
        use std::io::Write;
        let r = self.next();
        let ip = [10, (r >> 8) as u8, (r >> 16) as u8, (r >> 24) as u8 | 1];
        let service = (self.next() % self.services.len() as u64) as usize;
        let route = *self.pick(&ROUTES);
        let method = *self.pick(&METHODS);
        let agent = *self.pick(&AGENTS);
        let roll = (self.next() % 1000) as u32;
        let status = if roll < self.errors {
            [500, 502, 503][(roll % 3) as usize]
        } else if roll < 2 * self.errors {
            [400, 404, 429][(roll % 3) as usize]
        } else {
            [200, 200, 200, 201, 304][(roll % 5) as usize]
        };
        let bytes = 200 + self.next() % 20_000;
        // Mostly fast, with a slow tail: what percentiles are for.
        let millis = match self.next() % 100 {
            0..=89 => 1 + self.next() % 80,
            90..=98 => 80 + self.next() % 400,
            _ => 500 + self.next() % 2500,
        };
        self.clock(now_ms);
        let Generator {
            line,
            clock_text: time,
            services,
            format,
            ..
        } = self;
        let service = &services[service];
        let [a, b, c, d] = ip;
        let (secs, frac) = (millis / 1000, millis % 1000);
        line.clear();
        // Writing to a Vec cannot fail.
        let _ = match format {
            Format::Nginx => write!(
                line,
                "{a}.{b}.{c}.{d} - - [{time}] \"{method} /{service}/{route} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\" {secs}.{frac:03}"
            ),
            Format::Json => write!(
                line,
                r#"{{"time":{now_ms},"client":"{a}.{b}.{c}.{d}","method":"{method}","path":"/{service}/{route}","service":"{service}","status":{status},"bytes":{bytes},"user_agent":"{agent}","request_time":{secs}.{frac:03}}}"#
            ),
        };
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[fjord_sdk::source]
impl Source for Generator {
    fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
        let text = std::str::from_utf8(position).map_err(|_| Error::msg("position is not text"))?;
        self.emitted = text
            .parse()
            .map_err(|_| Error::msg(format!("position {text:?} is not a line count")))?;
        Ok(())
    }

    fn poll(&mut self, max: u32, out: &mut BatchWriter, _: &mut Context<'_>) -> Result<(), Error> {
        let mut n = u64::from(max);
        if let Some(count) = self.count {
            n = n.min(count.saturating_sub(self.emitted));
        }
        if self.rate > 0 {
            let allowed = (self.started.elapsed().as_secs_f64() * self.rate as f64) as u64;
            n = n.min(allowed.saturating_sub(self.since_start));
        }
        let now = fjord_sdk::now_ms();
        for _ in 0..n {
            self.write_line(now);
            out.emit_parts(now, None, &self.line);
        }
        self.emitted += n;
        self.since_start += n;
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        self.emitted.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests;
