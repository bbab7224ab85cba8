//! What every connection of a broker shares: its config, its topics, its
//! group coordinator, its producer ids, the address it is known by, its
//! stop signal and, in a cluster, its link to the controller quorum.
//!
//! The fields are private: handlers, the in-process API and the server
//! read them through accessors, and the parts below (the metadata
//! frontend, the group coordinator's offsets topic, replication, the log
//! cleaner) are handed only the pieces they use, so none of them imports
//! this module back.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::Principal;
use crate::authorizer::{Access, Authorizer};
use crate::client_session::Session;
use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::disk_space::DiskSpace;
use crate::error::GroupError;
use crate::group::offsets_topic::OffsetsTopic;
use crate::group::ownership;
use crate::group::{GroupCoordinator, GroupSettings};
use crate::listeners::BoundListener;
use crate::metadata::{LocalCredentials, LocalStores, Metadata, MetadataConfig};
use crate::oauth::TokenValidator;
use crate::producer_state::ProducerIds;
use crate::quorum_link::{BrokerAddress, ClusterLink};
use crate::quotas::{ClientQuotas, Quota, QuotaKind, Windows};
use crate::request_memory::RequestMemory;
use crate::sasl::Authenticator;
use crate::tls::ServerTls;
use crate::topic_registry::TopicRegistry;
use crate::txn::TxnCoordinator;

/// The shared state of one broker.
#[derive(Debug)]
pub(crate) struct BrokerState {
    config: Arc<BrokerConfig>,
    /// What the metadata frontend reads of `config`.
    metadata_config: MetadataConfig,
    registry: Arc<TopicRegistry>,
    /// The data directory's free space against `log.dir.reserve.bytes`.
    disk: DiskSpace,
    /// The records a single node keeps beside its topics: ACL bindings,
    /// SCRAM credentials, client quotas (the metadata frontend reads and
    /// changes them).
    stores: LocalStores,
    /// `None` without `authorizer.class.name`: everything is allowed.
    authorizer: Option<Arc<Authorizer>>,
    /// The rates of the clients a quota applies to.
    client_quotas: ClientQuotas,
    /// SASL's enabled mechanisms and failed-login limiter.
    authenticator: Authenticator,
    /// `super.users` and the admin user, as `User:name`.
    super_users: Vec<String>,
    groups: Arc<GroupCoordinator>,
    /// The transaction coordinator (`crate::txn`).
    txns: Arc<TxnCoordinator>,
    producer_ids: ProducerIds,
    advertised_host: String,
    advertised_port: i32,
    /// The name of the inter-broker listener (whose address the above is).
    inter_broker_listener: String,
    /// Its TLS, if it has TLS.
    inter_broker_tls: Option<Arc<ServerTls>>,
    shutdown: watch::Receiver<bool>,
    /// The controller quorum, in a cluster; `None` on a single node.
    cluster: Option<Arc<ClusterLink>>,
    /// `queued.max.request.bytes`, shared by every connection.
    request_memory: RequestMemory,
}

/// Where clients reach this broker: the host and port its inter-broker
/// listener advertises, that listener's name, and its TLS (`None`: plain
/// TCP), with which the platform's own clients connect to it and its peers.
#[derive(Debug, Clone)]
pub(crate) struct Advertised {
    pub host: String,
    pub port: i32,
    pub listener: String,
    pub tls: Option<Arc<ServerTls>>,
}

