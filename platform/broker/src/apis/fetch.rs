//! Fetch: serve stored batches up to the high watermark, and park the
//! request until `min_bytes` are there or `max_wait_ms` passes. Parked
//! requests wake on the partitions' append notifiers, not on a timer loop.
//!
//! Only a partition's leader serves it. A fetch with a replica id is a
//! follower's: it reads up to the log end instead of the high watermark,
//! and its fetch offset tells the leader how far the follower got (which
//! moves the high watermark and may bring the follower into the ISR).
//!
//! Versions: v13+ name topics by id (KIP-516); an id this broker does not
//! know is answered UNKNOWN_TOPIC_ID for each of its partitions, as Kafka
//! does. v15+ carry the follower's id in `replica_state` (its broker epoch
//! is not checked: ISR changes go through the controller, which knows it).
//! v16+ name the current leader of a partition answered
//! NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, with its endpoint
//! (KIP-951, [`super::leader_hint`]). v17's replica directory id is
//! accepted and unused (one log directory per broker). v18's
//! `high_watermark` is the high watermark the fetching replica knows: when
//! it is behind this leader's, the fetch is answered at once, so the
//! replica learns it without waiting out `max_wait_ms`.
//!
//! Fetch sessions (KIP-227): this broker creates none, so it answers every
//! full fetch with session id 0 (the client keeps sending full fetches,
//! in which forgotten topics mean nothing), and an incremental one (an
//! epoch other than 0 and -1) with FETCH_SESSION_ID_NOT_FOUND, as Kafka
//! answers a session it does not have.
//!
//! Isolation (v4+): a READ_COMMITTED consumer (`isolation_level` 1) is
//! served up to the partition's last stable offset, not the high
//! watermark, with the aborted transactions that have records in what it
//! may read (their records are to be dropped); every answer carries the
//! last stable offset (`Partition::read_committed`).
//!
//! Authorization: a consumer needs READ on each topic, a follower
//! CLUSTER_ACTION on the cluster; other partitions are answered
//! TOPIC_AUTHORIZATION_FAILED.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use fjord_log::LogError;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::leader_hint::{LeaderHints, wants_hint};
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
    /// The high watermark the fetching replica knows (v18; `i64::MAX`
    /// when it does not say).
    known_high_watermark: i64,
}

/// One topic of the request: its name (empty for an unknown id), its id
/// (nil before v13) and its partitions.
struct TopicTargets {
    name: TopicName,
    id: Uuid,
    targets: Vec<Target>,
}

/// The broker id of the replica sending `request`, or a negative id for a
/// consumer: from v15 on it is in the replica state (KIP-903).
pub(crate) fn replica_id(version: i16, request: &FetchRequest) -> i32 {
    if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    }
}

