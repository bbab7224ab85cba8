//! UnregisterBroker: decommission a broker that is gone for good. The
//! controller quorum fences it (its leaderships move to other in-sync
//! replicas) and removes its registration, so it leaves Metadata and the
//! quorum's broker list. Partitions that still name it keep it as an
//! offline replica until they are reassigned. Needs ALTER on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;

pub(crate) async fn handle(
    state: &Arc<BrokerState>,
    request: UnregisterBrokerRequest,
    access: &Access,
) -> UnregisterBrokerResponse {
    if !access.cluster(Operation::Alter) {
        return UnregisterBrokerResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    match state
        .metadata()
        .unregister_broker(request.broker_id.0)
        .await
    {
        Ok(()) => UnregisterBrokerResponse::default().with_error_message(None),
        Err(e) => UnregisterBrokerResponse::default()
            .with_error_code(e.code)
            .with_error_message(Some(StrBytes::from_string(e.message))),
    }
}
