//! The replicated cluster metadata: what every controller holds after applying
//! the committed metadata log, and what brokers follow.
//!
//! Everything here is deterministic: a `BTreeMap` everywhere a map is needed,
//! no clocks, no randomness. Broker liveness timing (the last heartbeat) is
//! deliberately absent: it is the active controller's in-memory business, and
//! only its consequence, the `fenced` flag, is replicated.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A broker id, as in Kafka (`broker.id`, non-negative).
pub type BrokerId = i32;

/// The leader value of a partition that has no leader.
pub const NO_LEADER: BrokerId = -1;

/// Topic config key that allows electing a leader from outside the ISR.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// The whole replicated metadata state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    /// Raft log index of the last entry applied to this state (0 before any).
    /// It advances for every applied entry, including rejected commands and
    /// Raft membership entries, so it only ever grows.
    pub offset: u64,
    /// Registered brokers by id.
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    /// Topics by name.
    pub topics: BTreeMap<String, Topic>,
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Rotating start for replica placement; advances with every topic or
    /// partition creation so that leaders spread over the brokers.
    pub placement_cursor: u64,
    /// The password of the platform's own Kafka principal, with which a
    /// broker's pipeline runtime writes internal topics led by other
    /// brokers. Drawn once by the active controller
    /// ([`Command::SetInternalSecret`](crate::Command::SetInternalSecret));
    /// `None` until then. Last, so that snapshots written before it existed
    /// still decode (see `metadata_store`).
    #[serde(default)]
    pub internal_secret: Option<InternalSecret>,
    /// The ACL bindings every broker's authorizer decides with
    /// ([`Command::CreateAcls`](crate::Command::CreateAcls)). After the
    /// secret, for the same reason.
    #[serde(default)]
    pub acls: BTreeSet<Acl>,
    /// SCRAM credentials by user name, then mechanism (KIP-554's
    /// AlterUserScramCredentials): salted keys, never a password. Last, for
    /// the same reason as `internal_secret`.
    #[serde(default)]
    pub scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// Every listener of each broker, as it registered them
    /// ([`Command::RegisterBrokerListeners`](crate::Command::RegisterBrokerListeners)),
    /// Kafka's BrokerRegistration endpoints: a client is told about the
    /// other brokers at the listener of the same name as the one it used.
    /// A broker registered with the older `RegisterBroker` has no entry
    /// (only its [`BrokerRegistration`] address). Last, for the same reason
    /// as `internal_secret`.
    #[serde(default)]
    pub broker_listeners: BTreeMap<BrokerId, Vec<BrokerListener>>,
    /// Client quotas (KIP-546's AlterClientQuotas): each entity's values
    /// by key ([`Command::AlterClientQuotas`](crate::Command::AlterClientQuotas)).
    /// Last, for the same reason as `internal_secret`.
    #[serde(default)]
    pub client_quotas: BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
    /// Connection quotas by client address (KIP-612's `ip` entities, which
    /// name nothing else; `None` is the default address): each address's
    /// values by key ([`Command::AlterIpQuotas`](crate::Command::AlterIpQuotas)),
    /// as [`check_ip_quota`] accepts them. Last, for the same reason as
    /// `internal_secret`.
    #[serde(default)]
    pub ip_quotas: BTreeMap<Option<String>, BTreeMap<String, QuotaValue>>,
    /// Dynamic broker configs (Kafka's IncrementalAlterConfigs on BROKER
    /// resources): by resource name (`""` the cluster-wide default, else a
    /// broker id), each key's value, Kafka's broker names
    /// ([`Command::AlterBrokerConfigs`](crate::Command::AlterBrokerConfigs));
    /// which keys may be set live is the broker's to check. Last, for the
    /// same reason as `internal_secret`.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic group configs (KIP-848's GROUP config resource): by group
    /// id, each key's value
    /// ([`Command::AlterGroupConfigs`](crate::Command::AlterGroupConfigs)).
    /// Kept when the group is deleted, as Kafka keeps them. Last, for the
    /// same reason as `internal_secret`.
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
}

/// The keys a group's dynamic configs may set (Kafka 4.0's `GroupConfig`
/// for consumer groups).
pub const GROUP_CONFIG_KEYS: &[&str] = &[
    "consumer.heartbeat.interval.ms",
    "consumer.session.timeout.ms",
];

