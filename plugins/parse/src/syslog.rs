//! Syslog lines: RFC 5424 and the older BSD format of RFC 3164, each
//! starting with `<PRI>`.
//!
//! ```text
//! <34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed
//! <34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8
//! ```

use crate::json_out::Object;
use crate::time;

const LEVELS: [&[u8]; 8] = [
    b"emergency",
    b"alert",
    b"critical",
    b"error",
    b"warn",
    b"notice",
    b"info",
    b"debug",
];

/// `<PRI>` and the rest of the line.
fn priority(line: &[u8]) -> Option<(u8, &[u8])> {
    let rest = line.strip_prefix(b"<")?;
    let end = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = &rest[..end];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let pri: u32 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (pri <= 191).then_some((pri as u8, &rest[end + 1..]))
}

fn split_word(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = b.iter().position(|&c| c == b' ')?;
    Some((&b[..end], &b[end + 1..]))
}

/// Parses `line` into a JSON object appended to `out`; false when it is
/// not syslog.
pub(crate) fn parse(line: &[u8], out: &mut Vec<u8>, clock: &mut time::Cache) -> bool {
    let Some((pri, rest)) = priority(line) else {
        return false;
    };
    let mut o = Object::new(out);
    o.int("facility", i64::from(pri >> 3));
    o.int("severity", i64::from(pri & 7));
    o.str("level", LEVELS[usize::from(pri & 7)]);
    if let Some(rest) = rest.strip_prefix(b"1 ") {
        rfc5424(rest, &mut o, clock)
    } else {
        rfc3164(rest, &mut o);
    }
    o.finish();
    true
}

fn rfc5424(rest: &[u8], o: &mut Object<'_>, clock: &mut time::Cache) {
    let mut rest = rest;
    let mut fields: [&[u8]; 5] = [b"-"; 5];
    for f in &mut fields {
        match split_word(rest) {
            Some((w, r)) => {
                *f = w;
                rest = r;
            }
            None => {
                *f = rest;
                rest = b"";
                break;
            }
        }
    }
    let [timestamp, host, app, procid, msgid] = fields;
    if timestamp != b"-" {
        o.str("timestamp", timestamp);
        if let Some(ms) = clock.rfc3339(timestamp) {
            o.int("timestamp_ms", ms);
        }
    }
    for (name, value) in [
        ("hostname", host),
        ("app", app),
        ("procid", procid),
        ("msgid", msgid),
    ] {
        if value != b"-" && !value.is_empty() {
            o.str(name, value);
        }
    }
    // Structured data: `-` or one or more `[…]` elements.
    let message = if let Some(r) = rest.strip_prefix(b"-") {
        r.strip_prefix(b" ").unwrap_or(r)
    } else if rest.first() == Some(&b'[') {
        let mut i = 0;
        let mut depth_end = 0;
        while i < rest.len() {
            match rest[i] {
                b'\\' => i += 1,
                b']' if rest.get(i + 1) != Some(&b'[') => {
                    depth_end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        if depth_end > 0 {
            o.str("structured_data", &rest[..depth_end]);
            let r = &rest[depth_end..];
            r.strip_prefix(b" ").unwrap_or(r)
        } else {
            rest
        }
    } else {
        rest
    };
    let message = message
        .strip_prefix("\u{feff}".as_bytes())
        .unwrap_or(message);
    o.str("message", message);
}

fn rfc3164(rest: &[u8], o: &mut Object<'_>) {
    // `Mmm dd hh:mm:ss ` — 16 bytes; the year is not in the line.
    let has_time = rest.len() >= 16
        && rest[3] == b' '
        && rest[6] == b' '
        && rest[9] == b':'
        && rest[12] == b':'
        && rest[15] == b' ';
    let mut rest = rest;
    if has_time {
        o.str("timestamp", &rest[..15]);
        rest = &rest[16..];
    }
    if let Some((host, r)) = split_word(rest) {
        let looks_like_tag = host.ends_with(b":") || host.contains(&b'[');
        if !looks_like_tag {
            o.str("hostname", host);
            rest = r;
        }
    }
    // TAG[pid]: message
    let tag_end = rest
        .iter()
        .take(48)
        .position(|&b| b == b':' || b == b'[' || b == b' ');
    if let Some(end) = tag_end.filter(|&e| e > 0) {
        let tag = &rest[..end];
        let mut after = &rest[end..];
        if after.first() == Some(&b'[') {
            if let Some(close) = after.iter().position(|&b| b == b']') {
                o.str("procid", &after[1..close]);
                after = &after[close + 1..];
            }
        }
        if let Some(msg) = after.strip_prefix(b":") {
            o.str("app", tag);
            rest = msg.strip_prefix(b" ").unwrap_or(msg);
        }
    }
    o.str("message", rest);
}
