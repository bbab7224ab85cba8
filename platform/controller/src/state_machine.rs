//! The deterministic state machine: [`ClusterMetadata::apply`] validates one
//! command and, only if it is valid, applies all of its effects.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::commands::{AppliedResult, Command, CommandError, CommandOutcome, ElectionType};
use crate::model::{
    BrokerId, BrokerListener, BrokerRegistration, ClusterMetadata, MAX_BROKER_LISTENERS, NO_LEADER,
    PartitionState, Pipeline, QuotaEntity, QuotaValue, ScramCredential, ScramMechanism, Topic,
    UNCLEAN_LEADER_ELECTION, check_client_quota, check_ip_quota,
};
use crate::placement::assign_replicas;

const MAX_TOPIC_NAME_LEN: usize = 249;

type Outcome = Result<CommandOutcome, CommandError>;

impl ClusterMetadata {
    /// Apply the command committed at `offset`. The offset always advances;
    /// the rest of the state changes only when the command is accepted.
    pub fn apply(&mut self, offset: u64, command: &Command) -> AppliedResult {
        self.offset = self.offset.max(offset);
        let result = match command {
            Command::RegisterBroker {
                broker_id,
                host,
                port,
                rack,
            } => {
                let outcome = self.register_broker(offset, *broker_id, host, *port, rack);
                if outcome.is_ok() {
                    // Registered again by a broker that does not name its
                    // listeners: those it named before may be gone.
                    self.broker_listeners.remove(broker_id);
                }
                outcome
            }
            Command::RegisterBrokerListeners {
                broker_id,
                host,
                port,
                rack,
                listeners,
            } => self.register_broker_listeners(offset, *broker_id, host, *port, rack, listeners),
            Command::UnregisterBroker { broker_id } => self.unregister_broker(*broker_id),
            Command::FenceBroker {
                broker_id,
                broker_epoch,
            } => self.set_fenced(*broker_id, *broker_epoch, true),
            Command::UnfenceBroker {
                broker_id,
                broker_epoch,
            } => self.set_fenced(*broker_id, *broker_epoch, false),
            Command::CreateTopic {
                name,
                partitions,
                replication_factor,
                configs,
            } => self.create_topic(offset, name, *partitions, *replication_factor, configs),
            Command::DeleteTopic { name } => match self.topics.remove(name) {
                Some(_) => Ok(CommandOutcome::Done),
                None => Err(CommandError::UnknownTopic(name.clone())),
            },
            Command::AlterTopicConfigs { name, changes } => self.alter_configs(name, changes),
            Command::CreatePartitions { name, total } => self.create_partitions(name, *total),
            Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(
                topic,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            Command::ElectLeader {
                topic,
                partition,
                election,
            } => self.elect_leader(topic, *partition, *election),
            Command::ReassignPartition {
                topic,
                partition,
                replicas,
            } => self.reassign(topic, *partition, replicas),
            Command::UpsertPipeline { name, manifest } => self.upsert_pipeline(name, manifest),
            Command::DeletePipeline { name } => match self.pipelines.remove(name) {
                Some(_) => Ok(CommandOutcome::Done),
                None => Err(CommandError::UnknownPipeline(name.clone())),
            },
            Command::SetPipelinePaused { name, paused } => match self.pipelines.get_mut(name) {
                Some(p) => {
                    p.paused = *paused;
                    Ok(CommandOutcome::Done)
                }
                None => Err(CommandError::UnknownPipeline(name.clone())),
            },
            Command::SetInternalSecret { secret } => {
                if secret.expose().is_empty() {
                    Err(CommandError::EmptyInternalSecret)
                } else {
                    self.internal_secret.get_or_insert_with(|| secret.clone());
                    Ok(CommandOutcome::Done)
                }
            }
            Command::CreateAcls { acls } => {
                if let Some(bad) = acls.iter().find(|a| {
                    a.resource_name.is_empty() || a.principal.is_empty() || a.host.is_empty()
                }) {
                    Err(CommandError::InvalidAcl(format!("{bad:?}")))
                } else {
                    self.acls.extend(acls.iter().cloned());
                    Ok(CommandOutcome::Done)
                }
            }
            Command::DeleteAcls { acls } => {
                for acl in acls {
                    self.acls.remove(acl);
                }
                Ok(CommandOutcome::Done)
            }
            Command::SetScramCredential {
                user,
                mechanism,
                credential,
            } => self.set_scram_credential(user, *mechanism, credential),
            Command::DeleteScramCredential { user, mechanism } => {
                self.delete_scram_credential(user, *mechanism)
            }
            Command::AlterClientQuotas { entity, changes } => {
                self.alter_client_quotas(entity, changes)
            }
            Command::AlterIpQuotas { ip, changes } => self.alter_ip_quotas(ip, changes),
            Command::AlterBrokerConfigs {
                resource,
                changes,
                replace,
            } => self.alter_broker_configs(resource, changes, *replace),
            Command::AlterGroupConfigs {
                group,
                changes,
                replace,
            } => self.alter_group_configs(group, changes, *replace),
        };
        AppliedResult { offset, result }
    }

    fn set_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        credential: &ScramCredential,
    ) -> Outcome {
        if user.is_empty() {
            return Err(CommandError::InvalidScramCredential(
                "the user name is empty".into(),
            ));
        }
        credential
            .check(mechanism)
            .map_err(CommandError::InvalidScramCredential)?;
        self.scram_credentials
            .entry(user.to_string())
            .or_default()
            .insert(mechanism, credential.clone());
        Ok(CommandOutcome::Done)
    }

