//! KIP-951 in a cluster of two `fjord server` processes: a broker asked
//! for a partition it does not lead answers NOT_LEADER_OR_FOLLOWER and, in
//! Fetch v16+ (by topic id) and Produce v10+, names the current leader,
//! its epoch and its endpoint, so a client goes there without asking for
//! metadata first. Older versions get the error alone.

mod common;

use std::time::Instant;

use bytes::Bytes;
use common::cluster::Cluster;
use common::kafka::{create_topic, raw_call};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const NOT_LEADER_OR_FOLLOWER: i16 = 6;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

#[test]
fn a_broker_that_does_not_lead_names_the_leader() {
    let started = Instant::now();
    let cluster = Cluster::start(2);
    cluster.wait_for_brokers(&[1, 2]);
    // One replica: the other broker does not even host the partition.
    cluster.wait_for_detail("CreateTopics hints", |c| {
        match create_topic(&c.bootstrap(), "hints", 1, 1, &[]) {
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let leader = cluster.wait_for_leader("hints", 0);
    let other = if leader == 1 { 2 } else { 1 };
    let leader_addr = cluster.node(leader).kafka;
    let other_addr = cluster.node(other).kafka;

    // (The id's type is uuid's; this crate does not depend on it.)
    let fetch_by_id = |id| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default().with_partition_max_bytes(1 << 20),
                    ]),
            ])
    };
    // The topic's id, and the leader's address as Metadata names it.
    let (id, leader_endpoint) = cluster.wait_for_detail("the topic at the other broker", |_| {
        let request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("hints"))),
        ]));
        let r: MetadataResponse = raw_call(other_addr, ApiKey::Metadata, 13, &request, 0)?;
        let broker = r
            .brokers
            .iter()
            .find(|b| b.node_id.0 == leader as i32)
            .map(|b| (b.host.to_string(), b.port));
        match (r.topics.first(), broker) {
            (Some(t), Some(broker)) if t.error_code == 0 && !t.topic_id.is_nil() => {
                Ok((t.topic_id, broker))
            }
            other => Err(format!("{other:?}")),
        }
    });

    // Fetch v16 by id from the broker that does not lead.
    let answer: FetchResponse = cluster.wait_for_detail("a leader hint in Fetch v16", |_| {
        let r: FetchResponse = raw_call(other_addr, ApiKey::Fetch, 16, &fetch_by_id(id), 0)?;
        let p = &r.responses[0].partitions[0];
        if p.error_code == NOT_LEADER_OR_FOLLOWER && p.current_leader.leader_id.0 >= 0 {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    });
    assert_eq!(answer.responses[0].topic_id, id);
    let p = &answer.responses[0].partitions[0];
    assert_eq!(p.current_leader.leader_id.0, leader as i32, "{answer:?}");
    assert!(p.current_leader.leader_epoch >= 0, "{answer:?}");
    let endpoints: Vec<(i32, String, i32)> = answer
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.host.to_string(), e.port))
        .collect();
    let (host, port) = leader_endpoint;
    assert_eq!(endpoints, [(leader as i32, host, port)]);
    // The leader serves the same request.
    let served: FetchResponse =
        raw_call(leader_addr, ApiKey::Fetch, 16, &fetch_by_id(id), 0).expect("an answer");
    assert_eq!(
        served.responses[0].partitions[0].error_code, 0,
        "{served:?}"
    );
    assert!(served.node_endpoints.is_empty());

    // Fetch v15 has the error, no hint.
    let old: FetchResponse =
        raw_call(other_addr, ApiKey::Fetch, 15, &fetch_by_id(id), 0).expect("an answer");
    let p = &old.responses[0].partitions[0];
    assert_eq!(p.error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(p.current_leader.leader_id.0, -1);

    // Produce v10 by name: the same hint.
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name("hints"))
                .with_partition_data(vec![
                    PartitionProduceData::default().with_records(Some(Bytes::from(vec![0u8; 70]))),
                ]),
        ]);
    let r: ProduceResponse =
        raw_call(other_addr, ApiKey::Produce, 10, &produce, 0).expect("an answer");
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NOT_LEADER_OR_FOLLOWER, "{r:?}");
    assert_eq!(p.current_leader.leader_id.0, leader as i32, "{r:?}");
    let endpoints: Vec<(i32, i32)> = r
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.port))
        .collect();
    assert_eq!(endpoints, [(leader as i32, port)]);
    eprintln!("leader hints checked in {:?}", started.elapsed());
}
