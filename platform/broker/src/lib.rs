//! `fjord-broker` is Fjord's Kafka protocol server: one node, alone or as
//! a broker of a cluster.
//!
//! It is for: accepting TCP connections, framing and decoding Kafka requests
//! (through the `kafka-protocol` crate), answering them in order, and owning
//! the broker-side state behind them — the [`TopicRegistry`] of topics and
//! their configs (persisted in the data directory), and each
//! [`Partition`] with its [`fjord_log::Log`], role, leader epoch, high
//! watermark and the notifiers that wake long-polling fetches. Consumer
//! groups (classic protocol) are coordinated here, in `group`; idempotent
//! producers get ids and per-partition sequence checks (`producer_state`).
//! Every metadata change (topics, partitions, configs, elections) goes
//! through one frontend, `metadata`: the local registry on a single node,
//! the controller quorum in a cluster.
//! In a cluster ([`Broker::start_in_cluster`] with a [`ClusterLink`]) it
//! follows the controller quorum's metadata (`quorum_link`) and replicates
//! its partitions with the other brokers (`replication`, Kafka's ISR
//! protocol; docs/replication.md). Clients may not write internal topics
//! ([`is_internal_topic`]); the platform writes them in process, or in a
//! cluster as its own principal over SASL/PLAIN (`auth`, `sasl`). Users
//! log in with SASL PLAIN or SCRAM ([`scram`]) against SCRAM credentials
//! kept by the metadata frontend and managed with KIP-554's APIs (`users`),
//! or with OAUTHBEARER tokens checked against a JWKS ([`oauth`]).
//!
//! It is not for: storing bytes (that is `fjord-log`), deciding who leads
//! (that is the controller quorum, `fjord-controller`), command-line parsing
//! or process setup (the `fjord` binary), or transactional producers (their
//! APIs are not advertised).
//!
//! Start a broker with [`Broker::start`] (returns once the listener is
//! bound; [`Broker::local_addr`] tells the port when binding port 0) and stop
//! it with [`Broker::shutdown`], or run one until a future completes with
//! [`run`].
//!
//! ```no_run
//! # async fn example() -> Result<(), fjord_broker::BrokerError> {
//! use fjord_broker::{Broker, BrokerConfig};
//! // Port 0 on loopback, data in the given directory.
//! let broker = Broker::start(BrokerConfig::ephemeral("/tmp/fjord-example")).await?;
//! let bootstrap = broker.local_addr().to_string();
//! # let _ = bootstrap;
//! broker.shutdown().await // flushes and checkpoints every log
//! # }
//! ```

mod accept;
mod admin;
mod apis;
mod auth;
mod authorizer;
mod broker_state;
mod client_session;
mod clock;
mod config;
mod connection;
mod connection_limits;
mod data_dir_lock;
mod disk_space;
mod dynamic_config;
mod error;
mod frame;
mod group;
mod instruments;
mod jaas;
mod legacy_describe_configs;
mod legacy_list_offsets;
mod legacy_offset_commit;
mod legacy_wire;
mod listeners;
mod local;
mod log_cleaner;
mod log_levels;
mod log_limit;
mod login;
mod metadata;
pub mod oauth;
mod partition;
mod producer_state;
mod quorum_link;
mod quotas;
mod replica_set;
mod replication;
mod request;
mod request_memory;
mod sasl;
pub mod scram;
mod server;
mod shutdown;
mod tls;
mod topic_config;
mod topic_registry;
mod txn;
mod users;
mod versions;
pub mod yaml;

pub use admin::{
    BrokerInfo, ClusterInfo, ConfigEntry, GroupDescription, GroupMember, GroupOffset,
    PartitionReplicas, TopicPartitions,
};
pub use auth::{INTERNAL_PRINCIPAL, Principal, is_internal_topic};
pub use authorizer::{AUTHORIZER_NAMES, Access, Operation, ResourceType};
pub use config::{BrokerConfig, DurabilityConfig, Password};
pub use disk_space::{DiskStatus, free_bytes};
pub use error::{BrokerError, GroupError, LocalError, PartitionError};
pub use frame::{FrameError, frame_length};
pub use local::LocalBroker;
pub use log_levels::{LogControl, install_log_control};
pub use login::{LoginError, PasswordLogins};
pub use partition::{Partition, PartitionTraffic};
pub use producer_state::SequenceError;
pub use quorum_link::ClusterLink;
pub use request::{
    DEFAULT_MAX_ELEMENTS, DecodeError, DecodedRequest, Frame, decode_request,
    decode_request_limited,
};
pub use server::{Broker, run};
pub use tls::controller::ControllerLinks;
pub use tls::{Accepted, ServerTls, admin_tls};
pub use topic_config::TopicConfigs;
pub use topic_registry::{Topic, TopicRegistry, validate_topic_name};
pub use txn::writer::TransactionalWriter;
pub use versions::{SUPPORTED_APIS, supported_range};
