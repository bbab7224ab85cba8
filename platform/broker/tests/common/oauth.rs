//! An issuer for tests: a P-256 key made here (rcgen), its JWKS written to
//! a file, and ES256 tokens signed with it (jsonwebtoken).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

pub const ISSUER: &str = "https://idp.test/realms/kafka";
pub const AUDIENCE: &str = "fjord";

pub struct Issuer {
    kid: String,
    key: EncodingKey,
    jwk: serde_json::Value,
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

impl Issuer {
    pub fn new(kid: &str) -> Issuer {
        let pair = rcgen::KeyPair::generate().expect("a P-256 key");
        let raw = pair.public_key_raw();
        Issuer {
            kid: kid.to_owned(),
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
            }),
        }
    }

    /// Writes the JWKS holding this issuer's key to `dir/jwks.json`.
    pub fn write_jwks(&self, dir: &Path) -> PathBuf {
        let path = dir.join("jwks.json");
        std::fs::write(&path, json!({ "keys": [self.jwk] }).to_string()).expect("jwks written");
        path
    }

    /// A token for `sub` expiring at `exp`, for `aud`.
    pub fn token_for(&self, sub: &str, aud: &str, exp: u64) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let claims = json!({
            "sub": sub, "aud": aud, "iss": ISSUER, "exp": exp, "iat": now_s(),
            "scope": "kafka",
        });
        jsonwebtoken::encode(&header, &claims, &self.key).expect("signed")
    }

    /// A good token for `sub`, valid `lifetime_s` seconds.
    pub fn token(&self, sub: &str, lifetime_s: u64) -> String {
        self.token_for(sub, AUDIENCE, now_s() + lifetime_s)
    }
}

/// The broker settings that trust `jwks`.
pub fn broker_yaml(jwks: &Path) -> String {
    format!(
        "sasl.oauthbearer.jwks.endpoint.url: file://{}\n\
         sasl.oauthbearer.expected.audience: {AUDIENCE}\n\
         sasl.oauthbearer.expected.issuer: {ISSUER}\n",
        jwks.display()
    )
}
