//! Builds plugin crates of this workspace into real `.wasm` components and
//! native libraries for the host's tests, with the same cargo that runs the
//! tests, into `target/plugin-fixtures` (a separate target directory, so the
//! outer `cargo test` does not hold its lock).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use parking_lot::Mutex;

/// How to build a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    Wasm,
    Native,
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Artifacts built so far in this process, by (package, build, features).
type Built = HashMap<(String, Build, String), PathBuf>;

static BUILT: Mutex<Option<Built>> = Mutex::new(None);

/// Builds `package` (release) and returns the artifact's path.
pub fn build(package: &str, how: Build) -> PathBuf {
    build_with(package, how, &[])
}

/// Like [`build`], with cargo features (built into their own directory).
pub fn build_with(package: &str, how: Build, features: &[&str]) -> PathBuf {
    let key = (package.to_owned(), how, features.join(","));
    let mut built = BUILT.lock();
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&key) {
        return p.clone();
    }
    let root = workspace_root();
    let mut target_dir = root.join("target/plugin-fixtures");
    if !features.is_empty() {
        target_dir = target_dir.join(features.join("-"));
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "-p", package, "--target-dir"])
        .arg(&target_dir);
    if how == Build::Wasm {
        cmd.args(["--target", "wasm32-wasip2"]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building {package} ({how:?}) failed");
    let file = package.replace('-', "_");
    let path = match how {
        Build::Wasm => target_dir
            .join("wasm32-wasip2/release")
            .join(format!("{file}.wasm")),
        Build::Native => target_dir
            .join("release")
            .join(format!("lib{file}.{}", std::env::consts::DLL_EXTENSION)),
    };
    assert!(path.is_file(), "{} was not built", path.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(key, path.clone());
    path
}

/// The policy of the host in these tests: native libraries from the
/// fixtures' target directory, files under the system's temporary
/// directory (where the tests' directories are), loopback addresses.
pub fn test_policy() -> fjord_plugin_host::HostPolicy {
    fjord_plugin_host::HostPolicy {
        native_dirs: vec![workspace_root().join("target/plugin-fixtures")],
        paths: vec![std::env::temp_dir()],
        ..fjord_plugin_host::HostPolicy::default()
    }
}

/// A path as the host's `load` takes it.
pub fn reference(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}

/// Python examples built so far in this process, by example name.
static PYTHON_BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// Builds the Python example `examples/plugins/python/<name>` with its
/// `build.sh` (componentize-py) into `target/python-plugins/<name>.wasm`.
///
/// Panics, rather than skipping, when componentize-py is missing: CI must
/// run these examples, and a silently skipped test would hide that it no
/// longer does.
pub fn build_python(name: &str) -> PathBuf {
    let mut built = PYTHON_BUILT.lock();
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let found = Command::new("componentize-py")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "componentize-py is not on PATH; it builds the Python example plugins: \
         pip install 'componentize-py==0.25.*'"
    );
    let root = workspace_root();
    let script = root
        .join("examples/plugins/python")
        .join(name)
        .join("build.sh");
    let out = root
        .join("target/python-plugins")
        .join(format!("{name}.wasm"));
    let status = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .status()
        .expect("run bash");
    assert!(status.success(), "{} failed", script.display());
    assert!(out.is_file(), "{} was not built", out.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), out.clone());
    out
}
