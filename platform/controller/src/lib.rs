//! Fjord's cluster metadata quorum.
//!
//! A Fjord cluster keeps its own metadata, with no ZooKeeper: a small Raft
//! group of controller nodes (built on the `openraft` crate) replicates a
//! metadata log, and every committed entry, a [`Command`], is applied in log
//! order to a deterministic state machine, [`ClusterMetadata`]: registered
//! brokers, topics with their partitions (replicas, leader, leader epoch, ISR,
//! partition epoch), pipeline manifests, the secret of the platform's
//! own Kafka principal (drawn once by the active controller), the ACL
//! bindings brokers authorize with and the users' SCRAM credentials (salted
//! keys, never passwords).
//!
//! **What it is for**
//! - [`Controller::start`] runs one controller node: an on-disk Raft log and
//!   snapshots in a data directory, TCP to the other voters listed in
//!   [`Voters`] (`1@host:port,2@host:port,3@host:port`), or TLS through the
//!   [`LinkSecurity`] the broker gives it (`link`).
//! - [`Controller::propose`] writes a command through whichever node it is
//!   called on (followers forward to the leader) and returns the applied
//!   result, or the typed [`CommandError`] with which the state machine
//!   rejected it.
//! - [`Controller::metadata`] is a watch channel of the applied state: a
//!   broker follows it to learn what it leads and follows.
//! - [`Controller::heartbeat`] keeps a broker's session alive on the active
//!   controller, which fences brokers whose session expired (moving partition
//!   leadership within the ISR) and unfences them on their next heartbeat.
//! - [`ControllerClient`] offers the same calls to a broker that is not a
//!   voter: it proposes and heartbeats through any voter and follows the
//!   metadata with long polls. [`QuorumHandle`] is either one, so the broker
//!   does not care which it has.
//!
//! **What it is not for**
//! - It does not serve Kafka clients, store records or replicate partition
//!   data: that is the broker's job (`fjord-broker`, `fjord-log`); the
//!   controller only decides who leads and who is in sync.
//! - It does not change its own voter set at run time: the voters are a
//!   static list, and the lowest id initializes a new cluster once. Brokers
//!   beyond the voters join as clients, not as Raft members (no observers
//!   or learners).
//! - It is not a general key-value store: the state is small, kept in memory
//!   whole, and snapshotted whole.
//!
//! See `docs/cluster.md` for the design, the storage format and the
//! fencing rules.

mod client;
pub mod commands;
mod controller;
mod durable_file;
mod handle;
pub mod link;
mod liveness;
pub mod log_store;
pub mod metadata_store;
pub mod model;
mod network;
mod placement;
pub mod raft_types;
mod secret;
mod state_machine;
pub mod voters;

pub use client::{ClientConfig, ControllerClient};
pub use commands::{AppliedResult, Command, CommandError, CommandOutcome, ElectionType};
pub use controller::{Controller, ControllerConfig, ControllerError};
pub use handle::QuorumHandle;
pub use link::{LinkSecurity, LinkStream};
pub use model::{
    Acl, BrokerId, BrokerListener, BrokerRegistration, CLIENT_QUOTA_KEYS, ClusterMetadata,
    GROUP_CONFIG_KEYS, IP_QUOTA_KEY, InternalSecret, MAX_BROKER_LISTENERS, NO_LEADER,
    PartitionState, Pipeline, QuotaEntity, QuotaValue, SCRAM_MAX_ITERATIONS, SCRAM_MIN_ITERATIONS,
    ScramCredential, ScramMechanism, Topic, check_client_quota, check_ip_quota,
};
pub use voters::{NodeId, Voters, VotersParseError};
