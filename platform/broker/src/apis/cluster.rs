//! DescribeCluster: this one broker.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;

use crate::server::BrokerState;

pub(crate) fn describe(
    state: &BrokerState,
    _version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // Endpoint type 1 is "brokers"; 2 ("controllers") does not exist here.
    if request.endpoint_type != 1 {
        return DescribeClusterResponse::default()
            .with_error_code(kafka_protocol::ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "only the broker endpoint type is supported",
            )))
            .with_endpoint_type(request.endpoint_type);
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(state.config.node_id.into())
        .with_host(StrBytes::from_string(state.advertised_host.clone()))
        .with_port(state.advertised_port);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(
            state.registry.cluster_id().to_string(),
        ))
        .with_controller_id(state.config.node_id.into())
        .with_brokers(vec![broker])
}
