//! Where the runtime reads and writes the partitions that are not a task's
//! source: sinks, the dead-letter topic, state changelogs, committed
//! positions and the runtime's own internal topics.
//!
//! On a single node every partition is a local log, appended and read
//! in-process. In a cluster a partition may be led by another broker, and
//! its leader may change while a pipeline runs, so [`Topics`] goes through
//! a Kafka client (librdkafka) bootstrapped at this broker: the client
//! finds each partition's leader and follows it across failovers, and its
//! writes wait for the in-sync replicas (`acks=all`, idempotent), as any
//! producer's would. It authenticates as the platform's internal principal
//! (SASL/PLAIN with the secret the controller quorum drew): brokers refuse
//! writes to internal topics from anyone else. Source partitions are still
//! read from the local log: a broker runs tasks only for the source
//! partitions it leads.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fjord_broker::{LocalBroker, Partition};
use fjord_sdk::{Header, Record};
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::error::{PipelineError, TopicsError};
use super::records::{self, Read};

/// How long a read or a commit through the cluster may take, by default.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The partitions a pipeline runtime reads and writes, on this node or
/// across the cluster. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Topics {
    local: LocalBroker,
    /// In a cluster, this broker's Kafka client, made on first use: it
    /// authenticates with the cluster's internal secret, which the quorum
    /// may not have drawn yet when the runtime starts. `None` on a single
    /// node.
    cluster: Option<Arc<Mutex<Option<Arc<ClusterClient>>>>>,
    /// How long a blocking read through the cluster may take.
    timeout: Duration,
}

impl Topics {
    /// The topics of the broker `local`: in a cluster through the Kafka
    /// client of this broker (one per process and broker, made on first
    /// use).
    pub fn of(local: &LocalBroker) -> Topics {
        let cluster = if local.in_cluster() {
            type Slot = Arc<Mutex<Option<Arc<ClusterClient>>>>;
            static CLIENTS: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
            let mut clients = CLIENTS.get_or_init(Mutex::default).lock();
            Some(Arc::clone(
                clients.entry(local.bootstrap_server()).or_default(),
            ))
        } else {
            None
        };
        Topics {
            local: local.clone(),
            cluster,
            timeout: CLUSTER_TIMEOUT,
        }
    }

    /// The cluster's Kafka client (`None` on a single node), made when
    /// first asked for.
    fn client(&self) -> Option<Result<Arc<ClusterClient>, TopicsError>> {
        let slot = self.cluster.as_ref()?;
        let mut slot = slot.lock();
        if let Some(client) = &*slot {
            return Some(Ok(Arc::clone(client)));
        }
        let bootstrap = self.local.bootstrap_server();
        let Some((user, password)) = self.local.internal_credentials() else {
            return Some(Err(TopicsError::NoSecretYet { bootstrap }));
        };
        Some(
            ClusterClient::new(&bootstrap, user, &password).map(|client| {
                let client = Arc::new(client);
                *slot = Some(Arc::clone(&client));
                client
            }),
        )
    }

    /// The same topics, with blocking reads through the cluster given up
    /// after `timeout` (for a loop that must not stall while a partition
    /// changes leaders).
    pub fn with_timeout(mut self, timeout: Duration) -> Topics {
        self.timeout = timeout;
        self
    }

    /// Whether writes go through the cluster's Kafka client.
    pub fn in_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The broker this runtime runs in.
    pub fn local(&self) -> &LocalBroker {
        &self.local
    }

    /// Appends `records` to `topic`/`partition`; returns the offset of the
    /// first. In a cluster this returns once the in-sync replicas have
    /// them.
    pub async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, TopicsError> {
        match self.client() {
            Some(client) => client?.append(topic, partition, records).await,
            None => {
                let log = self.local_partition(topic, partition).ok_or_else(|| {
                    TopicsError::NoPartition {
                        topic: topic.to_owned(),
                        partition,
                    }
                })?;
                let batch = records::encode(records).map_err(TopicsError::Encode)?;
                log.append(batch)
                    .await
                    .map(|info| info.first_offset)
                    .map_err(TopicsError::Append)
            }
        }
    }

