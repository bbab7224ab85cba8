//! placeholder doc
pub mod commands;
mod controller;
mod durable_file;
mod liveness;
pub mod log_store;
pub mod metadata_store;
pub mod model;
mod network;
mod placement;
pub mod raft_types;
mod state_machine;
pub mod voters;

pub use commands::{AppliedResult, Command, CommandError, CommandOutcome, ElectionType};
pub use controller::{Controller, ControllerConfig, ControllerError};
pub use model::{
    BrokerId, BrokerRegistration, ClusterMetadata, NO_LEADER, PartitionState, Pipeline, Topic,
};
pub use voters::{NodeId, Voters, VotersParseError};
