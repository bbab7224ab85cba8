//! OAuth 2 bearer tokens (JWTs) as Kafka's OAuthBearerValidatorCallbackHandler
//! (KIP-768) checks them: signed by a key of the configured JWKS
//! (`sasl.oauthbearer.jwks.endpoint.url`, a file, an `https://` URL, or an
//! OIDC provider's discovery document naming it; a private CA for the
//! https client comes from Kafka's `ssl.truststore.location` option of the
//! OAuthBearerLoginModule line),
//! unexpired, for the expected audience and issuer; the principal is
//! `User:<sub claim>`.
//!
//! [`TokenValidator`] is public so that other front doors (the admin HTTP
//! API's bearer tokens) accept exactly what the Kafka port's OAUTHBEARER
//! accepts. [`client_first`] reads OAUTHBEARER's one client message (RFC
//! 7628, as Kafka's OAuthBearerSaslServer).
//!
//! What is refused, and why:
//! - no signature (`alg: none`), or an HMAC one: a JWKS holds public keys,
//!   and a public key used as an HMAC secret lets anyone sign;
//! - a key the JWKS does not have (`kid`): the JWKS is fetched again at
//!   most once per [`UNKNOWN_KID_REFETCH`] for it (an issuer that rotated
//!   its keys is followed; a client inventing `kid`s costs one fetch per
//!   interval, whatever its rate);
//! - no `exp`, an `exp` past, an `nbf` or `iat` ahead (each with
//!   `sasl.oauthbearer.clock.skew.seconds`' leeway);
//! - a JWKS over [`MAX_JWKS_BYTES`] or [`MAX_KEYS`] keys, a token over
//!   [`MAX_TOKEN_BYTES`].
//!
//! Not here: the SASL exchange (`sasl`), what a principal may do (`auth`),
//! the scope claim's use (read and returned, not enforced, as Kafka).

mod jwks;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use parking_lot::{Mutex, RwLock};

use crate::auth::Principal;
use crate::config::BrokerConfig;
use crate::error::BrokerError;

use jwks::{Key, Source};
pub use jwks::{MAX_JWKS_BYTES, MAX_KEYS};

/// The longest token accepted: real access tokens are a few KiB; a bound
/// keeps a hostile one from costing more than parsing that much.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// An unknown `kid` makes the JWKS be fetched again at most this often.
pub const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(10);

/// The callback handler Kafka users name for JWKS validation (either
/// package); `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class`
/// may name it, as it does nothing here beyond what the settings say.
const VALIDATOR_CLASSES: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

/// The login module a Kafka user's `…oauthbearer.sasl.jaas.config` names.
const LOGIN_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// The `sasl.oauthbearer.*` settings a validator applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// `sasl.oauthbearer.jwks.endpoint.url`: `file:` URL, path or `https://` URL.
    pub jwks_url: String,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`: how often the JWKS is
    /// fetched again (when a token is validated after that long).
    pub refresh: Duration,
    /// `sasl.oauthbearer.expected.audience`: when set, a token's `aud`
    /// must contain one of these.
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: when set, a token's `iss` must be it.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim naming the principal.
    pub sub_claim: String,
    /// `sasl.oauthbearer.scope.claim.name`: the claim listing scopes.
    pub scope_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`: leeway on `exp`, `nbf`, `iat`.
    pub clock_skew_seconds: u64,
    /// The CAs an `https://` JWKS server is verified against (a PEM file):
    /// the `ssl.truststore.location` option of a listener's
    /// `…oauthbearer.sasl.jaas.config` line, as Kafka reads it; `None`:
    /// the web PKI's roots.
    pub jwks_truststore: Option<PathBuf>,
}

impl OAuthSettings {
    /// The settings `config` gives, or `None` when no JWKS is configured
    /// (OAUTHBEARER is then off).
    pub fn from_config(config: &BrokerConfig) -> Result<Option<OAuthSettings>, BrokerError> {
        let Some(url) = config.sasl_oauthbearer_jwks_endpoint_url.as_ref() else {
            return Ok(None);
        };
        Ok(Some(OAuthSettings {
            jwks_url: url.trim().to_owned(),
            refresh: Duration::from_millis(config.sasl_oauthbearer_jwks_endpoint_refresh_ms),
            expected_audience: config.sasl_oauthbearer_expected_audience.clone(),
            expected_issuer: config
                .sasl_oauthbearer_expected_issuer
                .clone()
                .filter(|i| !i.is_empty()),
            sub_claim: config.sasl_oauthbearer_sub_claim_name.clone(),
            scope_claim: config.sasl_oauthbearer_scope_claim_name.clone(),
            clock_skew_seconds: config.sasl_oauthbearer_clock_skew_seconds,
            jwks_truststore: jwks_truststore(config)?,
        }))
    }
}

