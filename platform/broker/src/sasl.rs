//! SASL on the Kafka listener: PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
//! (those `sasl.enabled.mechanisms` names), against the users' SCRAM
//! credentials in the metadata frontend; PLAIN for the platform's own
//! principal ([`INTERNAL_PRINCIPAL`]), whose password is the cluster's
//! internal secret; and OAUTHBEARER, whose JWT `oauth` checks.
//!
//! **Re-authentication** (KIP-368): when `connections.max.reauth.ms` is
//! positive, a session lasts that long at most (less if its OAUTHBEARER
//! token expires first); within it the client may run SaslHandshake and
//! SaslAuthenticate again on the same connection, with the same mechanism
//! and as the same principal (anything else fails and closes the
//! connection, as Kafka does). With no session lifetime a second
//! SaslHandshake is ILLEGAL_SASL_STATE, as Kafka answers it.
//!
//! Authenticating is optional on today's single listener: a connection
//! that never tries stays anonymous, as every plain Kafka client is. A
//! failed attempt ends the connection (as Kafka does) with one log line
//! naming the peer and the user. An unknown user and a wrong password look
//! the same to the client and cost the broker the same work: an unknown
//! user gets a made-up salt and iteration count and fails at the proof
//! (SCRAM), or has a made-up credential derived and compared (PLAIN).
//!
//! **Guessing is bounded**: at most [`MAX_FAILURES_PER_SECOND`] failed
//! attempts per second per user and client address; beyond that an
//! attempt is refused before anything is looked up or derived. Only
//! failures count, so a storm of good logins (a fleet reconnecting) is not
//! slowed.
//!
//! Both handshake versions are served: after SaslHandshake v1 tokens come
//! in SaslAuthenticate requests; after v0 they come as bare
//! length-prefixed frames, answered the same way (`connection`).
//!
//! Not here: the wire (`apis::sasl`), the SCRAM arithmetic (`scram`),
//! where credentials live (`metadata`), and what a principal may do
//! (`auth`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use fjord_controller::{InternalSecret, ScramMechanism};
use parking_lot::Mutex;

use crate::auth::{INTERNAL_PRINCIPAL, Principal};
use crate::log_limit::LogLimit;
use crate::metadata::Metadata;
use crate::oauth::{self, OAuthError, TokenValidator};
use crate::scram::{self, ServerExchange};

/// Failed attempts allowed per second per user and client address; the
/// next ones in the same second are refused unchecked.
pub(crate) const MAX_FAILURES_PER_SECOND: u32 = 5;

/// The (user, address) pairs the limiter tracks at most; past this, stale
/// entries are dropped, and pairs that still do not fit are not tracked
/// (memory stays bounded whatever user names a client invents).
const MAX_TRACKED: usize = 10_000;

/// A SASL mechanism this broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512`.
    Scram(ScramMechanism),
    /// `OAUTHBEARER` (needs a JWKS).
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism.
    pub(crate) const ALL: [Mechanism; 4] = [
        Mechanism::Scram(ScramMechanism::Sha512),
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Plain,
        Mechanism::OAuthBearer,
    ];

    /// `sasl.enabled.mechanisms`' default, in the order SaslHandshake
    /// lists them (OAUTHBEARER joins when a JWKS is configured).
    pub(crate) const DEFAULT: [Mechanism; 3] = [
        Mechanism::Scram(ScramMechanism::Sha512),
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Plain,
    ];

    /// The SASL name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism called `name`.
    pub(crate) fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// Where a connection is in the exchange.
#[derive(Debug, Default)]
enum Stage {
    #[default]
    Start,
    /// A mechanism was chosen; `bare`: tokens come as bare frames
    /// (handshake v0).
    Handshaken { mechanism: Mechanism, bare: bool },
    /// SCRAM's server-first message was sent.
    ScramStarted {
        exchange: Box<ServerExchange>,
        peer_user: String,
        bare: bool,
    },
    /// Authenticated: a second handshake re-authenticates if the session
    /// has a lifetime (KIP-368), else is refused.
    Done,
    /// Failed: the connection is being closed.
    Failed,
}

/// One connection's SASL exchange.
#[derive(Debug, Default)]
pub(crate) struct Sasl {
    stage: Stage,
    /// Set once authenticated.
    session: Option<SaslSession>,
}

/// What the last successful exchange established.
#[derive(Debug, Clone)]
struct SaslSession {
    mechanism: Mechanism,
    principal: Principal,
    /// When it ends (`None`: never; no re-authentication then).
    expires_at: Option<Instant>,
}

