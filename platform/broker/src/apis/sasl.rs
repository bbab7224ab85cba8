//! SaslHandshake (key 17) and SaslAuthenticate (key 36): the wire side of
//! `crate::sasl`.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Reply;
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::error::sasl_error_code;
use crate::sasl::{SaslError, Step};

/// Answers a SaslHandshake: the enabled mechanisms, and whether the one
/// asked for is among them.
pub(crate) fn handshake(
    state: &BrokerState,
    session: &mut Session,
    version: i16,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let auth = state.authenticator();
    let code = match session.sasl.handshake(auth, &request.mechanism, version) {
        Ok(()) => 0,
        Err(e) => sasl_error_code(&e),
    };
    SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(
            auth.enabled_names()
                .into_iter()
                .map(StrBytes::from_static_str)
                .collect(),
        )
}

/// Answers a SaslAuthenticate; a failure is answered (with a message the
/// client shows), then the connection closed.
pub(crate) async fn authenticate(
    state: &Arc<BrokerState>,
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> Reply {
    let response = SaslAuthenticateResponse::default();
    match step(state, session, &request.auth_bytes).await {
        Ok(token) => Reply::Send(Box::new(
            response.with_auth_bytes(Bytes::from(token)).into(),
        )),
        Err(e) => Reply::SendAndClose(
            Box::new(
                response
                    .with_error_code(sasl_error_code(&e))
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
                    .into(),
            ),
            "SASL authentication refused",
        ),
    }
}

/// Handles a bare token (after a SaslHandshake v0): the frame to send back
/// (the mechanism's next message, length-prefixed), or why the connection
/// closes.
pub(crate) async fn bare_token(
    state: &Arc<BrokerState>,
    session: &mut Session,
    token: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let token = step(state, session, token)
        .await
        .map_err(|_| "SASL authentication refused")?;
    let mut frame = Vec::with_capacity(4 + token.len());
    frame.extend_from_slice(&(token.len() as u32).to_be_bytes());
    frame.extend_from_slice(&token);
    Ok(frame)
}

/// One step of the exchange: the token to answer with; on the last, the
/// session's principal is set.
async fn step(
    state: &Arc<BrokerState>,
    session: &mut Session,
    token: &[u8],
) -> Result<Vec<u8>, SaslError> {
    let secret = state
        .cluster()
        .and_then(|link| link.metadata().internal_secret.clone());
    let metadata = state.metadata();
    let step = session
        .sasl
        .step(
            token,
            state.authenticator(),
            &metadata,
            secret.as_ref(),
            session.peer,
        )
        .await?;
    Ok(match step {
        Step::Continue(challenge) => challenge,
        Step::Done(principal, last) => {
            tracing::debug!(peer = %session.peer, %principal, "authenticated");
            session.principal = principal;
            last
        }
    })
}
