//! The Kafka client through which a broker of a cluster reaches the
//! partitions other brokers lead (librdkafka): not used on a single node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_sdk::{Header, Record};
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use super::super::error::TopicsError;
use super::super::records::Read;

/// The Kafka client of a runtime in a cluster. It authenticates as the
/// platform's internal principal (SASL/PLAIN), the only one the brokers let
/// write internal topics, over TLS when the broker's inter-broker listener
/// has TLS (the properties are the broker's:
/// `LocalBroker::internal_client_properties`).
pub(super) struct ClusterClient {
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
    /// A client of `bootstrap` with `properties` (bootstrap server,
    /// protocol, credentials, TLS files).
    pub(super) fn new(
        bootstrap: &str,
        properties: &[(&str, String)],
    ) -> Result<ClusterClient, TopicsError> {
        let mut base = ClientConfig::new();
        for (key, value) in properties {
            base.set(*key, value);
        }
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

    pub(super) async fn append(
        &self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> Result<i64, TopicsError> {
        produce(&self.producer, topic, partition, records).await
    }

    pub(super) fn bounds(
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

    pub(super) fn read_to_end(
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

    /// A transactional producer of id `id` (exactly-once tasks), its
    /// transactions aborted by the coordinator after `timeout_ms` open.
    /// Not yet initialised: see `ClusterTxn::init`.
    pub(super) fn transactional_producer(
        &self,
        id: &str,
        timeout_ms: i32,
    ) -> Result<FutureProducer, TopicsError> {
        self.base
            .clone()
            .set("transactional.id", id)
            .set("transaction.timeout.ms", timeout_ms.to_string())
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|source| TopicsError::Producer {
                bootstrap: self.bootstrap.clone(),
                source: Box::new(source),
            })
    }

    /// The metadata under which a transaction commits offsets of `group`:
    /// the group's committer never joins it (generation -1, no member), as
    /// the in-process writer's commits.
    pub(super) fn group_metadata(
        &self,
        group: &str,
    ) -> Result<rdkafka::consumer::ConsumerGroupMetadata, TopicsError> {
        self.committer(group)?
            .group_metadata()
            .ok_or_else(|| TopicsError::NoGroupMetadata {
                group: group.to_owned(),
            })
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

    pub(super) fn commit(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), TopicsError> {
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

    pub(super) fn committed(
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

/// Sends `records` to `topic`/`partition` through `producer` (the
/// runtime's idempotent producer, or a task's transactional one) and waits
/// for their acknowledgements; returns the offset of the first.
pub(super) async fn produce(
    producer: &FutureProducer,
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
            match producer.send_result(record) {
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

fn produce_error(topic: &str, partition: i32, source: KafkaError) -> TopicsError {
    TopicsError::Produce {
        topic: topic.to_owned(),
        partition,
        source: Box::new(source),
    }
}
