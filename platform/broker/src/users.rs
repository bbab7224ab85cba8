//! Users and their SCRAM credentials: the rules of KIP-554's
//! AlterUserScramCredentials and DescribeUserScramCredentials (which
//! change is refused with which Kafka error), and the admin user made at
//! start. The credentials themselves are kept by the metadata frontend;
//! who may call these is decided by `auth::authorize_cluster`; the wire
//! is `apis::scram_credentials`.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::auth::INTERNAL_PRINCIPAL;
use crate::metadata::Metadata;
use crate::scram::{self, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS, ScramMechanism};
use crate::topic_registry::ApiError;

/// One change of an AlterUserScramCredentials request.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Remove `user`'s credential of Kafka mechanism number `mechanism`.
    Delete { user: String, mechanism: i8 },
    /// Create or replace it from a salted password (the client salts and
    /// runs PBKDF2; the password never reaches the broker).
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
}

impl Change {
    fn user(&self) -> &str {
        match self {
            Change::Delete { user, .. } | Change::Upsert { user, .. } => user,
        }
    }

    fn mechanism(&self) -> i8 {
        match self {
            Change::Delete { mechanism, .. } | Change::Upsert { mechanism, .. } => *mechanism,
        }
    }
}

/// Checks what can be checked of one change without the store.
fn check(change: &Change) -> Result<ScramMechanism, ApiError> {
    let user = change.user();
    if user.is_empty() {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            "the user name may not be empty",
        ));
    }
    if user == INTERNAL_PRINCIPAL {
        return Err(ApiError::new(
            ResponseError::UnacceptableCredential,
            format!(
                "{INTERNAL_PRINCIPAL} is the platform's own principal; its password is the cluster's internal secret"
            ),
        ));
    }
    let mechanism = ScramMechanism::from_kafka_type(change.mechanism()).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnsupportedSaslMechanism,
            format!(
                "unknown SCRAM mechanism {} (1: SCRAM-SHA-256, 2: SCRAM-SHA-512)",
                change.mechanism()
            ),
        )
    })?;
    if let Change::Upsert {
        iterations,
        salt,
        salted_password,
        ..
    } = change
    {
        let bounds = i64::from(SCRAM_MIN_ITERATIONS)..=i64::from(SCRAM_MAX_ITERATIONS);
        if !bounds.contains(&i64::from(*iterations)) {
            return Err(ApiError::new(
                ResponseError::UnacceptableCredential,
                format!(
                    "iterations must be between {SCRAM_MIN_ITERATIONS} and {SCRAM_MAX_ITERATIONS}, not {iterations}"
                ),
            ));
        }
        if salt.is_empty() || salted_password.len() != mechanism.key_len() {
            return Err(ApiError::new(
                ResponseError::UnacceptableCredential,
                format!(
                    "a {} upsertion needs a salt and a {}-byte salted password",
                    mechanism.name(),
                    mechanism.key_len()
                ),
            ));
        }
    }
    Ok(mechanism)
}

/// Applies `changes` as Kafka does: one result per user, in the order
/// users first appear. A user whose changes include a bad one, or the same
/// mechanism twice (DUPLICATE_RESOURCE), gets that error and none of its
/// changes is made; deletions come before upsertions.
pub(crate) async fn alter(
    metadata: &Metadata,
    changes: Vec<Change>,
) -> Vec<(String, Result<(), ApiError>)> {
    let mut order: Vec<String> = Vec::new();
    let mut by_user: HashMap<String, Vec<Change>> = HashMap::new();
    for change in changes {
        let user = change.user().to_owned();
        if !by_user.contains_key(&user) {
            order.push(user.clone());
        }
        by_user.entry(user).or_default().push(change);
    }
    let mut results = Vec::with_capacity(order.len());
    for user in order {
        let mut changes = by_user.remove(&user).unwrap_or_default();
        changes.sort_by_key(|c| matches!(c, Change::Upsert { .. }));
        let result = alter_user(metadata, &changes).await;
        results.push((user, result));
    }
    results
}

