//! `fjord plugin new NAME --kind KIND`: a plugin crate that builds both as
//! a WebAssembly component and as a native library, with a working minimal
//! implementation, a unit test, a README and sample input.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fjord_sdk::PluginKind;

/// `fjord plugin new` flags.
#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// Crate and plugin name: letters, digits, `-` and `_`, starting with a
    /// letter.
    pub name: String,
    /// processor, source, sink, partitioner or serializer.
    #[arg(short, long)]
    pub kind: PluginKind,
    /// Directory of the new crate (default: ./NAME); must not exist or be
    /// empty.
    #[arg(short, long)]
    pub dir: Option<PathBuf>,
    /// The fjord-sdk crate to depend on (default: the sdk of the Fjord
    /// checkout this binary was built from).
    #[arg(long)]
    pub sdk_path: Option<PathBuf>,
}

/// fjord-sdk is not on crates.io yet: scaffolds depend on it by path.
const SDK_OF_THIS_CHECKOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk");

pub fn run(args: NewArgs) -> Result<()> {
    validate_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    refuse_non_empty(&dir)?;
    let sdk = sdk_path(args.sdk_path.as_deref())?;
    let files = scaffold(&args.name, args.kind, &sdk);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // Line breaks in the templates depend on the name's length; best
    // effort, as a crate without rustfmt is still a working crate.
    let _ = std::process::Command::new("rustfmt")
        .args(["--edition", "2024"])
        .arg(dir.join("src/lib.rs"))
        .status();
    eprintln!(
        "created {} plugin `{}` in {}",
        args.kind,
        args.name,
        dir.display()
    );
    eprintln!(
        "next: cd {} && cargo test && fjord plugin build",
        dir.display()
    );
    Ok(())
}

/// Cargo's package name rules, plus what would make the generated Rust
/// invalid (a keyword as the library name).
fn validate_name(name: &str) -> Result<()> {
    let hint =
        "a plugin name is letters, digits, `-` and `_`, starts with a letter, e.g. `my-filter`";
    let Some(first) = name.chars().next() else {
        bail!("the plugin name is empty; {hint}");
    };
    if !first.is_ascii_alphabetic() {
        bail!("invalid plugin name `{name}`: it must start with a letter; {hint}");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        bail!("invalid plugin name `{name}`: `{bad}` is not allowed; {hint}");
    }
    if name.len() > 64 {
        bail!("invalid plugin name `{name}`: longer than 64 characters");
    }
    const RESERVED: &[&str] = &[
        "abstract",
        "as",
        "async",
        "await",
        "become",
        "box",
        "break",
        "const",
        "continue",
        "crate",
        "do",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "struct",
        "super",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
        "core",
        "std",
        "alloc",
        "proc_macro",
        "proc-macro",
        "test",
        "build",
        "deps",
        "examples",
        "incremental",
        "fjord-sdk",
        "fjord_sdk",
    ];
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        bail!("invalid plugin name `{name}`: it is a Rust keyword or a reserved crate name");
    }
    Ok(())
}

fn refuse_non_empty(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} exists and is not empty", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => {
            Err(e).with_context(|| format!("{} exists and is not a directory", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

fn sdk_path(given: Option<&Path>) -> Result<PathBuf> {
    let path = given.unwrap_or(Path::new(SDK_OF_THIS_CHECKOUT));
    if !path.join("Cargo.toml").is_file() {
        bail!(
            "no fjord-sdk crate at {}; pass --sdk-path to the `sdk` directory of a Fjord checkout",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("resolving {}", path.display()))
}

/// `my-filter` → `MyFilter`; `Plugin` appended where the name would clash
/// with what the generated code imports or the prelude has.
fn type_name(name: &str) -> String {
    const TAKEN: &[&str] = &[
        "BatchWriter",
        "Config",
        "Context",
        "Error",
        "Harness",
        "Level",
        "Partitioner",
        "Plugin",
        "PluginInfo",
        "Processor",
        "Record",
        "RecordRef",
        "Serializer",
        "Sink",
        "Source",
        "Box",
        "Default",
        "Debug",
        "Err",
        "None",
        "Ok",
        "Option",
        "Result",
        "Self",
        "Some",
        "String",
        "Vec",
    ];
    let camel = camel_case(name);
    if TAKEN.contains(&camel.as_str()) {
        camel + "Plugin"
    } else {
        camel
    }
}

fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The files of the crate, relative to its directory.
fn scaffold(name: &str, kind: PluginKind, sdk: &Path) -> Vec<(&'static str, String)> {
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{kind}}", kind.as_str())
    };
    let cargo_toml = fill(CARGO_TOML).replace("{{sdk}}", &toml_string(&sdk.to_string_lossy()));
    let (lib, try_it, what) = match kind {
        PluginKind::Processor => (
            PROCESSOR,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl",
            "passes every record through unchanged and counts them (metric `records`)",
        ),
        PluginKind::Source => (
            SOURCE,
            "fjord plugin test target/release/lib{{lib}}.so --max 5",
            "emits records numbered 1, 2, 3, …; its position is the next number",
        ),
        PluginKind::Sink => (
            SINK,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl",
            "logs each record's value and counts them",
        ),
        PluginKind::Partitioner => (
            PARTITIONER,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl --partitions 3",
            "chooses the partition by a hash (FNV-1a) of the key; records without a key go to partition 0",
        ),
        PluginKind::Serializer => (
            SERIALIZER,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl",
            "stores values as they are (identity), in both directions",
        ),
    };
    let lib_name = name.replace('-', "_");
    let readme = fill(README)
        .replace("{{what}}", what)
        .replace("{{try}}", try_it)
        .replace("{{lib}}", &lib_name);
    vec![
        ("Cargo.toml", cargo_toml),
        ("src/lib.rs", fill(lib)),
        ("README.md", readme),
        ("input.jsonl", SAMPLE_RECORDS.to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ]
}

// The generated files, with `{{name}}` (the crate name), `{{type}}` (its
// type name), `{{kind}}` and, in Cargo.toml, `{{sdk}}` filled in. Kept as
// files so they read (and diff) as the code they become.
const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const SAMPLE_RECORDS: &str = include_str!("templates/input.jsonl");
const README: &str = include_str!("templates/README.md.tmpl");
const PROCESSOR: &str = include_str!("templates/processor.rs.tmpl");
const SOURCE: &str = include_str!("templates/source.rs.tmpl");
const SINK: &str = include_str!("templates/sink.rs.tmpl");
const PARTITIONER: &str = include_str!("templates/partitioner.rs.tmpl");
const SERIALIZER: &str = include_str!("templates/serializer.rs.tmpl");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-filter").is_ok());
        assert!(validate_name("a_1").is_ok());
        for bad in ["", "1abc", "my filter", "é", "fn", "test", "a.b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-filter_x"), "MyFilterX");
        assert_eq!(type_name("config"), "ConfigPlugin");
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
