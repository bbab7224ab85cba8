//! Commands: the entries of the metadata log, their outcomes and the typed
//! errors with which the state machine rejects them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{
    Acl, BrokerId, BrokerListener, InternalSecret, PartitionState, QuotaEntity, QuotaValue,
    ScramCredential, ScramMechanism,
};

/// One change to the cluster metadata. Proposed through
/// [`Controller::propose`](crate::Controller::propose), committed by the Raft
/// quorum, then validated and applied by every controller's state machine in
/// log order. A command that fails validation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Register a broker (or register it again after a restart). The broker
    /// starts unfenced and gets a new epoch: the offset of this entry.
    RegisterBroker {
        /// Broker id (non-negative).
        broker_id: BrokerId,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: u16,
        /// Rack, if any.
        rack: Option<String>,
    },
    /// Decommission a broker: fence it (moving its leaderships and ISR
    /// memberships away) and remove its registration. Partitions that still
    /// list it as a replica keep it there as an offline replica until they
    /// are reassigned.
    UnregisterBroker {
        /// Broker id.
        broker_id: BrokerId,
    },
    /// Fence a broker (the active controller does this when its session
    /// expires).
    FenceBroker {
        /// Broker id.
        broker_id: BrokerId,
        /// Epoch of the registration being fenced.
        broker_epoch: i64,
    },
    /// Unfence a fenced broker (on a fresh heartbeat).
    UnfenceBroker {
        /// Broker id.
        broker_id: BrokerId,
        /// Epoch of the registration being unfenced.
        broker_epoch: i64,
    },
    /// Create a topic, placing replicas round-robin over unfenced brokers.
    CreateTopic {
        /// Topic name (Kafka rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.`/`..`).
        name: String,
        /// Number of partitions (at least 1).
        partitions: i32,
        /// Replicas per partition (at least 1, at most the unfenced brokers).
        replication_factor: i16,
        /// Initial topic configs.
        configs: BTreeMap<String, String>,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Topic name.
        name: String,
    },
    /// Set (`Some`) or remove (`None`) topic configs.
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// Changes by key.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Grow a topic to `total` partitions.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New total partition count, greater than the current one.
        total: i32,
    },
    /// A partition leader changes the ISR (Kafka's AlterPartition).
    AlterPartition {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
        /// The broker proposing the change: must be the current leader.
        leader: BrokerId,
        /// Leader epoch the leader knows: must be current.
        leader_epoch: i32,
        /// Partition epoch the leader knows: must be current.
        partition_epoch: i32,
        /// The new ISR: a subset of the replicas, containing the leader, of
        /// unfenced brokers only.
        isr: Vec<BrokerId>,
    },
    /// Elect a partition leader.
    ElectLeader {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
        /// Which election.
        election: ElectionType,
    },
    /// Replace a partition's replica list. Replicas that were in sync stay
    /// in sync; at least one of them must be in the new list. New replicas
    /// join the ISR through `AlterPartition` once they caught up.
    ReassignPartition {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
        /// The new replicas, registered brokers, no duplicates.
        replicas: Vec<BrokerId>,
    },
    /// Create or replace a pipeline's manifest (keeps its paused flag).
    UpsertPipeline {
        /// Pipeline name.
        name: String,
        /// Manifest text.
        manifest: String,
    },
    /// Delete a pipeline.
    DeletePipeline {
        /// Pipeline name.
        name: String,
    },
    /// Pause or resume a pipeline.
    SetPipelinePaused {
        /// Pipeline name.
        name: String,
        /// New paused flag.
        paused: bool,
    },
    /// Set the internal principal's password, once: applied only while the
    /// metadata has none, so the first of several proposals wins and the
    /// secret never changes afterwards. The proposer draws it (the state
    /// machine stays deterministic).
    SetInternalSecret {
        /// The password; not empty.
        secret: InternalSecret,
    },
    /// Add ACL bindings (Kafka's CreateAcls); one already there is kept.
    CreateAcls {
        /// The bindings.
        acls: Vec<Acl>,
    },
    /// Remove ACL bindings (Kafka's DeleteAcls, its filters resolved by the
    /// proposing broker); one not there is ignored.
    DeleteAcls {
        /// The bindings.
        acls: Vec<Acl>,
    },
    /// Create or replace `user`'s credential for `mechanism`
    /// (AlterUserScramCredentials' upsertion). The proposer salts and
    /// derives it; the password never reaches the log.
    SetScramCredential {
        /// User name (not empty).
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// Salt, iterations and keys.
        credential: ScramCredential,
    },
    /// Remove `user`'s credential for `mechanism`; a user without any
    /// credential is gone.
    DeleteScramCredential {
        /// User name.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
    /// [`Command::RegisterBroker`] with every listener of the broker
    /// (Kafka's BrokerRegistration endpoints). `host` and `port` are its
    /// inter-broker listener's, what replication and the controller's
    /// probes use. Last of the commands, so that logs written before it
    /// existed still decode.
    RegisterBrokerListeners {
        /// Broker id (non-negative).
        broker_id: BrokerId,
        /// The inter-broker listener's advertised host.
        host: String,
        /// The inter-broker listener's advertised port.
        port: u16,
        /// Rack, if any.
        rack: Option<String>,
        /// Every listener: names unique, each with a host and a port, at
        /// most [`MAX_BROKER_LISTENERS`](crate::MAX_BROKER_LISTENERS).
        listeners: Vec<BrokerListener>,
    },
    /// Change one client-quota entity's values (KIP-546's
    /// AlterClientQuotas): `Some` sets a key, `None` removes it; an entity
    /// left without values is gone. Keys and values as
    /// [`check_client_quota`](crate::check_client_quota) accepts. After
    /// `RegisterBrokerListeners`, so that older logs still decode.
    AlterClientQuotas {
        /// Whom the quotas apply to (names at least one type).
        entity: QuotaEntity,
        /// Changes by key.
        changes: BTreeMap<String, Option<QuotaValue>>,
    },
    /// Change one client address's connection quotas (KIP-612's `ip`
    /// entity, through AlterClientQuotas): as `AlterClientQuotas`, with
    /// [`check_ip_quota`](crate::check_ip_quota)'s keys and values. Last,
    /// so that older logs still decode.
    AlterIpQuotas {
        /// The address, as text (`None`: the default address).
        ip: Option<String>,
        /// Changes by key.
        changes: BTreeMap<String, Option<QuotaValue>>,
    },
    /// Change dynamic broker configs of one resource: `""` (the cluster
    /// default) or a broker id. `Some` sets a key, `None` removes it; with
    /// `replace`, keys not named are removed too (AlterConfigs). The
    /// proposing broker checked keys and values. After
    /// `AlterIpQuotas`, so that older logs still decode.
    AlterBrokerConfigs {
        /// `""` or a broker id in decimal.
        resource: String,
        /// Changes by key.
        changes: BTreeMap<String, Option<String>>,
        /// Whether the changes replace the resource's whole set.
        replace: bool,
    },
    /// Change one group's dynamic configs (KIP-848's GROUP config
    /// resource): `Some` sets a key, `None` removes it; with `replace`,
    /// keys not named are removed too (AlterConfigs). Keys are
    /// [`GROUP_CONFIG_KEYS`](crate::GROUP_CONFIG_KEYS); the proposing
    /// broker checked the values against its limits. After
    /// `AlterBrokerConfigs`, so that older logs still decode.
    AlterGroupConfigs {
        /// The group id (not empty).
        group: String,
        /// Changes by key.
        changes: BTreeMap<String, Option<String>>,
        /// Whether the changes replace the group's whole set.
        replace: bool,
    },
}

