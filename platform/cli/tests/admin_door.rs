//! The admin API's door, against a real `fjord server` process: what a web
//! page on another site (or a name rebound to 127.0.0.1) can make a
//! browser send is refused, and changes nothing; the API's own origin, a
//! configured name and JSON pass. Requests are written by hand on a TCP
//! connection, so every header is exactly what a browser could send.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, free_port};
use serde_json::{Value, json};

const MANIFEST: &str = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: copy}
spec:
  source: {topic: door.in}
  sinks: [{topic: door.out, create: {partitions: 1}}]
";

/// An HTTP answer: status, headers (lower-case names) and the JSON body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_default()
    }
}

/// Sends one HTTP/1.1 request to `server`'s admin API with exactly
/// `headers` (plus Content-Length and Connection: close).
fn send(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut stream = TcpStream::connect(&server.admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, text) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(text).unwrap_or(Value::String(text.to_owned()));
    Answer {
        status,
        headers,
        body,
    }
}

fn own_host(server: &Server) -> String {
    server.admin.clone()
}

fn pipelines(server: &Server) -> Value {
    let host = own_host(server);
    let answer = send(server, "GET", "/api/v1/pipelines", &[("Host", &host)], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

#[test]
fn a_cross_site_form_post_is_refused_and_deploys_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let host = own_host(&server);
    // What any page can send without a CORS preflight: text/plain, a
    // form's type, or no type at all; with and without the Origin header
    // (some contexts leave it out).
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        for origin in [None, Some("http://evil.example")] {
            let mut headers = vec![("Host", host.as_str())];
            headers.extend(content_type.map(|t| ("Content-Type", t)));
            headers.extend(origin.map(|o| ("Origin", o)));
            let answer = send(&server, "POST", "/api/v1/pipelines", &headers, MANIFEST);
            let wanted = if origin.is_some() { 403 } else { 415 };
            assert_eq!(
                answer.status, wanted,
                "{content_type:?} {origin:?}: {}",
                answer.body
            );
            if origin.is_none() {
                assert!(
                    answer
                        .error()
                        .contains("needs Content-Type: application/yaml"),
                    "{}",
                    answer.body
                );
            }
        }
    }
    assert_eq!(pipelines(&server), json!([]));
}

#[test]
fn a_foreign_host_is_refused_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let port = server.admin.rsplit(':').next().unwrap().to_owned();
    let evil = format!("evil.example:{port}");
    // DNS rebinding: the page's own origin, the broker's address.
    let origin = format!("http://{evil}");
    let answer = send(
        &server,
        "POST",
        "/api/v1/pipelines",
        &[
            ("Host", &evil),
            ("Origin", &origin),
            ("Content-Type", "application/yaml"),
        ],
        MANIFEST,
    );
    assert_eq!(answer.status, 421, "{}", answer.body);
    assert!(
        answer
            .error()
            .contains("Host evil.example is not one of admin.allowed.hosts"),
        "{}",
        answer.body
    );
    assert_eq!(pipelines(&server), json!([]));
    for path in [
        "/",
        "/api/v1/topics",
        "/health/live",
        "/metrics",
        "/no-such-path",
    ] {
        let answer = send(&server, "GET", path, &[("Host", &evil)], "");
        assert_eq!(answer.status, 421, "GET {path}: {}", answer.body);
    }
    let answer = send(&server, "GET", "/health/live", &[], "");
    assert_eq!(answer.status, 421, "no Host: {}", answer.body);
    // A request in absolute form names its host twice; both must pass.
    let answer = send(
        &server,
        "GET",
        &format!("http://{evil}/health/live"),
        &[("Host", &server.admin)],
        "",
    );
    assert_eq!(answer.status, 421, "absolute form: {}", answer.body);
}

