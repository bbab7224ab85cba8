//! Where the JWKS comes from (a file, or an `https://` URL fetched with
//! ureq over rustls and the web PKI's roots) and which of its keys can
//! check a signature. Bounded: at most [`MAX_JWKS_BYTES`] are read and
//! [`MAX_KEYS`] keys kept; keys this broker cannot use (symmetric ones,
//! encryption keys, unknown types) are skipped, not fatal, since issuers
//! publish such keys next to their signing keys.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// The largest JWKS read (issuers' sets are a few KiB).
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;

/// The most keys kept from a JWKS.
pub const MAX_KEYS: usize = 100;

/// How long an `https://` fetch may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the JWKS is read from.
#[derive(Debug)]
pub(super) enum Source {
    File(PathBuf),
    Https(String),
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
    /// `file:///path`, `file:/path`, a bare path, or `https://…`. Plain
    /// `http://` is refused: the keys decide who may log in.
    pub(super) fn parse(url: &str) -> Result<Source, String> {
        if url.starts_with("https://") {
            return Ok(Source::Https(url.to_owned()));
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
        matches!(self, Source::Https(_))
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
            Source::Https(url) => {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(FETCH_TIMEOUT))
                    .build()
                    .into();
                agent
                    .get(url)
                    .call()
                    .map_err(|e| format!("{url}: {e}"))?
                    .body_mut()
                    .with_config()
                    .limit(MAX_JWKS_BYTES)
                    .read_to_string()
                    .map_err(|e| format!("{url}: {e}"))?
            }
        };
        parse(&text)
    }
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
