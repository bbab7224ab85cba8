//! Where the runtime reads and writes the partitions that are not a task's
//! source: sinks, the dead-letter topic, state changelogs, committed
//! positions and the runtime's own internal topics — and everything else in
//! which a single node and a broker of a cluster differ for the runtime.
//! [`Topics`] is chosen once, from the broker, and the rest of the runtime
//! calls it without asking which it is, as the broker's handlers call its
//! metadata frontend.
//!
//! On a single node every partition is a local log, appended and read
//! in-process. In a cluster a partition may be led by another broker, and
//! its leader may change while a pipeline runs, so [`Topics`] goes through
//! a Kafka client (librdkafka) bootstrapped at this broker
//! ([`cluster_client`]): the client finds each partition's leader and
//! follows it across failovers, and its writes wait for the in-sync
//! replicas (`acks=all`, idempotent), as any producer's would. It
//! authenticates as the platform's internal principal (SASL/PLAIN with the
//! secret the controller quorum drew): brokers refuse writes to internal
//! topics from anyone else. Source partitions are still read from the
//! local log: a broker runs tasks only for the source partitions it leads.
//!
//! **An enum inside, not a trait**, like the broker's metadata frontend:
//! there are exactly two ways, both here, and two of the operations are
//! async; an enum keeps them plain `async fn`s and what the two share is
//! written once.

mod cluster_client;
mod txn;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fjord_broker::{LocalBroker, LocalError, Partition};
use fjord_sdk::Record;
use parking_lot::Mutex;
use tokio::sync::watch;

use super::deployments::{self, DEPLOYMENTS_TOPIC, LOGS_TOPIC, POSITIONS_TOPIC, STATUS_TOPIC};
use super::error::{PipelineError, TopicsError};
use super::records::{self, Read};
use cluster_client::ClusterClient;
use txn::{ClusterTxn, TxnWriter};

/// How long a read or a commit through the cluster may take, by default.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster's Kafka client of one broker, made on first use: it
/// authenticates with the cluster's internal secret, which the quorum may
/// not have drawn yet when the runtime starts.
type ClientSlot = Arc<Mutex<Option<Arc<ClusterClient>>>>;

/// How partitions other than the local sources are reached.
#[derive(Clone)]
enum Reach {
    /// A single node: every partition is a local log.
    Local,
    /// A broker of a cluster: through this broker's Kafka client.
    Cluster(ClientSlot),
}

/// The partitions a pipeline runtime reads and writes, on this node or
/// across the cluster. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Topics {
    local: LocalBroker,
    reach: Reach,
    /// How long a blocking read through the cluster may take.
    timeout: Duration,
    /// An exactly-once task's transaction: appends go into it, and a
    /// commit commits the offsets in it and ends it.
    txn: Option<Arc<tokio::sync::Mutex<TxnWriter>>>,
}

/// How long an exactly-once task's transaction may stay open before the
/// coordinator aborts it (Kafka's default `transaction.timeout.ms`): a task
/// commits every 200 ms, so only a hung or killed one reaches it.
const TXN_TIMEOUT_MS: i32 = 60_000;

impl Topics {
    /// The topics of the broker `local`: in a cluster through the Kafka
    /// client of this broker (one per process and broker, made on first
    /// use). The one place the runtime looks at the broker's mode.
    pub fn of(local: &LocalBroker) -> Topics {
        let reach = if local.in_cluster() {
            static CLIENTS: OnceLock<Mutex<HashMap<String, ClientSlot>>> = OnceLock::new();
            let mut clients = CLIENTS.get_or_init(Mutex::default).lock();
            Reach::Cluster(Arc::clone(
                clients.entry(local.bootstrap_server()).or_default(),
            ))
        } else {
            Reach::Local
        };
        Topics {
            local: local.clone(),
            reach,
            timeout: CLUSTER_TIMEOUT,
            txn: None,
        }
    }

    /// The same topics, writing in transactions of id `id` (exactly-once
    /// delivery): the id's previous producer (a task before a restart, a
    /// redeploy, a crash, or on another broker before a failover) is
    /// fenced, and its open transaction aborted, before this returns.
    pub async fn transactional(&self, id: &str) -> Result<Topics, TopicsError> {
        let writer = match self.client() {
            Some(client) => TxnWriter::Cluster(ClusterTxn::init(client?, id, TXN_TIMEOUT_MS)?),
            None => TxnWriter::Local(
                self.local
                    .transactional_writer(id, TXN_TIMEOUT_MS)
                    .await
                    .map_err(TopicsError::Transaction)?,
            ),
        };
        Ok(Topics {
            txn: Some(Arc::new(tokio::sync::Mutex::new(writer))),
            ..self.clone()
        })
    }

