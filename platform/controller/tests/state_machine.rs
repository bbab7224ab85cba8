//! The metadata state machine on its own: validation, fencing, elections, and
//! a proptest over random command sequences.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use std::collections::BTreeMap;

use fjord_controller::{
    Acl, BrokerListener, ClusterMetadata, Command, CommandError, CommandOutcome, ElectionType,
    GROUP_CONFIG_KEYS, InternalSecret, NO_LEADER, QuotaEntity, QuotaValue, ScramCredential,
    ScramMechanism,
};
use proptest::prelude::*;

struct Log {
    md: ClusterMetadata,
    next: u64,
}

impl Log {
    fn new() -> Self {
        Log {
            md: ClusterMetadata::default(),
            next: 1,
        }
    }

    fn apply(&mut self, cmd: Command) -> Result<CommandOutcome, CommandError> {
        let offset = self.next;
        self.next += 1;
        let r = self.md.apply(offset, &cmd);
        assert_eq!(r.offset, offset);
        r.result
    }

    fn register(&mut self, id: i32) -> i64 {
        match self.apply(Command::RegisterBroker {
            broker_id: id,
            host: "localhost".into(),
            port: 9000 + id as u16,
            rack: None,
        }) {
            Ok(CommandOutcome::BrokerRegistered { broker_epoch }) => broker_epoch,
            other => panic!("register {id}: {other:?}"),
        }
    }

    fn create(&mut self, name: &str, partitions: i32, rf: i16, unclean: bool) {
        let mut configs = BTreeMap::new();
        if unclean {
            configs.insert(
                "unclean.leader.election.enable".to_string(),
                "true".to_string(),
            );
        }
        self.apply(Command::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            configs,
        })
        .unwrap();
    }

    fn fence(&mut self, id: i32) -> Result<CommandOutcome, CommandError> {
        let epoch = self.md.brokers[&id].epoch;
        self.apply(Command::FenceBroker {
            broker_id: id,
            broker_epoch: epoch,
        })
    }
}

fn listener(name: &str, host: &str, port: u16) -> BrokerListener {
    BrokerListener {
        name: name.into(),
        host: host.into(),
        port,
        security_protocol: name.into(),
    }
}

