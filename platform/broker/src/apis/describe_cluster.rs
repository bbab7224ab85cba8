//! DescribeCluster: the brokers clients are told about (this one on a
//! single node, the live brokers of a cluster) and the active controller.
//! Needs DESCRIBE on the cluster.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation, ResourceType};
use crate::broker_state::BrokerState;
use crate::listeners::BoundListener;

pub(crate) fn describe(
    state: &BrokerState,
    listener: &BoundListener,
    _version: i16,
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
    let brokers = brokers
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(b.id.into())
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
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
