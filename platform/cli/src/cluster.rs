//! `fjord cluster`: what a bootstrap server reports about the cluster
//! (`info`, `brokers`), and partition and broker administration
//! (`elect-leaders`, `reassign`, `decommission`).
//!
//! librdkafka has no calls for ElectLeaders, AlterPartitionReassignments or
//! UnregisterBroker, nor does it show Metadata's controller id, so these
//! send raw Kafka requests ([`crate::raw`]). Admin requests go to the
//! active controller's broker when Metadata names a reachable one, else to
//! the broker that answered: every broker forwards to the controller quorum.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ElectLeadersRequest, MetadataRequest,
    MetadataResponse, TopicName, UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::Consumer;

use crate::client::ClientArgs;
use crate::raw::{Connection, describe_error, error_name};
use crate::topic::consumer;

/// Versions Kafka 2.4+ brokers and Fjord answer.
const METADATA_VERSION: i16 = 9;
const ELECT_LEADERS_VERSION: i16 = 2;
const ALTER_REASSIGNMENTS_VERSION: i16 = 0;
const UNREGISTER_BROKER_VERSION: i16 = 0;
/// How long the broker may take (it waits for the controller quorum).
const ADMIN_TIMEOUT_MS: i32 = 30_000;
const CLIENT_ID: &str = "fjord-cli";

/// `fjord cluster …`
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers, topics and partitions of the cluster.
    Info {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The brokers (id, address) and which one is the active controller.
    Brokers {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Move leadership back to each partition's preferred (first) replica,
    /// or with --unclean elect a leader for partitions that have none.
    /// Without --topic: every partition that needs it.
    ElectLeaders {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of --topic.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
        /// Unclean election: a replica outside the ISR may lead a partition
        /// that has no leader (records may be lost).
        #[arg(long)]
        unclean: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Give a partition a new replica list (the first replica is the
    /// preferred leader). New replicas copy the log, then join the ISR.
    Reassign {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Partition number.
        #[arg(long)]
        partition: i32,
        /// The new replicas, broker ids separated by commas: `2,3,1`.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        replicas: Vec<i32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a stopped broker from the cluster for good.
    Decommission {
        /// Broker id.
        #[arg(long)]
        broker: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Info { client } => info(&client),
        ClusterCommand::Brokers { client } => brokers(&client),
        ClusterCommand::ElectLeaders {
            topic,
            partition,
            unclean,
            client,
        } => elect_leaders(&client, topic.as_deref(), partition, unclean),
        ClusterCommand::Reassign {
            topic,
            partition,
            replicas,
            client,
        } => reassign(&client, &topic, partition, &replicas),
        ClusterCommand::Decommission { broker, client } => decommission(&client, broker),
    }
}

fn info(client: &ClientArgs) -> Result<()> {
    let consumer = consumer(client)?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .context("Metadata request failed")?;
    println!(
        "answered by broker {} ({})",
        metadata.orig_broker_id(),
        metadata.orig_broker_name()
    );
    println!("brokers:");
    for broker in metadata.brokers() {
        println!("  {} {}:{}", broker.id(), broker.host(), broker.port());
    }
    let partitions: usize = metadata.topics().iter().map(|t| t.partitions().len()).sum();
    println!("topics: {}", metadata.topics().len());
    println!("partitions: {partitions}");
    Ok(())
}

fn brokers(client: &ClientArgs) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(&[]))?;
    println!("{:<6} {:<30} CONTROLLER", "ID", "ADDRESS");
    for b in &metadata.brokers {
        let controller = if b.node_id == metadata.controller_id {
            "yes"
        } else {
            ""
        };
        let address = format!("{}:{}", b.host.as_str(), b.port);
        println!("{:<6} {address:<30} {controller}", b.node_id.0);
    }
    Ok(())
}

fn elect_leaders(
    client: &ClientArgs,
    topic: Option<&str>,
    partition: Option<i32>,
    unclean: bool,
) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(topic.as_slice()))?;
    let wanted = match (topic, partition) {
        (Some(topic), Some(partition)) => Some(vec![(topic.to_owned(), vec![partition])]),
        (Some(topic), None) => Some(vec![(topic.to_owned(), partitions_of(&metadata, topic)?)]),
        // Null: the broker picks every partition that needs an election.
        (None, _) => None,
    };
    let mut admin = admin_connection(conn, &metadata, client);
    let request = ElectLeadersRequest::default()
        .with_election_type(if unclean { 1 } else { 0 })
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topic_partitions(wanted.map(|topics| {
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(&topic))
                        .with_partitions(partitions)
                })
                .collect()
        }));
    let response = admin
        .call(ELECT_LEADERS_VERSION, &request)
        .context("ElectLeaders request failed")?;
    if response.error_code != 0 {
        bail!("ElectLeaders refused: {}", error_name(response.error_code));
    }
    let mut elected: Vec<(String, i32)> = Vec::new();
    let mut failed = 0;
    for topic in &response.replica_election_results {
        for p in &topic.partition_result {
            let name = format!("{}-{}", topic.topic.as_str(), p.partition_id);
            match p.error_code {
                0 => elected.push((topic.topic.as_str().to_owned(), p.partition_id)),
                code if code == ResponseError::ElectionNotNeeded.code() => {
                    println!("{name}: election not needed, its leader is already the right one");
                }
                code => {
                    eprintln!(
                        "{name}: election failed: {}",
                        describe_error(code, p.error_message.as_ref())
                    );
                    failed += 1;
                }
            }
        }
    }
    if response.replica_election_results.is_empty() {
        println!("no partition needs an election");
    }
    if !elected.is_empty() {
        let topics: Vec<&str> = elected.iter().map(|(t, _)| t.as_str()).collect();
        let after = metadata_of(&mut admin, &topics)?;
        for (topic, partition) in &elected {
            match leader_of(&after, topic, *partition) {
                Some(leader) => println!("{topic}-{partition}: leader is now broker {leader}"),
                None => println!("{topic}-{partition}: elected"),
            }
        }
    }
    if failed > 0 {
        bail!("{failed} partition(s) got no new leader");
    }
    Ok(())
}

