//! A real `fjord server` process on a free port, and librdkafka clients
//! to feed and read it: what the CLI's process-level tests share.
//!
//! Submodules: [`proxy`] (a TCP link that can be cut), [`cluster`]
//! (several `fjord server` processes forming a controller quorum, every link
//! between them behind such a proxy) and [`kafka`] (client helpers for
//! tests against a cluster).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod kafka;
pub mod proxy;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

pub struct Server {
    pub child: Child,
    pub bootstrap: String,
    /// `host:port` of its admin HTTP API.
    pub admin: String,
}

impl Server {
    pub fn start(data: &Path, port: u16, pipelines: Option<&Path>) -> Server {
        let mut extra = Vec::new();
        if let Some(p) = pipelines {
            extra.push("--pipelines".to_owned());
            extra.push(p.display().to_string());
        }
        Server::start_with(data, port, &extra)
    }

    /// A server with more `fjord server` flags.
    pub fn start_with(data: &Path, port: u16, extra: &[String]) -> Server {
        // Both ports come from listeners already closed again, so the
        // system may hand out `port` twice (seen in CI: the admin API then
        // cannot bind and the server exits).
        let admin_port = std::iter::repeat_with(free_port)
            .find(|p| *p != port)
            .expect("a free port");
        let admin = format!("127.0.0.1:{admin_port}");
        Server::spawn(data, port, &admin, extra, None)
    }

    /// A server on a given admin address, its stderr appended to `log`
    /// (inherited when `None`). `FJORD_TEST_LOG` sets its `--log` filter
    /// (default `warn`). Returns once its Kafka port and its admin API
    /// accept connections; panics with the exit status if the process ends
    /// first.
    pub fn spawn(
        data: &Path,
        port: u16,
        admin: &str,
        extra: &[String],
        log: Option<&Path>,
    ) -> Server {
        let level = std::env::var("FJORD_TEST_LOG").unwrap_or_else(|_| "warn".to_owned());
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open the server log"),
            ),
            None => Stdio::inherit(),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", admin])
            .arg("--data-dir")
            .arg(data)
            .args(["--num-partitions", "1", "--log", &level])
            .stdout(Stdio::null())
            .stderr(stderr);
        cmd.args(extra);
        let mut child = cmd.spawn().expect("start fjord server");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&bootstrap).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                // Its own words on why, when they went to a file.
                let tail = log
                    .and_then(|path| std::fs::read_to_string(path).ok())
                    .map(|text| {
                        let lines: Vec<&str> = text.lines().collect();
                        lines[lines.len().saturating_sub(15)..].join("\n")
                    })
                    .unwrap_or_default();
                panic!("fjord server on {bootstrap} exited before listening: {status}\n{tail}");
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The admin API binds a little after the Kafka listener (the plugin
        // host starts in between): tests that call it right away wait.
        if admin != "off" {
            while std::net::TcpStream::connect(admin).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "the admin API on {admin} did not start"
                );
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("fjord server on {bootstrap} exited: {status}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Server {
            child,
            bootstrap,
            admin: admin.to_owned(),
        }
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (a `libc::SIG*`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("a pid fits i32");
        // SAFETY: kill(2) on our own child's pid; it is not reaped yet (we
        // hold `child` and only wait in kill/terminate/drop), so the pid
        // cannot have been reused.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }

    /// SIGTERM, then waits up to `grace` for a clean exit; SIGKILL after
    /// that. True when it exited on its own with status 0.
    pub fn terminate(mut self, grace: Duration) -> bool {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
    }

    /// Runs a `fjord` client command against this server: its Kafka
    /// listener and its admin API, through the environment (a command
    /// takes the flag it has; flags in `args` win).
    pub fn fjord(&self, args: &[&str]) -> (bool, String) {
        fjord_at(args, &self.bootstrap, &self.admin)
    }

    /// Runs `fjord` until its output contains `wanted`.
    pub fn fjord_until(&self, args: &[&str], wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, out) = self.fjord(args);
            if out.contains(wanted) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "`fjord {}` never showed {wanted:?}; last:\n{out}",
                args.join(" ")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn produce(&self, topic: &str, values: impl IntoIterator<Item = String>) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("linger.ms", "5")
            .create()
            .unwrap();
        for v in values {
            loop {
                match producer.send(BaseRecord::<(), str>::to(topic).payload(&v)) {
                    Ok(()) => break,
                    Err((_, _)) => {
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }

    pub fn consume(&self, topic: &str, count: usize, timeout: Duration) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", "pipeline-server-tests")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < count && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` distinct free ports. All are held until all are found: ports taken
/// one `free_port` at a time can repeat, since the kernel may hand out a
/// just-released port again.
/// An HTTP client for admin APIs: statuses are answers, not errors, and no
/// call waits more than 20 s.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// Runs a `fjord` client command against the Kafka listener `bootstrap`
/// and the admin API `admin`: whether it succeeded, and its stdout and
/// stderr.
pub fn fjord_at(args: &[&str], bootstrap: &str, admin: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .env("FJORD_BOOTSTRAP_SERVER", bootstrap)
        .env("FJORD_ADMIN", admin)
        .output()
        .expect("run fjord");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A port no listener holds now, for a server this test starts (and may
/// restart on the same port). Taken below the kernel's ephemeral range
/// (`ip_local_port_range`): ports from there are handed to every outgoing
/// connection and port-0 bind, so one freed for a server could be some
/// client's by the time the server binds it, or binds it again after a
/// restart (seen in CI: a restarted node exited, its port taken). Never the
/// same port twice in one test process.
pub fn free_port() -> u16 {
    static GIVEN: parking_lot::Mutex<Vec<u16>> = parking_lot::Mutex::new(Vec::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = if ephemeral_low > 12_000 {
        (10_000, ephemeral_low - 1)
    } else {
        (61_000, 65_000)
    };
    let span = u32::from(high - low) + 1;
    let mut given = GIVEN.lock();
    // A different start per process, so test binaries run side by side
    // (interop suites, a second cargo test) rarely probe the same ports.
    let seed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(given.len() as u32 * 7919);
    for i in 0..span {
        let port = low + ((seed.wrapping_add(i)) % span) as u16;
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in {low}..={high}");
}
