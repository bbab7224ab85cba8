//! `fjord user` against real `fjord server` processes: the admin user from
//! the server's flags, users created, listed and deleted by it and refused
//! to anyone else, a new user producing with librdkafka (SCRAM); and in a
//! 3-node cluster, a user created through one broker logging in on the
//! others within a stated time.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, ClusterConfig};
use common::{Server, fjord_at, free_port};

const ADMIN: [&str; 4] = ["--sasl-user", "admin", "--sasl-password", "admin-pw"];

fn with<'a>(args: &[&'a str], login: &[&'a str]) -> Vec<&'a str> {
    args.iter().chain(login).copied().collect()
}

#[test]
fn users_are_created_listed_and_deleted_by_the_admin_only() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--admin-user", "admin", "--admin-password", "admin-pw"].map(String::from);
    let server = Server::start_with(dir.path(), free_port(), &extra);

    // Anonymous: refused, with Kafka's error name.
    let (ok, out) = server.fjord(&["user", "create", "alice", "--password", "alice-pw"]);
    assert!(!ok && out.contains("CLUSTER_AUTHORIZATION_FAILED"), "{out}");
    // A wrong admin password: the login fails, with the broker's message.
    let (ok, out) = server.fjord(&[
        "user",
        "list",
        "--sasl-user",
        "admin",
        "--sasl-password",
        "guess",
    ]);
    assert!(
        !ok && out.contains("Authentication failed: invalid credentials"),
        "{out}"
    );

    let (ok, out) = server.fjord(&with(
        &[
            "user",
            "create",
            "alice",
            "--password",
            "alice-pw",
            "--iterations",
            "4096",
        ],
        &ADMIN,
    ));
    assert!(ok, "{out}");
    let (ok, out) = server.fjord(&with(&["user", "list"], &ADMIN));
    assert!(ok, "{out}");
    let alice = out
        .lines()
        .find(|l| l.starts_with("alice"))
        .unwrap_or_default();
    assert!(
        alice.contains("SCRAM-SHA-256 (4096 iterations)")
            && alice.contains("SCRAM-SHA-512 (4096 iterations)"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("admin")), "{out}");
    let (ok, out) = server.fjord(&with(
        &[
            "user",
            "create",
            "bob",
            "--password",
            "x",
            "--iterations",
            "100",
        ],
        &ADMIN,
    ));
    assert!(!ok && out.contains("UNACCEPTABLE_CREDENTIAL"), "{out}");

    // alice logs in with librdkafka (SCRAM-SHA-256) through `fjord produce`
    // and reads back with `fjord consume` (SCRAM-SHA-512); she may not
    // manage users.
    let alice = ["--sasl-user", "alice", "--sasl-password", "alice-pw"];
    let mut produce = std::process::Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(with(
            &["produce", "notes", "--sasl-mechanism", "SCRAM-SHA-256"],
            &alice,
        ))
        .env("FJORD_BOOTSTRAP_SERVER", &server.bootstrap)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = produce.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
    }
    assert!(produce.wait().unwrap().success());
    let (ok, out) = server.fjord(&with(&["consume", "notes", "--from-beginning"], &alice));
    assert!(ok && out.contains("hello"), "{out}");
    let (ok, out) = server.fjord(&with(&["user", "list"], &alice));
    assert!(!ok && out.contains("CLUSTER_AUTHORIZATION_FAILED"), "{out}");

    let (ok, out) = server.fjord(&with(&["user", "delete", "alice"], &ADMIN));
    assert!(ok, "{out}");
    let (ok, out) = server.fjord(&with(&["user", "list"], &ADMIN));
    assert!(ok && !out.contains("alice"), "{out}");
    let (ok, out) = server.fjord(&with(&["user", "delete", "alice"], &ADMIN));
    assert!(!ok && out.contains("RESOURCE_NOT_FOUND"), "{out}");
}

/// How long a user made through one broker may take to log in on the
/// others: the time for them to apply the quorum's metadata entry.
const PROPAGATION: Duration = Duration::from_secs(5);

