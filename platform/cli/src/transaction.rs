//! `fjord transaction list|describe|describe-producers|abort`: Kafka's
//! transactions as `kafka-transactions.sh` shows them (KIP-664), over raw
//! Kafka requests ([`crate::raw`]): librdkafka has no call for
//! ListTransactions, DescribeTransactions, DescribeProducers or
//! WriteTxnMarkers.
//!
//! `abort` is the operator's last resort for a hanging transaction, one
//! whose producer and coordinator are gone while its partition's last
//! stable offset stays behind it (read_committed consumers wait there): it
//! writes the ABORT marker to that one partition, as Kafka's tool does.
//! It needs CLUSTER_ACTION on the cluster (WriteTxnMarkers is otherwise a
//! broker-to-broker request).

use anyhow::{Context, Result, bail};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, FindCoordinatorRequest,
    ListTransactionsRequest, MetadataResponse, ProducerId, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientArgs;
use crate::cluster::{fetch_metadata, leader_of, topic_name};
use crate::raw::{Connection, describe_error};

/// Kafka 3.0+ answers these versions; Fjord too.
const LIST_VERSION: i16 = 0;
const DESCRIBE_VERSION: i16 = 0;
const PRODUCERS_VERSION: i16 = 0;
const MARKERS_VERSION: i16 = 1;
/// The first FindCoordinator version with batched keys (KIP-699).
const FIND_COORDINATOR_VERSION: i16 = 4;
/// FindCoordinator's key type of a transactional id.
const TRANSACTION_KEY: i8 = 1;
const CLIENT_ID: &str = "fjord-cli";

