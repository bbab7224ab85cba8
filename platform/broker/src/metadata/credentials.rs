//! The users' SCRAM credentials of a single node: `<data>/users.yaml`,
//! rewritten whole (temporary file, fsync, rename) on every change, and
//! readable by the broker's user only (mode 0600: a StoredKey and
//! ServerKey let whoever reads them pose as the server). In a cluster the
//! credentials live in the quorum's metadata instead (`quorum`); this file
//! is then left alone.
//!
//! What is stored is what RFC 5802 says a server keeps — salt, iteration
//! count, StoredKey, ServerKey — never a password.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use fjord_controller::{ScramCredential, ScramMechanism};
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;
use crate::topic_registry::ApiError;

/// Credentials by user, then mechanism.
pub(crate) type Users = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

const FILE: &str = "users.yaml";

/// The file's layout: mechanisms by their SASL names, bytes in base64.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: BTreeMap<String, BTreeMap<String, StoredCredential>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCredential {
    salt: String,
    iterations: u32,
    stored_key: String,
    server_key: String,
}

/// A single node's credential store.
#[derive(Debug)]
pub(crate) struct LocalCredentials {
    path: PathBuf,
    users: RwLock<Users>,
    /// Serialises changes: each rewrites the whole file.
    write: Mutex<()>,
}

impl LocalCredentials {
    /// Loads `<data_dir>/users.yaml` (none yet: no users).
    pub(crate) fn open(data_dir: &Path) -> Result<LocalCredentials, BrokerError> {
        let path = data_dir.join(FILE);
        let users = match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text).map_err(|e| BrokerError::metadata(&path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Users::new(),
            Err(e) => return Err(BrokerError::metadata(&path, e)),
        };
        Ok(LocalCredentials {
            path,
            users: RwLock::new(users),
            write: Mutex::new(()),
        })
    }

    /// `user`'s credential for `mechanism`.
    pub(crate) fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.users.read().get(user)?.get(&mechanism).cloned()
    }

    /// Renames the file to `users.yaml.carried` once its users were
    /// carried into a cluster (`crate::users::carry_local_users`), so that a
    /// restart does not carry them again; the users stay in memory, unused
    /// in a cluster.
    pub(crate) fn retire(&self) -> std::io::Result<PathBuf> {
        let _write = self.write.lock();
        let carried = self.path.with_extension("yaml.carried");
        std::fs::rename(&self.path, &carried)?;
        Ok(carried)
    }

    /// Every user's credentials.
    pub(crate) fn all(&self) -> Users {
        self.users.read().clone()
    }

    /// Creates or replaces `user`'s credential for `mechanism` (checked as
    /// the quorum checks it).
    pub(crate) fn set(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), ApiError> {
        credential
            .check(mechanism)
            .map_err(|e| ApiError::new(ResponseError::UnacceptableCredential, e))?;
        self.change(|users| {
            users
                .entry(user.to_owned())
                .or_default()
                .insert(mechanism, credential);
            Ok(())
        })
    }

    /// Removes `user`'s credential for `mechanism`.
    pub(crate) fn delete(&self, user: &str, mechanism: ScramMechanism) -> Result<(), ApiError> {
        self.change(|users| {
            let missing = || {
                ApiError::new(
                    ResponseError::ResourceNotFound,
                    format!("user {user:?} has no {} credential", mechanism.name()),
                )
            };
            let credentials = users.get_mut(user).ok_or_else(missing)?;
            credentials.remove(&mechanism).ok_or_else(missing)?;
            if credentials.is_empty() {
                users.remove(user);
            }
            Ok(())
        })
    }

    /// Applies `change` to a copy, writes the copy, then publishes it: a
    /// failed write changes nothing.
    fn change(
        &self,
        change: impl FnOnce(&mut Users) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let _writer = self.write.lock();
        let mut users = self.users.read().clone();
        change(&mut users)?;
        let text =
            encode(&users).map_err(|e| ApiError::new(ResponseError::UnknownServerError, e))?;
        write_private(&self.path, text.as_bytes()).map_err(|e| {
            ApiError::new(
                ResponseError::KafkaStorageError,
                format!("cannot write {}: {e}", self.path.display()),
            )
        })?;
        *self.users.write() = users;
        Ok(())
    }
}

