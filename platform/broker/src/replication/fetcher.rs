//! A follower's replica fetcher: copies one partition's log from its
//! leader, as Kafka's ReplicaFetcherThread does, through the leader's
//! Kafka listener.
//!
//! 1. Truncation: ask the leader (OffsetForLeaderEpoch) where this
//!    replica's latest leader epoch ends in the leader's log, and cut the
//!    local log there — records a dead leader wrote but never committed go.
//!    Repeat with the (new) latest local epoch until the logs agree.
//! 2. Fetch from the log end with this broker's replica id, append the
//!    batches as they are (offsets and epochs kept), take the leader's high
//!    watermark. The leader learns this replica's log end from the fetch
//!    offset, which moves its high watermark and the ISR.
//!
//! The task runs until the metadata follower aborts it (new leader or
//! epoch); errors only make it reconnect after a pause.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, OffsetForLeaderEpochRequest, RequestKind, ResponseKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use tokio::sync::watch;

use super::peer::{PeerConnection, PeerError};
use crate::partition::Partition;
use crate::quorum_link::ClusterLink;
use crate::tls::client::PeerConnector;

/// How long a fetch may wait on the leader for new records.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Pause after an error before trying again.
const RETRY: Duration = Duration::from_millis(200);
/// Bytes per fetch.
const FETCH_BYTES: i32 = 8 << 20;

/// Why one round of replication stopped.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("leader {0} has no {1} listener in the metadata")]
    NoAddress(i32, String),
    #[error("leader answered error {0}")]
    Leader(i16),
    #[error("unexpected answer")]
    Unexpected,
    #[error(transparent)]
    Log(#[from] fjord_log::LogError),
}

pub(super) async fn run(
    link: Arc<ClusterLink>,
    connector: PeerConnector,
    shutdown: watch::Receiver<bool>,
    partition: Arc<Partition>,
    leader: i32,
    leader_epoch: i32,
) {
    tracing::info!(
        topic = partition.topic(),
        partition = partition.index(),
        leader,
        leader_epoch,
        "following"
    );
    let mut last_error = String::new();
    loop {
        match replicate(
            &shutdown,
            &link,
            &connector,
            &partition,
            leader,
            leader_epoch,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                let text = e.to_string();
                // Logged once per kind of failure, not once per retry.
                if text != last_error {
                    tracing::warn!(topic = partition.topic(), partition = partition.index(), leader, error = %text, "replica fetch failed; retrying");
                    last_error = text;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn replicate(
    shutdown: &watch::Receiver<bool>,
    link: &ClusterLink,
    connector: &PeerConnector,
    partition: &Partition,
    leader: i32,
    leader_epoch: i32,
) -> Result<(), FetchError> {
    let metadata = link.metadata();
    // The leader's endpoint on this broker's inter-broker listener name, as
    // Kafka's replica fetchers connect.
    let (host, port) = metadata
        .broker_endpoint(leader, connector.listener())
        .ok_or_else(|| FetchError::NoAddress(leader, connector.listener().to_owned()))?;
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let client_id = format!("fjord-replica-{}", link.broker_id());
    let mut connection =
        PeerConnection::connect(connector, &addr, client_id, Duration::from_secs(5)).await?;
    // As the platform's principal (a super user), so a leader with an
    // authorizer lets this follower fetch.
    if let Some(secret) = metadata.internal_secret.clone() {
        let user = crate::auth::INTERNAL_PRINCIPAL;
        connection
            .login_plain(user, secret.expose(), Duration::from_secs(5))
            .await?;
    }
    truncate(&mut connection, link, partition, leader_epoch).await?;
    let topic = TopicName(StrBytes::from_string(partition.topic().to_string()));
    loop {
        let log = partition.log();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(link.broker_id()))
            .with_max_wait_ms(FETCH_WAIT.as_millis() as i32)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_BYTES)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic.clone())
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition.index())
                            .with_current_leader_epoch(leader_epoch)
                            .with_fetch_offset(log.log_end_offset())
                            .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                            .with_log_start_offset(log.log_start_offset())
                            .with_partition_max_bytes(FETCH_BYTES),
                    ]),
            ]);
        let answer = connection
            .call(
                ApiKey::Fetch,
                12,
                RequestKind::Fetch(request),
                FETCH_WAIT + Duration::from_secs(10),
            )
            .await?;
        let ResponseKind::Fetch(response) = answer else {
            return Err(FetchError::Unexpected);
        };
        if response.error_code != 0 {
            return Err(FetchError::Leader(response.error_code));
        }
        let Some(data) = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition.index())
        else {
            return Err(FetchError::Unexpected);
        };
        if data.error_code == ResponseError::OffsetOutOfRange.code()
            && data.log_start_offset > log.log_end_offset()
        {
            // Everything this replica lacks is gone from the leader too:
            // start over where the leader's log starts.
            tracing::info!(
                topic = partition.topic(),
                partition = partition.index(),
                from = log.log_end_offset(),
                to = data.log_start_offset,
                "behind the leader's log start: starting the log over there"
            );
            partition.restart_at(data.log_start_offset)?;
            continue;
        }
        if data.error_code != 0 {
            return Err(FetchError::Leader(data.error_code));
        }
        let mut records = data.records.map(|r| r.to_vec()).unwrap_or_default();
        if !*shutdown.borrow() {
            partition.append_from_leader(&mut records, data.high_watermark)?;
            follow_log_start(partition, data.log_start_offset)?;
        }
    }
}

