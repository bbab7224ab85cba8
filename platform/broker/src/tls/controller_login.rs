//! The SASL login of the controller quorum's links, when the controller
//! listener (`controller.listener.names`) is SASL_SSL or SASL_PLAINTEXT:
//! before any quorum traffic, the connecting node logs in with SCRAM
//! (`sasl.mechanism.controller.protocol`, SCRAM-SHA-512 by default) as the
//! user of the listener's `…sasl.jaas.config`, and the accepting node
//! checks the proof against a credential it derived from the same password
//! (every node of the cluster is given the same line), then proves in turn
//! that it knows it (SCRAM's server signature). Neither end sends the
//! password; a peer without it is refused before it sends or reads anything
//! of the quorum's, and a node that reaches an impostor refuses it.
//!
//! Why a configured password and not the cluster's internal secret or the
//! users' SCRAM credentials: those live in the metadata the quorum
//! replicates, which does not exist before the links are up.
//!
//! It is for the exchange and its framing (each message a 2-byte length
//! and at most [`MAX_MESSAGE`] bytes; answers start with `+` or, refused,
//! `-` and a reason). It is not for TLS underneath (`super::controller`),
//! nor for Kafka clients' SASL (`crate::sasl`), whose failed-login limiter
//! it shares the design of (at most five failures per second per user and
//! address).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::{BrokerConfig, LISTENER_PREFIX, Password};
use crate::error::BrokerError;
use crate::listeners::ListenerSpec;
use crate::sasl::Limiter;
use crate::scram::{self, ScramClient, ScramError, ScramMechanism, ServerExchange};

/// The largest message of the exchange: SCRAM's are a few hundred bytes.
pub(crate) const MAX_MESSAGE: usize = 4096;

/// How long a peer has for the whole login.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The iterations of the credential the accepting side derives (SCRAM's
/// minimum: the password is a machine's secret, not a person's).
const ITERATIONS: u32 = scram::SCRAM_MIN_ITERATIONS;

/// The login module a `…sasl.jaas.config` line must name.
pub(crate) const SCRAM_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.scram.ScramLoginModule";

