//! Password logins at the platform's doors other than the Kafka port —
//! the admin HTTP API's Basic authentication — checked exactly as
//! SASL/PLAIN checks them (`sasl::verify_password`: the users' SCRAM
//! credentials, PBKDF2 on a blocking thread, the same failed-attempt
//! limiter per user and address, one log line per failure).
//!
//! Unlike a Kafka connection, which logs in once, an HTTP client sends its
//! password with every request; deriving the PBKDF2 key each time would
//! cost a core per few dozen requests. So a successful check is cached for
//! [`CACHE_TTL`], at most [`MAX_CACHED`] entries, keyed by a keyed hash
//! (HMAC with a key drawn at start) of the user, the password and the
//! user's stored credential *as it is now*: a changed password or a
//! deleted user misses at once, and the cache never holds a password.
//!
//! It is not for: tokens (bearer tokens are validated like OAUTHBEARER's),
//! sessions (the console's cookie, `fjord-http`), or what the principal
//! may do (`authorizer`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fjord_controller::ScramMechanism;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use crate::auth::{INTERNAL_PRINCIPAL, Principal};
use crate::local::LocalBroker;
use crate::sasl::{self, SaslError};

/// How long a successful check is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// The most cached checks; past it, expired ones are dropped, then all.
pub const MAX_CACHED: usize = 1024;

/// Why a password login was refused. The client learns no more than this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password (told apart nowhere but the log).
    #[error("invalid user name or password")]
    Invalid,
    /// Too many failed attempts for this user from this address this second.
    #[error(
        "too many failed logins for this user from this address (at most {} a second); retry later",
        sasl::MAX_FAILURES_PER_SECOND
    )]
    TooManyAttempts,
}

/// Checks passwords for one door, with its cache of successes.
pub struct PasswordLogins {
    key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for PasswordLogins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordLogins")
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

impl Default for PasswordLogins {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordLogins {
    /// An empty cache with a fresh key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        // Without randomness the key is fixed; the cache still never holds
        // a password, only its hash with the credential.
        if let Err(e) = getrandom::fill(&mut key) {
            tracing::warn!(error = %e, "no randomness for the login cache key");
        }
        PasswordLogins {
            key,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `user`'s `password`, sent from `peer` to `door` (named in the log
    /// line of a failure, e.g. `HTTP Basic`): the principal it logs in as.
    pub async fn verify(
        &self,
        broker: &LocalBroker,
        user: &str,
        password: &str,
        peer: SocketAddr,
        door: &str,
    ) -> Result<Principal, LoginError> {
        let metadata = broker.state.metadata();
        // The credential as it is now: part of the cache key.
        let credential = [ScramMechanism::Sha512, ScramMechanism::Sha256]
            .into_iter()
            .find_map(|m| metadata.scram_credential(user, m));
        let key = credential.as_ref().map(|c| {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key");
            for part in [
                user.as_bytes(),
                password.as_bytes(),
                &c.salt,
                &c.iterations.to_be_bytes(),
                &c.stored_key,
            ] {
                mac.update(&(part.len() as u64).to_be_bytes());
                mac.update(part);
            }
            <[u8; 32]>::from(mac.finalize().into_bytes())
        });
        if let Some(key) = &key
            && self
                .cache
                .lock()
                .get(key)
                .is_some_and(|at| at.elapsed() < CACHE_TTL)
        {
            return Ok(Principal::User(user.to_owned()));
        }
        let secret = broker
            .state
            .cluster()
            .and_then(|link| link.metadata().internal_secret.clone());
        let principal = sasl::verify_password(
            user,
            password.as_bytes(),
            broker.state.authenticator(),
            &metadata,
            secret.as_ref(),
            peer,
            door,
        )
        .await
        .map_err(|e| match e {
            SaslError::TooManyAttempts => LoginError::TooManyAttempts,
            _ => LoginError::Invalid,
        })?;
        if let (Some(key), false) = (key, user == INTERNAL_PRINCIPAL) {
            let mut cache = self.cache.lock();
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, at| at.elapsed() < CACHE_TTL);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(key, Instant::now());
        }
        Ok(principal)
    }

    /// How many successful checks are cached (for tests).
    pub fn cached(&self) -> usize {
        self.cache.lock().len()
    }
}
