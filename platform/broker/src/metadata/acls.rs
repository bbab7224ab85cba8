//! ACL bindings in the metadata frontend: where they are kept, and the
//! decision index built from them.
//!
//! - On a single node they are one file, `<log.dir>/acls.yaml` (a list of
//!   bindings with Kafka's codes), rewritten atomically on every change
//!   (write to a temporary file, fsync, rename, fsync the directory) and
//!   held in memory as an [`AclIndex`].
//! - In a cluster they are part of the quorum's metadata
//!   (`fjord_controller::ClusterMetadata::acls`, changed by the
//!   `CreateAcls`/`DeleteAcls` commands); every broker builds its index
//!   from the metadata it follows, again when the metadata changed, so a
//!   binding created through one broker applies on all once they applied
//!   its command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_controller::{Acl, Command};
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};

use super::quorum;
use crate::authorizer::{AclBinding, AclFilter, AclIndex};
use crate::error::BrokerError;
use crate::quorum_link::ClusterLink;
use crate::topic_registry::ApiError;

/// The file of a single node's bindings, in the data directory.
const FILE: &str = "acls.yaml";

/// The bindings of one broker, and their index.
#[derive(Debug)]
pub(crate) struct AclStore {
    file: PathBuf,
    /// A single node's bindings and their index; changes hold the lock
    /// across the file write, so two never interleave.
    local: Mutex<BTreeSet<Acl>>,
    local_index: RwLock<Arc<AclIndex>>,
    /// In a cluster: the index of the quorum's bindings, with the
    /// metadata offset it was built at.
    followed: Mutex<Option<(u64, Arc<AclIndex>)>>,
}

impl AclStore {
    /// The store of the data directory `data_dir`: a single node's file is
    /// read now (a file that does not parse is an error: starting without
    /// its DENY bindings would open what it closes).
    pub(crate) fn open(data_dir: &Path) -> Result<AclStore, BrokerError> {
        let file = data_dir.join(FILE);
        let records: BTreeSet<Acl> = match std::fs::read_to_string(&file) {
            Ok(text) => crate::yaml::from_str::<Vec<Acl>>(&text)
                .map_err(|e| BrokerError::metadata(&file, e))?
                .into_iter()
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(BrokerError::metadata(&file, e)),
        };
        let index = AclIndex::from_records(&records);
        Ok(AclStore {
            file,
            local: Mutex::new(records),
            local_index: RwLock::new(Arc::new(index)),
            followed: Mutex::new(None),
        })
    }

    /// The index a single node decides with.
    pub(super) fn local(&self) -> Arc<AclIndex> {
        Arc::clone(&self.local_index.read())
    }

    /// The index of the quorum's bindings, rebuilt when the metadata moved.
    pub(super) fn followed(&self, link: &ClusterLink) -> Arc<AclIndex> {
        let metadata = link.metadata();
        let mut cached = self.followed.lock();
        match &*cached {
            Some((offset, index)) if *offset == metadata.offset => Arc::clone(index),
            _ => {
                let index = Arc::new(AclIndex::from_records(&metadata.acls));
                *cached = Some((metadata.offset, Arc::clone(&index)));
                index
            }
        }
    }

    /// Changes a single node's bindings with `change` and writes the file.
    fn change_local(&self, change: impl FnOnce(&mut BTreeSet<Acl>)) -> Result<(), ApiError> {
        let mut records = self.local.lock();
        let mut next = records.clone();
        change(&mut next);
        if next == *records {
            return Ok(());
        }
        let list: Vec<&Acl> = next.iter().collect();
        let text = crate::yaml::to_string(&list)
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        crate::topic_registry::write_atomically(&self.file, text.as_bytes())
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        *self.local_index.write() = Arc::new(AclIndex::from_records(&next));
        *records = next;
        Ok(())
    }
}

/// Adds `bindings` on a single node (on a blocking thread: a file write).
pub(super) async fn create_local(
    store: &Arc<AclStore>,
    bindings: Vec<AclBinding>,
) -> Result<(), ApiError> {
    let store = Arc::clone(store);
    blocking(move || {
        store.change_local(|records| records.extend(bindings.iter().map(AclBinding::to_record)))
    })
    .await
}

/// Removes `bindings` on a single node.
pub(super) async fn delete_local(
    store: &Arc<AclStore>,
    bindings: Vec<AclBinding>,
) -> Result<(), ApiError> {
    let store = Arc::clone(store);
    blocking(move || {
        store.change_local(|records| {
            for b in &bindings {
                records.remove(&b.to_record());
            }
        })
    })
    .await
}

/// Adds `bindings` through the quorum.
pub(super) async fn create_quorum(
    link: &ClusterLink,
    bindings: &[AclBinding],
) -> Result<(), ApiError> {
    let acls = bindings.iter().map(AclBinding::to_record).collect();
    quorum::propose_and_wait(link, Command::CreateAcls { acls }).await
}

/// Removes `bindings` through the quorum.
pub(super) async fn delete_quorum(
    link: &ClusterLink,
    bindings: &[AclBinding],
) -> Result<(), ApiError> {
    let acls = bindings.iter().map(AclBinding::to_record).collect();
    quorum::propose_and_wait(link, Command::DeleteAcls { acls }).await
}

/// The bindings of `index` each filter matches (a binding may match
/// several).
pub(super) fn matching(index: &AclIndex, filters: &[AclFilter]) -> Vec<Vec<AclBinding>> {
    filters
        .iter()
        .map(|f| index.iter().filter(|b| f.matches(b)).cloned().collect())
        .collect()
}

async fn blocking(
    work: impl FnOnce() -> Result<(), ApiError> + Send + 'static,
) -> Result<(), ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            ResponseError::UnknownServerError,
            format!("the ACL change did not finish: {e}"),
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorizer::{Operation, Permission, ResourceType};

    fn binding(name: &str) -> AclBinding {
        AclBinding {
            resource_type: ResourceType::Topic,
            resource_name: name.into(),
            pattern_type: crate::authorizer::PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[tokio::test]
    async fn a_single_nodes_bindings_survive_a_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(AclStore::open(dir.path())?);
        create_local(&store, vec![binding("a"), binding("b")])
            .await
            .map_err(|e| e.message)?;
        delete_local(&store, vec![binding("a")])
            .await
            .map_err(|e| e.message)?;
        assert_eq!(store.local().len(), 1);
        let reopened = AclStore::open(dir.path())?;
        let names: Vec<String> = reopened
            .local()
            .iter()
            .map(|b| b.resource_name.clone())
            .collect();
        assert_eq!(names, ["b"]);
        // A damaged file stops the start instead of dropping its bindings.
        std::fs::write(dir.path().join(FILE), "- {not: an acl")?;
        assert!(AclStore::open(dir.path()).is_err());
        Ok(())
    }
}
