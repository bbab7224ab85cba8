//! SaslHandshake (key 17) and SaslAuthenticate (key 36): the wire side of
//! `crate::sasl`.

use std::sync::Arc;

use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::Reply;
use crate::broker_state::BrokerState;
use crate::client_session::Session;
use crate::error::sasl_error_code;
use crate::sasl::MECHANISM;

/// Answers a SaslHandshake: PLAIN is the one mechanism enabled.
pub(crate) fn handshake(
    session: &mut Session,
    version: i16,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    let code = match session.sasl.handshake(&request.mechanism, version) {
        Ok(()) => 0,
        Err(e) => sasl_error_code(&e),
    };
    SaslHandshakeResponse::default()
        .with_error_code(code)
        .with_mechanisms(vec![StrBytes::from_static_str(MECHANISM)])
}

/// Answers a SaslAuthenticate; a failure is answered, then the connection
/// closed.
pub(crate) fn authenticate(
    state: &Arc<BrokerState>,
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> Reply {
    let response = SaslAuthenticateResponse::default();
    match check(state, session, &request.auth_bytes) {
        Ok(()) => Reply::Send(Box::new(response.into())),
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

/// Handles the bare token that follows a SaslHandshake v0: the frame to
/// send back (an empty token: PLAIN has nothing more to say), or why the
/// connection closes.
pub(crate) fn bare_token(
    state: &Arc<BrokerState>,
    session: &mut Session,
    token: &[u8],
) -> Result<&'static [u8], &'static str> {
    check(state, session, token)
        .map(|()| &[0u8; 4][..])
        .map_err(|_| "SASL authentication refused")
}

fn check(
    state: &Arc<BrokerState>,
    session: &mut Session,
    token: &[u8],
) -> Result<(), crate::sasl::SaslError> {
    let secret = state
        .cluster()
        .and_then(|link| link.metadata().internal_secret.clone());
    session.principal = session
        .sasl
        .authenticate(token, secret.as_ref(), session.peer)?;
    Ok(())
}
