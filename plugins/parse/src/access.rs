//! Web-server access logs: the common log format and the combined one
//! (nginx's default and Apache's `combined`), optionally followed by the
//! request time in seconds (nginx `$request_time`).
//!
//! ```text
//! 10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /api/users?id=1 HTTP/1.1" 200 2326 "-" "curl/8.5.0" 0.012
//! ```

use crate::json_out::Object;
use crate::time;

/// A cursor over a line.
struct Cursor<'a> {
    line: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Bytes up to the next space (which is consumed).
    fn word(&mut self) -> Option<&'a [u8]> {
        let rest = self.line.get(self.at..)?;
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.at += end + 1;
        Some(&rest[..end])
    }

    /// Bytes between `open` and `close`, then a space or the end.
    fn delimited(&mut self, open: u8, close: u8) -> Option<&'a [u8]> {
        let rest = self.line.get(self.at..)?;
        if rest.first() != Some(&open) {
            return None;
        }
        let mut i = 1;
        while i < rest.len() {
            match rest[i] {
                // Quoted fields escape quotes with a backslash.
                b'\\' if open == b'"' => i += 2,
                b if b == close => break,
                _ => i += 1,
            }
        }
        if i >= rest.len() {
            return None;
        }
        let field = &rest[1..i];
        match rest.get(i + 1) {
            None => self.at += i + 1,
            Some(b' ') => self.at += i + 2,
            Some(_) => return None,
        }
        Some(field)
    }

    fn done(&self) -> bool {
        self.at >= self.line.len()
    }
}

fn is_number(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn is_decimal(b: &[u8]) -> bool {
    let mut dots = 0;
    !b.is_empty()
        && b[0].is_ascii_digit()
        && b.iter().all(|&c| {
            dots += usize::from(c == b'.');
            c.is_ascii_digit() || c == b'.'
        })
        && dots <= 1
        && b[b.len() - 1] != b'.'
}

/// Parses `line` into a JSON object appended to `out`; false when it is
/// not an access-log line (`out` may then hold a partial object).
pub(crate) fn parse(line: &[u8], out: &mut Vec<u8>, clock: &mut time::Cache) -> bool {
    let mut c = Cursor { line, at: 0 };
    let (Some(client), Some(ident), Some(user)) = (c.word(), c.word(), c.word()) else {
        return false;
    };
    let Some(when) = c.delimited(b'[', b']') else {
        return false;
    };
    let Some(request) = c.delimited(b'"', b'"') else {
        return false;
    };
    let (Some(status), Some(bytes)) = (c.word(), c.word()) else {
        return false;
    };
    if status.len() != 3 || !is_number(status) || !(is_number(bytes) || bytes == b"-") {
        return false;
    }
    let mut referer = None;
    let mut agent = None;
    if !c.done() && c.line[c.at] == b'"' {
        referer = c.delimited(b'"', b'"');
        agent = c.delimited(b'"', b'"');
        if referer.is_none() || agent.is_none() {
            return false;
        }
    }
    let request_time = match c.word() {
        None => None,
        Some(t) if is_decimal(t) && c.done() => Some(t),
        Some(_) => return false,
    };
    let mut parts = request.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    let path = parts.next();
    let protocol = parts.next();

    let mut o = Object::new(out);
    o.str("client", client);
    if ident != b"-" {
        o.str("ident", ident);
    }
    if user != b"-" {
        o.str("user", user);
    }
    o.str("time", when);
    if let Some(ms) = clock.access_time(when) {
        o.int("timestamp_ms", ms);
    }
    if path.is_some() {
        o.str("method", method);
    } else {
        // A malformed request line ("-", garbage) is kept as it was.
        o.str("request", request);
    }
    if let Some(path) = path {
        o.str("path", path);
        let route = path.split(|&b| b == b'?').next().unwrap_or(path);
        o.str("route", route);
        let service = route
            .strip_prefix(b"/")
            .and_then(|r| r.split(|&b| b == b'/').next())
            .filter(|s| !s.is_empty());
        if let Some(service) = service {
            o.str("service", service);
        }
    }
    if let Some(protocol) = protocol {
        o.str("protocol", protocol);
    }
    o.raw_number("status", status);
    if bytes != b"-" {
        o.raw_number("bytes", bytes);
    }
    if let Some(r) = referer.filter(|r| *r != b"-") {
        o.str("referer", r);
    }
    if let Some(a) = agent.filter(|a| *a != b"-") {
        o.str("user_agent", a);
    }
    if let Some(t) = request_time {
        o.raw_number("request_time", t);
    }
    let level: &[u8] = match status[0] {
        b'5' => b"error",
        b'4' => b"warn",
        _ => b"info",
    };
    o.str("level", level);
    o.finish();
    true
}