/// How [`Command::ElectLeader`] picks a leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    /// The first replica, if it is unfenced and in the ISR.
    Preferred,
    /// The first unfenced ISR member in replica order, if the partition has
    /// no usable leader.
    Clean,
    /// Like `Clean`, but when no ISR member is available, the first unfenced
    /// replica becomes leader with itself as the only ISR member; only when
    /// the topic has `unclean.leader.election.enable=true`.
    Unclean,
}

/// What an accepted command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The command was applied; nothing else to report.
    Done,
    /// The broker is registered with this epoch.
    BrokerRegistered {
        /// The broker's new epoch.
        broker_epoch: i64,
    },
    /// The topic was created.
    TopicCreated {
        /// Its id.
        topic_id: Uuid,
        /// Its partitions.
        partitions: Vec<PartitionState>,
    },
    /// The partition's new state.
    Partition(PartitionState),
}

/// The state machine's result for one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedResult {
    /// Metadata offset (Raft log index) at which the entry was applied.
    pub offset: u64,
    /// Outcome, or why the command was rejected.
    pub result: Result<CommandOutcome, CommandError>,
}

/// Why the state machine rejected a command. Rejection is deterministic: every
/// controller rejects the same command at the same offset with the same error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    /// No broker with this id is registered.
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    /// Broker ids are non-negative.
    #[error("invalid broker id {0}: broker ids are non-negative")]
    InvalidBrokerId(BrokerId),
    /// Host empty or port 0.
    #[error("invalid broker address {0}")]
    InvalidBrokerAddress(String),
    /// The request carries an epoch that is not the broker's current one.
    #[error("stale broker epoch {got} for broker {broker_id} (current {current})")]
    StaleBrokerEpoch {
        /// Broker id.
        broker_id: BrokerId,
        /// The epoch in the request.
        got: i64,
        /// The registered epoch.
        current: i64,
    },
    /// Fencing a fenced broker or unfencing an unfenced one.
    #[error("broker {broker_id} is already {}", if *.fenced { "fenced" } else { "unfenced" })]
    BrokerAlreadyInState {
        /// Broker id.
        broker_id: BrokerId,
        /// Its current fenced flag.
        fenced: bool,
    },
    /// A topic with this name exists.
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    /// No topic with this name.
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The topic name breaks Kafka's naming rules.
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Partition count out of range.
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    /// Replication factor is below 1 or above the number of unfenced brokers.
    #[error("replication factor {requested} is invalid with {available} unfenced brokers")]
    InvalidReplicationFactor {
        /// Requested replication factor.
        requested: i32,
        /// Unfenced brokers.
        available: usize,
    },
    /// A config key or value is not acceptable.
    #[error("invalid config {key}: {reason}")]
    InvalidConfig {
        /// Config key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// No such partition in the topic.
    #[error("partition {partition} of topic '{topic}' does not exist")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
    },
    /// AlterPartition from a broker that is not the partition's leader.
    #[error("broker {got} is not the leader (leader is {leader})")]
    NotLeaderForPartition {
        /// Current leader.
        leader: BrokerId,
        /// The broker in the request.
        got: BrokerId,
    },
    /// AlterPartition with a leader epoch that is not the current one
    /// (Kafka's FENCED_LEADER_EPOCH).
    #[error("fenced leader epoch {got} (current {current})")]
    FencedLeaderEpoch {
        /// Current leader epoch.
        current: i32,
        /// The epoch in the request.
        got: i32,
    },
    /// AlterPartition with a partition epoch that is not the current one
    /// (Kafka's INVALID_UPDATE_VERSION).
    #[error("invalid partition epoch {got} (current {current})")]
    InvalidUpdateVersion {
        /// Current partition epoch.
        current: i32,
        /// The epoch in the request.
        got: i32,
    },
    /// A proposed ISR breaks the ISR rules.
    #[error("invalid ISR: {0}")]
    InvalidIsr(String),
    /// A replica list breaks the assignment rules.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// The election would not change anything (Kafka's ELECTION_NOT_NEEDED).
    #[error("leader election not needed: leader {0} is already suitable")]
    ElectionNotNeeded(BrokerId),
    /// The preferred replica is fenced or out of sync.
    #[error("preferred leader {0} is not available (fenced or not in the ISR)")]
    PreferredLeaderNotAvailable(BrokerId),
    /// No ISR member is available to lead (Kafka's ELIGIBLE_LEADERS_NOT_AVAILABLE).
    #[error("no eligible leader available")]
    EligibleLeadersNotAvailable,
    /// Unclean election asked for on a topic that does not allow it.
    #[error("unclean leader election is disabled for topic '{0}'")]
    UncleanElectionDisabled(String),
    /// No pipeline with this name.
    #[error("pipeline '{0}' does not exist")]
    UnknownPipeline(String),
    /// The pipeline name is empty or has characters outside `[a-zA-Z0-9._-]`.
    #[error("invalid pipeline name '{0}'")]
    InvalidPipelineName(String),
    /// An empty internal secret.
    #[error("the internal secret may not be empty")]
    EmptyInternalSecret,
    /// An ACL binding with an empty resource name, principal or host.
    #[error("invalid ACL binding: {0}")]
    InvalidAcl(String),
    /// No such user, or no credential of this mechanism for it.
    #[error("user '{user}' has no {} credential", .mechanism.name())]
    UnknownScramCredential {
        /// User name.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
    /// A SCRAM credential (or user name) that cannot be kept.
    #[error("unacceptable SCRAM credential: {0}")]
    InvalidScramCredential(String),
    /// A client-quota entity, key or value is not acceptable.
    #[error("invalid client quota: {0}")]
    InvalidClientQuota(String),
}
