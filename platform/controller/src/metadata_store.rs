//! The Raft state machine (openraft `RaftStateMachine`): applies committed
//! entries to [`ClusterMetadata`], publishes every applied state on a watch
//! channel, and keeps snapshots in `raft-snapshot` in the data directory
//! (replaced atomically). The state itself is not persisted between
//! snapshots: on start it is the last snapshot, and openraft applies the
//! committed entries after it again.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::info;

use crate::commands::{AppliedResult, CommandOutcome};
use crate::durable_file;
use crate::model::ClusterMetadata;
use crate::raft_types::{Entry, TypeConfig};
use crate::voters::NodeId;

const SNAPSHOT_FILE: &str = "raft-snapshot";

/// A snapshot as stored on disk and sent to lagging followers.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    /// postcard-encoded [`ClusterMetadata`].
    data: Vec<u8>,
}

/// The state machine. Cloning gives another handle on the same state
/// (openraft's snapshot builder is such a clone).
#[derive(Debug, Clone)]
pub struct MetadataStore {
    inner: Arc<Mutex<StateMachine>>,
}

#[derive(Debug)]
struct StateMachine {
    dir: PathBuf,
    metadata: ClusterMetadata,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    snapshots_built: u64,
    publisher: watch::Sender<Arc<ClusterMetadata>>,
}

impl MetadataStore {
    /// Open the state machine in `dir`, starting from the last snapshot if
    /// there is one.
    pub fn open(dir: &Path) -> io::Result<MetadataStore> {
        std::fs::create_dir_all(dir)?;
        let snapshot = match durable_file::read_atomic(&dir.join(SNAPSHOT_FILE))? {
            Some(bytes) => Some(
                postcard::from_bytes::<StoredSnapshot>(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            ),
            None => None,
        };
        let (metadata, last_applied, last_membership) = match &snapshot {
            Some(s) => (
                decode_metadata(&s.data)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                s.meta.last_log_id,
                s.meta.last_membership.clone(),
            ),
            None => Default::default(),
        };
        if let Some(s) = &snapshot {
            info!(snapshot = %s.meta, "restored metadata from snapshot");
        }
        let (publisher, _) = watch::channel(Arc::new(metadata.clone()));
        Ok(MetadataStore {
            inner: Arc::new(Mutex::new(StateMachine {
                dir: dir.to_path_buf(),
                metadata,
                last_applied,
                last_membership,
                snapshot,
                snapshots_built: 0,
                publisher,
            })),
        })
    }

    /// A receiver of every applied metadata state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.inner.lock().publisher.subscribe()
    }

    /// The current metadata.
    pub fn current(&self) -> Arc<ClusterMetadata> {
        self.inner.lock().publisher.borrow().clone()
    }
}