/// Why a SASL step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// A mechanism that is not enabled.
    #[error("SASL mechanism {mechanism:?} is not enabled; enabled: {enabled}")]
    UnsupportedMechanism {
        /// The one asked for.
        mechanism: String,
        /// The enabled ones, comma-separated.
        enabled: String,
    },
    /// A step out of order.
    #[error("{0}")]
    IllegalState(&'static str),
    /// Wrong user, wrong password, or a token that is not the mechanism's.
    /// Clients learn no more than that (Kafka's words).
    #[error("Authentication failed: invalid credentials")]
    Failed,
    /// An OAUTHBEARER token that did not pass: the client learns why.
    #[error("Authentication failed: invalid OAUTHBEARER token: {0}")]
    InvalidToken(OAuthError),
    /// A re-authentication that changed what it may not.
    #[error("Re-authentication failed: {0}")]
    Reauthentication(&'static str),
    /// Too many failed attempts for this user from this address: refused
    /// without checking.
    #[error(
        "Authentication failed: too many failed attempts for this user from this address \
         (at most {MAX_FAILURES_PER_SECOND} a second); retry later"
    )]
    TooManyAttempts,
}

/// What a successful step answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The exchange goes on: send this challenge.
    Continue(Vec<u8>),
    /// Authenticated as this principal: send this last message. The
    /// session lasts this long (`None`: as long as the connection).
    Done(Principal, Vec<u8>, Option<Duration>),
}

/// What every connection's SASL exchange shares: the enabled mechanisms
/// and the failed-attempt limiter.
#[derive(Debug)]
pub(crate) struct Authenticator {
    enabled: Vec<Mechanism>,
    limiter: Limiter,
    /// OAUTHBEARER's token checks (when a JWKS is configured).
    oauth: Option<Arc<TokenValidator>>,
    /// `connections.max.reauth.ms` when positive.
    max_reauth: Option<Duration>,
}

impl Authenticator {
    /// Serves `enabled` (validated names; see `BrokerConfig`).
    pub(crate) fn new(enabled: Vec<Mechanism>) -> Authenticator {
        Authenticator {
            enabled,
            limiter: Limiter::default(),
            oauth: None,
            max_reauth: None,
        }
    }

    /// With `connections.max.reauth.ms` (0: off).
    pub(crate) fn with_max_reauth_ms(mut self, max_reauth_ms: u64) -> Authenticator {
        self.max_reauth = (max_reauth_ms > 0).then(|| Duration::from_millis(max_reauth_ms));
        self
    }

    /// Sets OAUTHBEARER's validator (without one, OAUTHBEARER logins fail).
    pub(crate) fn set_token_validator(&mut self, oauth: Option<Arc<TokenValidator>>) {
        self.oauth = oauth;
    }

    /// OAUTHBEARER's token validator, if configured.
    pub(crate) fn token_validator(&self) -> Option<&Arc<TokenValidator>> {
        self.oauth.as_ref()
    }

    /// A session's lifetime: `connections.max.reauth.ms`, or less if its
    /// credential (a token) expires first; `None` when neither bounds it
    /// (as Kafka, a token's expiry is enforced only with re-authentication
    /// on).
    fn session_lifetime(&self, credential_expires: Option<SystemTime>) -> Option<Duration> {
        let max = self.max_reauth?;
        let left = credential_expires.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        Some(left.map_or(max, |left| left.min(max)))
    }

    /// The enabled mechanisms' names, as SaslHandshake lists them.
    pub(crate) fn enabled_names(&self) -> Vec<&'static str> {
        self.enabled.iter().map(|m| m.name()).collect()
    }
}

impl Sasl {
    /// SaslHandshake of `version` choosing `mechanism`.
    pub(crate) fn handshake(
        &mut self,
        auth: &Authenticator,
        mechanism: &str,
        version: i16,
    ) -> Result<(), SaslError> {
        let reauthenticating = match (&self.stage, &self.session) {
            (Stage::Start, _) => false,
            (
                Stage::Done,
                Some(SaslSession {
                    expires_at: Some(_),
                    ..
                }),
            ) => true,
            _ => {
                return Err(SaslError::IllegalState(
                    "SaslHandshake is allowed once, before authenticating \
                     (re-authentication is off: connections.max.reauth.ms is 0)",
                ));
            }
        };
        let chosen = Mechanism::from_name(mechanism)
            .filter(|m| auth.enabled.contains(m))
            .ok_or_else(|| SaslError::UnsupportedMechanism {
                mechanism: mechanism.to_owned(),
                enabled: auth.enabled_names().join(","),
            })?;
        if reauthenticating && self.session.as_ref().map(|s| s.mechanism) != Some(chosen) {
            self.stage = Stage::Failed;
            return Err(SaslError::Reauthentication(
                "the SASL mechanism may not change",
            ));
        }
        self.stage = Stage::Handshaken {
            mechanism: chosen,
            bare: version == 0,
        };
        Ok(())
    }

