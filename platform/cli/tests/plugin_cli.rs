//! `fjord plugin …` and the plugin flags of `fjord produce` / `fjord
//! consume`, through the built binary.
//!
//! Scaffolded crates build into one shared target directory
//! (target/scaffold-tests) so fjord-sdk is compiled once for all of them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fjord_broker::{Broker, BrokerConfig};

fn fjord() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fjord"));
    // Error output is asserted on: no backtraces, no plugin info logs.
    c.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("FJORD_LOG", "warn")
        .env("CARGO_TARGET_DIR", scaffold_target());
    c
}

fn scaffold_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scaffold-tests")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Runs `cmd`, expecting exit code 1; returns its standard error.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should fail:\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn is_builtin(name: &str) -> bool {
    fjord()
        .args(["plugin", "inspect", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `name` when it is a built-in; otherwise the first-party crate
/// plugins/`dir` built natively, by path.
fn first_party(name: &str, dir: &str) -> String {
    if is_builtin(name) {
        return name.to_owned();
    }
    let krate = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins")
        .join(dir);
    let out = ok(fjord()
        .args(["plugin", "build", "--native", "--debug"])
        .arg(&krate));
    text(&out.stdout)
        .lines()
        .last()
        .expect("an artifact path")
        .to_owned()
}

#[test]
fn inspect_a_builtin() {
    let out = ok(fjord().args(["plugin", "inspect", "stdout"]));
    let shown = text(&out.stdout);
    for line in [
        "name:        stdout",
        "kind:        sink",
        "origin:      built-in",
    ] {
        assert!(shown.contains(line), "{line:?} missing from\n{shown}");
    }
    assert!(shown.contains("NAME    REQUIRED  DEFAULT"), "{shown}");
    assert!(shown.contains("format  no        value"), "{shown}");

    let out = ok(fjord().args(["plugin", "inspect", "stdout", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["name"], "stdout");
    assert_eq!(json["kind"], "sink");
    assert_eq!(json["origin"], "built-in");
    assert_eq!(json["config_keys"][0]["name"], "format");
    assert_eq!(json["config_keys"][0]["required"], false);

    if is_builtin("json") {
        let out = ok(fjord().args(["plugin", "inspect", "json", "--json"]));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(json["kind"], "serializer");
        assert_eq!(json["origin"], "built-in");
    }
}

#[test]
fn inspect_what_is_not_a_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.so");
    std::fs::write(&file, "not a library").expect("write");
    let err = fails(fjord().args(["plugin", "inspect"]).arg(&file));
    assert!(err.contains("is outside plugin.native.dirs"), "{err}");
    // From an allowed directory it is read, and refused for what it is.
    let err = fails(
        fjord()
            .env("FJORD_PLUGIN_NATIVE_DIRS", dir.path())
            .args(["plugin", "inspect"])
            .arg(&file),
    );
    assert!(err.contains("is not a Fjord plugin"), "{err}");
    assert!(err.contains("notes.so"), "{err}");

    let err = fails(
        fjord()
            .args(["plugin", "inspect"])
            .arg(dir.path().join("missing.wasm")),
    );
    assert!(err.contains("not found"), "{err}");
    let err = fails(fjord().args(["plugin", "inspect", "no-such-builtin"]));
    assert!(err.contains("no built-in plugin of that name"), "{err}");
    assert!(err.contains("stdout"), "lists the built-ins: {err}");
}

#[test]
fn test_names_a_bad_input_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, "{\"value\":\"fine\"}\n\n{\"value\": oops}\n").expect("write");
    let err = fails(
        fjord()
            .args(["plugin", "test", "stdout", "--input"])
            .arg(&input),
    );
    assert!(err.contains("input.jsonl: line 3"), "{err}");

    // A plugin's own refusal names the plugin.
    std::fs::write(&input, "\"a\"\n").expect("write");
    let err = fails(
        fjord()
            .args([
                "plugin",
                "test",
                "stdout",
                "--config",
                "format=xml",
                "--input",
            ])
            .arg(&input),
    );
    assert!(err.contains("plugin `stdout`: init failed"), "{err}");

    let out = ok(fjord()
        .args(["plugin", "test", "stdout", "--input"])
        .arg(&input));
    assert_eq!(text(&out.stdout), "a\n");
    assert!(text(&out.stderr).contains("wrote 1 records"));
}

#[test]
fn new_refuses_bad_names_and_used_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["1st", "my plugin", "fn", ""] {
        let err = fails(
            fjord()
                .args(["plugin", "new", bad, "--kind", "sink", "--dir"])
                .arg(dir.path().join("x")),
        );
        assert!(err.contains("plugin name"), "{bad}: {err}");
    }
    std::fs::write(dir.path().join("taken"), "").expect("write");
    let err = fails(
        fjord()
            .args(["plugin", "new", "ok-name", "--kind", "sink", "--dir"])
            .arg(dir.path()),
    );
    assert!(err.contains("exists and is not empty"), "{err}");
    let err = fails(
        fjord()
            .args(["plugin", "new", "ok-name", "--kind", "sink", "--sdk-path"])
            .arg(dir.path())
            .arg("--dir")
            .arg(dir.path().join("new")),
    );
    assert!(err.contains("--sdk-path"), "{err}");
}

