//! Dynamic broker configs in a cluster of three `fjord server` processes:
//! a cluster default set through one broker (an AlterBrokerConfigs command
//! to the controller quorum) applies on every broker, a broker's own value
//! only on that broker, and both survive the broker's restart; a broker
//! setting (a connection quota) set for one broker through another is
//! enforced by that broker alone once it follows the metadata.

mod common;

use std::net::SocketAddr;

use common::cluster::Cluster;
use common::kafka::{attempt_from, create_topic, raw_call, served};
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

/// Whether a connection from `source` to `to` is refused (reset, or
/// closed unanswered).
fn refused(source: &str, to: SocketAddr) -> bool {
    match attempt_from(source, &to.to_string()) {
        None => true,
        Some(mut stream) => !served(&mut stream, std::time::Duration::from_secs(5)),
    }
}

#[test]
fn a_connection_quota_set_through_the_quorum_applies_on_its_broker_only() {
    let cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let first = cluster.node(1).kafka;
    // Checked by the proposing broker: threads below 1 never reach the quorum.
    assert_eq!(set(first, "", "log.cleaner.threads", "0"), Ok(40));
    assert_eq!(
        set(
            first,
            "2",
            "max.connections.per.ip.overrides",
            "127.0.0.2:0"
        ),
        Ok(0)
    );
    let (two, three) = (cluster.node(2).kafka, cluster.node(3).kafka);
    cluster.wait_for_detail("broker 2 refuses 127.0.0.2", |_| {
        if refused("127.0.0.2", two) {
            Ok(())
        } else {
            Err("served".to_owned())
        }
    });
    assert!(!refused("127.0.0.2", three), "broker 3 is not limited");
    assert!(!refused("127.0.0.1", two), "only the overridden address is");
}