    fn alter_broker_configs(
        &mut self,
        resource: &str,
        changes: &BTreeMap<String, Option<String>>,
        replace: bool,
    ) -> Outcome {
        if !resource.is_empty() && resource.parse::<u32>().is_err() {
            return Err(CommandError::InvalidConfig {
                key: resource.to_string(),
                reason: "a broker config resource is \"\" or a broker id".into(),
            });
        }
        for key in changes.keys() {
            validate_config(key, None)?;
        }
        let values = self.broker_configs.entry(resource.to_string()).or_default();
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
            self.broker_configs.remove(resource);
        }
        Ok(CommandOutcome::Done)
    }

    fn alter_group_configs(
        &mut self,
        group: &str,
        changes: &BTreeMap<String, Option<String>>,
        replace: bool,
    ) -> Outcome {
        if group.is_empty() {
            return Err(CommandError::InvalidConfig {
                key: group.to_string(),
                reason: "a group config resource names a group".into(),
            });
        }
        if let Some(key) = changes
            .keys()
            .find(|k| !crate::model::GROUP_CONFIG_KEYS.contains(&k.as_str()))
        {
            return Err(CommandError::InvalidConfig {
                key: key.clone(),
                reason: "not a group config".into(),
            });
        }
        let values = self.group_configs.entry(group.to_string()).or_default();
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
            self.group_configs.remove(group);
        }
        Ok(CommandOutcome::Done)
    }

    fn alter_client_quotas(
        &mut self,
        entity: &QuotaEntity,
        changes: &BTreeMap<String, Option<QuotaValue>>,
    ) -> Outcome {
        if entity.user.is_none() && entity.client_id.is_none() {
            return Err(CommandError::InvalidClientQuota(
                "Invalid empty client quota entity".into(),
            ));
        }
        for (key, value) in changes {
            match value {
                Some(v) => check_client_quota(key, v.0),
                None => check_client_quota(key, 1.0),
            }
            .map_err(CommandError::InvalidClientQuota)?;
        }
        let values = self.client_quotas.entry(entity.clone()).or_default();
        for (key, value) in changes {
            match value {
                Some(v) => values.insert(key.clone(), *v),
                None => values.remove(key),
            };
        }
        if values.is_empty() {
            self.client_quotas.remove(entity);
        }
        Ok(CommandOutcome::Done)
    }

    fn alter_ip_quotas(
        &mut self,
        ip: &Option<String>,
        changes: &BTreeMap<String, Option<QuotaValue>>,
    ) -> Outcome {
        for (key, value) in changes {
            check_ip_quota(ip.as_deref(), key, value.map_or(1.0, |v| v.0))
                .map_err(CommandError::InvalidClientQuota)?;
        }
        let values = self.ip_quotas.entry(ip.clone()).or_default();
        for (key, value) in changes {
            match value {
                Some(v) => values.insert(key.clone(), *v),
                None => values.remove(key),
            };
        }
        if values.is_empty() {
            self.ip_quotas.remove(ip);
        }
        Ok(CommandOutcome::Done)
    }

    fn delete_scram_credential(&mut self, user: &str, mechanism: ScramMechanism) -> Outcome {
        let unknown = || CommandError::UnknownScramCredential {
            user: user.to_string(),
            mechanism,
        };
        let credentials = self.scram_credentials.get_mut(user).ok_or_else(unknown)?;
        credentials.remove(&mechanism).ok_or_else(unknown)?;
        if credentials.is_empty() {
            self.scram_credentials.remove(user);
        }
        Ok(CommandOutcome::Done)
    }

    fn register_broker(
        &mut self,
        offset: u64,
        id: BrokerId,
        host: &str,
        port: u16,
        rack: &Option<String>,
    ) -> Outcome {
        if id < 0 {
            return Err(CommandError::InvalidBrokerId(id));
        }
        if host.is_empty() || port == 0 {
            return Err(CommandError::InvalidBrokerAddress(format!("{host}:{port}")));
        }
        let epoch = i64::try_from(offset).unwrap_or(i64::MAX);
        self.brokers.insert(
            id,
            BrokerRegistration {
                id,
                host: host.to_string(),
                port,
                rack: rack.clone(),
                epoch,
                fenced: false,
            },
        );
        Ok(CommandOutcome::BrokerRegistered {
            broker_epoch: epoch,
        })
    }

    fn register_broker_listeners(
        &mut self,
        offset: u64,
        id: BrokerId,
        host: &str,
        port: u16,
        rack: &Option<String>,
        listeners: &[BrokerListener],
    ) -> Outcome {
        if listeners.is_empty() || listeners.len() > MAX_BROKER_LISTENERS {
            return Err(CommandError::InvalidBrokerAddress(format!(
                "{} listeners (1 to {MAX_BROKER_LISTENERS})",
                listeners.len()
            )));
        }
        for (i, l) in listeners.iter().enumerate() {
            if l.name.is_empty() || l.host.is_empty() || l.port == 0 {
                return Err(CommandError::InvalidBrokerAddress(format!(
                    "listener {:?} at {}:{}",
                    l.name, l.host, l.port
                )));
            }
            if listeners[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&l.name))
            {
                return Err(CommandError::InvalidBrokerAddress(format!(
                    "listener {} is listed twice",
                    l.name
                )));
            }
        }
        let outcome = self.register_broker(offset, id, host, port, rack)?;
        self.broker_listeners.insert(id, listeners.to_vec());
        Ok(outcome)
    }

    fn unregister_broker(&mut self, id: BrokerId) -> Outcome {
        if !self.brokers.contains_key(&id) {
            return Err(CommandError::UnknownBroker(id));
        }
        self.fence_effects(id);
        self.brokers.remove(&id);
        self.broker_listeners.remove(&id);
        Ok(CommandOutcome::Done)
    }

    fn set_fenced(&mut self, id: BrokerId, epoch: i64, fenced: bool) -> Outcome {
        let broker = self
            .brokers
            .get(&id)
            .ok_or(CommandError::UnknownBroker(id))?;
        if broker.epoch != epoch {
            return Err(CommandError::StaleBrokerEpoch {
                broker_id: id,
                got: epoch,
                current: broker.epoch,
            });
        }
        if broker.fenced == fenced {
            return Err(CommandError::BrokerAlreadyInState {
                broker_id: id,
                fenced,
            });
        }
        if fenced {
            self.fence_effects(id);
        }
        if let Some(b) = self.brokers.get_mut(&id) {
            b.fenced = fenced;
        }
        if !fenced {
            self.unfence_effects(id);
        }
        Ok(CommandOutcome::Done)
    }

    /// Move leadership away from `id` and drop it from ISRs. A partition it
    /// leads gets the first other unfenced ISR member (replica order) as
    /// leader; with none, an unclean leader if the topic allows it, else no
    /// leader. If `id` was the last ISR member, the ISR stays `[id]`.
    fn fence_effects(&mut self, id: BrokerId) {
        let unfenced: Vec<BrokerId> = self
            .unfenced_brokers()
            .into_iter()
            .filter(|b| *b != id)
            .collect();
        for topic in self.topics.values_mut() {
            let unclean = topic.unclean_election_enabled();
            for p in &mut topic.partitions {
                if !p.isr.contains(&id) && p.leader != id {
                    continue;
                }
                let remaining: Vec<BrokerId> = p.isr.iter().copied().filter(|b| *b != id).collect();
                if p.leader == id {
                    let clean = p
                        .replicas
                        .iter()
                        .copied()
                        .find(|r| remaining.contains(r) && unfenced.contains(r));
                    match clean {
                        Some(leader) => {
                            p.leader = leader;
                            p.isr = remaining;
                        }
                        None => {
                            let unclean_leader = if unclean {
                                p.replicas
                                    .iter()
                                    .copied()
                                    .find(|r| *r != id && unfenced.contains(r))
                            } else {
                                None
                            };
                            match unclean_leader {
                                Some(leader) => {
                                    p.leader = leader;
                                    p.isr = vec![leader];
                                }
                                None => {
                                    p.leader = NO_LEADER;
                                    if !remaining.is_empty() {
                                        p.isr = remaining;
                                    }
                                }
                            }
                        }
                    }
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                } else if !remaining.is_empty() {
                    p.isr = remaining;
                    p.partition_epoch += 1;
                }
            }
        }
    }

    /// Partitions without a leader whose ISR contains `id` get `id` back as
    /// leader (it has every committed record).
    fn unfence_effects(&mut self, id: BrokerId) {
        for topic in self.topics.values_mut() {
            for p in &mut topic.partitions {
                if p.leader == NO_LEADER && p.isr.contains(&id) {
                    p.leader = id;
                    p.leader_epoch += 1;
                    p.partition_epoch += 1;
                }
            }
        }
    }

    fn create_topic(
        &mut self,
        offset: u64,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Outcome {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(CommandError::TopicAlreadyExists(name.to_string()));
        }
        if partitions < 1 {
            return Err(CommandError::InvalidPartitions(partitions));
        }
        for (key, value) in configs {
            validate_config(key, Some(value))?;
        }
        let brokers = self.unfenced_brokers();
        let rf = i32::from(replication_factor);
        if rf < 1 || rf as usize > brokers.len() {
            return Err(CommandError::InvalidReplicationFactor {
                requested: rf,
                available: brokers.len(),
            });
        }
        let assignment = assign_replicas(
            &brokers,
            0,
            partitions as usize,
            rf as usize,
            self.placement_cursor,
        );
        self.placement_cursor += 1;
        let parts: Vec<PartitionState> = assignment.into_iter().map(PartitionState::new).collect();
        let id = topic_id(offset, name);
        self.topics.insert(
            name.to_string(),
            Topic {
                name: name.to_string(),
                id,
                configs: configs.clone(),
                partitions: parts.clone(),
            },
        );
        Ok(CommandOutcome::TopicCreated {
            topic_id: id,
            partitions: parts,
        })
    }

    fn alter_configs(&mut self, name: &str, changes: &BTreeMap<String, Option<String>>) -> Outcome {
        let topic = self
            .topics
            .get_mut(name)
            .ok_or_else(|| CommandError::UnknownTopic(name.to_string()))?;
        for (key, value) in changes {
            validate_config(key, value.as_deref())?;
        }
        for (key, value) in changes {
            match value {
                Some(v) => topic.configs.insert(key.clone(), v.clone()),
                None => topic.configs.remove(key),
            };
        }
        Ok(CommandOutcome::Done)
    }

    fn create_partitions(&mut self, name: &str, total: i32) -> Outcome {
        let brokers = self.unfenced_brokers();
        let topic = self
            .topics
            .get_mut(name)
            .ok_or_else(|| CommandError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len();
        if total < 1 || (total as usize) <= current {
            return Err(CommandError::InvalidPartitions(total));
        }
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
        if rf > brokers.len() {
            return Err(CommandError::InvalidReplicationFactor {
                requested: rf as i32,
                available: brokers.len(),
            });
        }
        let assignment = assign_replicas(
            &brokers,
            current,
            total as usize - current,
            rf,
            self.placement_cursor,
        );
        self.placement_cursor += 1;
        topic
            .partitions
            .extend(assignment.into_iter().map(PartitionState::new));
        Ok(CommandOutcome::Done)
    }

    fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Result<(&mut PartitionState, bool), CommandError> {
        let t = self
            .topics
            .get_mut(topic)
            .ok_or_else(|| CommandError::UnknownTopic(topic.to_string()))?;
        let unclean = t.unclean_election_enabled();
        let unknown = || CommandError::UnknownPartition {
            topic: topic.to_string(),
            partition,
        };
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        let p = t.partitions.get_mut(index).ok_or_else(unknown)?;
        Ok((p, unclean))
    }

    fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[BrokerId],
    ) -> Outcome {
        let unfenced = self.unfenced_brokers();
        let (p, _) = self.partition_mut(topic, partition)?;
        if p.leader != leader {
            return Err(CommandError::NotLeaderForPartition {
                leader: p.leader,
                got: leader,
            });
        }
        if p.leader_epoch != leader_epoch {
            return Err(CommandError::FencedLeaderEpoch {
                current: p.leader_epoch,
                got: leader_epoch,
            });
        }
        if p.partition_epoch != partition_epoch {
            return Err(CommandError::InvalidUpdateVersion {
                current: p.partition_epoch,
                got: partition_epoch,
            });
        }
        if !isr.contains(&leader) {
            return Err(CommandError::InvalidIsr(format!(
                "{isr:?} does not contain the leader {leader}"
            )));
        }
        if has_duplicates(isr) {
            return Err(CommandError::InvalidIsr(format!("{isr:?} has duplicates")));
        }
        if let Some(b) = isr.iter().find(|b| !p.replicas.contains(b)) {
            return Err(CommandError::InvalidIsr(format!("{b} is not a replica")));
        }
        if let Some(b) = isr.iter().find(|b| !unfenced.contains(b)) {
            return Err(CommandError::InvalidIsr(format!(
                "broker {b} is fenced or not registered"
            )));
        }
        p.isr = isr.to_vec();
        p.partition_epoch += 1;
        Ok(CommandOutcome::Partition(p.clone()))
    }

    fn elect_leader(&mut self, topic: &str, partition: i32, election: ElectionType) -> Outcome {
        let unfenced = self.unfenced_brokers();
        let (p, unclean_allowed) = self.partition_mut(topic, partition)?;
        let in_sync_unfenced = |b: &BrokerId| p.isr.contains(b) && unfenced.contains(b);
        let (leader, isr) = match election {
            ElectionType::Preferred => {
                let preferred = p.replicas.first().copied().unwrap_or(NO_LEADER);
                if p.leader == preferred {
                    return Err(CommandError::ElectionNotNeeded(preferred));
                }
                if !in_sync_unfenced(&preferred) {
                    return Err(CommandError::PreferredLeaderNotAvailable(preferred));
                }
                (preferred, p.isr.clone())
            }
            ElectionType::Clean | ElectionType::Unclean => {
                if p.leader != NO_LEADER && unfenced.contains(&p.leader) {
                    return Err(CommandError::ElectionNotNeeded(p.leader));
                }
                match p.replicas.iter().copied().find(|r| in_sync_unfenced(r)) {
                    Some(leader) => (leader, p.isr.clone()),
                    None if election == ElectionType::Clean => {
                        return Err(CommandError::EligibleLeadersNotAvailable);
                    }
                    None => {
                        if !unclean_allowed {
                            return Err(CommandError::UncleanElectionDisabled(topic.to_string()));
                        }
                        let leader = p
                            .replicas
                            .iter()
                            .copied()
                            .find(|r| unfenced.contains(r))
                            .ok_or(CommandError::EligibleLeadersNotAvailable)?;
                        (leader, vec![leader])
                    }
                }
            }
        };
        p.leader = leader;
        p.isr = isr;
        p.leader_epoch += 1;
        p.partition_epoch += 1;
        Ok(CommandOutcome::Partition(p.clone()))
    }

    fn upsert_pipeline(&mut self, name: &str, manifest: &str) -> Outcome {
        validate_pipeline_name(name)?;
        let paused = self.pipelines.get(name).is_some_and(|p| p.paused);
        self.pipelines.insert(
            name.to_string(),
            Pipeline {
                name: name.to_string(),
                manifest: manifest.to_string(),
                paused,
            },
        );
        Ok(CommandOutcome::Done)
    }

    fn reassign(&mut self, topic: &str, partition: i32, replicas: &[BrokerId]) -> Outcome {
        if replicas.is_empty() {
            return Err(CommandError::InvalidReplicaAssignment(
                "empty replica list".into(),
            ));
        }
        if has_duplicates(replicas) {
            return Err(CommandError::InvalidReplicaAssignment(format!(
                "{replicas:?} has duplicates"
            )));
        }
        if let Some(b) = replicas.iter().find(|b| !self.brokers.contains_key(b)) {
            return Err(CommandError::UnknownBroker(*b));
        }
        let unfenced = self.unfenced_brokers();
        let (p, _) = self.partition_mut(topic, partition)?;
        let isr: Vec<BrokerId> = p
            .isr
            .iter()
            .copied()
            .filter(|b| replicas.contains(b))
            .collect();
        if isr.is_empty() {
            return Err(CommandError::InvalidReplicaAssignment(format!(
                "none of {replicas:?} is in the ISR {:?}",
                p.isr
            )));
        }
        let leader = if isr.contains(&p.leader) {
            p.leader
        } else {
            replicas
                .iter()
                .copied()
                .find(|r| isr.contains(r) && unfenced.contains(r))
                .unwrap_or(NO_LEADER)
        };
        if leader != p.leader {
            p.leader_epoch += 1;
        }
        p.leader = leader;
        p.isr = isr;
        p.replicas = replicas.to_vec();
        p.partition_epoch += 1;
        Ok(CommandOutcome::Partition(p.clone()))
    }
}

