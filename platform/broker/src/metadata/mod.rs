//! The metadata frontend: the one door through which every metadata change
//! goes — topics (create, "create or look up", delete), partitions, topic
//! configs, leader elections, partition reassignments, broker
//! decommissioning, ACL bindings (`acls`), users' SCRAM credentials
//! (`credentials`), client quotas (`quotas`), dynamic broker configs
//! (`broker_configs`) and dynamic group configs (`group_configs`). The Kafka handlers (`apis`), the in-process API behind
//! the admin HTTP API (`admin`, `local`), the group coordinator's offsets
//! topic and the pipeline runtime (through [`crate::LocalBroker`]) call
//! [`Metadata`] and never ask whether the broker is alone or one of a
//! cluster.
//!
//! Behind it are two stores:
//! - [`registry`]: a single node. A change is made to the local
//!   [`TopicRegistry`](crate::topic_registry::TopicRegistry) (files in the
//!   data directory, on a blocking thread); this broker is the only
//!   replica of everything.
//! - [`quorum`]: a broker of a cluster. A change is a command to the
//!   controller quorum (`fjord-controller`), awaited until this broker has
//!   applied it; the registry then follows the quorum's metadata
//!   (`crate::quorum_link`).
//!
//! Reads are mostly not here: in both modes the registry is this broker's
//! view of what exists, and handlers read it directly. The exception is who
//! holds a partition ([`Metadata::partition_replicas`]), which only the
//! quorum knows in a cluster.
//!
//! **One type with an enum inside, not a trait.** There are exactly two
//! stores, both in this crate, and the operations are async: an enum keeps
//! them plain `async fn`s (no boxed futures, no `dyn`), and what the two
//! share ("create the topic, or look it up if it exists") is written once
//! in [`Metadata`] rather than in each implementation.
//!
//! **Adding a record kind** (as ACLs, SCRAM credentials and client quotas
//! are: `acls`, `credentials` and `quotas` on a single node, `CreateAcls`,
//! `SetScramCredential` and `AlterClientQuotas` in the quorum): one
//! method on [`Metadata`] per change, matching on [`Store`]; the quorum arm
//! proposes a new `fjord_controller::Command` variant (the controller
//! persists and replicates it like a topic), the registry arm writes a new
//! file kind next to the topics in the data directory. Handlers
//! (`CreateAcls`, `AlterUserScramCredentials`, …) call the method and
//! translate its [`ApiError`] to the wire, like the topic handlers do.
//!
//! **A single node stays on the registry (no one-voter quorum).** Kafka in
//! KRaft mode runs a one-voter quorum on a single node; `fjord server
//! --node-id 1 --controller-voters 1@host:port` runs the same here. Measured
//! with `scripts/bench-topic-create` (docs/architecture.md has the
//! figures), the quorum makes creating a topic about 1.6 to 2 times slower
//! on one node (a Raft append and the metadata follower's apply before the
//! registry write) and the start to the first topic 3 to 4 times longer
//! (the broker registers and is unfenced first). It would also keep a
//! second copy of every topic (the Raft log and the registry) and need a
//! migration of existing single-node data directories. What it would
//! remove is one arm of each method here: with this frontend the split is
//! one `match` per operation, so the single node keeps the registry.

mod acls;
mod broker_configs;
mod credentials;
mod group_configs;
mod quorum;
mod quotas;
mod registry;

use std::sync::Arc;
use std::time::Duration;

use fjord_controller::{ElectionType, ScramCredential, ScramMechanism};
use kafka_protocol::ResponseError;
use uuid::Uuid;

pub(crate) use acls::AclStore;
pub(crate) use broker_configs::{
    BrokerConfigChanges, apply as apply_broker_config_changes, load_local as load_broker_configs,
};
pub(crate) use group_configs::load_local as load_group_configs;

use crate::authorizer::{AclBinding, AclFilter, AclIndex};
use crate::group::GroupCoordinator;
use crate::group::configs::GroupConfigChanges;
use crate::quorum_link::ClusterLink;
use crate::topic_config::TopicConfigs;
use crate::topic_registry::{ApiError, Topic, TopicRegistry};

pub(crate) use credentials::{LocalCredentials, Users};
pub(crate) use quotas::{
    CLIENT_ID, IP, IpQuotaTable, QuotaChanges, QuotaStore, QuotaTable, QuotaTarget, USER,
};
pub(crate) use quotas::{entity_from_parts, entity_parts};

