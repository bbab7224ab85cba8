//! KIP-848 group configs in a cluster of three `fjord server` processes:
//! a group's config set through one broker (an AlterGroupConfigs command
//! to the controller quorum) is described by every broker, and survives a
//! broker's restart.

mod common;

use std::net::SocketAddr;

use common::cluster::Cluster;
use common::kafka::raw_call;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

const GROUP: i8 = 32;
const KEY: &str = "consumer.session.timeout.ms";

/// SETs the session timeout of group `g` through the broker at `addr`.
fn set(addr: SocketAddr, value: &str) -> Result<i16, String> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_static_str("g"))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_static_str(KEY))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.to_owned()))),
            ]),
    ]);
    let answer: IncrementalAlterConfigsResponse =
        raw_call(addr, ApiKey::IncrementalAlterConfigs, 1, &request, 20_000)?;
    Ok(answer.responses[0].error_code)
}

/// The session timeout of group `g` as the broker at `addr` describes it:
/// value and source.
fn session(addr: SocketAddr) -> Result<(String, i8), String> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_static_str("g"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str(KEY)])),
    ]);
    let answer: DescribeConfigsResponse =
        raw_call(addr, ApiKey::DescribeConfigs, 4, &request, 5_000)?;
    let result = &answer.results[0];
    if result.error_code != 0 {
        return Err(format!("error {}", result.error_code));
    }
    let entry = result.configs.first().ok_or("no session timeout")?;
    Ok((
        entry
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default(),
        entry.config_source,
    ))
}

fn wait_session(cluster: &Cluster, id: u64, value: &str, source: i8) {
    let addr = cluster.node(id).kafka;
    cluster.wait_for_detail(
        &format!("broker {id} describes {KEY}={value} of group g from source {source}"),
        |_| match session(addr)? {
            (v, s) if v == value && s == source => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

#[test]
fn a_group_s_config_reaches_every_broker_and_survives_a_restart() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let first = cluster.node(1).kafka;
    for id in [1, 2, 3] {
        wait_session(&cluster, id, "45000", 5);
    }
    assert_eq!(set(first, "50000"), Ok(0));
    assert_eq!(set(first, "1000"), Ok(40), "below the broker's minimum");
    for id in [1, 2, 3] {
        wait_session(&cluster, id, "50000", 8);
    }
    cluster.restart(2);
    wait_session(&cluster, 2, "50000", 8);
}
