//! Who a connection is, and what only the platform may do.
//!
//! A connection is anonymous until it authenticates (`sasl`): plain Kafka
//! clients never do, and may do everything they could before, except
//! writing the platform's internal topics. Those hold state the platform
//! trusts — pipeline deployments (a deployed pipeline runs code on the
//! host), committed offsets, pipeline statuses and logs, connector
//! positions, plugin state — so a record a client could append there would
//! forge it. The platform writes them in process, or, in a cluster, as the
//! [`Principal::Internal`] over SASL/PLAIN.

/// The user name of the platform's own principal (SASL/PLAIN).
pub const INTERNAL_PRINCIPAL: &str = "fjord-internal";

/// Whether `name` is an internal topic: Kafka's `__consumer_offsets` and
/// `__transaction_state` (the transaction coordinator's), every `__fjord_*`
/// topic of the platform, and the state changelogs of pipelines,
/// `pipeline.<pipeline>.<step>.changelog`. Clients may not produce to them,
/// delete their records or add partitions to them.
pub fn is_internal_topic(name: &str) -> bool {
    name == "__consumer_offsets"
        || name == "__transaction_state"
        || name.starts_with("__fjord_")
        || (name.starts_with("pipeline.") && name.ends_with(".changelog"))
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Principal {
    /// A connection that never authenticated: any Kafka client. ACLs name
    /// it `User:ANONYMOUS`, as Kafka does.
    #[default]
    Anonymous,
    /// The platform itself (a broker's pipeline runtime in a cluster),
    /// authenticated with the cluster's internal secret. Always allowed
    /// (a super user).
    Internal,
    /// A user: Kafka's `User:<name>`, who logged in with SASL (PLAIN or
    /// SCRAM) or is the subject of a client certificate on an SSL listener
    /// (after `ssl.principal.mapping.rules`).
    User(String),
}

impl std::fmt::Display for Principal {
    /// Kafka's form: `User:ANONYMOUS`, `User:fjord-internal`, `User:<name>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Anonymous => f.write_str("User:ANONYMOUS"),
            Principal::Internal => write!(f, "User:{INTERNAL_PRINCIPAL}"),
            Principal::User(name) => write!(f, "User:{name}"),
        }
    }
}

/// An operation on the cluster resource (Kafka's ACL operations on
/// `CLUSTER`) that not everyone may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterOperation {
    /// Change cluster-wide state: users' credentials
    /// (AlterUserScramCredentials).
    Alter,
    /// Read cluster-wide state that is not for everyone: who the users are
    /// (DescribeUserScramCredentials).
    Describe,
}

impl ClusterOperation {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClusterOperation::Alter => "ALTER",
            ClusterOperation::Describe => "DESCRIBE",
        }
    }
}

/// Decides whether `principal` may make `operation` on the cluster: the
/// decision without an authorizer (with one, the ACLs decide:
/// `authorizer::Access::cluster_admin`). Only `super_users` (Kafka's
/// `super.users`, `User:name` entries) and the platform's own principal
/// may; anonymous connections never do unless `User:ANONYMOUS` is listed.
pub(crate) fn authorize_cluster(
    principal: &Principal,
    operation: ClusterOperation,
    super_users: &[String],
) -> Result<(), AuthError> {
    let name = principal.to_string();
    if *principal == Principal::Internal || super_users.contains(&name) {
        return Ok(());
    }
    Err(AuthError::Cluster {
        principal: name,
        operation: operation.name(),
    })
}

/// Why a request was refused for who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// A client tried to change an internal topic.
    #[error("{topic} is an internal topic: clients may not {action} it")]
    InternalTopic {
        /// The topic.
        topic: String,
        /// What was refused ("produce to", "delete records of", …).
        action: &'static str,
    },
    /// A cluster operation the principal may not make.
    #[error("{principal} may not {operation} the cluster")]
    Cluster {
        /// `User:name`.
        principal: String,
        /// `ALTER`, `DESCRIBE`.
        operation: &'static str,
    },
}

/// Refuses `action` on `topic` unless `principal` may change it: anyone may
/// change an ordinary topic, only the platform an internal one.
pub(crate) fn may_change(
    principal: &Principal,
    topic: &str,
    action: &'static str,
) -> Result<(), AuthError> {
    if *principal == Principal::Internal || !is_internal_topic(topic) {
        return Ok(());
    }
    Err(AuthError::InternalTopic {
        topic: topic.to_owned(),
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics() {
        for name in [
            "__consumer_offsets",
            "__transaction_state",
            "__fjord_pipelines",
            "__fjord_pipeline_status",
            "__fjord_pipeline_logs",
            "__fjord_connector_positions",
            "__fjord_anything_later",
            "pipeline.orders.count.changelog",
        ] {
            assert!(is_internal_topic(name), "{name}");
        }
        for name in [
            "orders",
            "__consumer_offsets2",
            "_fjord_pipelines",
            "pipeline.orders.count",
            "orders.changelog",
            "__my_topic",
        ] {
            assert!(!is_internal_topic(name), "{name}");
        }
    }

    #[test]
    fn only_the_platform_changes_internal_topics() {
        let refused = may_change(&Principal::Anonymous, "__fjord_pipelines", "produce to");
        assert_eq!(
            refused.unwrap_err().to_string(),
            "__fjord_pipelines is an internal topic: clients may not produce to it"
        );
        assert!(may_change(&Principal::Internal, "__fjord_pipelines", "produce to").is_ok());
        assert!(may_change(&Principal::Anonymous, "orders", "produce to").is_ok());
        let user = Principal::User("alice".into());
        assert!(may_change(&user, "__fjord_pipelines", "produce to").is_err());
    }

    #[test]
    fn cluster_operations_need_a_super_user() {
        let supers = ["User:alice".to_owned()];
        let alice = Principal::User("alice".into());
        let bob = Principal::User("bob".into());
        assert!(authorize_cluster(&alice, ClusterOperation::Alter, &supers).is_ok());
        assert!(authorize_cluster(&Principal::Internal, ClusterOperation::Alter, &[]).is_ok());
        let refused = authorize_cluster(&bob, ClusterOperation::Describe, &supers);
        assert_eq!(
            refused.unwrap_err().to_string(),
            "User:bob may not DESCRIBE the cluster"
        );
        assert!(
            authorize_cluster(&Principal::Anonymous, ClusterOperation::Alter, &supers).is_err()
        );
        let anonymous = ["User:ANONYMOUS".to_owned()];
        assert!(
            authorize_cluster(&Principal::Anonymous, ClusterOperation::Alter, &anonymous).is_ok()
        );
    }
}