/// Why a login over a quorum link failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkLoginError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Scram(#[from] ScramError),
    /// A message longer than [`MAX_MESSAGE`], or not of the exchange.
    #[error("not a quorum link login: {0}")]
    Protocol(&'static str),
    /// The peer logs in with another mechanism.
    #[error("the peer logs in with {0}; this node with {1} (sasl.mechanism.controller.protocol)")]
    Mechanism(String, &'static str),
    /// Too many failures for this user from this address this second.
    #[error("too many failed logins for this user from this address")]
    TooManyAttempts,
    /// The other end refused the login, with its reason.
    #[error("refused by the peer: {0}")]
    Refused(String),
    /// Not the whole exchange within [`LOGIN_TIMEOUT`].
    #[error("no login within {} s", LOGIN_TIMEOUT.as_secs())]
    Timeout,
}

impl From<LinkLoginError> for io::Error {
    fn from(e: LinkLoginError) -> io::Error {
        match e {
            LinkLoginError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
}

/// This node's login on the quorum's links: the client side's user and
/// password, and the credential the server side checks peers against.
pub(crate) struct LinkLogin {
    mechanism: ScramMechanism,
    user: String,
    password: Password,
    credential: scram::ScramCredential,
    limiter: Limiter,
}

impl std::fmt::Debug for LinkLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkLogin")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl LinkLogin {
    /// The login `config` describes for the SASL controller listener
    /// `spec`: `sasl.mechanism.controller.protocol` and
    /// `listener.name.<spec>.<mechanism>.sasl.jaas.config`.
    pub(crate) fn from_config(
        config: &BrokerConfig,
        spec: &ListenerSpec,
    ) -> Result<LinkLogin, BrokerError> {
        let bad = |key: &str, why: String| BrokerError::Config(format!("{key}: {why}"));
        let key = "sasl.mechanism.controller.protocol";
        let name = config
            .sasl_mechanism_controller_protocol
            .as_deref()
            .unwrap_or("SCRAM-SHA-512")
            .trim()
            .to_ascii_uppercase();
        let mechanism = match ScramMechanism::from_name(&name) {
            Some(m) => m,
            None if name == "PLAIN" => {
                return Err(bad(
                    key,
                    "PLAIN sends the password itself; the controller quorum's links log in with SCRAM-SHA-512 or SCRAM-SHA-256".to_owned(),
                ));
            }
            None => {
                return Err(bad(
                    key,
                    format!(
                        "{name} is not served on the controller quorum's links; SCRAM-SHA-512 or SCRAM-SHA-256 is"
                    ),
                ));
            }
        };
        let jaas_key = format!(
            "{LISTENER_PREFIX}{}.{}.sasl.jaas.config",
            spec.name.to_ascii_lowercase(),
            mechanism.name().to_ascii_lowercase()
        );
        let Some(line) = config.listener_overrides.get(&jaas_key) else {
            return Err(bad(
                "controller.listener.names",
                format!(
                    "{} is a {} listener: its links log in with {jaas_key}: {SCRAM_LOGIN_MODULE} required username=\"…\" password=\"…\"; (the same on every node), which is not set",
                    spec.name,
                    spec.protocol.name()
                ),
            ));
        };
        let (user, password) = parse_jaas(line).map_err(|why| bad(&jaas_key, why))?;
        let credential = scram::credential(
            mechanism,
            password.expose().as_bytes(),
            scram::random_salt().map_err(|e| bad(&jaas_key, e.to_string()))?,
            ITERATIONS,
        );
        Ok(LinkLogin {
            mechanism,
            user,
            password,
            credential,
            limiter: Limiter::default(),
        })
    }

    /// Logs in to the peer at `addr` over `stream` (after TLS, if any):
    /// this node's proof, then the peer's.
    pub(crate) async fn connect<S>(&self, stream: &mut S, addr: &str) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let exchange = async {
            let (client, first) =
                ScramClient::new(self.mechanism, &self.user, self.password.expose())?;
            let mut message = format!("{} ", self.mechanism.name()).into_bytes();
            message.extend_from_slice(&first);
            write_message(stream, &message).await?;
            let server_first = read_answer(stream).await?;
            // PBKDF2: off the runtime's threads.
            let (client, client_final) = tokio::task::spawn_blocking(move || {
                let mut client = client;
                let message = client.finish(&server_first);
                (client, message)
            })
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
            write_message(stream, &client_final?).await?;
            let server_final = read_answer(stream).await?;
            client.verify(&server_final)?;
            Ok::<(), LinkLoginError>(())
        };
        let result = match tokio::time::timeout(LOGIN_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(LinkLoginError::Timeout),
        };
        if let Err(e) = &result {
            login_failed("refused by the controller it connected to", addr, None, e);
        }
        result.map_err(io::Error::from)
    }

    /// Checks the login of the peer at `peer` over `stream`, and proves
    /// this node knows the password; an error refuses the connection (the
    /// peer is told it was refused, not why).
    pub(crate) async fn accept<S>(&self, stream: &mut S, peer: SocketAddr) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let mut user = None;
        let exchange = self.check(stream, peer, &mut user);
        let result = match tokio::time::timeout(LOGIN_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(LinkLoginError::Timeout),
        };
        if let Err(e) = &result {
            if matches!(e, LinkLoginError::Scram(_) | LinkLoginError::Mechanism(..))
                && let Some(user) = &user
            {
                self.limiter.failed(peer.ip(), user);
            }
            let _ = write_refusal(stream, e).await;
            login_failed("refused", &peer.to_string(), user.as_deref(), e);
        }
        result.map_err(io::Error::from)
    }

    async fn check<S>(
        &self,
        stream: &mut S,
        peer: SocketAddr,
        user: &mut Option<String>,
    ) -> Result<(), LinkLoginError>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let message = read_message(stream).await?;
        let space = message
            .iter()
            .position(|&b| b == b' ')
            .ok_or(LinkLoginError::Protocol("no mechanism"))?;
        let (mechanism, first) = (&message[..space], &message[space + 1..]);
        let first = scram::parse_client_first(first)?;
        *user = Some(first.user.clone());
        if mechanism != self.mechanism.name().as_bytes() {
            return Err(LinkLoginError::Mechanism(
                String::from_utf8_lossy(mechanism)
                    .chars()
                    .take(32)
                    .collect(),
                self.mechanism.name(),
            ));
        }
        self.limiter
            .check(peer.ip(), &first.user)
            .map_err(|_| LinkLoginError::TooManyAttempts)?;
        if first.authzid.as_ref().is_some_and(|a| *a != first.user) {
            return Err(ScramError::Unsupported("another user's authorization id").into());
        }
        // Another user fails at the proof, at the cost of the right one.
        let credential = if first.user == self.user {
            self.credential.clone()
        } else {
            scram::unknown_user_credential(self.mechanism, &first.user)?
        };
        let (exchange, server_first) = ServerExchange::start(self.mechanism, credential, first)?;
        write_answer(stream, &server_first).await?;
        let client_final = read_message(stream).await?;
        let server_final = exchange.finish(&client_final)?;
        write_answer(stream, &server_final).await?;
        Ok(())
    }
}