/// The records a single node keeps in its data directory beside the
/// topics: ACL bindings, users' SCRAM credentials and client quotas (in a
/// cluster the quorum keeps them, and these stay empty).
#[derive(Debug)]
pub(crate) struct LocalStores {
    pub acls: Arc<AclStore>,
    pub credentials: Arc<LocalCredentials>,
    pub quotas: Arc<QuotaStore>,
    /// The data directory, where a single node's dynamic broker configs
    /// are kept, and the lock their changes take one at a time.
    pub data_dir: std::path::PathBuf,
    pub broker_configs: Arc<parking_lot::Mutex<()>>,
    /// The lock a single node's group config changes take one at a time.
    pub group_configs: Arc<parking_lot::Mutex<()>>,
}

impl LocalStores {
    /// Opens them in the data directory `dir`.
    pub(crate) fn open(dir: &std::path::Path) -> Result<LocalStores, crate::error::BrokerError> {
        Ok(LocalStores {
            acls: Arc::new(AclStore::open(dir)?),
            credentials: Arc::new(LocalCredentials::open(dir)?),
            quotas: Arc::new(QuotaStore::open(dir)?),
            data_dir: dir.to_path_buf(),
            broker_configs: Arc::default(),
            group_configs: Arc::default(),
        })
    }
}

/// How a new topic is replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replication {
    /// The broker's `default.replication.factor`.
    Default,
    /// As many replicas as this.
    Factor(i16),
    /// A topic the platform creates for itself (`__consumer_offsets`, the
    /// pipelines' topics): replicated as `offsets.topic.replication.factor`
    /// says, and refused (COORDINATOR_NOT_AVAILABLE) while fewer brokers are
    /// live.
    Internal,
}

/// A topic to create, as a client or the platform asks for it.
#[derive(Debug, Clone)]
pub(crate) struct NewTopic {
    pub name: String,
    /// `None`: the broker's `num.partitions`.
    pub partitions: Option<i32>,
    pub replication: Replication,
    /// Explicit replica lists, one per partition (CreateTopics'
    /// assignments); empty when the topic gives a count instead.
    pub assignments: Vec<Vec<i32>>,
    /// Config overrides, checked by the store in the order the Kafka
    /// answer wants (after the replication settings).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic called `name` with the broker's defaults.
    pub(crate) fn named(name: &str) -> Self {
        NewTopic {
            name: name.to_owned(),
            partitions: None,
            replication: Replication::Default,
            assignments: Vec::new(),
            configs: Vec::new(),
        }
    }
}

/// What a topic creation did (or would do, when only validated).
#[derive(Debug, Clone)]
pub(crate) struct CreatedTopic {
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: TopicConfigs,
    /// The new topic's id (`None` when only validated).
    pub id: Option<Uuid>,
    /// The topic as this broker hosts it (`None` when only validated).
    pub topic: Option<Arc<Topic>>,
}

/// Who holds a partition: its leader and epoch, replicas and in-sync
/// replicas (on a single node, this broker alone).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct PartitionReplicas {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// Where this broker's metadata changes are made.
#[derive(Debug)]
enum Store {
    /// The local registry: a single node.
    Registry,
    /// The controller quorum: a broker of a cluster.
    Quorum(Arc<ClusterLink>),
}

