//! nginx `combined` and Apache common/combined access-log lines, scanned
//! byte by byte.
//!
//! ```text
//! client ident user [time] "request" status bytes ["referer" "user_agent" [request_time]]
//! ```

use crate::time;

/// Which lines the grammar accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// combined, optionally followed by `$request_time`.
    Nginx,
    /// common or combined.
    Apache,
    /// Any of the above.
    Any,
}

/// One parsed line; every `&str` is a slice of the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Access<'a> {
    pub client: &'a str,
    pub ident: Option<&'a str>,
    pub user: Option<&'a str>,
    pub time: &'a str,
    pub timestamp_ms: i64,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// Seconds, as written (already checked to be a JSON number).
    pub request_time: Option<&'a str>,
}

impl<'a> Access<'a> {
    /// The path without its query string (or fragment).
    pub fn route(&self) -> Option<&'a str> {
        self.path
            .map(|p| match memchr::memchr2(b'?', b'#', p.as_bytes()) {
                Some(i) => &p[..i],
                None => p,
            })
    }

    /// The route's first segment: `/api/users` → `api`.
    pub fn service(&self) -> Option<&'a str> {
        let rest = self.route()?.strip_prefix('/')?;
        let seg = match memchr::memchr(b'/', rest.as_bytes()) {
            Some(i) => &rest[..i],
            None => rest,
        };
        (!seg.is_empty()).then_some(seg)
    }

    pub fn level(&self) -> &'static str {
        match self.status {
            500.. => "error",
            400..=499 => "warn",
            _ => "info",
        }
    }

    /// A string field by its output name, for `service_from`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match name {
            "client" => Some(self.client),
            "ident" => self.ident,
            "user" => self.user,
            "method" => self.method,
            "path" => self.path,
            "route" => self.route(),
            "protocol" => self.protocol,
            "referer" => self.referer,
            "user_agent" => self.user_agent,
            _ => None,
        }
    }
}

/// A cursor over the line; errors say what was expected.
struct Scan<'a> {
    s: &'a str,
    at: usize,
}

type Res<T> = Result<T, &'static str>;

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, c: u8, what: &'static str) -> Res<()> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(what)
        }
    }

    /// Up to the next space (or the end), non-empty.
    fn token(&mut self, what: &'static str) -> Res<&'a str> {
        let rest = &self.s.as_bytes()[self.at..];
        let n = memchr::memchr(b' ', rest).unwrap_or(rest.len());
        if n == 0 {
            return Err(what);
        }
        let t = &self.s[self.at..self.at + n];
        self.at += n;
        Ok(t)
    }

    /// `[…]`, without the brackets.
    fn bracketed(&mut self) -> Res<&'a str> {
        self.expect(b'[', "`[` before the time")?;
        let rest = &self.s.as_bytes()[self.at..];
        let n = memchr::memchr(b']', rest).ok_or("`]` after the time")?;
        let t = &self.s[self.at..self.at + n];
        self.at += n + 1;
        Ok(t)
    }

    /// `"…"`, without the quotes; a backslash escapes the next byte (Apache
    /// writes `\"`, nginx `\x22`) and is kept as written.
    fn quoted(&mut self, what: &'static str) -> Res<&'a str> {
        self.expect(b'"', what)?;
        let b = self.s.as_bytes();
        let start = self.at;
        let mut i = start;
        loop {
            match memchr::memchr2(b'"', b'\\', &b[i..]) {
                None => return Err(what),
                Some(n) if b[i + n] == b'\\' => i += n + 2,
                Some(n) => {
                    let end = i + n;
                    self.at = end + 1;
                    return Ok(&self.s[start..end]);
                }
            }
            if i > b.len() {
                return Err(what);
            }
        }
    }

    fn number(&mut self, what: &'static str) -> Res<u64> {
        let b = self.s.as_bytes();
        let start = self.at;
        let mut v: u64 = 0;
        while let Some(c) = b.get(self.at).filter(|c| c.is_ascii_digit()) {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(c - b'0')))
                .ok_or(what)?;
            self.at += 1;
        }
        if self.at == start { Err(what) } else { Ok(v) }
    }

    fn done(&self) -> bool {
        self.at == self.s.len()
    }
}