/// `ScramLoginModule required username="…" password="…";`: the user and
/// password (see `crate::jaas` for the syntax).
pub(crate) fn parse_jaas(line: &str) -> Result<(String, Password), String> {
    let mut options = crate::jaas::options(line, SCRAM_LOGIN_MODULE)?;
    let user = options.remove("username").unwrap_or_default();
    let password = options.remove("password").unwrap_or_default();
    // Kafka's other options (e.g. tokenauth) do not apply here.
    if let Some(other) = options.keys().next() {
        return Err(format!("{other}: not an option of the quorum's login"));
    }
    if user.is_empty() || password.is_empty() {
        return Err("needs a username and a password, neither empty".to_owned());
    }
    Ok((user, Password::new(password)))
}

async fn write_message<S>(stream: &mut S, message: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let len = u16::try_from(message.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::other("login message too long"))?;
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await?;
    stream.flush().await
}

async fn read_message<S>(stream: &mut S) -> Result<Vec<u8>, LinkLoginError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > MAX_MESSAGE {
        return Err(LinkLoginError::Protocol("a message over 4096 bytes"));
    }
    let mut message = vec![0u8; len];
    stream.read_exact(&mut message).await?;
    Ok(message)
}

async fn write_answer<S>(stream: &mut S, answer: &[u8]) -> io::Result<()>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let mut message = Vec::with_capacity(1 + answer.len());
    message.push(b'+');
    message.extend_from_slice(answer);
    write_message(stream, &message).await
}

/// Tells the peer it was refused; the reason stays in this node's log,
/// but for a mechanism mismatch or a limited peer, which are no secret.
async fn write_refusal<S>(stream: &mut S, why: &LinkLoginError) -> io::Result<()>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let reason = match why {
        LinkLoginError::Mechanism(..) | LinkLoginError::TooManyAttempts => why.to_string(),
        _ => "authentication failed: invalid credentials".to_owned(),
    };
    let mut message = b"-".to_vec();
    message.extend_from_slice(reason.as_bytes());
    write_message(stream, &message).await
}

async fn read_answer<S>(stream: &mut S) -> Result<Vec<u8>, LinkLoginError>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let mut answer = read_message(stream).await?;
    match answer.first() {
        Some(b'+') => {
            answer.remove(0);
            Ok(answer)
        }
        Some(b'-') => Err(LinkLoginError::Refused(
            String::from_utf8_lossy(&answer[1..]).into_owned(),
        )),
        _ => Err(LinkLoginError::Protocol("an answer without + or -")),
    }
}