#[test]
fn a_foreign_origin_is_refused_and_cors_stays_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let host = own_host(&server);
    let port: u16 = server.admin.rsplit(':').next().unwrap().parse().unwrap();
    let other_port = format!("http://127.0.0.1:{}", port + 1);
    for origin in [
        "http://evil.example",
        "null",
        &other_port,
        &format!("https://{host}"),
    ] {
        let answer = send(
            &server,
            "POST",
            "/api/v1/topics",
            &[
                ("Host", &host),
                ("Origin", origin),
                ("Content-Type", "application/json"),
            ],
            r#"{"name": "door"}"#,
        );
        assert_eq!(answer.status, 403, "{origin}: {}", answer.body);
        assert!(
            answer.error().contains("not this API's own origin"),
            "{}",
            answer.body
        );
    }
    let answer = send(
        &server,
        "GET",
        "/api/v1/topics/door",
        &[("Host", &host)],
        "",
    );
    assert_eq!(answer.status, 404, "a refused topic is not created");
    // A preflight is never granted: no CORS header, whoever asks.
    let answer = send(
        &server,
        "OPTIONS",
        "/api/v1/pipelines",
        &[
            ("Host", &host),
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    );
    assert!(answer.status >= 400, "{}", answer.status);
    assert!(
        !answer
            .headers
            .iter()
            .any(|(n, _)| n.starts_with("access-control-")),
        "{:?}",
        answer.headers
    );
}

#[test]
fn the_own_origin_with_json_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), None);
    let port = server.admin.rsplit(':').next().unwrap().to_owned();
    // The console's own requests: same origin, under each loopback name.
    for (name, topic) in [("127.0.0.1", "a"), ("localhost", "b"), ("LOCALHOST.", "c")] {
        let host = format!("{name}:{port}");
        let origin = format!("http://{host}");
        let answer = send(
            &server,
            "POST",
            "/api/v1/topics",
            &[
                ("Host", &host),
                ("Origin", &origin),
                ("Content-Type", "application/json; charset=utf-8"),
            ],
            &format!(r#"{{"name": "door.{topic}"}}"#),
        );
        assert_eq!(answer.status, 201, "{host}: {}", answer.body);
    }
    let host = own_host(&server);
    let origin = format!("http://{host}");
    let with_origin = |content_type: &'static str| {
        vec![
            ("Host", host.clone()),
            ("Origin", origin.clone()),
            ("Content-Type", content_type.to_owned()),
        ]
    };
    let headers = with_origin("application/yaml");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer = send(&server, "POST", "/api/v1/pipelines", &headers, MANIFEST);
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(pipelines(&server)[0]["name"], "copy");
    let headers = with_origin("application/json");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer = send(
        &server,
        "POST",
        "/api/v1/pipelines/copy/pause",
        &headers,
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = send(&server, "DELETE", "/api/v1/pipelines/copy", &headers, "");
    assert_eq!(answer.status, 204, "{}", answer.body);
    // A program (no Origin) reads without a content type.
    let answer = send(&server, "GET", "/health/live", &[("Host", &host)], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[test]
fn admin_allowed_hosts_adds_names() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fjord.yaml");
    std::fs::write(
        &config,
        "admin.allowed.hosts: [broker-1.example, Metrics.Example]\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        free_port(),
        &["--config".to_owned(), config.display().to_string()],
    );
    let port = server.admin.rsplit(':').next().unwrap().to_owned();
    for name in ["broker-1.example", "metrics.example", "broker-1.example:80"] {
        let host = if name.contains(':') {
            name.to_owned()
        } else {
            format!("{name}:{port}")
        };
        let answer = send(&server, "GET", "/health/live", &[("Host", &host)], "");
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
    let answer = send(&server, "GET", "/metrics", &[("Host", "evil.example")], "");
    assert_eq!(answer.status, 421, "{}", answer.body);
    drop(server);

    // The flag (and FJORD_ADMIN_ALLOWED_HOSTS) says the same.
    let server = Server::start_with(
        &dir.path().join("data2"),
        free_port(),
        &[
            "--admin-allowed-hosts".to_owned(),
            "a.example,b.example".to_owned(),
        ],
    );
    let answer = send(&server, "GET", "/health/live", &[("Host", "b.example")], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
}