/// Moves the log start up to the leader's (DeleteRecords and retention on
/// the leader), as Kafka's followers do, never past what this replica
/// knows to be committed.
fn follow_log_start(partition: &Partition, leader_log_start: i64) -> Result<(), FetchError> {
    let log = partition.log();
    let start = leader_log_start
        .min(partition.high_watermark())
        .min(log.log_end_offset());
    if start > log.log_start_offset() {
        log.delete_records_before(start)?;
    }
    Ok(())
}

/// Cuts the local log where it stops agreeing with the leader's (KIP-101,
/// KIP-279): ask where the leader's log ends for our latest epoch; when the
/// leader's answer is an older epoch, cut to where both logs end that
/// epoch and ask again about it.
async fn truncate(
    connection: &mut PeerConnection,
    link: &ClusterLink,
    partition: &Partition,
    leader_epoch: i32,
) -> Result<(), FetchError> {
    let topic = TopicName(StrBytes::from_string(partition.topic().to_string()));
    let Some(mut asked) = partition.log().latest_epoch() else {
        return Ok(());
    };
    // Every round asks about a smaller epoch than the one before.
    loop {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(link.broker_id()))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(topic.clone())
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(partition.index())
                            .with_current_leader_epoch(leader_epoch)
                            .with_leader_epoch(asked),
                    ]),
            ]);
        let answer = connection
            .call(
                ApiKey::OffsetForLeaderEpoch,
                4,
                RequestKind::OffsetForLeaderEpoch(request),
                Duration::from_secs(10),
            )
            .await?;
        let ResponseKind::OffsetForLeaderEpoch(response) = answer else {
            return Err(FetchError::Unexpected);
        };
        let Some(end) = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition == partition.index())
        else {
            return Err(FetchError::Unexpected);
        };
        if end.error_code != 0 {
            return Err(FetchError::Leader(end.error_code));
        }
        let log_end = partition.log().log_end_offset();
        if end.leader_epoch < 0 || end.end_offset < 0 {
            // The leader knows no epoch at or below ours: keep only what
            // was committed (Kafka's fallback).
            cut(partition, partition.high_watermark().min(log_end))?;
            return Ok(());
        }
        // Where our log ends the epoch the leader answered about.
        let local = partition.log().end_offset_for_epoch(end.leader_epoch);
        match local {
            Some((local_epoch, local_end)) if local_epoch == end.leader_epoch => {
                cut(partition, end.end_offset.min(local_end).min(log_end))?;
                return Ok(());
            }
            Some((local_epoch, local_end)) if local_epoch < asked => {
                cut(partition, end.end_offset.min(local_end).min(log_end))?;
                asked = local_epoch;
            }
            _ => {
                cut(partition, end.end_offset.min(log_end))?;
                return Ok(());
            }
        }
    }
}

fn cut(partition: &Partition, offset: i64) -> Result<(), FetchError> {
    let log_end = partition.log().log_end_offset();
    if offset < log_end {
        tracing::info!(
            topic = partition.topic(),
            partition = partition.index(),
            from = log_end,
            to = offset,
            "truncating records the leader does not have"
        );
        partition.truncate_to(offset)?;
    }
    Ok(())
}
