//! The registry's side of cluster mode: the local copies of the topics the
//! controller quorum holds, and the partitions this broker hosts as one of
//! their replicas (`crate::replication::follow` decides which).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use kafka_protocol::ResponseError;
use parking_lot::RwLock;
use uuid::Uuid;

use super::{ApiError, MAX_PARTITIONS, Topic, TopicRegistry, validate_topic_name};
use crate::partition::Partition;
use crate::topic_config::TopicConfigs;

impl TopicRegistry {
    /// Makes the local copy of a topic the controller's metadata holds:
    /// `id`, `partition_count` and `configs`, hosting no partition yet. A
    /// local topic of the same name with another id was deleted and created
    /// again meanwhile: its logs go first.
    pub(crate) fn ensure_topic(
        &self,
        name: &str,
        id: Uuid,
        partition_count: i32,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, ApiError> {
        validate_topic_name(name)
            .map_err(|e| ApiError::new(ResponseError::InvalidTopicException, e))?;
        if let Some(existing) = self.get(name) {
            if existing.id == id {
                let count = partition_count.clamp(0, MAX_PARTITIONS);
                let changed = existing.partition_count() != count || existing.configs() != configs;
                if changed {
                    let _admin = self.admin.lock();
                    existing.partition_count.store(count, Ordering::Release);
                    let log_config = configs.log_config(&self.defaults());
                    *existing.configs.write() = configs;
                    for partition in existing.partitions() {
                        partition.set_config(log_config.clone());
                    }
                    self.persist(&existing).map_err(|e| {
                        ApiError::new(ResponseError::KafkaStorageError, e.to_string())
                    })?;
                }
                return Ok(existing);
            }
            tracing::info!(
                topic = name,
                "topic was recreated with a new id: removing the old logs"
            );
            self.delete(name)?;
        }
        let _admin = self.admin.lock();
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            partition_count: AtomicI32::new(partition_count.clamp(0, MAX_PARTITIONS)),
            replicated: true,
            partitions: RwLock::new(BTreeMap::new()),
            configs: RwLock::new(configs),
        });
        self.persist(&topic)
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        self.topics
            .write()
            .insert(name.to_string(), Arc::clone(&topic));
        tracing::info!(
            topic = name,
            partitions = partition_count,
            "topic from the controller"
        );
        Ok(topic)
    }

    /// Opens (creating if needed) this broker's replica of a partition. A
    /// directory already there is kept: its records are this replica's,
    /// and the follower truncates what diverges from the leader.
    pub(crate) fn host_partition(
        &self,
        topic: &Topic,
        index: i32,
        leader_epoch: i32,
    ) -> Result<Arc<Partition>, ApiError> {
        let _admin = self.admin.lock();
        if let Some(partition) = topic.partition(index) {
            return Ok(partition);
        }
        let log_config = topic.configs().log_config(&self.defaults());
        let partition = self
            .open_partition(&topic.name, index, &log_config, leader_epoch, true)
            .map(Arc::new)
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        topic
            .partitions
            .write()
            .insert(index, Arc::clone(&partition));
        self.persist(topic)
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        Ok(partition)
    }

    /// Removes this broker's replica of a partition (it was reassigned
    /// away): forgets it and deletes its log.
    pub(crate) fn unhost_partition(&self, topic: &Topic, index: i32) -> Result<(), ApiError> {
        let _admin = self.admin.lock();
        let Some(partition) = topic.partitions.write().remove(&index) else {
            return Ok(());
        };
        self.persist(topic)
            .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        partition.wake();
        self.remove_partition_dir(&partition);
        Ok(())
    }
}
