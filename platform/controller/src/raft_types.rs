//! The openraft type configuration of the controller quorum.

use std::io::Cursor;

use crate::commands::{AppliedResult, Command};

openraft::declare_raft_types!(
    /// Raft types: commands in, applied results out, `u64` node ids,
    /// `BasicNode` (an address) per node, snapshots as in-memory bytes.
    pub TypeConfig:
        D = Command,
        R = AppliedResult,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A Raft log entry of the controller quorum.
pub type Entry = openraft::Entry<TypeConfig>;
/// The openraft handle.
pub type Raft = openraft::Raft<TypeConfig>;
