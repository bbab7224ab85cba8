//! `fjord plugin build [PATH]`: cargo builds of a plugin crate, as a native
//! library and as a WebAssembly component, and where the results are.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-wasip2";

/// `fjord plugin build` flags.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The plugin crate (a directory with a Cargo.toml).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Build only the WebAssembly component (wasm32-wasip2).
    #[arg(long, conflicts_with = "native")]
    pub wasm: bool,
    /// Build only the native library.
    #[arg(long)]
    pub native: bool,
    /// Optimised build without debug info (the default).
    #[arg(long, conflicts_with = "debug")]
    pub release: bool,
    /// Unoptimised build, faster to compile.
    #[arg(long)]
    pub debug: bool,
}

/// What `cargo metadata` tells about the crate.
struct Crate {
    manifest: PathBuf,
    target_dir: PathBuf,
    /// The library target's name: the package name with `-` as `_`.
    lib_name: String,
}

pub fn run(args: BuildArgs) -> Result<()> {
    let krate = metadata(&args.path)?;
    let profile = if args.debug { "debug" } else { "release" };
    let (native, wasm) = match (args.native, args.wasm) {
        (false, false) => (true, true),
        flags => flags,
    };
    let mut artifacts = Vec::new();
    if native {
        cargo_build(&krate, !args.debug, None)?;
        artifacts.push(krate.target_dir.join(profile).join(format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            krate.lib_name,
            std::env::consts::DLL_SUFFIX
        )));
    }
    if wasm {
        ensure_wasm_target(&args.path)?;
        cargo_build(&krate, !args.debug, Some(WASM_TARGET))?;
        artifacts.push(
            krate
                .target_dir
                .join(WASM_TARGET)
                .join(profile)
                .join(format!("{}.wasm", krate.lib_name)),
        );
    }
    for artifact in &artifacts {
        if !artifact.is_file() {
            bail!(
                "cargo succeeded but {} is missing (is the crate a cdylib?)",
                artifact.display()
            );
        }
        println!("{}", artifact.display());
    }
    Ok(())
}

fn metadata(dir: &Path) -> Result<Crate> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!("{} has no Cargo.toml", dir.display());
    }
    let output = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()
        .context("could not run cargo (is it installed and on PATH?)")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed for {}:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata's output")?;
    let target_dir = json["target_directory"]
        .as_str()
        .context("cargo metadata gave no target_directory")?;
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("resolving {}", manifest.display()))?;
    // In a workspace, --no-deps lists every member: take the one at PATH.
    let packages = json["packages"].as_array().cloned().unwrap_or_default();
    let package = packages
        .iter()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .with_context(|| format!("{} is not a package (a workspace root?)", dir.display()))?;
    let name = package["name"]
        .as_str()
        .context("cargo metadata gave a package without a name")?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .with_context(|| {
            format!("package {name} has no cdylib target: add crate-type = [\"cdylib\", \"rlib\"] under [lib]")
        })?;
    let lib_name = lib["name"].as_str().unwrap_or(name).replace('-', "_");
    Ok(Crate {
        manifest,
        target_dir: PathBuf::from(target_dir),
        lib_name,
    })
}

fn cargo_build(krate: &Crate, release: bool, target: Option<&str>) -> Result<()> {
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--lib", "--manifest-path"])
        .arg(&krate.manifest);
    if release {
        // What this builds is what gets deployed, so it carries no debug
        // info whatever the crate's release profile says: line tables make
        // a plugin several times its code's size (docs/plugins.md). The
        // symbol table stays (strip "debuginfo", not "symbols"), so
        // profilers still name the plugin's functions.
        cargo.arg("--release").args([
            "--config",
            "profile.release.debug=false",
            "--config",
            "profile.release.strip=\"debuginfo\"",
        ]);
    }
    if let Some(target) = target {
        cargo.args(["--target", target]);
    }
    let what = target.unwrap_or("native");
    let status = cargo
        .status()
        .with_context(|| format!("could not run cargo for the {what} build"))?;
    if !status.success() {
        bail!("the {what} build of {} failed", krate.manifest.display());
    }
    Ok(())
}

/// Installs the wasm32-wasip2 target when rustup manages the toolchain and
/// lacks it. Without rustup the build is tried as is: a toolchain installed
/// otherwise may well have the target.
fn ensure_wasm_target(dir: &Path) -> Result<()> {
    // Run in the crate so a rust-toolchain file there picks the toolchain.
    let listed = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output()
    {
        Ok(output) if output.status.success() => output.stdout,
        Ok(output) => bail!(
            "rustup target list failed:\n{}",
            String::from_utf8_lossy(&output.stderr).trim_end()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("rustup not found; assuming the {WASM_TARGET} target is installed");
            return Ok(());
        }
        Err(e) => return Err(e).context("could not run rustup"),
    };
    if String::from_utf8_lossy(&listed)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    eprintln!("installing the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .current_dir(dir)
        .status()
        .context("could not run rustup")?;
    if !status.success() {
        bail!("rustup target add {WASM_TARGET} failed");
    }
    Ok(())
}
