use super::*;
use fjord_sdk::Record;
use fjord_sdk::testing::Harness;
use proptest::prelude::*;
use serde_json::{Value, json};

fn parse_with(config: &[(&str, &str)], lines: &[&str]) -> Result<Vec<Value>, Error> {
    let mut h = Harness::<Parse>::new(config)?;
    let records: Vec<Record> = lines.iter().map(|l| Record::new(*l)).collect();
    let out = h.process(records.clone())?;
    Ok(out
        .iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap_or(Value::Null))
        .collect())
}

fn one(line: &str) -> Value {
    parse_with(&[], &[line]).unwrap().remove(0)
}

#[test]
fn nginx_combined_with_request_time() {
    let v = one(
        r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /api/users?id=1 HTTP/1.1" 503 2326 "http://example.com/" "curl/8.5.0" 0.012"#,
    );
    assert_eq!(
        v,
        json!({
            "client": "10.0.0.1", "user": "frank", "time": "10/Oct/2000:13:55:36 -0700",
            "timestamp_ms": 971_211_336_000i64, "method": "GET", "path": "/api/users?id=1",
            "route": "/api/users", "service": "api", "protocol": "HTTP/1.1", "status": 503,
            "bytes": 2326, "referer": "http://example.com/", "user_agent": "curl/8.5.0",
            "request_time": 0.012, "level": "error"
        })
    );
}

#[test]
fn apache_common_and_odd_requests() {
    let v = one(r#"127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] "POST /login HTTP/1.0" 404 -"#);
    assert_eq!(v["timestamp_ms"], 1_704_067_200_000i64);
    assert_eq!(
        (v["status"].clone(), v["level"].clone()),
        (json!(404), json!("warn"))
    );
    assert!(v.get("bytes").is_none() && v.get("user_agent").is_none());
    assert_eq!(v["service"], "login");
    let v = one(r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "-" 400 0 "-" "-""#);
    assert_eq!(v["request"], "-");
    let v =
        one(r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /a\"b HTTP/1.1" 200 1 "-" "x \"y\"""#);
    assert_eq!(v["path"], r#"/a\"b"#);
}

/// Lines shaped like the `generator` plugin's (which cannot be linked into
/// this test: each plugin library exports the same C ABI symbols; the
/// pipeline tests run the two together).
fn generated(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            Record::new(format!(
                r#"10.{}.{}.7 - - [23/Nov/2026:04:{:02}:{:02} +0000] "GET /{}/users HTTP/1.1" {} {} "-" "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" 0.{:03}"#,
                i % 256,
                i / 256 % 256,
                i / 60 % 60,
                i % 60,
                ["api", "web", "auth"][i % 3],
                [200, 404, 503][i % 3],
                200 + i,
                i % 1000
            ))
        })
        .collect()
}

#[test]
fn generated_lines_parse() {
    let mut h = Harness::<Parse>::new(&[("format", "nginx")]).unwrap();
    let out = h.process(generated(2000)).unwrap();
    assert_eq!(out.len(), 2000);
    for r in &out {
        let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
        assert!(
            v["request_time"].is_f64() && v["service"].is_string(),
            "{v}"
        );
    }
}

#[test]
fn syslog_5424_and_3164() {
    let v =
        one("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed");
    assert_eq!(
        v,
        json!({
            "facility": 4, "severity": 2, "level": "critical",
            "timestamp": "2003-10-11T22:14:15.003Z", "timestamp_ms": 1_065_910_455_003i64,
            "hostname": "mymachine.example.com", "app": "su", "msgid": "ID47",
            "message": "'su root' failed"
        })
    );
    let v = one(
        r#"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - [exampleSDID@32473 iut="3"] hello"#,
    );
    assert_eq!(v["procid"], "8710");
    assert_eq!(v["structured_data"], r#"[exampleSDID@32473 iut="3"]"#);
    assert_eq!(v["message"], "hello");
    assert_eq!(v["timestamp_ms"], 1_061_727_255_000i64);
    let v = one("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick");
    assert_eq!(
        v,
        json!({
            "facility": 4, "severity": 2, "level": "critical", "timestamp": "Oct 11 22:14:15",
            "hostname": "mymachine", "procid": "230", "app": "su",
            "message": "'su root' failed for lonvick"
        })
    );
}

#[test]
fn what_is_no_known_format_fails_drops_or_is_kept() {
    let lines = [
        "not a log line",
        r#"1.2.3.4 - - [x] "GET / HTTP/1.1" 2000 1"#,
        "<999>x",
        "{]",
    ];
    for line in lines {
        let e = parse_with(&[], &[line]).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a access-log, syslog or JSON line"),
            "{e}"
        );
        assert!(
            parse_with(&[("on_error", "drop")], &[line])
                .unwrap()
                .is_empty()
        );
        let mut h = Harness::<Parse>::new(&[("on_error", "keep")]).unwrap();
        let out = h.process(vec![Record::new(line)]).unwrap();
        assert_eq!(out[0].value_str(), Some(line));
    }
    let e = parse_with(&[("format", "syslog")], &["plain"]).unwrap_err();
    assert!(e.to_string().contains("not a syslog line"), "{e}");
    assert!(Harness::<Parse>::new(&[("format", "xml")]).is_err());
}

#[test]
fn json_objects_pass() {
    assert_eq!(parse_with(&[], &[r#"{"a":1}"#]).unwrap(), [json!({"a": 1})]);
    assert!(parse_with(&[("format", "json")], &["[1]"]).is_err());
}

proptest! {
    #[test]
    fn no_input_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut h = Harness::<Parse>::new(&[("on_error", "drop")]).unwrap();
        let out = h.process(vec![Record::new(line)]).unwrap();
        for r in out {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            prop_assert!(v.is_object());
        }
    }

    #[test]
    fn access_like_input_never_panics_and_gives_json(
        client in "[0-9.]{1,15}",
        time in "[0-9A-Za-z/: +-]{0,30}",
        request in "[ -~]{0,40}",
        status in "[0-9]{1,4}",
        tail in "[ -~]{0,40}",
    ) {
        let line = format!(r#"{client} - - [{time}] "{request}" {status} 10 {tail}"#);
        let mut h = Harness::<Parse>::new(&[("on_error", "drop")]).unwrap();
        for r in h.process(vec![Record::new(line)]).unwrap() {
            let v: Value = serde_json::from_slice(r.value.as_deref().unwrap()).unwrap();
            prop_assert!(v.is_object());
        }
    }
}

#[test]
fn parse_speed() {
    let records = generated(50_000);
    let mut h = Harness::<Parse>::new(&[("format", "nginx")]).unwrap();
    let start = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..4 {
        n += h.process(records.clone()).unwrap().len();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("parse: {rate:.0} lines/s (this build profile, through the test harness)");
}