#[test]
fn a_user_created_through_one_broker_logs_in_on_the_others() {
    let cluster = Cluster::start_with(
        ClusterConfig::new(3)
            .yaml("sasl.admin.user: admin")
            .yaml("sasl.admin.password: admin-pw")
            // The harness reads each node's quorum view over the admin API
            // without a login (tests/admin_auth.rs tests the login).
            .yaml("admin.api.require.auth: false"),
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
    let at = |id: u64| cluster.node(id).kafka.to_string();
    // The admin user is made through the quorum once it takes changes.
    cluster.wait_for("the admin user", |_| {
        fjord_at(&with(&["user", "list"], &ADMIN), &at(1), "")
            .0
            .then_some(())
    });

    let (ok, out) = fjord_at(
        &with(
            &["user", "create", "carol", "--password", "carol-pw"],
            &ADMIN,
        ),
        &at(1),
        "",
    );
    assert!(ok, "{out}");
    let created = Instant::now();
    // A login that succeeds then meets CLUSTER_AUTHORIZATION_FAILED (carol
    // is no super user); before carol is known it fails to log in. Polled
    // 4 times a second, under the 5 failed logins a second allowed.
    let carol = ["--sasl-user", "carol", "--sasl-password", "carol-pw"];
    for id in [2, 3] {
        loop {
            let (_, out) = fjord_at(&with(&["user", "list"], &carol), &at(id), "");
            if out.contains("CLUSTER_AUTHORIZATION_FAILED") {
                break;
            }
            assert!(
                out.contains("SASL_AUTHENTICATION_FAILED"),
                "node {id}: {out}"
            );
            assert!(
                created.elapsed() < PROPAGATION,
                "node {id} did not know carol after {PROPAGATION:?}: {out}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "node {id}: carol logs in {:?} after her creation",
            created.elapsed()
        );
    }
}

/// A single node's users (users.yaml) are carried into the cluster it
/// forms later, once: the file is renamed, and a user deleted in the
/// cluster stays deleted across a restart.
#[test]
fn a_single_nodes_users_are_carried_into_the_cluster_it_forms() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let single = ["--admin-user", "admin", "--admin-password", "admin-pw"].map(String::from);
    let server = Server::start_with(dir.path(), port, &single);
    let (ok, out) = server.fjord(&with(
        &["user", "create", "dora", "--password", "dora-pw"],
        &ADMIN,
    ));
    assert!(ok, "{out}");
    assert!(server.terminate(Duration::from_secs(30)));
    assert!(dir.path().join("users.yaml").exists());

    let voters = format!("1@127.0.0.1:{}", free_port());
    let mut cluster_args = vec!["--node-id", "1", "--controller-voters", &voters];
    cluster_args.extend(["--admin-user", "admin", "--admin-password", "admin-pw"]);
    let cluster_args: Vec<String> = cluster_args.into_iter().map(String::from).collect();
    let server = Server::start_with(dir.path(), port, &cluster_args);
    let dora = ["--sasl-user", "dora", "--sasl-password", "dora-pw"];
    let deadline = Instant::now() + PROPAGATION * 4;
    loop {
        // dora logs in (and, no super user, is refused the user list).
        let (_, out) = server.fjord(&with(&["user", "list"], &dora));
        if out.contains("CLUSTER_AUTHORIZATION_FAILED") {
            break;
        }
        assert!(Instant::now() < deadline, "dora was not carried: {out}");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(!dir.path().join("users.yaml").exists());
    assert!(dir.path().join("users.yaml.carried").exists());
    let (ok, out) = server.fjord(&with(&["user", "delete", "dora"], &ADMIN));
    assert!(ok, "{out}");
    assert!(server.terminate(Duration::from_secs(30)));

    let server = Server::start_with(dir.path(), port, &cluster_args);
    let out = server.fjord_until(&with(&["user", "list"], &ADMIN), "admin");
    assert!(!out.contains("dora"), "dora came back: {out}");
}
