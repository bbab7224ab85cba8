//! The frontend over the controller quorum (a broker of a cluster): topic
//! creation, deletion, partition growth and config changes, leader
//! elections, partition reassignments, broker decommissioning and SCRAM
//! credentials are
//! commands to the quorum, and answer once this broker has applied their
//! outcome (so a Metadata request right after a CreateTopics sees the
//! topic, as with Kafka). Async all the way: a command is awaited on the
//! caller's task, with no blocking thread in between.

use std::collections::BTreeMap;
use std::time::Duration;

use fjord_controller::{
    BrokerId, ClusterMetadata, Command, CommandError, CommandOutcome, ControllerError,
    ElectionType, NO_LEADER, ScramCredential, ScramMechanism,
};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{CreatedTopic, NewTopic, Parts, Replication, parse_configs};
use crate::quorum_link::ClusterLink;
use crate::topic_config::TopicConfigs;
use crate::topic_registry::{ApiError, check_collision};

/// How long a metadata change waits for this broker to apply its command.
const APPLY_WAIT: Duration = Duration::from_secs(15);

/// The replication factor of the topics the platform creates for itself
/// (`__consumer_offsets`, the pipelines' topics): Kafka's
/// `offsets.topic.replication.factor`, at most the number of controller
/// voters (the brokers a cluster surely has). `None` while fewer brokers
/// than that are live: as in Kafka, such a topic is not created rather
/// than created with fewer replicas for good (the first broker of a
/// starting cluster would otherwise keep every copy).
pub(super) fn internal_replication_factor(parts: &Parts, link: &ClusterLink) -> Option<i16> {
    internal_factor_of(parts, link, "")
}

/// The replication factor the internal topic `name` is created with:
/// `transaction.state.log.replication.factor` for `__transaction_state`,
/// `offsets.topic.replication.factor` for the others (at most the number
/// of controller voters); `None` while fewer brokers are live.
fn internal_factor_of(parts: &Parts, link: &ClusterLink, name: &str) -> Option<i16> {
    let voters = parts.config.controller_voters;
    let configured = if name == crate::txn::TXN_TOPIC {
        parts.config.transaction_state_replication_factor
    } else {
        parts.config.offsets_topic_replication_factor
    };
    let wanted = configured.clamp(1, i16::try_from(voters).unwrap_or(i16::MAX));
    let available = link.metadata().unfenced_brokers().len();
    (available >= wanted as usize).then_some(wanted)
}

/// [`internal_replication_factor`], or why a topic the platform creates
/// for itself cannot be created yet.
fn internal_replicas(parts: &Parts, link: &ClusterLink, name: &str) -> Result<i16, ApiError> {
    internal_factor_of(parts, link, name).ok_or_else(|| {
        ApiError::new(
            ResponseError::CoordinatorNotAvailable,
            format!(
                "{name} waits for enough live brokers to be replicated (offsets.topic.replication.factor, transaction.state.log.replication.factor)"
            ),
        )
    })
}

/// `max.partitions` in a cluster, before the command (so that no broker
/// makes a file): the cluster's partition replicas with `adding` more may
/// not pass `max.partitions` times its registered brokers. Internal topics
/// are exempt, as on a single node. Two creations at once may both pass.
fn check_partition_limit(
    max_partitions: usize,
    metadata: &ClusterMetadata,
    name: &str,
    adding: usize,
) -> Result<(), ApiError> {
    if crate::auth::is_internal_topic(name) {
        return Ok(());
    }
    let hosted = metadata
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .map(|p| p.replicas.len())
        .sum();
    let brokers = metadata.brokers.len().max(1);
    let limit = max_partitions.saturating_mul(brokers);
    crate::topic_registry::check_partition_limit(hosted, adding, limit).map_err(|mut e| {
        e.message = format!(
            "{} (partition replicas of the cluster's {brokers} broker(s), max.partitions={max_partitions} each)",
            e.message
        );
        e
    })
}

