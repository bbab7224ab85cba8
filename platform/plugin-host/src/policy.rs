//! What the operator lets plugins reach on the host: the directories
//! native libraries load from, and the files, listening addresses and
//! destinations pipelines may use.
//!
//! Built-in connectors (`file`, `http`, `syslog`, `prometheus`) are
//! trusted code that does what its configuration says, and WebAssembly
//! plugins get what their grants say; a manifest's author writes both, so
//! neither is trusted: the host checks the configuration and the grants
//! against this policy before an instance is made (and validation checks
//! them before anything is loaded), never relying on the plugin to check.
//! Native libraries are not confined once loaded, so the only check is
//! where they come from.
//!
//! Paths compare by components after resolving symbolic links and `..`
//! (for a file not there yet, its nearest existing ancestor), so neither
//! can lead out of an allowed directory. Addresses compare by IP; a host
//! name in a manifest matches only the same name in the policy, never what
//! it resolves to (which its owner could change after the check).

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};

use fjord_sdk::{Config, PluginInfo, PluginKind};

use crate::Capabilities;

/// The setting listing the directories native plugins load from.
pub const NATIVE_DIRS: &str = "plugin.native.dirs";
/// The setting listing the directories pipelines may read and write.
pub const ALLOWED_PATHS: &str = "pipeline.allowed.paths";
/// The setting listing the addresses pipelines may listen on.
pub const ALLOWED_LISTEN: &str = "pipeline.allowed.listen";
/// The setting listing the destinations pipelines may connect to.
pub const ALLOWED_CONNECT: &str = "pipeline.allowed.connect";

/// Loopback, the default of [`ALLOWED_LISTEN`] and [`ALLOWED_CONNECT`]:
/// any port.
pub const LOOPBACK: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// The operator's allowances. The default allows no native library, no
/// path, and loopback addresses only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    /// `plugin.native.dirs`: directories native libraries may be loaded
    /// from.
    pub native_dirs: Vec<PathBuf>,
    /// `pipeline.allowed.paths`: directories whose files connectors may
    /// read and write and WebAssembly plugins may be granted.
    pub paths: Vec<PathBuf>,
    /// `pipeline.allowed.listen`: `host`, `host:port` or `*` entries
    /// connectors may listen on (a bare host: any port).
    pub listen: Vec<String>,
    /// `pipeline.allowed.connect`: the same for outbound connections
    /// (connectors and WebAssembly `network` grants).
    pub connect: Vec<String>,
}

impl Default for HostPolicy {
    fn default() -> Self {
        HostPolicy {
            native_dirs: Vec::new(),
            paths: Vec::new(),
            listen: LOOPBACK.map(String::from).to_vec(),
            connect: LOOPBACK.map(String::from).to_vec(),
        }
    }
}

/// A refusal: the field of the plugin's place in a manifest it concerns
/// (`config.path`, `capabilities.dirs[0].host`, `plugin`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub reason: String,
}

/// How a built-in uses one of its config keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Reads,
    Writes,
    Listens,
    /// An `http://` or `https://` URL it sends requests to.
    Requests,
}

