//! CreateAcls, DescribeAcls and DeleteAcls: Kafka's ACL admin APIs over
//! the bindings in the metadata frontend. Creating and deleting need ALTER
//! on the cluster, describing DESCRIBE (refused:
//! CLUSTER_AUTHORIZATION_FAILED). With no authorizer configured they answer
//! SECURITY_DISABLED, as Kafka's do.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::authorizer::{Access, AclBinding, AclError, AclFilter, Operation};
use crate::broker_state::BrokerState;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Why an ACL API is refused before anything else: SECURITY_DISABLED
/// without an authorizer, else CLUSTER_AUTHORIZATION_FAILED without `op`
/// on the cluster.
fn refusal(access: &Access, op: Operation) -> Option<(i16, Option<StrBytes>)> {
    if !access.enforced() {
        return Some((
            ResponseError::SecurityDisabled.code(),
            Some(text(
                "no authorizer is configured (authorizer.class.name): ACLs are off",
            )),
        ));
    }
    (!access.cluster(op)).then(|| (ResponseError::ClusterAuthorizationFailed.code(), None))
}

/// The answer to a creation or filter Fjord cannot take.
fn invalid(e: &AclError) -> (i16, Option<StrBytes>) {
    (crate::error::acl_error_code(e), Some(text(e.to_string())))
}

pub(crate) async fn create(
    state: &Arc<BrokerState>,
    request: CreateAclsRequest,
    access: &Access,
) -> CreateAclsResponse {
    if let Some((code, message)) = refusal(access, Operation::Alter) {
        let refused = AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(message);
        return CreateAclsResponse::default().with_results(vec![refused; request.creations.len()]);
    }
    let parsed: Vec<Result<AclBinding, AclError>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        state.metadata().create_acls(valid.clone()).await
    };
    if stored.is_ok() {
        for b in &valid {
            tracing::info!(acl = %b, "ACL binding created");
        }
    }
    let results = parsed
        .iter()
        .map(|p| {
            let (code, message) = match (p, &stored) {
                (Err(e), _) => invalid(e),
                (Ok(_), Err(e)) => (e.code, Some(text(e.message.clone()))),
                (Ok(_), Ok(())) => (0, None),
            };
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// The filter of a DescribeAcls request or of one DeleteAcls filter.
macro_rules! filter_of {
    ($f:expr) => {
        AclFilter::from_wire(
            $f.resource_type_filter,
            $f.resource_name_filter.as_deref(),
            $f.pattern_type_filter,
            $f.principal_filter.as_deref(),
            $f.host_filter.as_deref(),
            $f.operation,
            $f.permission_type,
        )
    };
}

pub(crate) fn describe(
    state: &BrokerState,
    request: DescribeAclsRequest,
    access: &Access,
) -> DescribeAclsResponse {
    if let Some((code, message)) = refusal(access, Operation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(message);
    }
    let filter = match filter_of!(request) {
        Ok(filter) => filter,
        Err(e) => {
            let (code, message) = invalid(&e);
            return DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(message);
        }
    };
    let acls = state.metadata().acls();
    // One entry per resource pattern, in a stable order.
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    let mut matched: Vec<&AclBinding> = acls.iter().filter(|b| filter.matches(b)).collect();
    matched.sort();
    for b in matched {
        resources
            .entry((
                b.resource_type.code(),
                b.resource_name.clone(),
                b.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(b.principal.clone()))
                    .with_host(text(b.host.clone()))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(text(name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(resources)
}

pub(crate) async fn delete(
    state: &Arc<BrokerState>,
    request: DeleteAclsRequest,
    access: &Access,
) -> DeleteAclsResponse {
    if let Some((code, message)) = refusal(access, Operation::Alter) {
        let refused = DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(message);
        return DeleteAclsResponse::default()
            .with_filter_results(vec![refused; request.filters.len()]);
    }
    let parsed: Vec<Result<AclFilter, AclError>> =
        request.filters.iter().map(|f| filter_of!(f)).collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let deleted = state.metadata().delete_acls(&valid).await;
    let mut matched = match &deleted {
        Ok(matched) => matched.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = parsed
        .iter()
        .map(|p| match (p, &deleted) {
            (Err(e), _) => {
                let (code, message) = invalid(e);
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(message)
            }
            (Ok(_), Err(e)) => DeleteAclsFilterResult::default()
                .with_error_code(e.code)
                .with_error_message(Some(text(e.message.clone()))),
            (Ok(_), Ok(_)) => {
                let bindings = matched.next().unwrap_or_default();
                for b in &bindings {
                    tracing::info!(acl = %b, "ACL binding deleted");
                }
                DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(bindings.iter().map(matching).collect())
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(b.resource_type.code())
        .with_resource_name(text(b.resource_name.clone()))
        .with_pattern_type(b.pattern_type.code())
        .with_principal(text(b.principal.clone()))
        .with_host(text(b.host.clone()))
        .with_operation(b.operation.code())
        .with_permission_type(b.permission.code())
}