fn has_duplicates(ids: &[BrokerId]) -> bool {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// A topic id unique within the cluster: a hash of the name and the offset of
/// the creating entry (offsets never repeat), as a version-8 UUID.
fn topic_id(offset: u64, name: &str) -> Uuid {
    // FNV-1a: stable across platforms and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hash.to_be_bytes());
    bytes[8..].copy_from_slice(&offset.to_be_bytes());
    Uuid::new_v8(bytes)
}

fn validate_topic_name(name: &str) -> Result<(), CommandError> {
    let invalid = |reason: &str| CommandError::InvalidTopicName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not allowed"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(invalid("longer than 249 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    Ok(())
}

fn validate_pipeline_name(name: &str) -> Result<(), CommandError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CommandError::InvalidPipelineName(name.to_string()))
    }
}

fn validate_config(key: &str, value: Option<&str>) -> Result<(), CommandError> {
    if key.is_empty() {
        return Err(CommandError::InvalidConfig {
            key: key.to_string(),
            reason: "empty key".into(),
        });
    }
    if key == UNCLEAN_LEADER_ELECTION
        && let Some(v) = value
        && !v.eq_ignore_ascii_case("true")
        && !v.eq_ignore_ascii_case("false")
    {
        return Err(CommandError::InvalidConfig {
            key: key.to_string(),
            reason: format!("'{v}' is not true or false"),
        });
    }
    Ok(())
}