/// What the frontend reads of the broker's config: who this broker is and
/// what a new topic gets when the request leaves it open. (Values, not the
/// config itself, so that the frontend sits below what the config names.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetadataConfig {
    /// `node.id`.
    pub node_id: i32,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `offsets.topic.replication.factor`, of every topic the platform
    /// creates for itself.
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor`, of
    /// `__transaction_state`.
    pub transaction_state_replication_factor: i16,
    /// How many controller voters `controller.quorum.voters` names (1
    /// when it names none).
    pub controller_voters: usize,
    /// `max.partitions`: the partitions one broker hosts at most.
    pub max_partitions: usize,
}

/// The broker's parts that both stores read: its topics (what exists
/// here) and the config values a new topic takes.
#[derive(Debug)]
struct Parts {
    registry: Arc<TopicRegistry>,
    /// The users' SCRAM credentials of a single node.
    credentials: Arc<LocalCredentials>,
    config: MetadataConfig,
    acls: Arc<AclStore>,
    quotas: Arc<QuotaStore>,
    data_dir: std::path::PathBuf,
    broker_configs: Arc<parking_lot::Mutex<()>>,
    /// The group coordinator, which applies a single node's group configs
    /// and holds the bounds they are checked against.
    groups: Arc<GroupCoordinator>,
    group_configs: Arc<parking_lot::Mutex<()>>,
}

/// The metadata frontend of one broker (see the module doc). Cheap to make
/// ([`Metadata::new`] per call).
#[derive(Debug)]
pub(crate) struct Metadata {
    parts: Parts,
    store: Store,
}

impl Metadata {
    /// The frontend of a broker with `registry`, the local `stores` and
    /// `config`: over the quorum behind `cluster` when there is one, over
    /// `registry` and `stores` alone otherwise.
    pub(crate) fn new(
        registry: Arc<TopicRegistry>,
        groups: Arc<GroupCoordinator>,
        stores: &LocalStores,
        config: MetadataConfig,
        cluster: Option<Arc<ClusterLink>>,
    ) -> Metadata {
        let store = match cluster {
            Some(link) => Store::Quorum(link),
            None => Store::Registry,
        };
        Metadata {
            parts: Parts {
                registry,
                config,
                acls: Arc::clone(&stores.acls),
                credentials: Arc::clone(&stores.credentials),
                quotas: Arc::clone(&stores.quotas),
                data_dir: stores.data_dir.clone(),
                broker_configs: Arc::clone(&stores.broker_configs),
                groups,
                group_configs: Arc::clone(&stores.group_configs),
            },
            store,
        }
    }

    /// The ACL bindings now, indexed for the authorizer.
    pub(crate) fn acls(&self) -> Arc<AclIndex> {
        match &self.store {
            Store::Registry => self.parts.acls.local(),
            Store::Quorum(link) => self.parts.acls.followed(link),
        }
    }

    /// Adds ACL bindings (one already there is kept).
    pub(crate) async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => acls::create_local(&self.parts.acls, bindings).await,
            Store::Quorum(link) => acls::create_quorum(link, &bindings).await,
        }
    }

    /// Removes the ACL bindings `filters` match; returns, per filter, the
    /// bindings it matched.
    pub(crate) async fn delete_acls(
        &self,
        filters: &[AclFilter],
    ) -> Result<Vec<Vec<AclBinding>>, ApiError> {
        let matched = acls::matching(&self.acls(), filters);
        let all: Vec<AclBinding> = matched.iter().flatten().cloned().collect();
        if !all.is_empty() {
            match &self.store {
                Store::Registry => acls::delete_local(&self.parts.acls, all).await?,
                Store::Quorum(link) => acls::delete_quorum(link, &all).await?,
            }
        }
        Ok(matched)
    }

    /// Changes the dynamic broker configs of `resource` (`""`: the
    /// cluster default; a broker id), checked by the caller
    /// (`crate::dynamic_config::check`); with `replace`, the resource's
    /// other keys are removed (AlterConfigs). Every broker applies them
    /// and they survive a restart.
    pub(crate) async fn alter_broker_configs(
        &self,
        resource: String,
        changes: BrokerConfigChanges,
        replace: bool,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => {
                broker_configs::alter_local(
                    &self.parts.registry,
                    &self.parts.broker_configs,
                    &self.parts.data_dir,
                    self.parts.config.node_id,
                    resource,
                    changes,
                    replace,
                )
                .await
            }
            Store::Quorum(link) => {
                broker_configs::alter_quorum(link, resource, changes, replace).await
            }
        }
    }

    /// Changes the dynamic configs of group `group` (with `replace`, its
    /// other keys are removed: AlterConfigs), once checked
    /// (`crate::group::configs::check`: a bad key or value is
    /// INVALID_CONFIG); with `validate_only`, only checks. Every broker's
    /// coordinator applies them and they survive a restart.
    pub(crate) async fn alter_group_configs(
        &self,
        group: String,
        changes: GroupConfigChanges,
        replace: bool,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        crate::group::configs::check_group_name(&group)
            .map_err(|e| ApiError::new(ResponseError::InvalidRequest, e))?;
        match &self.store {
            Store::Registry => {
                group_configs::alter_local(
                    &self.parts.groups,
                    &self.parts.group_configs,
                    &self.parts.data_dir,
                    group,
                    changes,
                    replace,
                    validate_only,
                )
                .await
            }
            Store::Quorum(link) => {
                group_configs::alter_quorum(
                    link,
                    &self.parts.groups,
                    group,
                    changes,
                    replace,
                    validate_only,
                )
                .await
            }
        }
    }

    /// The client quotas now: every entity's values.
    pub(crate) fn client_quotas(&self) -> Arc<QuotaTable> {
        match &self.store {
            Store::Registry => self.parts.quotas.local(),
            Store::Quorum(link) => self.parts.quotas.followed(link),
        }
    }

    /// The connection quotas by client address now (KIP-612's `ip`
    /// entities).
    pub(crate) fn ip_quotas(&self) -> Arc<IpQuotaTable> {
        match &self.store {
            Store::Registry => self.parts.quotas.local_ips(),
            Store::Quorum(link) => self.parts.quotas.followed_ips(link),
        }
    }

    /// Changes `entity`'s quota values (with `validate_only`, only checks
    /// them). An unknown key or a value that is not positive (or not whole,
    /// for a byte rate) is INVALID_REQUEST, as in Kafka.
    pub(crate) async fn alter_client_quotas(
        &self,
        entity: QuotaTarget,
        changes: QuotaChanges,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        quotas::check(&entity, &changes)?;
        if validate_only || changes.is_empty() {
            return Ok(());
        }
        match &self.store {
            Store::Registry => quotas::alter_local(&self.parts.quotas, entity, changes).await,
            Store::Quorum(link) => quotas::alter_quorum(link, entity, changes).await,
        }
    }

    /// `user`'s SCRAM credential for `mechanism`, as this broker knows it
    /// (in a cluster: the quorum's metadata it has applied).
    pub(crate) fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<ScramCredential> {
        match &self.store {
            Store::Registry => self.parts.credentials.get(user, mechanism),
            Store::Quorum(link) => link
                .metadata()
                .scram_credentials
                .get(user)?
                .get(&mechanism)
                .cloned(),
        }
    }

    /// Every user's SCRAM credentials.
    pub(crate) fn scram_users(&self) -> Users {
        match &self.store {
            Store::Registry => self.parts.credentials.all(),
            Store::Quorum(link) => link.metadata().scram_credentials.clone(),
        }
    }

    /// Creates or replaces `user`'s credential for `mechanism`. A
    /// credential outside the iteration bounds or with keys of the wrong
    /// size is UNACCEPTABLE_CREDENTIAL.
    pub(crate) async fn set_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
        credential: ScramCredential,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => {
                let (store, user) = (Arc::clone(&self.parts.credentials), user.to_owned());
                registry::blocking(move || store.set(&user, mechanism, credential)).await
            }
            Store::Quorum(link) => {
                quorum::set_scram_credential(link, user, mechanism, credential).await
            }
        }
    }

    /// Removes `user`'s credential for `mechanism`; none is
    /// RESOURCE_NOT_FOUND.
    pub(crate) async fn delete_scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => {
                let (store, user) = (Arc::clone(&self.parts.credentials), user.to_owned());
                registry::blocking(move || store.delete(&user, mechanism)).await
            }
            Store::Quorum(link) => quorum::delete_scram_credential(link, user, mechanism).await,
        }
    }

    /// Whether a topic the platform creates for itself
    /// ([`Replication::Internal`]) can be created now: always on a single
    /// node; in a cluster once as many brokers are live as it wants
    /// replicas.
    pub(crate) fn replicas_available(&self) -> bool {
        match &self.store {
            Store::Registry => true,
            Store::Quorum(link) => quorum::internal_replication_factor(&self.parts, link).is_some(),
        }
    }

    /// Creates `topic` (with `validate_only`, only checks that it could
    /// be). An existing name is TOPIC_ALREADY_EXISTS.
    pub(crate) async fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, ApiError> {
        match &self.store {
            Store::Registry => registry::create_topic(&self.parts, topic, validate_only).await,
            Store::Quorum(link) => quorum::create(&self.parts, link, topic, validate_only).await,
        }
    }

    /// The topic called `topic.name`, created first when missing. When it
    /// was created concurrently (in a cluster, maybe by another broker that
    /// this one has not caught up with), waits up to `wait_known` for this
    /// broker to know it; after that the error is TOPIC_ALREADY_EXISTS.
    pub(crate) async fn create_or_get(
        &self,
        topic: NewTopic,
        wait_known: Duration,
    ) -> Result<Arc<Topic>, ApiError> {
        let registry = &self.parts.registry;
        if let Some(existing) = registry.get(&topic.name) {
            return Ok(existing);
        }
        let name = topic.name.clone();
        match self.create_topic(topic, false).await {
            Ok(created) => created.topic.ok_or_else(|| {
                ApiError::new(
                    ResponseError::UnknownServerError,
                    format!("topic {name} was not created"),
                )
            }),
            Err(e) if e.code == ResponseError::TopicAlreadyExists.code() => {
                let deadline = tokio::time::Instant::now() + wait_known;
                loop {
                    if let Some(existing) = registry.get(&name) {
                        break Ok(existing);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        break Err(ApiError::new(
                            ResponseError::TopicAlreadyExists,
                            format!("topic {name} exists but is not known here yet"),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes topic `name` and its data.
    pub(crate) async fn delete_topic(&self, name: &str) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => registry::delete_topic(&self.parts, name).await,
            Store::Quorum(link) => quorum::delete_topic(link, name).await,
        }
    }

    /// Grows topic `name` to `total` partitions, with `assignments` (one
    /// replica list per new partition) when the request gives them.
    pub(crate) async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => {
                registry::create_partitions(&self.parts, name, total, assignments, validate_only)
                    .await
            }
            Store::Quorum(link) => {
                quorum::create_partitions(
                    &self.parts,
                    link,
                    name,
                    total,
                    assignments,
                    validate_only,
                )
                .await
            }
        }
    }

    /// Replaces the config overrides of topic `name` with `configs`.
    pub(crate) async fn set_topic_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => registry::set_topic_configs(&self.parts, name, configs).await,
            Store::Quorum(link) => quorum::set_configs(link, name, &configs).await,
        }
    }

    /// The partitions, by topic, that an ElectLeaders request without a
    /// list means: none on a single node (it leads all it has).
    pub(crate) fn needing_election(&self, election: ElectionType) -> Vec<(String, Vec<i32>)> {
        match &self.store {
            Store::Registry => Vec::new(),
            Store::Quorum(link) => quorum::needing_election(link, election),
        }
    }

    /// Elects a leader of `topic`-`partition`.
    pub(crate) async fn elect_leader(
        &self,
        topic: &str,
        partition: i32,
        election: ElectionType,
    ) -> Result<(), ApiError> {
        match self.quorum_of(topic) {
            Some(link) => quorum::elect_leader(link, topic, partition, election)
                .await
                .map(|_| ()),
            None => Err(registry::elect_leader(&self.parts, topic, partition)),
        }
    }

    /// Moves `topic`-`partition` to the replica list `replicas`.
    pub(crate) async fn reassign(
        &self,
        topic: &str,
        partition: i32,
        replicas: &[i32],
        allow_replication_factor_change: bool,
    ) -> Result<(), ApiError> {
        // AlterPartitionReassignments v1 (KIP-860) may forbid changing the
        // number of replicas; Kafka's controller refuses it so.
        if !allow_replication_factor_change
            && let Some(current) = self.partition_replicas(topic, partition)
            && current.replicas.len() != replicas.len()
        {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "the reassignment would change the replication factor of {topic}-{partition} from {} to {}, and allow_replication_factor_change is false",
                    current.replicas.len(),
                    replicas.len()
                ),
            ));
        }
        match self.quorum_of(topic) {
            Some(link) => quorum::reassign(link, topic, partition, replicas).await,
            None => registry::reassign(&self.parts, topic, partition, replicas),
        }
    }

    /// Decommissions broker `broker_id` (fenced, its registration removed).
    pub(crate) async fn unregister_broker(&self, broker_id: i32) -> Result<(), ApiError> {
        match &self.store {
            Store::Registry => Err(registry::unregister_broker()),
            Store::Quorum(link) => quorum::unregister_broker(link, broker_id).await,
        }
    }

    /// Who holds partition `partition` of `topic`: the quorum's view of a
    /// replicated topic, this broker alone otherwise. `None` when the
    /// partition does not exist.
    pub(crate) fn partition_replicas(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<PartitionReplicas> {
        let local = self.parts.registry.get(topic)?;
        match &self.store {
            Store::Quorum(link) if local.is_replicated() => {
                let metadata = link.metadata();
                let p = metadata.partition(topic, partition)?;
                Some(PartitionReplicas {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                })
            }
            _ => {
                let hosted = local.partition(partition)?;
                let node = self.parts.config.node_id;
                Some(PartitionReplicas {
                    leader: node,
                    leader_epoch: hosted.leader_epoch(),
                    replicas: vec![node],
                    isr: vec![node],
                })
            }
        }
    }

    /// The quorum, when it holds `topic`: a broker of a cluster may still
    /// host a topic made before it joined one, which only the registry
    /// knows.
    fn quorum_of(&self, topic: &str) -> Option<&ClusterLink> {
        match &self.store {
            Store::Quorum(link) if link.metadata().topics.contains_key(topic) => Some(link),
            _ => None,
        }
    }
}

/// Topic config overrides from `(name, value)` pairs; a bad one is
/// INVALID_CONFIG.
fn parse_configs(pairs: &[(String, String)]) -> Result<TopicConfigs, ApiError> {
    TopicConfigs::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ApiError::new(ResponseError::InvalidConfig, e))
}
