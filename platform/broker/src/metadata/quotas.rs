//! Client quotas in the metadata frontend (KIP-546): where they are kept.
//! What they mean — which quota a connection gets and how it is enforced —
//! is `crate::quotas`; this is only the table of entities and values.
//!
//! Two tables: user and client-id entities ([`QuotaTable`]), and `ip`
//! entities (KIP-612's connection quotas, [`IpQuotaTable`]), which name
//! no other type.
//!
//! - On a single node they are one file, `<log.dir>/quotas.yaml` (a list
//!   of entities, each a map of Kafka's entity types to names, `null` for
//!   the default, with its values by key), rewritten atomically on every
//!   change and held in memory.
//! - In a cluster they are part of the quorum's metadata
//!   (`fjord_controller::ClusterMetadata::client_quotas` and `ip_quotas`,
//!   changed by the `AlterClientQuotas` and `AlterIpQuotas` commands); each
//!   broker reads the tables it follows, so a quota set through one broker
//!   applies on all once they applied its command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_controller::{Command, QuotaEntity, QuotaValue, check_client_quota, check_ip_quota};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::quorum;
use crate::error::BrokerError;
use crate::quorum_link::ClusterLink;
use crate::topic_registry::ApiError;

/// Every entity's quota values by key.
pub(crate) type QuotaTable = BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>;

/// Every client address's connection quota values by key (`None`: the
/// default address).
pub(crate) type IpQuotaTable = BTreeMap<Option<String>, BTreeMap<String, QuotaValue>>;

/// An entity that quotas are set for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QuotaTarget {
    /// A user, a client id, or both.
    Client(QuotaEntity),
    /// A client address (`None`: the default), as text.
    Ip(Option<String>),
}

/// A change to one entity's values: `Some` sets a key, `None` removes it.
pub(crate) type QuotaChanges = BTreeMap<String, Option<f64>>;

/// The file of a single node's quotas, in the data directory.
const FILE: &str = "quotas.yaml";

/// Kafka's entity type names.
pub(crate) const USER: &str = "user";
pub(crate) const CLIENT_ID: &str = "client-id";
pub(crate) const IP: &str = "ip";

/// One entity in the file: `{entity: {user: alice, client-id: null},
/// values: {producer_byte_rate: 1048576}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    entity: BTreeMap<String, Option<String>>,
    values: BTreeMap<String, f64>,
}

/// Both tables, as one change sees them.
#[derive(Debug, Clone, Default)]
struct Tables {
    clients: Arc<QuotaTable>,
    ips: Arc<IpQuotaTable>,
}

/// The quotas of one broker.
#[derive(Debug)]
pub(crate) struct QuotaStore {
    file: PathBuf,
    /// A single node's tables; changes hold the lock across the file
    /// write, so two never interleave.
    local: Mutex<Tables>,
    /// In a cluster: the quorum's tables, with the metadata offset they
    /// were copied at (copied again only when the metadata moved).
    followed: Mutex<Option<(u64, Tables)>>,
}

