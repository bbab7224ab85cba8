//! What a WebAssembly plugin may reach outside its sandbox. Nothing unless
//! granted: the pipeline manifest's `capabilities` lists it, and the host's
//! [`HostPolicy`](crate::HostPolicy) bounds what may be granted.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// A host directory visible to the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it (e.g. `/data`).
    pub guest: String,
    pub read_only: bool,
}

/// The capabilities granted to one plugin instance. The default grants
/// nothing. Native plugins are not confined by this (only where they load
/// from is checked); built-in connectors are checked by the policy instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub dirs: Vec<DirGrant>,
    /// Outbound TCP destinations, as `host:port`.
    pub network: Vec<String>,
    /// Environment variables the plugin sees.
    pub env: Vec<(String, String)>,
}

impl Capabilities {
    /// The socket addresses the `network` grants resolve to now.
    pub fn resolve_network(&self) -> Result<Vec<SocketAddr>, String> {
        let mut out = Vec::new();
        for target in &self.network {
            let addrs = target
                .to_socket_addrs()
                .map_err(|e| format!("network grant `{target}`: {e}"))?;
            out.extend(addrs);
        }
        Ok(out)
    }
}
