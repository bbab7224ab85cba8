//! Checks of a [`BrokerConfig`] that serde cannot make: bounds, values that
//! must agree with each other, connection limits. Run once at startup; not
//! for deriving settings (see `derived`, `security`).

use super::BrokerConfig;
use crate::error::BrokerError;

impl BrokerConfig {
    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), BrokerError> {
        if self.default_replication_factor < 1 {
            return Err(BrokerError::Config(format!(
                "default.replication.factor must be at least 1, not {}",
                self.default_replication_factor
            )));
        }
        if self.controller_election_timeout_ms < 50 {
            return Err(BrokerError::Config(format!(
                "controller.quorum.election.timeout.ms must be at least 50, not {}",
                self.controller_election_timeout_ms
            )));
        }
        if self.replica_lag_time_max_ms < 100 {
            return Err(BrokerError::Config(format!(
                "replica.lag.time.max.ms must be at least 100, not {}",
                self.replica_lag_time_max_ms
            )));
        }
        if self.num_partitions < 1 {
            return Err(BrokerError::Config(format!(
                "num.partitions must be at least 1, not {}",
                self.num_partitions
            )));
        }
        if self.socket_request_max_bytes < 1024 {
            return Err(BrokerError::Config(
                "socket.request.max.bytes must be at least 1024".to_string(),
            ));
        }
        if self.queued_max_request_bytes != -1 && self.queued_max_request_bytes < 1 << 20 {
            return Err(BrokerError::Config(format!(
                "queued.max.request.bytes must be -1 (no bound) or at least 1048576, not {}",
                self.queued_max_request_bytes
            )));
        }
        if self.request_max_array_elements < 1000 {
            return Err(BrokerError::Config(format!(
                "request.max.array.elements must be at least 1000, not {}",
                self.request_max_array_elements
            )));
        }
        for (name, value) in self.request_limits() {
            if value == 0 {
                return Err(BrokerError::Config(format!(
                    "{name} must be at least 1, not 0"
                )));
            }
        }
        if self.fetch_max_bytes < 1024 {
            return Err(BrokerError::Config(format!(
                "fetch.max.bytes must be at least 1024, not {}",
                self.fetch_max_bytes
            )));
        }
        if self.segment_bytes < 1024 {
            return Err(BrokerError::Config(
                "log.segment.bytes must be at least 1024".to_string(),
            ));
        }
        if self.max_decompressed_bytes < 1024 {
            return Err(BrokerError::Config(
                "message.max.decompressed.bytes must be at least 1024".to_string(),
            ));
        }
        if self.transaction_state_log_num_partitions < 1
            || self.transaction_state_log_replication_factor < 1
            || self.transaction_max_timeout_ms < 1
            || self.transaction_abort_timed_out_transaction_cleanup_interval_ms < 1
        {
            return Err(BrokerError::Config(
                "transaction.state.log.num.partitions, transaction.state.log.replication.factor, transaction.max.timeout.ms and transaction.abort.timed.out.transaction.cleanup.interval.ms must be at least 1".to_string(),
            ));
        }
        if self.offsets_topic_num_partitions < 1 {
            return Err(BrokerError::Config(
                "offsets.topic.num.partitions must be at least 1".to_string(),
            ));
        }
        if !(1..=3600).contains(&self.quota_window_num) {
            return Err(BrokerError::Config(format!(
                "quota.window.num must be between 1 and 3600, not {}",
                self.quota_window_num
            )));
        }
        if !(1..=3600).contains(&self.quota_window_size_seconds) {
            return Err(BrokerError::Config(format!(
                "quota.window.size.seconds must be between 1 and 3600, not {}",
                self.quota_window_size_seconds
            )));
        }
        if self.group_consumer_heartbeat_interval_ms < 1
            || self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms
        {
            return Err(BrokerError::Config(
                "group.consumer.heartbeat.interval.ms must be at least 1 and below group.consumer.session.timeout.ms".to_string(),
            ));
        }
        // As Kafka's GroupCoordinatorConfig: the broker defaults lie within
        // the bounds a group's own configs are held to.
        for (name, value, min, max) in [
            (
                "group.consumer.session.timeout.ms",
                self.group_consumer_session_timeout_ms,
                self.group_consumer_min_session_timeout_ms,
                self.group_consumer_max_session_timeout_ms,
            ),
            (
                "group.consumer.heartbeat.interval.ms",
                self.group_consumer_heartbeat_interval_ms,
                self.group_consumer_min_heartbeat_interval_ms,
                self.group_consumer_max_heartbeat_interval_ms,
            ),
        ] {
            if min < 1 || min > max || !(min..=max).contains(&value) {
                return Err(BrokerError::Config(format!(
                    "{name} ({value}) must lie within its min ({min}) and max ({max}), which must be positive and in order"
                )));
            }
        }
        if crate::group::MigrationPolicy::parse(&self.group_consumer_migration_policy).is_none() {
            return Err(BrokerError::Config(format!(
                "group.consumer.migration.policy must be disabled, upgrade, downgrade or bidirectional, not {:?}",
                self.group_consumer_migration_policy
            )));
        }
        if self.group_max_size < 1 {
            return Err(BrokerError::Config(
                "group.max.size must be at least 1".to_string(),
            ));
        }
        if self.producer_id_expiration_ms < 1000 {
            return Err(BrokerError::Config(format!(
                "producer.id.expiration.ms must be at least 1000, not {}",
                self.producer_id_expiration_ms
            )));
        }
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms {
            return Err(BrokerError::Config(
                "group.min.session.timeout.ms is above group.max.session.timeout.ms".to_string(),
            ));
        }
        if self.node_id < 0 {
            return Err(BrokerError::Config("node.id must be >= 0".to_string()));
        }
        self.sasl_mechanisms()?;
        if let Some(user) = self.super_users.iter().find(|u| !u.starts_with("User:")) {
            return Err(BrokerError::Config(format!(
                "super.users entry {user:?} is not a User: principal (User:alice;User:bob)"
            )));
        }
        match (&self.sasl_admin_user, &self.sasl_admin_password) {
            (Some(user), Some(password)) => {
                if user.is_empty() || user == crate::auth::INTERNAL_PRINCIPAL {
                    return Err(BrokerError::Config(format!(
                        "sasl.admin.user may not be {user:?}"
                    )));
                }
                if password.expose().is_empty() {
                    return Err(BrokerError::Config(
                        "sasl.admin.password is empty".to_string(),
                    ));
                }
            }
            (None, None) => {}
            _ => {
                return Err(BrokerError::Config(
                    "sasl.admin.user and sasl.admin.password go together".to_string(),
                ));
            }
        }
        self.authorizer()?;
        if self.sasl_server_max_receive_size < 1024 {
            return Err(BrokerError::Config(
                "sasl.server.max.receive.size must be at least 1024".to_string(),
            ));
        }
        self.validate_connection_limits()?;
        // The listener and TLS settings are checked by the server, which
        // reads them (`listeners`, `tls`).
        Ok(())
    }

    /// The connection limits' values (host names in the overrides are
    /// resolved when the broker starts).
    pub(crate) fn validate_connection_limits(&self) -> Result<(), BrokerError> {
        let overrides =
            crate::connection_limits::parse_overrides(&self.max_connections_per_ip_overrides)?;
        for (key, value) in [
            ("max.connections", self.max_connections),
            (
                "max.connection.creation.rate",
                self.max_connection_creation_rate,
            ),
            ("connections.max.idle.ms", self.connections_max_idle_ms),
            (
                "socket.request.read.timeout.ms",
                self.socket_request_read_timeout_ms,
            ),
        ] {
            if value == 0 {
                return Err(BrokerError::Config(format!("{key} must be at least 1")));
            }
        }
        if self.max_connections_per_ip == 0 && overrides.is_empty() {
            return Err(BrokerError::Config(
                "max.connections.per.ip is 0 and max.connections.per.ip.overrides is empty: no client could connect".to_string(),
            ));
        }
        Ok(())
    }
}
