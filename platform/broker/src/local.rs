//! In-process access to a running broker, for work that runs next to the
//! data — pipeline tasks read the local log and commit their progress
//! without a network hop.
//!
//! What a [`LocalBroker`] does goes through the same paths as the matching
//! Kafka requests: topics are created through the metadata frontend that
//! CreateTopics uses (`crate::metadata`), records are appended with
//! [`Partition::append`] (the Produce path, which wakes long-polling
//! fetches), and offsets are committed as a simple (member-less) commit of
//! the group, stored in `__consumer_offsets`, so every Kafka tool sees
//! them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::sync::watch;

use crate::auth::Principal;
use crate::authorizer::Access;
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::LocalError;
use crate::group::{CommittedOffset, Committer};
use crate::metadata::{NewTopic, Replication};
use crate::partition::Partition;
use crate::topic_registry::Topic;

/// A handle on a running broker's topics and group offsets. Cheap to clone.
#[derive(Clone)]
pub struct LocalBroker {
    pub(crate) state: Arc<BrokerState>,
}

impl std::fmt::Debug for LocalBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBroker")
            .field("node_id", &self.state.config().node_id)
            .finish()
    }
}

impl LocalBroker {
    /// What `principal`, connecting from `host`, may do: decided by the
    /// broker's authorizer over the ACLs it holds now, exactly as for a
    /// Kafka request (everything, when no authorizer is configured). For
    /// the platform's other doors — the admin HTTP API, pipelines running
    /// as a principal — so that they apply the same ACLs as the Kafka port.
    pub fn access(&self, principal: Principal, host: IpAddr) -> Access {
        self.state.access_for(principal, host)
    }

    /// The broker's OAUTHBEARER token validator, when a JWKS is configured
    /// (`sasl.oauthbearer.jwks.endpoint.url`): other front doors (the
    /// admin API's bearer tokens) accept what the Kafka port accepts.
    /// `validate` blocks (it may fetch the JWKS): call it from
    /// `tokio::task::spawn_blocking`.
    pub fn token_validator(&self) -> Option<Arc<crate::oauth::TokenValidator>> {
        self.state.authenticator().token_validator().cloned()
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.state.config().node_id
    }

    /// Whether this broker is one of a cluster (its topics and partition
    /// roles come from the controller quorum).
    pub fn in_cluster(&self) -> bool {
        self.state.cluster().is_some()
    }

    /// The address Kafka clients reach this broker at (its advertised host
    /// and port): the bootstrap server for a client in the same process.
    pub fn bootstrap_server(&self) -> String {
        format!(
            "{}:{}",
            self.state.advertised_host(),
            self.state.advertised_port()
        )
    }

    /// The user name and password with which the platform authenticates
    /// (SASL/PLAIN) to the brokers of its cluster, to write internal
    /// topics that other brokers lead: the internal principal and the
    /// secret the controller quorum drew. `None` on a single node (it
    /// writes in process), and in a cluster until the secret is drawn.
    pub fn internal_credentials(&self) -> Option<(&'static str, String)> {
        let link = self.state.cluster()?;
        let secret = link.metadata().internal_secret.clone()?;
        Some((crate::auth::INTERNAL_PRINCIPAL, secret.expose().to_owned()))
    }

    /// The Kafka client properties (librdkafka's and the Java client's
    /// names) with which the platform's own clients connect to the brokers
    /// of its cluster as the internal principal: this broker's inter-broker
    /// listener as bootstrap server, SASL/PLAIN with the internal secret,
    /// and over TLS when that listener has TLS (the listener's truststore
    /// verifies the brokers, its keystore is the client certificate).
    /// `None` as [`LocalBroker::internal_credentials`].
    pub fn internal_client_properties(&self) -> Option<Vec<(&'static str, String)>> {
        let (user, password) = self.internal_credentials()?;
        let tls = self.state.inter_broker_tls();
        let protocol = if tls.is_some() {
            "SASL_SSL"
        } else {
            "SASL_PLAINTEXT"
        };
        let mut properties = vec![
            ("bootstrap.servers", self.bootstrap_server()),
            ("security.protocol", protocol.to_owned()),
            ("sasl.mechanism", "PLAIN".to_owned()),
            ("sasl.username", user.to_owned()),
            ("sasl.password", password),
        ];
        if let Some(tls) = tls {
            let settings = tls.settings();
            let keystore = settings.keystore.display().to_string();
            if let Some(truststore) = &settings.truststore {
                properties.push(("ssl.ca.location", truststore.display().to_string()));
            }
            // One PEM file holds the chain and the key; librdkafka reads
            // each from it.
            properties.push(("ssl.certificate.location", keystore.clone()));
            properties.push(("ssl.key.location", keystore));
        }
        Some(properties)
    }