/// A broker registers every listener; clients of a listener find the
/// others at that listener, a broker without it nowhere, and one that
/// registered the old way at its one address.
#[test]
fn brokers_register_every_listener() {
    let mut log = Log::new();
    let registered = log.apply(Command::RegisterBrokerListeners {
        broker_id: 1,
        host: "10.0.0.1".into(),
        port: 9092,
        rack: None,
        listeners: vec![
            listener("INTERNAL", "10.0.0.1", 9092),
            listener("SASL_SSL", "broker-1.example", 9093),
        ],
    });
    assert!(matches!(
        registered,
        Ok(CommandOutcome::BrokerRegistered { .. })
    ));
    assert_eq!(
        log.md.broker_endpoint(1, "sasl_ssl"),
        Some(("broker-1.example", 9093))
    );
    assert_eq!(
        log.md.broker_endpoint(1, "INTERNAL"),
        Some(("10.0.0.1", 9092))
    );
    assert_eq!(log.md.broker_endpoint(1, "PLAINTEXT"), None);
    assert_eq!(
        (log.md.brokers[&1].host.as_str(), log.md.brokers[&1].port),
        ("10.0.0.1", 9092)
    );
    // The old command: one address, whatever the listener.
    log.register(2);
    assert_eq!(
        log.md.broker_endpoint(2, "SASL_SSL"),
        Some(("localhost", 9002))
    );
    // Registering again the old way forgets the listeners named before.
    log.register(1);
    assert_eq!(
        log.md.broker_endpoint(1, "SASL_SSL"),
        Some(("localhost", 9001))
    );
    // Bad lists change nothing.
    let before = log.md.clone();
    for listeners in [
        vec![],
        vec![listener("A", "h", 1), listener("a", "h", 2)],
        vec![listener("A", "", 1)],
        vec![listener("A", "h", 0)],
        (0..65)
            .map(|i| listener(&format!("L{i}"), "h", 1))
            .collect(),
    ] {
        let refused = log.apply(Command::RegisterBrokerListeners {
            broker_id: 3,
            host: "h".into(),
            port: 1,
            rack: None,
            listeners,
        });
        assert!(
            matches!(refused, Err(CommandError::InvalidBrokerAddress(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        ClusterMetadata {
            offset: before.offset,
            ..log.md.clone()
        },
        before
    );
    log.apply(Command::UnregisterBroker { broker_id: 1 })
        .unwrap();
    assert!(log.md.broker_listeners.is_empty());
}

#[test]
fn create_topic_assigns_round_robin_and_rejects_rf_above_live_brokers() {
    let mut log = Log::new();
    for id in 1..=3 {
        log.register(id);
    }
    log.create("a", 6, 2, false);
    let topic = &log.md.topics["a"];
    let leaders: Vec<i32> = topic.partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders, vec![1, 2, 3, 1, 2, 3]);
    for p in &topic.partitions {
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.replicas.len(), 2);
        assert_ne!(p.replicas[0], p.replicas[1]);
    }
    // The start rotates for the next topic.
    log.create("b", 1, 1, false);
    assert_eq!(log.md.topics["b"].partitions[0].leader, 2);

    log.fence(3).unwrap();
    let before = log.md.clone();
    let err = log
        .apply(Command::CreateTopic {
            name: "c".into(),
            partitions: 1,
            replication_factor: 3,
            configs: BTreeMap::new(),
        })
        .unwrap_err();
    assert_eq!(
        err,
        CommandError::InvalidReplicationFactor {
            requested: 3,
            available: 2
        }
    );
    // Rejected: nothing but the offset changed.
    assert_eq!(
        ClusterMetadata {
            offset: before.offset,
            ..log.md.clone()
        },
        before
    );
    for bad in ["", ".", "..", "a/b", &"x".repeat(250)] {
        assert!(matches!(
            log.apply(Command::CreateTopic {
                name: bad.into(),
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new()
            }),
            Err(CommandError::InvalidTopicName { .. })
        ));
    }
    assert_eq!(
        log.apply(Command::CreateTopic {
            name: "a".into(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new()
        }),
        Err(CommandError::TopicAlreadyExists("a".into()))
    );
}

#[test]
fn topic_ids_differ_after_recreate() {
    let mut log = Log::new();
    log.register(1);
    log.create("t", 1, 1, false);
    let first = log.md.topics["t"].id;
    log.apply(Command::DeleteTopic { name: "t".into() })
        .unwrap();
    log.create("t", 1, 1, false);
    assert_ne!(first, log.md.topics["t"].id);
    assert!(!first.is_nil());
}

#[test]
fn fencing_moves_leadership_within_the_isr() {
    let mut log = Log::new();
    for id in 1..=3 {
        log.register(id);
    }
    log.create("t", 3, 3, false);
    let p0 = log.md.topics["t"].partitions[0].clone();
    assert_eq!(p0.leader, 1);
    log.fence(1).unwrap();
    let t = &log.md.topics["t"];
    for p in &t.partitions {
        assert_ne!(p.leader, 1);
        assert!(!p.isr.contains(&1));
        assert!(p.isr.contains(&p.leader));
    }
    let p0b = &t.partitions[0];
    assert_eq!(p0b.leader, p0.replicas[1]);
    assert_eq!(p0b.leader_epoch, p0.leader_epoch + 1);
    assert_eq!(p0b.partition_epoch, p0.partition_epoch + 1);
    // A follower-only partition keeps its leader epoch.
    let p1 = &t.partitions[1];
    assert_eq!(p1.leader_epoch, 0);
    assert_eq!(p1.partition_epoch, 1);

    // Fencing twice is rejected; a stale epoch is rejected.
    assert!(matches!(
        log.fence(1),
        Err(CommandError::BrokerAlreadyInState { .. })
    ));
    assert!(matches!(
        log.apply(Command::UnfenceBroker {
            broker_id: 2,
            broker_epoch: 999
        }),
        Err(CommandError::StaleBrokerEpoch { .. })
    ));
}

#[test]
fn last_isr_member_fenced_leaves_partition_offline_until_it_returns() {
    let mut log = Log::new();
    log.register(1);
    let e2 = log.register(2);
    log.create("t", 1, 2, false);
    // Leader 1 shrinks the ISR to itself.
    log.apply(Command::AlterPartition {
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        isr: vec![1],
    })
    .unwrap();
    log.fence(1).unwrap();
    let p = &log.md.topics["t"].partitions[0];
    assert_eq!(p.leader, NO_LEADER);
    assert_eq!(p.isr, vec![1]);
    assert_eq!(p.leader_epoch, 1);

    // Broker 2 is out of sync: a clean election fails, unclean is disabled.
    assert_eq!(
        log.apply(Command::ElectLeader {
            topic: "t".into(),
            partition: 0,
            election: ElectionType::Clean
        }),
        Err(CommandError::EligibleLeadersNotAvailable)
    );
    assert_eq!(
        log.apply(Command::ElectLeader {
            topic: "t".into(),
            partition: 0,
            election: ElectionType::Unclean
        }),
        Err(CommandError::UncleanElectionDisabled("t".into()))
    );
    let _ = e2;
    // Broker 1 comes back: it leads again.
    let e1 = log.md.brokers[&1].epoch;
    log.apply(Command::UnfenceBroker {
        broker_id: 1,
        broker_epoch: e1,
    })
    .unwrap();
    let p = &log.md.topics["t"].partitions[0];
    assert_eq!(p.leader, 1);
    assert_eq!(p.leader_epoch, 2);
}

#[test]
fn unclean_election_only_when_configured() {
    for unclean in [false, true] {
        let mut log = Log::new();
        log.register(1);
        log.register(2);
        log.create("t", 1, 2, unclean);
        log.apply(Command::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1],
        })
        .unwrap();
        log.fence(1).unwrap();
        let p = &log.md.topics["t"].partitions[0];
        if unclean {
            // Fencing elects the out-of-sync replica right away.
            assert_eq!(p.leader, 2);
            assert_eq!(p.isr, vec![2]);
        } else {
            assert_eq!(p.leader, NO_LEADER);
            assert_eq!(p.isr, vec![1]);
        }
    }
}

#[test]
fn alter_partition_checks_epochs_and_isr() {
    let mut log = Log::new();
    for id in 1..=3 {
        log.register(id);
    }
    log.create("t", 1, 3, false);
    let alter = |leader, leader_epoch, partition_epoch, isr: Vec<i32>| Command::AlterPartition {
        topic: "t".into(),
        partition: 0,
        leader,
        leader_epoch,
        partition_epoch,
        isr,
    };
    assert_eq!(
        log.apply(alter(1, 5, 0, vec![1])),
        Err(CommandError::FencedLeaderEpoch { current: 0, got: 5 })
    );
    assert_eq!(
        log.apply(alter(1, 0, 3, vec![1])),
        Err(CommandError::InvalidUpdateVersion { current: 0, got: 3 })
    );
    assert!(matches!(
        log.apply(alter(2, 0, 0, vec![2])),
        Err(CommandError::NotLeaderForPartition { leader: 1, got: 2 })
    ));
    assert!(matches!(
        log.apply(alter(1, 0, 0, vec![2, 3])),
        Err(CommandError::InvalidIsr(_))
    ));
    assert!(matches!(
        log.apply(alter(1, 0, 0, vec![1, 4])),
        Err(CommandError::InvalidIsr(_))
    ));
    assert!(matches!(
        log.apply(alter(1, 0, 0, vec![1, 1])),
        Err(CommandError::InvalidIsr(_))
    ));
    let out = log.apply(alter(1, 0, 0, vec![1, 3])).unwrap();
    let CommandOutcome::Partition(p) = out else {
        panic!("{out:?}")
    };
    assert_eq!(p.isr, vec![1, 3]);
    assert_eq!(p.partition_epoch, 1);
    assert_eq!(p.leader_epoch, 0);
    // The old partition epoch is now stale.
    assert!(matches!(
        log.apply(alter(1, 0, 0, vec![1, 2, 3])),
        Err(CommandError::InvalidUpdateVersion { .. })
    ));
}

#[test]
fn preferred_election_and_reassignment() {
    let mut log = Log::new();
    for id in 1..=3 {
        log.register(id);
    }
    log.create("t", 1, 2, false);
    let replicas = log.md.topics["t"].partitions[0].replicas.clone();
    assert_eq!(
        log.apply(Command::ElectLeader {
            topic: "t".into(),
            partition: 0,
            election: ElectionType::Preferred
        }),
        Err(CommandError::ElectionNotNeeded(replicas[0]))
    );
    log.fence(replicas[0]).unwrap();
    assert_eq!(log.md.topics["t"].partitions[0].leader, replicas[1]);
    let e = log.md.brokers[&replicas[0]].epoch;
    log.apply(Command::UnfenceBroker {
        broker_id: replicas[0],
        broker_epoch: e,
    })
    .unwrap();
    // Back, but out of the ISR: not yet electable.
    assert_eq!(
        log.apply(Command::ElectLeader {
            topic: "t".into(),
            partition: 0,
            election: ElectionType::Preferred
        }),
        Err(CommandError::PreferredLeaderNotAvailable(replicas[0]))
    );
    // Reassign to the third broker plus the current leader.
    let third = (1..=3).find(|b| !replicas.contains(b)).unwrap();
    let out = log
        .apply(Command::ReassignPartition {
            topic: "t".into(),
            partition: 0,
            replicas: vec![third, replicas[1]],
        })
        .unwrap();
    let CommandOutcome::Partition(p) = out else {
        panic!()
    };
    assert_eq!(p.replicas, vec![third, replicas[1]]);
    assert_eq!(p.isr, vec![replicas[1]]);
    assert_eq!(p.leader, replicas[1]);
    assert!(matches!(
        log.apply(Command::ReassignPartition {
            topic: "t".into(),
            partition: 0,
            replicas: vec![third],
        }),
        Err(CommandError::InvalidReplicaAssignment(_))
    ));
}

#[test]
fn pipelines_and_configs() {
    let mut log = Log::new();
    log.apply(Command::UpsertPipeline {
        name: "p".into(),
        manifest: "kind: Pipeline".into(),
    })
    .unwrap();
    log.apply(Command::SetPipelinePaused {
        name: "p".into(),
        paused: true,
    })
    .unwrap();
    log.apply(Command::UpsertPipeline {
        name: "p".into(),
        manifest: "kind: Pipeline # v2".into(),
    })
    .unwrap();
    assert!(log.md.pipelines["p"].paused);
    assert_eq!(log.md.pipelines["p"].manifest, "kind: Pipeline # v2");
    assert_eq!(
        log.apply(Command::DeletePipeline { name: "q".into() }),
        Err(CommandError::UnknownPipeline("q".into()))
    );
    assert!(matches!(
        log.apply(Command::UpsertPipeline {
            name: "a b".into(),
            manifest: String::new()
        }),
        Err(CommandError::InvalidPipelineName(_))
    ));

    log.register(1);
    log.create("t", 1, 1, false);
    let changes = BTreeMap::from([
        ("retention.ms".to_string(), Some("1000".to_string())),
        (
            "unclean.leader.election.enable".to_string(),
            Some("maybe".to_string()),
        ),
    ]);
    assert!(matches!(
        log.apply(Command::AlterTopicConfigs {
            name: "t".into(),
            changes
        }),
        Err(CommandError::InvalidConfig { .. })
    ));
    assert!(log.md.topics["t"].configs.is_empty(), "no partial effects");
    log.apply(Command::AlterTopicConfigs {
        name: "t".into(),
        changes: BTreeMap::from([("retention.ms".to_string(), Some("1000".to_string()))]),
    })
    .unwrap();
    assert_eq!(log.md.topics["t"].configs["retention.ms"], "1000");
    log.apply(Command::CreatePartitions {
        name: "t".into(),
        total: 3,
    })
    .unwrap();
    assert_eq!(log.md.topics["t"].partitions.len(), 3);
    assert_eq!(
        log.apply(Command::CreatePartitions {
            name: "t".into(),
            total: 2
        }),
        Err(CommandError::InvalidPartitions(2))
    );
}

#[test]
fn unregister_moves_leadership_and_removes_the_broker() {
    let mut log = Log::new();
    for id in 1..=2 {
        log.register(id);
    }
    log.create("t", 2, 2, false);
    log.apply(Command::UnregisterBroker { broker_id: 1 })
        .unwrap();
    assert!(!log.md.brokers.contains_key(&1));
    for p in &log.md.topics["t"].partitions {
        assert_eq!(p.leader, 2);
        assert_eq!(p.isr, vec![2]);
    }
}

// ---- proptest ----

fn arb_command() -> impl Strategy<Value = Command> {
    let broker = 0..5i32;
    let topic = prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from);
    prop_oneof![
        3 => broker.clone().prop_map(|b| Command::RegisterBroker {
            broker_id: b,
            host: "h".into(),
            port: 9092,
            rack: None
        }),
        1 => broker.clone().prop_map(|b| Command::RegisterBrokerListeners {
            broker_id: b,
            host: "h".into(),
            port: 9092,
            rack: None,
            listeners: vec![listener("PLAINTEXT", "h", 9092), listener("SSL", "h", 9093)],
        }),
        1 => broker.clone().prop_map(|b| Command::UnregisterBroker { broker_id: b }),
        // Epochs are small offsets: random ones are sometimes current.
        3 => (broker.clone(), 0..40i64).prop_map(|(b, e)| Command::FenceBroker {
            broker_id: b,
            broker_epoch: e
        }),
        3 => (broker.clone(), 0..40i64).prop_map(|(b, e)| Command::UnfenceBroker {
            broker_id: b,
            broker_epoch: e
        }),
        2 => (topic.clone(), 1..4i32, 1..4i16, any::<bool>()).prop_map(|(t, p, rf, u)| {
            let mut configs = BTreeMap::new();
            if u {
                configs.insert("unclean.leader.election.enable".into(), "true".into());
            }
            Command::CreateTopic {
                name: t,
                partitions: p,
                replication_factor: rf,
                configs,
            }
        }),
        1 => topic.clone().prop_map(|t| Command::DeleteTopic { name: t }),
        1 => (topic.clone(), 1..6i32).prop_map(|(t, n)| Command::CreatePartitions { name: t, total: n }),
        3 => (
            topic.clone(),
            0..3i32,
            broker.clone(),
            0..3i32,
            0..4i32,
            prop::collection::vec(0..5i32, 0..4)
        )
            .prop_map(|(t, p, l, le, pe, isr)| Command::AlterPartition {
                topic: t,
                partition: p,
                leader: l,
                leader_epoch: le,
                partition_epoch: pe,
                isr
            }),
        2 => (
            topic.clone(),
            0..3i32,
            prop::sample::select(vec![
                ElectionType::Preferred,
                ElectionType::Clean,
                ElectionType::Unclean
            ])
        )
            .prop_map(|(t, p, e)| Command::ElectLeader {
                topic: t,
                partition: p,
                election: e
            }),
        1 => (topic, 0..3i32, prop::collection::vec(0..5i32, 0..4)).prop_map(|(t, p, r)| {
            Command::ReassignPartition {
                topic: t,
                partition: p,
                replicas: r,
            }
        }),
        // Dynamic configs: valid and invalid resources and keys, sets,
        // removals and whole-set replacements.
        1 => (
            prop::sample::select(vec!["", "1", "x"]),
            arb_config_changes(vec!["log.retention.ms", "log.cleaner.threads", "no.such.key"]),
            any::<bool>()
        )
            .prop_map(|(r, changes, replace)| Command::AlterBrokerConfigs {
                resource: r.to_string(),
                changes,
                replace,
            }),
        1 => (
            prop::sample::select(vec!["g", "h", ""]),
            arb_config_changes(vec!["consumer.session.timeout.ms", "consumer.heartbeat.interval.ms", "no.such.key"]),
            any::<bool>()
        )
            .prop_map(|(g, changes, replace)| Command::AlterGroupConfigs {
                group: g.to_string(),
                changes,
                replace,
            }),
    ]
}