/// The `ssl.truststore.location` of the listeners' OAuthBearerLoginModule
/// lines (Kafka's place for the JWKS client's CAs); one validator serves
/// every listener, so the lines that set it must agree.
fn jwks_truststore(config: &BrokerConfig) -> Result<Option<PathBuf>, BrokerError> {
    let mut found: Option<(String, String)> = None;
    for (key, line) in &config.listener_overrides {
        if !key.ends_with(".oauthbearer.sasl.jaas.config") {
            continue;
        }
        let bad = |why: String| BrokerError::Config(format!("{key}: {why}"));
        let options = crate::jaas::options(line, LOGIN_MODULE).map_err(bad)?;
        if let Some(kind) = options.get("ssl.truststore.type")
            && !kind.eq_ignore_ascii_case("PEM")
        {
            return Err(bad(format!(
                "ssl.truststore.type {kind:?} is not supported; only PEM files are read"
            )));
        }
        let Some(location) = options.get("ssl.truststore.location") else {
            continue;
        };
        match &found {
            Some((other_key, other)) if other != location => {
                return Err(bad(format!(
                    "ssl.truststore.location {location:?} differs from {other_key}'s {other:?}; the JWKS is fetched once for every listener"
                )));
            }
            _ => found = Some((key.clone(), location.clone())),
        }
    }
    Ok(found.map(|(_, location)| PathBuf::from(location)))
}

/// Why a token was refused. The messages are what a client is told: they
/// name what is wrong with the token, never a key or a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("the token is not a signed JWT ({0})")]
    Malformed(String),
    #[error("the token is over {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error(
        "the token's algorithm {0} is not accepted (an asymmetric signature by a JWKS key is required)"
    )]
    Algorithm(String),
    #[error("the token's key id {0:?} is not in the JWKS")]
    UnknownKey(String),
    #[error("the token names no key id (kid) and the JWKS has several keys")]
    NoKeyId,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the token's audience (aud) is not one expected")]
    Audience,
    #[error("the token's issuer (iss) is not the one expected")]
    Issuer,
    #[error("the token has no {0:?} claim")]
    MissingClaim(String),
    #[error("the token's {0:?} claim is not a non-empty string")]
    BadClaim(String),
    #[error("the broker cannot load its JWKS; try again later")]
    KeysUnavailable,
}

/// A token that passed: who it names and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedToken {
    /// `User:<sub claim>`.
    pub principal: Principal,
    /// The token's `exp`.
    pub expires_at: SystemTime,
    /// The scope claim's entries (a space-separated string or a list).
    pub scopes: Vec<String>,
}

/// Checks bearer tokens against a JWKS it keeps, refreshed as configured.
///
/// `validate` may read the JWKS file or fetch its URL (a refresh, an
/// unknown `kid`): call it from a blocking thread
/// (`tokio::task::spawn_blocking`), not on an async worker.
#[derive(Debug)]
pub struct TokenValidator {
    settings: OAuthSettings,
    source: Source,
    keys: RwLock<Keys>,
    fetches: Mutex<Fetches>,
}

#[derive(Debug, Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    /// Keys without a `kid`: usable by tokens without one.
    anonymous: Vec<Key>,
}

impl Keys {
    fn len(&self) -> usize {
        self.by_kid.len() + self.anonymous.len()
    }
}

#[derive(Debug, Default)]
struct Fetches {
    /// The last fetch that succeeded.
    loaded: Option<Instant>,
    /// The last fetch tried for an unknown `kid`.
    unknown_kid: Option<Instant>,
}

impl TokenValidator {
    /// A validator for `config`'s settings (`None` when no JWKS is
    /// configured). A JWKS file must load now; an `https://` JWKS that
    /// cannot be fetched now is logged and fetched again when a token
    /// comes (the issuer may be down while the broker starts).
    pub fn from_config(config: &BrokerConfig) -> Result<Option<TokenValidator>, BrokerError> {
        OAuthSettings::from_config(config)?
            .map(TokenValidator::new)
            .transpose()
    }

