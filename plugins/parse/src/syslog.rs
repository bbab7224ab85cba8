//! Syslog lines: RFC 5424, RFC 3164, and the PRI-less form syslog daemons
//! write to files (`Oct 11 22:14:15 host app[42]: …`, or with an RFC 3339
//! timestamp).

use crate::time;

/// Severity 0–7 by name.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

/// One parsed line; every `&str` is a slice of the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Syslog<'a> {
    /// `<PRI>`: facility × 8 + severity; absent in file lines.
    pub pri: Option<u8>,
    pub time: Option<&'a str>,
    pub timestamp_ms: Option<i64>,
    pub hostname: Option<&'a str>,
    pub app: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// RFC 5424 structured data, as written (`[id k="v"]…`).
    pub structured_data: Option<&'a str>,
    pub message: &'a str,
}

impl<'a> Syslog<'a> {
    pub fn facility(&self) -> Option<u8> {
        self.pri.map(|p| p >> 3)
    }

    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }

    pub fn level(&self) -> Option<&'static str> {
        self.severity().map(|s| LEVELS[s as usize])
    }

    /// A string field by its output name, for `service_from`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        match name {
            "hostname" => self.hostname,
            "app" => self.app,
            "procid" => self.procid,
            "msgid" => self.msgid,
            _ => None,
        }
    }
}

type Res<T> = Result<T, &'static str>;

/// `-` is RFC 5424's NILVALUE.
fn nil(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// Splits off the next space-separated token, non-empty.
fn token<'a>(s: &mut &'a str, what: &'static str) -> Res<&'a str> {
    let n = memchr::memchr(b' ', s.as_bytes()).unwrap_or(s.len());
    if n == 0 {
        return Err(what);
    }
    let t = &s[..n];
    *s = &s[n..];
    Ok(t)
}

fn space(s: &mut &str, what: &'static str) -> Res<()> {
    *s = s.strip_prefix(' ').ok_or(what)?;
    Ok(())
}

/// Parses one line (without its newline). `now_ms` dates RFC 3164
/// timestamps, which have no year.
pub fn parse(line: &str, now_ms: impl FnOnce() -> i64) -> Res<Syslog<'_>> {
    let mut s = line;
    let mut pri = None;
    if let Some(rest) = s.strip_prefix('<') {
        let close = memchr::memchr(b'>', rest.as_bytes())
            .filter(|n| (1..=3).contains(n))
            .ok_or("`<PRI>` of 1 to 3 digits")?;
        let p: u8 = rest[..close]
            .parse()
            .ok()
            .filter(|p| *p <= 191)
            .ok_or("a PRI from 0 to 191")?;
        pri = Some(p);
        s = &rest[close + 1..];
    }
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if pri.is_some() && (1..=2).contains(&digits) && b.get(digits) == Some(&b' ') {
        rfc5424(pri, &s[digits + 1..])
    } else {
        bsd(pri, s, now_ms)
    }
}

/// After `<PRI>VERSION `.
fn rfc5424(pri: Option<u8>, mut s: &str) -> Res<Syslog<'_>> {
    let time = nil(token(&mut s, "a timestamp or `-`")?);
    let timestamp_ms = match time {
        Some(t) => Some(time::rfc3339(t).ok_or("an RFC 3339 timestamp")?),
        None => None,
    };
    space(&mut s, "a space after the timestamp")?;
    let hostname = nil(token(&mut s, "a hostname or `-`")?);
    space(&mut s, "a space after the hostname")?;
    let app = nil(token(&mut s, "an app name or `-`")?);
    space(&mut s, "a space after the app name")?;
    let procid = nil(token(&mut s, "a process id or `-`")?);
    space(&mut s, "a space after the process id")?;
    let msgid = nil(token(&mut s, "a message id or `-`")?);
    space(&mut s, "a space after the message id")?;
    let structured_data = if let Some(rest) = s.strip_prefix('-') {
        s = rest;
        None
    } else {
        let n = structured_data_len(s.as_bytes())?;
        let sd = &s[..n];
        s = &s[n..];
        Some(sd)
    };
    let message = match s.strip_prefix(' ') {
        Some(m) => m.strip_prefix('\u{feff}').unwrap_or(m),
        None if s.is_empty() => "",
        None => return Err("a space before the message"),
    };
    Ok(Syslog {
        pri,
        time,
        timestamp_ms,
        hostname,
        app,
        procid,
        msgid,
        structured_data,
        message,
    })
}

