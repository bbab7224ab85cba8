//! Kafka requests over a TCP connection (TLS with rustls for the SSL and
//! SASL_SSL protocols, `--security-protocol` and `--ssl-*`), encoded with
//! the `kafka-protocol` crate: for the admin APIs librdkafka has no call for
//! (ElectLeaders, AlterPartitionReassignments, UnregisterBroker), for
//! Metadata fields it does not expose (the controller id), and for the
//! fetch benchmark, which wants no client library between it and the
//! bytes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// How long to wait to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for an answer: admin requests wait for the controller
/// quorum (a broker gives up after about 25 s), fetches for `max_wait_ms`.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers larger than this are refused rather than allocated.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// A byte stream to a broker: plain TCP or TLS over it.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One connection to one broker; requests go one at a time.
pub struct Connection {
    stream: Box<dyn Stream>,
    addr: String,
    correlation_id: i32,
    client_id: &'static str,
}

impl Connection {
    /// Connects to `addr` (`host:port`).
    pub fn open(addr: &str, client_id: &'static str) -> Result<Connection> {
        let resolved: Vec<_> = addr
            .to_socket_addrs()
            .with_context(|| format!("{addr} is not a host:port address"))?
            .collect();
        let mut last = None;
        for socket in resolved {
            match TcpStream::connect_timeout(&socket, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_read_timeout(Some(READ_TIMEOUT))?;
                    stream.set_write_timeout(Some(READ_TIMEOUT))?;
                    return Ok(Connection {
                        stream: Box::new(stream),
                        addr: addr.to_owned(),
                        correlation_id: 0,
                        client_id,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(e) => Err(e).with_context(|| format!("could not connect to {addr}")),
            None => bail!("{addr} resolves to no address"),
        }
    }

    /// Connects to the first broker of a comma-separated bootstrap list
    /// that accepts.
    pub fn open_any(bootstrap: &str, client_id: &'static str) -> Result<Connection> {
        let mut errors = Vec::new();
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::open(addr, client_id) {
                Ok(connection) => return Ok(connection),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if errors.is_empty() {
            bail!("no bootstrap server given");
        }
        bail!("no bootstrap server answered: {}", errors.join("; "))
    }

    /// Connects to the first broker of `bootstrap` that accepts, over TLS
    /// when `client`'s security protocol says so, and logs in with its
    /// SASL user, if any: what the commands that send raw requests use.
    pub fn open_client(
        client: &crate::client::ClientArgs,
        client_id: &'static str,
    ) -> Result<Connection> {
        let mut connection = Connection::open_any(&client.bootstrap_server, client_id)?;
        connection.secure(&client.tls, client.sasl.user.is_some())?;
        connection.authenticate(&client.sasl)?;
        Ok(connection)
    }

    /// [`Connection::open`] then, with `client`'s settings, TLS and the
    /// login: for a second broker of the same cluster.
    pub fn open_like(
        addr: &str,
        client: &crate::client::ClientArgs,
        client_id: &'static str,
    ) -> Result<Connection> {
        let mut connection = Connection::open(addr, client_id)?;
        connection.secure(&client.tls, client.sasl.user.is_some())?;
        connection.authenticate(&client.sasl)?;
        Ok(connection)
    }

    /// Runs the TLS handshake over this connection when `tls`'s protocol
    /// (given `sasl`) is SSL or SASL_SSL: the broker's certificate checked
    /// against `--ssl-ca-location` (else the public web CAs are not
    /// known: a CA is needed), with a client certificate when given.
    fn secure(&mut self, tls: &crate::client::TlsArgs, sasl: bool) -> Result<()> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let protocol = tls.protocol(sasl);
        if !protocol.ends_with("SSL") {
            return Ok(());
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &tls.ca else {
            bail!(
                "{protocol} needs --ssl-ca-location (the CA that signed the broker's certificate)"
            );
        };
        for cert in
            CertificateDer::pem_file_iter(ca).with_context(|| format!("--ssl-ca-location {ca}"))?
        {
            roots
                .add(cert.with_context(|| format!("--ssl-ca-location {ca}"))?)
                .with_context(|| format!("--ssl-ca-location {ca}"))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&tls.certificate, &tls.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .with_context(|| format!("--ssl-certificate-location {cert}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .with_context(|| format!("--ssl-certificate-location {cert}"))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("--ssl-key-location {key}"))?;
                builder.with_client_auth_cert(chain, key)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => bail!("--ssl-certificate-location and --ssl-key-location go together"),
        };
        let host = self
            .addr
            .rsplit_once(':')
            .map_or(self.addr.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host.clone())
            .with_context(|| format!("{host} is not a host name or IP address"))?;
        let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name)?;
        let plain: Box<dyn Stream> =
            std::mem::replace(&mut self.stream, Box::new(std::io::Cursor::new(Vec::new())));
        let mut stream = rustls::StreamOwned::new(session, plain);
        // The handshake now, so that its errors say so.
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .with_context(|| format!("TLS handshake with {}", self.addr))?;
        }
        self.stream = Box::new(stream);
        Ok(())
    }

    /// Logs in with `sasl` (SaslHandshake v1, SaslAuthenticate), when it
    /// names a user.
    pub fn authenticate(&mut self, sasl: &crate::client::SaslArgs) -> Result<()> {
        use fjord_broker::scram::{ScramClient, ScramMechanism};
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let Some((user, password)) = sasl.login()? else {
            return Ok(());
        };
        let mechanism = sasl.mechanism.as_str();
        let handshake = self.call(
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        )?;
        if handshake.error_code != 0 {
            let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!(
                "{} does not take SASL {mechanism} ({}); enabled: {}",
                self.addr,
                error_name(handshake.error_code),
                enabled.join(", ")
            );
        }
        let mut step = |token: Vec<u8>| -> Result<Bytes> {
            let answer = self.call(
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
            )?;
            if answer.error_code != 0 {
                bail!(
                    "logging in as {user} ({mechanism}): {}",
                    describe_error(answer.error_code, answer.error_message.as_ref())
                );
            }
            Ok(answer.auth_bytes)
        };
        match ScramMechanism::from_name(mechanism) {
            Some(scram) => {
                let (mut client, first) = ScramClient::new(scram, user, password)?;
                let server_first = step(first)?;
                let server_final = step(client.finish(&server_first)?)?;
                client.verify(&server_final)?;
            }
            None => {
                step(format!("\0{user}\0{password}").into_bytes())?;
            }
        }
        Ok(())
    }

    /// The `host:port` this connection went to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` as `version` of its API and reads the answer.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> Result<R::Response> {
        let api = ApiKey::try_from(R::KEY)
            .map(|key| format!("{key:?}"))
            .unwrap_or_else(|()| format!("API {}", R::KEY));
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut frame = BytesMut::with_capacity(512);
        frame.put_i32(0);
        header.encode(&mut frame, R::header_version(version))?;
        request
            .encode(&mut frame, version)
            .with_context(|| format!("encoding {api} v{version}"))?;
        let len = i32::try_from(frame.len() - 4).context("request too large")?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .write_all(&frame)
            .with_context(|| format!("sending to {}", self.addr))?;

        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).with_context(|| {
            format!(
                "reading the answer to {api} v{version} from {} (the broker closed the \
                 connection or did not answer in time)",
                self.addr
            )
        })?;
        let len = usize::try_from(i32::from_be_bytes(len)).unwrap_or(0);
        if len > MAX_RESPONSE {
            bail!("{} answered with a {len}-byte frame", self.addr);
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .with_context(|| format!("reading from {}", self.addr))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!("{} answered out of order", self.addr);
        }
        R::Response::decode(&mut body, version)
            .with_context(|| format!("decoding the answer to {api} v{version}"))
    }
}

/// A Kafka error code as Kafka's tools name it (`NOT_LEADER_OR_FOLLOWER`).
pub fn error_name(code: i16) -> String {
    let Some(error) = ResponseError::try_from_code(code) else {
        return "NONE".to_owned();
    };
    if let ResponseError::Unknown(code) = error {
        return format!("error code {code}");
    }
    let camel = format!("{error:?}");
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// `NAME: message` for an error code and its optional message.
pub fn describe_error(code: i16, message: Option<&StrBytes>) -> String {
    match message.map(|m| m.as_str()).filter(|m| !m.is_empty()) {
        Some(message) => format!("{}: {message}", error_name(code)),
        None => error_name(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_named_as_kafka_names_them() {
        assert_eq!(
            error_name(ResponseError::PreferredLeaderNotAvailable.code()),
            "PREFERRED_LEADER_NOT_AVAILABLE"
        );
        assert_eq!(
            error_name(ResponseError::UnknownTopicOrPartition.code()),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(30_000), "error code 30000");
    }
}
