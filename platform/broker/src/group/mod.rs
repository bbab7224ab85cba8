//! Consumer groups (the classic protocol): the coordinator's state machine
//! and the committed offsets it keeps. On a single node this broker is the
//! coordinator of every group; in a cluster, of the groups whose offsets
//! partition it leads (`ownership`).

mod commits;
pub(crate) mod coordinator;
pub(crate) mod metadata_record;
pub(crate) mod offsets_topic;
pub(crate) mod ownership;
pub(crate) mod state;

pub(crate) use coordinator::{GroupCoordinator, GroupSettings, JoinRequest, Pending};
pub(crate) use state::{CommittedOffset, GroupState};

#[cfg(test)]
mod timer_tests;
