//! What every client subcommand shares: the bootstrap address, the SASL
//! login, TLS, and the librdkafka configuration built from them; and, for
//! the commands that change pipelines, the admin HTTP API's address, CA
//! and login.

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
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS to the Kafka port, with librdkafka's names.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: SASL_PLAINTEXT
    /// with --sasl-user, else PLAINTEXT; SSL or SASL_SSL with an
    /// --ssl-* file).
    #[arg(
        long = "security-protocol",
        env = "FJORD_SECURITY_PROTOCOL",
        value_parser = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
        ignore_case = true
    )]
    pub security_protocol: Option<String>,
    /// A PEM file of the CA(s) that signed the broker's certificate.
    #[arg(long = "ssl-ca-location", env = "FJORD_SSL_CA_LOCATION")]
    pub ca: Option<String>,
    /// This client's certificate (PEM), for a listener with
    /// ssl.client.auth.
    #[arg(
        long = "ssl-certificate-location",
        env = "FJORD_SSL_CERTIFICATE_LOCATION"
    )]
    pub certificate: Option<String>,
    /// This client's private key (PEM).
    #[arg(long = "ssl-key-location", env = "FJORD_SSL_KEY_LOCATION")]
    pub key: Option<String>,
}

impl TlsArgs {
    /// The security protocol: as given, else what the other flags imply.
    pub fn protocol(&self, sasl: bool) -> String {
        if let Some(p) = &self.security_protocol {
            return p.to_ascii_uppercase();
        }
        let tls = self.ca.is_some() || self.certificate.is_some();
        match (sasl, tls) {
            (true, true) => "SASL_SSL",
            (true, false) => "SASL_PLAINTEXT",
            (false, true) => "SSL",
            (false, false) => "PLAINTEXT",
        }
        .to_owned()
    }
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

/// Where a broker's admin HTTP API is, and the CA its HTTPS certificate
/// is checked against.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminAddress {
    /// A broker's admin HTTP API (host:port, http://host:port or
    /// https://host:port).
    #[arg(long = "admin", env = "FJORD_ADMIN", default_value = "127.0.0.1:9644")]
    pub admin: String,
    /// A PEM file of the CA(s) that signed the admin API's certificate
    /// (for https://; default: the public web CAs).
    #[arg(long = "admin-ca", env = "FJORD_ADMIN_CA")]
    pub admin_ca: Option<std::path::PathBuf>,
}

/// The admin API flags of the commands that change pipelines: they go
/// through a broker's admin HTTP API (see `admin.rs`), not a Kafka produce,
/// logging in (HTTP Basic) with the same user and password as the Kafka
/// commands (`--sasl-user`, `--sasl-password`).
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    #[command(flatten)]
    pub address: AdminAddress,
    #[command(flatten)]
    pub login: SaslArgs,
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
        let login = self.sasl.user.as_ref().zip(self.sasl.password.as_ref());
        config.set("security.protocol", self.tls.protocol(login.is_some()));
        if let Some((user, password)) = login {
            config
                .set("sasl.mechanism", &self.sasl.mechanism)
                .set("sasl.username", user)
                .set("sasl.password", password);
        }
        for (key, value) in [
            ("ssl.ca.location", &self.tls.ca),
            ("ssl.certificate.location", &self.tls.certificate),
            ("ssl.key.location", &self.tls.key),
        ] {
            if let Some(value) = value {
                config.set(key, value);
            }
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