/// `-` means "not given" in these formats.
fn dash(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// `0.123`, `12`: what nginx writes for `$request_time`, returned as a JSON
/// number (leading zeros, which JSON refuses, cut: `007.5` → `7.5`).
fn seconds(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let int = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int == 0 {
        return None;
    }
    let zeros = b[..int - 1].iter().take_while(|c| **c == b'0').count();
    match &b[int..] {
        [] => Some(&s[zeros..]),
        [b'.', frac @ ..] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => {
            Some(&s[zeros..])
        }
        _ => None,
    }
}

/// Splits `GET /path HTTP/1.1`. Anything else (`-`, a TLS handshake sent to
/// a plain port) leaves all three empty: the line is still a valid log line.
fn request(r: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let b = r.as_bytes();
    let Some(first) = memchr::memchr(b' ', b) else {
        return (None, None, None);
    };
    let method = &r[..first];
    let rest = &r[first + 1..];
    match memchr::memrchr(b' ', rest.as_bytes()) {
        Some(last) if rest[last + 1..].starts_with("HTTP/") => {
            (Some(method), Some(&rest[..last]), Some(&rest[last + 1..]))
        }
        // HTTP/0.9: no protocol.
        None if !rest.is_empty() => (Some(method), Some(rest), None),
        _ => (None, None, None),
    }
}

/// Parses one line (without its newline).
pub fn parse(s: &str, dialect: Dialect) -> Res<Access<'_>> {
    let mut c = Scan { s, at: 0 };
    let client = c.token("the client address")?;
    c.expect(b' ', "a space after the client")?;
    let ident = c.token("the ident field")?;
    c.expect(b' ', "a space after ident")?;
    let user = c.token("the user field")?;
    c.expect(b' ', "a space after the user")?;
    let time = c.bracketed()?;
    let timestamp_ms = time::clf(time).ok_or("a time like 10/Oct/2000:13:55:36 -0700")?;
    c.expect(b' ', "a space after the time")?;
    let req = c.quoted("a quoted request line")?;
    c.expect(b' ', "a space after the request")?;
    let status = c.number("a status code")?;
    if !(100..=999).contains(&status) {
        return Err("a three-digit status code");
    }
    c.expect(b' ', "a space after the status")?;
    let bytes = if c.peek() == Some(b'-') {
        c.at += 1;
        0
    } else {
        c.number("a byte count or `-`")?
    };
    let (mut referer, mut user_agent, mut request_time) = (None, None, None);
    if !c.done() || dialect == Dialect::Nginx {
        c.expect(b' ', "a space after the byte count")?;
        referer = dash(c.quoted("a quoted referer")?);
        c.expect(b' ', "a space after the referer")?;
        user_agent = dash(c.quoted("a quoted user agent")?);
        if !c.done() && dialect != Dialect::Apache {
            c.expect(b' ', "a space after the user agent")?;
            let t = c.token("a request time")?;
            if t != "-" {
                request_time = Some(seconds(t).ok_or("a request time in seconds like 0.123")?);
            }
        }
    }
    if !c.done() {
        return Err("the end of the line");
    }
    let (method, path, protocol) = request(req);
    Ok(Access {
        client,
        ident: dash(ident),
        user: dash(user),
        time,
        timestamp_ms,
        method,
        path,
        protocol,
        status: status as u16,
        bytes,
        referer,
        user_agent,
        request_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = r#"203.0.113.9 - alice [22/Nov/2026:10:00:00 +0000] "GET /api/users?id=7 HTTP/1.1" 503 512 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.042"#;

    #[test]
    fn nginx_combined_with_request_time() {
        let a = parse(NGINX, Dialect::Nginx).unwrap();
        assert_eq!(a.client, "203.0.113.9");
        assert_eq!(a.ident, None);
        assert_eq!(a.user, Some("alice"));
        assert_eq!(a.method, Some("GET"));
        assert_eq!(a.path, Some("/api/users?id=7"));
        assert_eq!(a.route(), Some("/api/users"));
        assert_eq!(a.service(), Some("api"));
        assert_eq!(a.protocol, Some("HTTP/1.1"));
        assert_eq!((a.status, a.bytes), (503, 512));
        assert_eq!(a.referer, Some("https://example.com/"));
        assert_eq!(a.request_time, Some("0.042"));
        assert_eq!(a.level(), "error");
    }

    #[test]
    fn apache_common_needs_no_referer_and_nginx_does() {
        // The example of the Apache httpd log documentation.
        let common = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let a = parse(common, Dialect::Apache).unwrap();
        assert_eq!(a.timestamp_ms, 971_211_336_000);
        assert_eq!(a.referer, None);
        assert!(parse(common, Dialect::Nginx).is_err());
        assert!(
            parse(NGINX, Dialect::Apache).is_err(),
            "request time is nginx's"
        );
    }

    #[test]
    fn odd_requests_and_escapes() {
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01" 400 - "-" "-""#;
        let a = parse(line, Dialect::Nginx).unwrap();
        assert_eq!((a.method, a.path, a.protocol), (None, None, None));
        assert_eq!((a.bytes, a.referer, a.user_agent), (0, None, None));
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b HTTP/1.1" 404 1 "-" "curl \"x\"""#;
        let a = parse(line, Dialect::Apache).unwrap();
        assert_eq!(a.path, Some(r#"/a\"b"#));
        assert_eq!(a.user_agent, Some(r#"curl \"x\""#));
        assert_eq!(a.level(), "warn");
    }

    #[test]
    fn malformed_lines_say_what_was_expected() {
        let cut = &NGINX[..NGINX.find('"').unwrap() + 5];
        assert_eq!(parse(cut, Dialect::Nginx), Err("a quoted request line"));
        let bad_status = NGINX.replace(" 503 ", " 5x3 ");
        assert!(parse(&bad_status, Dialect::Nginx).is_err());
        assert_eq!(
            parse(&NGINX.replace("0.042", "fast"), Dialect::Nginx),
            Err("a request time in seconds like 0.123")
        );
        assert!(parse("", Dialect::Any).is_err());
        let line = NGINX.replace("0.042", "007.50");
        let zeros = parse(&line, Dialect::Nginx).unwrap();
        assert_eq!(zeros.request_time, Some("7.50"));
        // Every prefix up to the status fails cleanly (a longer one is a
        // valid common-format line).
        for i in 0..=NGINX.find(" 512").unwrap() {
            assert!(parse(&NGINX[..i], Dialect::Any).is_err(), "{i}");
        }
    }
}
