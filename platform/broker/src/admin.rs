//! What operators' tools read and change in-process, through
//! [`LocalBroker`]: the admin HTTP API is built on these. They follow the
//! same rules as the Kafka APIs that do the same things (CreateTopics,
//! DeleteTopics, IncrementalAlterConfigs, DescribeGroups, OffsetFetch), so a
//! change made over HTTP is checked exactly as one made by a Kafka client.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use serde::Serialize;

use crate::error::LocalError;
use crate::local::LocalBroker;
use crate::metadata::{NewTopic, Replication};
use crate::topic_config::TopicConfigs;
use crate::topic_registry::Topic;

/// The cluster as this broker sees it (one node until replication exists).
#[derive(Debug, Clone, Serialize)]
pub struct ClusterInfo {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
}

/// One broker, as Metadata answers name it.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

pub use crate::metadata::PartitionReplicas;

/// One topic config with where its value comes from.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    /// `topic` (set on the topic) or `default` (the broker's default).
    pub source: &'static str,
}

/// A consumer group: its state, members with their assignments, and its
/// committed offsets with the lag behind each partition's last stable
/// offset (see [`GroupOffset::lag`]).
#[derive(Debug, Clone, Serialize)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state name: `Empty`, `PreparingRebalance`,
    /// `CompletingRebalance`, `Stable` or `Dead`; of a KIP-848 group
    /// `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub state: &'static str,
    pub protocol_type: Option<String>,
    /// The assignor (`range`, `cooperative-sticky`, …; of a KIP-848 group
    /// the server-side `uniform` or `range`).
    pub protocol: Option<String>,
    /// The generation (of a KIP-848 group: its group epoch).
    pub generation: i32,
    pub leader: Option<String>,
    pub members: Vec<GroupMember>,
    pub offsets: Vec<GroupOffset>,
    /// Sum of the partitions' lag.
    pub lag: i64,
}

/// One member of a group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The partitions the leader gave it, by topic (consumer groups only).
    pub assignment: Vec<TopicPartitions>,
}

/// Partitions of one topic.
#[derive(Debug, Clone, Serialize)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// A group's committed offset on one partition.
#[derive(Debug, Clone, Serialize)]
pub struct GroupOffset {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// The partition's high watermark (`-1` when the topic is gone).
    pub high_watermark: i64,
    /// The partition's last stable offset: the high watermark, or the
    /// first offset of a transaction still open (`-1` when the topic is
    /// gone).
    pub last_stable_offset: i64,
    /// What the group has left to read: `last_stable_offset - committed`
    /// (the records of open transactions are not readable yet by a
    /// read_committed consumer, so they are not lag); for a committed
    /// offset past the last stable offset (a read_uncommitted consumer)
    /// `high_watermark - committed`. Never below 0.
    pub lag: i64,
}

impl GroupOffset {
    /// The lag of `committed` on a partition with these offsets.
    fn lag_of(committed: i64, last_stable_offset: i64, high_watermark: i64) -> i64 {
        if high_watermark < 0 {
            return 0;
        }
        let end = if committed <= last_stable_offset {
            last_stable_offset
        } else {
            high_watermark
        };
        (end - committed).max(0)
    }
}

/// The metadata frontend's refusal, as a `LocalError`.
fn refused(e: crate::topic_registry::ApiError) -> LocalError {
    LocalError::Metadata {
        code: e.code,
        message: e.message,
    }
}

impl LocalBroker {
    /// The cluster id, the brokers clients are told about and the active
    /// controller.
    pub fn cluster(&self) -> ClusterInfo {
        let (brokers, controller_id) = self.state.brokers_view();
        ClusterInfo {
            cluster_id: self.state.registry().cluster_id().to_owned(),
            controller_id,
            brokers: brokers
                .into_iter()
                .map(|b| BrokerInfo {
                    node_id: b.id,
                    host: b.host,
                    port: b.port,
                })
                .collect(),
        }
    }

    /// Who holds partition `partition` of `topic`: the controller quorum's
    /// view in a cluster, this broker alone otherwise. `None` when the
    /// partition does not exist.
    pub fn partition_replicas(&self, topic: &str, partition: i32) -> Option<PartitionReplicas> {
        self.state.metadata().partition_replicas(topic, partition)
    }

