//! Fetch: serve stored batches up to the high watermark, and park the
//! request until `min_bytes` are there or `max_wait_ms` passes. Parked
//! requests wake on the partitions' append notifiers, not on a timer loop.
//!
//! Only a partition's leader serves it. A fetch with a replica id is a
//! follower's: it reads up to the log end instead of the high watermark,
//! and its fetch offset tells the leader how far the follower got (which
//! moves the high watermark and may bring the follower into the ISR).
//!
//! Authorization: a consumer needs READ on each topic, a follower
//! CLUSTER_ACTION on the cluster; other partitions are answered
//! TOPIC_AUTHORIZATION_FAILED.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use fjord_log::LogError;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::error::{log_error_code, partition_error_code};
use crate::instruments::{FetchPurgatory, records_in_batches};
use crate::partition::Partition;

/// Who is fetching.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fetcher {
    Consumer,
    /// A follower with this broker id.
    Replica(i32),
}

/// One partition of the request, resolved.
struct Target {
    index: i32,
    partition: Result<Arc<Partition>, i16>,
    offset: i64,
    max_bytes: usize,
}

pub(crate) async fn handle(
    state: &BrokerState,
    _version: i16,
    request: FetchRequest,
    access: &Access,
) -> FetchResponse {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    // `fetch.max.bytes` bounds what the client may ask for, as in Kafka.
    let max_bytes = (request.max_bytes.max(0) as usize).min(state.config().fetch_max_bytes);
    let fetcher = match request.replica_id.0 {
        id if id >= 0 => Fetcher::Replica(id),
        _ => Fetcher::Consumer,
    };
    let topics: Vec<(TopicName, Vec<Target>)> = request
        .topics
        .into_iter()
        .map(|t| {
            let authorized = match fetcher {
                Fetcher::Consumer => access.topic(Operation::Read, &t.topic),
                Fetcher::Replica(_) => access.cluster(Operation::ClusterAction),
            };
            let topic = state.registry().get(&t.topic);
            let targets = t
                .partitions
                .into_iter()
                .map(|p| Target {
                    index: p.partition,
                    partition: if authorized {
                        resolve(state, topic.as_deref(), &p, fetcher)
                    } else {
                        Err(ResponseError::TopicAuthorizationFailed.code())
                    },
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                })
                .collect();
            (t.topic, targets)
        })
        .collect();
    if let Fetcher::Replica(id) = fetcher {
        followers_fetched(state, id, &topics);
    }
    // Subscribe before the first read so an append in between still wakes
    // us: consumers wait for the high watermark, followers for the log end.
    let mut receivers: Vec<watch::Receiver<i64>> = topics
        .iter()
        .flat_map(|(_, targets)| targets.iter())
        .filter_map(|t| t.partition.as_ref().ok())
        .map(|p| match fetcher {
            Fetcher::Consumer => p.subscribe(),
            Fetcher::Replica(_) => p.subscribe_log_end(),
        })
        .collect();
    let mut shutdown = state.shutdown();
    // Set on the first wait: the fetch is then in the purgatory until it
    // answers or is dropped with its connection.
    let mut parked = None;
    loop {
        let (responses, bytes, errors) = read_all(&topics, max_bytes, fetcher);
        let expired = Instant::now() >= deadline;
        if bytes >= min_bytes || errors || expired || receivers.is_empty() || *shutdown.borrow() {
            // Bytes out are what consumers read; replication is not theirs.
            if fetcher == Fetcher::Consumer {
                count_served(&topics, &responses);
            }
            return FetchResponse::default().with_responses(responses);
        }
        parked.get_or_insert_with(FetchPurgatory::enter);
        let any_append = wait_any(&mut receivers);
        tokio::select! {
            _ = any_append => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::shutdown::stopped(&mut shutdown) => {}
        }
    }
}