/// `fjord transaction …`
#[derive(clap::Subcommand, Debug)]
pub enum TransactionCommand {
    /// Transactional ids every broker coordinates, with producer id and state.
    List {
        /// Only transactions in these states (Ongoing, PrepareCommit,
        /// PrepareAbort, CompleteCommit, CompleteAbort, Empty, Dead,
        /// PrepareEpochFence); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One transactional id as its coordinator holds it: producer id and
    /// epoch, state, timeout, start time and partitions.
    Describe {
        /// The transactional id.
        transactional_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The producers a partition's leader knows: id, epoch, last sequence,
    /// and the first offset of the transaction each has open.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Abort a hanging transaction on one partition: by the offset it
    /// started at (`--start-offset`, found with `describe-producers`), or
    /// by its producer's id, epoch and coordinator epoch.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The transaction's first offset in the partition.
        #[arg(long, conflicts_with_all = ["producer_id", "producer_epoch", "coordinator_epoch"])]
        start_offset: Option<i64>,
        #[arg(long, requires_all = ["producer_epoch", "coordinator_epoch"])]
        producer_id: Option<i64>,
        #[arg(long)]
        producer_epoch: Option<i16>,
        #[arg(long)]
        coordinator_epoch: Option<i32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn run(command: TransactionCommand) -> Result<()> {
    match command {
        TransactionCommand::List { states, client } => list(&client, &states),
        TransactionCommand::Describe {
            transactional_id,
            client,
        } => describe(&client, &transactional_id),
        TransactionCommand::DescribeProducers {
            topic,
            partition,
            client,
        } => {
            let (_, producers) = producers_of(&client, &topic, partition)?;
            println!(
                "{:<20} {:>6} {:>12} {:>12} {:>16} {:>18}",
                "PRODUCER_ID",
                "EPOCH",
                "COORD_EPOCH",
                "LAST_SEQ",
                "LAST_TIMESTAMP",
                "TXN_START_OFFSET"
            );
            for p in producers {
                println!(
                    "{:<20} {:>6} {:>12} {:>12} {:>16} {:>18}",
                    p.producer_id.0,
                    p.producer_epoch,
                    p.coordinator_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    none_if_negative(p.current_txn_start_offset)
                );
            }
            Ok(())
        }
        TransactionCommand::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            client,
        } => {
            let target = match (start_offset, producer_id, producer_epoch, coordinator_epoch) {
                (Some(offset), None, None, None) => Target::StartOffset(offset),
                (None, Some(id), Some(epoch), Some(coordinator_epoch)) => Target::Producer {
                    id,
                    epoch,
                    coordinator_epoch,
                },
                _ => bail!(
                    "name the transaction by --start-offset, or by --producer-id, \
                     --producer-epoch and --coordinator-epoch"
                ),
            };
            abort(&client, &topic, partition, target)
        }
    }
}

/// `-` for Kafka's "none" offsets (-1).
fn none_if_negative(offset: i64) -> String {
    if offset < 0 {
        "-".to_owned()
    } else {
        offset.to_string()
    }
}

/// A connection to node `id`, as Metadata names it.
fn connect_to(metadata: &MetadataResponse, id: i32, client: &ClientArgs) -> Result<Connection> {
    let broker = metadata
        .brokers
        .iter()
        .find(|b| b.node_id.0 == id)
        .with_context(|| format!("Metadata names no broker {id}"))?;
    let address = format!("{}:{}", broker.host.as_str(), broker.port);
    Connection::open_like(&address, client, CLIENT_ID)
}

fn list(client: &ClientArgs, states: &[String]) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(&[]))?;
    let request = ListTransactionsRequest::default().with_state_filters(
        states
            .iter()
            .map(|s| StrBytes::from_string(s.clone()))
            .collect(),
    );
    println!(
        "{:<40} {:>11} {:<20} STATE",
        "TRANSACTIONAL_ID", "COORDINATOR", "PRODUCER_ID"
    );
    // Each broker answers for the transactions it coordinates.
    let mut failures = Vec::new();
    for broker in &metadata.brokers {
        let id = broker.node_id.0;
        let answer =
            connect_to(&metadata, id, client).and_then(|mut c| c.call(LIST_VERSION, &request));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("broker {id}: {e:#}"));
                continue;
            }
        };
        if answer.error_code != 0 {
            failures.push(format!(
                "broker {id}: {}",
                describe_error(answer.error_code, None)
            ));
            continue;
        }
        if !answer.unknown_state_filters.is_empty() {
            let unknown: Vec<&str> = answer
                .unknown_state_filters
                .iter()
                .map(|s| s.as_str())
                .collect();
            bail!("unknown transaction states: {}", unknown.join(", "));
        }
        for t in &answer.transaction_states {
            println!(
                "{:<40} {:>11} {:<20} {}",
                t.transactional_id.as_str(),
                id,
                t.producer_id.0,
                t.transaction_state.as_str()
            );
        }
    }
    if !failures.is_empty() {
        bail!("not every broker answered: {}", failures.join("; "));
    }
    Ok(())
}

fn describe(client: &ClientArgs, transactional_id: &str) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let found = conn
        .call(
            FIND_COORDINATOR_VERSION,
            &FindCoordinatorRequest::default()
                .with_key_type(TRANSACTION_KEY)
                .with_coordinator_keys(vec![StrBytes::from_string(transactional_id.to_owned())]),
        )
        .context("FindCoordinator request failed")?;
    let coordinator = found
        .coordinators
        .first()
        .context("FindCoordinator answered no coordinator")?;
    if coordinator.error_code != 0 {
        bail!(
            "finding the coordinator of {transactional_id}: {}",
            describe_error(coordinator.error_code, coordinator.error_message.as_ref())
        );
    }
    let address = format!("{}:{}", coordinator.host.as_str(), coordinator.port);
    let coordinator_id = coordinator.node_id.0;
    let mut conn = Connection::open_like(&address, client, CLIENT_ID)?;
    let answer = conn
        .call(
            DESCRIBE_VERSION,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(transactional_id.to_owned()),
            )]),
        )
        .context("DescribeTransactions request failed")?;
    let state = answer
        .transaction_states
        .first()
        .context("DescribeTransactions answered nothing")?;
    if state.error_code != 0 {
        bail!(
            "{transactional_id}: {}",
            describe_error(state.error_code, None)
        );
    }
    let mut partitions: Vec<String> = state
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.as_str()))
        })
        .collect();
    partitions.sort();
    println!("transactional id:   {transactional_id}");
    println!("coordinator:        {coordinator_id}");
    println!("producer id:        {}", state.producer_id.0);
    println!("producer epoch:     {}", state.producer_epoch);
    println!("state:              {}", state.transaction_state.as_str());
    println!("timeout (ms):       {}", state.transaction_timeout_ms);
    println!(
        "started (ms):       {}",
        none_if_negative(state.transaction_start_time_ms)
    );
    println!("partitions:         {}", partitions.join(" "));
    Ok(())
}

