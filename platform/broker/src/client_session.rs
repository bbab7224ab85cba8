//! A client connection's session: where it comes from and who it
//! authenticated as. The connection makes one when it opens and hands it
//! to every handler with the request (SASL changes it); it lives below
//! both, so the handlers need not import the connection that calls them.

use std::net::SocketAddr;

use crate::auth::Principal;
use crate::sasl::Sasl;

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
