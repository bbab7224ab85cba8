//! The broker's own configuration ([`BrokerConfig`]), read from YAML by the
//! `fjord` binary. Keys are Kafka's where Kafka has the concept
//! (`node.id`, `num.partitions`, `log.retention.ms`, …); each also accepts
//! a snake_case alias (`node_id`, `num_partitions`, …). Per-listener
//! settings use Kafka's prefix, `listener.name.<name>.<setting>`, and are
//! kept as text for the listener that reads them (`tls`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use fjord_log::{Durability, LogConfig};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::BrokerError;

/// How a produce with `acks` 1 or all reaches the disk before it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityConfig {
    /// Answer once the batch is in the page cache (Kafka's default); the
    /// `flush.messages`/`flush.ms` policy decides when it is fsynced.
    #[default]
    #[serde(alias = "page-cache")]
    PageCache,
    /// Answer only after the batch is fsynced (concurrent appends share one
    /// fsync).
    Fsync,
}

impl From<DurabilityConfig> for Durability {
    fn from(value: DurabilityConfig) -> Self {
        match value {
            DurabilityConfig::PageCache => Durability::PageCache,
            DurabilityConfig::Fsync => Durability::Fsync,
        }
    }
}

/// Settings of one broker. `BrokerConfig::default()` is a working single
/// node on `127.0.0.1:9092` with its data in `./fjord-data`.
///
/// ```
/// let config: fjord_broker::BrokerConfig =
///     fjord_broker::yaml::from_str("node.id: 3\nlistener: 0.0.0.0:9092\nnum.partitions: 6\n").unwrap();
/// assert_eq!((config.node_id, config.num_partitions), (3, 6));
/// ```
// `remote = "Self"`: the derived reader is `BrokerConfig::deserialize`, and
// the `Deserialize` impl below wraps it to take out the
// `listener.name.<name>.*` keys first (their names are not known in advance).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, remote = "Self")]
pub struct BrokerConfig {
    /// `log.dir`: where partition logs and topic metadata live.
    #[serde(rename = "log.dir", alias = "data_dir")]
    pub data_dir: PathBuf,
    /// `listener`: `host:port` of the one PLAINTEXT listener when
    /// `listeners` is not set; port 0 picks a free port.
    pub listener: String,
    /// `advertised.host`: the host clients are told to connect to, with
    /// `listener`. Default: the bound IP, or `localhost` when bound to a
    /// wildcard address.
    #[serde(rename = "advertised.host", alias = "advertised_host")]
    pub advertised_host: Option<String>,
    /// `advertised.port`: the port clients are told, with `listener`.
    /// Default: the bound port.
    #[serde(rename = "advertised.port", alias = "advertised_port")]
    pub advertised_port: Option<u16>,
    /// `listeners` (Kafka's): `NAME://host:port` entries, a list or one
    /// comma-separated string, e.g. `PLAINTEXT://127.0.0.1:9092,SSL://:9093`.
    /// When set, `listener`, `advertised.host` and `advertised.port` are
    /// not read.
    #[serde(rename = "listeners", deserialize_with = "optional_list")]
    pub listeners: Option<Vec<String>>,
    /// `advertised.listeners`: `NAME://host:port` to tell clients, per
    /// listener (port 0: the bound one); a listener left out advertises
    /// its bound address.
    #[serde(
        rename = "advertised.listeners",
        alias = "advertised_listeners",
        deserialize_with = "optional_list"
    )]
    pub advertised_listeners: Option<Vec<String>>,
    /// `listener.security.protocol.map`: `NAME:PROTOCOL` pairs. Default:
    /// Kafka's, PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL naming
    /// themselves.
    #[serde(
        rename = "listener.security.protocol.map",
        alias = "listener_security_protocol_map",
        deserialize_with = "optional_list"
    )]
    pub listener_security_protocol_map: Option<Vec<String>>,
    /// `inter.broker.listener.name`: the listener this broker registers
    /// with the controller quorum (what other brokers' replication and
    /// the platform's own clients connect to). Default: the first of
    /// `listeners`.
    #[serde(
        rename = "inter.broker.listener.name",
        alias = "inter_broker_listener_name"
    )]
    pub inter_broker_listener_name: Option<String>,
    /// `controller.listener.names` (KRaft's): the listener whose protocol
    /// (`listener.security.protocol.map`) and `ssl.*` settings
    /// (`listener.name.<name>.`) the controller quorum's links use; only
    /// the first name is read. Listed in `listeners` too, its address is
    /// where this node's controller listens (in place of
    /// `controller.listener`) and it is not a Kafka listener. Unset: plain
    /// TCP.
    #[serde(
        rename = "controller.listener.names",
        alias = "controller_listener_names",
        deserialize_with = "optional_list"
    )]
    pub controller_listener_names: Option<Vec<String>>,
    /// `sasl.mechanism.controller.protocol` (KRaft's): the mechanism the
    /// quorum's links log in with when the controller listener is
    /// SASL_SSL or SASL_PLAINTEXT: `SCRAM-SHA-512` (the default here; Kafka's
    /// GSSAPI is not served) or `SCRAM-SHA-256`, with the user and password
    /// of `listener.name.<controller>.<mechanism>.sasl.jaas.config`.
    #[serde(
        rename = "sasl.mechanism.controller.protocol",
        alias = "sasl_mechanism_controller_protocol"
    )]
    pub sasl_mechanism_controller_protocol: Option<String>,
    /// `ssl.keystore.location`: a PEM file with the certificate chain
    /// (leaf first) and its unencrypted private key, for TLS listeners.
    #[serde(rename = "ssl.keystore.location", alias = "ssl_keystore_location")]
    pub ssl_keystore_location: Option<PathBuf>,
    /// `ssl.keystore.type`: `PEM`, the only type read.
    #[serde(rename = "ssl.keystore.type", alias = "ssl_keystore_type")]
    pub ssl_keystore_type: Option<String>,
    /// `ssl.truststore.location`: a PEM bundle of the CAs client
    /// certificates are checked against (needed with `ssl.client.auth`).
    #[serde(rename = "ssl.truststore.location", alias = "ssl_truststore_location")]
    pub ssl_truststore_location: Option<PathBuf>,
    /// `ssl.truststore.type`: `PEM`, the only type read.
    #[serde(rename = "ssl.truststore.type", alias = "ssl_truststore_type")]
    pub ssl_truststore_type: Option<String>,
    /// `ssl.client.auth`: `required`, `requested` or `none` (default).
    #[serde(rename = "ssl.client.auth", alias = "ssl_client_auth")]
    pub ssl_client_auth: Option<String>,
    /// `ssl.principal.mapping.rules`: how a client certificate's subject
    /// becomes a user name (`RULE:pattern/replacement/[LU]`, `DEFAULT`).
    #[serde(
        rename = "ssl.principal.mapping.rules",
        alias = "ssl_principal_mapping_rules"
    )]
    pub ssl_principal_mapping_rules: Option<String>,
    /// `ssl.reload.interval.ms` (Fjord's own): how often the keystore and
    /// truststore files are checked for changes; new connections get a
    /// changed certificate within this time. Default 10 s.
    #[serde(rename = "ssl.reload.interval.ms", alias = "ssl_reload_interval_ms")]
    pub ssl_reload_interval_ms: u64,
    /// `sasl.server.max.receive.size`: the largest frame a connection may
    /// send before it authenticates, on SASL listeners. Kafka's default.
    #[serde(
        rename = "sasl.server.max.receive.size",
        alias = "sasl_server_max_receive_size"
    )]
    pub sasl_server_max_receive_size: usize,
    /// `max.connections`: connections open at once on the broker; more
    /// are closed right after they are accepted. Kafka's default is no
    /// limit; ours is 2048, about 40 MB of idle connections (an idle
    /// connection costs about 20 KB). With more than one listener, the
    /// inter-broker listener's connections are never refused by it (as in
    /// Kafka). `listener.name.<name>.max.connections` limits one listener.
    #[serde(rename = "max.connections", alias = "max_connections")]
    pub max_connections: u64,
    /// `max.connections.per.ip`: connections open at once from one client
    /// address; more are closed right after they are accepted. 0 lets only
    /// the addresses in the overrides connect. Kafka's default: no limit
    /// (2147483647).
    #[serde(rename = "max.connections.per.ip", alias = "max_connections_per_ip")]
    pub max_connections_per_ip: u64,
    /// `max.connections.per.ip.overrides`: `host:count` entries (a YAML
    /// list or one comma-separated string), over `max.connections.per.ip`
    /// for those hosts (names are resolved at start).
    #[serde(
        rename = "max.connections.per.ip.overrides",
        alias = "max_connections_per_ip_overrides",
        deserialize_with = "list"
    )]
    pub max_connections_per_ip_overrides: Vec<String>,
    /// `max.connection.creation.rate`: new connections per second the
    /// broker serves; beyond it, accepting waits (Kafka's throttling),
    /// after a burst of one second's worth. With more than one listener
    /// the inter-broker listener is exempt; `listener.name.<name>.max.connection.creation.rate`
    /// limits one listener. Kafka's default: no limit (2147483647).
    #[serde(
        rename = "max.connection.creation.rate",
        alias = "max_connection_creation_rate"
    )]
    pub max_connection_creation_rate: u64,
    /// `connections.max.idle.ms`: a connection that sends no request for
    /// this long is closed. Kafka's default, 10 minutes.
    #[serde(rename = "connections.max.idle.ms", alias = "connections_max_idle_ms")]
    pub connections_max_idle_ms: u64,
    /// `socket.request.read.timeout.ms` (Fjord's own; Kafka has only its
    /// idle timeout): once the first byte of a request frame has arrived,
    /// the whole frame must arrive within this time, else the connection
    /// is closed (a slowloris client cannot hold it with a byte now and
    /// then). Default 60 s, librdkafka's `socket.timeout.ms`: no client
    /// waits longer for a request to be sent.
    #[serde(
        rename = "socket.request.read.timeout.ms",
        alias = "socket_request_read_timeout_ms"
    )]
    pub socket_request_read_timeout_ms: u64,
    /// `listener.name.<name>.<setting>` entries (`<name>` lower-case, as
    /// Kafka writes them), e.g. `listener.name.ssl.ssl.client.auth`: a
    /// setting of one listener, over the plain key.
    #[serde(skip)]
    pub listener_overrides: BTreeMap<String, String>,
    /// `admin.listener`: `host:port` of the admin HTTP API, metrics and
    /// console (`off` for none). The `fjord` binary serves it (crate
    /// `fjord-http`); this crate only carries the setting with the others.
    #[serde(rename = "admin.listener", alias = "admin_listener")]
    pub admin_listener: String,
    /// `admin.allowed.hosts`: the names (or IPs) the admin listener answers
    /// to in a request's `Host`, any port, besides `localhost`,
    /// `127.0.0.1`, `[::1]` and the address the request arrived at, which
    /// it always answers to; `*` for any. Others are refused (421), so a
    /// web page cannot reach it through a name rebound to this machine.
    #[serde(rename = "admin.allowed.hosts", alias = "admin_allowed_hosts")]
    pub admin_allowed_hosts: Vec<String>,
    /// `admin.ssl.keystore.location`: serves the admin listener over TLS
    /// (HTTPS) with this PEM certificate chain and unencrypted key, as
    /// `ssl.keystore.location` for a Kafka listener (reloaded every
    /// `ssl.reload.interval.ms`). Unset: plain HTTP.
    #[serde(
        rename = "admin.ssl.keystore.location",
        alias = "admin_ssl_keystore_location"
    )]
    pub admin_ssl_keystore_location: Option<PathBuf>,
    /// `admin.ssl.truststore.location`: the PEM bundle of CAs admin
    /// clients' certificates are checked against (with
    /// `admin.ssl.client.auth`).
    #[serde(
        rename = "admin.ssl.truststore.location",
        alias = "admin_ssl_truststore_location"
    )]
    pub admin_ssl_truststore_location: Option<PathBuf>,
    /// `admin.ssl.client.auth`: `required`, `requested` or `none`
    /// (default), as `ssl.client.auth`. A verified client certificate's
    /// subject (after `ssl.principal.mapping.rules`) is the request's
    /// principal when it sends no other credentials.
    #[serde(rename = "admin.ssl.client.auth", alias = "admin_ssl_client_auth")]
    pub admin_ssl_client_auth: Option<String>,
    /// `admin.api.require.auth` (Redpanda's `admin_api_require_auth`):
    /// whether the admin API refuses (401) requests without credentials
    /// (HTTP Basic against the SCRAM users, a bearer token checked as
    /// OAUTHBEARER's, the console's session, or a client certificate). Default: on when `authorizer.class.name` or
    /// `sasl.admin.user` is set, off otherwise. `/health/*` stays open.
    #[serde(rename = "admin.api.require.auth", alias = "admin_api_require_auth")]
    pub admin_api_require_auth: Option<bool>,
    /// `node.id`: this broker's id in Metadata answers.
    #[serde(rename = "node.id", alias = "node_id")]
    pub node_id: i32,
    /// `cluster.id`: reported in Metadata; default: generated once and kept
    /// in the data directory.
    #[serde(rename = "cluster.id", alias = "cluster_id")]
    pub cluster_id: Option<String>,
    /// `controller.quorum.voters` (KRaft's name): `1@host:port,2@host:port,3@host:port`.
    /// When set, `fjord server` also runs this node's controller of the
    /// metadata quorum (combined mode: `node.id` must be a voter) and
    /// registers the broker with it. Unset: a single node, no quorum.
    #[serde(rename = "controller.quorum.voters", alias = "controller_voters")]
    pub controller_voters: Option<String>,
    /// `controller.listener`: where this node's controller listens for the
    /// other voters; default: its own address in `controller.quorum.voters`.
    #[serde(rename = "controller.listener", alias = "controller_listener")]
    pub controller_listener: Option<String>,
    /// `broker.session.timeout.ms`: a broker that has not heartbeated the
    /// active controller for this long is fenced. Kafka's default.
    #[serde(
        rename = "broker.session.timeout.ms",
        alias = "broker_session_timeout_ms"
    )]
    pub broker_session_timeout_ms: u64,
    /// `controller.quorum.election.timeout.ms` (KRaft's name): a controller
    /// that hears nothing from the active one for this long (randomized up
    /// to twice as long) starts an election. Kafka's default.
    #[serde(
        rename = "controller.quorum.election.timeout.ms",
        alias = "controller_election_timeout_ms"
    )]
    pub controller_election_timeout_ms: u64,
    /// `replica.lag.time.max.ms`: a follower that has not caught up with
    /// its leader for this long leaves the in-sync replicas. Kafka's
    /// default.
    #[serde(rename = "replica.lag.time.max.ms", alias = "replica_lag_time_max_ms")]
    pub replica_lag_time_max_ms: u64,
    /// `default.replication.factor`: replicas of topics created without one
    /// (auto-created topics, CreateTopics with -1). Kafka's default.
    #[serde(
        rename = "default.replication.factor",
        alias = "default_replication_factor"
    )]
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable`: Metadata and Produce create unknown
    /// topics.
    #[serde(rename = "auto.create.topics.enable", alias = "auto_create_topics")]
    pub auto_create_topics: bool,
    /// `auto.create.topics.max.per.request` (Fjord's own; Kafka has no
    /// such cap): the most topics one Metadata or Produce request
    /// auto-creates; the others are answered UNKNOWN_TOPIC_OR_PARTITION
    /// (the client asks again). Default 100.
    #[serde(
        rename = "auto.create.topics.max.per.request",
        alias = "auto_create_topics_max_per_request"
    )]
    pub auto_create_topics_max_per_request: usize,
    /// `max.partitions` (Fjord's own; Kafka has no such limit): the most
    /// partitions this broker hosts; CreateTopics, CreatePartitions and
    /// auto-creation past it are POLICY_VIOLATION, before any file is
    /// made. Internal topics count but are never refused. In a cluster:
    /// the cluster's partition replicas against this times its registered
    /// brokers. Default 100 000.
    #[serde(rename = "max.partitions", alias = "max_partitions")]
    pub max_partitions: usize,
    /// `log.dir.reserve.bytes` (Fjord's own; Kafka has no such setting):
    /// free bytes of the data directory's file system kept for the
    /// offsets topic and metadata. Below it, produce to user topics is
    /// KAFKA_STORAGE_ERROR and `/health/ready` reports degraded. Default
    /// 128 MiB; 0 turns the check off.
    #[serde(rename = "log.dir.reserve.bytes", alias = "log_dir_reserve_bytes")]
    pub log_dir_reserve_bytes: u64,
    /// `authorizer.class.name`: turns authorization (Kafka's ACLs) on.
    /// Kafka's `org.apache.kafka.metadata.authorizer.StandardAuthorizer`
    /// or `kafka.security.authorizer.AclAuthorizer`, or `acl` (also
    /// `fjord`); all mean Fjord's authorizer. Unset or empty: every
    /// request is allowed (internal topics stay the platform's).
    #[serde(rename = "authorizer.class.name", alias = "authorizer_class_name")]
    pub authorizer_class_name: Option<String>,
    /// `allow.everyone.if.no.acl.found`: with an authorizer, a resource no
    /// ACL binding covers is open to everyone (default false: closed).
    #[serde(
        rename = "allow.everyone.if.no.acl.found",
        alias = "allow_everyone_if_no_acl_found"
    )]
    pub allow_everyone_if_no_acl_found: bool,
    /// `num.partitions`: partitions of auto-created topics and of
    /// CreateTopics with `num_partitions = -1`.
    #[serde(rename = "num.partitions", alias = "num_partitions")]
    pub num_partitions: i32,
    /// `socket.request.max.bytes`: larger request frames close the
    /// connection.
    #[serde(
        rename = "socket.request.max.bytes",
        alias = "socket_request_max_bytes"
    )]
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes`: memory for requests read but not yet
    /// answered, across all connections; when it is taken, connections stop
    /// reading until answers free some. Three quarters hold request frames
    /// as they arrive (a frame takes `min(length, that share)`, so one frame
    /// up to `socket.request.max.bytes` always fits), a quarter their
    /// decoded form (see `request.max.array.elements`). Kafka's default is
    /// -1 (no bound); Fjord's is 256 MiB, and -1 turns it off.
    #[serde(
        rename = "queued.max.request.bytes",
        alias = "queued_max_request_bytes"
    )]
    pub queued_max_request_bytes: i64,
    /// `request.max.array.elements` (Fjord's own; Kafka has no such cap):
    /// the most array elements and tagged fields one request may decode to
    /// — topics for Metadata, topics plus partitions for Produce and Fetch.
    /// More closes the connection before anything past the limit is
    /// allocated. Default 100 000.
    #[serde(
        rename = "request.max.array.elements",
        alias = "request_max_array_elements"
    )]
    pub request_max_array_elements: usize,
    /// `request.max.metadata.topics` (Fjord's own): the most topics one
    /// Metadata request may name. More is answered with INVALID_REQUEST
    /// for every topic it names, and the connection stays open.
    #[serde(
        rename = "request.max.metadata.topics",
        alias = "request_max_metadata_topics"
    )]
    pub request_max_metadata_topics: usize,
    /// `request.max.produce.partitions` (Fjord's own): the most partitions
    /// one Produce request may name, counted across its topics; more is
    /// INVALID_REQUEST for each of them.
    #[serde(
        rename = "request.max.produce.partitions",
        alias = "request_max_produce_partitions"
    )]
    pub request_max_produce_partitions: usize,
    /// `request.max.fetch.partitions` (Fjord's own): the same for Fetch
    /// (the partitions to fetch plus those it forgets). Default 50 000,
    /// above the others: a consumer fetches every partition it is assigned
    /// on a broker in one request (Kafka's clients do not split it), so
    /// the 20 000-partition broker of issue 22 must fit.
    #[serde(
        rename = "request.max.fetch.partitions",
        alias = "request_max_fetch_partitions"
    )]
    pub request_max_fetch_partitions: usize,
    /// `request.max.admin.topics` (Fjord's own): the most topics one
    /// CreateTopics or DeleteTopics request may name.
    #[serde(
        rename = "request.max.admin.topics",
        alias = "request_max_admin_topics"
    )]
    pub request_max_admin_topics: usize,
    /// `request.max.groups` (Fjord's own): the most groups one
    /// DescribeGroups or DeleteGroups request may name.
    #[serde(rename = "request.max.groups", alias = "request_max_groups")]
    pub request_max_groups: usize,
    /// `fetch.max.bytes`: the most record bytes one Fetch answer carries,
    /// whatever the client's `max_bytes` (beyond a first batch that is
    /// larger, as in Kafka). Default 55 MiB, Kafka's.
    #[serde(rename = "fetch.max.bytes", alias = "fetch_max_bytes")]
    pub fetch_max_bytes: usize,
    /// `durability`: page cache (Kafka's default) or fsync before acking.
    pub durability: DurabilityConfig,
    /// `log.segment.bytes`: default `segment.bytes` of topics.
    #[serde(rename = "log.segment.bytes", alias = "segment_bytes")]
    pub segment_bytes: u64,
    /// `log.roll.ms`: default `segment.ms` of topics.
    #[serde(rename = "log.roll.ms", alias = "segment_ms")]
    pub segment_ms: Option<i64>,
    /// `log.retention.ms`: default `retention.ms` (-1 or absent: forever).
    #[serde(rename = "log.retention.ms", alias = "retention_ms")]
    pub retention_ms: Option<i64>,
    /// `log.retention.bytes`: default `retention.bytes` (-1 or absent: no
    /// limit).
    #[serde(rename = "log.retention.bytes", alias = "retention_bytes")]
    pub retention_bytes: Option<i64>,
    /// `log.flush.interval.messages`: default `flush.messages`.
    #[serde(rename = "log.flush.interval.messages", alias = "flush_messages")]
    pub flush_messages: Option<u64>,
    /// `log.flush.interval.ms`: default `flush.ms`.
    #[serde(rename = "log.flush.interval.ms", alias = "flush_ms")]
    pub flush_ms: Option<i64>,
    /// `message.max.bytes`: default `max.message.bytes` of topics.
    #[serde(rename = "message.max.bytes", alias = "max_message_bytes")]
    pub max_message_bytes: usize,
    /// `message.max.decompressed.bytes` (Fjord's own; Kafka has no such
    /// cap): the most bytes one batch's records may decompress to, on
    /// produce (more is INVALID_RECORD) and on every read of records by
    /// the broker, pipelines and the console. Default 64 MiB.
    #[serde(
        rename = "message.max.decompressed.bytes",
        alias = "max_decompressed_bytes"
    )]
    pub max_decompressed_bytes: usize,
    /// `log.retention.check.interval.ms`: how often retention runs.
    #[serde(
        rename = "log.retention.check.interval.ms",
        alias = "retention_check_interval_ms"
    )]
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often the `flush.ms` policy is
    /// checked.
    #[serde(
        rename = "log.flush.scheduler.interval.ms",
        alias = "flush_check_interval_ms"
    )]
    pub flush_check_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms`: how often recovery-point
    /// checkpoints are written.
    #[serde(
        rename = "log.flush.offset.checkpoint.interval.ms",
        alias = "checkpoint_interval_ms"
    )]
    pub checkpoint_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of
    /// an empty group waits for more members before completing. Kafka's
    /// default is 3000; ours is 100 so tests and a lone `fjord consume`
    /// start quickly, while members started together still land in one
    /// generation.
    #[serde(
        rename = "group.initial.rebalance.delay.ms",
        alias = "group_initial_rebalance_delay_ms"
    )]
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms`: smaller `session.timeout.ms` in a
    /// JoinGroup is refused (INVALID_SESSION_TIMEOUT). Kafka's default.
    #[serde(
        rename = "group.min.session.timeout.ms",
        alias = "group_min_session_timeout_ms"
    )]
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: larger `session.timeout.ms` is
    /// refused. Kafka's default.
    #[serde(
        rename = "group.max.session.timeout.ms",
        alias = "group_max_session_timeout_ms"
    )]
    pub group_max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`: committed offsets of an empty group
    /// are dropped this long after their commit. Kafka's default (7 days).
    #[serde(
        rename = "offsets.retention.minutes",
        alias = "offsets_retention_minutes"
    )]
    pub offsets_retention_minutes: u64,
    /// `quota.window.num`: the samples a client quota's rate is measured
    /// over (KIP-13). Kafka's default.
    #[serde(rename = "quota.window.num", alias = "quota_window_num")]
    pub quota_window_num: u32,
    /// `quota.window.size.seconds`: the length of one sample. Kafka's
    /// default.
    #[serde(
        rename = "quota.window.size.seconds",
        alias = "quota_window_size_seconds"
    )]
    pub quota_window_size_seconds: u32,
    /// `group.max.size`: members (joined or pending, KIP-394) one classic
    /// group may have; a JoinGroup beyond it is answered
    /// GROUP_MAX_SIZE_REACHED. Kafka's default is unbounded; ours bounds
    /// the memory one group can hold (with
    /// `group.protocol.metadata.max.bytes`).
    #[serde(rename = "group.max.size", alias = "group_max_size")]
    pub group_max_size: usize,
    /// `group.consumer.session.timeout.ms`: a KIP-848 consumer group
    /// member that has not heartbeated for this long is fenced and its
    /// partitions move. Kafka's default.
    #[serde(rename = "group.consumer.session.timeout.ms")]
    pub group_consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`: the heartbeat interval
    /// KIP-848 members are told to keep. Kafka's default.
    #[serde(rename = "group.consumer.heartbeat.interval.ms")]
    pub group_consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.min.session.timeout.ms`: the least
    /// `consumer.session.timeout.ms` a group's dynamic config may set.
    /// Kafka's default.
    #[serde(rename = "group.consumer.min.session.timeout.ms")]
    pub group_consumer_min_session_timeout_ms: i32,
    /// `group.consumer.max.session.timeout.ms`: the most. Kafka's default.
    #[serde(rename = "group.consumer.max.session.timeout.ms")]
    pub group_consumer_max_session_timeout_ms: i32,
    /// `group.consumer.min.heartbeat.interval.ms`: the least
    /// `consumer.heartbeat.interval.ms` a group's dynamic config may set.
    /// Kafka's default.
    #[serde(rename = "group.consumer.min.heartbeat.interval.ms")]
    pub group_consumer_min_heartbeat_interval_ms: i32,
    /// `group.consumer.max.heartbeat.interval.ms`: the most. Kafka's
    /// default.
    #[serde(rename = "group.consumer.max.heartbeat.interval.ms")]
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `group.consumer.migration.policy`: whether a live classic group
    /// may become a consumer group when a consumer-protocol member joins
    /// (`upgrade`), a consumer group whose last consumer-protocol member
    /// left go back to the classic protocol (`downgrade`), both
    /// (`bidirectional`, Kafka's default) or neither (`disabled`).
    #[serde(rename = "group.consumer.migration.policy")]
    pub group_consumer_migration_policy: String,
    /// `group.protocol.metadata.max.bytes` (Fjord's; Kafka has none): the
    /// bytes of protocol names and metadata one JoinGroup may carry; more
    /// is answered INVALID_REQUEST. A consumer's subscription is a few
    /// hundred bytes; Kafka Streams' with many tasks some tens of KiB.
    #[serde(
        rename = "group.protocol.metadata.max.bytes",
        alias = "group_protocol_metadata_max_bytes"
    )]
    pub group_protocol_metadata_max_bytes: usize,
    /// `offset.metadata.max.bytes`: the longest metadata string an offset
    /// commit may carry; longer is OFFSET_METADATA_TOO_LARGE. Kafka's
    /// default.
    #[serde(
        rename = "offset.metadata.max.bytes",
        alias = "offset_metadata_max_bytes"
    )]
    pub offset_metadata_max_bytes: usize,
    /// `producer.id.expiration.ms`: an idempotent producer's sequence state
    /// on a partition is dropped once it has not written there for this
    /// long (its next batch then starts over, as after UNKNOWN_PRODUCER_ID),
    /// so producers that come and go do not grow memory without end.
    /// Kafka's default (one day).
    #[serde(
        rename = "producer.id.expiration.ms",
        alias = "producer_id_expiration_ms"
    )]
    pub producer_id_expiration_ms: u64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`
    /// when it is created (on the first offset commit). Kafka's default.
    #[serde(
        rename = "offsets.topic.num.partitions",
        alias = "offsets_topic_num_partitions"
    )]
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets`
    /// in a cluster (fewer while fewer brokers are up). Kafka's default.
    #[serde(
        rename = "offsets.topic.replication.factor",
        alias = "offsets_topic_replication_factor"
    )]
    pub offsets_topic_replication_factor: i16,
    /// `offsets.commit.timeout.ms`: how long a commit waits for the offsets
    /// partition's in-sync replicas. Kafka's default.
    #[serde(
        rename = "offsets.commit.timeout.ms",
        alias = "offsets_commit_timeout_ms"
    )]
    pub offsets_commit_timeout_ms: u64,
    /// `log.cleaner.threads`: logs compacted at once (each on a blocking thread).
    #[serde(rename = "log.cleaner.threads", alias = "log_cleaner_threads")]
    pub log_cleaner_threads: usize,
    /// `log.cleaner.dedupe.buffer.size`: memory of one cleaning pass's key map.
    #[serde(
        rename = "log.cleaner.dedupe.buffer.size",
        alias = "log_cleaner_dedupe_buffer_size"
    )]
    pub log_cleaner_dedupe_buffer_size: usize,
    /// `log.cleaner.io.max.bytes.per.second`: cleaner I/O limit (absent: none).
    #[serde(
        rename = "log.cleaner.io.max.bytes.per.second",
        alias = "log_cleaner_io_max_bytes_per_second"
    )]
    pub log_cleaner_io_max_bytes_per_second: Option<f64>,
    /// `log.cleaner.backoff.ms`: how often logs are checked for cleaning.
    #[serde(rename = "log.cleaner.backoff.ms", alias = "log_cleaner_backoff_ms")]
    pub log_cleaner_backoff_ms: u64,
    /// `log.open.files.max` (Fjord's own; Kafka keeps every segment file
    /// open): the most segment `.log` files kept open at once, across all
    /// partitions; the others are opened on demand, least recently used
    /// closed first. Absent: half the soft `RLIMIT_NOFILE` in force when
    /// the broker starts (`fjord server` raises it to the hard limit first).
    #[serde(rename = "log.open.files.max", alias = "log_open_files_max")]
    pub log_open_files_max: Option<usize>,
    /// `plugin.native.dirs`: the only directories native plugin libraries
    /// are loaded from (they run unconfined in the broker). Default: none,
    /// so a manifest naming a `.so` is refused.
    #[serde(
        rename = "plugin.native.dirs",
        alias = "plugin_native_dirs",
        deserialize_with = "list"
    )]
    pub plugin_native_dirs: Vec<PathBuf>,
    /// `pipeline.allowed.paths`: directories whose files pipelines'
    /// connectors may read and write and WebAssembly plugins may be
    /// granted. Default ([`BrokerConfig::pipelines_dir`]): `<log.dir>/pipelines`.
    #[serde(
        rename = "pipeline.allowed.paths",
        alias = "pipeline_allowed_paths",
        deserialize_with = "optional_list"
    )]
    pub pipeline_allowed_paths: Option<Vec<PathBuf>>,
    /// `pipeline.allowed.listen`: `host`, `host:port` or `*` entries
    /// pipelines' connectors may listen on (a bare host: any port).
    /// Default: loopback (`127.0.0.1`, `::1`, `localhost`).
    #[serde(
        rename = "pipeline.allowed.listen",
        alias = "pipeline_allowed_listen",
        deserialize_with = "optional_list"
    )]
    pub pipeline_allowed_listen: Option<Vec<String>>,
    /// `pipeline.allowed.connect`: the same for connections pipelines
    /// open (the `http` sink, WebAssembly `network` grants). Default:
    /// loopback.
    #[serde(
        rename = "pipeline.allowed.connect",
        alias = "pipeline_allowed_connect",
        deserialize_with = "optional_list"
    )]
    pub pipeline_allowed_connect: Option<Vec<String>>,
    /// `sasl.enabled.mechanisms` (Kafka's key): the SASL mechanisms
    /// SaslHandshake offers and accepts, of `PLAIN`, `SCRAM-SHA-256` and
    /// `SCRAM-SHA-512`. Default: all three.
    #[serde(
        rename = "sasl.enabled.mechanisms",
        alias = "sasl_enabled_mechanisms",
        deserialize_with = "list"
    )]
    pub sasl_enabled_mechanisms: Vec<String>,
    /// `super.users` (Kafka's key): principals allowed everything (every
    /// ACL check passes; they manage users' SCRAM credentials),
    /// `User:alice;User:bob` or a YAML list of `User:` entries. The
    /// internal principal and `sasl.admin.user` always may.
    #[serde(
        rename = "super.users",
        alias = "super_users",
        deserialize_with = "super_users"
    )]
    pub super_users: Vec<String>,
    /// `sasl.admin.user` (Fjord's own): a user created at start, if it
    /// does not exist, with `sasl.admin.password` (SCRAM-SHA-256 and
    /// SCRAM-SHA-512 credentials), and a super user. The `fjord` binary
    /// also reads `FJORD_ADMIN_USER`.
    #[serde(rename = "sasl.admin.user", alias = "sasl_admin_user")]
    pub sasl_admin_user: Option<String>,
    /// `sasl.admin.password`: the admin user's password (only its salted
    /// credential is stored). The `fjord` binary also reads
    /// `FJORD_ADMIN_PASSWORD`.
    #[serde(rename = "sasl.admin.password", alias = "sasl_admin_password")]
    pub sasl_admin_password: Option<Password>,
    /// `sasl.oauthbearer.jwks.endpoint.url` (KIP-768): the JSON Web Key
    /// Set OAUTHBEARER tokens are checked against, a `file:` URL, a path
    /// or an `https://` URL. Setting it enables OAUTHBEARER (it joins the
    /// default `sasl.enabled.mechanisms`).
    #[serde(
        rename = "sasl.oauthbearer.jwks.endpoint.url",
        alias = "sasl_oauthbearer_jwks_endpoint_url"
    )]
    pub sasl_oauthbearer_jwks_endpoint_url: Option<String>,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`: how often the JWKS is
    /// read again. Default: 3 600 000 (an hour), Kafka's.
    #[serde(
        rename = "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        alias = "sasl_oauthbearer_jwks_endpoint_refresh_ms"
    )]
    pub sasl_oauthbearer_jwks_endpoint_refresh_ms: u64,
    /// `sasl.oauthbearer.expected.audience`: a token's `aud` must contain
    /// one of these (a list, or one comma-separated string). Default:
    /// not checked.
    #[serde(
        rename = "sasl.oauthbearer.expected.audience",
        alias = "sasl_oauthbearer_expected_audience",
        deserialize_with = "list"
    )]
    pub sasl_oauthbearer_expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: a token's `iss` must be this.
    /// Default: not checked.
    #[serde(
        rename = "sasl.oauthbearer.expected.issuer",
        alias = "sasl_oauthbearer_expected_issuer"
    )]
    pub sasl_oauthbearer_expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim naming the principal.
    /// Default: `sub`.
    #[serde(
        rename = "sasl.oauthbearer.sub.claim.name",
        alias = "sasl_oauthbearer_sub_claim_name"
    )]
    pub sasl_oauthbearer_sub_claim_name: String,
    /// `sasl.oauthbearer.scope.claim.name`: the claim listing scopes.
    /// Default: `scope`.
    #[serde(
        rename = "sasl.oauthbearer.scope.claim.name",
        alias = "sasl_oauthbearer_scope_claim_name"
    )]
    pub sasl_oauthbearer_scope_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds`: leeway on `exp`, `nbf` and
    /// `iat`. Default: 30.
    #[serde(
        rename = "sasl.oauthbearer.clock.skew.seconds",
        alias = "sasl_oauthbearer_clock_skew_seconds"
    )]
    pub sasl_oauthbearer_clock_skew_seconds: u64,
    /// `connections.max.reauth.ms` (KIP-368): when positive, a SASL
    /// session lasts at most this long (less if its OAUTHBEARER token
    /// expires first); the client must re-authenticate on the same
    /// connection before then, or its next request closes it. Default: 0
    /// (off), Kafka's.
    #[serde(
        rename = "connections.max.reauth.ms",
        alias = "connections_max_reauth_ms"
    )]
    pub connections_max_reauth_ms: u64,
}