/// Up to three changes over `keys`: a value set, or the key removed.
fn arb_config_changes(
    keys: Vec<&'static str>,
) -> impl Strategy<Value = BTreeMap<String, Option<String>>> {
    prop::collection::btree_map(
        prop::sample::select(keys).prop_map(String::from),
        prop::option::of(prop::sample::select(vec!["1", "45000", "abc"]).prop_map(String::from)),
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_sequences_are_deterministic_and_keep_invariants(
        commands in prop::collection::vec(arb_command(), 1..80)
    ) {
        let mut a = ClusterMetadata::default();
        let mut b = ClusterMetadata::default();
        // Keyed by topic id: a recreated topic starts again at epoch 0.
        let mut epochs: BTreeMap<(uuid::Uuid, usize), i32> = BTreeMap::new();
        for (i, cmd) in commands.iter().enumerate() {
            let offset = i as u64 + 1;
            let before = a.clone();
            let ra = a.apply(offset, cmd);
            let rb = b.apply(offset, cmd);
            prop_assert_eq!(&ra, &rb);
            prop_assert_eq!(&a, &b);
            if ra.result.is_err() {
                // No partial effects.
                prop_assert_eq!(&ClusterMetadata { offset: before.offset, ..a.clone() }, &before);
            }
            // Config tables hold no empty sets, and a group's only its keys.
            prop_assert!(a.broker_configs.values().all(|c| !c.is_empty()), "{:?}", a.broker_configs);
            prop_assert!(a.group_configs.values().all(|c| !c.is_empty()), "{:?}", a.group_configs);
            prop_assert!(!a.group_configs.contains_key(""), "{:?}", a.group_configs);
            prop_assert!(
                a.group_configs.values().flat_map(|c| c.keys()).all(|k| GROUP_CONFIG_KEYS.contains(&k.as_str())),
                "{:?}", a.group_configs
            );
            for topic in a.topics.values() {
                for (n, p) in topic.partitions.iter().enumerate() {
                    prop_assert!(!p.isr.is_empty(), "empty ISR {:?}", p);
                    prop_assert!(p.isr.iter().all(|r| p.replicas.contains(r)), "ISR ⊄ replicas {:?}", p);
                    prop_assert!(p.leader == NO_LEADER || p.isr.contains(&p.leader), "leader ∉ ISR {:?}", p);
                    prop_assert!(p.leader == NO_LEADER || a.is_unfenced(p.leader), "fenced leader {:?}", p);
                    let key = (topic.id, n);
                    let prev = epochs.get(&key).copied().unwrap_or(0);
                    prop_assert!(p.leader_epoch >= prev, "leader epoch went back {:?}", p);
                    epochs.insert(key, p.leader_epoch);
                }
            }
            // Leadership only moves to ISR members, unless unclean election is on.
            for (name, topic) in &a.topics {
                let Some(old) = before.topics.get(name).filter(|t| t.id == topic.id) else { continue };
                for (p_old, p_new) in old.partitions.iter().zip(&topic.partitions) {
                    if p_new.leader != p_old.leader && p_new.leader != NO_LEADER
                        && !topic.unclean_election_enabled()
                        && !matches!(cmd, Command::ReassignPartition { .. })
                    {
                        prop_assert!(p_old.isr.contains(&p_new.leader),
                            "leader {} was not in the old ISR {:?} ({:?})", p_new.leader, p_old, cmd);
                    }
                }
            }
        }
    }
}

#[test]
fn the_internal_secret_is_set_once() {
    let mut log = Log::new();
    let set = |s: &str| Command::SetInternalSecret {
        secret: InternalSecret::new(s),
    };
    assert_eq!(log.apply(set("")), Err(CommandError::EmptyInternalSecret));
    assert_eq!(log.md.internal_secret, None);
    assert_eq!(log.apply(set("first")), Ok(CommandOutcome::Done));
    assert_eq!(log.apply(set("second")), Ok(CommandOutcome::Done));
    assert_eq!(log.md.internal_secret, Some(InternalSecret::new("first")));
    assert!(!format!("{:?}", log.md).contains("first"));
}

#[test]
fn acls_are_added_once_and_removed() {
    let mut log = Log::new();
    let acl = |principal: &str| Acl {
        resource_type: 2,
        resource_name: "orders".into(),
        pattern_type: 3,
        principal: principal.into(),
        host: "*".into(),
        operation: 3,
        permission_type: 3,
    };
    let create = |acls: Vec<Acl>| Command::CreateAcls { acls };
    assert_eq!(
        log.apply(create(vec![acl("User:alice"), acl("User:alice")])),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(
        log.apply(create(vec![acl("User:bob")])),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(log.md.acls.len(), 2);
    // A binding with an empty principal changes nothing, the valid ones
    // of the same command included.
    assert!(matches!(
        log.apply(create(vec![acl("User:carol"), acl("")])),
        Err(CommandError::InvalidAcl(_))
    ));
    assert_eq!(log.md.acls.len(), 2);
    assert_eq!(
        log.apply(Command::DeleteAcls {
            acls: vec![acl("User:alice"), acl("User:nobody")]
        }),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(log.md.acls.iter().collect::<Vec<_>>(), [&acl("User:bob")]);
}

#[test]
fn scram_credentials_are_checked_kept_and_removed() {
    let mut log = Log::new();
    let credential = |iterations: u32, key_len: usize| ScramCredential {
        salt: vec![7; 16],
        iterations,
        stored_key: vec![1; key_len],
        server_key: vec![2; key_len],
    };
    let set = |user: &str, mechanism, credential| Command::SetScramCredential {
        user: user.into(),
        mechanism,
        credential,
    };
    for bad in [
        set("alice", ScramMechanism::Sha256, credential(4095, 32)),
        set("alice", ScramMechanism::Sha256, credential(16385, 32)),
        set("alice", ScramMechanism::Sha512, credential(4096, 32)),
        set("", ScramMechanism::Sha256, credential(4096, 32)),
    ] {
        assert!(
            matches!(log.apply(bad), Err(CommandError::InvalidScramCredential(_))),
            "accepted"
        );
    }
    assert!(log.md.scram_credentials.is_empty());
    let sha256 = credential(4096, 32);
    let sha512 = credential(8192, 64);
    assert_eq!(
        log.apply(set("alice", ScramMechanism::Sha256, sha256.clone())),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(
        log.apply(set("alice", ScramMechanism::Sha512, sha512.clone())),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(
        log.md.scram_credentials["alice"][&ScramMechanism::Sha512],
        sha512
    );
    // Keys never show in the metadata's Debug (it is logged).
    assert!(!format!("{:?}", log.md).contains("stored_key"));
    let delete = |user: &str, mechanism| Command::DeleteScramCredential {
        user: user.into(),
        mechanism,
    };
    assert_eq!(
        log.apply(delete("alice", ScramMechanism::Sha256)),
        Ok(CommandOutcome::Done)
    );
    assert!(matches!(
        log.apply(delete("alice", ScramMechanism::Sha256)),
        Err(CommandError::UnknownScramCredential { .. })
    ));
    assert!(matches!(
        log.apply(delete("bob", ScramMechanism::Sha256)),
        Err(CommandError::UnknownScramCredential { .. })
    ));
    assert_eq!(
        log.apply(delete("alice", ScramMechanism::Sha512)),
        Ok(CommandOutcome::Done)
    );
    // The last credential gone, the user is gone.
    assert!(log.md.scram_credentials.is_empty());
}

#[test]
fn client_quotas_are_checked_set_and_removed() {
    let mut log = Log::new();
    let entity = QuotaEntity {
        user: Some(Some("alice".into())),
        client_id: Some(None),
    };
    let alter = |entity: &QuotaEntity, key: &str, value: Option<f64>| Command::AlterClientQuotas {
        entity: entity.clone(),
        changes: [(key.to_string(), value.map(QuotaValue))].into(),
    };
    for bad in [
        alter(&entity, "producer_byte_rate", Some(0.0)),
        alter(&entity, "producer_byte_rate", Some(-5.0)),
        alter(&entity, "producer_byte_rate", Some(1.5)),
        alter(&entity, "no_such_key", Some(1.0)),
        alter(&QuotaEntity::default(), "producer_byte_rate", Some(1.0)),
    ] {
        assert!(
            matches!(log.apply(bad), Err(CommandError::InvalidClientQuota(_))),
            "accepted"
        );
    }
    assert!(log.md.client_quotas.is_empty());
    for (key, value) in [("producer_byte_rate", 1024.0), ("request_percentage", 12.5)] {
        assert_eq!(
            log.apply(alter(&entity, key, Some(value))),
            Ok(CommandOutcome::Done)
        );
    }
    assert_eq!(log.md.client_quotas[&entity].len(), 2);
    assert_eq!(
        log.md.client_quotas[&entity]["request_percentage"],
        QuotaValue(12.5)
    );
    for key in ["producer_byte_rate", "request_percentage"] {
        assert_eq!(
            log.apply(alter(&entity, key, None)),
            Ok(CommandOutcome::Done)
        );
    }
    // The last value gone, the entity is gone.
    assert!(log.md.client_quotas.is_empty());
}

#[test]
fn ip_quotas_are_checked_set_and_removed() {
    let mut log = Log::new();
    let alter = |ip: Option<&str>, key: &str, value: Option<f64>| Command::AlterIpQuotas {
        ip: ip.map(str::to_owned),
        changes: [(key.to_string(), value.map(QuotaValue))].into(),
    };
    let rate = "connection_creation_rate";
    for bad in [
        alter(Some("not an address"), rate, Some(5.0)),
        alter(Some("10.0.0.1"), rate, Some(0.0)),
        alter(Some("10.0.0.1"), rate, Some(2.5)),
        alter(Some("10.0.0.1"), "producer_byte_rate", Some(5.0)),
        alter(None, rate, Some(1e12)),
    ] {
        assert!(
            matches!(log.apply(bad), Err(CommandError::InvalidClientQuota(_))),
            "accepted"
        );
    }
    assert!(log.md.ip_quotas.is_empty());
    for ip in [Some("10.0.0.1"), Some("::1"), None] {
        assert_eq!(
            log.apply(alter(ip, rate, Some(5.0))),
            Ok(CommandOutcome::Done)
        );
    }
    assert_eq!(log.md.ip_quotas.len(), 3);
    assert_eq!(log.md.ip_quotas[&None][rate], QuotaValue(5.0));
    assert_eq!(
        log.apply(alter(Some("10.0.0.1"), rate, None)),
        Ok(CommandOutcome::Done)
    );
    assert!(!log.md.ip_quotas.contains_key(&Some("10.0.0.1".to_owned())));
}

#[test]
fn group_configs_are_checked_set_replaced_and_removed() {
    let mut log = Log::new();
    let alter =
        |group: &str, changes: &[(&str, Option<&str>)], replace: bool| Command::AlterGroupConfigs {
            group: group.to_string(),
            changes: changes
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
            replace,
        };
    let session = "consumer.session.timeout.ms";
    let heartbeat = "consumer.heartbeat.interval.ms";
    for bad in [
        alter("", &[(session, Some("50000"))], false),
        alter("g", &[("session.timeout.ms", Some("50000"))], false),
    ] {
        assert!(
            matches!(log.apply(bad), Err(CommandError::InvalidConfig { .. })),
            "accepted"
        );
    }
    assert!(log.md.group_configs.is_empty());
    assert_eq!(
        log.apply(alter(
            "g",
            &[(session, Some("50000")), (heartbeat, Some("6000"))],
            false
        )),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(log.md.group_configs["g"].len(), 2);
    // Replacing keeps only what is named.
    assert_eq!(
        log.apply(alter("g", &[(heartbeat, Some("7000"))], true)),
        Ok(CommandOutcome::Done)
    );
    assert_eq!(
        log.md.group_configs["g"],
        [(heartbeat.to_string(), "7000".to_string())].into()
    );
    // The last value gone, the group's entry is gone.
    assert_eq!(
        log.apply(alter("g", &[(heartbeat, None)], false)),
        Ok(CommandOutcome::Done)
    );
    assert!(log.md.group_configs.is_empty());
}