fn reassign(client: &ClientArgs, topic: &str, partition: i32, replicas: &[i32]) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(&[]))?;
    let mut admin = admin_connection(conn, &metadata, client);
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(ADMIN_TIMEOUT_MS)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(partition)
                        .with_replicas(Some(replicas.iter().map(|&b| BrokerId(b)).collect())),
                ]),
        ]);
    let response = admin
        .call(ALTER_REASSIGNMENTS_VERSION, &request)
        .context("AlterPartitionReassignments request failed")?;
    if response.error_code != 0 {
        bail!(
            "reassignment of {topic}-{partition} refused: {}",
            describe_error(response.error_code, response.error_message.as_ref())
        );
    }
    let result = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .with_context(|| format!("the answer has no result for {topic}-{partition}"))?;
    if result.error_code != 0 {
        bail!(
            "reassignment of {topic}-{partition} refused: {}",
            describe_error(result.error_code, result.error_message.as_ref())
        );
    }
    let list: Vec<String> = replicas.iter().map(i32::to_string).collect();
    println!(
        "{topic}-{partition}: replicas are now {}; new replicas join the ISR once they have \
         caught up (`fjord topic describe {topic}` shows it)",
        list.join(",")
    );
    Ok(())
}

fn decommission(client: &ClientArgs, broker: i32) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(&[]))?;
    let mut admin = admin_connection(conn, &metadata, client);
    let response = admin
        .call(
            UNREGISTER_BROKER_VERSION,
            &UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker)),
        )
        .context("UnregisterBroker request failed")?;
    if response.error_code != 0 {
        bail!(
            "decommissioning broker {broker} refused: {}",
            describe_error(response.error_code, response.error_message.as_ref())
        );
    }
    println!("broker {broker} decommissioned");
    // Its replicas stay in their partitions' lists (offline) until moved.
    let all = fetch_metadata(&mut admin, None)?;
    let mut left: Vec<String> = Vec::new();
    for t in &all.topics {
        for p in &t.partitions {
            if p.replica_nodes.contains(&BrokerId(broker)) {
                let name = t.name.as_ref().map(|n| n.as_str()).unwrap_or("?");
                left.push(format!("{name}-{}", p.partition_index));
            }
        }
    }
    if !left.is_empty() {
        println!(
            "still listed as a replica of {} partition(s), reassign them \
             (`fjord cluster reassign`): {}",
            left.len(),
            left.join(" ")
        );
    }
    Ok(())
}

/// Metadata for `topics` (`None`: all topics, `Some(&[])`: none), without
/// creating any.
pub(crate) fn fetch_metadata(
    conn: &mut Connection,
    topics: Option<&[&str]>,
) -> Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(false)
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }));
    conn.call(METADATA_VERSION, &request)
        .with_context(|| format!("Metadata request to {} failed", conn.addr()))
}

fn metadata_of(conn: &mut Connection, topics: &[&str]) -> Result<MetadataResponse> {
    let mut unique: Vec<&str> = topics.to_vec();
    unique.sort_unstable();
    unique.dedup();
    fetch_metadata(conn, Some(&unique))
}

/// A connection to the active controller's broker when Metadata names one
/// that accepts (and takes the login); else `conn`.
fn admin_connection(
    conn: Connection,
    metadata: &MetadataResponse,
    client: &ClientArgs,
) -> Connection {
    let controller = metadata
        .brokers
        .iter()
        .find(|b| b.node_id == metadata.controller_id);
    if let Some(b) = controller {
        let address = format!("{}:{}", b.host.as_str(), b.port);
        if address != conn.addr() {
            match Connection::open_like(&address, client, CLIENT_ID) {
                Ok(c) => return c,
                Err(e) => tracing::debug!("controller broker {address}: {e:#}"),
            }
        }
    }
    conn
}

/// The partition numbers of `topic`, or why there are none.
fn partitions_of(metadata: &MetadataResponse, topic: &str) -> Result<Vec<i32>> {
    let t = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .with_context(|| format!("Metadata has no topic {topic}"))?;
    if t.error_code != 0 {
        bail!("topic {topic}: {}", error_name(t.error_code));
    }
    let mut partitions: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

/// The leader's node id of `topic`-`partition`, when Metadata names one.
pub(crate) fn leader_of(metadata: &MetadataResponse, topic: &str, partition: i32) -> Option<i32> {
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))?
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .map(|p| p.leader_id.0)
        .filter(|&l| l >= 0)
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
