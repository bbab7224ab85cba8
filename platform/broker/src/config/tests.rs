//! The config's reading, defaults and checks, from YAML as operators write it.

use super::*;

#[test]
fn group_consumer_defaults_must_lie_within_their_bounds() {
    assert!(BrokerConfig::default().validate().is_ok());
    let below = BrokerConfig {
        group_consumer_session_timeout_ms: 10_000,
        ..BrokerConfig::default()
    };
    let e = below.validate().unwrap_err().to_string();
    assert!(e.contains("group.consumer.session.timeout.ms"), "{e}");
    let bounds_lowered = BrokerConfig {
        group_consumer_min_session_timeout_ms: 1_000,
        ..below
    };
    assert!(bounds_lowered.validate().is_ok());
    let inverted = BrokerConfig {
        group_consumer_min_heartbeat_interval_ms: 20_000,
        ..BrokerConfig::default()
    };
    assert!(inverted.validate().is_err());
}

#[test]
fn the_migration_policy_is_one_of_kafkas() {
    let config: BrokerConfig =
        crate::yaml::from_str("group.consumer.migration.policy: Upgrade\n").unwrap_or_default();
    assert!(config.validate().is_ok());
    assert_eq!(
        crate::broker_state::group_settings(&config).migration_policy,
        crate::group::MigrationPolicy::Upgrade
    );
    let config = BrokerConfig {
        group_consumer_migration_policy: "sideways".to_string(),
        ..BrokerConfig::default()
    };
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("group.consumer.migration.policy"), "{e}");
}

#[test]
fn open_files_max_is_set_or_derived_from_the_limit() {
    let config: BrokerConfig =
        crate::yaml::from_str("log.open.files.max: 4096\n").unwrap_or_default();
    assert_eq!(config.open_files_capacity(), 4096);
    let config: BrokerConfig = crate::yaml::from_str("log_open_files_max: 1\n").unwrap_or_default();
    assert_eq!(config.open_files_capacity(), fjord_log::MIN_OPEN_FILES);
    let (soft, _) = fjord_log::nofile_limit();
    assert_eq!(
        BrokerConfig::default().open_files_capacity(),
        usize::try_from(soft / 2).unwrap_or(usize::MAX)
    );
}

#[test]
fn kafka_names_and_aliases_parse() {
    let yaml = "log.dir: /data\nlistener: 0.0.0.0:9093\nauto.create.topics.enable: false\n\
                durability: fsync\nlog.retention.ms: -1\nmessage.max.bytes: 2000\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert!(!config.auto_create_topics);
    assert_eq!(config.durability, DurabilityConfig::Fsync);
    let log = config.default_log_config();
    assert_eq!(log.retention_ms, None);
    assert_eq!(log.max_message_bytes, 2000);
    assert_eq!(log.durability, Durability::Fsync);

    let config: BrokerConfig =
        crate::yaml::from_str("data_dir: x\nnode_id: 2\ndurability: page-cache\n")
            .unwrap_or_default();
    assert_eq!(
        (config.node_id, config.durability),
        (2, DurabilityConfig::PageCache)
    );
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    assert!(crate::yaml::from_str::<BrokerConfig>("no.such.key: 1\n").is_err());
    let config = BrokerConfig {
        num_partitions: 0,
        ..BrokerConfig::default()
    };
    assert!(config.validate().is_err());
    assert!(BrokerConfig::default().validate().is_ok());
}

#[test]
fn the_authorizer_is_kafkas_keys() {
    assert!(BrokerConfig::default().authorizer().unwrap().is_none());
    for name in crate::authorizer::AUTHORIZER_NAMES {
        let yaml = format!(
            "authorizer.class.name: {name}\nsuper.users: User:admin;User:ops\n\
             allow.everyone.if.no.acl.found: true\n"
        );
        let config: BrokerConfig = crate::yaml::from_str(&yaml).unwrap();
        assert!(config.authorizer().unwrap().is_some(), "{name}");
        assert!(config.validate().is_ok());
    }
    let config: BrokerConfig =
        crate::yaml::from_str("authorizer_class_name: acl\nsuper_users: \"\"\n").unwrap();
    assert!(config.authorizer().unwrap().is_some());
    let unknown: BrokerConfig =
        crate::yaml::from_str("authorizer.class.name: com.example.Mine\n").unwrap();
    assert!(unknown.validate().is_err());
    let bad_user: BrokerConfig =
        crate::yaml::from_str("authorizer.class.name: acl\nsuper.users: admin\n").unwrap();
    assert!(bad_user.validate().is_err());
}

#[test]
fn allow_lists_are_lists_or_comma_separated_text() {
    let yaml = "log.dir: /data\nplugin.native.dirs: /opt/a, /opt/b\n\
                pipeline.allowed.listen: [\"0.0.0.0:514\"]\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(
        config.plugin_native_dirs,
        [PathBuf::from("/opt/a"), PathBuf::from("/opt/b")]
    );
    assert_eq!(
        config.pipeline_allowed_listen.as_deref(),
        Some(&["0.0.0.0:514".to_owned()][..])
    );
    assert_eq!(config.allowed_paths(), [PathBuf::from("/data/pipelines")]);
    assert_eq!(config.pipeline_allowed_connect, None);
}