/// Whom a client quota applies to (KIP-546's entity): a user, a client id,
/// or both. In each part `None` means the entity does not name that type,
/// `Some(None)` the default (every user, or every client id, without a
/// quota of its own), `Some(Some(name))` that one.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    /// The user part (`user` entity type): a principal's name.
    pub user: Option<Option<String>>,
    /// The client-id part (`client-id` entity type).
    pub client_id: Option<Option<String>>,
}

/// A client quota's value: Kafka's double, compared by its bits so that
/// the metadata stays `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for QuotaValue {}

/// The keys a user or client-id quota may set (Kafka's `QuotaConfig`), and
/// whether each is a whole number (Kafka's LONG type).
pub const CLIENT_QUOTA_KEYS: &[(&str, bool)] = &[
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];

/// Why `value` cannot be `key`'s quota, if it cannot: Kafka's checks
/// (a known key, a positive value, a whole number for a byte rate), with
/// its messages.
pub fn check_client_quota(key: &str, value: f64) -> Result<(), String> {
    let Some(&(_, whole)) = CLIENT_QUOTA_KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    if whole && ((value % 1.0).abs() > 1e-6 || value > i64::MAX as f64) {
        return Err(format!("{key} cannot be a fractional value."));
    }
    Ok(())
}

/// The one key an `ip` quota may set (Kafka's `connection_creation_rate`):
/// new connections per second from that address.
pub const IP_QUOTA_KEY: &str = "connection_creation_rate";

/// Why `ip` and `value` cannot be an `ip` quota for `key`, if they cannot:
/// Kafka's checks (an IP address, the one key, a positive whole number
/// that fits Kafka's INT), with its messages. `None` is the default
/// address.
pub fn check_ip_quota(ip: Option<&str>, key: &str, value: f64) -> Result<(), String> {
    if let Some(ip) = ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(format!("{ip} is not a valid IP or resolvable host."));
    }
    if key != IP_QUOTA_KEY {
        return Err(format!("Invalid configuration key {key}"));
    }
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("Quota {key} must be greater than 0"));
    }
    if (value % 1.0).abs() > 1e-6 || value > f64::from(i32::MAX) {
        return Err(format!("{key} must be an integer."));
    }
    Ok(())
}

/// The most listeners one broker may register.
pub const MAX_BROKER_LISTENERS: usize = 64;

/// One listener of a registered broker: Kafka's endpoint (name, host,
/// port, security protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerListener {
    /// The listener's name, upper-case (`PLAINTEXT`, `SASL_SSL`, `INTERNAL`).
    pub name: String,
    /// The host it advertises.
    pub host: String,
    /// The port it advertises.
    pub port: u16,
    /// Its security protocol's Kafka name (`SASL_SSL`).
    pub security_protocol: String,
}

/// The fewest PBKDF2 iterations a SCRAM credential may have (RFC 7677's
/// minimum, Kafka's too).
pub const SCRAM_MIN_ITERATIONS: u32 = 4096;

/// The most PBKDF2 iterations a SCRAM credential may have (Kafka's limit:
/// each login makes the client, and PLAIN the broker, run them all).
pub const SCRAM_MAX_ITERATIONS: u32 = 16384;

/// A SCRAM mechanism (RFC 5802 with RFC 7677's and Kafka's hashes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramMechanism {
    /// Both, in Kafka's order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism with SASL name `name`.
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        ScramMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's number for it in the SCRAM credential APIs (1, 2).
    pub fn kafka_type(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism Kafka numbers `kafka_type`.
    pub fn from_kafka_type(kafka_type: i8) -> Option<ScramMechanism> {
        ScramMechanism::ALL
            .into_iter()
            .find(|m| m.kafka_type() == kafka_type)
    }

    /// The length of its hash, and so of its keys, in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }
}

/// One user's credential for one SCRAM mechanism (RFC 5802, section 3):
/// what a server keeps instead of the password. `Debug` shows only the
/// iterations.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt of the salted password.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations, within [`SCRAM_MIN_ITERATIONS`] and
    /// [`SCRAM_MAX_ITERATIONS`].
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// Why the credential cannot be kept for `mechanism`, if it cannot.
    pub fn check(&self, mechanism: ScramMechanism) -> Result<(), String> {
        if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&self.iterations) {
            return Err(format!(
                "iterations must be between {SCRAM_MIN_ITERATIONS} and {SCRAM_MAX_ITERATIONS}, not {}",
                self.iterations
            ));
        }
        if self.salt.is_empty() || self.salt.len() > 1024 {
            return Err(format!(
                "the salt must be 1 to 1024 bytes, not {}",
                self.salt.len()
            ));
        }
        let len = mechanism.key_len();
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(format!("{} keys are {len} bytes long", mechanism.name()));
        }
        Ok(())
    }
}