impl StateMachine {
    fn save_snapshot(&mut self, snapshot: StoredSnapshot) -> io::Result<()> {
        let bytes = postcard::to_stdvec(&snapshot).map_err(io::Error::other)?;
        durable_file::write_atomic(&self.dir, SNAPSHOT_FILE, &bytes)?;
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn publish(&self) {
        self.publisher.send_replace(Arc::new(self.metadata.clone()));
    }
}

/// Decodes a snapshot's [`ClusterMetadata`]. postcard does not honour
/// `#[serde(default)]` (a struct is its fields in order, with no names), so
/// a snapshot written before the last fields existed, which ends where they
/// would start, is decoded as the older layout it is: before
/// `group_configs`, before `ip_quotas` (and `broker_configs`, which came with it), before `client_quotas` too, before `broker_listeners` too, before `acls` and
/// `scram_credentials` too, or before `internal_secret` as well.
fn decode_metadata(data: &[u8]) -> Result<ClusterMetadata, postcard::Error> {
    use std::collections::{BTreeMap, BTreeSet};

    use crate::model::{
        Acl, BrokerId, BrokerRegistration, InternalSecret, Pipeline, ScramCredential,
        ScramMechanism, Topic,
    };
    /// `ClusterMetadata` before `internal_secret`.
    #[derive(Deserialize)]
    struct WithoutSecret {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
    }
    /// `ClusterMetadata` before `acls` and `scram_credentials`.
    #[derive(Deserialize)]
    struct BeforeAccessControl {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
        internal_secret: Option<InternalSecret>,
    }
    /// `ClusterMetadata` before `broker_listeners`.
    #[derive(Deserialize)]
    struct BeforeListeners {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
        internal_secret: Option<InternalSecret>,
        acls: BTreeSet<Acl>,
        scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    }
    /// `ClusterMetadata` before `client_quotas`.
    #[derive(Deserialize)]
    struct BeforeQuotas {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
        internal_secret: Option<InternalSecret>,
        acls: BTreeSet<Acl>,
        scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        broker_listeners: BTreeMap<BrokerId, Vec<crate::model::BrokerListener>>,
    }
    /// `ClusterMetadata` before `ip_quotas`.
    #[derive(Deserialize)]
    struct BeforeIpQuotas {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
        internal_secret: Option<InternalSecret>,
        acls: BTreeSet<Acl>,
        scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        broker_listeners: BTreeMap<BrokerId, Vec<crate::model::BrokerListener>>,
        client_quotas:
            BTreeMap<crate::model::QuotaEntity, BTreeMap<String, crate::model::QuotaValue>>,
    }
    /// `ClusterMetadata` before `group_configs`.
    #[derive(Deserialize)]
    struct BeforeGroupConfigs {
        offset: u64,
        brokers: BTreeMap<BrokerId, BrokerRegistration>,
        topics: BTreeMap<String, Topic>,
        pipelines: BTreeMap<String, Pipeline>,
        placement_cursor: u64,
        internal_secret: Option<InternalSecret>,
        acls: BTreeSet<Acl>,
        scram_credentials: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
        broker_listeners: BTreeMap<BrokerId, Vec<crate::model::BrokerListener>>,
        client_quotas:
            BTreeMap<crate::model::QuotaEntity, BTreeMap<String, crate::model::QuotaValue>>,
        ip_quotas: BTreeMap<Option<String>, BTreeMap<String, crate::model::QuotaValue>>,
        broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    }
    let truncated = |e: &postcard::Error| matches!(e, postcard::Error::DeserializeUnexpectedEnd);
    // An older layout must take the bytes whole: one that leaves some
    // over is a newer snapshot cut short, not an old one.
    fn whole<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Result<T, postcard::Error> {
        match postcard::take_from_bytes::<T>(data)? {
            (value, []) => Ok(value),
            _ => Err(postcard::Error::DeserializeUnexpectedEnd),
        }
    }
    match postcard::from_bytes::<ClusterMetadata>(data) {
        Err(e) if truncated(&e) => {}
        other => return other,
    }
    match whole::<BeforeGroupConfigs>(data) {
        Ok(old) => {
            return Ok(ClusterMetadata {
                offset: old.offset,
                brokers: old.brokers,
                topics: old.topics,
                pipelines: old.pipelines,
                placement_cursor: old.placement_cursor,
                internal_secret: old.internal_secret,
                acls: old.acls,
                scram_credentials: old.scram_credentials,
                broker_listeners: old.broker_listeners,
                client_quotas: old.client_quotas,
                ip_quotas: old.ip_quotas,
                broker_configs: old.broker_configs,
                group_configs: BTreeMap::new(),
            });
        }
        Err(e) if truncated(&e) => {}
        Err(e) => return Err(e),
    }
    match whole::<BeforeIpQuotas>(data) {
        Ok(old) => {
            return Ok(ClusterMetadata {
                offset: old.offset,
                brokers: old.brokers,
                topics: old.topics,
                pipelines: old.pipelines,
                placement_cursor: old.placement_cursor,
                internal_secret: old.internal_secret,
                acls: old.acls,
                scram_credentials: old.scram_credentials,
                broker_listeners: old.broker_listeners,
                client_quotas: old.client_quotas,
                ip_quotas: BTreeMap::new(),
                broker_configs: BTreeMap::new(),
                group_configs: BTreeMap::new(),
            });
        }
        Err(e) if truncated(&e) => {}
        Err(e) => return Err(e),
    }
    match whole::<BeforeQuotas>(data) {
        Ok(old) => {
            return Ok(ClusterMetadata {
                offset: old.offset,
                brokers: old.brokers,
                topics: old.topics,
                pipelines: old.pipelines,
                placement_cursor: old.placement_cursor,
                internal_secret: old.internal_secret,
                acls: old.acls,
                scram_credentials: old.scram_credentials,
                broker_listeners: old.broker_listeners,
                client_quotas: BTreeMap::new(),
                ip_quotas: BTreeMap::new(),
                broker_configs: BTreeMap::new(),
                group_configs: BTreeMap::new(),
            });
        }
        Err(e) if truncated(&e) => {}
        Err(e) => return Err(e),
    }
    let old = match whole::<BeforeListeners>(data) {
        Ok(old) => old,
        Err(e) if truncated(&e) => {
            let old = match whole::<BeforeAccessControl>(data) {
                Ok(old) => old,
                Err(e) if truncated(&e) => {
                    let old: WithoutSecret = whole(data)?;
                    BeforeAccessControl {
                        offset: old.offset,
                        brokers: old.brokers,
                        topics: old.topics,
                        pipelines: old.pipelines,
                        placement_cursor: old.placement_cursor,
                        internal_secret: None,
                    }
                }
                Err(e) => return Err(e),
            };
            BeforeListeners {
                offset: old.offset,
                brokers: old.brokers,
                topics: old.topics,
                pipelines: old.pipelines,
                placement_cursor: old.placement_cursor,
                internal_secret: old.internal_secret,
                acls: BTreeSet::new(),
                scram_credentials: BTreeMap::new(),
            }
        }
        Err(e) => return Err(e),
    };
    Ok(ClusterMetadata {
        offset: old.offset,
        brokers: old.brokers,
        topics: old.topics,
        pipelines: old.pipelines,
        placement_cursor: old.placement_cursor,
        internal_secret: old.internal_secret,
        acls: old.acls,
        scram_credentials: old.scram_credentials,
        broker_listeners: BTreeMap::new(),
        client_quotas: BTreeMap::new(),
        ip_quotas: BTreeMap::new(),
        broker_configs: BTreeMap::new(),
        group_configs: BTreeMap::new(),
    })
}

fn to_snapshot(s: &StoredSnapshot) -> Snapshot<TypeConfig> {
    Snapshot {
        meta: s.meta.clone(),
        snapshot: Box::new(Cursor::new(s.data.clone())),
    }
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut sm = self.inner.lock();
        let data = postcard::to_stdvec(&sm.metadata)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        sm.snapshots_built += 1;
        let snapshot_id = match sm.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, sm.snapshots_built),
            None => format!("0-0-{}", sm.snapshots_built),
        };
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: sm.last_applied,
                last_membership: sm.last_membership.clone(),
                snapshot_id,
            },
            data,
        };
        let snapshot = to_snapshot(&stored);
        sm.save_snapshot(stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(snapshot.meta.signature()), &e))?;
        info!(snapshot = %snapshot.meta, "built metadata snapshot");
        Ok(snapshot)
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStore {
    type SnapshotBuilder = MetadataStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let sm = self.inner.lock();
        Ok((sm.last_applied, sm.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<AppliedResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut sm = self.inner.lock();
        let mut results = Vec::new();
        for entry in entries {
            let offset = entry.log_id.index;
            sm.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Normal(command) => sm.metadata.apply(offset, &command),
                EntryPayload::Blank => {
                    sm.metadata.offset = sm.metadata.offset.max(offset);
                    AppliedResult {
                        offset,
                        result: Ok(CommandOutcome::Done),
                    }
                }
                EntryPayload::Membership(m) => {
                    sm.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    sm.metadata.offset = sm.metadata.offset.max(offset);
                    AppliedResult {
                        offset,
                        result: Ok(CommandOutcome::Done),
                    }
                }
            };
            results.push(result);
        }
        if !results.is_empty() {
            sm.publish();
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let metadata = decode_metadata(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut sm = self.inner.lock();
        sm.save_snapshot(StoredSnapshot {
            meta: meta.clone(),
            data,
        })
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        sm.metadata = metadata;
        sm.last_applied = meta.last_log_id;
        sm.last_membership = meta.last_membership.clone();
        sm.publish();
        info!(snapshot = %meta, "installed metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.inner.lock().snapshot.as_ref().map(to_snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InternalSecret;

    #[test]
    fn snapshots_of_every_older_layout_still_decode() {
        let mut metadata = ClusterMetadata {
            offset: 7,
            placement_cursor: 3,
            ..ClusterMetadata::default()
        };
        metadata.pipelines.insert(
            "p".into(),
            crate::model::Pipeline {
                name: "p".into(),
                manifest: "m".into(),
                paused: false,
            },
        );
        // The older layout is the same fields without the last one.
        let old = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&old).unwrap(), metadata);

        metadata.internal_secret = Some(InternalSecret::new("s3cret"));
        // Before the ACLs and SCRAM credentials: the secret must survive.
        let with_secret = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
            &metadata.internal_secret,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&with_secret).unwrap(), metadata);

        metadata.acls.insert(crate::model::Acl {
            resource_type: 2,
            resource_name: "orders".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
        });
        metadata
            .scram_credentials
            .entry("alice".into())
            .or_default()
            .insert(
                crate::model::ScramMechanism::Sha256,
                crate::model::ScramCredential {
                    salt: vec![1; 16],
                    iterations: 4096,
                    stored_key: vec![2; 32],
                    server_key: vec![3; 32],
                },
            );
        // Before the brokers' listeners: the ACLs and credentials survive.
        let before_listeners = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
            &metadata.internal_secret,
            &metadata.acls,
            &metadata.scram_credentials,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&before_listeners).unwrap(), metadata);

        metadata.broker_listeners.insert(
            1,
            vec![crate::model::BrokerListener {
                name: "SASL_SSL".into(),
                host: "broker-1.example".into(),
                port: 9093,
                security_protocol: "SASL_SSL".into(),
            }],
        );
        // Before the client quotas: the listeners survive.
        let before_quotas = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
            &metadata.internal_secret,
            &metadata.acls,
            &metadata.scram_credentials,
            &metadata.broker_listeners,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&before_quotas).unwrap(), metadata);

        metadata.client_quotas.insert(
            crate::model::QuotaEntity {
                user: Some(None),
                client_id: Some(Some("app".into())),
            },
            [(
                "producer_byte_rate".to_string(),
                crate::model::QuotaValue(1_048_576.0),
            )]
            .into(),
        );
        // Before the ip quotas and broker configs: the client quotas survive.
        let before_ip_quotas = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
            &metadata.internal_secret,
            &metadata.acls,
            &metadata.scram_credentials,
            &metadata.broker_listeners,
            &metadata.client_quotas,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&before_ip_quotas).unwrap(), metadata);

        metadata.ip_quotas.insert(
            Some("10.0.0.1".into()),
            [(
                "connection_creation_rate".to_string(),
                crate::model::QuotaValue(5.0),
            )]
            .into(),
        );
        metadata.broker_configs.insert(
            String::new(),
            [("log.retention.ms".to_string(), "60000".to_string())].into(),
        );
        // Before the group configs: the broker configs survive.
        let before_group_configs = postcard::to_stdvec(&(
            metadata.offset,
            &metadata.brokers,
            &metadata.topics,
            &metadata.pipelines,
            metadata.placement_cursor,
            &metadata.internal_secret,
            &metadata.acls,
            &metadata.scram_credentials,
            &metadata.broker_listeners,
            &metadata.client_quotas,
            &metadata.ip_quotas,
            &metadata.broker_configs,
        ))
        .unwrap();
        assert_eq!(decode_metadata(&before_group_configs).unwrap(), metadata);

        metadata.group_configs.insert(
            "g".to_string(),
            [(
                "consumer.session.timeout.ms".to_string(),
                "50000".to_string(),
            )]
            .into(),
        );
        let new = postcard::to_stdvec(&metadata).unwrap();
        assert_eq!(decode_metadata(&new).unwrap(), metadata);
        assert!(decode_metadata(&new[..new.len() - 3]).is_err());
    }
}
