//! `fjord user create|delete|list`: users and their SCRAM credentials,
//! through any broker with Kafka's own calls (KIP-554's
//! AlterUserScramCredentials and DescribeUserScramCredentials, sent raw:
//! librdkafka has no call for them). The password never leaves this
//! process: it is salted and stretched here (PBKDF2), and only the salted
//! password goes to the broker, which keeps the keys derived from it.
//!
//! The broker lets only super users (`super.users`, the admin user) and
//! the platform change or list users: log in with `--sasl-user` and
//! `--sasl-password` (or `FJORD_USER`, `FJORD_PASSWORD`).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fjord_broker::scram::{self, ScramMechanism};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientArgs;
use crate::raw::{Connection, describe_error};

const CLIENT_ID: &str = "fjord-cli";

/// `fjord user …`
#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user, or give an existing one a new password.
    Create {
        /// User name.
        name: String,
        /// The new user's password (or FJORD_NEW_USER_PASSWORD).
        #[arg(long, env = "FJORD_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM mechanisms to make credentials for (repeat, or
        /// comma-separated). PLAIN logins use the same credentials.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "SCRAM-SHA-256,SCRAM-SHA-512",
            value_parser = ["SCRAM-SHA-256", "SCRAM-SHA-512"]
        )]
        mechanism: Vec<String>,
        /// PBKDF2 iterations (Kafka takes 4096 to 16384).
        #[arg(long, default_value_t = 8192)]
        iterations: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a user (all its credentials, or those of --mechanism).
    Delete {
        /// User name.
        name: String,
        /// Only these mechanisms' credentials.
        #[arg(long, value_delimiter = ',', value_parser = ["SCRAM-SHA-256", "SCRAM-SHA-512"])]
        mechanism: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List users and their mechanisms (never salts or keys).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn connect(client: &ClientArgs) -> Result<Connection> {
    Connection::open_client(client, CLIENT_ID)
}

fn mechanisms(names: &[String]) -> Result<Vec<ScramMechanism>> {
    names
        .iter()
        .map(|n| ScramMechanism::from_name(n).with_context(|| format!("unknown mechanism {n}")))
        .collect()
}

/// Runs a `fjord user` command.
pub fn run(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Create {
            name,
            password,
            mechanism,
            iterations,
            client,
        } => {
            if password.is_empty() {
                bail!("the password is empty");
            }
            let mut upsertions = Vec::new();
            for m in mechanisms(&mechanism)? {
                let salt = scram::random_salt()?;
                let salted = scram::salted_password(m, password.as_bytes(), &salt, iterations);
                upsertions.push(
                    ScramCredentialUpsertion::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_mechanism(m.kafka_type())
                        .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                        .with_salt(Bytes::from(salt))
                        .with_salted_password(Bytes::from(salted)),
                );
            }
            let request = AlterUserScramCredentialsRequest::default().with_upsertions(upsertions);
            check(connect(&client)?.call(0, &request)?)?;
            println!("user {name}: {} credentials set", mechanism.join(", "));
        }
        UserCommand::Delete {
            name,
            mechanism,
            client,
        } => {
            let mut connection = connect(&client)?;
            let wanted = if mechanism.is_empty() {
                // Every mechanism the user has.
                let described = connection.call(
                    0,
                    &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                        UserName::default().with_name(StrBytes::from_string(name.clone())),
                    ])),
                )?;
                if described.error_code != 0 {
                    bail!(describe_error(
                        described.error_code,
                        described.error_message.as_ref()
                    ));
                }
                let result = described
                    .results
                    .first()
                    .context("no answer for the user")?;
                if result.error_code != 0 {
                    bail!(
                        "{name}: {}",
                        describe_error(result.error_code, result.error_message.as_ref())
                    );
                }
                result
                    .credential_infos
                    .iter()
                    .map(|c| c.mechanism)
                    .collect()
            } else {
                mechanisms(&mechanism)?
                    .into_iter()
                    .map(|m| m.kafka_type())
                    .collect::<Vec<_>>()
            };
            let deletions = wanted
                .into_iter()
                .map(|m| {
                    ScramCredentialDeletion::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_mechanism(m)
                })
                .collect();
            let request = AlterUserScramCredentialsRequest::default().with_deletions(deletions);
            check(connection.call(0, &request)?)?;
            println!("user {name} deleted");
        }
        UserCommand::List { client } => {
            let described =
                connect(&client)?.call(0, &DescribeUserScramCredentialsRequest::default())?;
            if described.error_code != 0 {
                bail!(describe_error(
                    described.error_code,
                    described.error_message.as_ref()
                ));
            }
            println!("{:<32} MECHANISMS", "USER");
            for user in described.results {
                let mechanisms: Vec<String> = user
                    .credential_infos
                    .iter()
                    .map(|c| {
                        let name = ScramMechanism::from_kafka_type(c.mechanism)
                            .map_or("?", ScramMechanism::name);
                        format!("{name} ({} iterations)", c.iterations)
                    })
                    .collect();
                println!("{:<32} {}", user.user.as_str(), mechanisms.join(", "));
            }
        }
    }
    Ok(())
}

/// Fails with the first user's error of an AlterUserScramCredentials answer.
fn check(response: AlterUserScramCredentialsResponse) -> Result<()> {
    for result in response.results {
        if result.error_code != 0 {
            bail!(
                "{}: {}",
                result.user.as_str(),
                describe_error(result.error_code, result.error_message.as_ref())
            );
        }
    }
    Ok(())
}
