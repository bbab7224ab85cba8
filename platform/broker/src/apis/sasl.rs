//! SaslHandshake (key 17) and SaslAuthenticate (key 36): the wire side of
//! `crate::sasl`, including KIP-368's session lifetime in SaslAuthenticate
//! v1+ answers.

use std::sync::Arc;
use std::time::Duration;

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
/// asked for is among them. A re-authentication that changes mechanism is
/// answered, then the connection closed.
pub(crate) fn handshake(
    state: &BrokerState,
    session: &mut Session,
    version: i16,
    request: SaslHandshakeRequest,
) -> Reply {
    let auth = state.authenticator();
    let result = session.sasl.handshake(auth, &request.mechanism, version);
    let response = SaslHandshakeResponse::default()
        .with_error_code(result.as_ref().err().map_or(0, sasl_error_code))
        .with_mechanisms(
            auth.enabled_names()
                .into_iter()
                .map(StrBytes::from_static_str)
                .collect(),
        );
    match result {
        Err(SaslError::Reauthentication(why)) => {
            tracing::info!(peer = %session.peer, principal = %session.principal, reason = why, "re-authentication refused; closing the connection");
            Reply::SendAndClose(Box::new(response.into()), "re-authentication refused")
        }
        _ => Reply::Send(Box::new(response.into())),
    }
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
        Ok((token, lifetime)) => Reply::Send(Box::new(
            response
                .with_auth_bytes(Bytes::from(token))
                .with_session_lifetime_ms(lifetime.map_or(0, duration_ms))
                .into(),
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
    let (token, _) = step(state, session, token)
        .await
        .map_err(|_| "SASL authentication refused")?;
    let mut frame = Vec::with_capacity(4 + token.len());
    frame.extend_from_slice(&(token.len() as u32).to_be_bytes());
    frame.extend_from_slice(&token);
    Ok(frame)
}

/// A session lifetime as SaslAuthenticate carries it; at least 1 ms, as 0
/// means "no lifetime" on the wire.
fn duration_ms(lifetime: Duration) -> i64 {
    i64::try_from(lifetime.as_millis())
        .unwrap_or(i64::MAX)
        .max(1)
}

/// One step of the exchange: the token to answer with; on the last, the
/// session's principal is set, and its lifetime returned.
async fn step(
    state: &Arc<BrokerState>,
    session: &mut Session,
    token: &[u8],
) -> Result<(Vec<u8>, Option<Duration>), SaslError> {
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
        Step::Continue(challenge) => (challenge, None),
        Step::Done(principal, last, lifetime) => {
            tracing::debug!(peer = %session.peer, %principal, ?lifetime, "authenticated");
            session.principal = principal;
            (last, lifetime)
        }
    })
}
