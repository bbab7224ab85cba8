//! One client connection: read a frame, decode it, handle it, write the
//! answer — one request at a time, so answers leave in request order even
//! when the client pipelines (as Kafka does: it mutes a connection while a
//! request is in flight).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::BufReader;
use tokio::net::TcpStream;

use crate::apis::{self, Reply};
use crate::auth::Principal;
use crate::codec::{read_frame, write_frame};
use crate::instruments;
use crate::request::{Frame, decode_request, encode_response, encode_unsupported_api_versions};
use crate::sasl::Sasl;
use crate::server::BrokerState;

/// What a connection's requests are handled with besides the broker:
/// where it comes from and who it authenticated as.
#[derive(Debug)]
pub(crate) struct Session {
    pub peer: SocketAddr,
    /// The peer's address in Kafka's form (`/ip`), as DescribeGroups
    /// reports member hosts.
    pub client_host: String,
    /// Anonymous until a SASL exchange succeeds.
    pub principal: Principal,
    pub sasl: Sasl,
}

impl Session {
    pub(crate) fn new(peer: SocketAddr) -> Self {
        Session {
            peer,
            client_host: format!("/{}", peer.ip()),
            principal: Principal::Anonymous,
            sasl: Sasl::default(),
        }
    }
}

/// Serves one connection until the client closes it, it sends something
/// unframeable or undecodable (logged, then closed), or the broker stops.
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, state: Arc<BrokerState>) {
    tracing::debug!(%peer, "connection opened");
    let (read_half, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let mut shutdown = state.shutdown.clone();
    let max = state.config.socket_request_max_bytes;
    let mut session = Session::new(peer);
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader, max) => frame,
            _ = crate::server::stopped(&mut shutdown) => break,
        };
        let frame = match frame {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                break;
            }
        };
        if session.sasl.expects_bare_token() {
            // After SaslHandshake v0 the token is a bare frame, and so is
            // the answer.
            match apis::sasl::bare_token(&state, &mut session, &frame) {
                Ok(out) => {
                    if let Err(e) = write_frame(&mut writer, out).await {
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
        let out = match decode_request(frame) {
            Ok(Frame::Request(request)) => {
                let (api_key, version) = (request.api_key, request.version);
                let correlation_id = request.header.correlation_id;
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
                        {
                            let _ = write_frame(&mut writer, &out).await;
                        }
                        tracing::debug!(%peer, reason = why, "closing connection");
                        break;
                    }
                }
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
                tracing::warn!(%peer, error = %e, "closing connection: bad request");
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
