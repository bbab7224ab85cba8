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
    let (lib, input, try_it, what) = match kind {
        PluginKind::Processor => (
            PROCESSOR,
            SAMPLE_RECORDS,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl",
            "passes every record through unchanged and counts them (metric `records`)",
        ),
        PluginKind::Source => (
            SOURCE,
            SAMPLE_RECORDS,
            "fjord plugin test target/release/lib{{lib}}.so --max 5",
            "emits records numbered 1, 2, 3, …; its position is the next number",
        ),
        PluginKind::Sink => (
            SINK,
            SAMPLE_RECORDS,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl",
            "logs each record's value and counts them",
        ),
        PluginKind::Partitioner => (
            PARTITIONER,
            SAMPLE_RECORDS,
            "fjord plugin test target/release/lib{{lib}}.so --input input.jsonl --partitions 3",
            "chooses the partition by a hash (FNV-1a) of the key; records without a key go to partition 0",
        ),
        PluginKind::Serializer => (
            SERIALIZER,
            SAMPLE_RECORDS,
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
        ("input.jsonl", input.to_owned()),
        (".gitignore", "/target\n".to_owned()),
    ]
}

const CARGO_TOML: &str = r#"[package]
name = "{{name}}"
version = "0.1.0"
edition = "2024"
description = "A Fjord {{kind}} plugin"
publish = false

[lib]
# cdylib: the plugin itself (native library, or WebAssembly component for
# wasm32-wasip2); rlib: so unit tests and other crates can use it.
crate-type = ["cdylib", "rlib"]

[dependencies]
# fjord-sdk is not on crates.io yet: a path to the sdk of a Fjord checkout.
fjord-sdk = { path = {{sdk}} }

# A workspace of its own, even when created inside another one.
[workspace]
"#;

const SAMPLE_RECORDS: &str = r#"{"key":"user-1","value":{"action":"login"}}
{"key":"user-2","value":{"action":"view","page":"/"}}
{"key":"user-1","value":{"action":"logout"},"headers":{"source":"web"}}
"plain text value"
"#;

const README: &str = r#"# {{name}}

A Fjord {{kind}} plugin: {{what}}.

Build it as a native library and as a WebAssembly component:

```sh
fjord plugin build          # or: cargo build --lib --release [--target wasm32-wasip2]
```

Try it on the sample records, and see what it declares:

```sh
cargo test
{{try}}
fjord plugin inspect target/wasm32-wasip2/release/{{lib}}.wasm
```

`src/lib.rs` is the whole plugin: `Plugin` (name, version, config keys,
constructor) and the kind's trait. The SDK guide is docs/plugins.md in the
Fjord repository.
"#;

const PROCESSOR: &str = r#"//! `{{name}}`: a Fjord processor that passes every record through unchanged
//! and counts them (metric `records`).

use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Processor, RecordRef};

/// The processor. One instance handles one partition at a time.
#[derive(Debug, Default)]
pub struct {{type}} {
    seen: u64,
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("passes records through and counts them")
    }

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({{type}}::default())
    }
}

#[fjord_sdk::processor]
impl Processor for {{type}} {
    fn process(
        &mut self,
        record: RecordRef<'_>,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        self.seen += 1;
        ctx.counter("records", 1);
        out.forward(&record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::Harness;

    #[test]
    fn passes_records_through_and_counts_them() -> Result<(), Error> {
        let mut h = Harness::<{{type}}>::new(&[])?;
        let out = h.process(vec![Record::new("a"), Record::new("b").with_key("k")])?;
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].value_str(), Some("a"));
        assert_eq!(out[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(h.host.counter("records"), 2);
        assert_eq!(h.plugin.seen, 2);
        Ok(())
    }
}
"#;

const SOURCE: &str = r#"//! `{{name}}`: a Fjord source that emits records numbered 1, 2, 3, …
//! Its position is the next number, as text, so a restarted pipeline
//! carries on where it stopped.

use fjord_sdk::{BatchWriter, Config, Context, Error, Plugin, PluginInfo, Record, Source};

/// The source.
#[derive(Debug)]
pub struct {{type}} {
    next: u64,
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("emits records numbered 1, 2, 3, …")
    }

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({{type}} { next: 1 })
    }
}

