use super::*;
use fjord_sdk::Record;
use fjord_sdk::testing::{Harness, process};
use proptest::prelude::*;
use serde_json::json;

/// nginx combined with `$request_time`.
const NGINX: &str = r#"203.0.113.9 - - [22/Nov/2026:10:00:00 +0000] "GET /api/users/7?expand=1 HTTP/1.1" 503 512 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.042"#;
/// The examples of the Apache httpd log-file documentation.
const APACHE_COMMON: &str =
    r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
const APACHE_COMBINED: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;
/// RFC 5424 section 6.5, example 3.
const RFC5424: &str = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#;
/// RFC 3164 section 5.4, example 1.
const RFC3164: &str =
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8";

fn json(r: &Record) -> Value {
    serde_json::from_slice(r.value.as_deref().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {:?}", r.value_str()))
}

fn one(config: &[(&str, &str)], line: &str) -> Value {
    let out = process::<Parse>(config, vec![Record::new(line)]).unwrap();
    assert_eq!(out.len(), 1);
    json(&out[0])
}

#[test]
fn nginx_line_becomes_typed_json() {
    let out = process::<Parse>(
        &[("format", "nginx")],
        vec![
            Record::new(NGINX)
                .with_key("web-1")
                .with_header("src", "edge")
                .with_timestamp(99),
        ],
    )
    .unwrap();
    assert_eq!(
        json(&out[0]),
        json!({
            "client": "203.0.113.9", "ident": null, "user": null,
            "time": "22/Nov/2026:10:00:00 +0000", "timestamp_ms": 1_795_341_600_000_i64,
            "method": "GET", "path": "/api/users/7?expand=1", "route": "/api/users/7",
            "protocol": "HTTP/1.1", "status": 503, "bytes": 512,
            "referer": "https://example.com/", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "request_time": 0.042, "service": "api", "level": "error"
        })
    );
    // Key, headers and timestamp are the input's.
    assert_eq!(out[0].key.as_deref(), Some(&b"web-1"[..]));
    assert_eq!(
        out[0].headers,
        Record::new("").with_header("src", "edge").headers
    );
    assert_eq!(out[0].timestamp, 99);
}

#[test]
fn nginx_without_request_time_and_levels() {
    let line = NGINX
        .strip_suffix(" 0.042")
        .unwrap()
        .replace(" 503 ", " 404 ");
    let v = one(&[("format", "nginx")], &line);
    assert_eq!(v.get("request_time"), None);
    assert_eq!(v["level"], "warn");
    let v = one(&[("format", "nginx")], &line.replace(" 404 ", " 301 "));
    assert_eq!(v["level"], "info");
}

#[test]
fn apache_common_and_combined() {
    let v = one(&[("format", "apache")], APACHE_COMMON);
    assert_eq!(v["user"], "frank");
    assert_eq!(v["timestamp_ms"], 971_211_336_000_i64);
    assert_eq!(v["bytes"], 2326);
    assert_eq!(v["referer"], Value::Null);
    assert_eq!(v["service"], "apache_pb.gif");
    let v = one(&[("format", "apache")], APACHE_COMBINED);
    assert_eq!(v["user_agent"], "Mozilla/4.08 [en] (Win98; I ;Nav)");
    assert_eq!(v["referer"], "http://www.example.com/start.html");
}

#[test]
fn syslog_lines() {
    let v = one(&[("format", "syslog")], RFC5424);
    assert_eq!(
        v,
        json!({
            "facility": 20, "severity": 5, "level": "notice",
            "time": "2003-10-11T22:14:15.003Z", "timestamp_ms": 1_065_910_455_003_i64,
            "hostname": "mymachine.example.com", "app": "evntslog", "procid": null, "msgid": "ID47",
            "structured_data": r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]"#,
            "message": "An application event log entry..."
        })
    );
    let v = one(&[("format", "syslog")], RFC3164);
    assert_eq!(v["level"], "crit");
    assert_eq!(v["app"], "su");
    assert_eq!(v["message"], "'su root' failed for lonvick on /dev/pts/8");
    assert!(v["timestamp_ms"].as_i64().unwrap() > 0);
    // service_from names a parsed field.
    let v = one(&[("format", "syslog"), ("service_from", "app")], RFC3164);
    assert_eq!(v["service"], "su");
}

#[test]
fn json_passes_through_and_auto_detects_each_format() {
    let obj = r#"{"level":"error", "msg":"x"}"#;
    let out = process::<Parse>(&[("format", "json")], vec![Record::new(obj)]).unwrap();
    assert_eq!(out[0].value_str(), Some(obj));
    let input: Vec<Record> = [obj, NGINX, APACHE_COMMON, RFC5424, RFC3164]
        .into_iter()
        .map(Record::new)
        .collect();
    let out = process::<Parse>(&[], input).unwrap();
    let v: Vec<Value> = out.iter().map(json).collect();
    assert_eq!(v[0]["msg"], "x");
    assert_eq!(v[1]["request_time"], 0.042);
    assert_eq!(v[2]["user"], "frank");
    assert_eq!(v[3]["msgid"], "ID47");
    assert_eq!(v[4]["hostname"], "mymachine");
    let file_line = "Oct  1 07:00:01 web-1 CRON[12345]: (root) CMD (run-parts /etc/cron.hourly)";
    assert_eq!(one(&[], file_line)["procid"], "12345");
}

