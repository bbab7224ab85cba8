//! A sink that is down holds the pipeline: nothing is dropped, nothing is
//! committed past what the sink took, and everything arrives once it is up.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Platform;

/// A minimal HTTP endpoint that answers 200 and keeps the request bodies.
fn serve(listener: TcpListener, bodies: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let bodies = Arc::clone(&bodies);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    bodies
                        .lock()
                        .unwrap()
                        .push(String::from_utf8(body).unwrap());
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_is_down_holds_records_until_it_is_back() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let platform = Platform::start(dir.path()).await;
    platform
        .deploy(&format!(
            r#"
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {{name: ship}}
spec:
  source: {{topic: events}}
  sinks:
    - connector:
        plugin: http
        config: {{url: 'http://127.0.0.1:{port}/ingest', retries: 0, timeout_ms: 500}}
"#
        ))
        .await;
    let values: Vec<String> = (0..5).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    let records: Vec<(Option<&str>, &str)> = values.iter().map(|v| (None, v.as_str())).collect();
    platform.produce("events", &records).await;

    // Nobody listens: the sink fails, the task waits on its batch.
    let status = platform
        .status_until("ship", Duration::from_secs(20), |s| {
            s.sinks[0].last_error.is_some()
        })
        .await;
    assert!(
        status.sinks[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("127.0.0.1"),
        "{status:#?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = platform
        .status_until("ship", Duration::from_secs(5), |_| true)
        .await;
    assert_eq!(status.lag, 5, "nothing committed while the sink is down");
    assert_eq!(status.sinks[0].records_out, 0);

    // The endpoint comes up: the held batch goes out, then progress moves.
    let bodies = Arc::new(Mutex::new(Vec::new()));
    serve(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Arc::clone(&bodies),
    );
    platform
        .status_until("ship", Duration::from_secs(30), |s| s.lag == 0)
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines: Vec<String> = bodies
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        if lines.len() >= 5 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines, values, "every record, once, in order");
    platform.stop().await;
}
