//! What every client subcommand shares: the bootstrap address, the SASL
//! login, and the librdkafka configuration built from them; and, for the
//! commands that change pipelines, the admin HTTP API's address.

use rdkafka::ClientConfig;

/// Connection flags of every client subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// Broker to bootstrap from (host:port, comma-separated for several).
    #[arg(
        short = 'b',
        long = "bootstrap-server",
        env = "FJORD_BOOTSTRAP_SERVER",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    #[command(flatten)]
    pub sasl: SaslArgs,
}

/// How a client logs in (SASL over the plain listener). Without a user it
/// stays anonymous.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SaslArgs {
    /// Log in as this user (SASL).
    #[arg(id = "sasl_user", long = "sasl-user", env = "FJORD_USER")]
    pub user: Option<String>,
    /// The user's password.
    #[arg(
        id = "sasl_password",
        long = "sasl-password",
        env = "FJORD_PASSWORD",
        requires = "sasl_user",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// The SASL mechanism to log in with.
    #[arg(
        id = "sasl_mechanism",
        long = "sasl-mechanism",
        env = "FJORD_SASL_MECHANISM",
        default_value = "SCRAM-SHA-512",
        value_parser = ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
    )]
    pub mechanism: String,
}

impl SaslArgs {
    /// The user and password, when a user is given (a password must be too).
    pub fn login(&self) -> anyhow::Result<Option<(&str, &str)>> {
        match (&self.user, &self.password) {
            (None, _) => Ok(None),
            (Some(user), Some(password)) => Ok(Some((user, password))),
            (Some(user), None) => {
                anyhow::bail!("--sasl-user {user} needs --sasl-password (or FJORD_PASSWORD)")
            }
        }
    }
}

/// The admin API flag of the commands that change pipelines: they go
/// through a broker's admin HTTP API (see `admin.rs`), not a Kafka produce.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// A broker's admin HTTP API (host:port, or http://host:port).
    #[arg(long = "admin", env = "FJORD_ADMIN", default_value = "127.0.0.1:9644")]
    pub admin: String,
}

impl ClientArgs {
    /// A librdkafka configuration for a consumer that reads partitions it
    /// assigns itself. librdkafka's assign() wants a group id even though no
    /// group API is used and no offset is committed.
    pub fn assigning_consumer_config(&self) -> ClientConfig {
        let mut config = self.config();
        config
            .set("group.id", "fjord-cli")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true");
        config
    }

    /// A librdkafka configuration pointing at the bootstrap server.
    pub fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_server)
            .set("socket.timeout.ms", "10000")
            .set("log_level", "3");
        if let (Some(user), Some(password)) = (&self.sasl.user, &self.sasl.password) {
            config
                .set("security.protocol", "SASL_PLAINTEXT")
                .set("sasl.mechanism", &self.sasl.mechanism)
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        config
    }
}

/// Parses `key=value`.
pub fn key_value(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {arg:?}"))
}