    /// Whether an exchange is under way (handshaken, not yet done): only
    /// SASL requests may come now.
    pub(crate) fn exchanging(&self) -> bool {
        matches!(
            self.stage,
            Stage::Handshaken { .. } | Stage::ScramStarted { .. }
        )
    }

    /// Whether the authenticated session's lifetime has passed (then only
    /// a SaslHandshake re-authenticating may come).
    pub(crate) fn expired(&self, now: Instant) -> bool {
        matches!(self.stage, Stage::Done)
            && self
                .session
                .as_ref()
                .and_then(|s| s.expires_at)
                .is_some_and(|at| at <= now)
    }

    /// Whether the next frame is a bare token rather than a request.
    pub(crate) fn expects_bare_token(&self) -> bool {
        matches!(
            self.stage,
            Stage::Handshaken { bare: true, .. } | Stage::ScramStarted { bare: true, .. }
        )
    }

    /// Takes the client's next token. `secret` is the cluster's internal
    /// secret (`None` on a single node: the internal principal cannot log
    /// in there).
    pub(crate) async fn step(
        &mut self,
        token: &[u8],
        auth: &Authenticator,
        metadata: &Metadata,
        secret: Option<&InternalSecret>,
        peer: SocketAddr,
    ) -> Result<Step, SaslError> {
        let stage = std::mem::replace(&mut self.stage, Stage::Failed);
        let stage_mechanism = match &stage {
            Stage::Handshaken { mechanism, .. } => *mechanism,
            Stage::ScramStarted { exchange, .. } => Mechanism::Scram(exchange.mechanism()),
            // Refused below.
            Stage::Start | Stage::Done | Stage::Failed => Mechanism::Plain,
        };
        let (step, next) = match stage {
            Stage::Handshaken {
                mechanism: Mechanism::Plain,
                ..
            } => {
                let principal = plain(token, auth, metadata, secret, peer).await?;
                let lifetime = auth.session_lifetime(None);
                (Step::Done(principal, Vec::new(), lifetime), Stage::Done)
            }
            Stage::Handshaken {
                mechanism: Mechanism::OAuthBearer,
                ..
            } => {
                let (principal, expires) = oauthbearer(token, auth, peer).await?;
                let lifetime = auth.session_lifetime(Some(expires));
                (Step::Done(principal, Vec::new(), lifetime), Stage::Done)
            }
            Stage::Handshaken {
                mechanism: Mechanism::Scram(m),
                bare,
            } => {
                let (exchange, challenge) = scram_first(token, m, auth, metadata, peer)?;
                let peer_user = exchange.user().to_owned();
                let next = Stage::ScramStarted {
                    exchange: Box::new(exchange),
                    peer_user,
                    bare,
                };
                (Step::Continue(challenge), next)
            }
            Stage::ScramStarted {
                exchange,
                peer_user,
                ..
            } => match exchange.finish(token) {
                Ok(last) => {
                    let lifetime = auth.session_lifetime(None);
                    let principal = Principal::User(peer_user);
                    (Step::Done(principal, last, lifetime), Stage::Done)
                }
                Err(e) => {
                    auth.limiter.failed(peer.ip(), &peer_user);
                    failed(
                        peer,
                        &peer_user,
                        exchange.mechanism().name(),
                        &e.to_string(),
                    );
                    return Err(SaslError::Failed);
                }
            },
            Stage::Start | Stage::Done | Stage::Failed => {
                self.stage = stage;
                return Err(SaslError::IllegalState(
                    "SaslAuthenticate before a SaslHandshake choosing a mechanism",
                ));
            }
        };
        if let Step::Done(principal, _, lifetime) = &step {
            if let Some(previous) = &self.session
                && previous.principal != *principal
            {
                failed(
                    peer,
                    &principal.to_string(),
                    stage_mechanism.name(),
                    "re-authenticated as another principal",
                );
                return Err(SaslError::Reauthentication("the principal may not change"));
            }
            self.session = Some(SaslSession {
                mechanism: stage_mechanism,
                principal: principal.clone(),
                expires_at: lifetime.map(|l| Instant::now() + l),
            });
        }
        self.stage = next;
        Ok(step)
    }
}