/// A password in the config: never shown by `Debug` (configs are logged).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps `password`.
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Kafka's `super.users`: `User:a;User:b` (one string, `;`-separated), or
/// a YAML list.
fn super_users<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The prefix of per-listener settings.
pub(crate) const LISTENER_PREFIX: &str = "listener.name.";

impl<'de> Deserialize<'de> for BrokerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WithListenerOverrides)
    }
}

/// Reads a config, keeping `listener.name.*` keys apart as text and handing
/// every other key to the derived reader (which refuses unknown ones).
struct WithListenerOverrides;

impl<'de> Visitor<'de> for WithListenerOverrides {
    type Value = BrokerConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping of broker settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BrokerConfig, A::Error> {
        let mut overrides = BTreeMap::new();
        let mut config =
            BrokerConfig::deserialize(serde::de::value::MapAccessDeserializer::new(Filtered {
                inner: map,
                overrides: &mut overrides,
            }))?;
        config.listener_overrides = overrides;
        Ok(config)
    }
}

struct Filtered<'a, A> {
    inner: A,
    overrides: &'a mut BTreeMap<String, String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            if key.starts_with(LISTENER_PREFIX) {
                let value: String = self.inner.next_value()?;
                if self.overrides.insert(key.clone(), value).is_some() {
                    return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
                }
                continue;
            }
            return seed
                .deserialize(serde::de::value::StringDeserializer::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// A list setting: a YAML list, or one string of comma-separated items.
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrText {
    List(Vec<String>),
    Text(String),
}

fn list<'de, D: Deserializer<'de>, T: From<String>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    Ok(items.into_iter().map(T::from).collect())
}

