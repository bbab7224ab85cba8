//! The door of the admin listener: which requests reach a handler at all.
//!
//! Anything that can make a browser send a request could otherwise drive
//! the API: a page on another site posting a `text/plain` body (no CORS
//! preflight for that), or a page whose own name an attacker points at
//! 127.0.0.1 (DNS rebinding: the browser then calls it same-origin). So,
//! in this order, on every route:
//!
//! 1. `Host` must name this server (421): a loopback name, the address the
//!    connection arrived at, or one of `admin.allowed.hosts`. Any port:
//!    a proxy or port forward may change it, and a rebinding attacker
//!    controls the name, not the port.
//! 2. `Origin`, when sent, must be the API's own origin (403): `http://`
//!    (`https://` on a TLS listener) and the `Host` the request came to.
//! 3. `POST`, `PUT`, `PATCH` and `DELETE` must say `Content-Type:
//!    application/json` (`application/yaml` also for a manifest) (415):
//!    types no cross-site form or simple request can send.
//!
//! CORS stays closed: no `Access-Control-Allow-*` header is ever sent, and
//! `OPTIONS` is not a route. Described in `docs/security.md`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::ApiError;
use crate::listener::Arrival;

/// Names every admin listener answers to, whatever `admin.allowed.hosts`
/// says: a page can only send them from the machine's own origin.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The host names (besides loopback and the arrival address) that `Host`
/// may carry: `admin.allowed.hosts`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedHosts {
    names: Vec<String>,
    /// `*` in the list: any `Host` (for a proxy that checks it itself).
    any: bool,
}

impl AllowedHosts {
    /// `names` as configured: host names or IPs, IPv6 with or without
    /// brackets; a port, if given, is ignored.
    pub(crate) fn new(names: &[String]) -> Self {
        AllowedHosts {
            any: names.iter().any(|n| n.trim() == "*"),
            names: names
                .iter()
                .filter(|n| n.trim() != "*")
                .map(|n| normalize(split_host(n.trim()).0))
                .collect(),
        }
    }

    fn allows(&self, host: &str, arrival: Option<SocketAddr>) -> bool {
        let host = normalize(host);
        if self.any || LOOPBACK.contains(&host.as_str()) || self.names.contains(&host) {
            return true;
        }
        // The IP the connection came to is this server by definition, and
        // an IP literal is not a name anyone can rebind.
        let arrived = arrival.map(|a| a.ip().to_canonical());
        host.parse::<IpAddr>()
            .is_ok_and(|ip| Some(ip.to_canonical()) == arrived && !ip.is_unspecified())
    }
}

/// Lower case, without brackets or a trailing dot: `[::1]` is `::1`,
/// `LocalHost.` is `localhost`.
fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `host[:port]` (`[v6]:port` for IPv6) as (host, port).
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        // One colon: host and port. More: an IPv6 address without brackets.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// The middleware: refuses, with the API's JSON error, what a browser on
/// another site could send (see the module documentation).
pub(crate) async fn check(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let arrival = request
        .extensions()
        .get::<ConnectInfo<Arrival>>()
        .map(|c| c.0.local);
    let tls = request
        .extensions()
        .get::<ConnectInfo<Arrival>>()
        .is_some_and(|c| c.0.tls);
    let headers = request.headers();
    // HTTP/2 names the host in the request's authority instead; an
    // HTTP/1.1 request in absolute form has both, and both must pass.
    let authority = request.uri().authority().map(|a| a.as_str());
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority)
        .map(str::trim)
        .unwrap_or_default();
    let (host_name, host_port) = split_host(host);
    if host.is_empty() {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "the request has no Host header; the admin API answers only requests naming it",
        ));
    }
    for name in [Some(host_name), authority.map(|a| split_host(a).0)]
        .into_iter()
        .flatten()
    {
        if !allowed.allows(name, arrival) {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host {name} is not one of admin.allowed.hosts (loopback names and the \
                     address the request came to are always allowed); add it to the \
                     broker's admin.allowed.hosts if this server should answer to it"
                ),
            ));
        }
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)").trim();
        // The scheme is the listener's: a page served over HTTP may not
        // drive the HTTPS API, nor the reverse.
        let (scheme, default_port) = if tls {
            ("https", "443")
        } else {
            ("http", "80")
        };
        let own = origin
            .strip_prefix(scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .map(split_host)
            .is_some_and(|(name, port)| {
                normalize(name) == normalize(host_name)
                    && port.unwrap_or(default_port) == host_port.unwrap_or(default_port)
            });
        if !own {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Origin {origin} is not this API's own origin ({scheme}://{host}): the admin \
                     API answers no other site's pages; call it from its own console, or \
                     from a program that sends no Origin"
                ),
            ));
        }
    }
    let changes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    if changes.contains(request.method()) {
        let media_type = headers
            .get(CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let manifest =
            request.method() == Method::POST && request.uri().path() == "/api/v1/pipelines";
        let accepted = media_type == "application/json"
            || (manifest && ["application/yaml", "application/x-yaml"].contains(&&*media_type));
        if !accepted {
            let wanted = if manifest {
                "Content-Type: application/yaml (or application/json)"
            } else {
                "Content-Type: application/json"
            };
            let sent = if media_type.is_empty() {
                "none".to_owned()
            } else {
                media_type
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{} {} needs {wanted}, not {sent}: the admin API takes no body a \
                     cross-site form could send",
                    request.method(),
                    request.uri().path()
                ),
            ));
        }
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_split_and_normalized() {
        assert_eq!(split_host("localhost:9644"), ("localhost", Some("9644")));
        assert_eq!(split_host("[::1]:9644"), ("::1", Some("9644")));
        assert_eq!(split_host("[::1]"), ("::1", None));
        assert_eq!(split_host("::1"), ("::1", None));
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(normalize("LocalHost."), "localhost");
    }

    #[test]
    fn loopback_the_arrival_ip_and_listed_names_are_allowed() {
        let arrival = Some(SocketAddr::from(([10, 0, 0, 5], 9644)));
        let allowed =
            AllowedHosts::new(&["Broker-1.internal".to_owned(), "[fd00::2]:80".to_owned()]);
        for host in [
            "localhost",
            "127.0.0.1",
            "::1",
            "broker-1.internal",
            "fd00::2",
            "10.0.0.5",
        ] {
            assert!(allowed.allows(host, arrival), "{host}");
        }
        for host in [
            "evil.example",
            "10.0.0.6",
            "0.0.0.0",
            "localhost.evil.example",
        ] {
            assert!(!allowed.allows(host, arrival), "{host}");
        }
        assert!(AllowedHosts::new(&["*".to_owned()]).allows("evil.example", None));
    }
}