    /// Whether this writes in transactions, and one is open (written to,
    /// not yet committed).
    pub fn in_transaction(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| t.try_lock().map_or(true, |w| w.is_open()))
    }

    /// Whether this writes in transactions and its writer aborted one it
    /// could not commit (a cluster's): retrying cannot help, the task must
    /// start again from its last commit.
    pub fn transaction_lost(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| t.try_lock().is_ok_and(|w| w.is_lost()))
    }

    /// Commits the open transaction, if any (a source connector's, which
    /// has no offsets to commit).
    pub async fn commit_transaction(&self) -> Result<(), TopicsError> {
        match &self.txn {
            Some(txn) => txn.lock().await.commit().await,
            None => Ok(()),
        }
    }

    /// Aborts the open transaction, if any: nothing it wrote is read
    /// committed.
    pub async fn abort_transaction(&self) -> Result<(), TopicsError> {
        match &self.txn {
            Some(txn) => txn.lock().await.abort().await,
            None => Ok(()),
        }
    }

    /// The cluster's Kafka client (`None` on a single node), made when
    /// first asked for.
    fn client(&self) -> Option<Result<Arc<ClusterClient>, TopicsError>> {
        let Reach::Cluster(slot) = &self.reach else {
            return None;
        };
        let mut slot = slot.lock();
        if let Some(client) = &*slot {
            return Some(Ok(Arc::clone(client)));
        }
        let bootstrap = self.local.bootstrap_server();
        let Some(properties) = self.local.internal_client_properties() else {
            return Some(Err(TopicsError::NoSecretYet { bootstrap }));
        };
        Some(ClusterClient::new(&bootstrap, &properties).map(|client| {
            let client = Arc::new(client);
            *slot = Some(Arc::clone(&client));
            client
        }))
    }

    /// The same topics, with blocking reads through the cluster given up
    /// after `timeout` (for a loop that must not stall while a partition
    /// changes leaders).
    pub fn with_timeout(mut self, timeout: Duration) -> Topics {
        self.timeout = timeout;
        self
    }

    /// The broker this runtime runs in.
    pub fn local(&self) -> &LocalBroker {
        &self.local
    }

    /// Readies the runtime's internal topics when it starts: a single node
    /// has them before it serves a deploy. In a cluster they wait for
    /// enough brokers to replicate them ([`Topics::internal_topics_ready`]).
    pub async fn prepare(&self) -> Result<(), LocalError> {
        match self.reach {
            Reach::Local => self.ensure_internal_topics().await,
            Reach::Cluster(_) => Ok(()),
        }
    }

    /// Whether the runtime's internal topics exist, creating them once
    /// enough brokers are up to replicate them (a cluster). Blocks on
    /// `handle`: call it from the supervisor's thread.
    pub fn internal_topics_ready(&self, handle: &tokio::runtime::Handle) -> bool {
        match self.reach {
            // Made by `prepare`.
            Reach::Local => true,
            Reach::Cluster(_) if !self.local.replicas_available() => false,
            Reach::Cluster(_) => match handle.block_on(self.ensure_internal_topics()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot create the pipelines' topics yet");
                    false
                }
            },
        }
    }

    /// Creates the runtime's internal topics where missing.
    async fn ensure_internal_topics(&self) -> Result<(), LocalError> {
        let local = &self.local;
        local
            .ensure_topic(DEPLOYMENTS_TOPIC, Some(1), &[("cleanup.policy", "compact")])
            .await?;
        // A status per pipeline every second: small segments let the
        // cleaner keep it to about one record per pipeline, so reading the
        // latest statuses (the CLI, the admin API, the console's polls)
        // stays a short scan instead of a day's worth of records.
        local
            .ensure_topic(
                STATUS_TOPIC,
                Some(1),
                &[("cleanup.policy", "compact"), ("segment.bytes", "1048576")],
            )
            .await?;
        local
            .ensure_topic(POSITIONS_TOPIC, Some(1), &[("cleanup.policy", "compact")])
            .await?;
        local
            .ensure_topic(LOGS_TOPIC, Some(1), &[("retention.ms", "604800000")])
            .await?;
        Ok(())
    }

    /// A wake-up for each append to the deployments topic, where this
    /// broker can watch it: a single node's own log. `None` in a cluster,
    /// where the deployments may be led by another broker and leaderships
    /// move: the supervisor looks again every tick. `None` too while the
    /// topic does not exist.
    pub fn deployments_appended(&self) -> Option<watch::Receiver<i64>> {
        match self.reach {
            Reach::Local => self
                .local
                .topic(DEPLOYMENTS_TOPIC)
                .and_then(|t| t.partition(0))
                .map(|p| p.subscribe()),
            Reach::Cluster(_) => None,
        }
    }

    /// The key under which this broker publishes the status of pipeline
    /// `name`: in a cluster every broker runs some of a pipeline's
    /// partitions and publishes its own status, which readers merge
    /// ([`deployments::merge_statuses`]).
    pub fn status_key(&self, name: &str) -> String {
        match self.reach {
            Reach::Local => deployments::status_key(name, None),
            Reach::Cluster(_) => deployments::status_key(name, Some(self.local.node_id())),
        }
    }

    /// Whether [`Topics::append`] batches records itself, so that one call
    /// per delivery keeps all of it in flight at once (librdkafka, in a
    /// cluster); otherwise each call is one batch, and a delivery is
    /// appended in chunks (a local log).
    pub fn batches_appends(&self) -> bool {
        matches!(self.reach, Reach::Cluster(_))
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
        if let Some(txn) = &self.txn {
            return txn.lock().await.append(topic, partition, records).await;
        }
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
    /// a task's thread. In a transaction, the offsets join it and it is
    /// committed: what it wrote and the offsets become visible together.
    pub async fn commit(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), TopicsError> {
        if let Some(txn) = &self.txn {
            let mut writer = txn.lock().await;
            writer.commit_offsets(group, offsets).await?;
            return writer.commit().await;
        }
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