/// At most one warning per 10 s about failed quorum link logins (a node
/// with the wrong password retries every few hundred milliseconds), with
/// the count of the others.
fn login_failed(what: &str, peer: &str, user: Option<&str>, why: &LinkLoginError) {
    static LAST_LOGGED_S: AtomicU64 = AtomicU64::new(0);
    static UNLOGGED: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED_S.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST_LOGGED_S
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let others = UNLOGGED.swap(0, Ordering::Relaxed);
        tracing::warn!(
            %peer,
            user = ?user,
            reason = %why,
            others,
            "controller quorum link login {what}; connection closed (others: failures since the last such line)"
        );
    } else {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(password: &str) -> LinkLogin {
        let yaml = format!(
            "listeners: PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             controller.listener.names: CONTROLLER\n\
             listener.security.protocol.map: PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT\n\
             listener.name.controller.scram-sha-512.sasl.jaas.config: >-\n  \
             {SCRAM_LOGIN_MODULE} required username=\"fjord-internal\" password=\"{password}\";\n"
        );
        let config: BrokerConfig = crate::yaml::from_str(&yaml).unwrap();
        let listeners = crate::listeners::Listeners::from_config(&config).unwrap();
        LinkLogin::from_config(&config, listeners.controller.as_ref().unwrap()).unwrap()
    }

    /// Both ends over a real socket: the same password logs in both ways;
    /// another is refused by the server (and the client is told), and a
    /// server without the password is refused by the client.
    #[tokio::test]
    async fn the_same_password_logs_in_and_another_is_refused() {
        async fn pair(client: &LinkLogin, server: &LinkLogin) -> (io::Result<()>, io::Result<()>) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepting = async {
                let (mut stream, peer) = listener.accept().await.unwrap();
                server.accept(&mut stream, peer).await
            };
            let connecting = async {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                client.connect(&mut stream, &addr.to_string()).await
            };
            let (a, c) = tokio::join!(accepting, connecting);
            (c, a)
        }
        let good = login("correct horse battery");
        let other = login("correct horse battery");
        let (c, a) = pair(&good, &other).await;
        assert!(c.is_ok() && a.is_ok(), "{c:?} {a:?}");
        let wrong = login("wrong");
        let (c, a) = pair(&wrong, &good).await;
        let (c, a) = (c.unwrap_err().to_string(), a.unwrap_err().to_string());
        assert!(
            c.contains("refused by the peer: authentication failed"),
            "{c}"
        );
        assert!(a.contains("invalid credentials"), "{a}");
        // An impostor server, which cannot know the password: its answer
        // to the proof is refused by the client.
        let (c, _) = pair(&good, &wrong).await;
        assert!(c.is_err());
    }

    #[test]
    fn jaas_lines() {
        let (user, password) = parse_jaas(&format!(
            "{SCRAM_LOGIN_MODULE} required username=\"a\" password=\"p\\\"w;\";"
        ))
        .unwrap();
        assert_eq!((user.as_str(), password.expose()), ("a", "p\"w;"));
        for bad in [
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";".to_owned(),
            format!("{SCRAM_LOGIN_MODULE} required username=\"a\";"),
            format!("{SCRAM_LOGIN_MODULE} required username=\"a\" password=\"b\""),
            format!("{SCRAM_LOGIN_MODULE} optional username=\"a\" password=\"b\";"),
            format!("{SCRAM_LOGIN_MODULE} required username=a password=\"b\";"),
            format!("{SCRAM_LOGIN_MODULE} required username=\"a\" password=\"b;"),
            format!("{SCRAM_LOGIN_MODULE} required username=\"a\" password=\"\";"),
            format!("{SCRAM_LOGIN_MODULE} required username=\"a\" password=\"b\" tokenauth=\"true\";"),
        ] {
            assert!(parse_jaas(&bad).is_err(), "{bad}");
        }
    }
}