fn optional_list<'de, D: Deserializer<'de>, T: From<String>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    list(d).map(Some)
}

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

    /// `<log.dir>/pipelines`: the directory pipelines may use when
    /// `pipeline.allowed.paths` is not set.
    pub fn pipelines_dir(&self) -> PathBuf {
        self.data_dir.join("pipelines")
    }

    /// `pipeline.allowed.paths`, or its default.
    pub fn allowed_paths(&self) -> Vec<PathBuf> {
        self.pipeline_allowed_paths
            .clone()
            .unwrap_or_else(|| vec![self.pipelines_dir()])
    }

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

    /// How long a connection may wait between requests.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.connections_max_idle_ms)
    }

    /// The per-API request limits, by setting name: checked at startup
    /// and listed by DescribeConfigs.
    pub(crate) fn request_limits(&self) -> [(&'static str, usize); 5] {
        [
            (
                "request.max.metadata.topics",
                self.request_max_metadata_topics,
            ),
            (
                "request.max.produce.partitions",
                self.request_max_produce_partitions,
            ),
            (
                "request.max.fetch.partitions",
                self.request_max_fetch_partitions,
            ),
            ("request.max.admin.topics", self.request_max_admin_topics),
            ("request.max.groups", self.request_max_groups),
        ]
    }

    /// How long a request frame may take to arrive once it has started.
    pub(crate) fn frame_read_timeout(&self) -> Duration {
        Duration::from_millis(self.socket_request_read_timeout_ms)
    }

    /// `sasl.enabled.mechanisms`, checked; the default list gains
    /// OAUTHBEARER when a JWKS is configured, and OAUTHBEARER needs one.
    pub(crate) fn sasl_mechanisms(&self) -> Result<Vec<crate::sasl::Mechanism>, BrokerError> {
        use crate::sasl::Mechanism;
        let mut mechanisms = self
            .sasl_enabled_mechanisms
            .iter()
            .map(|name| {
                Mechanism::from_name(name).ok_or_else(|| {
                    BrokerError::Config(format!(
                        "sasl.enabled.mechanisms: unknown mechanism {name:?} \
                         (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jwks = self.sasl_oauthbearer_jwks_endpoint_url.is_some();
        if mechanisms.contains(&Mechanism::OAuthBearer) && !jwks {
            return Err(BrokerError::Config(
                "sasl.enabled.mechanisms: OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url"
                    .to_string(),
            ));
        }
        if jwks && mechanisms == Mechanism::DEFAULT {
            mechanisms.push(Mechanism::OAuthBearer);
        }
        Ok(mechanisms)
    }

    /// Whether the admin API requires credentials: `admin.api.require.auth`,
    /// by default on once an authorizer or an admin user is configured.
    pub fn admin_requires_auth(&self) -> bool {
        self.admin_api_require_auth.unwrap_or(
            self.sasl_admin_user.is_some()
                || self
                    .authorizer_class_name
                    .as_deref()
                    .is_some_and(|n| !n.trim().is_empty()),
        )
    }

    /// `super.users` with the admin user (`User:` entries).
    pub(crate) fn all_super_users(&self) -> Vec<String> {
        let mut users = self.super_users.clone();
        if let Some(admin) = &self.sasl_admin_user {
            users.push(format!("User:{admin}"));
        }
        users
    }

    /// The authorizer `authorizer.class.name` asks for (`None`: no
    /// authorization), with `super.users` and
    /// `allow.everyone.if.no.acl.found`.
    pub(crate) fn authorizer(&self) -> Result<Option<crate::authorizer::Authorizer>, BrokerError> {
        let name = self.authorizer_class_name.as_deref().map(str::trim);
        match name {
            None | Some("") => Ok(None),
            Some(name)
                if crate::authorizer::AUTHORIZER_NAMES
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(name)) =>
            {
                Ok(Some(crate::authorizer::Authorizer::new(
                    &self.all_super_users().join(";"),
                    self.allow_everyone_if_no_acl_found,
                )))
            }
            Some(other) => Err(BrokerError::Config(format!(
                "authorizer.class.name {other:?} is not one of {}",
                crate::authorizer::AUTHORIZER_NAMES.join(", ")
            ))),
        }
    }

    /// How many segment files the broker keeps open: `log.open.files.max`,
    /// or half the soft `RLIMIT_NOFILE` now in force.
    pub fn open_files_capacity(&self) -> usize {
        self.log_open_files_max
            .unwrap_or_else(fjord_log::FileCache::default_capacity)
            .max(fjord_log::MIN_OPEN_FILES)
    }

    /// The log settings topics start from before their own overrides.
    pub fn default_log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms.filter(|ms| *ms > 0),
            retention_ms: self.retention_ms.filter(|ms| *ms >= 0),
            retention_bytes: self.retention_bytes.filter(|b| *b >= 0).map(|b| b as u64),
            flush_messages: self.flush_messages,
            flush_ms: self.flush_ms,
            durability: self.durability.into(),
            max_message_bytes: self.max_message_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            ..LogConfig::default()
        }
    }

    /// The cleaner's settings.
    pub fn cleaner_config(&self) -> fjord_log::CleanerConfig {
        fjord_log::CleanerConfig {
            dedupe_buffer_size: self.log_cleaner_dedupe_buffer_size,
            io_max_bytes_per_second: self.log_cleaner_io_max_bytes_per_second,
            threads: self.log_cleaner_threads.max(1),
        }
    }

    pub(crate) fn retention_check_interval(&self) -> Duration {
        Duration::from_millis(self.retention_check_interval_ms.max(10))
    }

    pub(crate) fn flush_check_interval(&self) -> Duration {
        Duration::from_millis(self.flush_check_interval_ms.max(10))
    }

    pub(crate) fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms.max(100))
    }
}

#[cfg(test)]
mod tests {
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
        let config: BrokerConfig =
            crate::yaml::from_str("log_open_files_max: 1\n").unwrap_or_default();
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
}
