//! What a pipeline may reach on the host, on every path to a plugin: `fjord
//! pipeline validate`, `fjord plugin test`, a deploy through the admin API
//! and `fjord server --pipelines`. A native library's constructor writes a
//! marker file when the library is loaded: it must never appear unless the
//! operator allowed the library's directory.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;
// The plugin host's fixture builds, into the same directories.
#[path = "../../plugin-host/tests/common/mod.rs"]
mod fixtures;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Server, free_port};

/// The environment variable the fixture's constructor reads.
const MARKER_VAR: &str = "FJORD_TEST_CONSTRUCTOR_MARKER";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `fjord ARGS` as run on a host whose operator settings are `env`.
fn fjord(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
    cmd.args(args)
        .env_remove("FJORD_PLUGIN_NATIVE_DIRS")
        .env_remove("FJORD_PIPELINE_ALLOWED_PATHS")
        .env("FJORD_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn manifest(name: &str, step: &Path) -> String {
    format!(
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n  \
         source: {{topic: {name}-in}}\n  steps:\n    - {{name: native, plugin: '{}'}}\n  \
         sinks: [{{topic: {name}-out}}]\n",
        step.display()
    )
}

/// Every path that could load a library, refused while its directory is
/// not allowed (and, allowed, while it lacks the ABI); then allowed, the
/// good one loads and runs. One test: the marker variable is the
/// process's, inherited by the servers it starts.
#[test]
fn a_native_library_runs_only_from_plugin_native_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("constructor-ran");
    // SAFETY: this binary's other tests do not read the environment.
    unsafe { std::env::set_var(MARKER_VAR, &marker) };
    let no_abi = fixtures::build("fjord-test-constructor", fixtures::Build::Native);
    let with_abi =
        fixtures::build_with("fjord-test-constructor", fixtures::Build::Native, &["abi"]);
    let data = dir.path().join("data");
    let data_env = ("FJORD_DATA_DIR", data.as_path());
    let not_loaded = |how: &str| {
        assert!(!marker.exists(), "{how}: the library's constructor ran");
    };
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "\"x\"\n").unwrap();

    for (lib, name) in [(&no_abi, "no-abi"), (&with_abi, "abi")] {
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, manifest(name, lib)).unwrap();
        let out = fjord(
            &["pipeline", "validate", file.to_str().unwrap()],
            &[data_env],
        );
        assert!(
            !out.status.success() && text(&out).contains("is outside plugin.native.dirs"),
            "{}",
            text(&out)
        );
        not_loaded("pipeline validate");
        let args = [
            "plugin",
            "test",
            lib.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ];
        let out = fjord(&args, &[data_env]);
        assert!(
            !out.status.success() && text(&out).contains("add its directory to plugin.native.dirs"),
            "{}",
            text(&out)
        );
        not_loaded("plugin test");
    }
    // Its directory allowed, the library without the ABI is read, not run.
    let no_abi_dir = no_abi.parent().unwrap();
    let allowed = [data_env, ("FJORD_PLUGIN_NATIVE_DIRS", no_abi_dir)];
    let no_abi_manifest = dir.path().join("no-abi.yaml");
    let out = fjord(
        &["pipeline", "validate", no_abi_manifest.to_str().unwrap()],
        &allowed,
    );
    assert!(
        !out.status.success() && text(&out).contains("no `fjord_plugin_abi_version` symbol"),
        "{}",
        text(&out)
    );
    let args = [
        "plugin",
        "test",
        no_abi.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ];
    assert!(!fjord(&args, &allowed).status.success());
    not_loaded("allowed directory, no ABI");

    // A server that allows no native directory: the admin API refuses the
    // deploy, `--pipelines` stops the start.
    let server = Server::start(&data, free_port(), None);
    let body = manifest("abi", &with_abi);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(format!("http://{}/api/v1/pipelines", server.admin))
        .header("Content-Type", "application/json")
        .send(body.as_str())
        .unwrap();
    let answer = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status().as_u16(), 400, "{answer}");
    assert!(answer.contains("is outside plugin.native.dirs"), "{answer}");
    not_loaded("admin API deploy");
    drop(server);

    let with_abi_manifest = dir.path().join("abi.yaml");
    let log = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["server", "--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--admin-listen", "off", "--log", "warn", "--data-dir"])
        .arg(&data)
        .arg("--pipelines")
        .arg(&with_abi_manifest)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started with a manifest it should refuse");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        !status.success() && said.contains("is outside plugin.native.dirs"),
        "{said}"
    );
    not_loaded("server --pipelines");

    // The operator allows the good library's directory: it loads and runs.
    let extra = [
        "--pipelines".to_owned(),
        with_abi_manifest.display().to_string(),
        "--native-dir".to_owned(),
        with_abi.parent().unwrap().display().to_string(),
    ];
    let server = Server::start_with(&data, free_port(), &extra);
    server.produce("abi-in", ["through".to_owned()]);
    assert_eq!(
        server.consume("abi-out", 1, Duration::from_secs(20)),
        ["through"]
    );
    assert!(marker.exists(), "the allowed library was not loaded");

    // The operator takes the directory back: the deployment stored in the
    // broker is refused when the restarted runtime comes to start it.
    drop(server);
    std::fs::remove_file(&marker).unwrap();
    let server = Server::start(&data, free_port(), None);
    let status = server.fjord_until(&["pipeline", "status", "abi"], "invalid");
    assert!(status.contains("is outside plugin.native.dirs"), "{status}");
    not_loaded("a stored deployment, restarted without its directory");
}