#[test]
fn sasl_settings() {
    let yaml = "sasl.enabled.mechanisms: SCRAM-SHA-512\nsuper.users: User:alice;User:bob\n\
                sasl.admin.user: admin\nsasl.admin.password: s3cret\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(config.sasl_enabled_mechanisms, ["SCRAM-SHA-512"]);
    assert_eq!(config.super_users, ["User:alice", "User:bob"]);
    assert!(config.validate().is_ok());
    assert_eq!(
        config.all_super_users(),
        ["User:alice", "User:bob", "User:admin"]
    );
    assert!(!format!("{config:?}").contains("s3cret"));
    assert_eq!(
        BrokerConfig::default()
            .sasl_mechanisms()
            .map(|m| m.len())
            .ok(),
        Some(3)
    );
    for bad in [
        "sasl.enabled.mechanisms: GSSAPI\n",
        "super.users: alice\n",
        "sasl.admin.user: admin\n",
        "sasl.admin.user: fjord-internal\nsasl.admin.password: x\n",
    ] {
        let config: BrokerConfig = crate::yaml::from_str(bad).unwrap_or_default();
        assert!(config.validate().is_err(), "{bad}");
    }
}

/// The memory limits read under Kafka's names and the aliases, and
/// are checked.
#[test]
fn memory_limits() {
    let defaults = BrokerConfig::default();
    assert_eq!(defaults.queued_max_request_bytes, 256 << 20);
    assert_eq!(defaults.request_max_array_elements, 100_000);
    assert_eq!(defaults.fetch_max_bytes, 55 << 20);
    let yaml = "queued.max.request.bytes: -1\nrequest.max.array.elements: 5000\n\
                fetch.max.bytes: 1048576\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(config.queued_max_request_bytes, -1);
    assert_eq!(config.request_max_array_elements, 5000);
    assert_eq!(config.fetch_max_bytes, 1 << 20);
    assert!(config.validate().is_ok());
    let yaml = "queued_max_request_bytes: 2097152\nrequest_max_array_elements: 2000\n\
                fetch_max_bytes: 4096\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(config.queued_max_request_bytes, 2 << 20);
    assert_eq!(config.request_max_array_elements, 2000);
    assert_eq!(config.fetch_max_bytes, 4096);
    assert_eq!(defaults.request_max_metadata_topics, 10_000);
    assert_eq!(defaults.request_max_produce_partitions, 10_000);
    assert_eq!(defaults.request_max_fetch_partitions, 50_000);
    let yaml = "request.max.metadata.topics: 5\nrequest_max_produce_partitions: 7\n\
                request.max.fetch.partitions: 8\nrequest.max.admin.topics: 9\n\
                request.max.groups: 10\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap_or_default();
    assert_eq!(config.request_limits().map(|(_, v)| v), [5, 7, 8, 9, 10]);
    assert!(config.validate().is_ok());
    for bad in [
        "queued.max.request.bytes: 0\n",
        "queued.max.request.bytes: -2\n",
        "request.max.array.elements: 10\n",
        "fetch.max.bytes: 100\n",
        "request.max.metadata.topics: 0\n",
        "request_max_groups: 0\n",
    ] {
        let config: BrokerConfig = crate::yaml::from_str(bad).unwrap_or_default();
        assert!(config.validate().is_err(), "{bad}");
    }
}

/// OAUTHBEARER joins the default mechanisms with a JWKS, needs one,
/// and its settings read under Kafka's names and the aliases.
#[test]
fn oauthbearer_settings() {
    use crate::sasl::Mechanism;
    let yaml = "sasl.oauthbearer.jwks.endpoint.url: file:///etc/jwks.json\n\
                sasl.oauthbearer.expected.audience: fjord,kafka\n\
                sasl.oauthbearer.expected.issuer: https://idp/realms/r\n\
                sasl_oauthbearer_sub_claim_name: azp\n\
                sasl.oauthbearer.clock.skew.seconds: 5\n\
                connections.max.reauth.ms: 60000\n";
    let config: BrokerConfig = crate::yaml::from_str(yaml).unwrap();
    assert_eq!(
        config.sasl_oauthbearer_expected_audience,
        ["fjord", "kafka"]
    );
    assert_eq!(config.sasl_oauthbearer_sub_claim_name, "azp");
    assert_eq!(config.sasl_oauthbearer_scope_claim_name, "scope");
    assert_eq!(config.sasl_oauthbearer_clock_skew_seconds, 5);
    assert_eq!(config.connections_max_reauth_ms, 60_000);
    let mechanisms = config.sasl_mechanisms().unwrap_or_default();
    assert!(mechanisms.contains(&Mechanism::OAuthBearer));
    assert_eq!(mechanisms.len(), 4);
    // Chosen explicitly: as listed.
    let config: BrokerConfig = crate::yaml::from_str(
        "sasl.oauthbearer.jwks.endpoint.url: /etc/jwks.json\n\
         sasl.enabled.mechanisms: OAUTHBEARER\n",
    )
    .unwrap();
    assert_eq!(
        config.sasl_mechanisms().ok(),
        Some(vec![Mechanism::OAuthBearer])
    );
    // Not without a JWKS.
    let config: BrokerConfig =
        crate::yaml::from_str("sasl.enabled.mechanisms: OAUTHBEARER,PLAIN\n").unwrap();
    assert!(config.validate().is_err());
    assert!(
        !BrokerConfig::default()
            .sasl_mechanisms()
            .unwrap_or_default()
            .contains(&Mechanism::OAuthBearer)
    );
}