/// The leader of `topic`-`partition` and the producers it describes.
fn producers_of(
    client: &ClientArgs,
    topic: &str,
    partition: i32,
) -> Result<(Connection, Vec<ProducerState>)> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let metadata = fetch_metadata(&mut conn, Some(&[topic]))?;
    let leader = leader_of(&metadata, topic, partition)
        .with_context(|| format!("{topic}-{partition} has no leader"))?;
    let mut leader = connect_to(&metadata, leader, client)?;
    let answer = leader
        .call(
            PRODUCERS_VERSION,
            &DescribeProducersRequest::default().with_topics(vec![
                TopicRequest::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![partition]),
            ]),
        )
        .context("DescribeProducers request failed")?;
    let p = answer
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == partition)
        .with_context(|| format!("DescribeProducers answered nothing for {topic}-{partition}"))?;
    if p.error_code != 0 {
        bail!(
            "{topic}-{partition}: {}",
            describe_error(p.error_code, p.error_message.as_ref())
        );
    }
    Ok((leader, p.active_producers))
}

/// Which transaction `abort` ends.
enum Target {
    StartOffset(i64),
    Producer {
        id: i64,
        epoch: i16,
        coordinator_epoch: i32,
    },
}

fn abort(client: &ClientArgs, topic: &str, partition: i32, target: Target) -> Result<()> {
    let (mut leader, producers) = producers_of(client, topic, partition)?;
    let (id, epoch, coordinator_epoch) = match target {
        Target::Producer {
            id,
            epoch,
            coordinator_epoch,
        } => (id, epoch, coordinator_epoch),
        Target::StartOffset(offset) => {
            let p = producers
                .iter()
                .find(|p| p.current_txn_start_offset == offset)
                .with_context(|| {
                    format!("no transaction of {topic}-{partition} starts at offset {offset}")
                })?;
            let epoch = i16::try_from(p.producer_epoch)
                .with_context(|| format!("producer epoch {} out of range", p.producer_epoch))?;
            (p.producer_id.0, epoch, p.coordinator_epoch)
        }
    };
    let answer = leader
        .call(
            MARKERS_VERSION,
            &WriteTxnMarkersRequest::default().with_markers(vec![
                WritableTxnMarker::default()
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(epoch)
                    .with_transaction_result(false)
                    .with_coordinator_epoch(coordinator_epoch)
                    .with_topics(vec![
                        WritableTxnMarkerTopic::default()
                            .with_name(topic_name(topic))
                            .with_partition_indexes(vec![partition]),
                    ]),
            ]),
        )
        .context("WriteTxnMarkers request failed")?;
    let code = answer
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition)
        .map(|p| p.error_code)
        .context("WriteTxnMarkers answered nothing for the partition")?;
    if code != 0 {
        bail!(
            "aborting producer {id}'s transaction on {topic}-{partition}: {}",
            describe_error(code, None)
        );
    }
    println!("aborted producer {id} (epoch {epoch})'s transaction on {topic}-{partition}");
    Ok(())
}
