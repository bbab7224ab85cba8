//! Client quotas in a cluster of three `fjord server` processes: a quota
//! set through one broker (an AlterClientQuotas command to the controller
//! quorum) is described by every broker, and removed the same way; and
//! `fjord quota alter|describe` against the same cluster, for a user and
//! client id and for an ip.

mod common;

use std::process::Command;

use common::cluster::Cluster;
use common::kafka::raw_call;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, alter_client_quotas_request,
};
use kafka_protocol::protocol::StrBytes;

fn alter(addr: std::net::SocketAddr, value: Option<f64>) -> Result<i16, String> {
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![
                alter_client_quotas_request::EntityData::default()
                    .with_entity_type(StrBytes::from_static_str("client-id"))
                    .with_entity_name(Some(StrBytes::from_static_str("app"))),
            ])
            .with_ops(vec![
                alter_client_quotas_request::OpData::default()
                    .with_key(StrBytes::from_static_str("producer_byte_rate"))
                    .with_value(value.unwrap_or(0.0))
                    .with_remove(value.is_none()),
            ]),
    ]);
    let answer: AlterClientQuotasResponse =
        raw_call(addr, ApiKey::AlterClientQuotas, 1, &request, 20_000)?;
    Ok(answer.entries.first().map_or(-1, |e| e.error_code))
}

/// The `producer_byte_rate` values the broker at `addr` describes.
fn described(addr: std::net::SocketAddr) -> Result<Vec<f64>, String> {
    let answer: DescribeClientQuotasResponse = raw_call(
        addr,
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default(),
        5_000,
    )?;
    if answer.error_code != 0 {
        return Err(format!("error {}", answer.error_code));
    }
    Ok(answer
        .entries
        .unwrap_or_default()
        .iter()
        .flat_map(|e| &e.values)
        .filter(|v| v.key.as_str() == "producer_byte_rate")
        .map(|v| v.value)
        .collect())
}

fn fjord(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .args(["-b", bootstrap])
        .output()
        .expect("run fjord");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_quota_set_through_one_broker_applies_on_every_broker() {
    let cluster = Cluster::start(3);
    cluster.wait_for_brokers(&[1, 2, 3]);
    let first = cluster.node(1).kafka;
    assert_eq!(alter(first, Some(1_048_576.0)), Ok(0));
    // A value Kafka refuses is refused by the quorum's broker too.
    assert_eq!(alter(first, Some(-1.0)), Ok(42), "INVALID_REQUEST");
    for id in [1, 2, 3] {
        let addr = cluster.node(id).kafka;
        cluster.wait_for_detail(
            &format!("broker {id} describes the quota"),
            |_| match described(addr)? {
                values if values == [1_048_576.0] => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }
    assert_eq!(alter(cluster.node(2).kafka, None), Ok(0));
    for id in [1, 2, 3] {
        let addr = cluster.node(id).kafka;
        cluster.wait_for_detail(
            &format!("broker {id} forgot the quota"),
            |_| match described(addr)? {
                values if values.is_empty() => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
    }

    // The CLI: set through broker 1, described by broker 3.
    let (first, third) = (first.to_string(), cluster.node(3).kafka.to_string());
    let (ok, out) = fjord(
        &first,
        &[
            "quota",
            "alter",
            "--name",
            "user=alice",
            "--default",
            "client-id",
            "--add",
            "consumer_byte_rate=2048",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = fjord(
        &first,
        &[
            "quota",
            "alter",
            "--name",
            "user=alice",
            "--add",
            "no_such_key=1",
        ],
    );
    assert!(!ok && out.contains("INVALID_REQUEST"), "{out}");
    cluster.wait_for_detail("broker 3 describes the CLI's quota", |_| {
        let (ok, out) = fjord(&third, &["quota", "describe", "--name", "user=alice"]);
        if ok && out.contains("user=alice,client-id=<default>\tconsumer_byte_rate\t2048") {
            Ok(())
        } else {
            Err(out)
        }
    });

    // An ip quota (KIP-612, the quorum's AlterIpQuotas), described by an
    // ip filter on another broker.
    let (ok, out) = fjord(
        &first,
        &[
            "quota",
            "alter",
            "--name",
            "ip=10.0.0.7",
            "--add",
            "connection_creation_rate=10",
        ],
    );
    assert!(ok, "{out}");
    cluster.wait_for_detail("broker 3 describes the ip quota", |_| {
        let (ok, out) = fjord(&third, &["quota", "describe", "--any", "ip"]);
        if ok && out.contains("ip=10.0.0.7\tconnection_creation_rate\t10") && !out.contains("alice")
        {
            Ok(())
        } else {
            Err(out)
        }
    });
}
