//! DescribeUserScramCredentials (key 50) and AlterUserScramCredentials
//! (key 51), KIP-554: the wire side of `crate::users`. Both need the
//! cluster operation (DESCRIBE, ALTER) through `Access::cluster_admin`
//! (the ACLs with an authorizer, else `super.users` only);
//! a refusal is CLUSTER_AUTHORIZATION_FAILED, for the whole request
//! (Describe) or every user in it (Alter), as Kafka answers.

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::auth::ClusterOperation;
use crate::authorizer::Access;
use crate::broker_state::BrokerState;
use crate::error::auth_error_code;
use crate::users::{self, Change};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub(crate) fn describe(
    state: &Arc<BrokerState>,
    access: &Access,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let response = DescribeUserScramCredentialsResponse::default();
    if let Err(e) = access.cluster_admin(ClusterOperation::Describe, state.super_users()) {
        return response
            .with_error_code(auth_error_code(&e))
            .with_error_message(Some(text(&e.to_string())));
    }
    let asked = request
        .users
        .map(|users| users.into_iter().map(|u| u.name.to_string()).collect());
    let results = users::describe(&state.metadata(), asked)
        .into_iter()
        .map(|(user, result)| {
            let answer = DescribeUserScramCredentialsResult::default().with_user(text(&user));
            match result {
                Ok(credentials) => answer.with_credential_infos(
                    credentials
                        .into_iter()
                        .map(|(mechanism, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.kafka_type())
                                .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                        })
                        .collect(),
                ),
                Err(e) => answer
                    .with_error_code(e.code)
                    .with_error_message(Some(text(&e.message))),
            }
        })
        .collect();
    response.with_results(results)
}

pub(crate) async fn alter(
    state: &Arc<BrokerState>,
    access: &Access,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let changes: Vec<Change> = request
        .deletions
        .into_iter()
        .map(|d| Change::Delete {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .chain(request.upsertions.into_iter().map(|u| Change::Upsert {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        }))
        .collect();
    let results = match access.cluster_admin(ClusterOperation::Alter, state.super_users()) {
        Ok(()) => users::alter(&state.metadata(), changes)
            .await
            .into_iter()
            .map(|(user, result)| {
                let answer = AlterUserScramCredentialsResult::default().with_user(text(&user));
                match result {
                    Ok(()) => {
                        tracing::info!(user = ?user, by = %access.principal, "SCRAM credentials altered");
                        answer
                    }
                    Err(e) => answer
                        .with_error_code(e.code)
                        .with_error_message(Some(text(&e.message))),
                }
            })
            .collect(),
        Err(e) => {
            let mut seen = std::collections::HashSet::new();
            changes
                .iter()
                .map(|c| match c {
                    Change::Delete { user, .. } | Change::Upsert { user, .. } => user.clone(),
                })
                .filter(|user| seen.insert(user.clone()))
                .map(|user| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(text(&user))
                        .with_error_code(auth_error_code(&e))
                        .with_error_message(Some(text(&e.to_string())))
                })
                .collect()
        }
    };
    AlterUserScramCredentialsResponse::default().with_results(results)
}