/// The config keys by which each built-in reaches the host. A built-in
/// that opens a file, a listener or a connection must be listed here: this
/// table, not the plugin, decides what is checked.
fn host_keys(name: &str, kind: PluginKind) -> &'static [(&'static str, Use)] {
    match (name, kind) {
        ("file", PluginKind::Source) => &[("path", Use::Reads)],
        ("file", PluginKind::Sink) => &[("path", Use::Writes)],
        ("http", PluginKind::Source) => &[("listen", Use::Listens), ("bound_file", Use::Writes)],
        ("http", PluginKind::Sink) => &[("url", Use::Requests)],
        ("syslog", PluginKind::Source) => &[("listen", Use::Listens)],
        ("prometheus", PluginKind::Sink) => {
            &[("listen", Use::Listens), ("bound_file", Use::Writes)]
        }
        _ => &[],
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "empty".to_owned();
    }
    let shown: Vec<String> = items.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

impl HostPolicy {
    /// Whether a built-in's configuration stays inside the policy. Keys
    /// left out are checked at their default value.
    pub fn check_builtin(&self, info: &PluginInfo, config: &Config) -> Result<(), Refusal> {
        for &(key, how) in host_keys(&info.name, info.kind) {
            let default = info
                .config_keys
                .iter()
                .find(|k| k.name == key)
                .and_then(|k| k.default_value.as_deref());
            let Some(value) = config.get(key).or(default) else {
                continue;
            };
            let what = format!("{} {} `{key}`", info.name, info.kind);
            let refused = |reason: String| Refusal {
                field: format!("config.{key}"),
                reason,
            };
            match how {
                Use::Reads | Use::Writes => self
                    .check_path(&what, Path::new(value), "its directory")
                    .map_err(refused)?,
                Use::Listens => self.check_listen(&what, value).map_err(refused)?,
                Use::Requests => {
                    let target = url_authority(value).ok_or_else(|| {
                        refused(format!(
                            "{what}: {value:?} is not an http:// or https:// URL"
                        ))
                    })?;
                    self.check_connect(&what, &target).map_err(refused)?
                }
            }
        }
        Ok(())
    }

    /// Whether WebAssembly grants stay inside the policy: every directory
    /// under `pipeline.allowed.paths`, every network destination in
    /// `pipeline.allowed.connect`.
    pub fn check_grants(&self, caps: &Capabilities) -> Result<(), Refusal> {
        for (i, dir) in caps.dirs.iter().enumerate() {
            self.check_path("directory grant", &dir.host, "the directory")
                .map_err(|reason| Refusal {
                    field: format!("capabilities.dirs[{i}].host"),
                    reason,
                })?;
        }
        for (i, target) in caps.network.iter().enumerate() {
            self.check_connect("network grant", target)
                .map_err(|reason| Refusal {
                    field: format!("capabilities.network[{i}]"),
                    reason,
                })?;
        }
        Ok(())
    }

    /// `path` with symbolic links resolved, if it is inside one of
    /// `plugin.native.dirs`.
    pub fn check_native(&self, path: &Path) -> Result<PathBuf, Refusal> {
        let refused = |reason: String| Refusal {
            field: "plugin".into(),
            reason,
        };
        let real = path
            .canonicalize()
            .map_err(|e| refused(format!("{}: {e}", path.display())))?;
        if !inside(&real, &self.native_dirs) {
            return Err(refused(format!(
                "native library {} is outside {NATIVE_DIRS} ({}); native plugins run \
                 unconfined inside the broker, so they load only from directories the \
                 operator lists: add its directory to {NATIVE_DIRS}, or use the plugin's \
                 WebAssembly build",
                real.display(),
                list(&display_paths(&self.native_dirs)),
            )));
        }
        Ok(real)
    }

    /// An error unless `path` is inside `pipeline.allowed.paths`;
    /// `add` says what to add to the setting.
    fn check_path(&self, what: &str, path: &Path, add: &str) -> Result<(), String> {
        let real = resolve(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
        if inside(&real, &self.paths) {
            return Ok(());
        }
        Err(format!(
            "{what} {} is outside {ALLOWED_PATHS} ({}); add {add} to {ALLOWED_PATHS}",
            real.display(),
            list(&display_paths(&self.paths)),
        ))
    }

    fn check_listen(&self, what: &str, address: &str) -> Result<(), String> {
        check_address(what, address, &self.listen, ALLOWED_LISTEN)
    }

    fn check_connect(&self, what: &str, address: &str) -> Result<(), String> {
        check_address(what, address, &self.connect, ALLOWED_CONNECT)
    }

    /// Problems of the policy itself: a directory both pipelines may write
    /// and native libraries load from would let a pipeline write a library
    /// the broker then runs.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for native in &self.native_dirs {
            let Ok(native_real) = resolve(native) else {
                continue;
            };
            for path in &self.paths {
                let Ok(path_real) = resolve(path) else {
                    continue;
                };
                if native_real.starts_with(&path_real) || path_real.starts_with(&native_real) {
                    out.push(format!(
                        "{NATIVE_DIRS} {} overlaps {ALLOWED_PATHS} {}: a pipeline could write \
                         a library there that the broker would then load",
                        native.display(),
                        path.display()
                    ));
                }
            }
        }
        out
    }
}

fn display_paths(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// Whether `real` (resolved) is one of `roots` or below one.
fn inside(real: &Path, roots: &[PathBuf]) -> bool {
    roots
        .iter()
        .filter_map(|root| resolve(root).ok())
        .any(|root| real.starts_with(root))
}

/// `path` made absolute with symbolic links and `..` resolved. For a path
/// that does not exist (yet), its nearest existing ancestor is resolved and
/// the rest appended; that rest must be plain names.
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    // `symlink_metadata`, not `exists`: a dangling link is there, and
    // creating the file would follow it.
    while std::fs::symlink_metadata(existing).is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut real = existing.canonicalize()?;
    for name in rest.iter().rev() {
        real.push(name);
    }
    // `absolute` keeps `..`; below a missing directory it cannot be resolved.
    if real
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "`..` below a directory that does not exist",
        ));
    }
    Ok(real)
}

/// `host` and optional port of `text`: `host:port`, `[v6]:port`, `[v6]`,
/// a bare IPv6 address, or a bare host.
fn split_host_port(text: &str) -> (String, Option<String>) {
    if let Some(rest) = text.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').map(str::to_owned);
        return (host.to_owned(), port);
    }
    if text.parse::<IpAddr>().is_ok() {
        return (text.to_owned(), None);
    }
    match text.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), Some(port.to_owned())),
        None => (text.to_owned(), None),
    }
}

