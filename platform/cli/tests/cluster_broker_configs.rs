//! Dynamic broker configs in a cluster of three `fjord server` processes:
//! a cluster default set through one broker (an AlterBrokerConfigs command
//! to the controller quorum) applies on every broker, a broker's own value
//! only on that broker, and both survive the broker's restart.

mod common;

use std::net::SocketAddr;

use common::cluster::Cluster;
use common::kafka::{create_topic, raw_call};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// SETs `key` on BROKER resource `resource` through the broker at `addr`.
fn set(addr: SocketAddr, resource: &str, key: &str, value: &str) -> Result<i16, String> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(resource.to_owned()))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(key.to_owned()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_owned()))),
            ]),
    ]);
    let answer: IncrementalAlterConfigsResponse =
        raw_call(addr, ApiKey::IncrementalAlterConfigs, 1, &request, 20_000)?;
    Ok(answer.responses[0].error_code)
}

/// `retention.ms` of topic `t` as the broker at `addr` describes it:
/// value and source.
fn retention(addr: SocketAddr) -> Result<(String, i8), String> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")])),
    ]);
    let answer: DescribeConfigsResponse =
        raw_call(addr, ApiKey::DescribeConfigs, 4, &request, 5_000)?;
    let result = &answer.results[0];
    if result.error_code != 0 {
        return Err(format!("error {}", result.error_code));
    }
    let entry = result.configs.first().ok_or("no retention.ms")?;
    Ok((
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        entry.config_source,
    ))
}

fn wait_retention(cluster: &Cluster, id: u64, value: &str, source: i8) {
    let addr = cluster.node(id).kafka;
    cluster.wait_for_detail(
        &format!("broker {id} describes retention.ms={value} from source {source}"),
        |_| match retention(addr)? {
            (v, s) if v == value && s == source => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

#[test]
fn a_cluster_default_applies_on_every_broker_and_a_broker_s_own_on_it() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let first = cluster.node(1).kafka;
    create_topic(&first.to_string(), "t", 1, 3, &[]).unwrap();
    assert_eq!(set(first, "", "log.retention.ms", "3600000"), Ok(0));
    assert_eq!(set(first, "", "node.id", "9"), Ok(40), "read-only");
    for id in [1, 2, 3] {
        wait_retention(&cluster, id, "3600000", 3);
    }
    // Broker 2's own, set through broker 1.
    assert_eq!(set(first, "2", "log.retention.ms", "1000"), Ok(0));
    wait_retention(&cluster, 2, "1000", 2);
    wait_retention(&cluster, 3, "3600000", 3);
    cluster.restart(2);
    wait_retention(&cluster, 2, "1000", 2);
    wait_retention(&cluster, 1, "3600000", 3);
}
