//! Dynamic broker configs in the metadata frontend: where they are kept.
//! What they mean is `crate::dynamic_config`; the registry applies them.
//!
//! - On a single node: `<log.dir>/broker-configs.yaml` (by resource name,
//!   `""` the cluster default or a broker id, each key's value), rewritten
//!   atomically on every change and read at start.
//! - In a cluster: the quorum's metadata
//!   (`fjord_controller::ClusterMetadata::broker_configs`, changed by the
//!   `AlterBrokerConfigs` command); every broker applies the table as it
//!   follows the metadata (`crate::replication::follow`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use fjord_controller::Command;
use kafka_protocol::ResponseError;

use super::quorum;
use crate::dynamic_config::BrokerConfigTable;
use crate::error::BrokerError;
use crate::quorum_link::ClusterLink;
use crate::topic_registry::{ApiError, TopicRegistry};

/// The file of a single node's dynamic broker configs, in the data directory.
const FILE: &str = "broker-configs.yaml";

/// A change to one resource's configs: `Some` sets a key, `None` removes it.
pub(crate) type BrokerConfigChanges = BTreeMap<String, Option<String>>;

/// Reads a single node's file and applies it (at start; a file that does
/// not parse stops the start rather than silently dropping settings).
pub(crate) fn load_local(
    registry: &TopicRegistry,
    data_dir: &Path,
    node_id: i32,
) -> Result<(), BrokerError> {
    let file = data_dir.join(FILE);
    let table = match std::fs::read_to_string(&file) {
        Ok(text) => crate::yaml::from_str::<BrokerConfigTable>(&text)
            .map_err(|e| BrokerError::metadata(&file, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BrokerError::metadata(&file, e)),
    };
    registry.set_dynamic(&table, node_id);
    Ok(())
}

/// `table` with `changes` made to `resource` (as the controller's state
/// machine makes them): a resource left without values is gone.
pub(crate) fn apply(
    table: &mut BrokerConfigTable,
    resource: &str,
    changes: &BrokerConfigChanges,
    replace: bool,
) {
    let values = table.entry(resource.to_string()).or_default();
    if replace {
        values.clear();
    }
    for (key, value) in changes {
        match value {
            Some(v) => values.insert(key.clone(), v.clone()),
            None => values.remove(key),
        };
    }
    if values.is_empty() {
        table.remove(resource);
    }
}

/// Changes a single node's configs: the file, then the registry. The
/// registry's admin work is serialised by `lock`.
pub(super) async fn alter_local(
    registry: &Arc<TopicRegistry>,
    lock: &Arc<parking_lot::Mutex<()>>,
    data_dir: &Path,
    node_id: i32,
    resource: String,
    changes: BrokerConfigChanges,
    replace: bool,
) -> Result<(), ApiError> {
    let (registry, lock, file) = (Arc::clone(registry), Arc::clone(lock), data_dir.join(FILE));
    super::registry::blocking(move || {
        let _one_at_a_time = lock.lock();
        let mut table = registry.dynamic().table.clone();
        apply(&mut table, &resource, &changes, replace);
        let text = crate::yaml::to_string(&table)
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        crate::topic_registry::write_atomically(&file, text.as_bytes())
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        registry.set_dynamic(&table, node_id);
        Ok(())
    })
    .await
}

/// Changes the configs through the quorum; each broker applies them as it
/// follows the metadata.
pub(super) async fn alter_quorum(
    link: &ClusterLink,
    resource: String,
    changes: BrokerConfigChanges,
    replace: bool,
) -> Result<(), ApiError> {
    quorum::propose_and_wait(
        link,
        Command::AlterBrokerConfigs {
            resource,
            changes,
            replace,
        },
    )
    .await
}
