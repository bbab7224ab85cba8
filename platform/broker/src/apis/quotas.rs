//! DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), KIP-546:
//! the wire side of the client quotas the metadata frontend keeps
//! (`crate::metadata`) and `crate::quotas` enforces. As in Kafka, Describe
//! needs DESCRIBE_CONFIGS on the cluster and Alter ALTER_CONFIGS (without
//! an authorizer, anyone may); a refusal is CLUSTER_AUTHORIZATION_FAILED,
//! for the whole request (Describe) or every entry (Alter).
//!
//! Entity types are Kafka's `user` and `client-id` (a `null` name is the
//! default), and `ip` (KIP-612's `connection_creation_rate`, alone: an ip
//! entity names no other type). Keys and values are checked as Kafka
//! checks them.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, alter_client_quotas_response,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, Operation};
use crate::broker_state::BrokerState;
use crate::metadata::{CLIENT_ID, IP, QuotaChanges, USER, entity_from_parts, entity_parts};
use crate::topic_registry::ApiError;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Kafka's match types of a DescribeClientQuotas component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// What one filter component asks of an entity's part of its type.
enum Match {
    /// This name (`None`: the default).
    Exact(Option<String>),
    /// Any name or the default.
    Specified,
}

impl Match {
    fn accepts(&self, part: Option<Option<&str>>) -> bool {
        match (self, part) {
            (_, None) => false,
            (Match::Exact(wanted), Some(name)) => wanted.as_deref() == name,
            (Match::Specified, Some(_)) => true,
        }
    }
}

/// The filter's components by entity type, or why it is no filter.
fn parse_filter(request: &DescribeClientQuotasRequest) -> Result<Vec<(String, Match)>, ApiError> {
    let invalid = |m: String| ApiError::new(ResponseError::InvalidRequest, m);
    let mut seen = BTreeSet::new();
    let mut components = Vec::with_capacity(request.components.len());
    for c in &request.components {
        let kind = c.entity_type.to_string();
        match kind.as_str() {
            USER | CLIENT_ID | IP => {}
            other => {
                return Err(invalid(format!(
                    "Custom entity type '{other}' not supported"
                )));
            }
        }
        if !seen.insert(kind.clone()) {
            return Err(invalid(format!(
                "Duplicate filter component entity type {kind}"
            )));
        }
        let wanted = match c.match_type {
            MATCH_EXACT => Match::Exact(c._match.as_ref().map(|m| m.to_string())),
            MATCH_DEFAULT => Match::Exact(None),
            MATCH_SPECIFIED => Match::Specified,
            other => return Err(invalid(format!("Unexpected match type: {other}"))),
        };
        components.push((kind, wanted));
    }
    if seen.contains(IP) && seen.len() > 1 {
        return Err(invalid(
            "Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.".into(),
        ));
    }
    Ok(components)
}

pub(crate) fn describe(
    state: &Arc<BrokerState>,
    access: &Access,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    // Kafka answers a null message when there is no error.
    let response = DescribeClientQuotasResponse::default().with_error_message(None);
    if !access.cluster(Operation::DescribeConfigs) {
        return response
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(text(
                "DESCRIBE_CONFIGS on the cluster is needed to describe client quotas",
            )));
    }
    let components = match parse_filter(&request) {
        Ok(components) => components,
        Err(e) => {
            return response
                .with_error_code(e.code)
                .with_error_message(Some(text(&e.message)));
        }
    };
    let metadata = state.metadata();
    let (clients, ips) = (metadata.client_quotas(), metadata.ip_quotas());
    // Every entity as its `(type, name)` parts, with its values.
    let client_rows = clients
        .iter()
        .map(|(entity, values)| (entity_parts(entity).collect::<Vec<_>>(), values));
    let ip_rows = ips
        .iter()
        .map(|(ip, values)| (vec![(IP, ip.as_deref())], values));
    let entries = client_rows
        .chain(ip_rows)
        .filter(|(parts, _)| {
            let part = |kind: &str| parts.iter().find(|(k, _)| *k == kind).map(|(_, n)| *n);
            let matched = components.iter().all(|(kind, m)| m.accepts(part(kind)));
            // Strict: the entity names no type the filter does not.
            let only = !request.strict
                || parts
                    .iter()
                    .all(|(kind, _)| components.iter().any(|(k, _)| k == kind));
            matched && only
        })
        .map(|(parts, values)| {
            EntryData::default()
                .with_entity(
                    parts
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(text(kind))
                                .with_entity_name(name.map(text))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default().with_key(text(key)).with_value(value.0)
                        })
                        .collect(),
                )
        })
        .collect();
    response.with_entries(Some(entries))
}

pub(crate) async fn alter(
    state: &Arc<BrokerState>,
    access: &Access,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = access.cluster(Operation::AlterConfigs);
    let metadata = state.metadata();
    let mut entries = Vec::with_capacity(request.entries.len());
    for entry in request.entries {
        let answer = alter_client_quotas_response::EntryData::default()
            .with_error_message(None)
            .with_entity(
                entry
                    .entity
                    .iter()
                    .map(|e| {
                        alter_client_quotas_response::EntityData::default()
                            .with_entity_type(e.entity_type.clone())
                            .with_entity_name(e.entity_name.clone())
                    })
                    .collect(),
            );
        let result = if allowed {
            alter_one(&metadata, &entry, request.validate_only).await
        } else {
            Err(ApiError::new(
                ResponseError::ClusterAuthorizationFailed,
                "ALTER_CONFIGS on the cluster is needed to alter client quotas",
            ))
        };
        entries.push(match result {
            Ok(()) => {
                if !request.validate_only {
                    tracing::info!(entity = ?entry.entity, by = %access.principal, "client quotas altered");
                }
                answer
            }
            Err(e) => answer
                .with_error_code(e.code)
                .with_error_message(Some(text(&e.message))),
        });
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

async fn alter_one(
    metadata: &crate::metadata::Metadata,
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
    validate_only: bool,
) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new(ResponseError::InvalidRequest, m);
    let entity = entity_from_parts(
        entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref())),
    )
    .map_err(invalid)?;
    let mut changes = QuotaChanges::new();
    for op in &entry.ops {
        let key = op.key.to_string();
        if changes.contains_key(&key) {
            return Err(invalid(format!("Duplicate quota key {key}")));
        }
        changes.insert(key, (!op.remove).then_some(op.value));
    }
    metadata
        .alter_client_quotas(entity, changes, validate_only)
        .await
}
