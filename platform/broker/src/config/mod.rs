//! The broker's own configuration ([`BrokerConfig`]), read from YAML by the
//! `fjord` binary. Keys are Kafka's where Kafka has the concept
//! (`node.id`, `num.partitions`, `log.retention.ms`, …); each also accepts
//! a snake_case alias (`node_id`, `num_partitions`, …). Per-listener
//! settings use Kafka's prefix, `listener.name.<name>.<setting>`, and are
//! kept as text for the listener that reads them (`tls`).
//!
//! This file holds the settings themselves; `defaults` gives their values
//! when unset, `de` reads them from YAML, `validate` checks what serde
//! cannot, `security` derives the SASL and authorization setup, and
//! `derived` turns settings into the values the subsystems take (durations,
//! log and cleaner configs).

use std::collections::BTreeMap;
use std::path::PathBuf;

use fjord_log::Durability;
use serde::Deserialize;

mod de;
mod defaults;
mod derived;
mod security;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use de::LISTENER_PREFIX;
use de::{list, optional_list, super_users};

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
    /// `transaction.state.log.num.partitions`: partitions of
    /// `__transaction_state` when it is created (on the first transactional
    /// id). Kafka's default.
    #[serde(
        rename = "transaction.state.log.num.partitions",
        alias = "transaction_state_log_num_partitions"
    )]
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor`: replicas of
    /// `__transaction_state` in a cluster. Kafka's default.
    #[serde(
        rename = "transaction.state.log.replication.factor",
        alias = "transaction_state_log_replication_factor"
    )]
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a
    /// producer may ask for (INVALID_TRANSACTION_TIMEOUT past it).
    #[serde(
        rename = "transaction.max.timeout.ms",
        alias = "transaction_max_timeout_ms"
    )]
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how
    /// often the coordinator looks for transactions past their timeout.
    #[serde(
        rename = "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        alias = "transaction_abort_timed_out_transaction_cleanup_interval_ms"
    )]
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transaction.partition.verification.enable` (KIP-890 part 1): a
    /// partition leader asks the transaction coordinator before it takes
    /// the first transactional batch of a transaction (Kafka's default,
    /// true).
    #[serde(
        rename = "transaction.partition.verification.enable",
        alias = "transaction_partition_verification_enable"
    )]
    pub transaction_partition_verification_enable: bool,
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
