//! Applies the quorum's metadata to this broker, in metadata order: makes
//! the local copy of every topic, opens the partitions this broker is a
//! replica of (and removes those it no longer is), and gives each its role
//! — leader of its replica set, or follower with a replica fetcher copying
//! the leader's log.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fjord_controller::ClusterMetadata;
use tokio::task::JoinHandle;

use super::Replicas;
use crate::group::offsets_topic::OFFSETS_TOPIC;
use crate::group::ownership;
use crate::partition::Partition;
use crate::shutdown::stopped;
use crate::topic_config::TopicConfigs;
use crate::topic_registry::TopicRegistry;

/// A running replica fetcher and what it was started for.
struct Fetching {
    leader: i32,
    leader_epoch: i32,
    task: JoinHandle<()>,
}

/// What the registry work found: the partitions hosted here, with their
/// role in the metadata.
struct Hosted {
    partition: Arc<Partition>,
    leader: i32,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    partition_epoch: i32,
}

pub(super) async fn run(replicas: Arc<Replicas>) {
    let link = &replicas.link;
    let mut shutdown = replicas.shutdown.clone();
    let mut registered = link.registrations();
    let mut metadata = link.subscribe();
    let mut fetchers: HashMap<(String, i32), Fetching> = HashMap::new();
    loop {
        let current = metadata.borrow_and_update().clone();
        let caught_up = registered
            .borrow_and_update()
            .is_some_and(|offset| current.offset >= offset);
        if caught_up {
            let offset = current.offset;
            apply(&replicas, current, &mut fetchers).await;
            link.applied(offset);
        }
        tokio::select! {
            changed = metadata.changed() => if changed.is_err() { break },
            changed = registered.changed() => if changed.is_err() { break },
            _ = stopped(&mut shutdown) => break,
        }
    }
    for (_, fetching) in fetchers.drain() {
        fetching.task.abort();
    }
}

async fn apply(
    replicas: &Arc<Replicas>,
    metadata: Arc<ClusterMetadata>,
    fetchers: &mut HashMap<(String, i32), Fetching>,
) {
    let local = replicas.link.broker_id();
    // Whichever broker coordinates a group uses its configs.
    replicas.groups.set_group_configs(&metadata.group_configs);
    let registry = Arc::clone(&replicas.registry);
    let registry_metadata = Arc::clone(&metadata);
    // Opening logs and writing topic files blocks.
    let hosted =
        tokio::task::spawn_blocking(move || sync_registry(&registry, &registry_metadata, local))
            .await
            .unwrap_or_default();
    let mut wanted = HashSet::new();
    for h in hosted {
        let key = (h.partition.topic().to_string(), h.partition.index());
        if h.leader == local {
            if let Some(old) = fetchers.remove(&key) {
                stop(old).await;
            }
            let new_term = h.partition.become_leader(
                local,
                h.leader_epoch,
                h.replicas,
                h.isr,
                h.partition_epoch,
            );
            if new_term && h.partition.topic() == OFFSETS_TOPIC {
                let (replicas, partition) = (Arc::clone(replicas), Arc::clone(&h.partition));
                let _ = tokio::task::spawn_blocking(move || {
                    ownership::took_over(&replicas.registry, &replicas.groups, &partition)
                })
                .await;
            }
            continue;
        }
        let same = fetchers
            .get(&key)
            .is_some_and(|f| f.leader == h.leader && f.leader_epoch == h.leader_epoch);
        if same {
            wanted.insert(key);
            continue;
        }
        if let Some(old) = fetchers.remove(&key) {
            stop(old).await;
        }
        h.partition.become_follower(h.leader_epoch);
        if h.partition.topic() == OFFSETS_TOPIC {
            ownership::gave_up(&replicas.registry, &replicas.groups, h.partition.index());
        }
        if h.leader >= 0 {
            let task = tokio::spawn(super::fetcher::run(
                Arc::clone(&replicas.link),
                replicas.connector.clone(),
                replicas.shutdown.clone(),
                Arc::clone(&h.partition),
                h.leader,
                h.leader_epoch,
            ));
            fetchers.insert(
                key.clone(),
                Fetching {
                    leader: h.leader,
                    leader_epoch: h.leader_epoch,
                    task,
                },
            );
            wanted.insert(key);
        }
    }
    let gone: Vec<_> = fetchers
        .keys()
        .filter(|k| !wanted.contains(*k))
        .cloned()
        .collect();
    for key in gone {
        if let Some(old) = fetchers.remove(&key) {
            stop(old).await;
        }
    }
}

async fn stop(fetching: Fetching) {
    fetching.task.abort();
    let _ = fetching.task.await;
}

/// Brings the registry in line with `metadata`; returns the partitions
/// hosted here.
fn sync_registry(registry: &TopicRegistry, metadata: &ClusterMetadata, local: i32) -> Vec<Hosted> {
    // First, so that partitions opened below get the new defaults too.
    registry.set_dynamic(&metadata.broker_configs, local);
    let mut hosted = Vec::new();
    for (name, topic) in &metadata.topics {
        let configs = TopicConfigs::from_pairs(
            topic.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .unwrap_or_else(|e| {
            tracing::warn!(topic = %name, error = %e, "topic configs from the controller not understood; using defaults");
            TopicConfigs::default()
        });
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let local_topic = match registry.ensure_topic(name, topic.id, count, configs) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(topic = %name, error = %e.message, "cannot apply topic metadata");
                continue;
            }
        };
        for (index, p) in topic.partitions.iter().enumerate() {
            let index = index as i32;
            if !p.replicas.contains(&local) {
                if local_topic.partition(index).is_some() {
                    tracing::info!(topic = %name, partition = index, "no longer a replica: removing the log");
                    if let Err(e) = registry.unhost_partition(&local_topic, index) {
                        tracing::error!(topic = %name, partition = index, error = %e.message, "cannot remove replica");
                    }
                }
                continue;
            }
            match registry.host_partition(&local_topic, index, p.leader_epoch) {
                Ok(partition) => hosted.push(Hosted {
                    partition,
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                }),
                Err(e) => {
                    tracing::error!(topic = %name, partition = index, error = %e.message, "cannot open replica")
                }
            }
        }
    }
    // Topics deleted through the quorum. Topics that never came from it
    // (a single node's data, the local group offsets topic) stay.
    for topic in registry.list() {
        let name = topic.name();
        if topic.is_replicated() && !metadata.topics.contains_key(name) {
            tracing::info!(topic = name, "topic deleted through the controller");
            if let Err(e) = registry.delete(name) {
                tracing::error!(topic = name, error = %e.message, "cannot delete topic");
            }
        }
    }
    hosted
}
