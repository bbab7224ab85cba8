//! A real HTTP client against the endpoint; records come out of `poll`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use fjord_plugin_http_source::HttpSource;
use fjord_sdk::Record;
use fjord_sdk::testing::Harness;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Sends one request; the status code and the body of the reply.
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn poll_all(h: &mut Harness<HttpSource>, n: usize) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(h.poll(1000).unwrap().0);
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

fn values(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.value_str().unwrap()).collect()
}

#[test]
fn lines_json_arrays_and_objects_become_records() {
    let mut h = Harness::<HttpSource>::new(&[
        ("listen", "127.0.0.1:0"),
        ("path", "/ingest"),
        ("key_field", "user"),
    ])
    .unwrap();
    let addr = h.plugin.addr;
    let (status, body) = send(addr, "POST", "/ingest", "text/plain", "one\r\n\ntwo\nthree");
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":3}"#));
    assert_eq!(values(&poll_all(&mut h, 3)), ["one", "two", "three"]);

    let (status, _) = send(
        addr,
        "POST",
        "/ingest",
        "application/json; charset=utf-8",
        r#"[{"user": "ann", "n": 1}, {"n": 2}]"#,
    );
    assert_eq!(status, 200);
    let got = poll_all(&mut h, 2);
    assert_eq!(values(&got), [r#"{"n":1,"user":"ann"}"#, r#"{"n":2}"#]);
    assert_eq!(got[0].key.as_deref(), Some(&b"ann"[..]));
    assert_eq!(got[1].key, None);
    assert!(got[0].timestamp > 0);

    let (status, _) = send(
        addr,
        "POST",
        "/ingest",
        "application/json",
        r#"{"user": 7}"#,
    );
    assert_eq!(status, 200);
    let got = poll_all(&mut h, 1);
    assert_eq!(got[0].key.as_deref(), Some(&b"7"[..]));
}

#[test]
fn bad_requests_get_their_status_and_nothing_is_queued() {
    let mut h =
        Harness::<HttpSource>::new(&[("listen", "127.0.0.1:0"), ("max_body_bytes", "16")]).unwrap();
    let addr = h.plugin.addr;
    let (status, body) = send(addr, "POST", "/", "application/json", "[1, 2");
    assert_eq!(status, 400);
    assert!(body.contains("invalid JSON"), "{body}");
    assert_eq!(send(addr, "GET", "/", "text/plain", "").0, 405);
    assert_eq!(send(addr, "POST", "/elsewhere", "text/plain", "x").0, 404);
    assert_eq!(
        send(
            addr,
            "POST",
            "/",
            "text/plain",
            "a line longer than sixteen bytes"
        )
        .0,
        413
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(h.poll(100).unwrap().0.is_empty());
}

#[test]
fn a_full_queue_answers_503_and_takes_none_of_the_body() {
    let mut h = Harness::<HttpSource>::new(&[("listen", "127.0.0.1:0"), ("queue", "3")]).unwrap();
    let addr = h.plugin.addr;
    assert_eq!(send(addr, "POST", "/", "text/plain", "a\nb").0, 200);
    let (status, body) = send(addr, "POST", "/", "text/plain", "c\nd");
    assert_eq!(status, 503, "{body}");
    assert_eq!(values(&poll_all(&mut h, 2)), ["a", "b"]);
    // Room again: the retry goes in whole.
    assert_eq!(send(addr, "POST", "/", "text/plain", "c\nd").0, 200);
    assert_eq!(values(&poll_all(&mut h, 2)), ["c", "d"]);
}

#[test]
fn the_bound_address_is_written_for_port_zero() {
    let dir = std::env::temp_dir().join(format!("http-source-{}", std::process::id()));
    let file = dir.with_extension("addr");
    let h = Harness::<HttpSource>::new(&[
        ("listen", "127.0.0.1:0"),
        ("bound_file", file.to_str().unwrap()),
    ])
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        h.plugin.addr.to_string()
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn a_new_source_binds_the_port_of_a_dropped_one() {
    let h = Harness::<HttpSource>::new(&[("listen", "127.0.0.1:0")]).unwrap();
    let addr = h.plugin.addr.to_string();
    drop(h);
    // As a redeployed pipeline does, at once.
    Harness::<HttpSource>::new(&[("listen", &addr)]).unwrap();
}

#[test]
fn a_port_taken_for_good_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Harness::<HttpSource>::new(&[("listen", &addr)]).unwrap_err();
    assert!(
        err.message().contains(&format!("cannot listen on {addr}")),
        "{err}"
    );
}