async fn alter_user(metadata: &Metadata, changes: &[Change]) -> Result<(), ApiError> {
    let mut seen = Vec::new();
    let mut checked = Vec::new();
    for change in changes {
        let mechanism = check(change)?;
        if seen.contains(&mechanism) {
            return Err(ApiError::new(
                ResponseError::DuplicateResource,
                format!(
                    "a user credential cannot be altered twice in the same request ({} of {:?})",
                    mechanism.name(),
                    change.user()
                ),
            ));
        }
        seen.push(mechanism);
        checked.push((mechanism, change));
    }
    // Deletions of credentials that do not exist fail before anything of
    // the user is changed.
    for (mechanism, change) in &checked {
        if matches!(change, Change::Delete { .. })
            && metadata
                .scram_credential(change.user(), *mechanism)
                .is_none()
        {
            return Err(ApiError::new(
                ResponseError::ResourceNotFound,
                format!(
                    "attempt to delete a user credential that does not exist: {} of {:?}",
                    mechanism.name(),
                    change.user()
                ),
            ));
        }
    }
    for (mechanism, change) in checked {
        match change {
            Change::Delete { user, .. } => {
                metadata.delete_scram_credential(user, mechanism).await?
            }
            Change::Upsert {
                user,
                iterations,
                salt,
                salted_password,
                ..
            } => {
                let iterations = u32::try_from(*iterations).unwrap_or(0);
                let credential = scram::credential_from_salted(
                    mechanism,
                    salted_password,
                    salt.clone(),
                    iterations,
                );
                metadata
                    .set_scram_credential(user, mechanism, credential)
                    .await?;
            }
        }
    }
    Ok(())
}

/// What DescribeUserScramCredentials tells of a user: its mechanisms and
/// their iterations (never salts or keys).
pub(crate) type Description = Vec<(ScramMechanism, u32)>;