pub(crate) async fn handle(
    state: &BrokerState,
    listener: &str,
    version: i16,
    request: FetchRequest,
    access: &Access,
) -> FetchResponse {
    if version >= 7 && !matches!(request.session_epoch, 0 | -1) {
        // An incremental fetch names only what changed in a session, and
        // there is none: serving it as a full fetch would answer too little.
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    // `fetch.max.bytes` bounds what the client may ask for, as in Kafka.
    let max_bytes = (request.max_bytes.max(0) as usize).min(state.config().fetch_max_bytes);
    // v4+; the answer's aborted transactions depend on it, as in Kafka.
    let read_committed = request.isolation_level == 1;
    let fetcher = match replica_id(version, &request) {
        id if id >= 0 => Fetcher::Replica(id),
        _ => Fetcher::Consumer,
    };
    // v13+: one pass over the registry finds every id asked for.
    let by_id = if version >= 13 {
        let ids: HashSet<Uuid> = request.topics.iter().map(|t| t.topic_id).collect();
        state.registry().by_ids(&ids)
    } else {
        Default::default()
    };
    let topics: Vec<TopicTargets> = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if version >= 13 {
                by_id.get(&t.topic_id).cloned()
            } else {
                state.registry().get(&t.topic)
            };
            let name = match (&topic, version >= 13) {
                (Some(topic), true) => TopicName(StrBytes::from_string(topic.name().to_string())),
                _ => t.topic,
            };
            // An unknown id has no name to authorize: Kafka answers it
            // UNKNOWN_TOPIC_ID before looking at ACLs.
            let refused = if version >= 13 && topic.is_none() {
                Some(ResponseError::UnknownTopicId.code())
            } else {
                let authorized = match fetcher {
                    Fetcher::Consumer => access.topic(Operation::Read, &name),
                    Fetcher::Replica(_) => access.cluster(Operation::ClusterAction),
                };
                (!authorized).then(|| ResponseError::TopicAuthorizationFailed.code())
            };
            let targets = t
                .partitions
                .into_iter()
                .map(|p| Target {
                    index: p.partition,
                    partition: match refused {
                        Some(code) => Err(code),
                        None => resolve(state, topic.as_deref(), &p, fetcher),
                    },
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                    known_high_watermark: p.high_watermark,
                })
                .collect();
            TopicTargets {
                name,
                id: t.topic_id,
                targets,
            }
        })
        .collect();
    if let Fetcher::Replica(id) = fetcher {
        followers_fetched(state, id, &topics);
    }
    // Subscribe before the first read so an append in between still wakes
    // us: consumers wait for the high watermark, followers for the log end.
    let mut receivers: Vec<watch::Receiver<i64>> = topics
        .iter()
        .flat_map(|t| t.targets.iter())
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
        let (mut responses, bytes, errors) = read_all(&topics, max_bytes, fetcher, read_committed);
        let expired = Instant::now() >= deadline;
        if bytes >= min_bytes
            || errors
            || expired
            || receivers.is_empty()
            || *shutdown.borrow()
            || high_watermark_news(&topics)
        {
            // Bytes out are what consumers read; replication is not theirs.
            if fetcher == Fetcher::Consumer {
                count_served(&topics, &responses);
            }
            if version <= 5 {
                storage_errors_as_not_leader(&mut responses);
            }
            let response = FetchResponse::default().with_responses(responses);
            return if version >= 16 {
                with_leader_hints(state, listener, response)
            } else {
                response
            };
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

/// Fetch v4–5 clients may not know KAFKA_STORAGE_ERROR (v6 added it) and
/// would fail on it: they are told NOT_LEADER_OR_FOLLOWER instead, which
/// they retry after a metadata refresh, as Kafka's
/// `maybeDownConvertStorageError` does.
fn storage_errors_as_not_leader(responses: &mut [FetchableTopicResponse]) {
    let storage = ResponseError::KafkaStorageError.code();
    for data in responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
        if data.error_code == storage {
            data.error_code = ResponseError::NotLeaderOrFollower.code();
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
    let topic = topic.ok_or(ResponseError::UnknownTopicOrPartition.code())?;
    let partition = topic
        .partition(p.partition)
        .ok_or_else(|| super::leader_hint::not_hosted_code(topic, p.partition))?;
    crate::quorum_link::check_leader(state.cluster(), &partition, p.current_leader_epoch)
        .map_err(|e| partition_error_code(&e))?;
    if let Fetcher::Replica(id) = fetcher
        && !partition.has_replica(id)
    {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    Ok(partition)
}

/// Whether a fetching replica (v18) knows a high watermark older than
/// this leader's for one of its partitions: then it is answered at once.
fn high_watermark_news(topics: &[TopicTargets]) -> bool {
    topics.iter().flat_map(|t| &t.targets).any(|target| {
        target.known_high_watermark != i64::MAX
            && target
                .partition
                .as_ref()
                .is_ok_and(|p| target.known_high_watermark < p.high_watermark())
    })
}

/// Names, for v16+, the current leader of every partition answered
/// NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, and the endpoints of
/// those leaders (KIP-951).
fn with_leader_hints(
    state: &BrokerState,
    listener: &str,
    mut response: FetchResponse,
) -> FetchResponse {
    let mut hints = LeaderHints::new(state, listener);
    for topic in &mut response.responses {
        for data in &mut topic.partitions {
            if !wants_hint(data.error_code) {
                continue;
            }
            if let Some(hint) = hints.leader(&topic.topic, data.partition_index) {
                data.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(hint.leader.into())
                    .with_leader_epoch(hint.epoch);
            }
        }
    }
    response.node_endpoints = hints
        .endpoints()
        .map(|hint| {
            NodeEndpoint::default()
                .with_node_id(hint.leader.into())
                .with_host(hint.host())
                .with_port(hint.port)
                .with_rack(hint.rack())
        })
        .collect();
    response
}

/// Records a follower's fetch offsets with their partitions; ISR
/// expansions they make due go to the cluster's ISR proposer.
fn followers_fetched(state: &BrokerState, replica: i32, topics: &[TopicTargets]) {
    for TopicTargets { name, targets, .. } in topics {
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
fn count_served(topics: &[TopicTargets], responses: &[FetchableTopicResponse]) {
    for (topic, response) in topics.iter().zip(responses) {
        for (target, data) in topic.targets.iter().zip(&response.partitions) {
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
    topics: &[TopicTargets],
    max_bytes: usize,
    fetcher: Fetcher,
    read_committed: bool,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(topics.len());
    for topic in topics {
        let mut partitions = Vec::with_capacity(topic.targets.len());
        for target in &topic.targets {
            let data = read_one(target, &mut remaining, &mut total, fetcher, read_committed);
            errors |= data.error_code != 0;
            partitions.push(data);
        }
        // The name is encoded up to v12, the id from v13 on.
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.name.clone())
                .with_topic_id(topic.id)
                .with_partitions(partitions),
        );
    }
    (responses, total, errors)
}

/// A partition refused with `code`, shaped as Kafka answers it: offsets
/// -1; a topic or partition it does not know or may not read answered
/// before reading (`FetchResponse.partitionResponse`: no records, an empty
/// aborted-transactions list), the others from the read
/// (`ReplicaManager.createLogReadResult`: empty records, null list).
fn refused(index: i32, code: i16) -> PartitionData {
    let answer = PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1);
    let before_reading = [
        ResponseError::UnknownTopicOrPartition,
        ResponseError::UnknownTopicId,
        ResponseError::TopicAuthorizationFailed,
    ];
    if before_reading.iter().any(|e| e.code() == code) {
        answer.with_records(None)
    } else {
        answer
            .with_aborted_transactions(None)
            .with_records(Some(Bytes::new()))
    }
}

fn read_one(
    target: &Target,
    remaining: &mut usize,
    total: &mut usize,
    fetcher: Fetcher,
    read_committed: bool,
) -> PartitionData {
    let partition = match &target.partition {
        Ok(p) => p,
        Err(code) => return refused(target.index, *code),
    };
    let hw = partition.high_watermark();
    // The last stable offset for every isolation level, as Kafka; the
    // aborted transactions only to READ_COMMITTED fetches (null to others).
    let answer = PartitionData::default()
        .with_partition_index(target.index)
        .with_high_watermark(hw)
        .with_last_stable_offset(partition.last_stable_offset())
        .with_log_start_offset(partition.log_start_offset())
        .with_aborted_transactions(read_committed.then(Vec::new));
    // The first batch of the response is served even if larger than the
    // limits (so a big batch cannot block a consumer); later partitions get
    // only what still fits.
    let first = *total == 0;
    let limit = target.max_bytes.min(*remaining);
    if limit == 0 && !first {
        return answer;
    }
    let (read, answer) = match fetcher {
        Fetcher::Consumer if read_committed => {
            match partition.read_committed(target.offset, limit) {
                Ok((read, aborted)) => {
                    let aborted = aborted
                        .into_iter()
                        .map(|t| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(t.producer_id))
                                .with_first_offset(t.first_offset)
                        })
                        .collect();
                    (Ok(read), answer.with_aborted_transactions(Some(aborted)))
                }
                Err(e) => (Err(e), answer),
            }
        }
        Fetcher::Consumer => (partition.read(target.offset, limit), answer),
        Fetcher::Replica(_) => (partition.read_for_follower(target.offset, limit), answer),
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
                    refused(target.index, ResponseError::KafkaStorageError.code())
                }
            }
        }
        Err(e @ LogError::OffsetOutOfRange { .. }) => {
            tracing::debug!(topic = partition.topic(), partition = target.index, error = %e, "fetch out of range");
            match fetcher {
                Fetcher::Consumer => refused(target.index, log_error_code(&e)),
                // Fjord's followers start over at the leader's log start
                // offset when they fell behind it (`replication/fetcher.rs`;
                // Kafka's ask ListOffsets instead).
                Fetcher::Replica(_) => answer.with_error_code(log_error_code(&e)),
            }
        }
        Err(e) => {
            tracing::error!(topic = partition.topic(), partition = target.index, error = %e, "read failed");
            refused(target.index, log_error_code(&e))
        }
    }
}