#[fjord_sdk::source]
impl Source for {{type}} {
    fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
        let text = std::str::from_utf8(position)?;
        self.next = text
            .parse()
            .map_err(|e| Error::msg(format!("position `{text}`: {e}")))?;
        Ok(())
    }

    fn poll(&mut self, max: u32, out: &mut BatchWriter, ctx: &mut Context<'_>) -> Result<(), Error> {
        for _ in 0..max {
            out.emit(&Record::new(self.next.to_string()));
            self.next += 1;
        }
        ctx.counter("records", u64::from(max));
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        self.next.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn counts_and_resumes_from_its_position() -> Result<(), Error> {
        let mut h = Harness::<{{type}}>::new(&[])?;
        let (records, position) = h.poll(3)?;
        let values: Vec<_> = records.iter().map(|r| r.value_str()).collect();
        assert_eq!(values, [Some("1"), Some("2"), Some("3")]);
        assert_eq!(position, b"4");

        let mut resumed = Harness::<{{type}}>::new(&[])?;
        resumed.seek(&position)?;
        let (records, _) = resumed.poll(1)?;
        assert_eq!(records[0].value_str(), Some("4"));
        Ok(())
    }
}
"#;

const SINK: &str = r#"//! `{{name}}`: a Fjord sink that logs each record's value (through the
//! host's log) and counts them (metric `records`).

use fjord_sdk::{Config, Context, Error, Level, Plugin, PluginInfo, RecordRef, Sink};

/// The sink.
#[derive(Debug, Default)]
pub struct {{type}} {
    /// Written since the last flush.
    pending: u64,
}

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("logs each record's value")
    }

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({{type}}::default())
    }
}

#[fjord_sdk::sink]
impl Sink for {{type}} {
    fn write(&mut self, record: RecordRef<'_>, ctx: &mut Context<'_>) -> Result<(), Error> {
        let value = record
            .value
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        ctx.log(Level::Info, &format!("record at offset {}: {value}", record.offset));
        ctx.counter("records", 1);
        self.pending += 1;
        Ok(())
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        ctx.log(Level::Info, &format!("flushed {} records", self.pending));
        self.pending = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::Harness;

    #[test]
    fn logs_every_record() -> Result<(), Error> {
        let mut h = Harness::<{{type}}>::new(&[])?;
        h.write(vec![Record::new("a"), Record::new("b")])?;
        assert_eq!(h.host.counter("records"), 2);
        assert!(h.host.logs.iter().any(|(_, line)| line.ends_with(": b")));
        assert_eq!(h.plugin.pending, 0, "flush resets the count");
        Ok(())
    }
}
"#;

const PARTITIONER: &str = r#"//! `{{name}}`: a Fjord partitioner that chooses the partition by a hash
//! (FNV-1a) of the key. Records without a key go to partition 0.

use fjord_sdk::{Config, Error, Partitioner, Plugin, PluginInfo};

/// The partitioner.
#[derive(Debug)]
pub struct {{type}};

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("partition by a hash of the key")
    }

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({{type}})
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[fjord_sdk::partitioner]
impl Partitioner for {{type}} {
    fn partition(&mut self, key: Option<&[u8]>, _value: Option<&[u8]>, partition_count: u32) -> u32 {
        match key {
            Some(key) => fnv1a(key) % partition_count.max(1),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn same_key_same_partition() -> Result<(), Error> {
        let mut h = Harness::<{{type}}>::new(&[])?;
        let a = h.partition(Some(b"user-1"), None, 3);
        assert!(a < 3);
        assert_eq!(h.partition(Some(b"user-1"), Some(b"other value"), 3), a);
        assert_eq!(h.partition(None, Some(b"v"), 3), 0);
        Ok(())
    }
}
"#;

const SERIALIZER: &str = r#"//! `{{name}}`: a Fjord serializer that stores values as they are
//! (identity) — the place to put a real format.

use fjord_sdk::{Config, Error, Plugin, PluginInfo, Serializer};

/// The serializer.
#[derive(Debug)]
pub struct {{type}};

impl Plugin for {{type}} {
    fn info() -> PluginInfo {
        PluginInfo::new("{{name}}", env!("CARGO_PKG_VERSION"))
            .description("stores values unchanged")
    }

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok({{type}})
    }
}

#[fjord_sdk::serializer]
impl Serializer for {{type}} {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(input.to_vec())
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn round_trips() -> Result<(), Error> {
        let mut h = Harness::<{{type}}>::new(&[])?;
        let stored = h.serialize(b"{\"a\":1}")?;
        assert_eq!(h.deserialize(&stored)?, b"{\"a\":1}");
        Ok(())
    }
}
"#;

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
