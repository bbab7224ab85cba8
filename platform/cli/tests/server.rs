//! `fjord server` as a process: one per data directory, and the
//! `fjord bench` load tools against it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, free_port};

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Server::start(&data, free_port(), None);
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is in use by another fjord server (pid "),
        "{stderr}"
    );
    // The first one is unharmed; once it is gone, the directory is free.
    first.produce("still-here", ["x".to_owned()]);
    assert_eq!(
        first.consume("still-here", 1, Duration::from_secs(10)),
        ["x"]
    );
    first.kill();
    let again = Server::start(&data, free_port(), None);
    assert_eq!(
        again.consume("still-here", 1, Duration::from_secs(10)),
        ["x"]
    );
}

#[test]
fn bench_produce_then_consume_with_both_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .args(args)
            .args(["-b", &server.bootstrap])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let produced = run(&[
        "bench",
        "produce",
        "--records",
        "30000",
        "--record-size",
        "64",
        "-X",
        "topic.metadata.refresh.interval.ms=250",
    ]);
    assert!(produced.contains("records: 30000 of 64 B"), "{produced}");
    // A property librdkafka does not know is refused, named.
    let bad = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["bench", "produce", "-n", "1", "-X", "no.such.property=1"])
        .args(["-b", &server.bootstrap])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("no.such.property"), "{stderr}");
    for consumer in ["librdkafka", "fjord"] {
        let consumed = run(&["bench", "consume", "--consumer", consumer]);
        assert!(
            consumed.contains("records: 30000 of 64 B"),
            "{consumer}: {consumed}"
        );
        assert!(consumed.contains("records/s"), "{consumed}");
    }
    // With a limit, the fjord consumer stops there.
    let some = run(&["bench", "consume", "--consumer", "fjord", "-n", "100"]);
    assert!(some.contains("records: "), "{some}");
}

/// Bad listener settings stop `fjord server` with an error naming the
/// setting, before anything is bound.
#[test]
fn bad_listener_settings_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fjord.yaml");
    let voters = format!("0@127.0.0.1:{}", free_port());
    for (yaml, flags, says) in [
        (
            "controller.listener.names: [SASL_PLAINTEXT]\n",
            vec![
                "--node-id",
                "0",
                "--controller-voters",
                &voters,
                "--listeners",
                "PLAINTEXT://127.0.0.1:0",
            ],
            "controller.listener.names: SASL_PLAINTEXT is a SASL_PLAINTEXT listener: its links log in with listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
        ),
        (
            "controller.listener.names: [SASL_PLAINTEXT]\nsasl.mechanism.controller.protocol: PLAIN\n",
            vec![
                "--node-id",
                "0",
                "--controller-voters",
                &voters,
                "--listeners",
                "PLAINTEXT://127.0.0.1:0",
            ],
            "sasl.mechanism.controller.protocol: PLAIN sends the password itself",
        ),
        (
            "",
            vec!["--listeners", "PLAINTEXT://127.0.0.1:0,TLS://127.0.0.1:0"],
            "listeners: TLS://127.0.0.1:0: TLS is not in listener.security.protocol.map",
        ),
        (
            "",
            vec!["--listeners", "SSL://127.0.0.1:0"],
            "ssl.keystore.location: needed for a SSL listener",
        ),
        (
            "ssl.keystore.location: /nonexistent/broker.pem\n",
            vec!["--listeners", "SSL://127.0.0.1:0"],
            "listener SSL: TLS: /nonexistent/broker.pem",
        ),
        (
            "listener.name.ssl.ssl.client.auth: required\n",
            vec!["--listeners", "PLAINTEXT://127.0.0.1:0"],
            "listener.name.ssl.ssl.client.auth: no listener of that name",
        ),
        (
            "",
            vec![
                "--listeners",
                "PLAINTEXT://127.0.0.1:0",
                "--advertise",
                "h:1",
            ],
            "--advertise and --advertised-host go with --listen",
        ),
    ] {
        std::fs::write(&config, yaml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
            .arg("server")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--admin-listen", "off"])
            .args(&flags)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?}");
        assert!(stderr.contains(says), "{flags:?}: {stderr}");
    }
}

/// A broker writing to a peer that already reset its connection (a TLS
/// alert to a client that left mid-handshake) gets EPIPE, and with
/// SIGPIPE's default disposition also the signal that ends the process
/// without a word: a secured cluster's controller leader died so when a
/// stranger's handshake failed. The server keeps SIGPIPE ignored (only
/// client commands restore the default, for `fjord … | head`).
#[test]
fn the_server_survives_sigpipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("data"), free_port(), None);
    let pid = i32::try_from(server.child.id()).unwrap();
    // SAFETY: signalling a child this test started and still owns.
    let sent = unsafe { libc::kill(pid, libc::SIGPIPE) };
    assert_eq!(sent, 0);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "fjord server died of SIGPIPE"
    );
    server.produce("after-sigpipe", ["x".to_owned()]);
    assert_eq!(
        server.consume("after-sigpipe", 1, Duration::from_secs(10)),
        ["x"]
    );
}

/// `fjord bench produce --transactional-id`: every transaction committed
/// (the last one too), so a read_committed consumer reads every record and
/// no marker.
#[test]
fn bench_produce_in_transactions_is_read_committed() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), free_port(), None);
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["bench", "produce", "-t", "txn-bench", "--records", "5000"])
        .args(["--acks", "all", "--transactional-id", "bench-test"])
        .args(["--transaction-records", "700", "--transaction-ms", "60000"])
        .args(["-b", &server.bootstrap])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("records: 5000 of 100 B"), "{stdout}");
    // 7 full transactions of 700 records and the final one of 100.
    assert!(
        stdout.contains("transactions: 8 committed") && stdout.contains(", 0 aborted"),
        "{stdout}"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &server.bootstrap)
        .set("group.id", "txn-bench-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("txn-bench", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut records, mut last_offset) = (0u64, -1);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{records} records read by offset {last_offset}"
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                records += 1;
                last_offset = m.offset();
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if records >= 5000 => break,
            _ => {}
        }
    }
    assert_eq!(records, 5000);
    // The 8 commit markers take offsets of their own, read by nobody: the
    // last record sits before the last marker.
    assert_eq!(last_offset, 5000 + 7 - 1);
}