    /// The log start offset and high watermark of `topic`/`partition`
    /// (`(0, 0)` when the topic does not exist). Blocks in a cluster.
    pub fn bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), TopicsError> {
        match self.client() {
            Some(client) if self.local.topic(topic).is_some() => {
                client?.bounds(topic, partition, self.timeout)
            }
            Some(_) => Ok((0, 0)),
            None => Ok(self
                .local_partition(topic, partition)
                .map_or((0, 0), |p| (p.log_start_offset(), p.high_watermark()))),
        }
    }

    /// The records of `topic`/`partition` from `from` up to its high
    /// watermark as of the call (an absent topic reads as empty). Blocks.
    pub fn read_to_end(&self, topic: &str, partition: i32, from: i64) -> Result<Read, TopicsError> {
        let mut out = Read {
            next: from,
            ..Read::default()
        };
        match self.client() {
            Some(client) if self.local.topic(topic).is_some() => {
                client?.read_to_end(topic, partition, from, self.timeout)
            }
            Some(_) => Ok(out),
            None => {
                let Some(log) = self.local_partition(topic, partition) else {
                    return Ok(out);
                };
                while out.next < log.high_watermark() {
                    // A changelog or state read must not lose a batch.
                    let read = records::read(&log, out.next, 1 << 20)
                        .and_then(|read| read.strict().map_err(PipelineError::from))
                        .map_err(|e| TopicsError::Local(Box::new(e)))?;
                    if read.next <= out.next {
                        break;
                    }
                    out.next = read.next;
                    out.records.extend(read.records);
                }
                Ok(out)
            }
        }
    }

    /// This broker's copy of `topic`/`partition`, if it has one.
    fn local_partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.local.topic(topic)?.partition(partition)
    }

    /// Commits `offsets` (topic, partition, next offset to read) for
    /// `group`, as a member-less commit. Blocks in a cluster: call it from
    /// a task's thread.
    pub async fn commit(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), TopicsError> {
        match self.client() {
            Some(client) => client?.commit(group, offsets),
            None => self
                .local
                .commit(group, offsets)
                .await
                .map_err(TopicsError::LocalCommit),
        }
    }

    /// The offset `group` committed for `topic`/`partition`, if any.
    /// Blocks in a cluster.
    pub fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, TopicsError> {
        match self.client() {
            Some(client) => client?.committed(group, topic, partition, self.timeout),
            None => Ok(self.local.committed(group, topic, partition)),
        }
    }
}

/// The Kafka client of a runtime in a cluster. It authenticates as the
/// platform's internal principal (SASL/PLAIN), the only one the brokers let
/// write internal topics.
struct ClusterClient {
    bootstrap: String,
    /// Client properties every client here starts from: the bootstrap
    /// server and the credentials.
    base: ClientConfig,
    producer: FutureProducer,
    /// Reads are rare (a task starting, deployments changing) and short:
    /// one consumer, assigned to each partition in turn.
    reader: Mutex<BaseConsumer>,
    /// One consumer per pipeline group, for its commits.
    committers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl ClusterClient {
    fn new(bootstrap: &str, user: &str, password: &str) -> Result<ClusterClient, TopicsError> {
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", bootstrap)
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", user)
            .set("sasl.password", password);
        let producer: FutureProducer = base
            .clone()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            // A failover takes seconds: long enough for librdkafka to
            // retry across one, short enough for the task's own retry to
            // log that something is wrong.
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|source| TopicsError::Producer {
                bootstrap: bootstrap.to_owned(),
                source: Box::new(source),
            })?;
        let reader = consumer(&base, None)?;
        Ok(ClusterClient {
            bootstrap: bootstrap.to_owned(),
            base,
            producer,
            reader: Mutex::new(reader),
            committers: Mutex::default(),
        })
    }

