//! Transaction markers: the control batch that ends a transaction on each
//! of its partitions. The coordinator writes it itself to the partitions
//! this broker leads, and sends WriteTxnMarkers to the leaders of the
//! others, until every partition has it (Kafka's TransactionMarkerChannel
//! Manager, one request per leader, on connections kept per leader:
//! [`super::peers`]). After a marker on a partition of
//! `__consumer_offsets` the group coordinator applies or drops the
//! producer's pending transactional offsets there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::state::TxnMetadata;
use crate::broker_state::BrokerState;
use crate::group::offsets_topic::OFFSETS_TOPIC;

/// What ends a transaction on its partitions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// How long one WriteTxnMarkers to a peer may take.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `marker` to `topic`-`index` if this broker leads it, and for
/// `__consumer_offsets` completes the group side. Errors are Kafka codes
/// (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, …).
pub(crate) async fn write_local(
    state: &BrokerState,
    topic: &str,
    index: i32,
    marker: Marker,
) -> Result<(), i16> {
    let partition = state
        .registry()
        .get(topic)
        .and_then(|t| t.partition(index))
        .ok_or(ResponseError::UnknownTopicOrPartition.code())?;
    if !partition.is_leader() {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let offset = partition
        .write_txn_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
        )
        .await
        .map_err(|e| {
            tracing::warn!(topic, partition = index, error = %e, "transaction marker not written");
            crate::error::partition_error_code(&e)
        })?;
    // Written once the in-sync replicas have it (Kafka appends markers with
    // acks=all): the coordinator completes the transaction when every
    // marker is written, so a marker only this leader had would die with
    // it, leaving the transaction open on the next leader for good (its
    // last stable offset stuck; on `__consumer_offsets`, the offsets
    // pending). Not written in time, the coordinator writes it again.
    if partition.is_replicated() {
        let timeout = Duration::from_millis(state.config().offsets_commit_timeout_ms);
        partition
            .wait_committed(offset + 1, timeout)
            .await
            .map_err(|e| {
                tracing::warn!(topic, partition = index, error = %e, "transaction marker not replicated");
                crate::error::partition_error_code(&e)
            })?;
    }
    if topic == OFFSETS_TOPIC {
        state
            .groups()
            .complete_transaction(
                index,
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
            )
            .await;
    }
    Ok(())
}

/// Writes the markers of `txn` (its producer, epoch and prepared outcome)
/// to every partition of it once; returns the partitions still without
/// one. A partition that no longer exists anywhere counts as done, as in
/// Kafka (its data is gone with it).
pub(crate) async fn write_all(
    state: &Arc<BrokerState>,
    txn: &TxnMetadata,
    coordinator_epoch: i32,
) -> Vec<(String, i32)> {
    let marker = Marker {
        producer_id: txn.producer_id,
        producer_epoch: txn.producer_epoch,
        commit: txn.status == super::state::TxnStatus::PrepareCommit,
        coordinator_epoch,
    };
    let local = state.config().node_id;
    let mut left = Vec::new();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for (topic, index) in &txn.partitions {
        let leader = match state.cluster() {
            None => local,
            Some(link) => match link.metadata().partition(topic, *index) {
                Some(p) => p.leader,
                None => continue,
            },
        };
        if leader != local {
            if leader < 0 {
                left.push((topic.clone(), *index));
            } else {
                remote
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *index));
            }
            continue;
        }
        match write_local(state, topic, *index, marker).await {
            Ok(()) => {}
            Err(code) if code == ResponseError::UnknownTopicOrPartition.code() => {
                if state.cluster().is_some() {
                    // Known to the quorum, not opened here yet.
                    left.push((topic.clone(), *index));
                }
            }
            Err(_) => left.push((topic.clone(), *index)),
        }
    }
    for (broker, partitions) in remote {
        left.extend(send(state, broker, marker, partitions).await);
    }
    left
}

/// WriteTxnMarkers to `broker` for `partitions`; returns those it did not
/// write.
async fn send(
    state: &Arc<BrokerState>,
    broker: i32,
    marker: Marker,
    partitions: Vec<(String, i32)>,
) -> Vec<(String, i32)> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in &partitions {
        topics.entry(topic).or_default().push(*index);
    }
    let request = WriteTxnMarkersRequest::default().with_markers(vec![
        write_txn_markers_request::WritableTxnMarker::default()
            .with_producer_id(ProducerId(marker.producer_id))
            .with_producer_epoch(marker.producer_epoch)
            .with_transaction_result(marker.commit)
            .with_coordinator_epoch(marker.coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, indexes)| {
                        write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                            .with_partition_indexes(indexes)
                    })
                    .collect(),
            ),
    ]);
    let answer = match state
        .txns()
        .peers
        .call(
            state,
            broker,
            ApiKey::WriteTxnMarkers,
            1,
            request.into(),
            PEER_TIMEOUT,
        )
        .await
    {
        Ok(ResponseKind::WriteTxnMarkers(r)) => r,
        Ok(other) => {
            tracing::warn!(broker, answer = ?other, "unexpected WriteTxnMarkers answer");
            return partitions;
        }
        Err(e) => {
            tracing::info!(broker, error = %e, "WriteTxnMarkers not delivered; retried");
            return partitions;
        }
    };
    let mut left = Vec::new();
    for result in answer.markers {
        for topic in result.topics {
            for p in topic.partitions {
                let gone = p.error_code == ResponseError::UnknownTopicOrPartition.code()
                    && state.cluster().is_some_and(|l| {
                        l.metadata()
                            .partition(&topic.name, p.partition_index)
                            .is_none()
                    });
                if p.error_code != 0 && !gone {
                    left.push((topic.name.to_string(), p.partition_index));
                }
            }
        }
    }
    left
}