impl QuotaStore {
    /// The store of the data directory `data_dir`: a single node's file is
    /// read now (one that does not parse stops the start rather than
    /// dropping its limits).
    pub(crate) fn open(data_dir: &Path) -> Result<QuotaStore, BrokerError> {
        let file = data_dir.join(FILE);
        let tables = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let entries = crate::yaml::from_str::<Vec<FileEntry>>(&text)
                    .map_err(|e| BrokerError::metadata(&file, e))?;
                decode(entries).map_err(|e| BrokerError::metadata(&file, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tables::default(),
            Err(e) => return Err(BrokerError::metadata(&file, e)),
        };
        Ok(QuotaStore {
            file,
            local: Mutex::new(tables),
            followed: Mutex::new(None),
        })
    }

    /// A single node's user and client-id table.
    pub(super) fn local(&self) -> Arc<QuotaTable> {
        Arc::clone(&self.local.lock().clients)
    }

    /// A single node's ip table.
    pub(super) fn local_ips(&self) -> Arc<IpQuotaTable> {
        Arc::clone(&self.local.lock().ips)
    }

    /// The quorum's user and client-id table as this broker applied it.
    pub(super) fn followed(&self, link: &ClusterLink) -> Arc<QuotaTable> {
        self.followed_tables(link).clients
    }

    /// The quorum's ip table as this broker applied it.
    pub(super) fn followed_ips(&self, link: &ClusterLink) -> Arc<IpQuotaTable> {
        self.followed_tables(link).ips
    }

    fn followed_tables(&self, link: &ClusterLink) -> Tables {
        let metadata = link.metadata();
        let mut cached = self.followed.lock();
        match &*cached {
            Some((offset, tables)) if *offset == metadata.offset => tables.clone(),
            _ => {
                let tables = Tables {
                    clients: Arc::new(metadata.client_quotas.clone()),
                    ips: Arc::new(metadata.ip_quotas.clone()),
                };
                *cached = Some((metadata.offset, tables.clone()));
                tables
            }
        }
    }

    /// Applies `changes` to a single node's `target` and writes the file.
    fn change_local(&self, target: &QuotaTarget, changes: &QuotaChanges) -> Result<(), ApiError> {
        let mut tables = self.local.lock();
        let mut clients = QuotaTable::clone(&tables.clients);
        let mut ips = IpQuotaTable::clone(&tables.ips);
        match target {
            QuotaTarget::Client(entity) => apply(&mut clients, entity, changes),
            QuotaTarget::Ip(ip) => apply(&mut ips, ip, changes),
        }
        if clients == *tables.clients && ips == *tables.ips {
            return Ok(());
        }
        let text = crate::yaml::to_string(&encode(&clients, &ips))
            .map_err(|e| ApiError::new(ResponseError::UnknownServerError, e.to_string()))?;
        crate::topic_registry::write_atomically(&self.file, text.as_bytes())
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        *tables = Tables {
            clients: Arc::new(clients),
            ips: Arc::new(ips),
        };
        Ok(())
    }
}

/// Checks `changes` to `target` as Kafka does (INVALID_REQUEST with its
/// messages): known keys, positive values, whole byte rates and
/// connection rates, an IP address.
pub(super) fn check(target: &QuotaTarget, changes: &QuotaChanges) -> Result<(), ApiError> {
    for (key, value) in changes {
        let value = value.unwrap_or(1.0);
        match target {
            QuotaTarget::Client(_) => check_client_quota(key, value),
            QuotaTarget::Ip(ip) => check_ip_quota(ip.as_deref(), key, value),
        }
        .map_err(|e| ApiError::new(ResponseError::InvalidRequest, e))?;
    }
    Ok(())
}

/// Applies `changes` to a single node's `target` (on a blocking thread: a
/// file write).
pub(super) async fn alter_local(
    store: &Arc<QuotaStore>,
    target: QuotaTarget,
    changes: QuotaChanges,
) -> Result<(), ApiError> {
    let store = Arc::clone(store);
    super::registry::blocking(move || store.change_local(&target, &changes)).await
}

/// Applies `changes` to `target` through the quorum.
pub(super) async fn alter_quorum(
    link: &ClusterLink,
    target: QuotaTarget,
    changes: QuotaChanges,
) -> Result<(), ApiError> {
    let changes = changes
        .into_iter()
        .map(|(key, value)| (key, value.map(QuotaValue)))
        .collect();
    let command = match target {
        QuotaTarget::Client(entity) => Command::AlterClientQuotas { entity, changes },
        QuotaTarget::Ip(ip) => Command::AlterIpQuotas { ip, changes },
    };
    quorum::propose_and_wait(link, command).await
}

/// `table` with `changes` made to `entity` (as the controller's state
/// machine makes them): an entity left without values is gone.
fn apply<E: Ord + Clone>(
    table: &mut BTreeMap<E, BTreeMap<String, QuotaValue>>,
    entity: &E,
    changes: &QuotaChanges,
) {
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

fn values_of(values: &BTreeMap<String, QuotaValue>) -> BTreeMap<String, f64> {
    values.iter().map(|(k, v)| (k.clone(), v.0)).collect()
}

fn encode(clients: &QuotaTable, ips: &IpQuotaTable) -> Vec<FileEntry> {
    let clients = clients.iter().map(|(entity, values)| FileEntry {
        entity: entity_parts(entity)
            .map(|(kind, name)| (kind.to_owned(), name.map(str::to_owned)))
            .collect(),
        values: values_of(values),
    });
    let ips = ips.iter().map(|(ip, values)| FileEntry {
        entity: [(IP.to_owned(), ip.clone())].into(),
        values: values_of(values),
    });
    clients.chain(ips).collect()
}

fn decode(entries: Vec<FileEntry>) -> Result<Tables, String> {
    let mut clients = QuotaTable::new();
    let mut ips = IpQuotaTable::new();
    for entry in entries {
        let target = entity_from_parts(
            entry
                .entity
                .iter()
                .map(|(kind, name)| (kind.as_str(), name.as_deref())),
        )?;
        let mut values = BTreeMap::new();
        for (key, value) in entry.values {
            match &target {
                QuotaTarget::Client(_) => check_client_quota(&key, value)?,
                QuotaTarget::Ip(ip) => check_ip_quota(ip.as_deref(), &key, value)?,
            }
            values.insert(key, QuotaValue(value));
        }
        match target {
            QuotaTarget::Client(entity) => clients.insert(entity, values),
            QuotaTarget::Ip(ip) => ips.insert(ip, values),
        };
    }
    Ok(Tables {
        clients: Arc::new(clients),
        ips: Arc::new(ips),
    })
}

/// The `(entity type, name)` pairs of `entity`, Kafka's way (`None`: the
/// default).
pub(crate) fn entity_parts(entity: &QuotaEntity) -> impl Iterator<Item = (&str, Option<&str>)> {
    let user = entity.user.as_ref().map(|n| (USER, n.as_deref()));
    let client = entity.client_id.as_ref().map(|n| (CLIENT_ID, n.as_deref()));
    user.into_iter().chain(client)
}

/// The entity the `(entity type, name)` pairs name, or why they name none
/// (Kafka's messages: an unknown or repeated type, an empty entity, an
/// `ip` with another type). An address is kept in its canonical text.
pub(crate) fn entity_from_parts<'a>(
    parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<QuotaTarget, String> {
    let mut entity = QuotaEntity::default();
    let mut ip = None;
    for (kind, name) in parts {
        let slot = match kind {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            IP => &mut ip,
            other => return Err(format!("Unhandled client quota entity type: {other}")),
        };
        if slot.is_some() {
            return Err(format!("Duplicate {kind} entity type"));
        }
        *slot = Some(name.map(str::to_owned));
    }
    match ip {
        Some(_) if entity.user.is_some() || entity.client_id.is_some() => {
            Err("Invalid quota entity combination, IP entity should not be combined with User or ClientId".into())
        }
        Some(Some(name)) => match name.parse::<std::net::IpAddr>() {
            Ok(address) => Ok(QuotaTarget::Ip(Some(address.to_canonical().to_string()))),
            Err(_) => Err(format!("{name} is not a valid IP or resolvable host.")),
        },
        Some(None) => Ok(QuotaTarget::Ip(None)),
        None if entity.user.is_none() && entity.client_id.is_none() => {
            Err("Invalid empty client quota entity".into())
        }
        None => Ok(QuotaTarget::Client(entity)),
    }
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
        let local_ip = entity_from_parts([(IP, Some("127.0.0.1"))])?;
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
        alter_local(
            &store,
            local_ip.clone(),
            set("connection_creation_rate", Some(5.0)),
        )
        .await
        .map_err(|e| e.message)?;
        let reopened = QuotaStore::open(dir.path())?;
        let table = reopened.local();
        assert_eq!(table.len(), 1, "{table:?}");
        let QuotaTarget::Client(alice) = alice else {
            unreachable!()
        };
        assert_eq!(table[&alice]["producer_byte_rate"], QuotaValue(1024.0));
        let ips = reopened.local_ips();
        assert_eq!(
            ips[&Some("127.0.0.1".to_owned())]["connection_creation_rate"],
            QuotaValue(5.0)
        );
        // A damaged file stops the start instead of dropping its limits.
        std::fs::write(dir.path().join(FILE), "- {entity: {group: x}, values: {}}")?;
        assert!(QuotaStore::open(dir.path()).is_err());
        Ok(())
    }

    #[test]
    fn entities_are_named_as_kafka_names_them() {
        assert!(entity_from_parts([]).is_err());
        assert!(entity_from_parts([(IP, Some("10.0.0.1")), (USER, None)]).is_err());
        assert!(entity_from_parts([(IP, Some("not-an-address"))]).is_err());
        assert_eq!(
            entity_from_parts([(IP, Some("::ffff:10.0.0.1"))]),
            Ok(QuotaTarget::Ip(Some("10.0.0.1".into())))
        );
        assert_eq!(entity_from_parts([(IP, None)]), Ok(QuotaTarget::Ip(None)));
        assert!(entity_from_parts([("group", Some("g"))]).is_err());
        assert!(entity_from_parts([(USER, Some("a")), (USER, Some("b"))]).is_err());
        let both = entity_from_parts([(CLIENT_ID, Some("app")), (USER, None)]);
        assert_eq!(
            both,
            Ok(QuotaTarget::Client(QuotaEntity {
                user: Some(None),
                client_id: Some(Some("app".into())),
            }))
        );
    }
}
