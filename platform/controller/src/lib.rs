//! placeholder doc
pub mod commands;
mod durable_file;
pub mod log_store;
pub mod metadata_store;
pub mod model;
mod placement;
pub mod raft_types;
mod state_machine;
pub mod voters;

pub use commands::{AppliedResult, Command, CommandError, CommandOutcome, ElectionType};
pub use model::{
    BrokerId, BrokerRegistration, ClusterMetadata, NO_LEADER, PartitionState, Pipeline, Topic,
};
pub use voters::{NodeId, Voters, VotersParseError};
