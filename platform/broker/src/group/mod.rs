//! Consumer groups — the classic protocol (`classic`), and KIP-848's
//! (`consumer`, `reconcile`, `assignor`): the coordinator's state machines
//! and the committed offsets it keeps. On a single node this broker is the
//! coordinator of every group; in a cluster, of the groups whose offsets
//! partition it leads (`ownership`).
//!
//! The request handlers and the in-process API only call operations:
//! commits (`commits`), deletes (`deletes`), owned views of the groups
//! (`views`) and the protocol calls of `classic` and `consumer`. The lock
//! over all groups is the coordinator's (`coordinator`) alone. A group's dynamic configs
//! (`configs`, KIP-848's GROUP resource) override the broker's
//! `group.consumer.*` defaults for its members.

pub(crate) mod assignor;
mod classic;
mod commits;
pub(crate) mod configs;
pub(crate) mod consumer;
pub(crate) mod coordinator;
mod deletes;
pub(crate) mod metadata_record;
mod migration;
pub(crate) mod offsets_topic;
pub(crate) mod ownership;
mod reconcile;
pub(crate) mod state;
pub(crate) mod txn_offsets;
mod views;

pub(crate) use classic::JoinRequest;
pub(crate) use commits::Committer;
pub(crate) use coordinator::{GroupCoordinator, GroupSettings, Pending};
pub(crate) use migration::MigrationPolicy;
pub(crate) use state::{CommittedOffset, GroupState};

#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod timer_tests;
