//! The console's login sessions: a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` over TLS), standing for the
//! principal that logged in with a password, until it expires
//! ([`SESSION_TTL`]) or logs out.
//!
//! The table is bounded ([`MAX_SESSIONS`]): past it, expired sessions go,
//! then the oldest. A session lives in this listener's memory only: a
//! restarted broker logs everyone out. It is not for API clients, which
//! send credentials with each request (HTTP Basic).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fjord_broker::Principal;
use parking_lot::Mutex;

/// The cookie's name.
pub(crate) const COOKIE: &str = "fjord_session";

/// How long a session lasts from its login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The most sessions kept.
pub(crate) const MAX_SESSIONS: usize = 4096;

#[derive(Debug)]
struct Session {
    principal: Principal,
    created: Instant,
}

/// The sessions of one admin listener.
#[derive(Default)]
pub(crate) struct Sessions {
    table: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    /// The count only: tokens are credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.table.lock().len())
            .finish()
    }
}

impl Sessions {
    /// A new session for `principal`: its token (256 random bits, hex).
    pub(crate) fn start(&self, principal: Principal) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut table = self.table.lock();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        }
        if table.len() >= MAX_SESSIONS
            && let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(t, _)| t.clone())
        {
            table.remove(&oldest);
        }
        table.insert(
            token.clone(),
            Session {
                principal,
                created: Instant::now(),
            },
        );
        Ok(token)
    }

    /// The principal of session `token`, while it lasts.
    pub(crate) fn principal(&self, token: &str) -> Option<Principal> {
        let mut table = self.table.lock();
        match table.get(token) {
            Some(s) if s.created.elapsed() < SESSION_TTL => Some(s.principal.clone()),
            Some(_) => {
                table.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends session `token`.
    pub(crate) fn end(&self, token: &str) {
        self.table.lock().remove(token);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().len()
    }
}

/// The session token a request's `Cookie` headers carry, if any.
pub(crate) fn token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value for `token` (`None`: one that ends the session).
pub(crate) fn cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(token) => format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            SESSION_TTL.as_secs()
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bounded_and_end() {
        let sessions = Sessions::default();
        let alice = Principal::User("alice".into());
        let first = sessions.start(alice.clone()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(sessions.principal(&first), Some(alice.clone()));
        assert_eq!(sessions.principal("not-a-token"), None);
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.start(alice.clone()).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        // The oldest went first.
        assert_eq!(sessions.principal(&first), None);
        let last = sessions.start(alice.clone()).unwrap();
        sessions.end(&last);
        assert_eq!(sessions.principal(&last), None);
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "theme=dark; fjord_session=abc123".parse().unwrap(),
        );
        assert_eq!(token(&headers), Some("abc123"));
        assert!(cookie(Some("t"), true).contains("HttpOnly; SameSite=Strict"));
        assert!(cookie(Some("t"), true).ends_with("; Secure"));
        assert!(!cookie(Some("t"), false).contains("Secure"));
        assert!(cookie(None, false).contains("Max-Age=0"));
    }
}
