//! Idle pipelines are quiet: a real `fjord server` process running the
//! samples in `pipelines/` writes no state and no commits, and spends
//! (almost) no CPU, once its sources have nothing new.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Server, free_port, http};
use serde_json::Value;

/// A sample manifest of the repository's `pipelines/`.
fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../pipelines")
        .join(name)
}

fn get(server: &Server, path: &str) -> Value {
    let mut response = http()
        .get(format!("http://{}/api/v1{path}", server.admin))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let text = response.body_mut().read_to_string().unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

/// Every partition's log end offset of `topic`, in partition order.
fn log_ends(server: &Server, topic: &str) -> Vec<i64> {
    let detail = get(server, &format!("/topics/{topic}"));
    detail["partitions"]
        .as_array()
        .unwrap_or_else(|| panic!("no topic {topic}: {detail}"))
        .iter()
        .map(|p| p["log_end_offset"].as_i64().unwrap())
        .collect()
}

/// Waits until pipeline `name` runs with no lag and has read `at_least`
/// records; panics with its last status after two minutes.
fn caught_up(server: &Server, name: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = get(server, &format!("/pipelines/{name}"));
        let read: i64 = status["status"]["partitions"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["position"].as_i64()).sum())
            .unwrap_or(0);
        let state = &status["status"]["state"];
        if state == "running" && status["status"]["lag"] == 0 && read >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not catch up: {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The CPU time (user + system) process `pid` used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which may hold spaces), from field 3 on:
    // utime and stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// A stateful pipeline (the event-sourcing sample's `aggregate` step) that
/// has nothing to read appends nothing to its state changelog and commits
/// nothing, over 30 s. It used to append a position record every 10 ms.
#[test]
fn an_idle_stateful_pipeline_writes_no_state_and_no_commits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let (ok, out) = server.fjord(&[
        "pipeline",
        "deploy",
        sample("accounts-balances.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    server.produce(
        "accounts.events",
        ["alice", "bob", "alice"]
            .iter()
            .map(|a| format!(r#"{{"account":"{a}","amount":10}}"#)),
    );
    caught_up(&server, "accounts-balances", 3);
    let changelog = "pipeline.accounts-balances.balances.changelog";
    // The last batch's state and commit are written within a commit
    // interval of its reading; give them time on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    let written = |server: &Server| {
        (
            log_ends(server, changelog),
            log_ends(server, "__consumer_offsets"),
        )
    };
    let mut before = written(&server);
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let now = written(&server);
        if now == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {before:?} then {now:?}"
        );
        before = now;
    }
    assert!(before.0[0] > 0, "the state was never saved: {before:?}");
    // The console leaves internal topics out of user throughput: the
    // changelog is one.
    let topics = get(&server, "/topics");
    let listed = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == changelog);
    assert_eq!(
        listed.map(|t| &t["internal"]),
        Some(&Value::Bool(true)),
        "{topics}"
    );

    std::thread::sleep(Duration::from_secs(30));
    let after = written(&server);
    assert_eq!(
        before, after,
        "(changelog, __consumer_offsets) log ends before and after 30 idle seconds"
    );
    // Still running, and still saving when there is something to save.
    server.produce(
        "accounts.events",
        [r#"{"account":"carol","amount":5}"#.to_owned()],
    );
    caught_up(&server, "accounts-balances", 4);
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_ends(&server, changelog) == after.0 {
        assert!(Instant::now() < deadline, "carol's balance was not saved");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A stateful step's changes are written to its changelog at the commit
/// cadence (every 200 ms), a key changed many times in between once: 600
/// records trickling in used to cost the changelog its changed keys and
/// the position after every read, over 1 000 records.
#[test]
fn a_stateful_pipeline_writes_its_state_at_the_commit_cadence() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let (ok, out) = server.fjord(&[
        "pipeline",
        "deploy",
        sample("accounts-balances.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .create()
        .unwrap();
    // 50 records a second, each in its own batch, for 12 s: the task,
    // woken by each append, reads them about one at a time.
    let records = 600;
    let started = Instant::now();
    for i in 0..records {
        let value = r#"{"account":"alice","amount":1}"#;
        producer
            .send(BaseRecord::<(), str>::to("accounts.events").payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
        producer.poll(Duration::ZERO);
        std::thread::sleep(
            (started + Duration::from_millis(20 * (i as u64 + 1)))
                .saturating_duration_since(Instant::now()),
        );
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    caught_up(&server, "accounts-balances", records);
    let changelog = "pipeline.accounts-balances.balances.changelog";
    let deadline = Instant::now() + Duration::from_secs(30);
    let written = loop {
        let end = log_ends(&server, changelog)[0];
        if end > 0 {
            break end;
        }
        assert!(Instant::now() < deadline, "the state was never saved");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("{written} changelog records");
    assert!(
        written < records / 2,
        "{written} changelog records for {records} records of one key"
    );
    // Nothing was lost by writing less often: alice's balance is all 600.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let balances = server.consume("accounts.balances", usize::MAX, Duration::from_secs(3));
        let last: Option<Value> = balances.last().map(|b| serde_json::from_str(b).unwrap());
        if last.as_ref().and_then(|b| b["balance"].as_f64()) == Some(records as f64) {
            break;
        }
        assert!(Instant::now() < deadline, "the last balance: {last:?}");
    }
}

/// The seven samples deployed, their sources quiet: the broker process uses
/// little CPU. The idle figure is under 1 % of a core (docs/benchmarks.md);
/// the bound here is 5 % so a loaded test machine does not fail it. Tasks
/// used to poll every 10 ms and save their state each time.
#[test]
fn a_broker_running_the_samples_idles_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    // The samples listen on fixed ports (Prometheus, HTTP, syslog): other
    // tests running at the same time may use them, so each gets a free one.
    let manifests = dir.path().join("pipelines");
    std::fs::create_dir(&manifests).unwrap();
    let samples = std::fs::read_dir(sample("")).unwrap();
    let mut names = Vec::new();
    for entry in samples {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for fixed in ["127.0.0.1:9464", "127.0.0.1:8088", "127.0.0.1:5514"] {
            text = text.replace(fixed, &format!("127.0.0.1:{}", free_port()));
        }
        let name = path.file_name().unwrap().to_owned();
        names.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        std::fs::write(manifests.join(name), text).unwrap();
    }
    assert_eq!(names.len(), 7, "{names:?}");
    let (ok, out) = server.fjord(&["pipeline", "deploy", manifests.to_str().unwrap()]);
    assert!(ok, "{out}");
    // Some traffic first, so that every pipeline downstream of the demo
    // generator has state and progress; then the generator is paused.
    caught_up(&server, "metrics", 100);
    let (ok, out) = server.fjord(&["pipeline", "pause", "logs-demo-traffic"]);
    assert!(ok, "{out}");
    server.fjord_until(&["pipeline", "list"], "paused");
    for name in names.iter().filter(|n| *n != "logs-demo-traffic") {
        caught_up(&server, name, 0);
    }
    // Pipelines started, restored and settled: now measure.
    std::thread::sleep(Duration::from_secs(3));
    let pid = server.child.id();
    let (cpu, wall) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let used = cpu_time(pid) - cpu;
    let share = used.as_secs_f64() / wall.elapsed().as_secs_f64();
    eprintln!(
        "idle broker with the seven samples: {:.2} % of a core",
        share * 100.0
    );
    assert!(
        share < 0.05,
        "the idle broker used {:.1} % of a core ({used:?} in 20 s)",
        share * 100.0
    );
}