    /// Every topic, internal ones included, by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut topics = self.state.registry().list();
        topics.sort_by(|a, b| a.name().cmp(b.name()));
        topics
    }

    /// Every config of `topic`: its own values and the broker defaults.
    pub fn topic_configs(&self, topic: &Topic) -> Vec<ConfigEntry> {
        self.state
            .registry()
            .describe_configs(&topic.configs())
            .into_iter()
            .map(|(name, value, source, _)| ConfigEntry {
                name,
                value,
                source: if source == crate::topic_config::SOURCE_TOPIC {
                    "topic"
                } else {
                    "default"
                },
            })
            .collect()
    }

    /// Creates a topic as CreateTopics does (through the controller quorum
    /// in a cluster, with `replication_factor` or the broker's default); an
    /// existing name is TOPIC_ALREADY_EXISTS.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        replication_factor: Option<i16>,
        configs: &[(String, String)],
    ) -> Result<Arc<Topic>, LocalError> {
        // Configs are checked first, before the replication factor.
        TopicConfigs::from_pairs(configs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(LocalError::InvalidConfig)?;
        let topic = NewTopic {
            partitions,
            replication: match replication_factor {
                None | Some(-1) => Replication::Default,
                Some(n) => Replication::Factor(n),
            },
            configs: configs.to_vec(),
            ..NewTopic::named(name)
        };
        let created = self
            .state
            .metadata()
            .create_topic(topic, false)
            .await
            .map_err(refused)?;
        created
            .topic
            .ok_or_else(|| LocalError::Other(format!("topic {name} was not created")))
    }

    /// Deletes a topic and its data, as DeleteTopics does (through the
    /// controller quorum in a cluster).
    pub async fn delete_topic(&self, name: &str) -> Result<(), LocalError> {
        self.state
            .metadata()
            .delete_topic(name)
            .await
            .map_err(refused)
    }

    /// Changes configs of `topic` as IncrementalAlterConfigs does: a value
    /// sets the config, `None` returns it to the broker default. Nothing
    /// changes when any of them is refused.
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<(), LocalError> {
        let current = self
            .topic(topic)
            .ok_or_else(|| LocalError::UnknownTopic(topic.to_owned()))?
            .configs();
        let mut configs = current;
        for (name, value) in changes {
            match value {
                Some(value) => configs.set(name, value),
                None => configs.remove(name),
            }
            .map_err(LocalError::InvalidConfig)?;
        }
        self.state
            .metadata()
            .set_topic_configs(topic, configs)
            .await
            .map_err(refused)
    }

    /// Every consumer group this broker coordinates, by id.
    pub fn groups(&self) -> Vec<GroupDescription> {
        let mut described: Vec<GroupDescription> = self
            .state
            .groups()
            .list()
            .iter()
            .filter_map(|g| self.group(&g.id))
            .collect();
        described.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        described
    }

    /// One group, if this broker knows it.
    pub fn group(&self, id: &str) -> Option<GroupDescription> {
        let group = self.state.groups().describe(id)?;
        let consumer = group.protocol_type.as_deref() == Some("consumer");
        let members = group
            .members
            .into_iter()
            .map(|m| GroupMember {
                assignment: if consumer {
                    decode_assignment(&m.assignment)
                } else {
                    Vec::new()
                },
                member_id: m.id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
            })
            .collect();
        let mut description = GroupDescription {
            group_id: group.id,
            state: group.state_name,
            protocol_type: group.protocol_type,
            protocol: group.protocol_name,
            generation: group.generation,
            leader: group.leader,
            members,
            offsets: Vec::new(),
            lag: 0,
        };
        let committed: Vec<(String, i32, i64)> = self
            .state
            .groups()
            .committed_offsets(id, None)
            .into_iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .into_iter()
                    .filter_map(move |(p, o)| Some((topic.clone(), p, o?.offset)))
            })
            .collect();
        // High watermarks are read after the group's view is taken.
        let mut offsets: Vec<GroupOffset> = committed
            .into_iter()
            .map(|(topic, partition, committed)| {
                let partition_now = self.topic(&topic).and_then(|t| t.partition(partition));
                // The LSO first: it never passes the high watermark read after it.
                let last_stable_offset = partition_now
                    .as_ref()
                    .map_or(-1, |p| p.last_stable_offset());
                let high_watermark = partition_now.map_or(-1, |p| p.high_watermark());
                GroupOffset {
                    lag: GroupOffset::lag_of(committed, last_stable_offset, high_watermark),
                    topic,
                    partition,
                    committed,
                    high_watermark,
                    last_stable_offset,
                }
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        description.lag = offsets.iter().map(|o| o.lag).sum();
        description.offsets = offsets;
        Some(description)
    }
}

/// The consumer protocol's assignment (version, then topics with their
/// partitions); an assignment that does not decode shows as none.
fn decode_assignment(bytes: &Bytes) -> Vec<TopicPartitions> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let mut buf = bytes.clone();
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    let Ok(assignment) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) else {
        return Vec::new();
    };
    assignment
        .assigned_partitions
        .into_iter()
        .map(|tp| TopicPartitions {
            topic: tp.topic.to_string(),
            partitions: tp.partitions,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::GroupOffset;

    #[test]
    fn lag_counts_to_the_last_stable_offset_or_past_it_to_the_high_watermark() {
        // No open transaction: LSO = HW.
        assert_eq!(GroupOffset::lag_of(40, 100, 100), 60);
        // A transaction open from 70: its records are not lag yet.
        assert_eq!(GroupOffset::lag_of(40, 70, 100), 30);
        assert_eq!(GroupOffset::lag_of(70, 70, 100), 0);
        // A read_uncommitted consumer committed inside the open transaction.
        assert_eq!(GroupOffset::lag_of(80, 70, 100), 20);
        // Committed past the end (a reset, a truncated log), or topic gone.
        assert_eq!(GroupOffset::lag_of(120, 100, 100), 0);
        assert_eq!(GroupOffset::lag_of(40, -1, -1), 0);
    }
}
