//! Where a partition's leader is, for the answers that tell a client it
//! asked the wrong broker (KIP-951): Fetch v16+ and Produce v10+ name the
//! current leader and epoch of each partition answered
//! NOT_LEADER_OR_FOLLOWER (or, for Fetch, FENCED_LEADER_EPOCH), and list
//! those leaders' endpoints on the client's listener, so the client goes
//! there without a Metadata round trip. The leader is the controller
//! quorum's view; a single node leads everything it has and never answers
//! NOT_LEADER_OR_FOLLOWER, so it has no hints to give.

use std::collections::BTreeMap;

use fjord_controller::ClusterMetadata;
use kafka_protocol::ResponseError;
use kafka_protocol::protocol::StrBytes;

use crate::broker_state::BrokerState;

/// A current leader to name: its id and epoch, and its endpoint on the
/// client's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderHint {
    pub(crate) leader: i32,
    pub(crate) epoch: i32,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) rack: Option<String>,
}

/// The error for partition `index` of `topic` when this broker has no
/// replica of it: NOT_LEADER_OR_FOLLOWER when the topic has that partition
/// (in a cluster, on other brokers: the client is told where, above), as
/// Kafka answers; UNKNOWN_TOPIC_OR_PARTITION when it does not.
pub(crate) fn not_hosted_code(topic: &crate::topic_registry::Topic, index: i32) -> i16 {
    if (0..topic.partition_count()).contains(&index) {
        ResponseError::NotLeaderOrFollower.code()
    } else {
        ResponseError::UnknownTopicOrPartition.code()
    }
}

/// Whether an answer with this error code carries a leader hint.
pub(crate) fn wants_hint(code: i16) -> bool {
    code == ResponseError::NotLeaderOrFollower.code()
        || code == ResponseError::FencedLeaderEpoch.code()
}

/// Looks leaders up in one snapshot of the cluster's metadata, and
/// collects the endpoints of those it named (once per broker).
pub(crate) struct LeaderHints {
    metadata: Option<std::sync::Arc<ClusterMetadata>>,
    listener: String,
    endpoints: BTreeMap<i32, LeaderHint>,
}

impl LeaderHints {
    pub(crate) fn new(state: &BrokerState, listener: &str) -> Self {
        LeaderHints {
            metadata: state.cluster().map(|link| link.metadata()),
            listener: listener.to_string(),
            endpoints: BTreeMap::new(),
        }
    }

    /// The current leader of `topic`'s `partition`, when one is known with
    /// an endpoint on the client's listener (as Kafka, which names only a
    /// live leader it can give an address for).
    pub(crate) fn leader(&mut self, topic: &str, partition: i32) -> Option<LeaderHint> {
        let metadata = self.metadata.as_ref()?;
        let hint = hint_from(metadata, &self.listener, topic, partition)?;
        self.endpoints.insert(hint.leader, hint.clone());
        Some(hint)
    }

    /// The endpoints of every leader named so far, by broker id.
    pub(crate) fn endpoints(self) -> impl Iterator<Item = LeaderHint> {
        self.endpoints.into_values()
    }
}

fn hint_from(
    metadata: &ClusterMetadata,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Option<LeaderHint> {
    let state = metadata.partition(topic, partition)?;
    if state.leader < 0 || state.leader_epoch < 0 || !metadata.is_unfenced(state.leader) {
        return None;
    }
    let (host, port) = metadata.broker_endpoint(state.leader, listener)?;
    Some(LeaderHint {
        leader: state.leader,
        epoch: state.leader_epoch,
        host: host.to_string(),
        port: i32::from(port),
        rack: metadata.broker(state.leader).and_then(|b| b.rack.clone()),
    })
}

impl LeaderHint {
    pub(crate) fn host(&self) -> StrBytes {
        StrBytes::from_string(self.host.clone())
    }

    pub(crate) fn rack(&self) -> Option<StrBytes> {
        self.rack.clone().map(StrBytes::from_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_controller::{BrokerListener, BrokerRegistration, PartitionState, Topic};

    fn metadata() -> ClusterMetadata {
        let mut metadata = ClusterMetadata::default();
        for (id, fenced) in [(1, false), (2, false), (3, true)] {
            metadata.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    host: "127.0.0.1".into(),
                    port: 9090 + id as u16,
                    rack: (id == 2).then(|| "r2".to_string()),
                    epoch: 1,
                    fenced,
                },
            );
        }
        metadata.broker_listeners.insert(
            2,
            vec![BrokerListener {
                name: "PLAINTEXT".into(),
                host: "10.0.0.2".into(),
                port: 19092,
                security_protocol: "PLAINTEXT".into(),
            }],
        );
        let partition = |leader: i32| {
            let mut p = PartitionState::new(vec![1, 2, 3]);
            p.leader = leader;
            p.leader_epoch = 4;
            p
        };
        let topic = Topic {
            name: "events".into(),
            id: uuid::Uuid::from_u128(7),
            configs: Default::default(),
            partitions: vec![partition(2), partition(3), partition(-1)],
        };
        metadata.topics.insert("events".into(), topic);
        metadata
    }

    #[test]
    fn only_live_leaders_with_the_clients_listener_are_named() {
        let m = metadata();
        let hint = hint_from(&m, "PLAINTEXT", "events", 0).expect("broker 2 leads");
        assert_eq!(
            hint,
            LeaderHint {
                leader: 2,
                epoch: 4,
                host: "10.0.0.2".into(),
                port: 19092,
                rack: Some("r2".into()),
            }
        );
        // Broker 2 has no listener of that name.
        assert_eq!(hint_from(&m, "EXTRA", "events", 0), None);
        // A fenced leader, no leader, no such partition or topic.
        assert_eq!(hint_from(&m, "PLAINTEXT", "events", 1), None);
        assert_eq!(hint_from(&m, "PLAINTEXT", "events", 2), None);
        assert_eq!(hint_from(&m, "PLAINTEXT", "events", 3), None);
        assert_eq!(hint_from(&m, "PLAINTEXT", "other", 0), None);
    }
}
