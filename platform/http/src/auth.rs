//! Who sends a request to the admin listener: the middleware that turns a
//! request's credentials into a [`Principal`] and what it may do
//! ([`Access`], the broker's ACL decision), both inserted as request
//! extensions for every handler; and the console's login routes.
//!
//! Credentials, in this order: an `Authorization` header (HTTP Basic with
//! a SCRAM user's name and password, checked as SASL/PLAIN checks them by
//! [`fjord_broker::PasswordLogins`], or `Bearer` with a JWT checked as
//! OAUTHBEARER checks it),
//! the console's session cookie (`session`), a verified client
//! certificate (`admin.ssl.client.auth`). None: the anonymous principal
//! when authentication is off, else 401 — except for the routes anyone
//! may call (`/health/*`, the console's files and its login), which then
//! run as `User:ANONYMOUS`. Bad credentials are refused (401; 429 past
//! the failed-attempt limit) wherever they are sent.
//!
//! It is not for what a principal may do on each route (`api::authorize`)
//! nor the password check itself (the broker's `login`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, SET_COOKIE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use fjord_broker::{Access, LoginError, Principal};
use serde::Deserialize;
use serde_json::json;

use crate::listener::Arrival;
use crate::session::{self, Sessions};
use crate::{AdminState, ApiError};

/// The door's name in the log line of a failed password.
const BASIC: &str = "HTTP Basic";
const SESSION_LOGIN: &str = "HTTP console login";

/// The challenge a 401 carries (RFC 7617).
const CHALLENGE: &str = "Basic realm=\"fjord\", charset=\"UTF-8\"";

/// A header the console sends with its calls: its 401s then carry no
/// challenge, so the browser shows the console's login form rather than
/// its own dialog.
const CONSOLE_HEADER: &str = "x-fjord-console";

/// The routes anyone may call, logged in or not.
fn open(path: &str) -> bool {
    path.starts_with("/health/")
        || path == "/"
        || path.starts_with("/console/")
        || path == "/api/v1/session"
}

/// The admin listener's authentication settings and state.
#[derive(Debug, Default)]
pub(crate) struct Authentication {
    /// `admin.api.require.auth`.
    pub required: bool,
    pub logins: fjord_broker::PasswordLogins,
    pub sessions: Sessions,
}

/// A refusal for who sent the request.
enum Refusal {
    /// No credentials, or wrong ones.
    Unauthorized(String),
    /// Past the failed-attempt limit.
    TooMany(String),
}

impl Refusal {
    fn into_response(self, challenge: bool) -> Response {
        let (status, message) = match self {
            Refusal::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
            Refusal::TooMany(m) => (StatusCode::TOO_MANY_REQUESTS, m),
        };
        let mut response = ApiError::new(status, message).into_response();
        if challenge && status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<LoginError> for Refusal {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Invalid => Refusal::Unauthorized(format!("login refused: {e}")),
            LoginError::TooManyAttempts => Refusal::TooMany(format!("login refused: {e}")),
        }
    }
}

/// The middleware: every request gets a [`Principal`] and an [`Access`]
/// extension, or a 401.
pub(crate) async fn authenticate(
    State(state): State<AdminState>,
    mut request: Request,
    next: Next,
) -> Response {
    let arrival = request
        .extensions()
        .get::<ConnectInfo<Arrival>>()
        .map(|c| c.0.clone());
    let peer = arrival
        .as_ref()
        .map_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |a| a.peer);
    let challenge = !request.headers().contains_key(CONSOLE_HEADER);
    let is_open = open(request.uri().path());
    let principal = match credentials(&state, request.headers(), arrival.as_ref(), peer).await {
        Ok(Some(principal)) => principal,
        Ok(None) if !state.auth.required || is_open => Principal::Anonymous,
        Ok(None) => {
            return Refusal::Unauthorized(
                "the admin API needs a login: HTTP Basic with a user's name and password \
                 (the SCRAM users of `fjord user`), or the console's login"
                    .to_owned(),
            )
            .into_response(challenge);
        }
        // A stale session cookie on the console's own routes: the console
        // then shows its login form (a wrong password was logged already).
        Err(_) if is_open => Principal::Anonymous,
        Err(refusal) => return refusal.into_response(challenge),
    };
    let access = state.broker.access(principal.clone(), peer.ip());
    request.extensions_mut().insert(principal);
    request.extensions_mut().insert(access);
    next.run(request).await
}

