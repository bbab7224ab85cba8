//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics,
//! brokers and groups (KIP-848's GROUP resource, whose wire parts are in
//! `group_configs`). Of a broker's configs those `crate::dynamic_config`
//! lists can change while it runs, for the cluster (resource name `""`)
//! or for one broker (its id), through the metadata frontend; the others
//! are read-only (INVALID_CONFIG naming the key). Describing needs
//! DESCRIBE_CONFIGS, altering ALTER_CONFIGS, on the topic (refused:
//! TOPIC_AUTHORIZATION_FAILED), for a broker on the cluster
//! (CLUSTER_AUTHORIZATION_FAILED), for a group on the group
//! (GROUP_AUTHORIZATION_FAILED).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::dynamic_config::{self, BROKER_KEYS, DYNAMIC_KEYS};
use crate::metadata::BrokerConfigChanges;
use crate::metadata::Metadata;
use crate::topic_config::{
    RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC, SOURCE_DEFAULT,
    SOURCE_DYNAMIC_BROKER_LOGGER, SOURCE_DYNAMIC_DEFAULT_BROKER, SOURCE_STATIC_BROKER,
    TYPE_BOOLEAN, TYPE_INT, TYPE_LONG, TYPE_STRING, TopicConfigs, default_of,
};
use crate::topic_registry::ApiError;

use super::group_configs::{self, RESOURCE_GROUP};

fn sb(text: impl Into<String>) -> StrBytes {
    StrBytes::from_string(text.into())
}

/// `(name, value, source, type, read_only)` of what the broker reports.
type Entry = (String, String, i8, i8, bool);

fn broker_entries(state: &BrokerState) -> Vec<Entry> {
    let c = state.config();
    let d = state.registry().defaults();
    let fixed = |name: &str, value: String, kind: i8| {
        (name.to_string(), value, SOURCE_STATIC_BROKER, kind, true)
    };
    let mut entries = vec![
        fixed(
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
        ),
        fixed(
            "auto.create.topics.max.per.request",
            c.auto_create_topics_max_per_request.to_string(),
            TYPE_INT,
        ),
        fixed("group.max.size", c.group_max_size.to_string(), TYPE_INT),
        fixed(
            "group.protocol.metadata.max.bytes",
            c.group_protocol_metadata_max_bytes.to_string(),
            TYPE_INT,
        ),
        fixed("fetch.max.bytes", c.fetch_max_bytes.to_string(), TYPE_INT),
        fixed("log.dir", c.data_dir.display().to_string(), TYPE_STRING),
        fixed(
            "log.dir.reserve.bytes",
            c.log_dir_reserve_bytes.to_string(),
            TYPE_LONG,
        ),
        fixed("max.partitions", c.max_partitions.to_string(), TYPE_INT),
        fixed(
            "message.max.decompressed.bytes",
            d.max_decompressed_bytes.to_string(),
            TYPE_LONG,
        ),
        fixed("node.id", c.node_id.to_string(), TYPE_INT),
        fixed("num.partitions", c.num_partitions.to_string(), TYPE_INT),
        fixed(
            "offset.metadata.max.bytes",
            c.offset_metadata_max_bytes.to_string(),
            TYPE_INT,
        ),
        fixed(
            "producer.id.expiration.ms",
            c.producer_id_expiration_ms.to_string(),
            TYPE_LONG,
        ),
        fixed(
            "queued.max.request.bytes",
            c.queued_max_request_bytes.to_string(),
            TYPE_LONG,
        ),
        fixed(
            "request.max.array.elements",
            c.request_max_array_elements.to_string(),
            TYPE_INT,
        ),
        fixed(
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            TYPE_INT,
        ),
    ];
    entries.extend(
        c.request_limits()
            .into_iter()
            .map(|(name, value)| fixed(name, value.to_string(), TYPE_INT)),
    );
    entries.extend(
        crate::connection_limits::describe(c)
            .into_iter()
            .map(|(name, value, kind)| fixed(name, value, kind)),
    );
    // The dynamic ones: the value in force here and where it comes from.
    let dynamic = state.registry().dynamic();
    let (in_force, builtin) = (
        dynamic.broker_config(c),
        crate::config::BrokerConfig::default(),
    );
    for key in BROKER_KEYS {
        let (value, kind) = dynamic_config::describe_setting(&in_force, key);
        let source = match dynamic.setting_source(key) {
            Some((_, source)) => source,
            None if value == dynamic_config::describe_setting(&builtin, key).0 => SOURCE_DEFAULT,
            None => SOURCE_STATIC_BROKER,
        };
        entries.push((key.to_string(), value, source, kind, false));
    }
    let (effective, builtin) = (state.registry().defaults(), fjord_log::LogConfig::default());
    for (broker_key, topic_key) in DYNAMIC_KEYS {
        let (value, kind) = default_of(topic_key, &effective);
        let source = match dynamic.source(topic_key) {
            Some((_, source)) => source,
            None if value == default_of(topic_key, &builtin).0 => SOURCE_DEFAULT,
            None => SOURCE_STATIC_BROKER,
        };
        entries.push((broker_key.to_string(), value, source, kind, false));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// The cluster-wide dynamic defaults (resource `""`): only those set, as
/// Kafka describes them.
fn cluster_default_entries(state: &BrokerState) -> Vec<Entry> {
    let dynamic = state.registry().dynamic();
    let defaults = fjord_log::LogConfig::default();
    dynamic
        .table
        .get("")
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            let kind = match dynamic_config::topic_key(key) {
                Some(t) => default_of(t, &defaults).1,
                None => dynamic_config::describe_setting(state.config(), key).1,
            };
            (
                key.clone(),
                value.clone(),
                SOURCE_DYNAMIC_DEFAULT_BROKER,
                kind,
                false,
            )
        })
        .collect()
}