/// SCRAM's first step: parse the client-first message, look the user up
/// (or make a credential up), answer with the server-first message.
fn scram_first(
    token: &[u8],
    mechanism: ScramMechanism,
    auth: &Authenticator,
    metadata: &Metadata,
    peer: SocketAddr,
) -> Result<(ServerExchange, Vec<u8>), SaslError> {
    let first = scram::parse_client_first(token).map_err(|e| {
        failed(peer, "", mechanism.name(), &e.to_string());
        SaslError::Failed
    })?;
    let user = first.user.clone();
    auth.limiter.check(peer.ip(), &user)?;
    // No acting for another user: an authorization id must be the user.
    if first.authzid.as_ref().is_some_and(|a| *a != user) {
        auth.limiter.failed(peer.ip(), &user);
        failed(
            peer,
            &user,
            mechanism.name(),
            "authorization id is another user",
        );
        return Err(SaslError::Failed);
    }
    let credential = match metadata.scram_credential(&user, mechanism) {
        Some(credential) => credential,
        None => scram::unknown_user_credential(mechanism, &user).map_err(|e| {
            tracing::error!(error = %e, "cannot make up a SCRAM credential");
            SaslError::Failed
        })?,
    };
    ServerExchange::start(mechanism, credential, first).map_err(|e| {
        tracing::error!(error = %e, "cannot start a SCRAM exchange");
        SaslError::Failed
    })
}

/// Checks an OAUTHBEARER client-first message's token (on a blocking
/// thread: the validator may read or fetch the JWKS). Failures per client
/// address count against the limiter under one name, as the user is
/// unknown until the token is checked.
async fn oauthbearer(
    message: &[u8],
    auth: &Authenticator,
    peer: SocketAddr,
) -> Result<(Principal, SystemTime), SaslError> {
    const LIMITER_NAME: &str = "<OAUTHBEARER>";
    auth.limiter.check(peer.ip(), LIMITER_NAME)?;
    let refuse = |why: &str| {
        auth.limiter.failed(peer.ip(), LIMITER_NAME);
        failed(peer, "", "OAUTHBEARER", why);
    };
    let (token, authzid) = oauth::client_first(message).map_err(|why| {
        refuse(why);
        SaslError::Failed
    })?;
    let Some(validator) = auth.oauth.clone() else {
        refuse("no JWKS is configured");
        return Err(SaslError::Failed);
    };
    let (token, authzid) = (token.to_owned(), authzid.to_owned());
    let checked = tokio::task::spawn_blocking(move || validator.validate(&token))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "OAUTHBEARER validation task failed");
            SaslError::Failed
        })?;
    let token = checked.map_err(|e| {
        refuse(&e.to_string());
        SaslError::InvalidToken(e)
    })?;
    if let Principal::User(user) = &token.principal
        && !authzid.is_empty()
        && authzid != *user
    {
        refuse("authorization id is another user");
        return Err(SaslError::Failed);
    }
    Ok((token.principal, token.expires_at))
}

/// Checks a PLAIN token (`authzid NUL user NUL password`) with
/// [`verify_password`].
async fn plain(
    token: &[u8],
    auth: &Authenticator,
    metadata: &Metadata,
    secret: Option<&InternalSecret>,
    peer: SocketAddr,
) -> Result<Principal, SaslError> {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        failed(peer, "", "PLAIN", "not a PLAIN token");
        return Err(SaslError::Failed);
    };
    let Ok(user) = std::str::from_utf8(user) else {
        failed(peer, "", "PLAIN", "the user name is not UTF-8");
        return Err(SaslError::Failed);
    };
    if !authzid.is_empty() && authzid != user.as_bytes() {
        auth.limiter.check(peer.ip(), user)?;
        auth.limiter.failed(peer.ip(), user);
        failed(peer, user, "PLAIN", "authorization id is another user");
        return Err(SaslError::Failed);
    }
    verify_password(user, password, auth, metadata, secret, peer, "PLAIN").await
}