    /// Whether this broker may serve `partition` as its leader now: on a
    /// single node always; in a cluster while it leads the partition and
    /// its session with the quorum is current (what Produce and Fetch
    /// check).
    pub fn leads(&self, partition: &Partition) -> bool {
        crate::quorum_link::check_leader(self.state.cluster(), partition, -1).is_ok()
    }

    /// Whether [`LocalBroker::ensure_topic`] can create a topic now. In a
    /// cluster that waits for as many live brokers as the platform's own
    /// topics want replicas (`offsets.topic.replication.factor`, at most
    /// the number of voters): a topic created while the first broker is
    /// alone would keep a single replica. Always true on a single node.
    pub fn replicas_available(&self) -> bool {
        self.state.metadata().replicas_available()
    }

    /// The topic called `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.state.registry().get(name)
    }

    /// The topic called `name`, created first when missing with
    /// `partitions` (the broker's `num.partitions` when `None`) and the
    /// topic `configs` (`cleanup.policy=compact`, …). An existing topic is
    /// returned as it is. In a cluster the topic is created through the
    /// quorum, replicated as the offsets topic is
    /// (`offsets.topic.replication.factor`), and refused while fewer
    /// brokers are live ([`LocalBroker::replicas_available`]).
    pub async fn ensure_topic(
        &self,
        name: &str,
        partitions: Option<i32>,
        configs: &[(&str, &str)],
    ) -> Result<Arc<Topic>, LocalError> {
        let topic = NewTopic {
            partitions,
            replication: Replication::Internal,
            configs: configs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            ..NewTopic::named(name)
        };
        // Created concurrently (in a cluster, maybe by another broker that
        // this one has not caught up with yet): wait a little for it.
        self.state
            .metadata()
            .create_or_get(topic, Duration::from_secs(5))
            .await
            .map_err(|e| {
                // These messages name the topic already.
                let named = [
                    ResponseError::TopicAlreadyExists.code(),
                    ResponseError::UnknownServerError.code(),
                ];
                let message = if named.contains(&e.code) {
                    e.message
                } else {
                    format!("topic {name}: {}", e.message)
                };
                LocalError::Metadata {
                    code: e.code,
                    message,
                }
            })
    }

    /// Adds ACL bindings as the platform itself (CreateAcls without the
    /// ALTER check: the caller is in process, like the operator's own
    /// tools). Each is checked as CreateAcls checks it; one that is not
    /// valid refuses all (INVALID_REQUEST).
    pub async fn create_acls(&self, acls: &[fjord_controller::Acl]) -> Result<(), LocalError> {
        let mut bindings = Vec::with_capacity(acls.len());
        for acl in acls {
            let binding = crate::authorizer::AclBinding::from_wire(
                acl.resource_type,
                &acl.resource_name,
                acl.pattern_type,
                &acl.principal,
                &acl.host,
                acl.operation,
                acl.permission_type,
            )
            .map_err(|e| LocalError::Metadata {
                code: ResponseError::InvalidRequest.code(),
                message: format!("{acl:?}: {e}"),
            })?;
            bindings.push(binding);
        }
        self.state
            .metadata()
            .create_acls(bindings)
            .await
            .map_err(|e| LocalError::Metadata {
                code: e.code,
                message: e.message,
            })
    }

    /// Commits `offsets` (topic, partition, next offset to read) for
    /// `group` as a member-less commit. Refused while the group has members
    /// (a consumer using the same group id), as Kafka refuses it.
    pub async fn commit(
        &self,
        group: &str,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), LocalError> {
        let offsets = CommittedOffset::from_positions(offsets, now_ms());
        self.state
            .groups()
            .commit_offsets(
                &self.state.offsets_topic(),
                group,
                Committer::SIMPLE,
                offsets,
            )
            .await
            .map_err(|source| {
                let group = group.to_owned();
                if source.is_storage() {
                    LocalError::CommitNotStored { group, source }
                } else {
                    LocalError::CommitRefused { group, source }
                }
            })
    }

    /// An in-process transactional producer of id `id` (transactions of at
    /// most `timeout_ms`): the id's previous producer is fenced and its
    /// open transaction aborted first. Needs this broker to coordinate the
    /// id (a single node does).
    pub async fn transactional_writer(
        &self,
        id: &str,
        timeout_ms: i32,
    ) -> Result<crate::TransactionalWriter, LocalError> {
        crate::TransactionalWriter::init(Arc::clone(&self.state), id, timeout_ms).await
    }

    /// The offset `group` committed for `topic`/`partition`, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.state
            .groups()
            .committed(group, topic, partition)
            .map(|o| o.offset)
    }

    /// Becomes `true` when the broker starts shutting down.
    pub fn shutting_down(&self) -> watch::Receiver<bool> {
        self.state.shutdown()
    }

    /// The data directory's free space against `log.dir.reserve.bytes`
    /// (degraded below it: produce to user topics is refused).
    pub fn disk(&self) -> crate::DiskStatus {
        self.state.disk().status()
    }
}
