//! [`BrokerConfig`]'s defaults: Kafka's where Kafka has the setting, and
//! the config tests and embedders start from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fjord_log::LogConfig;

use super::{BrokerConfig, DurabilityConfig};

impl Default for BrokerConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        BrokerConfig {
            data_dir: PathBuf::from("./fjord-data"),
            listener: "127.0.0.1:9092".to_string(),
            advertised_host: None,
            advertised_port: None,
            listeners: None,
            advertised_listeners: None,
            listener_security_protocol_map: None,
            inter_broker_listener_name: None,
            controller_listener_names: None,
            sasl_mechanism_controller_protocol: None,
            ssl_keystore_location: None,
            ssl_keystore_type: None,
            ssl_truststore_location: None,
            ssl_truststore_type: None,
            ssl_client_auth: None,
            ssl_principal_mapping_rules: None,
            ssl_reload_interval_ms: 10_000,
            sasl_server_max_receive_size: 524_288,
            max_connections: 2048,
            max_connections_per_ip: crate::connection_limits::UNLIMITED,
            max_connections_per_ip_overrides: Vec::new(),
            max_connection_creation_rate: crate::connection_limits::UNLIMITED,
            connections_max_idle_ms: 600_000,
            socket_request_read_timeout_ms: 60_000,
            listener_overrides: BTreeMap::new(),
            admin_listener: "127.0.0.1:9644".to_string(),
            admin_allowed_hosts: Vec::new(),
            admin_ssl_keystore_location: None,
            admin_ssl_truststore_location: None,
            admin_ssl_client_auth: None,
            admin_api_require_auth: None,
            node_id: 0,
            cluster_id: None,
            controller_voters: None,
            controller_listener: None,
            broker_session_timeout_ms: 9000,
            replica_lag_time_max_ms: 30_000,
            controller_election_timeout_ms: 1000,
            default_replication_factor: 1,
            auto_create_topics: true,
            auto_create_topics_max_per_request: 100,
            max_partitions: 100_000,
            log_dir_reserve_bytes: 128 * 1024 * 1024,
            authorizer_class_name: None,
            allow_everyone_if_no_acl_found: false,
            num_partitions: 1,
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_request_bytes: 256 * 1024 * 1024,
            request_max_array_elements: 100_000,
            request_max_metadata_topics: 10_000,
            request_max_produce_partitions: 10_000,
            request_max_fetch_partitions: 50_000,
            request_max_admin_topics: 10_000,
            request_max_groups: 10_000,
            fetch_max_bytes: 55 * 1024 * 1024,
            durability: DurabilityConfig::PageCache,
            segment_bytes: log.segment_bytes,
            segment_ms: log.segment_ms,
            retention_ms: log.retention_ms,
            retention_bytes: None,
            flush_messages: log.flush_messages,
            flush_ms: log.flush_ms,
            max_message_bytes: log.max_message_bytes,
            max_decompressed_bytes: log.max_decompressed_bytes,
            retention_check_interval_ms: 30_000,
            flush_check_interval_ms: 1_000,
            checkpoint_interval_ms: 60_000,
            group_initial_rebalance_delay_ms: 100,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_retention_minutes: 7 * 24 * 60,
            group_max_size: 1000,
            group_consumer_session_timeout_ms: 45_000,
            group_consumer_heartbeat_interval_ms: 5_000,
            group_consumer_min_session_timeout_ms: 45_000,
            group_consumer_max_session_timeout_ms: 60_000,
            group_consumer_min_heartbeat_interval_ms: 5_000,
            group_consumer_max_heartbeat_interval_ms: 15_000,
            group_consumer_migration_policy: "bidirectional".to_string(),
            quota_window_num: 11,
            quota_window_size_seconds: 1,
            group_protocol_metadata_max_bytes: 256 * 1024,
            offset_metadata_max_bytes: 4096,
            producer_id_expiration_ms: 86_400_000,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_commit_timeout_ms: 5000,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_partition_verification_enable: true,
            log_cleaner_threads: 1,
            log_cleaner_dedupe_buffer_size: 128 << 20,
            log_cleaner_io_max_bytes_per_second: None,
            log_cleaner_backoff_ms: 15_000,
            log_open_files_max: None,
            plugin_native_dirs: Vec::new(),
            pipeline_allowed_paths: None,
            pipeline_allowed_listen: None,
            pipeline_allowed_connect: None,
            sasl_enabled_mechanisms: crate::sasl::Mechanism::DEFAULT
                .iter()
                .map(|m| m.name().to_owned())
                .collect(),
            super_users: Vec::new(),
            sasl_admin_user: None,
            sasl_admin_password: None,
            sasl_oauthbearer_jwks_endpoint_url: None,
            sasl_oauthbearer_jwks_endpoint_refresh_ms: 3_600_000,
            sasl_oauthbearer_expected_audience: Vec::new(),
            sasl_oauthbearer_expected_issuer: None,
            sasl_oauthbearer_sub_claim_name: "sub".to_string(),
            sasl_oauthbearer_scope_claim_name: "scope".to_string(),
            sasl_oauthbearer_clock_skew_seconds: 30,
            connections_max_reauth_ms: 0,
        }
    }
}

impl BrokerConfig {
    /// A config for tests and embedding: port 0 on loopback, data in `dir`.
    pub fn ephemeral(dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            data_dir: dir.into(),
            listener: "127.0.0.1:0".to_string(),
            ..BrokerConfig::default()
        }
    }
}