/// Whether the policy entry `entry` allows `host:port`.
fn entry_allows(entry: &str, host: &str, port: u16) -> bool {
    let (entry_host, entry_port) = split_host_port(entry.trim());
    let port_ok = match entry_port.as_deref() {
        None | Some("*") => true,
        Some(p) => p.parse::<u16>() == Ok(port),
    };
    if !port_ok {
        return false;
    }
    if entry_host == "*" || entry_host.eq_ignore_ascii_case(host) {
        return true;
    }
    // An address matches an entry's address, or one of the addresses the
    // operator's host name resolves to; a name only its own spelling.
    let Ok(ip) = host.parse::<IpAddr>() else {
        return false;
    };
    match entry_host.parse::<IpAddr>() {
        Ok(entry_ip) => entry_ip == ip,
        Err(_) => (entry_host.as_str(), 0)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == ip)),
    }
}

fn check_address(
    what: &str,
    address: &str,
    allowed: &[String],
    setting: &str,
) -> Result<(), String> {
    let (host, port) = split_host_port(address);
    let port = port
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|_| !host.is_empty())
        .ok_or_else(|| format!("{what}: {address:?} is not host:port"))?;
    if allowed.iter().any(|e| entry_allows(e, &host, port)) {
        return Ok(());
    }
    Err(format!(
        "{what} {address} is outside {setting} ({}); add {address} (or its host, for any \
         port) to {setting}",
        list(allowed),
    ))
}

/// `host:port` of an `http://` or `https://` URL, the scheme's port when
/// none is given.
fn url_authority(url: &str) -> Option<String> {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    // user:password@host:port
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return None;
    }
    let port = port.unwrap_or_else(|| default_port.to_string());
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_match_by_ip_or_by_the_same_name() {
        let loopback = HostPolicy::default().listen;
        for ok in ["127.0.0.1:8080", "[::1]:1", "localhost:9000", "127.0.0.1:0"] {
            assert!(
                check_address("x", ok, &loopback, ALLOWED_LISTEN).is_ok(),
                "{ok}"
            );
        }
        for refused in ["0.0.0.0:8080", "10.0.0.1:80", "[::]:80", "example.com:80"] {
            let e = check_address("x", refused, &loopback, ALLOWED_LISTEN).unwrap_err();
            assert!(e.contains(ALLOWED_LISTEN), "{e}");
        }
        let entries = ["0.0.0.0:9100".to_owned(), "api.example.com".to_owned()];
        assert!(check_address("x", "0.0.0.0:9100", &entries, ALLOWED_LISTEN).is_ok());
        assert!(check_address("x", "0.0.0.0:9101", &entries, ALLOWED_LISTEN).is_err());
        assert!(check_address("x", "API.example.com:443", &entries, ALLOWED_LISTEN).is_ok());
        assert!(check_address("x", "*:1", &["*".to_owned()], ALLOWED_LISTEN).is_ok());
        assert!(check_address("x", "nonsense", &entries, ALLOWED_LISTEN).is_err());
    }

    #[test]
    fn urls_give_host_and_port() {
        assert_eq!(
            url_authority("http://u:p@localhost/x?y").as_deref(),
            Some("localhost:80")
        );
        assert_eq!(
            url_authority("https://[::1]:8443/").as_deref(),
            Some("[::1]:8443")
        );
        assert_eq!(url_authority("ftp://x"), None);
    }

    #[test]
    fn paths_cannot_leave_by_dots_or_links() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir(&allowed).unwrap();
        let policy = HostPolicy {
            paths: vec![allowed.clone()],
            ..HostPolicy::default()
        };
        let check = |p: &Path| policy.check_path("file sink `path`", p, "its directory");
        assert!(check(&allowed.join("new.txt")).is_ok());
        assert!(check(&allowed.join("new-dir/new.txt")).is_ok());
        let e = check(&allowed.join("../out.txt")).unwrap_err();
        assert!(e.contains("outside pipeline.allowed.paths"), "{e}");
        assert!(check(&allowed.join("missing/../../out.txt")).is_err());
        std::os::unix::fs::symlink(dir.path(), allowed.join("up")).unwrap();
        assert!(check(&allowed.join("up/out.txt")).is_err());
        // A dangling link: creating the file would create its target.
        std::os::unix::fs::symlink(dir.path().join("target"), allowed.join("dangling")).unwrap();
        assert!(check(&allowed.join("dangling")).is_err());
        // A sibling whose name starts the same is not inside.
        assert!(check(&dir.path().join("allowed-not/x")).is_err());
    }
}