/// One ACL binding as Kafka's CreateAcls carries it: a resource pattern
/// and an entry, with Kafka's codes (resource type 2 TOPIC, 3 GROUP, 4
/// CLUSTER, 5 TRANSACTIONAL_ID; pattern type 3 LITERAL, 4 PREFIXED;
/// operation 2 ALL to 12 IDEMPOTENT_WRITE; permission 2 DENY, 3 ALLOW). The
/// controller stores bindings as given; brokers check and interpret them
/// (`fjord-broker`'s authorizer).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Acl {
    /// Resource type code.
    pub resource_type: i8,
    /// Resource name (`*` for every resource of a literal pattern).
    pub resource_name: String,
    /// Pattern type code.
    pub pattern_type: i8,
    /// `User:name` or `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    /// Operation code.
    pub operation: i8,
    /// Permission type code.
    pub permission_type: i8,
}

/// A secret that never shows in `Debug` output (metadata and commands are
/// logged).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InternalSecret(String);

impl InternalSecret {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        InternalSecret(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InternalSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalSecret(..)")
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id.
    pub id: BrokerId,
    /// Host that clients and other brokers connect to.
    pub host: String,
    /// Port that clients and other brokers connect to.
    pub port: u16,
    /// Rack, if the broker was given one.
    pub rack: Option<String>,
    /// Broker epoch: the metadata offset of the registration. A broker that
    /// registers again gets a new, higher epoch; requests carrying an older
    /// epoch are stale.
    pub epoch: i64,
    /// A fenced broker leads nothing, is in no ISR (unless it was the last
    /// member) and gets no new replicas.
    pub fenced: bool,
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Topic id, unique within the cluster and never reused, also after the
    /// topic is deleted and created again.
    pub id: Uuid,
    /// Topic configs (Kafka names, e.g. `retention.ms`), only those set.
    pub configs: BTreeMap<String, String>,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<PartitionState>,
}

impl Topic {
    /// Whether the topic allows electing a leader from outside the ISR.
    pub fn unclean_election_enabled(&self) -> bool {
        self.configs
            .get(UNCLEAN_LEADER_ELECTION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Replication state of one partition (Kafka's PartitionRecord).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Assigned replicas; the first is the preferred leader.
    pub replicas: Vec<BrokerId>,
    /// Current leader, or [`NO_LEADER`].
    pub leader: BrokerId,
    /// Incremented on every leader change.
    pub leader_epoch: i32,
    /// In-sync replicas: always a non-empty subset of `replicas` that
    /// contains the leader when there is one.
    pub isr: Vec<BrokerId>,
    /// Incremented on every change of this partition's state.
    pub partition_epoch: i32,
}

impl PartitionState {
    /// A new partition led by its first replica with every replica in sync.
    pub fn new(replicas: Vec<BrokerId>) -> Self {
        PartitionState {
            leader: replicas.first().copied().unwrap_or(NO_LEADER),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }
}

/// A deployed pipeline: its manifest is opaque to the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Pipeline name.
    pub name: String,
    /// The manifest as deployed (YAML text).
    pub manifest: String,
    /// A paused pipeline keeps its manifest but runs no tasks.
    pub paused: bool,
}

impl ClusterMetadata {
    /// The broker registration, if registered.
    pub fn broker(&self, id: BrokerId) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Ids of registered, unfenced brokers, ascending.
    pub fn unfenced_brokers(&self) -> Vec<BrokerId> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    /// Where broker `id` is reached on the listener `name` (case-insensitive):
    /// the endpoint it registered under that name; for a broker registered
    /// without its listeners (an older broker), its one registered address;
    /// `None` when it is not registered or has no such listener.
    pub fn broker_endpoint(&self, id: BrokerId, name: &str) -> Option<(&str, u16)> {
        let broker = self.brokers.get(&id)?;
        match self.broker_listeners.get(&id) {
            None => Some((&broker.host, broker.port)),
            Some(listeners) => listeners
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(name))
                .map(|l| (l.host.as_str(), l.port)),
        }
    }

    /// Whether `id` is registered and not fenced.
    pub fn is_unfenced(&self, id: BrokerId) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    /// The state of one partition, if it exists.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }
}