/// Checks `user`'s `password` as SASL/PLAIN does, for PLAIN and for the
/// platform's other password doors (the admin HTTP API's Basic login,
/// `crate::login`), named `door` in the log line of a failure: the
/// internal principal against the cluster's secret, anyone else against
/// their SCRAM credential (SHA-512's if they have one, else SHA-256's),
/// an unknown user against a made-up one (same cost). Failures count in
/// the shared limiter. The PBKDF2 derivation runs on a blocking thread.
pub(crate) async fn verify_password(
    user: &str,
    password: &[u8],
    auth: &Authenticator,
    metadata: &Metadata,
    secret: Option<&InternalSecret>,
    peer: SocketAddr,
    door: &str,
) -> Result<Principal, SaslError> {
    auth.limiter.check(peer.ip(), user)?;
    let refuse = |why: &str| {
        auth.limiter.failed(peer.ip(), user);
        failed(peer, user, door, why);
        SaslError::Failed
    };
    if user == INTERNAL_PRINCIPAL {
        let valid = secret.is_some_and(|s| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                password,
                s.expose().as_bytes(),
            ))
        });
        return if valid {
            Ok(Principal::Internal)
        } else {
            Err(refuse("invalid credentials"))
        };
    }
    let known = [ScramMechanism::Sha512, ScramMechanism::Sha256]
        .into_iter()
        .find_map(|m| metadata.scram_credential(user, m).map(|c| (m, c)));
    let (mechanism, credential) = match known {
        Some(found) => found,
        None => {
            let m = ScramMechanism::Sha512;
            let made_up = scram::unknown_user_credential(m, user).map_err(|e| {
                tracing::error!(error = %e, "cannot make up a SCRAM credential");
                SaslError::Failed
            })?;
            (m, made_up)
        }
    };
    let password = password.to_vec();
    let valid = tokio::task::spawn_blocking(move || {
        scram::password_matches(mechanism, &credential, &password)
    })
    .await
    .unwrap_or(false);
    if valid {
        Ok(Principal::User(user.to_owned()))
    } else {
        Err(refuse("invalid credentials"))
    }
}

/// A log line per failed attempt that was checked, at most one per client
/// address per interval (with the count of those suppressed), so a client
/// inventing user names cannot flood the log. Never the password.
/// `mechanism`: the SASL mechanism, or the other door (`HTTP Basic`),
/// which answers 401 rather than closing the connection.
fn failed(peer: SocketAddr, user: &str, mechanism: &str, why: &str) {
    static FAILED: LogLimit = LogLimit::new();
    let Some(suppressed) = FAILED.admit(peer.ip()) else {
        return;
    };
    let what = if mechanism.starts_with("HTTP") {
        "admin API login failed; answered 401"
    } else {
        "SASL authentication failed; closing the connection"
    };
    tracing::warn!(%peer, user = ?user, mechanism, reason = why, suppressed, "{what}");
}

/// Failed attempts per (client address, user) in the current one-second
/// window.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    windows: Mutex<HashMap<(IpAddr, String), Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

const WINDOW: Duration = Duration::from_secs(1);

/// User names are tracked by their first this many bytes at most.
const MAX_TRACKED_NAME: usize = 256;

fn key(ip: IpAddr, user: &str) -> (IpAddr, String) {
    let mut end = user.len().min(MAX_TRACKED_NAME);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    (ip, user[..end].to_owned())
}

impl Limiter {
    /// Refuses when this pair failed [`MAX_FAILURES_PER_SECOND`] times in
    /// the current second.
    pub(crate) fn check(&self, ip: IpAddr, user: &str) -> Result<(), SaslError> {
        let windows = self.windows.lock();
        match windows.get(&key(ip, user)) {
            Some(w) if w.start.elapsed() < WINDOW && w.failures >= MAX_FAILURES_PER_SECOND => {
                drop(windows);
                refused_unchecked(ip);
                Err(SaslError::TooManyAttempts)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub(crate) fn failed(&self, ip: IpAddr, user: &str) {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, w| now.duration_since(w.start) < WINDOW);
        }
        let key = key(ip, user);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            return;
        }
        let window = windows.entry(key).or_insert(Window {
            start: now,
            failures: 0,
        });
        if now.duration_since(window.start) >= WINDOW {
            *window = Window {
                start: now,
                failures: 0,
            };
        }
        window.failures += 1;
    }
}