#[test]
fn new_scaffolds_pass_their_own_tests() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in ["processor", "source", "sink", "partitioner", "serializer"] {
        let name = format!("scaffold-{kind}");
        let crate_dir = dir.path().join(&name);
        ok(fjord()
            .args(["plugin", "new", &name, "--kind", kind, "--dir"])
            .arg(&crate_dir));
        for file in ["Cargo.toml", "src/lib.rs", "README.md", "input.jsonl"] {
            assert!(crate_dir.join(file).is_file(), "{kind}: {file}");
        }
        ok(Command::new("cargo")
            .args(["test", "--quiet"])
            .current_dir(&crate_dir)
            .env("CARGO_TARGET_DIR", scaffold_target()));
    }
}

#[test]
fn build_a_scaffold_and_test_the_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crate_dir = dir.path().join("built");
    ok(fjord()
        .args(["plugin", "new", "cli-built", "--kind", "processor", "--dir"])
        .arg(&crate_dir));
    // A crate whose own release profile keeps line tables (as a workspace
    // set up for profiling does): `plugin build` still ships it lean.
    let manifest = crate_dir.join("Cargo.toml");
    let mut toml = std::fs::read_to_string(&manifest).expect("read Cargo.toml");
    toml.push_str("\n[profile.release]\ndebug = \"line-tables-only\"\n");
    std::fs::write(&manifest, toml).expect("write Cargo.toml");
    let out = ok(fjord()
        .args(["plugin", "build", "--native"])
        .arg(&crate_dir));
    let artifacts = text(&out.stdout);
    let library = artifacts.lines().last().expect("an artifact");
    assert!(
        library.ends_with(&format!(
            "release/{}cli_built{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
        "{artifacts}"
    );
    assert_no_debug_info(Path::new(library));

    // Loaded only from a directory the operator lists (as the broker would).
    let err = fails(
        fjord()
            .args(["plugin", "test", library, "--input"])
            .arg(crate_dir.join("input.jsonl")),
    );
    assert!(err.contains("plugin.native.dirs"), "{err}");
    let library_dir = std::path::Path::new(library).parent().expect("a directory");
    let out = ok(fjord()
        .env("FJORD_PLUGIN_NATIVE_DIRS", library_dir)
        .args(["plugin", "test", library, "--input"])
        .arg(crate_dir.join("input.jsonl")));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4, "the processor passes records through");
    assert_eq!(lines[0]["key"], "user-1");
    assert_eq!(lines[0]["value"]["action"], "login");
    assert_eq!(lines[2]["headers"]["source"], "web");
    assert_eq!(lines[3]["value"], "plain text value");

    let out = ok(fjord()
        .env("FJORD_PLUGIN_NATIVE_DIRS", library_dir)
        .args(["plugin", "inspect", library]));
    let shown = text(&out.stdout);
    assert!(shown.contains("name:        cli-built"), "{shown}");
    assert!(shown.contains("origin:      native"), "{shown}");
}