/// Creates a topic through the quorum (`validate_only`: checks what the
/// broker can check without creating).
async fn create_topic(
    parts: &Parts,
    link: &ClusterLink,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &TopicConfigs,
    validate_only: bool,
) -> Result<Option<Uuid>, ApiError> {
    crate::topic_registry::validate_topic_name(name)
        .map_err(|e| ApiError::new(ResponseError::InvalidTopicException, e))?;
    if !(1..=crate::topic_registry::MAX_PARTITIONS).contains(&partitions) {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("number of partitions must be at least 1, not {partitions}"),
        ));
    }
    let metadata = link.metadata();
    if metadata.topics.contains_key(name) {
        return Err(ApiError::new(
            ResponseError::TopicAlreadyExists,
            format!("topic {name:?} already exists"),
        ));
    }
    check_collision(name, metadata.topics.keys().map(String::as_str))?;
    let available = metadata.unfenced_brokers().len();
    if replication_factor < 1 || replication_factor as usize > available {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {replication_factor} is invalid with {available} available brokers"
            ),
        ));
    }
    let replicas = partitions as usize * replication_factor as usize;
    check_partition_limit(parts.config.max_partitions, &metadata, name, replicas)?;
    if validate_only {
        return Ok(None);
    }
    let command = Command::CreateTopic {
        name: name.to_string(),
        partitions,
        replication_factor,
        configs: configs.overrides().clone(),
    };
    match propose(link, command).await? {
        (offset, CommandOutcome::TopicCreated { topic_id, .. }) => {
            wait_applied(link, offset).await?;
            Ok(Some(topic_id))
        }
        (offset, _) => {
            wait_applied(link, offset).await?;
            Ok(None)
        }
    }
}

/// Deletes a topic through the quorum.
pub(super) async fn delete_topic(link: &ClusterLink, name: &str) -> Result<(), ApiError> {
    let (offset, _) = propose(
        link,
        Command::DeleteTopic {
            name: name.to_string(),
        },
    )
    .await?;
    wait_applied(link, offset).await
}

/// Grows a topic to `total` partitions through the quorum.
async fn add_partitions(
    parts: &Parts,
    link: &ClusterLink,
    name: &str,
    total: i32,
    validate_only: bool,
) -> Result<(), ApiError> {
    let topic = quorum_topic(link, name)?;
    let current = topic.partitions.len() as i32;
    if total <= current || total > crate::topic_registry::MAX_PARTITIONS {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("topic {name:?} has {current} partitions; the new count must be larger"),
        ));
    }
    // New partitions get as many replicas as the first has.
    let factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let adding = (total - current) as usize * factor;
    check_partition_limit(parts.config.max_partitions, &link.metadata(), name, adding)?;
    if validate_only {
        return Ok(());
    }
    let command = Command::CreatePartitions {
        name: name.to_string(),
        total,
    };
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// Replaces a topic's config overrides through the quorum.
pub(super) async fn set_configs(
    link: &ClusterLink,
    name: &str,
    configs: &TopicConfigs,
) -> Result<(), ApiError> {
    let current = quorum_topic(link, name)?.configs;
    let wanted = configs.overrides();
    let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for key in current.keys() {
        if !wanted.contains_key(key) {
            changes.insert(key.clone(), None);
        }
    }
    for (key, value) in wanted {
        if current.get(key) != Some(value) {
            changes.insert(key.clone(), Some(value.clone()));
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    let command = Command::AlterTopicConfigs {
        name: name.to_string(),
        changes,
    };
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// Elects a leader of `topic`-`partition` through the quorum; returns the
/// new leader.
pub(super) async fn elect_leader(
    link: &ClusterLink,
    topic: &str,
    partition: i32,
    election: ElectionType,
) -> Result<BrokerId, ApiError> {
    let command = Command::ElectLeader {
        topic: topic.to_string(),
        partition,
        election,
    };
    let (offset, outcome) = propose(link, command).await?;
    wait_applied(link, offset).await?;
    Ok(match outcome {
        CommandOutcome::Partition(p) => p.leader,
        _ => NO_LEADER,
    })
}

/// Replaces the replica list of `topic`-`partition` through the quorum.
/// The quorum takes the new list at once; new replicas then copy the log
/// and join the ISR, and removed ones delete their copy.
pub(super) async fn reassign(
    link: &ClusterLink,
    topic: &str,
    partition: i32,
    replicas: &[BrokerId],
) -> Result<(), ApiError> {
    // The quorum says UnknownBroker; for a replica list Kafka's answer is
    // INVALID_REPLICA_ASSIGNMENT, so unknown brokers are caught here first.
    let metadata = link.metadata();
    if let Some(b) = replicas.iter().find(|&&b| metadata.broker(b).is_none()) {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            format!("broker {b} is not registered"),
        ));
    }
    let command = Command::ReassignPartition {
        topic: topic.to_string(),
        partition,
        replicas: replicas.to_vec(),
    };
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// Decommissions broker `broker_id`: the quorum fences it and removes its
/// registration. A broker that is still alive is refused: its session
/// would register it again at once.
pub(super) async fn unregister_broker(
    link: &ClusterLink,
    broker_id: BrokerId,
) -> Result<(), ApiError> {
    match link.metadata().broker(broker_id) {
        None => {
            return Err(ApiError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("broker {broker_id} is not registered"),
            ));
        }
        Some(b) if !b.fenced => {
            return Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "broker {broker_id} is alive (unfenced): stop it first, then decommission it"
                ),
            ));
        }
        Some(_) => {}
    }
    let (offset, _) = propose(link, Command::UnregisterBroker { broker_id }).await?;
    wait_applied(link, offset).await
}