/// Refuses `op` on the resource of type `kind` called `name` unless the
/// requester may.
fn authorized(access: &Access, kind: i8, name: &str, op: Operation) -> Result<(), ApiError> {
    let refused = match kind {
        RESOURCE_TOPIC if !access.topic(op, name) => ResponseError::TopicAuthorizationFailed,
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER if !access.cluster(op) => {
            ResponseError::ClusterAuthorizationFailed
        }
        RESOURCE_GROUP if !access.group(op, name) => ResponseError::GroupAuthorizationFailed,
        // Other types are refused as unsupported after this.
        _ => return Ok(()),
    };
    Err(ApiError::new(
        refused,
        format!("not authorized to {} {name:?}", op.name()),
    ))
}

pub(crate) fn describe(
    state: &BrokerState,
    version: i16,
    request: DescribeConfigsRequest,
    access: &Access,
) -> DescribeConfigsResponse {
    let include_synonyms = version >= 1 && request.include_synonyms;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let allowed = authorized(
                access,
                resource.resource_type,
                &resource.resource_name,
                Operation::DescribeConfigs,
            );
            let entries: Result<Vec<Entry>, ApiError> = match resource.resource_type {
                _ if allowed.is_err() => allowed.map(|()| Vec::new()),
                RESOURCE_TOPIC => match state.registry().get(&resource.resource_name) {
                    Some(topic) => Ok(state
                        .registry()
                        .describe_configs(&topic.configs())
                        .into_iter()
                        .map(|(n, v, s, t)| (n, v, s, t, false))
                        .collect()),
                    None => Err(ApiError::unknown_topic(resource.resource_name.as_str())),
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    if name.is_empty() {
                        Ok(cluster_default_entries(state))
                    } else if name == state.config().node_id.to_string() {
                        Ok(broker_entries(state))
                    } else {
                        Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("this is broker {}, not {name:?}", state.config().node_id),
                        ))
                    }
                }
                RESOURCE_BROKER_LOGGER => {
                    logger_resource(state, &resource.resource_name).map(|()| {
                        crate::log_levels::describe()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(name, level)| {
                                (
                                    name,
                                    level,
                                    SOURCE_DYNAMIC_BROKER_LOGGER,
                                    TYPE_STRING,
                                    false,
                                )
                            })
                            .collect()
                    })
                }
                RESOURCE_GROUP => crate::group::configs::check_group_name(&resource.resource_name)
                    .map(|()| group_configs::entries(state, &resource.resource_name))
                    .map_err(|e| ApiError::new(ResponseError::InvalidRequest, e)),
                other => Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            // Synonyms are listed for groups' configs only.
            let synonyms = |name: &str| {
                if include_synonyms && resource.resource_type == RESOURCE_GROUP {
                    group_configs::synonyms(state, &resource.resource_name, name)
                } else {
                    Vec::new()
                }
            };
            match entries {
                Ok(entries) => {
                    let keys = resource.configuration_keys;
                    let configs = entries
                        .into_iter()
                        // Null or empty: every config, as Kafka's ConfigHelper.
                        .filter(|(name, ..)| {
                            keys.as_ref().is_none_or(|keys| {
                                keys.is_empty() || keys.iter().any(|k| k.as_str() == name)
                            })
                        })
                        .map(|(name, value, source, kind, read_only)| {
                            let entry = DescribeConfigsResourceResult::default()
                                .with_synonyms(synonyms(&name))
                                .with_name(sb(name))
                                .with_value(Some(sb(value)))
                                .with_read_only(read_only)
                                .with_config_source(source);
                            if version >= 3 {
                                entry.with_config_type(kind)
                            } else {
                                entry
                            }
                        })
                        .collect();
                    result.with_configs(configs)
                }
                Err(e) => result
                    .with_error_code(e.code)
                    .with_error_message(Some(sb(e.message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// Checks the resource is a known topic; returns its current overrides.
fn topic_resource(state: &BrokerState, kind: i8, name: &str) -> Result<TopicConfigs, ApiError> {
    match kind {
        RESOURCE_TOPIC => state
            .registry()
            .get(name)
            .map(|t| t.configs())
            .ok_or_else(|| ApiError::unknown_topic(name)),
        other => Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported"),
        )),
    }
}

fn invalid_config(e: String) -> ApiError {
    ApiError::new(ResponseError::InvalidConfig, e)
}

/// AlterConfigs: the given set replaces all of a topic's overrides.
pub(crate) async fn alter(
    state: &Arc<BrokerState>,
    request: AlterConfigsRequest,
    access: &Access,
) -> AlterConfigsResponse {
    let metadata = state.metadata();
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = &resource.resource_name;
        let configs = authorized(
            access,
            resource.resource_type,
            name,
            Operation::AlterConfigs,
        )
        .and_then(|()| topic_resource(state, resource.resource_type, name))
        .and_then(|_| {
            TopicConfigs::from_pairs(
                resource
                    .configs
                    .iter()
                    .filter_map(|c| c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))),
            )
            .map_err(invalid_config)
        });
        let outcome = if resource.resource_type == RESOURCE_GROUP {
            // AlterConfigs replaces the group's whole set.
            let items = resource
                .configs
                .iter()
                .map(|c| (c.name.as_str(), OP_SET, c.value.as_deref()));
            store_group(&metadata, access, name, items, true, request.validate_only).await
        } else if resource.resource_type == RESOURCE_BROKER {
            // AlterConfigs replaces the resource's whole set.
            let changes = authorized(access, RESOURCE_BROKER, name, Operation::AlterConfigs)
                .and_then(|()| {
                    broker_changes(
                        name,
                        resource
                            .configs
                            .iter()
                            .map(|c| (c.name.as_str(), OP_SET, c.value.as_deref())),
                    )
                });
            store_broker(state, name, changes, true, request.validate_only).await
        } else {
            store(
                &metadata,
                &resource.resource_name,
                configs,
                request.validate_only,
            )
            .await
        };
        let answer = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => answer,
            Err(e) => answer
                .with_error_code(e.code)
                .with_error_message(Some(sb(e.message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub(super) const OP_SET: i8 = 0;
pub(super) const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// IncrementalAlterConfigs: SET, DELETE, and APPEND/SUBTRACT on the list
/// config `cleanup.policy`.
pub(crate) async fn incremental_alter(
    state: &Arc<BrokerState>,
    request: IncrementalAlterConfigsRequest,
    access: &Access,
) -> IncrementalAlterConfigsResponse {
    let metadata = state.metadata();
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = &resource.resource_name;
        let configs = authorized(
            access,
            resource.resource_type,
            name,
            Operation::AlterConfigs,
        )
        .and_then(|()| topic_resource(state, resource.resource_type, name))
        .and_then(|mut configs| {
            for change in &resource.configs {
                let name = change.name.as_str();
                let value = change.value.as_ref().map(|v| v.as_str()).unwrap_or("");
                match change.config_operation {
                    OP_SET => configs.set(name, value),
                    OP_DELETE => configs.remove(name),
                    OP_APPEND | OP_SUBTRACT if name == "cleanup.policy" => {
                        let current = configs.get(name).unwrap_or("delete").to_string();
                        let mut items: Vec<&str> =
                            current.split(',').filter(|s| !s.is_empty()).collect();
                        for v in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                            if change.config_operation == OP_APPEND {
                                if !items.contains(&v) {
                                    items.push(v);
                                }
                            } else {
                                items.retain(|i| *i != v);
                            }
                        }
                        configs.set(name, &items.join(","))
                    }
                    op => Err(format!("operation {op} is not valid for {name}")),
                }
                .map_err(invalid_config)?;
            }
            Ok(configs)
        });
        let outcome = if resource.resource_type == RESOURCE_BROKER_LOGGER {
            authorized(
                access,
                RESOURCE_BROKER_LOGGER,
                name,
                Operation::AlterConfigs,
            )
            .and_then(|()| logger_resource(state, name))
            .and_then(|()| {
                let changes = resource
                    .configs
                    .iter()
                    .map(|c| logger_change(c.name.as_str(), c.config_operation, c.value.as_deref()))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(invalid_config)?;
                crate::log_levels::change(&changes, request.validate_only).map_err(invalid_config)
            })
        } else if resource.resource_type == RESOURCE_GROUP {
            let items = resource
                .configs
                .iter()
                .map(|c| (c.name.as_str(), c.config_operation, c.value.as_deref()));
            store_group(&metadata, access, name, items, false, request.validate_only).await
        } else if resource.resource_type == RESOURCE_BROKER {
            let changes = authorized(access, RESOURCE_BROKER, name, Operation::AlterConfigs)
                .and_then(|()| {
                    broker_changes(
                        name,
                        resource
                            .configs
                            .iter()
                            .map(|c| (c.name.as_str(), c.config_operation, c.value.as_deref())),
                    )
                });
            store_broker(state, name, changes, false, request.validate_only).await
        } else {
            store(
                &metadata,
                &resource.resource_name,
                configs,
                request.validate_only,
            )
            .await
        };
        let answer = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => answer,
            Err(e) => answer
                .with_error_code(e.code)
                .with_error_message(Some(sb(e.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Stores a topic's new config overrides, once checked (`validate_only`:
/// only checked).
async fn store(
    metadata: &Metadata,
    name: &str,
    configs: Result<TopicConfigs, ApiError>,
    validate_only: bool,
) -> Result<(), ApiError> {
    match configs {
        Ok(configs) if !validate_only => metadata.set_topic_configs(name, configs).await,
        checked => checked.map(|_| ()),
    }
}

/// Checks changes to the dynamic configs of broker resource `resource`
/// (`""` or a broker id): SET a dynamic key to a good value, DELETE a
/// dynamic key; a read-only or unknown key is INVALID_CONFIG naming it.
fn broker_changes<'a>(
    resource: &str,
    items: impl Iterator<Item = (&'a str, i8, Option<&'a str>)>,
) -> Result<BrokerConfigChanges, ApiError> {
    dynamic_config::check_resource(resource).map_err(invalid_config)?;
    let mut changes = BrokerConfigChanges::new();
    for (key, op, value) in items {
        let change = match op {
            OP_SET => dynamic_config::check(key, value.unwrap_or("")).map(Some),
            OP_DELETE => dynamic_config::check(key, "").map(|_| None).or_else(|e| {
                if dynamic_config::is_dynamic(key) {
                    // A bad (empty) value of a dynamic key: fine to delete.
                    Ok(None)
                } else {
                    Err(e)
                }
            }),
            op => Err(format!(
                "operation {op} is not valid for broker config {key}"
            )),
        }
        .map_err(invalid_config)?;
        changes.insert(key.to_string(), change);
    }
    Ok(changes)
}

/// Checks the broker settings that checked changes lead to here, as a
/// whole and against those in force (`dynamic_config::check_change`).
fn check_broker_result(
    state: &BrokerState,
    resource: &str,
    changes: &BrokerConfigChanges,
    replace: bool,
) -> Result<(), ApiError> {
    let dynamic = state.registry().dynamic();
    let mut table = dynamic.table.clone();
    crate::metadata::apply_broker_config_changes(&mut table, resource, changes, replace);
    let node_id = state.config().node_id;
    let next = dynamic_config::DynamicDefaults::new(table, node_id).broker_config(state.config());
    dynamic_config::check_change(&dynamic.broker_config(state.config()), &next)
        .map_err(invalid_config)
}

/// Stores checked broker config changes (`validate_only`: only checked).
async fn store_broker(
    state: &BrokerState,
    resource: &str,
    changes: Result<BrokerConfigChanges, ApiError>,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let metadata = state.metadata();
    let changes =
        changes.and_then(|c| check_broker_result(state, resource, &c, replace).map(|()| c));
    match changes {
        Ok(changes) if !validate_only => {
            metadata
                .alter_broker_configs(resource.to_string(), changes, replace)
                .await
        }
        checked => checked.map(|_| ()),
    }
}

/// Checks and (unless `validate_only`) stores changes to group `name`'s
/// configs, if the requester may alter them.
async fn store_group<'a>(
    metadata: &Metadata,
    access: &Access,
    name: &str,
    items: impl Iterator<Item = (&'a str, i8, Option<&'a str>)>,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    authorized(access, RESOURCE_GROUP, name, Operation::AlterConfigs)?;
    let changes = group_configs::changes(items).map_err(invalid_config)?;
    metadata
        .alter_group_configs(name.to_string(), changes, replace, validate_only)
        .await
}

/// One BROKER_LOGGER change: SET a level, DELETE the logger's own.
fn logger_change(
    logger: &str,
    op: i8,
    value: Option<&str>,
) -> Result<(String, Option<String>), String> {
    match op {
        OP_SET => Ok((logger.to_owned(), Some(value.unwrap_or("").to_owned()))),
        OP_DELETE => Ok((logger.to_owned(), None)),
        op => Err(format!("operation {op} is not valid for logger {logger}")),
    }
}

/// Checks a BROKER_LOGGER resource: this broker's id (a broker's loggers
/// are its own process's), with levels this process can change.
fn logger_resource(state: &BrokerState, name: &str) -> Result<(), ApiError> {
    if name != state.config().node_id.to_string() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "this is broker {}; ask broker {name:?} for its loggers",
                state.config().node_id
            ),
        ));
    }
    if !crate::log_levels::supported() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "this broker's log levels cannot be changed at run time (it is embedded: its host owns logging)",
        ));
    }
    Ok(())
}
