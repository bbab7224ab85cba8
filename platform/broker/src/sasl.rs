//! SASL/PLAIN on the Kafka listener, for one principal only: the
//! platform's own ([`INTERNAL_PRINCIPAL`]), whose password is the
//! cluster's internal secret, drawn by the controller quorum and read from
//! the metadata this broker follows. A single node has no secret (its
//! platform writes in process), so nobody authenticates there.
//!
//! Authenticating is optional: a connection that never tries stays
//! anonymous, as every plain Kafka client is. A failed attempt ends the
//! connection (as Kafka does), with one rate-limited log line.
//!
//! Both handshake versions are served: after SaslHandshake v1 the token
//! comes in a SaslAuthenticate request; after v0 it comes as one bare
//! length-prefixed frame, answered the same way (`connection`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fjord_controller::InternalSecret;

use crate::auth::{INTERNAL_PRINCIPAL, Principal};

/// The one mechanism served.
pub(crate) const MECHANISM: &str = "PLAIN";

/// Where a connection is in the exchange.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Start,
    /// PLAIN was chosen; `bare_token`: the token comes as a bare frame
    /// (handshake v0).
    Handshaken { bare_token: bool },
    /// Authenticated: no second handshake on the same connection (no
    /// re-authentication, KIP-368).
    Done,
}

/// One connection's SASL exchange.
#[derive(Debug, Default)]
pub(crate) struct Sasl {
    stage: Stage,
}

/// Why a SASL step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SaslError {
    /// A mechanism other than PLAIN.
    #[error("SASL mechanism {0:?} is not enabled; enabled: PLAIN")]
    UnsupportedMechanism(String),
    /// A step out of order.
    #[error("{0}")]
    IllegalState(&'static str),
    /// Wrong user, wrong password, no secret here, or a token that is not
    /// PLAIN's. Clients learn no more than that.
    #[error("authentication failed: invalid user name or password")]
    Failed,
}

impl Sasl {
    /// SaslHandshake of `version` choosing `mechanism`.
    pub(crate) fn handshake(&mut self, mechanism: &str, version: i16) -> Result<(), SaslError> {
        if self.stage != Stage::Start {
            return Err(SaslError::IllegalState(
                "SaslHandshake is allowed once, before authenticating",
            ));
        }
        if mechanism != MECHANISM {
            return Err(SaslError::UnsupportedMechanism(mechanism.to_owned()));
        }
        self.stage = Stage::Handshaken {
            bare_token: version == 0,
        };
        Ok(())
    }

    /// Whether the next frame is a bare token rather than a request.
    pub(crate) fn expects_bare_token(&self) -> bool {
        self.stage == Stage::Handshaken { bare_token: true }
    }

    /// Checks a PLAIN token (`authzid NUL user NUL password`) against the
    /// cluster's internal secret (`None` on a single node: nothing
    /// authenticates).
    pub(crate) fn authenticate(
        &mut self,
        token: &[u8],
        secret: Option<&InternalSecret>,
        peer: SocketAddr,
    ) -> Result<Principal, SaslError> {
        if !matches!(self.stage, Stage::Handshaken { .. }) {
            return Err(SaslError::IllegalState(
                "SaslAuthenticate before a SaslHandshake choosing PLAIN",
            ));
        }
        let valid = secret.is_some_and(|secret| plain_matches(token, secret.expose()));
        if !valid {
            failed_attempt(peer);
            return Err(SaslError::Failed);
        }
        self.stage = Stage::Done;
        Ok(Principal::Internal)
    }
}

/// Whether `token` is PLAIN's for the internal principal with `password`
/// (an authorization id, if any, must name the same user).
fn plain_matches(token: &[u8], password: &str) -> bool {
    let mut parts = token.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(given), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let user_ok = user == INTERNAL_PRINCIPAL.as_bytes()
        && (authzid.is_empty() || authzid == INTERNAL_PRINCIPAL.as_bytes());
    // Both compared whole, so the time taken does not tell which part of
    // the password matched.
    constant_time_eq(given, password.as_bytes()) & user_ok
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// At most one log line per this interval about failed attempts, however
/// many come in (a client retrying in a loop must not flood the log).
const LOG_INTERVAL: Duration = Duration::from_secs(10);

fn failed_attempt(peer: SocketAddr) {
    static LAST_LOGGED_S: AtomicU64 = AtomicU64::new(0);
    static UNLOGGED: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED_S.load(Ordering::Relaxed);
    if now >= last + LOG_INTERVAL.as_secs()
        && LAST_LOGGED_S
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let others = UNLOGGED.swap(0, Ordering::Relaxed);
        tracing::warn!(%peer, others, "SASL/PLAIN authentication failed; closing the connection (others: failures since the last such line)");
    } else {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn plain_tokens() {
        let secret = InternalSecret::new("s3cret");
        let ok = |token: &[u8]| {
            let mut sasl = Sasl::default();
            sasl.handshake("PLAIN", 1).unwrap();
            sasl.authenticate(token, Some(&secret), peer())
        };
        assert_eq!(ok(b"\0fjord-internal\0s3cret"), Ok(Principal::Internal));
        assert_eq!(
            ok(b"fjord-internal\0fjord-internal\0s3cret"),
            Ok(Principal::Internal)
        );
        for bad in [
            &b"\0fjord-internal\0s3cre"[..],
            b"\0fjord-internal\0s3cret\0",
            b"\0someone\0s3cret",
            b"other\0fjord-internal\0s3cret",
            b"",
            b"s3cret",
        ] {
            assert_eq!(ok(bad), Err(SaslError::Failed), "{bad:?}");
        }
        // No secret (a single node): nothing authenticates.
        let mut sasl = Sasl::default();
        sasl.handshake("PLAIN", 1).unwrap();
        assert_eq!(
            sasl.authenticate(b"\0fjord-internal\0", None, peer()),
            Err(SaslError::Failed)
        );
    }

    #[test]
    fn steps_in_order() {
        let secret = InternalSecret::new("s");
        let mut sasl = Sasl::default();
        assert!(matches!(
            sasl.authenticate(b"\0fjord-internal\0s", Some(&secret), peer()),
            Err(SaslError::IllegalState(_))
        ));
        assert_eq!(
            sasl.handshake("SCRAM-SHA-256", 1),
            Err(SaslError::UnsupportedMechanism("SCRAM-SHA-256".into()))
        );
        sasl.handshake("PLAIN", 0).unwrap();
        assert!(sasl.expects_bare_token());
        assert!(matches!(
            sasl.handshake("PLAIN", 1),
            Err(SaslError::IllegalState(_))
        ));
        sasl.authenticate(b"\0fjord-internal\0s", Some(&secret), peer())
            .unwrap();
        assert!(!sasl.expects_bare_token());
        assert!(matches!(
            sasl.handshake("PLAIN", 1),
            Err(SaslError::IllegalState(_))
        ));
    }
}
