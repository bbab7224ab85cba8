//! Dynamic group configs in the metadata frontend: where they are kept.
//! What they mean and how a change is checked is
//! `crate::group::configs`; the coordinator applies them.
//!
//! - On a single node: `<log.dir>/group-configs.yaml` (by group id, each
//!   key's value), rewritten atomically on every change and read at start.
//! - In a cluster: the quorum's metadata
//!   (`fjord_controller::ClusterMetadata::group_configs`, changed by the
//!   `AlterGroupConfigs` command); every broker hands the table to its
//!   coordinator as it follows the metadata (`crate::replication::follow`),
//!   so whichever broker coordinates the group uses them.
//!
//! Deleting a group leaves its configs: in Kafka they are the controller's
//! config records, not the coordinator's state, and a group re-created
//! under the same id has them again.

use std::path::Path;
use std::sync::Arc;

use fjord_controller::Command;
use kafka_protocol::ResponseError;

use super::quorum;
use crate::error::BrokerError;
use crate::group::GroupCoordinator;
use crate::group::configs::{self, GroupConfigChanges, GroupConfigTable};
use crate::quorum_link::ClusterLink;
use crate::topic_registry::ApiError;

/// The file of a single node's group configs, in the data directory.
const FILE: &str = "group-configs.yaml";

fn invalid(e: String) -> ApiError {
    ApiError::new(ResponseError::InvalidConfig, e)
}

/// Reads a single node's file and gives it to the coordinator (at start;
/// a file that does not parse stops the start rather than silently
/// dropping settings).
pub(crate) fn load_local(groups: &GroupCoordinator, data_dir: &Path) -> Result<(), BrokerError> {
    let file = data_dir.join(FILE);
    let table = match std::fs::read_to_string(&file) {
        Ok(text) => crate::yaml::from_str::<GroupConfigTable>(&text)
            .map_err(|e| BrokerError::metadata(&file, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BrokerError::metadata(&file, e)),
    };
    groups.set_group_configs(&table);
    Ok(())
}

/// Checks and (unless `validate_only`) makes a single node's change: the
/// file, then the coordinator, one change at a time under `lock` so that
/// each is checked against the one before.
pub(super) async fn alter_local(
    groups: &Arc<GroupCoordinator>,
    lock: &Arc<parking_lot::Mutex<()>>,
    data_dir: &Path,
    group: String,
    changes: GroupConfigChanges,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let (groups, lock, file) = (Arc::clone(groups), Arc::clone(lock), data_dir.join(FILE));
    super::registry::blocking(move || {
        let _one_at_a_time = lock.lock();
        let current = groups.group_configs(&group);
        let after = configs::check(groups.group_settings(), Some(&current), &changes, replace)
            .map_err(invalid)?;
        if validate_only {
            return Ok(());
        }
        // The other groups as the coordinator has them (it was given the
        // file at start and after every change).
        let mut table = groups.all_group_configs();
        if after.is_empty() {
            table.remove(&group);
        } else {
            table.insert(group, after);
        }
        let text = crate::yaml::to_string(&table)
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        crate::topic_registry::write_atomically(&file, text.as_bytes())
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        groups.set_group_configs(&table);
        Ok(())
    })
    .await
}

/// Checks the change against the quorum's metadata this broker has
/// applied, then (unless `validate_only`) proposes it; each broker applies
/// it as it follows the metadata.
pub(super) async fn alter_quorum(
    link: &ClusterLink,
    groups: &GroupCoordinator,
    group: String,
    changes: GroupConfigChanges,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let metadata = link.metadata();
    configs::check(
        groups.group_settings(),
        metadata.group_configs.get(&group),
        &changes,
        replace,
    )
    .map_err(invalid)?;
    if validate_only {
        return Ok(());
    }
    quorum::propose_and_wait(
        link,
        Command::AlterGroupConfigs {
            group,
            changes,
            replace,
        },
    )
    .await
}