impl BrokerState {
    /// The state of a broker made of these parts; producer ids start from
    /// the current time. `config` is validated: its SASL mechanisms are
    /// known names, and the authorizer is the one it names (a config that
    /// names none that exists has failed `validate` before).
    pub(crate) fn new(
        config: Arc<BrokerConfig>,
        registry: Arc<TopicRegistry>,
        stores: LocalStores,
        groups: Arc<GroupCoordinator>,
        advertised: Advertised,
        shutdown: watch::Receiver<bool>,
        cluster: Option<Arc<ClusterLink>>,
    ) -> Self {
        let metadata_config = MetadataConfig {
            node_id: config.node_id,
            num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            offsets_topic_replication_factor: config.offsets_topic_replication_factor,
            transaction_state_replication_factor: config.transaction_state_log_replication_factor,
            controller_voters: config
                .controller_voters
                .as_deref()
                .map_or(1, |v| v.split(',').filter(|s| !s.trim().is_empty()).count()),
            max_partitions: config.max_partitions,
        };
        let authorizer = config.authorizer().ok().flatten().map(Arc::new);
        registry.set_partition_limit(config.max_partitions);
        let disk = DiskSpace::new(&config.data_dir, config.log_dir_reserve_bytes);
        let client_quotas = ClientQuotas::new(Windows {
            samples: config.quota_window_num,
            window: Duration::from_secs(u64::from(config.quota_window_size_seconds)),
        });
        let mechanisms = config.sasl_mechanisms().unwrap_or_default();
        let producer_ids = ProducerIds::new(now_ms(), config.node_id);
        BrokerState {
            authenticator: Authenticator::new(mechanisms)
                .with_max_reauth_ms(config.connections_max_reauth_ms),
            super_users: config.all_super_users(),
            metadata_config,
            registry,
            disk,
            stores,
            authorizer,
            client_quotas,
            groups,
            txns: Arc::default(),
            producer_ids,
            advertised_host: advertised.host,
            advertised_port: advertised.port,
            inter_broker_listener: advertised.listener,
            inter_broker_tls: advertised.tls,
            shutdown,
            cluster,
            request_memory: RequestMemory::new(config.queued_max_request_bytes),
            config,
        }
    }

    /// With OAUTHBEARER's token validator (built by the server, which
    /// may read or fetch the JWKS).
    pub(crate) fn with_token_validator(mut self, validator: Option<Arc<TokenValidator>>) -> Self {
        self.authenticator.set_token_validator(validator);
        self
    }

    pub(crate) fn config(&self) -> &Arc<BrokerConfig> {
        &self.config
    }

    /// The memory of requests read but not yet answered.
    pub(crate) fn request_memory(&self) -> &RequestMemory {
        &self.request_memory
    }

    pub(crate) fn registry(&self) -> &Arc<TopicRegistry> {
        &self.registry
    }

    /// The data directory's free space against its reserve.
    pub(crate) fn disk(&self) -> &DiskSpace {
        &self.disk
    }

    /// The rates of the clients a quota applies to.
    pub(crate) fn client_quotas(&self) -> &ClientQuotas {
        &self.client_quotas
    }

    /// The `kind` quota that applies to `principal` with `client_id`, if
    /// any; never one to the platform's own principal.
    pub(crate) fn client_quota(
        &self,
        kind: QuotaKind,
        principal: &Principal,
        client_id: &str,
    ) -> Option<Quota> {
        let user = match principal {
            Principal::Internal => return None,
            Principal::Anonymous => "ANONYMOUS",
            Principal::User(name) => name.as_str(),
        };
        crate::quotas::resolve(&self.metadata().client_quotas(), kind, user, client_id)
    }

    /// The users' credentials of a single node (`users.yaml`).
    pub(crate) fn local_credentials(&self) -> &Arc<LocalCredentials> {
        &self.stores.credentials
    }

