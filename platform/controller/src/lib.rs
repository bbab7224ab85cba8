//! placeholder doc
pub mod commands;
pub mod model;
mod placement;
mod state_machine;
pub mod voters;

pub use commands::{AppliedResult, Command, CommandError, CommandOutcome, ElectionType};
pub use model::{
    BrokerId, BrokerRegistration, ClusterMetadata, NO_LEADER, PartitionState, Pipeline, Topic,
};
pub use voters::{NodeId, Voters, VotersParseError};
