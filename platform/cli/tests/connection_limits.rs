//! `fjord server` as a process under connection floods: out of file
//! descriptors (a low `RLIMIT_NOFILE` set on the child) it closes new
//! connections, logs once per interval and recovers once they close; bad
//! frames and refused connections are logged once per client address per
//! interval, with a count of the lines suppressed.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{attempt_from, connect_from, served};
use common::{Server, free_port};

/// `fjord server` with `yaml` as its config, JSON logs at `warn` into
/// `log`, and, when set, `RLIMIT_NOFILE` (soft and hard, so the server
/// cannot raise it) at `nofile`.
fn server(dir: &Path, yaml: &str, nofile: Option<u64>, log: &Path) -> Server {
    let config = dir.join("fjord.yaml");
    std::fs::write(&config, yaml).unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--admin-listen",
            "off",
            "--log",
            "warn",
            "--log-format",
            "json",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(nofile) = nofile {
        let limit = libc::rlimit {
            rlim_cur: nofile,
            rlim_max: nofile,
        };
        // SAFETY: setrlimit is async-signal-safe, and the closure touches
        // nothing but its own copy of `limit`.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(&bootstrap).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("fjord server exited before listening: {status}\n{log}");
        }
        assert!(Instant::now() < deadline, "fjord server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        bootstrap,
        admin: "off".to_owned(),
    }
}

/// The JSON log lines whose message starts with `prefix`.
fn lines(log: &Path, prefix: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(prefix))
        })
        .collect()
}

/// Waits until `log` has `count` lines starting with `prefix`.
fn wait_for_lines(log: &Path, prefix: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = lines(log, prefix);
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn open_descriptors(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// Under a low descriptor limit, connections are opened until the broker
/// has no descriptor left: it then closes new connections at once (no
/// client hangs in the backlog), logs it once per interval, and once the
/// flood's connections close, a librdkafka client produces and consumes.
#[test]
fn out_of_descriptors_the_broker_refuses_then_recovers() {
    const NOFILE: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = server(
        dir.path(),
        "offsets.topic.num.partitions: 1\n",
        Some(NOFILE),
        &log,
    );
    let mut flood = Vec::new();
    let mut refused = 0;
    while refused < 20 {
        assert!(
            flood.len() < 2 * NOFILE as usize,
            "{} connections served under a limit of {NOFILE} descriptors",
            flood.len()
        );
        let mut stream = TcpStream::connect(&server.bootstrap).unwrap();
        let started = Instant::now();
        if served(&mut stream, Duration::from_secs(5)) {
            flood.push(stream);
        } else {
            // Closed at once, not left to time out.
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "refused after {:?}",
                started.elapsed()
            );
            refused += 1;
        }
    }
    assert!(flood.len() > 100, "only {} connections served", flood.len());
    let warned = wait_for_lines(&log, "out of file descriptors", 1);
    assert_eq!(warned.len(), 1, "one line per interval: {warned:?}");
    assert!(open_descriptors(&server) >= NOFILE as usize - 10);

    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_descriptors(&server) > NOFILE as usize / 2 {
        assert!(
            Instant::now() < deadline,
            "the flood's descriptors stay open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    server.produce("after-exhaustion", values.clone());
    assert_eq!(
        server.consume("after-exhaustion", values.len(), Duration::from_secs(30)),
        values
    );
}

/// Bad frames are logged once per client address per interval: a second
/// address gets its own line, and the next line for the first, after the
/// interval, counts the ones suppressed. Connections over a limit are
/// logged the same way.
#[test]
fn warnings_are_rate_limited_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = server(
        dir.path(),
        "max.connections.per.ip.overrides: 127.0.0.3:2\n",
        None,
        &log,
    );
    let bad_frame = |source: &str| {
        let mut stream = connect_from(source, &server.bootstrap);
        stream.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Read until the broker closes the connection.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    };
    let started = Instant::now();
    for _ in 0..30 {
        bad_frame("127.0.0.1");
    }
    bad_frame("127.0.0.2");
    wait_for_lines(&log, "closing connection: bad frame", 2);
    std::thread::sleep(Duration::from_millis(300));
    let found = lines(&log, "closing connection: bad frame");
    assert_eq!(found.len(), 2, "{found:?}");
    let peers: Vec<&str> = found
        .iter()
        .map(|l| l["fields"]["peer"].as_str().unwrap_or_default())
        .collect();
    assert!(peers[0].starts_with("127.0.0.1:"), "{peers:?}");
    assert!(peers[1].starts_with("127.0.0.2:"), "{peers:?}");

    // Over max.connections.per.ip: 10 refused, one line.
    let mut kept: Vec<TcpStream> = (0..2)
        .map(|_| connect_from("127.0.0.3", &server.bootstrap))
        .collect();
    for stream in &mut kept {
        assert!(served(stream, Duration::from_secs(10)));
    }
    for _ in 0..10 {
        if let Some(mut extra) = attempt_from("127.0.0.3", &server.bootstrap) {
            assert!(!served(&mut extra, Duration::from_secs(10)));
        }
    }
    let refused = wait_for_lines(&log, "connection closed: over a connection limit", 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        lines(&log, "connection closed: over a connection limit").len(),
        1,
        "{refused:?}"
    );

    // After the interval (10 s), the next bad frame from the first address
    // is logged with the count of the 29 suppressed.
    let interval = Duration::from_secs(10);
    std::thread::sleep(interval.saturating_sub(started.elapsed()) + Duration::from_millis(200));
    bad_frame("127.0.0.1");
    let found = wait_for_lines(&log, "closing connection: bad frame", 3);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[2]["fields"]["suppressed"], 29, "{:?}", found[2]);
}
