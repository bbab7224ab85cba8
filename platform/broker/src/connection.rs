//! One client connection: read a frame, decode it, handle it, write the
//! answer — one request at a time, so answers leave in request order even
//! when the client pipelines (as Kafka does: it mutes a connection while a
//! request is in flight).
//!
//! What carries the bytes is a [`Transport`]: plain TCP, or TLS (rustls,
//! wrapped around the accepted socket by `tls` before [`serve`]); framing,
//! sessions and handlers are the same for both.
//!
//! On a SASL_PLAINTEXT or SASL_SSL listener a connection must authenticate
//! first, as in Kafka: until it has, it may send only ApiVersions,
//! SaslHandshake and SaslAuthenticate, in frames of at most
//! `sasl.server.max.receive.size` bytes; anything else closes it. The same
//! holds during a re-authentication (KIP-368), and once a session's
//! lifetime has passed any request but a SaslHandshake closes the
//! connection.
//!
//! Memory: a frame is read only once `queued.max.request.bytes` has room
//! for it, and decoded within `request.max.array.elements`; both are held
//! until its answer is written (`request_memory`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::server::TlsStream;

use kafka_protocol::messages::ApiKey;

use crate::apis::{self, Reply};
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::frame::{FrameError, frame_begins, read_frame_body, read_frame_length, write_frame};
use crate::instruments;
use crate::log_limit::LogLimit;
use crate::request::{
    DecodeError, Frame, decode_request_limited, encode_legacy_produce_refusal, encode_response,
    encode_unsupported_api_versions,
};
use crate::request_memory::Held;

/// A connection's byte stream, split into the half frames are read from and
/// the half answers are written to (one task uses both, one request at a
/// time).
pub(crate) trait Transport: Send + 'static {
    type Reader: AsyncRead + Unpin + Send;
    /// Closing the connection drops it; a transport that must say goodbye
    /// (TCP's FIN, TLS's close_notify) does so then.
    type Writer: AsyncWrite + Unpin + Send;
    fn into_split(self) -> (Self::Reader, Self::Writer);
}

/// Plain TCP. Tokio's owned halves share the socket without a lock, and
/// dropping the write half shuts down the sending side.
impl Transport for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;
    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        TcpStream::into_split(self)
    }
}