/// Fails unless the native library at `path` has no DWARF sections, yet
/// keeps its symbol table (strip "debuginfo").
fn assert_no_debug_info(path: &Path) {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(path).expect("read the library");
    let file = object::File::parse(bytes.as_slice()).expect("an object file");
    let debug: Vec<&str> = file
        .sections()
        .filter_map(|s| s.name().ok())
        .filter(|name| name.starts_with(".debug"))
        .collect();
    assert!(debug.is_empty(), "{}: {debug:?}", path.display());
    assert!(
        file.symbol_table().is_some(),
        "{}: no symbol table",
        path.display()
    );
    assert!(
        file.section_by_name(".text").is_some(),
        "{}",
        path.display()
    );
}

/// A broker on 127.0.0.1:0 in this process, on its own runtime.
struct TestBroker {
    runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
    addr: String,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    fn start() -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = runtime
            .block_on(Broker::start(BrokerConfig::ephemeral(dir.path())))
            .expect("broker starts");
        let addr = broker.local_addr().to_string();
        TestBroker {
            runtime,
            broker: Some(broker),
            addr,
            _dir: dir,
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            let _ = self.runtime.block_on(broker.shutdown());
        }
    }
}

fn produce(broker: &TestBroker, args: &[&str], input: &str) -> Output {
    let mut child = fjord()
        .arg("produce")
        .args(args)
        .args(["-b", &broker.addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writes");
    child.wait_with_output().expect("runs")
}

#[test]
fn produce_and_consume_through_plugins() {
    let json = first_party("json", "json");
    let murmur2 = first_party("murmur2", "murmur2");
    let broker = TestBroker::start();
    let b = ["-b", broker.addr.as_str()];

    ok(fjord()
        .args(["topic", "create", "events", "--partitions", "1"])
        .args(b));
    let out = produce(
        &broker,
        &["events", "--serializer", &json],
        "{\"a\": 1}\n{ \"b\" : [1, 2] }\nnot json\n{\"c\":3}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("2 records before it were produced"), "{err}");

    // Stored as the serializer made them (compact), nothing for line 3 or after.
    let out = ok(fjord()
        .args(["consume", "events", "--from-beginning"])
        .args(b));
    assert_eq!(text(&out.stdout), "{\"a\":1}\n{\"b\":[1,2]}\n");
    let out = ok(fjord()
        .args([
            "consume",
            "events",
            "--from-beginning",
            "--serializer",
            &json,
        ])
        .args(b));
    assert_eq!(text(&out.stdout), "{\"a\":1}\n{\"b\":[1,2]}\n");

    // A value the serializer refuses on the way out names where it is.
    let out = produce(&broker, &["events"], "raw, not json\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = fails(
        fjord()
            .args([
                "consume",
                "events",
                "--from-beginning",
                "--serializer",
                &json,
            ])
            .args(b),
    );
    assert!(err.contains("partition 0 offset 2"), "{err}");

    // The partitioner's choice is where records land, and the same as
    // `fjord plugin test` shows for their keys.
    ok(fjord()
        .args(["topic", "create", "keyed", "--partitions", "3"])
        .args(b));
    let keys = ["alpha", "beta", "gamma", "delta", "epsilon", "alpha"];
    let lines: String = keys.iter().map(|k| format!("{k}:v-{k}\n")).collect();
    let out = produce(
        &broker,
        &["keyed", "-K", ":", "--partitioner", &murmur2],
        &lines,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ok(fjord()
        .args([
            "consume",
            "keyed",
            "--from-beginning",
            "--format",
            "{key} {partition}",
        ])
        .args(b));
    let mut landed: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    landed.sort();
    landed.dedup();

    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("keys.jsonl");
    let jsonl: String = keys
        .iter()
        .map(|k| format!("{{\"key\":\"{k}\",\"value\":\"v-{k}\"}}\n"))
        .collect();
    std::fs::write(&input, jsonl).expect("write");
    let out = ok(fjord()
        .args(["plugin", "test", &murmur2, "--partitions", "3", "--input"])
        .arg(&input));
    let mut expected: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            format!("{} {}", v["key"].as_str().expect("key"), v["partition"])
        })
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(landed, expected);
    assert_eq!(landed.len(), 5);
}