fn encode(users: &Users) -> Result<String, String> {
    let file = UsersFile {
        users: users
            .iter()
            .map(|(user, credentials)| {
                let credentials = credentials
                    .iter()
                    .map(|(mechanism, c)| {
                        (
                            mechanism.name().to_owned(),
                            StoredCredential {
                                salt: BASE64.encode(&c.salt),
                                iterations: c.iterations,
                                stored_key: BASE64.encode(&c.stored_key),
                                server_key: BASE64.encode(&c.server_key),
                            },
                        )
                    })
                    .collect();
                (user.clone(), credentials)
            })
            .collect(),
    };
    let body = crate::yaml::to_string(&file).map_err(|e| e.to_string())?;
    Ok(format!(
        "# SCRAM credentials (salted keys, no passwords), written by the broker.\n{body}"
    ))
}

fn decode(text: &str) -> Result<Users, String> {
    let file: UsersFile = crate::yaml::from_str(text).map_err(|e| e.to_string())?;
    let mut users = Users::new();
    for (user, credentials) in file.users {
        for (name, stored) in credentials {
            let mechanism = ScramMechanism::from_name(&name)
                .ok_or_else(|| format!("user {user:?}: unknown mechanism {name:?}"))?;
            let bytes = |field: &str, value: &str| {
                BASE64
                    .decode(value)
                    .map_err(|e| format!("user {user:?} {name} {field}: {e}"))
            };
            let credential = ScramCredential {
                salt: bytes("salt", &stored.salt)?,
                iterations: stored.iterations,
                stored_key: bytes("stored_key", &stored.stored_key)?,
                server_key: bytes("server_key", &stored.server_key)?,
            };
            credential
                .check(mechanism)
                .map_err(|e| format!("user {user:?} {name}: {e}"))?;
            users
                .entry(user.clone())
                .or_default()
                .insert(mechanism, credential);
        }
    }
    Ok(users)
}

/// Writes `path` atomically (a crash leaves the old or the new content),
/// readable by this user only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_survive_reopen_and_stay_private() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = LocalCredentials::open(dir.path())?;
        assert!(store.all().is_empty());
        let credential = crate::scram::credential(
            ScramMechanism::Sha512,
            b"pw",
            crate::scram::random_salt()?,
            4096,
        );
        store
            .set("alice", ScramMechanism::Sha512, credential.clone())
            .map_err(|e| e.message)?;
        let too_few = ScramCredential {
            iterations: 100,
            ..credential.clone()
        };
        let refused = store.set("bob", ScramMechanism::Sha512, too_few).err();
        assert_eq!(
            refused.map(|e| e.code),
            Some(ResponseError::UnacceptableCredential.code())
        );

        let text = std::fs::read_to_string(dir.path().join(FILE))?;
        assert!(!text.contains("pw\n") && text.contains("SCRAM-SHA-512"));
        let mode = std::fs::metadata(dir.path().join(FILE))?.permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );

        let reopened = LocalCredentials::open(dir.path())?;
        assert_eq!(
            reopened.get("alice", ScramMechanism::Sha512),
            Some(credential)
        );
        assert_eq!(reopened.get("alice", ScramMechanism::Sha256), None);
        let missing = reopened.delete("alice", ScramMechanism::Sha256).err();
        assert_eq!(
            missing.map(|e| e.code),
            Some(ResponseError::ResourceNotFound.code())
        );
        reopened
            .delete("alice", ScramMechanism::Sha512)
            .map_err(|e| e.message)?;
        assert!(LocalCredentials::open(dir.path())?.all().is_empty());
        Ok(())
    }
}