/// The principal the request's credentials name (`None`: it sends none).
async fn credentials(
    state: &AdminState,
    headers: &HeaderMap,
    arrival: Option<&Arrival>,
    peer: std::net::SocketAddr,
) -> Result<Option<Principal>, Refusal> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default().trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let Some((user, password)) = decode_basic(rest.trim()) else {
                tracing::warn!(%peer, "admin API login failed: a malformed Basic Authorization header; answered 401");
                return Err(Refusal::Unauthorized(
                    "the Authorization header is not Basic base64(user:password)".to_owned(),
                ));
            };
            let principal = state
                .auth
                .logins
                .verify(&state.broker, &user, &password, peer, BASIC)
                .await?;
            return Ok(Some(principal));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            return bearer(state, rest.trim(), peer).await.map(Some);
        }
        return Err(Refusal::Unauthorized(format!(
            "the Authorization scheme {scheme:?} is not accepted here; use Basic or Bearer"
        )));
    }
    if let Some(token) = session::token(headers) {
        return match state.auth.sessions.principal(token) {
            Some(principal) => Ok(Some(principal)),
            None => Err(Refusal::Unauthorized(
                "the console session has expired or ended: log in again".to_owned(),
            )),
        };
    }
    Ok(arrival
        .and_then(|a| a.certificate_user.clone())
        .map(Principal::User))
}

/// A bearer token's principal: the token checked exactly as the Kafka
/// port's OAUTHBEARER checks it (the broker's [`fjord_broker::oauth::TokenValidator`]:
/// signed by a key of the configured JWKS, unexpired, for the expected
/// audience and issuer). Refused when no JWKS is configured.
async fn bearer(
    state: &AdminState,
    token: &str,
    peer: std::net::SocketAddr,
) -> Result<Principal, Refusal> {
    let Some(validator) = state.broker.token_validator() else {
        tracing::warn!(%peer, "admin API login failed: a bearer token, but no JWKS is configured; answered 401");
        return Err(Refusal::Unauthorized(
            "bearer tokens need sasl.oauthbearer.jwks.endpoint.url on this broker; use Basic"
                .to_owned(),
        ));
    };
    let token = token.to_owned();
    // The validator may read or fetch the JWKS: not on the async threads.
    let checked = tokio::task::spawn_blocking(move || validator.validate(&token))
        .await
        .map_err(|e| Refusal::Unauthorized(format!("the token could not be checked: {e}")))?;
    match checked {
        Ok(token) => Ok(token.principal),
        Err(e) => {
            tracing::warn!(%peer, reason = %e, "admin API login failed: bearer token refused; answered 401");
            Err(Refusal::Unauthorized(format!("bearer token refused: {e}")))
        }
    }
}

/// `user:password` from a Basic credential (RFC 7617; the password may
/// contain `:`, the user may not).
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

/// `GET /api/v1/session`: whether a login is needed, and who the caller is.
pub(crate) async fn whoami(
    State(state): State<AdminState>,
    axum::Extension(principal): axum::Extension<Principal>,
) -> Json<serde_json::Value> {
    let logged_in = principal != Principal::Anonymous;
    Json(json!({
        "authentication_required": state.auth.required,
        "principal": logged_in.then(|| principal.to_string()),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

/// `POST /api/v1/session` `{"user", "password"}`: the console's login; a
/// session cookie on success.
pub(crate) async fn login(
    State(state): State<AdminState>,
    ConnectInfo(arrival): ConnectInfo<Arrival>,
    body: Bytes,
) -> Response {
    let login: Login = match crate::api::json_body(&body) {
        Ok(login) => login,
        Err(e) => return e.into_response(),
    };
    let verified = state
        .auth
        .logins
        .verify(
            &state.broker,
            &login.user,
            &login.password,
            arrival.peer,
            SESSION_LOGIN,
        )
        .await;
    let principal = match verified {
        Ok(principal) => principal,
        Err(e) => return Refusal::from(e).into_response(false),
    };
    let token = match state.auth.sessions.start(principal.clone()) {
        Ok(token) => token,
        Err(e) => return ApiError::internal(format!("cannot draw a session: {e}")).into_response(),
    };
    tracing::info!(peer = %arrival.peer, principal = %principal, "admin console login");
    let cookie = session::cookie(Some(&token), arrival.tls);
    (
        [(SET_COOKIE, cookie)],
        Json(json!({ "principal": principal.to_string() })),
    )
        .into_response()
}

/// `DELETE /api/v1/session`: logs the console out.
pub(crate) async fn logout(
    State(state): State<AdminState>,
    ConnectInfo(arrival): ConnectInfo<Arrival>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = session::token(&headers) {
        state.auth.sessions.end(token);
    }
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, session::cookie(None, arrival.tls))],
    )
        .into_response()
}

/// What handlers that filter or check themselves read: the request's
/// [`Access`].
pub(crate) type Caller = axum::Extension<Access>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            decode_basic(&encode("alice:pa:ss")),
            Some(("alice".to_owned(), "pa:ss".to_owned()))
        );
        assert_eq!(decode_basic(&encode(":x")), None);
        assert_eq!(decode_basic(&encode("nocolon")), None);
        assert_eq!(decode_basic("%%%"), None);
    }
}