#[test]
fn file_connectors_stay_inside_pipeline_allowed_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pipelines = data.join("pipelines");
    std::fs::create_dir_all(&pipelines).unwrap();
    let outside = dir.path().join("authorized_keys");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "\"ssh-ed25519 AAAA attacker\"\n").unwrap();
    let data_env = [("FJORD_DATA_DIR", data.as_path())];
    let sink = |path: &Path| {
        fjord(
            &[
                "plugin",
                "test",
                "file-sink",
                "--input",
                input.to_str().unwrap(),
                "--config",
                &format!("path={}", path.display()),
            ],
            &data_env,
        )
    };
    let out = sink(&outside);
    assert!(
        !out.status.success()
            && text(&out).contains(&format!(
                "file sink `path` {} is outside pipeline.allowed.paths ({}); add its \
                 directory to pipeline.allowed.paths",
                outside.display(),
                pipelines.display()
            )),
        "{}",
        text(&out)
    );
    assert!(!outside.exists());
    let inside = pipelines.join("out.log");
    let out = sink(&inside);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&inside).unwrap(),
        "ssh-ed25519 AAAA attacker\n"
    );

    // The source, and an http source on every interface, in a manifest.
    let file = dir.path().join("m.yaml");
    std::fs::write(
        &file,
        "apiVersion: fjord.dev/v1\nkind: Pipeline\nmetadata: {name: m}\nspec:\n  source:\n    \
         connector: {plugin: file, config: {path: /etc/shadow}}\n  sinks: [{topic: out}]\n",
    )
    .unwrap();
    let out = fjord(&["pipeline", "validate", file.to_str().unwrap()], &data_env);
    assert!(
        !out.status.success()
            && text(&out)
                .contains("file source `path` /etc/shadow is outside pipeline.allowed.paths"),
        "{}",
        text(&out)
    );
    let http = std::fs::read_to_string(&file).unwrap().replace(
        "{plugin: file, config: {path: /etc/shadow}}",
        "{plugin: http, config: {listen: '0.0.0.0:8088'}}",
    );
    std::fs::write(&file, http).unwrap();
    let out = fjord(&["pipeline", "validate", file.to_str().unwrap()], &data_env);
    assert!(
        !out.status.success() && text(&out).contains("is outside pipeline.allowed.listen"),
        "{}",
        text(&out)
    );
    // The operator allows it.
    let out = fjord(
        &["pipeline", "validate", file.to_str().unwrap()],
        &[
            data_env[0],
            ("FJORD_PIPELINE_ALLOWED_LISTEN", Path::new("0.0.0.0:8088")),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}
