//! A client connection's session: where it comes from and who it
//! authenticated as. The connection makes one when it opens and hands it
//! to every handler with the request (SASL changes it); it lives below
//! both, so the handlers need not import the connection that calls them.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::Principal;
use crate::listeners::BoundListener;
use crate::sasl::Sasl;

/// What a connection's requests are handled with besides the broker:
/// where it comes from and who it authenticated as.
#[derive(Debug)]
pub(crate) struct Session {
    pub peer: SocketAddr,
    /// The listener the connection came in on.
    pub listener: Arc<BoundListener>,
    /// The peer's address in Kafka's form (`/ip`), as DescribeGroups
    /// reports member hosts.
    pub client_host: String,
    /// Anonymous until a SASL exchange succeeds, or the user a client
    /// certificate names on an SSL listener.
    pub principal: Principal,
    pub sasl: Sasl,
    /// How long the connection reads no further request once its answer
    /// is sent: a client over its quota (KIP-219's muting). Set by the
    /// handler, taken by the connection.
    pub mute: std::time::Duration,
}

impl Session {
    pub(crate) fn new(
        peer: SocketAddr,
        listener: Arc<BoundListener>,
        principal: Principal,
    ) -> Self {
        Session {
            peer,
            listener,
            client_host: format!("/{}", peer.ip()),
            principal,
            sasl: Sasl::default(),
            mute: std::time::Duration::ZERO,
        }
    }

    /// Whether the connection still has to authenticate before anything
    /// but ApiVersions and the SASL requests (SASL_PLAINTEXT and SASL_SSL
    /// listeners, as in Kafka).
    pub(crate) fn must_authenticate(&self) -> bool {
        self.listener.protocol.requires_sasl() && self.principal == Principal::Anonymous
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listeners::SecurityProtocol;

    /// Only SASL listeners hold a connection back until it authenticates,
    /// and only until it has.
    #[test]
    fn sasl_listeners_require_authentication() {
        let peer = "127.0.0.1:1".parse().unwrap();
        for (protocol, principal, must) in [
            (SecurityProtocol::Plaintext, Principal::Anonymous, false),
            (SecurityProtocol::Ssl, Principal::Anonymous, false),
            (SecurityProtocol::SaslPlaintext, Principal::Anonymous, true),
            (SecurityProtocol::SaslSsl, Principal::Anonymous, true),
            (SecurityProtocol::SaslPlaintext, Principal::Internal, false),
            (
                SecurityProtocol::SaslSsl,
                Principal::User("u".into()),
                false,
            ),
        ] {
            let listener = Arc::new(BoundListener {
                protocol,
                ..BoundListener::plaintext_for_tests()
            });
            let session = Session::new(peer, listener, principal.clone());
            assert_eq!(
                session.must_authenticate(),
                must,
                "{protocol:?} {principal}"
            );
        }
    }
}