/// TLS over TCP. rustls keeps one state for both directions, so the halves
/// share it behind tokio's lock (one task uses both, never at once).
impl Transport for TlsStream<TcpStream> {
    type Reader = tokio::io::ReadHalf<TlsStream<TcpStream>>;
    type Writer = tokio::io::WriteHalf<TlsStream<TcpStream>>;
    fn into_split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// The requests a connection that must authenticate may send first.
fn allowed_before_authentication(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

/// How long a connection refused with an answer (a failed login) waits
/// for the client to close first.
const LINGER: Duration = Duration::from_millis(500);

/// After a last answer, waits (at most [`LINGER`], reading and dropping at
/// most 64 KiB) for the client to close, so that the answer and the end of
/// the stream reach it apart: kafka-python 3.0 drops bytes that arrive in
/// the same read as the end of the stream, and so showed a failed login as
/// a lost connection instead of the broker's message.
async fn linger<R: AsyncRead + Unpin>(reader: &mut R) {
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 || n >= left {
                break;
            }
            left -= n;
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Reads one frame: its first byte within `connections.max.idle.ms`
/// (`idle`), the rest within `socket.request.read.timeout.ms` (`whole`),
/// not counting the wait for `queued.max.request.bytes` to have room for it
/// (see `request_memory`; a client is not cut off for the broker's being
/// busy). The permits come back with the frame and are held until its
/// answer is written. `Ok(None)` is a clean close.
async fn read_request_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    state: &BrokerState,
    max: usize,
    (idle, whole): (Duration, Duration),
) -> Result<Option<(Bytes, Held)>, FrameError> {
    if !frame_begins(reader, idle).await? {
        return Ok(None);
    }
    let begun = Instant::now();
    let length = tokio::time::timeout(whole, read_frame_length(reader, max))
        .await
        .map_err(|_| FrameError::TooSlow(whole))??;
    let Some(length) = length else {
        return Ok(None);
    };
    let left = whole.saturating_sub(begun.elapsed());
    let held = state.request_memory().frame(length).await;
    let frame = tokio::time::timeout(left, read_frame_body(reader, length))
        .await
        .map_err(|_| FrameError::TooSlow(whole))??;
    Ok(Some((frame, held)))
}

/// Decodes a frame within `request.max.array.elements`, and charges its
/// decoded form to `queued.max.request.bytes` in `held`. Without room, the
/// decoded request is dropped while waiting (only the frame, counted
/// already, is kept) and decoded again once there is.
async fn decode_charged(
    state: &BrokerState,
    frame: Bytes,
    held: &mut Held,
) -> Result<Frame, DecodeError> {
    let limit = state.config().request_max_array_elements;
    let memory = state.request_memory();
    let (decoded, elements) = decode_request_limited(frame.clone(), limit)?;
    if let Some(room) = memory.try_decoded(elements) {
        held.join(room);
        return Ok(decoded);
    }
    drop(decoded);
    held.join(memory.decoded(elements).await);
    decode_request_limited(frame, limit).map(|(decoded, _)| decoded)
}

/// Logs a connection closed for what it sent that is not a frame (or
/// not in time): one line per client address per interval, so a fuzzer
/// cannot flood the log.
fn bad_frame(peer: SocketAddr, error: &FrameError) {
    static BAD_FRAME: LogLimit = LogLimit::new();
    if let Some(suppressed) = BAD_FRAME.admit(peer.ip()) {
        tracing::warn!(%peer, %error, suppressed, "closing connection: bad frame (suppressed: such lines for this address since the last one)");
    }
}

/// The same for a frame that does not decode as a request.
fn bad_request(peer: SocketAddr, error: &crate::request::DecodeError) {
    static BAD_REQUEST: LogLimit = LogLimit::new();
    if let Some(suppressed) = BAD_REQUEST.admit(peer.ip()) {
        tracing::warn!(%peer, %error, suppressed, "closing connection: bad request (suppressed: such lines for this address since the last one)");
    }
}

/// Serves one connection until the client closes it, it sends something
/// unframeable or undecodable (logged, then closed), it sends no request
/// for `connections.max.idle.ms` or takes longer than
/// `socket.request.read.timeout.ms` to send one whole (closed), or the
/// broker stops.
pub(crate) async fn serve<T: Transport>(
    transport: T,
    state: Arc<BrokerState>,
    mut session: Session,
) {
    let peer = session.peer;
    tracing::debug!(%peer, listener = %session.listener.name, "connection opened");
    let (read_half, mut writer) = transport.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut shutdown = state.shutdown();
    loop {
        // A client over its quota: its answer is sent, and its next
        // request waits out the throttle (Kafka mutes the channel).
        let mute = std::mem::take(&mut session.mute);
        if !mute.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(mute) => {}
                _ = crate::shutdown::stopped(&mut shutdown) => break,
            }
        }
        // Before authentication a client may send only small frames: the
        // SASL exchange's (Kafka's `sasl.server.max.receive.size`).
        let max = if session.must_authenticate() {
            state.config().sasl_server_max_receive_size
        } else {
            state.config().socket_request_max_bytes
        };
        let (idle, whole) = (
            state.config().idle_timeout(),
            state.config().frame_read_timeout(),
        );
        let frame = tokio::select! {
            frame = read_request_frame(&mut reader, &state, max, (idle, whole)) => frame,
            _ = crate::shutdown::stopped(&mut shutdown) => break,
        };
        // Held until this iteration ends, after the answer is written.
        let (frame, mut held) = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(FrameError::Idle(_)) => {
                tracing::debug!(%peer, "closing connection: idle for connections.max.idle.ms");
                break;
            }
            Err(e) => {
                bad_frame(peer, &e);
                break;
            }
        };
        if session.sasl.expects_bare_token() {
            // After SaslHandshake v0 the token is a bare frame, and so is
            // the answer.
            match apis::sasl::bare_token(&state, &mut session, &frame).await {
                Ok(out) => {
                    if let Err(e) = write_frame(&mut writer, &out).await {
                        tracing::debug!(%peer, error = %e, "connection lost while writing");
                        break;
                    }
                    continue;
                }
                Err(why) => {
                    tracing::debug!(%peer, reason = why, "closing connection");
                    break;
                }
            }
        }
        let out = match decode_charged(&state, frame, &mut held).await {
            Ok(Frame::Request(request)) => {
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.header.correlation_id;
                if session.sasl.expired(Instant::now()) && api_key != ApiKey::SaslHandshake {
                    // Kafka closes an expired session's connection on its
                    // next request; the client reconnects and logs in.
                    tracing::info!(
                        %peer,
                        principal = %session.principal,
                        ?api_key,
                        "closing connection: SASL session expired without re-authentication"
                    );
                    break;
                }
                if (session.must_authenticate() || session.sasl.exchanging())
                    && !allowed_before_authentication(api_key)
                {
                    // Kafka: "Unexpected Kafka request of type … during
                    // SASL handshake", and the connection is closed.
                    tracing::info!(
                        %peer,
                        listener = %session.listener.name,
                        ?api_key,
                        "closing connection: request before SASL authentication"
                    );
                    break;
                }
                tracing::trace!(%peer, ?api_key, version, correlation_id, "request");
                let started = Instant::now();
                let reply = apis::handle(&state, *request, &mut session).await;
                let failed = match &reply {
                    Reply::Nothing => false,
                    Reply::Send(response) => instruments::response_failed(response),
                    Reply::Close(_) | Reply::SendAndClose(..) => true,
                };
                instruments::request(api_key, started.elapsed(), failed);
                match reply {
                    Reply::Nothing => continue,
                    Reply::Send(response) => {
                        encode_response(api_key, version, correlation_id, &response)
                    }
                    Reply::Close(why) => {
                        tracing::info!(%peer, reason = why, "closing connection");
                        break;
                    }
                    Reply::SendAndClose(response, why) => {
                        if let Ok(out) =
                            encode_response(api_key, version, correlation_id, &response)
                            && write_frame(&mut writer, &out).await.is_ok()
                        {
                            linger(&mut reader).await;
                        }
                        tracing::debug!(%peer, reason = why, "closing connection");
                        break;
                    }
                }
            }
            Ok(Frame::LegacyProduce {
                correlation_id,
                version,
                request,
            }) => {
                if session.must_authenticate() || session.sasl.exchanging() {
                    tracing::info!(%peer, "closing connection: request before SASL authentication");
                    break;
                }
                tracing::debug!(%peer, version, "Produce v0-2 refused with UNSUPPORTED_VERSION");
                if request.acks == 0 {
                    continue;
                }
                Ok(encode_legacy_produce_refusal(
                    correlation_id,
                    version,
                    &request,
                ))
            }
            Ok(Frame::LegacyListOffsets(mut legacy)) => {
                if session.must_authenticate() || session.sasl.exchanging() {
                    tracing::info!(%peer, "closing connection: request before SASL authentication");
                    break;
                }
                tracing::trace!(%peer, correlation_id = legacy.correlation_id, "ListOffsets v0");
                let started = Instant::now();
                let request = std::mem::take(&mut legacy.request);
                let response = apis::legacy_list_offsets(&state, request, &session);
                instruments::request(ApiKey::ListOffsets, started.elapsed(), false);
                Ok(crate::legacy_list_offsets::encode(&legacy, &response))
            }
            Ok(Frame::LegacyDescribeConfigs(mut legacy)) => {
                if session.must_authenticate() || session.sasl.exchanging() {
                    tracing::info!(%peer, "closing connection: request before SASL authentication");
                    break;
                }
                let started = Instant::now();
                let request = std::mem::take(&mut legacy.request);
                let response = apis::legacy_describe_configs(&state, request, &session);
                instruments::request(ApiKey::DescribeConfigs, started.elapsed(), false);
                Ok(crate::legacy_describe_configs::encode(&legacy, &response))
            }
            Ok(Frame::UnsupportedApiVersions { correlation_id }) => {
                tracing::debug!(%peer, "ApiVersions of an unknown version; answering v0");
                encode_unsupported_api_versions(
                    correlation_id,
                    &apis::api_versions::response(
                        kafka_protocol::ResponseError::UnsupportedVersion.code(),
                    ),
                )
            }
            Err(e) => {
                bad_request(peer, &e);
                break;
            }
        };
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                tracing::error!(%peer, error = %e, "cannot encode response; closing connection");
                break;
            }
        };
        if let Err(e) = write_frame(&mut writer, &out).await {
            tracing::debug!(%peer, error = %e, "connection lost while writing");
            break;
        }
    }
    tracing::debug!(%peer, "connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

    /// An in-memory stream, split as a TLS stream would be: what `serve`
    /// asks of a transport is the two halves, nothing of TCP.
    impl Transport for DuplexStream {
        type Reader = ReadHalf<DuplexStream>;
        type Writer = WriteHalf<DuplexStream>;
        fn into_split(self) -> (Self::Reader, Self::Writer) {
            tokio::io::split(self)
        }
    }

    /// A connection over a transport other than TCP answers a request and
    /// ends when the client closes its side.
    #[tokio::test]
    async fn serves_any_transport() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let state = crate::apis::tests::state(dir.path())?;
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer = "127.0.0.1:9".parse()?;
        let listener = Arc::new(crate::listeners::BoundListener::plaintext_for_tests());
        let session = Session::new(peer, listener, crate::auth::Principal::Anonymous);
        let served = tokio::spawn(serve(server, state, session));

        let version = 3;
        let mut request = BytesMut::new();
        request.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(version)
            .with_correlation_id(42)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(
                &mut request,
                ApiKey::ApiVersions.request_header_version(version),
            )?;
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("test"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .encode(&mut request, version)?;
        let length = (request.len() - 4) as i32;
        request[..4].copy_from_slice(&length.to_be_bytes());
        client.write_all(&request).await?;

        let length = client.read_i32().await?;
        let mut answer = vec![0; usize::try_from(length)?];
        client.read_exact(&mut answer).await?;
        let mut answer = bytes::Bytes::from(answer);
        // ApiVersions answers carry response header v0.
        let header = ResponseHeader::decode(&mut answer, 0)?;
        let response = ApiVersionsResponse::decode(&mut answer, version)?;
        assert_eq!(header.correlation_id, 42);
        assert_eq!(response.error_code, 0);
        assert!(!response.api_keys.is_empty());
        assert!(!answer.has_remaining());

        client.shutdown().await?;
        tokio::time::timeout(std::time::Duration::from_secs(30), served).await??;
        // The server dropped its end: the client reads the end of the stream.
        assert_eq!(client.read(&mut [0; 1]).await?, 0);
        Ok(())
    }

    /// A request whose decoded form finds no room in
    /// `queued.max.request.bytes` waits (unanswered) until there is, then is
    /// decoded again and answered.
    #[tokio::test]
    async fn a_decoded_request_waits_for_room() -> Result<(), Box<dyn std::error::Error>> {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
        let dir = tempfile::tempdir()?;
        let mut config = crate::config::BrokerConfig::ephemeral(dir.path());
        config.queued_max_request_bytes = 1 << 20;
        let state = crate::apis::tests::state_with(config)?;
        // Take the whole decoded share.
        let hog = state.request_memory().decoded(usize::MAX).await;
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let peer = "127.0.0.1:9".parse()?;
        let listener = Arc::new(crate::listeners::BoundListener::plaintext_for_tests());
        let session = Session::new(peer, listener, crate::auth::Principal::Anonymous);
        let served = tokio::spawn(serve(server, Arc::clone(&state), session));

        let version = 4;
        let mut request = BytesMut::new();
        request.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(version)
            .with_correlation_id(5)
            .encode(
                &mut request,
                ApiKey::Metadata.request_header_version(version),
            )?;
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("absent")))),
            ]))
            .with_allow_auto_topic_creation(false)
            .encode(&mut request, version)?;
        let length = (request.len() - 4) as i32;
        request[..4].copy_from_slice(&length.to_be_bytes());
        client.write_all(&request).await?;

        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(300), client.read_i32()).await;
        assert!(waited.is_err(), "answered without room for the request");
        drop(hog);
        let length =
            tokio::time::timeout(std::time::Duration::from_secs(30), client.read_i32()).await??;
        let mut answer = vec![0; usize::try_from(length)?];
        client.read_exact(&mut answer).await?;
        let mut answer = bytes::Bytes::from(answer);
        let header = ResponseHeader::decode(
            &mut answer,
            ApiKey::Metadata.response_header_version(version),
        )?;
        let response = MetadataResponse::decode(&mut answer, version)?;
        assert_eq!(header.correlation_id, 5);
        assert_eq!(response.topics.len(), 1);
        client.shutdown().await?;
        tokio::time::timeout(std::time::Duration::from_secs(30), served).await??;
        Ok(())
    }
}
