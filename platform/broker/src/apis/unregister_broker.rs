//! UnregisterBroker: decommission a broker that is gone for good. The
//! controller quorum fences it (its leaderships move to other in-sync
//! replicas) and removes its registration, so it leaves Metadata and the
//! quorum's broker list. Partitions that still name it keep it as an
//! offline replica until they are reassigned.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;
use crate::topic_registry::ApiError;

pub(crate) fn handle(
    state: &BrokerState,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    let outcome = match &state.cluster {
        Some(link) => crate::cluster::admin::unregister_broker(link, request.broker_id.0),
        None => Err(ApiError::new(
            ResponseError::InvalidRequest,
            "this is a single-node broker: there are no broker registrations to remove",
        )),
    };
    match outcome {
        Ok(()) => UnregisterBrokerResponse::default().with_error_message(None),
        Err(e) => UnregisterBrokerResponse::default()
            .with_error_code(e.code)
            .with_error_message(Some(StrBytes::from_string(e.message))),
    }
}
