//! A connection from this broker to another broker's Kafka listener, for
//! the requests replication sends (Fetch with a replica id,
//! OffsetForLeaderEpoch): one request at a time, framed and encoded by the
//! same codecs that serve clients, over plain TCP or TLS as the
//! inter-broker listener's protocol says (`crate::tls::client`).

use std::time::Duration;

use crate::frame::{read_frame, write_frame};
use crate::tls::client::{PeerConnector, Stream};
use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Why a request to a peer failed; the connection is dropped and made again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Frame(#[from] crate::frame::FrameError),
    #[error("encoding or decoding failed: {0}")]
    Codec(String),
    #[error("peer closed the connection")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the peer refused the login: {0}")]
    Login(String),
}

/// Answers are at most this large (a fetch of a few partitions).
const MAX_RESPONSE: usize = 256 << 20;

/// One connection to a peer broker.
pub(crate) struct PeerConnection {
    stream: Box<dyn Stream>,
    correlation: i32,
    client_id: StrBytes,
}

impl PeerConnection {
    /// Connects to `addr` (`host:port`) through `connector` within
    /// `timeout` (TLS handshake included).
    pub(crate) async fn connect(
        connector: &PeerConnector,
        addr: &str,
        client_id: String,
        timeout: Duration,
    ) -> Result<PeerConnection, PeerError> {
        let stream = match connector.connect(addr, timeout).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(PeerError::Timeout(timeout));
            }
            Err(source) => {
                return Err(PeerError::Connect {
                    addr: addr.to_string(),
                    source,
                });
            }
        };
        Ok(PeerConnection {
            stream,
            correlation: 0,
            client_id: StrBytes::from_string(client_id),
        })
    }

    /// Logs in as `user` with SASL/PLAIN (handshake v1, authenticate v0),
    /// so a peer that authorizes sees that principal instead of
    /// `User:ANONYMOUS`.
    pub(crate) async fn login_plain(
        &mut self,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<(), PeerError> {
        let handshake = kafka_protocol::messages::SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str("PLAIN"));
        match self
            .call(ApiKey::SaslHandshake, 1, handshake.into(), timeout)
            .await?
        {
            ResponseKind::SaslHandshake(r) if r.error_code == 0 => {}
            other => return Err(PeerError::Login(format!("handshake: {other:?}"))),
        }
        let token = format!("\0{user}\0{password}");
        let authenticate = kafka_protocol::messages::SaslAuthenticateRequest::default()
            .with_auth_bytes(bytes::Bytes::from(token.into_bytes()));
        match self
            .call(ApiKey::SaslAuthenticate, 0, authenticate.into(), timeout)
            .await?
        {
            ResponseKind::SaslAuthenticate(r) if r.error_code == 0 => Ok(()),
            ResponseKind::SaslAuthenticate(r) => Err(PeerError::Login(format!(
                "error code {}: {}",
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ))),
            other => Err(PeerError::Login(format!("{other:?}"))),
        }
    }

    /// Sends `request` as `api` version `version` and waits up to `timeout`
    /// for its answer.
    pub(crate) async fn call(
        &mut self,
        api: ApiKey,
        version: i16,
        request: RequestKind,
        timeout: Duration,
    ) -> Result<ResponseKind, PeerError> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = api.request_header_version(version);
        let mut body = BytesMut::new();
        body.put_i32(0);
        header
            .encode(&mut body, header_version)
            .map_err(|e| PeerError::Codec(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| PeerError::Codec(e.to_string()))?;
        let length = i32::try_from(body.len() - 4).map_err(|e| PeerError::Codec(e.to_string()))?;
        body[..4].copy_from_slice(&length.to_be_bytes());
        let exchange = async {
            write_frame(&mut self.stream, &body).await?;
            read_frame(&mut self.stream, MAX_RESPONSE).await
        };
        let frame = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => return Err(PeerError::Closed),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(PeerError::Timeout(timeout)),
        };
        let mut frame = frame;
        let response_header =
            ResponseHeader::decode(&mut frame, api.response_header_version(version))
                .map_err(|e| PeerError::Codec(e.to_string()))?;
        if response_header.correlation_id != self.correlation {
            return Err(PeerError::Codec(format!(
                "correlation id {} for request {}",
                response_header.correlation_id, self.correlation
            )));
        }
        let response = ResponseKind::decode(api, &mut frame, version)
            .map_err(|e| PeerError::Codec(e.to_string()))?;
        if frame.has_remaining() {
            tracing::debug!(api = ?api, left = frame.remaining(), "bytes after a peer's answer");
        }
        Ok(response)
    }
}
