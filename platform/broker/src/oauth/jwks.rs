//! Where the JWKS comes from (a file, or an `https://` URL fetched with
//! ureq over rustls, verified against the web PKI's roots or the CAs of a
//! configured truststore; an OIDC provider's discovery document
//! (`…/.well-known/openid-configuration`) is followed to its `jwks_uri`)
//! and which of its keys can check a signature. Bounded: at most
//! [`MAX_JWKS_BYTES`] are read (of each document) and [`MAX_KEYS`] keys
//! kept; keys this broker cannot use (symmetric ones, encryption keys,
//! unknown types) are skipped, not fatal, since issuers publish such keys
//! next to their signing keys.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The largest JWKS read (issuers' sets are a few KiB).
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// The most keys kept from a JWKS.
pub const MAX_KEYS: usize = 100;

/// How long an `https://` fetch may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The path that marks an OIDC discovery document (RFC 8414's and OpenID
/// Connect Discovery's well-known name).
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Where the JWKS is read from.
#[derive(Debug)]
pub(super) enum Source {
    File(PathBuf),
    Https {
        url: String,
        /// The truststore's CAs; `None`: the web PKI's roots.
        roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    },
}

/// A key that can check signatures, with the algorithms it checks.
#[derive(Clone)]
pub(super) struct Key {
    pub kid: Option<String>,
    pub decoding: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// `file:///path`, `file:/path`, a bare path, or `https://…` (whose
    /// server is verified against the CAs of `truststore`, a PEM file, when
    /// given). Plain `http://` is refused: the keys decide who may log in.
    pub(super) fn parse(url: &str, truststore: Option<&Path>) -> Result<Source, String> {
        if url.starts_with("https://") {
            let roots = truststore.map(read_roots).transpose()?;
            return Ok(Source::Https {
                url: url.to_owned(),
                roots,
            });
        }
        if url.starts_with("http://") {
            return Err(format!(
                "{url:?}: a JWKS is fetched over https:// only (or read from a file)"
            ));
        }
        let path = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err("empty".to_string());
        }
        Ok(Source::File(PathBuf::from(path)))
    }

    pub(super) fn is_remote(&self) -> bool {
        matches!(self, Source::Https { .. })
    }

    /// Reads the JWKS and keeps its usable keys.
    pub(super) fn load(&self) -> Result<Vec<Key>, String> {
        let text = match self {
            Source::File(path) => {
                let file =
                    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut text = String::new();
                file.take(MAX_JWKS_BYTES + 1)
                    .read_to_string(&mut text)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if text.len() as u64 > MAX_JWKS_BYTES {
                    return Err(format!("{}: over {MAX_JWKS_BYTES} bytes", path.display()));
                }
                text
            }
            Source::Https { url, roots } => {
                let mut config = ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT));
                if let Some(roots) = roots {
                    config = config.tls_config(
                        ureq::tls::TlsConfig::builder()
                            .root_certs(ureq::tls::RootCerts::new_with_certs(roots))
                            .build(),
                    );
                }
                let agent: ureq::Agent = config.build().into();
                let text = fetch(&agent, url)?;
                if is_discovery(url) {
                    let jwks_uri = jwks_uri(&text).map_err(|why| format!("{url}: {why}"))?;
                    fetch(&agent, &jwks_uri)?
                } else {
                    text
                }
            }
        };
        parse(&text)
    }
}

/// The body of `url`, at most [`MAX_JWKS_BYTES`].
fn fetch(agent: &ureq::Agent, url: &str) -> Result<String, String> {
    agent
        .get(url)
        .call()
        .map_err(|e| format!("{url}: {e}"))?
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}

/// Whether `url` names an OIDC discovery document rather than a JWKS.
fn is_discovery(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.ends_with(DISCOVERY_PATH)
}

/// The `jwks_uri` of a discovery document: `https://` only, as the JWKS
/// URL itself.
fn jwks_uri(document: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        jwks_uri: Option<String>,
    }
    let discovery: Discovery = serde_json::from_str(document)
        .map_err(|e| format!("not an OpenID discovery document: {e}"))?;
    match discovery.jwks_uri {
        Some(uri) if uri.starts_with("https://") => Ok(uri),
        Some(uri) => Err(format!("its jwks_uri {uri:?} is not an https:// URL")),
        None => Err("the discovery document has no jwks_uri".to_owned()),
    }
}

/// The CA certificates of a PEM truststore.
fn read_roots(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut roots = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(cert) =
            item.map_err(|e| format!("{}: {e}", path.display()))?
        {
            roots.push(cert);
        }
    }
    if roots.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    Ok(roots)
}

/// The usable keys of a JWKS document.
fn parse(text: &str) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_str(text).map_err(|e| format!("not a JWKS: {e}"))?;
    if set.keys.len() > MAX_KEYS {
        return Err(format!("over {MAX_KEYS} keys"));
    }
    let mut keys = Vec::new();
    for value in set.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::debug!(error = %e, "JWKS key skipped: not one this broker reads");
                continue;
            }
        };
        if let Some(key) = usable(&jwk) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// A signing key's decoding key and algorithms; `None` for a key that
/// must not or cannot check signatures.
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    use Algorithm::*;
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![EdDSA]
        }
        // Symmetric keys: never (see the module docs of `oauth`).
        AlgorithmParameters::OctetKeyPair(_) | AlgorithmParameters::OctetKey(_) => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => family,
        Some(stated) => {
            let stated = match stated {
                KeyAlgorithm::RS256 => RS256,
                KeyAlgorithm::RS384 => RS384,
                KeyAlgorithm::RS512 => RS512,
                KeyAlgorithm::PS256 => PS256,
                KeyAlgorithm::PS384 => PS384,
                KeyAlgorithm::PS512 => PS512,
                KeyAlgorithm::ES256 => ES256,
                KeyAlgorithm::ES384 => ES384,
                KeyAlgorithm::EdDSA => EdDSA,
                _ => return None,
            };
            if !family.contains(&stated) {
                return None;
            }
            vec![stated]
        }
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        decoding,
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_documents_name_an_https_jwks() {
        assert!(is_discovery(
            "https://sso.example/realms/k/.well-known/openid-configuration"
        ));
        assert!(is_discovery(
            "https://sso.example/.well-known/openid-configuration?x=1"
        ));
        assert!(!is_discovery("https://sso.example/realms/k/certs"));
        assert_eq!(
            jwks_uri(r#"{"issuer":"i","jwks_uri":"https://sso.example/certs"}"#).unwrap(),
            "https://sso.example/certs"
        );
        for bad in [
            r#"{"jwks_uri":"http://sso.example/certs"}"#,
            r#"{"issuer":"i"}"#,
            "[]",
        ] {
            assert!(jwks_uri(bad).is_err(), "{bad}");
        }
        // A truststore without a certificate is refused up front.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = Source::parse("https://sso.example/certs", Some(&empty)).unwrap_err();
        assert!(error.contains("no CERTIFICATE"), "{error}");
    }
}