    /// A validator for `settings`; see [`TokenValidator::from_config`].
    pub fn new(settings: OAuthSettings) -> Result<TokenValidator, BrokerError> {
        let source = Source::parse(&settings.jwks_url, settings.jwks_truststore.as_deref())
            .map_err(|why| {
                BrokerError::Config(format!("sasl.oauthbearer.jwks.endpoint.url: {why}"))
            })?;
        if settings.sub_claim.is_empty() {
            return Err(BrokerError::Config(
                "sasl.oauthbearer.sub.claim.name is empty".to_string(),
            ));
        }
        let validator = TokenValidator {
            settings,
            source,
            keys: RwLock::new(Keys::default()),
            fetches: Mutex::new(Fetches::default()),
        };
        match validator.fetch() {
            Ok(()) => {}
            Err(why) if validator.source.is_remote() => {
                tracing::warn!(url = %validator.settings.jwks_url, error = %why, "cannot fetch the OAUTHBEARER JWKS now; trying again when a token comes");
            }
            Err(why) => {
                return Err(BrokerError::Config(format!(
                    "sasl.oauthbearer.jwks.endpoint.url: {why}"
                )));
            }
        }
        Ok(validator)
    }

    /// The settings it applies.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Checks `token` (a compact JWT). Blocking: see the type's docs.
    pub fn validate(&self, token: &str) -> Result<ValidatedToken, OAuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(OAuthError::TooLarge);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| OAuthError::Malformed(e.to_string()))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(OAuthError::Algorithm(format!("{:?}", header.alg)));
        }
        self.refresh_if_due();
        let key = match self.key(header.kid.as_deref())? {
            Some(key) => key,
            None => {
                self.refetch_for_unknown_kid();
                match self.key(header.kid.as_deref())? {
                    Some(key) => key,
                    // No JWKS ever loaded (its endpoint down or untrusted
                    // since the start): say so rather than blame the token.
                    None if self.keys.read().len() == 0 => {
                        return Err(OAuthError::KeysUnavailable);
                    }
                    None => {
                        return Err(OAuthError::UnknownKey(
                            header.kid.clone().unwrap_or_default(),
                        ));
                    }
                }
            }
        };
        if !key.algorithms.contains(&header.alg) {
            return Err(OAuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let claims = self.check(token, &key, header.alg)?;
        self.token(&claims)
    }

    /// The key a token's `kid` names (`None`: not in the JWKS as it is).
    fn key(&self, kid: Option<&str>) -> Result<Option<Key>, OAuthError> {
        let keys = self.keys.read();
        if keys.len() == 0 {
            // Nothing loaded (an issuer down since the start): a refetch
            // may help; the caller tries one.
            return Ok(None);
        }
        Ok(match kid {
            Some(kid) => keys.by_kid.get(kid).cloned(),
            None => match keys.anonymous.as_slice() {
                [only] => Some(only.clone()),
                [] if keys.by_kid.len() == 1 => keys.by_kid.values().next().cloned(),
                _ => return Err(OAuthError::NoKeyId),
            },
        })
    }

    /// The signature and the registered claims; the claims as a map.
    fn check(
        &self,
        token: &str,
        key: &Key,
        alg: Algorithm,
    ) -> Result<serde_json::Map<String, serde_json::Value>, OAuthError> {
        let settings = &self.settings;
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = settings.clock_skew_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if settings.expected_audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&settings.expected_audience);
            required.push("aud");
        }
        if let Some(issuer) = &settings.expected_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.decoding,
            &validation,
        )
        .map_err(|e| match e.into_kind() {
            ErrorKind::InvalidSignature | ErrorKind::Crypto(_) => OAuthError::Signature,
            ErrorKind::ExpiredSignature => OAuthError::Expired,
            ErrorKind::ImmatureSignature => OAuthError::NotYetValid,
            ErrorKind::InvalidAudience => OAuthError::Audience,
            ErrorKind::InvalidIssuer => OAuthError::Issuer,
            ErrorKind::MissingRequiredClaim(claim) => OAuthError::MissingClaim(claim),
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                OAuthError::Algorithm(format!("{alg:?}"))
            }
            other => OAuthError::Malformed(format!("{other:?}")),
        })?;
        Ok(data.claims)
    }

    /// `iat`, the principal, the expiry and the scopes of checked claims.
    fn token(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<ValidatedToken, OAuthError> {
        let settings = &self.settings;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_f64()
                .ok_or_else(|| OAuthError::BadClaim("iat".into()))?;
            if iat > (now + settings.clock_skew_seconds) as f64 {
                return Err(OAuthError::IssuedInFuture);
            }
        }
        let sub = match claims.get(&settings.sub_claim) {
            None => return Err(OAuthError::MissingClaim(settings.sub_claim.clone())),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(_) => return Err(OAuthError::BadClaim(settings.sub_claim.clone())),
        };
        // `exp` passed `decode`'s check, so it is a number.
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| OAuthError::BadClaim("exp".into()))?;
        let scopes = match claims.get(&settings.scope_claim) {
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(ValidatedToken {
            principal: Principal::User(sub),
            expires_at: UNIX_EPOCH + Duration::from_secs(exp),
            scopes,
        })
    }

    /// Fetches the JWKS again when the last fetch is older than
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms` (or none succeeded and
    /// the last try for an unknown `kid` is old enough).
    fn refresh_if_due(&self) {
        let due = {
            let fetches = self.fetches.lock();
            match fetches.loaded {
                Some(at) => at.elapsed() >= self.settings.refresh,
                None => false,
            }
        };
        if due {
            self.fetch_logged();
        }
    }

    /// One fetch for an unknown `kid`, unless one was tried within
    /// [`UNKNOWN_KID_REFETCH`].
    fn refetch_for_unknown_kid(&self) {
        {
            let mut fetches = self.fetches.lock();
            if fetches
                .unknown_kid
                .is_some_and(|at| at.elapsed() < UNKNOWN_KID_REFETCH)
            {
                return;
            }
            fetches.unknown_kid = Some(Instant::now());
        }
        self.fetch_logged();
    }

    fn fetch_logged(&self) {
        if let Err(why) = self.fetch() {
            tracing::warn!(url = %self.settings.jwks_url, error = %why, "cannot load the OAUTHBEARER JWKS; keeping the keys loaded before");
        }
    }

    /// Loads the JWKS and replaces the keys with its usable ones.
    fn fetch(&self) -> Result<(), String> {
        let loaded = self.source.load()?;
        let mut keys = Keys::default();
        for key in loaded {
            match key.kid.clone() {
                Some(kid) => {
                    keys.by_kid.insert(kid, key);
                }
                None => keys.anonymous.push(key),
            }
        }
        tracing::debug!(keys = keys.len(), url = %self.settings.jwks_url, "OAUTHBEARER JWKS loaded");
        *self.keys.write() = keys;
        self.fetches.lock().loaded = Some(Instant::now());
        Ok(())
    }
}

/// Refuses values a Kafka user's per-listener OAUTHBEARER settings may not
/// have here: `setting` is what follows `listener.name.<l>.`; `Ok(false)`
/// when it is not an OAUTHBEARER setting at all.
pub(crate) fn check_listener_setting(setting: &str, value: &str) -> Result<bool, String> {
    match setting {
        "oauthbearer.sasl.server.callback.handler.class" => {
            if VALIDATOR_CLASSES.contains(&value.trim()) {
                Ok(true)
            } else {
                Err(format!(
                    "only {} is served (configured by sasl.oauthbearer.*), not {value:?}",
                    VALIDATOR_CLASSES[0]
                ))
            }
        }
        "oauthbearer.sasl.jaas.config" => {
            if value.trim_start().starts_with(LOGIN_MODULE) {
                Ok(true)
            } else {
                Err(format!("only {LOGIN_MODULE} is served"))
            }
        }
        _ => Ok(false),
    }
}

/// OAUTHBEARER's client-first message (RFC 7628 §3.1, as Kafka's clients
/// send it): `n,[a=<authzid>],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`.
/// Returns the token and the authorization id (empty when none); the
/// extensions (`key=value`) are accepted and not used, as Kafka's default.
pub fn client_first(message: &[u8]) -> Result<(&str, &str), &'static str> {
    let message = std::str::from_utf8(message).map_err(|_| "not UTF-8")?;
    let rest = message
        .strip_suffix("\x01\x01")
        .ok_or("not ended by two \\x01")?;
    let (gs2, kvs) = rest.split_once('\x01').ok_or("no \\x01 after the header")?;
    let authzid = match gs2.strip_prefix("n,").and_then(|g| g.strip_suffix(',')) {
        Some("") => "",
        Some(a) => a.strip_prefix("a=").ok_or("a bad authorization id")?,
        None => return Err("not a GS2 header without channel binding (n,,)"),
    };
    let mut token = None;
    for kv in kvs.split('\x01') {
        let (key, value) = kv.split_once('=').ok_or("an entry without =")?;
        if key == "auth" {
            let (scheme, t) = value.split_once(' ').ok_or("auth without a scheme")?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.is_some() {
                return Err("auth is not one Bearer token");
            }
            token = Some(t.trim_start_matches(' '));
        }
    }
    match token {
        Some(t) if !t.is_empty() => Ok((t, authzid)),
        _ => Err("no auth=Bearer token"),
    }
}

#[cfg(test)]
mod tests;