/// Creates or replaces a SCRAM credential through the quorum.
pub(super) async fn set_scram_credential(
    link: &ClusterLink,
    user: &str,
    mechanism: ScramMechanism,
    credential: ScramCredential,
) -> Result<(), ApiError> {
    let command = Command::SetScramCredential {
        user: user.to_string(),
        mechanism,
        credential,
    };
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// Removes a SCRAM credential through the quorum.
pub(super) async fn delete_scram_credential(
    link: &ClusterLink,
    user: &str,
    mechanism: ScramMechanism,
) -> Result<(), ApiError> {
    let command = Command::DeleteScramCredential {
        user: user.to_string(),
        mechanism,
    };
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// The topic as the quorum's metadata holds it.
fn quorum_topic(link: &ClusterLink, name: &str) -> Result<fjord_controller::Topic, ApiError> {
    link.metadata()
        .topics
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::unknown_topic(name))
}

async fn propose(link: &ClusterLink, command: Command) -> Result<(u64, CommandOutcome), ApiError> {
    match link.propose(command).await {
        Ok(applied) => match applied.result {
            Ok(outcome) => Ok((applied.offset, outcome)),
            Err(e) => Err(refused(e)),
        },
        Err(ControllerError::Rejected(e)) => Err(refused(e)),
        Err(e) => Err(ApiError::new(
            ResponseError::RequestTimedOut,
            format!("the controller quorum did not take the change: {e}"),
        )),
    }
}

/// Proposes `command` and waits until this broker applied it.
pub(super) async fn propose_and_wait(link: &ClusterLink, command: Command) -> Result<(), ApiError> {
    let (offset, _) = propose(link, command).await?;
    wait_applied(link, offset).await
}

/// Waits until this broker's metadata follower applied `offset`.
async fn wait_applied(link: &ClusterLink, offset: u64) -> Result<(), ApiError> {
    let mut applied = link.applied_offsets();
    match tokio::time::timeout(APPLY_WAIT, applied.wait_for(|a| *a >= offset)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(ApiError::new(
            ResponseError::RequestTimedOut,
            "the change was committed but this broker has not applied it yet",
        )),
    }
}

/// The Kafka error code for a refused command.
fn refused(e: CommandError) -> ApiError {
    let code = match &e {
        CommandError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        CommandError::UnknownTopic(_) | CommandError::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        CommandError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
        CommandError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        CommandError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        CommandError::InvalidConfig { .. } => ResponseError::InvalidConfig,
        CommandError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        CommandError::ElectionNotNeeded(_) => ResponseError::ElectionNotNeeded,
        CommandError::PreferredLeaderNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
        CommandError::EligibleLeadersNotAvailable => ResponseError::EligibleLeadersNotAvailable,
        // Kafka's unclean ElectLeaders ignores the topic config; here the
        // topic must allow it, and the message says so.
        CommandError::UncleanElectionDisabled(_) => ResponseError::EligibleLeadersNotAvailable,
        CommandError::UnknownBroker(_) => ResponseError::BrokerIdNotRegistered,
        CommandError::InvalidAcl(_) => ResponseError::InvalidRequest,
        CommandError::UnknownScramCredential { .. } => ResponseError::ResourceNotFound,
        CommandError::InvalidScramCredential(_) => ResponseError::UnacceptableCredential,
        CommandError::InvalidClientQuota(_) => ResponseError::InvalidRequest,
        _ => ResponseError::InvalidRequest,
    };
    ApiError::new(code, e.to_string())
}

/// Creates `topic` through the quorum: the request's defaults filled in
/// from the broker's config, the platform's own topics replicated as the
/// offsets topic is ([`internal_replicas`]).
pub(super) async fn create(
    parts: &Parts,
    link: &ClusterLink,
    topic: NewTopic,
    validate_only: bool,
) -> Result<CreatedTopic, ApiError> {
    if !topic.assignments.is_empty() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "replica assignments are not supported yet: give partitions and a replication factor",
        ));
    }
    let partitions = topic.partitions.unwrap_or(parts.config.num_partitions);
    let replication_factor = match topic.replication {
        Replication::Default => parts.config.default_replication_factor,
        Replication::Factor(n) => n,
        Replication::Internal => internal_replicas(parts, link, &topic.name)?,
    };
    let configs = parse_configs(&topic.configs)?;
    let id = create_topic(
        parts,
        link,
        &topic.name,
        partitions,
        replication_factor,
        &configs,
        validate_only,
    )
    .await?;
    Ok(CreatedTopic {
        partitions,
        replication_factor,
        configs,
        id,
        topic: (!validate_only)
            .then(|| parts.registry.get(&topic.name))
            .flatten(),
    })
}

