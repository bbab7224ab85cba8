//! Client quotas in the metadata frontend (KIP-546): where they are kept.
//! What they mean — which quota a connection gets and how it is enforced —
//! is `crate::quotas`; this is only the table of entities and values.
//!
//! - On a single node they are one file, `<log.dir>/quotas.yaml` (a list
//!   of entities, each a map of Kafka's entity types to names, `null` for
//!   the default, with its values by key), rewritten atomically on every
//!   change and held in memory.
//! - In a cluster they are part of the quorum's metadata
//!   (`fjord_controller::ClusterMetadata::client_quotas`, changed by the
//!   `AlterClientQuotas` command); each broker reads the table it follows,
//!   so a quota set through one broker applies on all once they applied
//!   its command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_controller::{Command, QuotaEntity, QuotaValue, check_client_quota};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::quorum;
use crate::error::BrokerError;
use crate::quorum_link::ClusterLink;
use crate::topic_registry::ApiError;

/// Every entity's quota values by key.
pub(crate) type QuotaTable = BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>;

/// A change to one entity's values: `Some` sets a key, `None` removes it.
pub(crate) type QuotaChanges = BTreeMap<String, Option<f64>>;

/// The file of a single node's quotas, in the data directory.
const FILE: &str = "quotas.yaml";

/// Kafka's entity type names.
pub(crate) const USER: &str = "user";
pub(crate) const CLIENT_ID: &str = "client-id";

/// One entity in the file: `{entity: {user: alice, client-id: null},
/// values: {producer_byte_rate: 1048576}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    entity: BTreeMap<String, Option<String>>,
    values: BTreeMap<String, f64>,
}

/// The quotas of one broker.
#[derive(Debug)]
pub(crate) struct QuotaStore {
    file: PathBuf,
    /// A single node's table; changes hold the lock across the file write,
    /// so two never interleave.
    local: Mutex<Arc<QuotaTable>>,
    /// In a cluster: the quorum's table, with the metadata offset it was
    /// copied at (copied again only when the metadata moved).
    followed: Mutex<Option<(u64, Arc<QuotaTable>)>>,
}