    async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, TopicsError> {
        let mut deliveries = Vec::with_capacity(records.len());
        for r in records {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in &r.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: &h.name,
                    value: h.value.as_deref(),
                });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .partition(partition)
                .timestamp(r.timestamp)
                .headers(headers);
            if let Some(k) = &r.key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                record = record.payload(v.as_slice());
            }
            // A full local queue drains as deliveries complete.
            let mut record = record;
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(produce_error(topic, partition, e)),
                }
            }
        }
        let mut first = None;
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(delivered)) => {
                    first.get_or_insert(delivered.offset);
                }
                Ok(Err((e, _))) => return Err(produce_error(topic, partition, e)),
                Err(_) => {
                    return Err(TopicsError::ProducerGone {
                        topic: topic.to_owned(),
                        partition,
                    });
                }
            }
        }
        Ok(first.unwrap_or(-1))
    }

    fn bounds(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<(i64, i64), TopicsError> {
        self.reader
            .lock()
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| self.read_error(topic, partition, e))
    }

    fn read_error(&self, topic: &str, partition: i32, source: KafkaError) -> TopicsError {
        TopicsError::Read {
            topic: topic.to_owned(),
            partition,
            bootstrap: self.bootstrap.clone(),
            source: Box::new(source),
        }
    }

    fn read_to_end(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        timeout: Duration,
    ) -> Result<Read, TopicsError> {
        let reader = self.reader.lock();
        let failed = |e: KafkaError| self.read_error(topic, partition, e);
        let (start, end) = reader
            .fetch_watermarks(topic, partition, timeout)
            .map_err(failed)?;
        let mut out = Read {
            next: from.max(start),
            ..Read::default()
        };
        if out.next >= end {
            return Ok(out);
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(out.next))
            .map_err(failed)?;
        reader.assign(&assignment).map_err(failed)?;
        // `timeout` without progress, not for the whole read: a long
        // changelog takes as long as it takes.
        let mut deadline = Instant::now() + timeout;
        while out.next < end {
            if Instant::now() >= deadline {
                return Err(TopicsError::Stuck {
                    topic: topic.to_owned(),
                    partition,
                    bootstrap: self.bootstrap.clone(),
                    at: out.next,
                    end,
                    timeout,
                });
            }
            match reader.poll(Duration::from_millis(200)) {
                // Left from an earlier assignment of the shared reader.
                Some(Ok(m)) if m.topic() != topic || m.partition() != partition => {}
                Some(Ok(m)) => {
                    deadline = Instant::now() + timeout;
                    out.next = m.offset() + 1;
                    if m.offset() >= end {
                        break;
                    }
                    out.records.push(Record {
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: m.headers().map_or_else(Vec::new, |hs| {
                            hs.iter()
                                .map(|h| Header {
                                    name: h.key.to_owned(),
                                    value: h.value.map(<[u8]>::to_vec),
                                })
                                .collect()
                        }),
                        timestamp: m.timestamp().to_millis().unwrap_or(0),
                        offset: m.offset(),
                        partition,
                        topic: None,
                    });
                }
                // Compaction can leave the end past the last record.
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) => return Err(failed(e)),
                None => {}
            }
        }
        let _ = reader.unassign();
        out.next = out.next.max(end);
        Ok(out)
    }

    fn committer(&self, group: &str) -> Result<Arc<BaseConsumer>, TopicsError> {
        let mut committers = self.committers.lock();
        if let Some(c) = committers.get(group) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(consumer(&self.base, Some(group))?);
        committers.insert(group.to_owned(), Arc::clone(&c));
        Ok(c)
    }

    fn commit(&self, group: &str, offsets: &[(&str, i32, i64)]) -> Result<(), TopicsError> {
        let failed = |source: KafkaError| TopicsError::Commit {
            group: group.to_owned(),
            bootstrap: self.bootstrap.clone(),
            source: Box::new(source),
        };
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(failed)?;
        }
        self.committer(group)?
            .commit(&list, CommitMode::Sync)
            .map_err(failed)
    }

    fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<Option<i64>, TopicsError> {
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, partition);
        let found = self
            .committer(group)?
            .committed_offsets(list, timeout)
            .map_err(|source| TopicsError::Committed {
                group: group.to_owned(),
                bootstrap: self.bootstrap.clone(),
                source: Box::new(source),
            })?;
        Ok(found
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }))
    }
}

/// A consumer that only reads assigned partitions, or commits for `group`:
/// it never joins the group. (librdkafka wants a group id even to assign;
/// the reader's is never used for anything else.)
fn consumer(base: &ClientConfig, group: Option<&str>) -> Result<BaseConsumer, TopicsError> {
    base.clone()
        .set("group.id", group.unwrap_or("fjord-pipeline-runtime"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| TopicsError::Consumer(Box::new(e)))
}

fn produce_error(topic: &str, partition: i32, source: KafkaError) -> TopicsError {
    TopicsError::Produce {
        topic: topic.to_owned(),
        partition,
        source: Box::new(source),
    }
}