/// The partition `p` names, if this broker leads it (and, for a
/// follower, the follower is one of its replicas).
fn resolve(
    state: &BrokerState,
    topic: Option<&crate::topic_registry::Topic>,
    p: &kafka_protocol::messages::fetch_request::FetchPartition,
    fetcher: Fetcher,
) -> Result<Arc<Partition>, i16> {
    let partition = topic
        .and_then(|topic| topic.partition(p.partition))
        .ok_or(ResponseError::UnknownTopicOrPartition.code())?;
    crate::quorum_link::check_leader(state.cluster(), &partition, p.current_leader_epoch)
        .map_err(|e| partition_error_code(&e))?;
    if let Fetcher::Replica(id) = fetcher
        && !partition.has_replica(id)
    {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    Ok(partition)
}

/// Records a follower's fetch offsets with their partitions; ISR
/// expansions they make due go to the cluster's ISR proposer.
fn followers_fetched(state: &BrokerState, replica: i32, topics: &[(TopicName, Vec<Target>)]) {
    for (name, targets) in topics {
        for target in targets {
            let Ok(partition) = &target.partition else {
                continue;
            };
            let proposal = partition.follower_fetched(replica, target.offset);
            if let (Some(proposal), Some(link)) = (proposal, state.cluster()) {
                link.propose_isr(crate::quorum_link::IsrRequest {
                    topic: name.to_string(),
                    partition: target.index,
                    proposal,
                });
            }
        }
    }
}

/// Adds what the answer serves to each partition's bytes and records out
/// (only the answer: a parked fetch's earlier passes were not sent).
fn count_served(topics: &[(TopicName, Vec<Target>)], responses: &[FetchableTopicResponse]) {
    for ((_, targets), response) in topics.iter().zip(responses) {
        for (target, data) in targets.iter().zip(&response.partitions) {
            if let (Ok(partition), Some(records)) = (&target.partition, &data.records)
                && !records.is_empty()
            {
                partition.served(records.len() as u64, records_in_batches(records));
            }
        }
    }
}

/// Completes when any receiver sees a change (or its partition is gone).
fn wait_any(receivers: &mut [watch::Receiver<i64>]) -> impl Future<Output = ()> + '_ {
    let mut waits: Vec<Pin<Box<dyn Future<Output = bool> + Send + '_>>> = receivers
        .iter_mut()
        .map(|rx| -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
            Box::pin(async move { rx.changed().await.is_ok() })
        })
        .collect();
    std::future::poll_fn(move |cx| {
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
}

/// One pass over every partition: `(answer, bytes served, any error)`.
fn read_all(
    topics: &[(TopicName, Vec<Target>)],
    max_bytes: usize,
    fetcher: Fetcher,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(topics.len());
    for (name, targets) in topics {
        let mut partitions = Vec::with_capacity(targets.len());
        for target in targets {
            let data = read_one(target, &mut remaining, &mut total, fetcher);
            errors |= data.error_code != 0;
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(name.clone())
                .with_partitions(partitions),
        );
    }
    (responses, total, errors)
}

fn read_one(
    target: &Target,
    remaining: &mut usize,
    total: &mut usize,
    fetcher: Fetcher,
) -> PartitionData {
    let answer = PartitionData::default().with_partition_index(target.index);
    let partition = match &target.partition {
        Ok(p) => p,
        Err(code) => return answer.with_error_code(*code).with_high_watermark(-1),
    };
    let hw = partition.high_watermark();
    let answer = answer
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(partition.log_start_offset());
    // The first batch of the response is served even if larger than the
    // limits (so a big batch cannot block a consumer); later partitions get
    // only what still fits.
    let first = *total == 0;
    let limit = target.max_bytes.min(*remaining);
    if limit == 0 && !first {
        return answer;
    }
    let read = match fetcher {
        Fetcher::Consumer => partition.read(target.offset, limit),
        Fetcher::Replica(_) => partition.read_for_follower(target.offset, limit),
    };
    match read {
        Ok(read) => {
            let Some(slice) = read.slice else {
                return answer;
            };
            if !first && slice.len() > limit {
                return answer;
            }
            match slice.bytes() {
                Ok(bytes) => {
                    *total += bytes.len();
                    *remaining = remaining.saturating_sub(bytes.len());
                    answer.with_records(Some(bytes))
                }
                Err(e) => {
                    tracing::error!(topic = partition.topic(), partition = target.index, error = %e, "read failed");
                    answer
                        .with_error_code(ResponseError::KafkaStorageError.code())
                        .with_records(Some(Bytes::new()))
                }
            }
        }
        Err(e @ LogError::OffsetOutOfRange { .. }) => {
            tracing::debug!(topic = partition.topic(), partition = target.index, error = %e, "fetch out of range");
            answer.with_error_code(log_error_code(&e))
        }
        Err(e) => {
            tracing::error!(topic = partition.topic(), partition = target.index, error = %e, "read failed");
            answer.with_error_code(log_error_code(&e))
        }
    }
}