impl QuotaStore {
    /// The store of the data directory `data_dir`: a single node's file is
    /// read now (one that does not parse stops the start rather than
    /// dropping its limits).
    pub(crate) fn open(data_dir: &Path) -> Result<QuotaStore, BrokerError> {
        let file = data_dir.join(FILE);
        let table = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let entries = crate::yaml::from_str::<Vec<FileEntry>>(&text)
                    .map_err(|e| BrokerError::metadata(&file, e))?;
                decode(entries).map_err(|e| BrokerError::metadata(&file, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QuotaTable::new(),
            Err(e) => return Err(BrokerError::metadata(&file, e)),
        };
        Ok(QuotaStore {
            file,
            local: Mutex::new(Arc::new(table)),
            followed: Mutex::new(None),
        })
    }

    /// A single node's table.
    pub(super) fn local(&self) -> Arc<QuotaTable> {
        Arc::clone(&self.local.lock())
    }

    /// The quorum's table as this broker applied it.
    pub(super) fn followed(&self, link: &ClusterLink) -> Arc<QuotaTable> {
        let metadata = link.metadata();
        let mut cached = self.followed.lock();
        match &*cached {
            Some((offset, table)) if *offset == metadata.offset => Arc::clone(table),
            _ => {
                let table = Arc::new(metadata.client_quotas.clone());
                *cached = Some((metadata.offset, Arc::clone(&table)));
                table
            }
        }
    }

    /// Applies `changes` to a single node's `entity` and writes the file.
    fn change_local(&self, entity: &QuotaEntity, changes: &QuotaChanges) -> Result<(), ApiError> {
        let mut table = self.local.lock();
        let mut next = QuotaTable::clone(&table);
        apply(&mut next, entity, changes);
        if next == **table {
            return Ok(());
        }
        let text = crate::yaml::to_string(&encode(&next))
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        crate::topic_registry::write_atomically(&self.file, text.as_bytes())
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        *table = Arc::new(next);
        Ok(())
    }
}

/// Checks `changes` as Kafka does (INVALID_REQUEST with its messages): known
/// keys, positive values, whole byte rates.
pub(super) fn check(changes: &QuotaChanges) -> Result<(), ApiError> {
    for (key, value) in changes {
        check_client_quota(key, value.unwrap_or(1.0))
            .map_err(|e| ApiError::new(ResponseError::InvalidRequest, e))?;
    }
    Ok(())
}

/// Applies `changes` to a single node's `entity` (on a blocking thread: a
/// file write).
pub(super) async fn alter_local(
    store: &Arc<QuotaStore>,
    entity: QuotaEntity,
    changes: QuotaChanges,
) -> Result<(), ApiError> {
    let store = Arc::clone(store);
    super::registry::blocking(move || store.change_local(&entity, &changes)).await
}

/// Applies `changes` to `entity` through the quorum.
pub(super) async fn alter_quorum(
    link: &ClusterLink,
    entity: QuotaEntity,
    changes: QuotaChanges,
) -> Result<(), ApiError> {
    let changes = changes
        .into_iter()
        .map(|(key, value)| (key, value.map(QuotaValue)))
        .collect();
    quorum::propose_and_wait(link, Command::AlterClientQuotas { entity, changes }).await
}

/// `table` with `changes` made to `entity` (as the controller's state
/// machine makes them): an entity left without values is gone.
fn apply(table: &mut QuotaTable, entity: &QuotaEntity, changes: &QuotaChanges) {
    let values = table.entry(entity.clone()).or_default();
    for (key, value) in changes {
        match value {
            Some(v) => values.insert(key.clone(), QuotaValue(*v)),
            None => values.remove(key),
        };
    }
    if values.is_empty() {
        table.remove(entity);
    }
}

fn encode(table: &QuotaTable) -> Vec<FileEntry> {
    table
        .iter()
        .map(|(entity, values)| FileEntry {
            entity: entity_parts(entity)
                .map(|(kind, name)| (kind.to_owned(), name.map(str::to_owned)))
                .collect(),
            values: values.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
        })
        .collect()
}

fn decode(entries: Vec<FileEntry>) -> Result<QuotaTable, String> {
    let mut table = QuotaTable::new();
    for entry in entries {
        let entity = entity_from_parts(
            entry
                .entity
                .iter()
                .map(|(kind, name)| (kind.as_str(), name.as_deref())),
        )?;
        let mut values = BTreeMap::new();
        for (key, value) in entry.values {
            check_client_quota(&key, value)?;
            values.insert(key, QuotaValue(value));
        }
        table.insert(entity, values);
    }
    Ok(table)
}

/// The `(entity type, name)` pairs of `entity`, Kafka's way (`None`: the
/// default).
pub(crate) fn entity_parts(entity: &QuotaEntity) -> impl Iterator<Item = (&str, Option<&str>)> {
    let user = entity.user.as_ref().map(|n| (USER, n.as_deref()));
    let client = entity.client_id.as_ref().map(|n| (CLIENT_ID, n.as_deref()));
    user.into_iter().chain(client)
}

/// The entity the `(entity type, name)` pairs name, or why they name none
/// (Kafka's messages: an unknown or repeated type, an empty entity; `ip`
/// entities are not supported here).
pub(crate) fn entity_from_parts<'a>(
    parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<QuotaEntity, String> {
    let mut entity = QuotaEntity::default();
    for (kind, name) in parts {
        let slot = match kind {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            "ip" => return Err("ip quotas (connection_creation_rate) are not supported".into()),
            other => return Err(format!("Unhandled client quota entity type: {other}")),
        };
        if slot.is_some() {
            return Err(format!("Duplicate {kind} entity type"));
        }
        *slot = Some(name.map(str::to_owned));
    }
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err("Invalid empty client quota entity".into());
    }
    Ok(entity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_single_nodes_quotas_survive_a_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(QuotaStore::open(dir.path())?);
        let alice = entity_from_parts([(USER, Some("alice")), (CLIENT_ID, None)])?;
        let default_client = entity_from_parts([(CLIENT_ID, None)])?;
        let set =
            |key: &str, value: Option<f64>| -> QuotaChanges { [(key.to_owned(), value)].into() };
        alter_local(
            &store,
            alice.clone(),
            set("producer_byte_rate", Some(1024.0)),
        )
        .await
        .map_err(|e| e.message)?;
        alter_local(
            &store,
            default_client.clone(),
            set("consumer_byte_rate", Some(2048.0)),
        )
        .await
        .map_err(|e| e.message)?;
        alter_local(
            &store,
            default_client.clone(),
            set("consumer_byte_rate", None),
        )
        .await
        .map_err(|e| e.message)?;
        let reopened = QuotaStore::open(dir.path())?;
        let table = reopened.local();
        assert_eq!(table.len(), 1, "{table:?}");
        assert_eq!(table[&alice]["producer_byte_rate"], QuotaValue(1024.0));
        // A damaged file stops the start instead of dropping its limits.
        std::fs::write(dir.path().join(FILE), "- {entity: {group: x}, values: {}}")?;
        assert!(QuotaStore::open(dir.path()).is_err());
        Ok(())
    }

    #[test]
    fn entities_are_named_as_kafka_names_them() {
        assert!(entity_from_parts([]).is_err());
        assert!(entity_from_parts([("ip", Some("10.0.0.1"))]).is_err());
        assert!(entity_from_parts([("group", Some("g"))]).is_err());
        assert!(entity_from_parts([(USER, Some("a")), (USER, Some("b"))]).is_err());
        let both = entity_from_parts([(CLIENT_ID, Some("app")), (USER, None)]);
        assert_eq!(
            both,
            Ok(QuotaEntity {
                user: Some(None),
                client_id: Some(Some("app".into())),
            })
        );
    }
}
