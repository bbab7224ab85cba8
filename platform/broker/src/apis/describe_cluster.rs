//! DescribeCluster: the brokers clients are told about (this one on a
//! single node, the live brokers of a cluster) and the active controller.
//! Needs DESCRIBE on the cluster. v2 (`include_fenced_brokers`) adds the
//! fenced brokers of a cluster, marked `is_fenced` (a single node has
//! none), as Kafka does.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::listeners::BoundListener;

pub(crate) fn describe(
    state: &BrokerState,
    listener: &BoundListener,
    version: i16,
    request: DescribeClusterRequest,
    access: &Access,
) -> DescribeClusterResponse {
    if !access.cluster(Operation::Describe) {
        return DescribeClusterResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code())
            .with_endpoint_type(request.endpoint_type);
    }
    // Endpoint type 1 is "brokers"; 2 ("controllers") does not exist here.
    if request.endpoint_type != 1 {
        return DescribeClusterResponse::default()
            .with_error_code(kafka_protocol::ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only the broker endpoint type is supported",
            )))
            .with_endpoint_type(request.endpoint_type);
    }
    let (brokers, controller) = state.brokers_view_for(listener);
    let mut brokers: Vec<DescribeClusterBroker> = brokers
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(b.id.into())
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    if version >= 2 && request.include_fenced_brokers {
        brokers.extend(fenced_brokers(state, listener));
        brokers.sort_by_key(|b| b.broker_id.0);
    }
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            state.registry().cluster_id().to_string(),
        ))
        .with_controller_id(controller.into())
        .with_brokers(brokers)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            access.operations(ResourceType::Cluster, crate::authorizer::CLUSTER_NAME)
        } else {
            crate::authorizer::OPERATIONS_NOT_ASKED
        })
}

/// The fenced brokers of the cluster at their endpoint for `listener`'s
/// name (those without one are left out, as for live brokers).
fn fenced_brokers(state: &BrokerState, listener: &BoundListener) -> Vec<DescribeClusterBroker> {
    let Some(link) = state.cluster() else {
        return Vec::new();
    };
    let metadata = link.metadata();
    metadata
        .brokers
        .values()
        .filter(|b| b.fenced)
        .filter_map(|b| {
            let (host, port) = metadata.broker_endpoint(b.id, &listener.name)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(b.id.into())
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(true),
            )
        })
        .collect()
}