/// Grows a topic to `total` partitions through the quorum; explicit
/// replica lists are not taken yet.
pub(super) async fn create_partitions(
    parts: &Parts,
    link: &ClusterLink,
    name: &str,
    total: i32,
    assignments: Option<Vec<Vec<i32>>>,
    validate_only: bool,
) -> Result<(), ApiError> {
    if assignments.is_some() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "replica assignments are not supported yet",
        ));
    }
    add_partitions(parts, link, name, total, validate_only).await
}

/// The partitions a request without a list means: for a preferred
/// election those whose leader is not the first replica, for an unclean one
/// those without a live leader.
pub(super) fn needing_election(
    link: &ClusterLink,
    election: ElectionType,
) -> Vec<(String, Vec<i32>)> {
    let metadata = link.metadata();
    metadata
        .topics
        .values()
        .filter_map(|topic| {
            let partitions: Vec<i32> = topic
                .partitions
                .iter()
                .enumerate()
                .filter(|(_, p)| match election {
                    ElectionType::Preferred => p.replicas.first() != Some(&p.leader),
                    ElectionType::Clean | ElectionType::Unclean => {
                        p.leader == NO_LEADER || !metadata.is_unfenced(p.leader)
                    }
                })
                .map(|(index, _)| index as i32)
                .collect();
            (!partitions.is_empty()).then(|| (topic.name.clone(), partitions))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use fjord_controller::{BrokerRegistration, PartitionState, Topic};

    use super::*;

    /// Two brokers and a topic of 3 partitions with 2 replicas each.
    fn metadata() -> ClusterMetadata {
        let mut metadata = ClusterMetadata::default();
        for id in [1, 2] {
            metadata.brokers.insert(
                id,
                BrokerRegistration {
                    id,
                    host: "h".into(),
                    port: 1,
                    rack: None,
                    epoch: 1,
                    fenced: false,
                },
            );
        }
        let partition = PartitionState {
            replicas: vec![1, 2],
            leader: 1,
            leader_epoch: 0,
            isr: vec![1, 2],
            partition_epoch: 0,
        };
        metadata.topics.insert(
            "t".into(),
            Topic {
                name: "t".into(),
                id: Uuid::nil(),
                configs: BTreeMap::new(),
                partitions: vec![partition; 3],
            },
        );
        metadata
    }

    /// The cluster holds 6 replicas; with max.partitions 5 and two
    /// brokers, 4 more fit and 5 do not.
    #[test]
    fn the_cluster_counts_replicas_against_the_limit_times_its_brokers() {
        let metadata = metadata();
        assert!(check_partition_limit(5, &metadata, "u", 4).is_ok());
        let refused = check_partition_limit(5, &metadata, "u", 5).err();
        assert!(
            refused.is_some_and(|e| e.code == ResponseError::PolicyViolation.code()
                && e.message.contains("max.partitions=5"))
        );
        assert!(check_partition_limit(5, &metadata, "__consumer_offsets", 100).is_ok());
    }
}