#[test]
fn a_field_of_a_json_value_is_parsed_and_merged() {
    let input = json!({"host": "web-1", "line": APACHE_COMBINED, "status": "stale"}).to_string();
    let v = one(&[("field", "line"), ("service_from", "host")], &input);
    assert_eq!(v["host"], "web-1");
    assert_eq!(v["line"], APACHE_COMBINED);
    assert_eq!(v["status"], 200, "parsed fields replace input fields");
    assert_eq!(v["service"], "web-1", "service_from reads the input object");
    let nested = json!({"k": 1, "msg": r#"{"a": true}"#}).to_string();
    assert_eq!(
        one(&[("field", "msg"), ("format", "json")], &nested),
        json!({"k": 1, "msg": r#"{"a": true}"#, "a": true})
    );
    let err = process::<Parse>(&[("field", "line")], vec![Record::new(r#"{"x":1}"#)]).unwrap_err();
    assert!(err.message().contains("no string field `line`"), "{err}");
}

#[test]
fn text_that_needs_escaping_stays_valid_json() {
    let line = APACHE_COMBINED.replace("Win98; I ;Nav", "a \\\"quoted\\\" \u{1}tab\there é");
    let v = one(&[("format", "apache")], &line);
    assert_eq!(
        v["user_agent"],
        "Mozilla/4.08 [en] (a \\\"quoted\\\" \u{1}tab\there é)"
    );
    // A trailing CRLF is not part of the line.
    let v = one(&[("format", "apache")], &format!("{APACHE_COMMON}\r\n"));
    assert_eq!(v["bytes"], 2326);
}

#[test]
fn malformed_lines_fail_keep_or_drop() {
    let cases = [
        ("nginx", APACHE_COMMON),
        (
            "apache",
            "127.0.0.1 - - [yesterday] \"GET / HTTP/1.1\" 200 1",
        ),
        ("syslog", "<999>1 - - - - - - x"),
        ("json", "[1, 2]"),
        ("auto", "just some words"),
    ];
    for (format, bad) in cases {
        let input = vec![Record::new(RFC3164), Record::new(bad), Record::new(NGINX)];
        let mut h = Harness::<Parse>::new(&[("format", format), ("on_error", "keep")]).unwrap();
        let kept = h.process(input.clone()).unwrap();
        assert!(
            kept.iter().any(|r| r.value_str() == Some(bad)),
            "{format}: the bad line is forwarded unchanged"
        );
        assert!(h.host.counter("parse_errors") >= 1, "{format}");
        let dropped =
            process::<Parse>(&[("format", format), ("on_error", "drop")], input.clone()).unwrap();
        assert!(
            dropped.iter().all(|r| r.value_str() != Some(bad)),
            "{format}"
        );
        let err = process::<Parse>(&[("format", format)], vec![Record::new(bad)]).unwrap_err();
        let msg = err.message();
        assert!(msg.contains("offset 0"), "{msg}");
        assert!(msg.contains(&format!("not a {format} line")), "{msg}");
        assert!(msg.contains(&bad[..bad.len().min(8)]), "{msg}");
    }
    // Bytes that are not UTF-8, and a null value.
    let err = process::<Parse>(&[], vec![Record::new(vec![0xff, 0xfe])]).unwrap_err();
    assert!(err.message().contains("not UTF-8"), "{err}");
    let null = Record {
        value: None,
        ..Record::default()
    };
    assert!(process::<Parse>(&[], vec![null]).is_err());
}

#[test]
fn the_error_says_what_was_expected_where() {
    let cut = &NGINX[..NGINX.find(" 503").unwrap()];
    let err = process::<Parse>(&[("format", "nginx")], vec![Record::new(cut)]).unwrap_err();
    assert!(
        err.message().contains("expected a space after the request"),
        "{err}"
    );
}

#[test]
fn bad_config_names_the_key() {
    for (config, key) in [
        (&[("format", "xml")][..], "`format`"),
        (&[("on_error", "ignore")][..], "`on_error`"),
        (&[("service_from", "")][..], "`service_from`"),
    ] {
        let err = Harness::<Parse>::new(config).unwrap_err();
        assert!(err.message().contains(key), "{err}");
    }
}

#[test]
fn info_lists_every_key() {
    let info = Parse::info();
    assert_eq!(info.name, "parse");
    let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["format", "field", "service_from", "on_error"]);
}

/// Runs `value` through every format; output, when there is one, is a JSON
/// object.
fn never_panics(value: &[u8]) {
    for format in ["nginx", "apache", "syslog", "json", "auto"] {
        let out = process::<Parse>(
            &[("format", format), ("on_error", "drop")],
            vec![Record::new(value.to_vec())],
        )
        .unwrap();
        for r in out {
            assert!(json(&r).is_object(), "{format}: {:?}", r.value_str());
        }
    }
}

#[test]
fn every_prefix_of_a_valid_line_is_handled() {
    for line in [NGINX, APACHE_COMBINED, RFC5424, RFC3164] {
        for i in 0..=line.len() {
            never_panics(&line.as_bytes()[..i]);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..200)) {
        never_panics(&value);
    }

    #[test]
    fn arbitrary_text_never_panics(value in "\\PC{0,200}") {
        never_panics(value.as_bytes());
    }

    /// Valid lines with one byte changed: the parsers' edge cases.
    #[test]
    fn mutated_lines_never_panic(
        which in 0..4usize,
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(&b" \"[]<>-\\:/0123456789.aZ\x00\xff"[..]),
    ) {
        let line = [NGINX, APACHE_COMBINED, RFC5424, RFC3164][which];
        let mut bytes = line.as_bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        never_panics(&bytes);
        let mut cut = bytes.clone();
        cut.remove(i);
        never_panics(&cut);
    }
}