    /// SASL's enabled mechanisms and failed-login limiter.
    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }

    /// `super.users` with the admin user.
    pub(crate) fn super_users(&self) -> &[String] {
        &self.super_users
    }

    pub(crate) fn groups(&self) -> &Arc<GroupCoordinator> {
        &self.groups
    }

    pub(crate) fn txns(&self) -> &Arc<TxnCoordinator> {
        &self.txns
    }

    pub(crate) fn producer_ids(&self) -> &ProducerIds {
        &self.producer_ids
    }

    pub(crate) fn advertised_host(&self) -> &str {
        &self.advertised_host
    }

    pub(crate) fn advertised_port(&self) -> i32 {
        self.advertised_port
    }

    /// The inter-broker listener's name (peers are reached at their
    /// endpoint of the same name).
    pub(crate) fn inter_broker_listener(&self) -> &str {
        &self.inter_broker_listener
    }

    /// The TLS of the inter-broker listener (`None`: plain TCP): the
    /// platform's own clients connect with its truststore and keystore.
    pub(crate) fn inter_broker_tls(&self) -> Option<&Arc<ServerTls>> {
        self.inter_broker_tls.as_ref()
    }

    /// A receiver of the stop signal (see `crate::shutdown`).
    pub(crate) fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// The link to the controller quorum, in a cluster.
    pub(crate) fn cluster(&self) -> Option<&ClusterLink> {
        self.cluster.as_deref()
    }

    /// The metadata frontend of this broker: the quorum in a cluster, the
    /// local registry on a single node.
    pub(crate) fn metadata(&self) -> Metadata {
        Metadata::new(
            Arc::clone(&self.registry),
            Arc::clone(&self.groups),
            &self.stores,
            self.metadata_config,
            self.cluster.clone(),
        )
    }

    /// What the sender of a request on `session` may do: its principal
    /// and address, with the authorizer and the ACL bindings of now.
    pub(crate) fn access(&self, session: &Session) -> Access {
        self.access_for(session.principal.clone(), session.peer.ip())
    }

    /// What `principal` connecting from `host` may do (see [`Self::access`]).
    pub(crate) fn access_for(&self, principal: Principal, host: IpAddr) -> Access {
        let decider = self
            .authorizer
            .as_ref()
            .map(|a| (Arc::clone(a), self.metadata().acls()));
        Access::new(principal, host, decider)
    }

    /// Whether this broker coordinates `group` now (see
    /// `crate::group::ownership::check`).
    pub(crate) fn check_coordinator(&self, group: &str) -> Result<(), GroupError> {
        ownership::check(&self.registry, &self.groups, self.cluster(), group)
    }

    /// The parts the offsets topic is written with.
    pub(crate) fn offsets_topic(&self) -> OffsetsTopic {
        OffsetsTopic {
            metadata: self.metadata(),
            partitions: self.config.offsets_topic_num_partitions,
            commit_timeout: Duration::from_millis(self.config.offsets_commit_timeout_ms),
        }
    }

    /// This broker as Metadata and DescribeCluster list it.
    pub(crate) fn address(&self) -> BrokerAddress {
        BrokerAddress {
            id: self.config.node_id,
            host: self.advertised_host.clone(),
            port: self.advertised_port,
            rack: None,
        }
    }

    /// The brokers clients are told about, and the controller id (see
    /// `crate::quorum_link::brokers_view`), each at its inter-broker
    /// listener's address.
    pub(crate) fn brokers_view(&self) -> (Vec<BrokerAddress>, i32) {
        crate::quorum_link::brokers_view(
            self.address(),
            &self.inter_broker_listener,
            self.cluster.as_deref(),
        )
    }

    /// The same, for a client of `listener`, as Kafka answers: this broker
    /// at that listener's advertised address, the others at the endpoint
    /// they registered under the same listener name (those without one are
    /// left out).
    pub(crate) fn brokers_view_for(&self, listener: &BoundListener) -> (Vec<BrokerAddress>, i32) {
        let this = BrokerAddress {
            host: listener.advertised_host.clone(),
            port: listener.advertised_port,
            ..self.address()
        };
        crate::quorum_link::brokers_view(this, &listener.name, self.cluster.as_deref())
    }
}

/// The group coordinator's settings from the broker's config (`group.*`,
/// `offsets.retention.minutes`).
pub(crate) fn group_settings(config: &BrokerConfig) -> GroupSettings {
    GroupSettings {
        initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        offsets_retention_ms: i64::try_from(
            config.offsets_retention_minutes.saturating_mul(60_000),
        )
        .unwrap_or(i64::MAX),
        max_size: config.group_max_size,
        protocol_metadata_max_bytes: config.group_protocol_metadata_max_bytes,
        offset_metadata_max_bytes: config.offset_metadata_max_bytes,
        consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        consumer_min_session_timeout_ms: config.group_consumer_min_session_timeout_ms,
        consumer_max_session_timeout_ms: config.group_consumer_max_session_timeout_ms,
        consumer_min_heartbeat_interval_ms: config.group_consumer_min_heartbeat_interval_ms,
        consumer_max_heartbeat_interval_ms: config.group_consumer_max_heartbeat_interval_ms,
        migration_policy: crate::group::MigrationPolicy::parse(
            &config.group_consumer_migration_policy,
        )
        .unwrap_or_default(),
    }
}