/// Length of one or more `[id param="value"…]` elements. Inside a value,
/// `\"`, `\]` and `\\` are escapes.
fn structured_data_len(b: &[u8]) -> Res<usize> {
    const WHAT: &str = "structured data `[id k=\"v\"]` or `-`";
    let mut i = 0;
    if b.first() != Some(&b'[') {
        return Err(WHAT);
    }
    while b.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            match b.get(i) {
                None => return Err(WHAT),
                Some(b'\\') if quoted => i += 2,
                Some(b'"') => {
                    quoted = !quoted;
                    i += 1;
                }
                Some(b']') if !quoted => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    Ok(i)
}

/// RFC 3164 and file lines: `TIMESTAMP HOSTNAME TAG[PID]: MESSAGE`.
fn bsd(pri: Option<u8>, s: &str, now_ms: impl FnOnce() -> i64) -> Res<Syslog<'_>> {
    let (time, timestamp_ms, mut s) = if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let mut rest = s;
        let t = token(&mut rest, "a timestamp")?;
        (t, time::rfc3339(t).ok_or("an RFC 3339 timestamp")?, rest)
    } else {
        let t = s.get(..15).ok_or("a timestamp like `Oct 11 22:14:15`")?;
        let ms = time::rfc3164(t, now_ms()).ok_or("a timestamp like `Oct 11 22:14:15`")?;
        (t, ms, &s[15..])
    };
    space(&mut s, "a space after the timestamp")?;
    let hostname = token(&mut s, "a hostname")?;
    let (mut app, mut procid, mut message) = (None, None, s.strip_prefix(' ').unwrap_or(s));
    // The tag is optional: `app[pid]: ` or `app: `, else it is all message.
    let m = message.as_bytes();
    let n = m
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'/'))
        .count();
    if n > 0 {
        match m.get(n) {
            Some(b'[') => {
                if let Some(close) = memchr::memchr(b']', &m[n..]) {
                    app = Some(&message[..n]);
                    procid = Some(&message[n + 1..n + close]);
                    let rest = &message[n + close + 1..];
                    let rest = rest.strip_prefix(':').unwrap_or(rest);
                    message = rest.strip_prefix(' ').unwrap_or(rest);
                }
            }
            Some(b':') => {
                app = Some(&message[..n]);
                let rest = &message[n + 1..];
                message = rest.strip_prefix(' ').unwrap_or(rest);
            }
            _ => {}
        }
    }
    Ok(Syslog {
        pri,
        time: Some(time),
        timestamp_ms: Some(timestamp_ms),
        hostname: Some(hostname),
        app,
        procid,
        msgid: None,
        structured_data: None,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        time::rfc3339("2003-12-01T00:00:00Z").unwrap()
    }

    #[test]
    fn rfc5424_examples() {
        // RFC 5424 section 6.5, examples 1 and 2 (BOM included).
        let l = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8";
        let s = parse(l, now).unwrap();
        assert_eq!(
            (s.facility(), s.severity(), s.level()),
            (Some(4), Some(2), Some("crit"))
        );
        assert_eq!(s.timestamp_ms, Some(1_065_910_455_003));
        assert_eq!(s.hostname, Some("mymachine.example.com"));
        assert_eq!((s.app, s.procid, s.msgid), (Some("su"), None, Some("ID47")));
        assert_eq!(s.message, "'su root' failed for lonvick on /dev/pts/8");
        let l = "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.";
        let s = parse(l, now).unwrap();
        assert_eq!((s.facility(), s.level()), (Some(20), Some("notice")));
        assert_eq!(s.procid, Some("8710"));
        assert_eq!(s.message, "%% It's time to make the do-nuts.");
    }

    #[test]
    fn rfc5424_structured_data() {
        // Example 4, plus an escaped `]` in a value.
        let l = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="hi\]gh"]"#;
        let s = parse(l, now).unwrap();
        assert_eq!(
            s.structured_data,
            Some(
                r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="hi\]gh"]"#
            )
        );
        assert_eq!(s.message, "");
        let unclosed = r#"<165>1 - host app - - [id k="v"#;
        assert!(parse(unclosed, now).is_err());
    }

    #[test]
    fn rfc3164_and_file_lines() {
        // RFC 3164 section 5.4, examples 1 and 2.
        let s = parse(
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            now,
        )
        .unwrap();
        assert_eq!(s.level(), Some("crit"));
        assert_eq!(s.timestamp_ms, time::rfc3339("2003-10-11T22:14:15Z"));
        assert_eq!(
            (s.hostname, s.app, s.procid),
            (Some("mymachine"), Some("su"), None)
        );
        assert_eq!(s.message, "'su root' failed for lonvick on /dev/pts/8");
        let s = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", now).unwrap();
        assert_eq!((s.app, s.message), (None, "Use the BFG!"));
        // /var/log/syslog, no PRI.
        let s = parse(
            "Oct  1 07:00:01 web-1 CRON[12345]: (root) CMD (run-parts /etc/cron.hourly)",
            now,
        )
        .unwrap();
        assert_eq!((s.pri, s.level()), (None, None));
        assert_eq!((s.app, s.procid), (Some("CRON"), Some("12345")));
        assert_eq!(s.message, "(root) CMD (run-parts /etc/cron.hourly)");
        // rsyslog's high-precision file format.
        let s = parse(
            "2024-01-15T10:00:00.123456+00:00 db-2 postgres[77]: checkpoint starting",
            now,
        )
        .unwrap();
        assert_eq!(s.timestamp_ms, time::rfc3339("2024-01-15T10:00:00.123Z"));
        assert_eq!(s.app, Some("postgres"));
    }

    #[test]
    fn malformed() {
        for l in [
            "",
            "<>1 - - - - - -",
            "<192>1 - - - - - -",
            "<34>1 yesterday host app - - -",
            "<34>Foo 11 22:14:15 host app: x",
            "<34>Oct 11 22:14:15",
            "hello world",
        ] {
            assert!(parse(l, now).is_err(), "{l:?}");
        }
    }
}