/// Attempts refused unchecked are logged once per client address per
/// interval (with a count), however many come in.
fn refused_unchecked(ip: IpAddr) {
    static REFUSED: LogLimit = LogLimit::new();
    if let Some(suppressed) = REFUSED.admit(ip) {
        tracing::warn!(client = %ip, suppressed, "SASL attempts refused unchecked: too many failures for a user from one address (suppressed: refusals from this address since the last such line)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    fn metadata(dir: &std::path::Path) -> Metadata {
        crate::apis::tests::state(dir).unwrap().metadata()
    }

    fn all() -> Authenticator {
        Authenticator::new(Mechanism::ALL.to_vec())
    }

    #[tokio::test]
    async fn plain_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = metadata(dir.path());
        let secret = InternalSecret::new("s3cret");
        let auth = all();
        let step = |token: &'static [u8], secret: Option<InternalSecret>| {
            let (auth, metadata) = (&auth, &metadata);
            async move {
                let mut sasl = Sasl::default();
                sasl.handshake(auth, "PLAIN", 1).unwrap();
                sasl.step(token, auth, metadata, secret.as_ref(), peer())
                    .await
            }
        };
        let internal = Ok(Step::Done(Principal::Internal, Vec::new(), None));
        assert_eq!(
            step(b"\0fjord-internal\0s3cret", Some(secret.clone())).await,
            internal
        );
        assert_eq!(
            step(
                b"fjord-internal\0fjord-internal\0s3cret",
                Some(secret.clone())
            )
            .await,
            internal
        );
        for bad in [
            &b"\0fjord-internal\0s3cre"[..],
            b"\0fjord-internal\0s3cret\0",
            b"\0someone\0s3cret",
            b"other\0fjord-internal\0s3cret",
            b"",
            b"s3cret",
        ] {
            let mut sasl = Sasl::default();
            // A fresh address each time: the limiter is not under test.
            let auth = all();
            sasl.handshake(&auth, "PLAIN", 1).unwrap();
            let got = sasl
                .step(bad, &auth, &metadata, Some(&secret), peer())
                .await;
            assert_eq!(got, Err(SaslError::Failed), "{bad:?}");
        }
        // No secret (a single node): the internal principal cannot log in.
        assert_eq!(
            step(b"\0fjord-internal\0", None).await,
            Err(SaslError::Failed)
        );
    }

    #[tokio::test]
    async fn steps_in_order_and_mechanisms_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = metadata(dir.path());
        let secret = InternalSecret::new("s");
        let auth = Authenticator::new(vec![Mechanism::Plain]);
        let mut sasl = Sasl::default();
        assert!(matches!(
            sasl.step(
                b"\0fjord-internal\0s",
                &auth,
                &metadata,
                Some(&secret),
                peer()
            )
            .await,
            Err(SaslError::IllegalState(_))
        ));
        assert_eq!(
            sasl.handshake(&auth, "SCRAM-SHA-256", 1),
            Err(SaslError::UnsupportedMechanism {
                mechanism: "SCRAM-SHA-256".into(),
                enabled: "PLAIN".into()
            })
        );
        sasl.handshake(&auth, "PLAIN", 0).unwrap();
        assert!(sasl.expects_bare_token());
        assert!(matches!(
            sasl.handshake(&auth, "PLAIN", 1),
            Err(SaslError::IllegalState(_))
        ));
        sasl.step(
            b"\0fjord-internal\0s",
            &auth,
            &metadata,
            Some(&secret),
            peer(),
        )
        .await
        .unwrap();
        assert!(!sasl.expects_bare_token());
        assert!(matches!(
            sasl.handshake(&auth, "PLAIN", 1),
            Err(SaslError::IllegalState(_))
        ));
    }

    #[test]
    fn the_limiter_counts_failures_per_user_and_address() {
        let limiter = Limiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES_PER_SECOND {
            assert_eq!(limiter.check(a, "alice"), Ok(()));
            limiter.failed(a, "alice");
        }
        assert_eq!(limiter.check(a, "alice"), Err(SaslError::TooManyAttempts));
        assert_eq!(limiter.check(b, "alice"), Ok(()));
        assert_eq!(limiter.check(a, "bob"), Ok(()));
        // Memory stays bounded whatever names come in.
        for i in 0..MAX_TRACKED + 100 {
            limiter.failed(b, &format!("user{i}"));
        }
        assert!(limiter.windows.lock().len() <= MAX_TRACKED);
        std::thread::sleep(WINDOW);
        assert_eq!(limiter.check(a, "alice"), Ok(()));
    }
}
