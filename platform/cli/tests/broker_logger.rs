//! Kafka's BROKER_LOGGER configs on `fjord server` as a process:
//! DescribeConfigs lists loggers with their levels; IncrementalAlterConfigs
//! raises one module to DEBUG and its debug lines appear in the server's
//! output; DELETE takes the level away again; bad levels and names are
//! INVALID_CONFIG.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::kafka::raw_call;
use common::{Server, free_port};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

const BROKER_LOGGER: i8 = 8;
const LOGGER: &str = "fjord_broker::connection";

/// Every logger of broker 0 and its level.
fn loggers(addr: SocketAddr) -> Vec<(String, String)> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(BROKER_LOGGER)
            .with_resource_name(StrBytes::from_static_str("0")),
    ]);
    let response: DescribeConfigsResponse =
        raw_call(addr, ApiKey::DescribeConfigs, 4, &request, 0).unwrap();
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
            )
        })
        .collect()
}

fn level_of(addr: SocketAddr, logger: &str) -> Option<String> {
    loggers(addr)
        .into_iter()
        .find(|(name, _)| name == logger)
        .map(|(_, level)| level)
}

/// One IncrementalAlterConfigs change of broker 0's loggers: the code.
fn alter(addr: SocketAddr, logger: &str, op: i8, level: &str) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER_LOGGER)
            .with_resource_name(StrBytes::from_static_str("0"))
            .with_configs(vec![
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(logger.to_owned()))
                    .with_config_operation(op)
                    .with_value(Some(StrBytes::from_string(level.to_owned()))),
            ]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        raw_call(addr, ApiKey::IncrementalAlterConfigs, 1, &request, 0).unwrap();
    response.responses[0].error_code
}

/// Opens a connection and asks ApiVersions: the broker's
/// `fjord_broker::connection` logs "connection opened" at DEBUG.
fn connect(addr: SocketAddr) {
    let _: ApiVersionsResponse = raw_call(
        addr,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
        0,
    )
    .unwrap();
}

#[test]
fn a_module_raised_to_debug_logs_its_debug_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let admin = format!("127.0.0.1:{}", free_port());
    let server = Server::spawn(
        &dir.path().join("data"),
        free_port(),
        &admin,
        &[],
        Some(&log),
    );
    let addr: SocketAddr = server.bootstrap.parse().unwrap();
    let opened = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("connection opened")
            .count()
    };

    let listed = loggers(addr);
    for name in ["root", "fjord_broker", "fjord_log", "openraft"] {
        assert!(
            listed.iter().any(|(n, _)| n == name),
            "{name} in {listed:?}"
        );
    }
    let before = level_of(addr, LOGGER);
    assert_ne!(before.as_deref(), Some("DEBUG"));
    connect(addr);
    assert_eq!(opened(), 0, "no debug line at the start's level");

    assert_eq!(alter(addr, LOGGER, 0, "DEBUG"), 0);
    assert_eq!(level_of(addr, LOGGER).as_deref(), Some("DEBUG"));
    connect(addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while opened() == 0 {
        assert!(Instant::now() < deadline, "no debug line after DEBUG");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Only that module: its parent keeps the start's level.
    assert_ne!(level_of(addr, "fjord_broker").as_deref(), Some("DEBUG"));

    assert_eq!(alter(addr, LOGGER, 0, "LOUD"), 40, "not a level");
    assert_eq!(alter(addr, "a=b", 0, "DEBUG"), 40, "not a logger");
    assert_eq!(alter(addr, LOGGER, 2, "DEBUG"), 40, "APPEND");

    // DELETE: back to what the start's filter says.
    assert_eq!(alter(addr, LOGGER, 1, ""), 0);
    assert_eq!(level_of(addr, LOGGER), before);
    drop(server);
}
