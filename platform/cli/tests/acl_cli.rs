//! `fjord acl create|list|delete` against a `fjord server` with an
//! authorizer: the first bindings made through a super user
//! (`super.users: User:ANONYMOUS` for one start, as docs/security.md
//! says), then the server restarted without it enforcing them.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Server, free_port};

fn fjord(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .args(["-b", bootstrap])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn produce(bootstrap: &str, topic: &str, value: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["produce", topic, "-b", bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{value}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn acls_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bootstrap_config = dir.path().join("bootstrap.yaml");
    std::fs::write(
        &bootstrap_config,
        "authorizer.class.name: acl\nsuper.users: User:ANONYMOUS\n",
    )
    .unwrap();
    let port = free_port();
    let config = |path: &std::path::Path| vec!["--config".to_owned(), path.display().to_string()];
    let server = Server::start_with(&data, port, &config(&bootstrap_config));
    let b = server.bootstrap.clone();

    let (ok, out) = fjord(&b, &["topic", "create", "orders"]);
    assert!(ok, "{out}");
    let (ok, out) = fjord(&b, &["topic", "create", "secret"]);
    assert!(ok, "{out}");
    let (ok, out) = fjord(
        &b,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "write,describe",
            "--topic",
            "orders",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = fjord(
        &b,
        &[
            "acl",
            "create",
            "--allow-principal",
            "User:alice",
            "--operation",
            "read",
            "--group",
            "orders-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert!(ok, "{out}");
    // A binding the broker refuses is reported, and the command fails.
    let (ok, out) = fjord(
        &b,
        &[
            "acl",
            "create",
            "--allow-principal",
            "alice",
            "--operation",
            "read",
            "--topic",
            "x",
        ],
    );
    assert!(!ok && out.contains("INVALID_REQUEST"), "{out}");

    let (ok, out) = fjord(&b, &["acl", "list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("User:ANONYMOUS\t*\tTOPIC\torders\tLITERAL\tWRITE\tALLOW"),
        "{out}"
    );
    assert!(
        out.contains("User:alice\t*\tGROUP\torders-\tPREFIXED\tREAD\tALLOW"),
        "{out}"
    );
    // MATCH: what applies to the group orders-eu.
    let (ok, out) = fjord(
        &b,
        &[
            "acl",
            "list",
            "--group",
            "orders-eu",
            "--resource-pattern-type",
            "match",
        ],
    );
    assert!(
        ok && out.contains("User:alice") && !out.contains("TOPIC"),
        "{out}"
    );
    let (ok, out) = fjord(&b, &["acl", "delete", "--allow-principal", "User:alice"]);
    assert!(ok && out.contains("User:alice"), "{out}");
    let (ok, out) = fjord(&b, &["acl", "list"]);
    assert!(ok && !out.contains("User:alice"), "{out}");
    let (ok, out) = fjord(&b, &["acl", "delete"]);
    assert!(!ok && out.contains("name what to delete"), "{out}");
    server.kill();

    // Without the bootstrap super user the bindings decide.
    let enforcing = dir.path().join("fjord.yaml");
    std::fs::write(&enforcing, "authorizer.class.name: acl\n").unwrap();
    let server = Server::start_with(&data, port, &config(&enforcing));
    let b = server.bootstrap.clone();
    let (ok, out) = produce(&b, "orders", "allowed");
    assert!(ok, "{out}");
    let (ok, out) = fjord(&b, &["topic", "list"]);
    assert!(
        ok && out.contains("orders") && !out.contains("secret"),
        "{out}"
    );
    let (ok, out) = fjord(&b, &["acl", "list"]);
    assert!(!ok && out.contains("CLUSTER_AUTHORIZATION_FAILED"), "{out}");
    server.kill();
}