/// Describes `users` (`None` or none: every user, as Kafka reads a null or
/// empty list), one result per name asked for:
/// an unknown user is RESOURCE_NOT_FOUND, a name asked twice
/// DUPLICATE_RESOURCE (once).
pub(crate) fn describe(
    metadata: &Metadata,
    users: Option<Vec<String>>,
) -> Vec<(String, Result<Description, ApiError>)> {
    let all = metadata.scram_users();
    let describe = |credentials: &std::collections::BTreeMap<_, scram::ScramCredential>| {
        credentials
            .iter()
            .map(|(m, c)| (*m, c.iterations))
            .collect::<Description>()
    };
    let Some(users) = users.filter(|u| !u.is_empty()) else {
        return all
            .iter()
            .map(|(user, credentials)| (user.clone(), Ok(describe(credentials))))
            .collect();
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for user in &users {
        *counts.entry(user.as_str()).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut answered = std::collections::HashSet::new();
    for user in &users {
        if !answered.insert(user.as_str()) {
            continue;
        }
        let result = if counts[user.as_str()] > 1 {
            Err(ApiError::new(
                ResponseError::DuplicateResource,
                format!("cannot describe the same user twice in one request: {user:?}"),
            ))
        } else {
            match all.get(user) {
                Some(credentials) => Ok(describe(credentials)),
                None => Err(ApiError::new(
                    ResponseError::ResourceNotFound,
                    format!("attempt to describe a user credential that does not exist: {user:?}"),
                )),
            }
        };
        results.push((user.clone(), result));
    }
    results
}

/// The iterations of the admin user's credentials.
const ADMIN_ITERATIONS: u32 = 8192;

/// Creates `user` with `password` (SCRAM-SHA-256 and SCRAM-SHA-512) unless
/// it has a credential already; retried until it is made (in a cluster the
/// quorum may not answer at first) or `stop` fires.
pub(crate) async fn ensure_admin(
    metadata: Metadata,
    user: String,
    password: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match create_missing(&metadata, &user, &password).await {
            Ok(0) => return,
            Ok(made) => {
                tracing::info!(user = ?user, credentials = made, "admin user created");
                return;
            }
            Err(e) => {
                tracing::warn!(user = ?user, error = %e.message, "cannot create the admin user yet; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = crate::shutdown::stopped(&mut stop) => return,
        }
    }
}

/// In a cluster: carries the users of this node's `users.yaml` (from
/// when it ran as a single node) into the quorum, once. A user the quorum
/// does not know gets the credentials the file holds (salted keys, as they
/// are); one it knows keeps the cluster's. Then the file is renamed
/// `users.yaml.carried`, so that a user deleted in the cluster later is not
/// brought back by a restart. Waits until this broker has applied the
/// metadata up to its registration, so that "known" is judged on a
/// current view; retries while the quorum refuses changes.
pub(crate) async fn carry_local_users(
    metadata: Metadata,
    local: std::sync::Arc<crate::metadata::LocalCredentials>,
    link: std::sync::Arc<crate::quorum_link::ClusterLink>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let users = local.all();
    if users.is_empty() {
        return;
    }
    let caught_up = async {
        let mut registrations = link.registrations();
        let Ok(offset) = registrations.wait_for(Option::is_some).await.map(|o| *o) else {
            return;
        };
        let offset = offset.unwrap_or_default();
        let _ = link.applied_offsets().wait_for(|a| *a >= offset).await;
    };
    tokio::select! {
        () = caught_up => {}
        _ = crate::shutdown::stopped(&mut stop) => return,
    }
    let known = metadata.scram_users();
    let mut carried = 0;
    for (user, credentials) in &users {
        if known.contains_key(user) {
            tracing::info!(user = ?user, "users.yaml: the cluster has this user already; keeping the cluster's credentials");
            continue;
        }
        for (mechanism, credential) in credentials {
            loop {
                match metadata
                    .set_scram_credential(user, *mechanism, credential.clone())
                    .await
                {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(user = ?user, error = %e.message, "cannot carry a user of users.yaml into the cluster yet; retrying")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = crate::shutdown::stopped(&mut stop) => return,
                }
            }
        }
        carried += 1;
    }
    match local.retire() {
        Ok(path) => tracing::info!(
            carried,
            file = %path.display(),
            "the users of this node's users.yaml are carried into the cluster"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "users carried into the cluster, but users.yaml could not be renamed; a restart carries them again")
        }
    }
}

/// Creates `user`'s missing credentials (both mechanisms); how many were
/// made.
pub(crate) async fn create_missing(
    metadata: &Metadata,
    user: &str,
    password: &str,
) -> Result<usize, ApiError> {
    let mut made = 0;
    for mechanism in ScramMechanism::ALL {
        if metadata.scram_credential(user, mechanism).is_some() {
            continue;
        }
        let salt = scram::random_salt()
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        let password = password.as_bytes().to_vec();
        let credential = tokio::task::spawn_blocking(move || {
            scram::credential(mechanism, &password, salt, ADMIN_ITERATIONS)
        })
        .await
        .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        metadata
            .set_scram_credential(user, mechanism, credential)
            .await?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Change {
        let m = ScramMechanism::from_kafka_type(mechanism).unwrap_or(ScramMechanism::Sha256);
        Change::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salt: vec![1; 16],
            salted_password: scram::salted_password(m, b"pw", &[1; 16], 4096),
        }
    }

    fn delete(user: &str, mechanism: i8) -> Change {
        Change::Delete {
            user: user.into(),
            mechanism,
        }
    }

    /// Kafka's error for each bad change, per user; good users' changes
    /// are made.
    #[tokio::test]
    async fn alter_and_describe_follow_kip_554() {
        let dir = tempfile::tempdir().unwrap();
        let metadata = crate::apis::tests::state(dir.path()).unwrap().metadata();
        let code = |r: &Result<(), ApiError>| r.as_ref().err().map_or(0, |e| e.code);
        let results = alter(
            &metadata,
            vec![
                upsert("alice", 1, 4096),
                upsert("alice", 2, 16384),
                upsert("low", 1, 4095),
                upsert("high", 2, 16385),
                upsert("mech", 3, 4096),
                upsert("twice", 1, 4096),
                upsert("twice", 1, 8192),
                delete("ghost", 1),
                upsert("", 1, 4096),
                upsert("fjord-internal", 1, 4096),
            ],
        )
        .await;
        let codes: Vec<(&str, i16)> = results.iter().map(|(u, r)| (u.as_str(), code(r))).collect();
        assert_eq!(
            codes,
            [
                ("alice", 0),
                ("low", ResponseError::UnacceptableCredential.code()),
                ("high", ResponseError::UnacceptableCredential.code()),
                ("mech", ResponseError::UnsupportedSaslMechanism.code()),
                ("twice", ResponseError::DuplicateResource.code()),
                ("ghost", ResponseError::ResourceNotFound.code()),
                ("", ResponseError::UnacceptableCredential.code()),
                (
                    "fjord-internal",
                    ResponseError::UnacceptableCredential.code()
                ),
            ]
        );
        assert!(
            metadata
                .scram_credential("twice", ScramMechanism::Sha256)
                .is_none()
        );

        let described = describe(&metadata, None);
        assert_eq!(described.len(), 1);
        assert_eq!(describe(&metadata, Some(Vec::new())).len(), 1);
        assert_eq!(
            described[0].1.as_ref().ok(),
            Some(&vec![
                (ScramMechanism::Sha256, 4096),
                (ScramMechanism::Sha512, 16384)
            ])
        );
        let asked = describe(
            &metadata,
            Some(vec![
                "alice".into(),
                "bob".into(),
                "dup".into(),
                "dup".into(),
            ]),
        );
        let codes: Vec<(&str, i16)> = asked
            .iter()
            .map(|(u, r)| (u.as_str(), r.as_ref().err().map_or(0, |e| e.code)))
            .collect();
        assert_eq!(
            codes,
            [
                ("alice", 0),
                ("bob", ResponseError::ResourceNotFound.code()),
                ("dup", ResponseError::DuplicateResource.code()),
            ]
        );

        // A deletion and an upsertion of different mechanisms in one go.
        let results = alter(
            &metadata,
            vec![upsert("alice", 1, 8192), delete("alice", 2)],
        )
        .await;
        assert_eq!(code(&results[0].1), 0);
        assert_eq!(
            describe(&metadata, Some(vec!["alice".into()]))[0]
                .1
                .as_ref()
                .ok(),
            Some(&vec![(ScramMechanism::Sha256, 8192)])
        );
    }
}
