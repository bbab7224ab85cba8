//! What each route of the admin API needs, as the matching Kafka API
//! needs it, decided by the broker's authorizer over the same ACLs
//! ([`fjord_broker::Access`], made per request by `auth`).
//!
//! [`RULES`] names every route: the middleware [`check`] finds the
//! request's route there and refuses (403, naming the operation and the
//! resource) what the principal may not do. A route missing from the table
//! is refused to everyone (500), and the table test in
//! `tests/admin_routes.rs` fails on it. Lists are filtered and names in a
//! body checked by the handlers ([`Rule::InHandler`]); the pipeline routes
//! are authorized in `api/pipelines.rs` ([`Rule::Pipelines`]).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fjord_broker::{Access, Operation, ResourceType};

use crate::ApiError;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Anyone (health checks, the console's files and login).
    Open,
    /// The operation on the cluster.
    Cluster(Operation),
    /// The operation on the topic named by the `{topic}` segment.
    Topic(Operation),
    /// The operation on the group named by the `{group}` segment.
    Group(Operation),
    /// Checked by the handler: a list filtered to what the principal may
    /// describe, or a resource named in the body.
    InHandler(&'static str),
    /// Authorized by the pipeline handlers (`api/pipelines.rs`).
    Pipelines,
}

use Operation::{AlterConfigs, Delete, Describe, DescribeConfigs, Read};

/// Every route: method, path (as routed), what it needs. Documented in
/// `docs/security.md` ("The admin HTTP API").
pub(crate) const RULES: &[(&str, &str, Rule)] = &[
    ("GET", "/", Rule::Open),
    ("GET", "/console/app.js", Rule::Open),
    ("GET", "/console/style.css", Rule::Open),
    ("GET", "/health/live", Rule::Open),
    ("GET", "/health/ready", Rule::Open),
    ("GET", "/api/v1/session", Rule::Open),
    ("POST", "/api/v1/session", Rule::Open),
    ("DELETE", "/api/v1/session", Rule::Open),
    // Topic and group names, lags, sizes: DescribeCluster's right.
    ("GET", "/metrics", Rule::Cluster(Describe)),
    ("GET", "/api/v1/cluster", Rule::Cluster(Describe)),
    ("GET", "/api/v1/cluster/quorum", Rule::Cluster(Describe)),
    ("GET", "/api/v1/brokers", Rule::Cluster(Describe)),
    (
        "GET",
        "/api/v1/topics",
        Rule::InHandler("DESCRIBE on each topic listed (Metadata)"),
    ),
    (
        "POST",
        "/api/v1/topics",
        Rule::InHandler("CREATE on the cluster or the topic (CreateTopics)"),
    ),
    ("GET", "/api/v1/topics/{topic}", Rule::Topic(Describe)),
    ("DELETE", "/api/v1/topics/{topic}", Rule::Topic(Delete)),
    (
        "GET",
        "/api/v1/topics/{topic}/configs",
        Rule::Topic(DescribeConfigs),
    ),
    (
        "PATCH",
        "/api/v1/topics/{topic}/configs",
        Rule::Topic(AlterConfigs),
    ),
    ("GET", "/api/v1/topics/{topic}/records", Rule::Topic(Read)),
    (
        "GET",
        "/api/v1/groups",
        Rule::InHandler("DESCRIBE on the cluster, or on each group listed (ListGroups)"),
    ),
    ("GET", "/api/v1/groups/{group}", Rule::Group(Describe)),
    // OffsetCommit's rights: READ on the group (here) and on the topic
    // (the handler, which reads the topic from the body).
    (
        "POST",
        "/api/v1/groups/{group}/reset-offsets",
        Rule::Group(Read),
    ),
    ("GET", "/api/v1/pipelines", Rule::Pipelines),
    ("POST", "/api/v1/pipelines", Rule::Pipelines),
    ("GET", "/api/v1/pipelines/{name}", Rule::Pipelines),
    ("DELETE", "/api/v1/pipelines/{name}", Rule::Pipelines),
    ("GET", "/api/v1/pipelines/{name}/logs", Rule::Pipelines),
    ("POST", "/api/v1/pipelines/{name}/pause", Rule::Pipelines),
    ("POST", "/api/v1/pipelines/{name}/resume", Rule::Pipelines),
    ("POST", "/api/v1/pipelines/{name}/reset", Rule::Pipelines),
];

impl std::fmt::Display for Rule {
    /// As `docs/security.md` lists them: `TOPIC DESCRIBE`, `open`, …
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Open => f.write_str("open"),
            Rule::Cluster(op) => write!(f, "CLUSTER {}", op.name()),
            Rule::Topic(op) => write!(f, "TOPIC {}", op.name()),
            Rule::Group(op) => write!(f, "GROUP {}", op.name()),
            Rule::InHandler(what) => write!(f, "in the handler: {what}"),
            Rule::Pipelines => f.write_str("pipelines: see api/pipelines.rs"),
        }
    }
}

/// The 403 for `op` on `resource` `name`, with Kafka's error name.
pub(crate) fn refused(
    access: &Access,
    op: Operation,
    resource: ResourceType,
    name: &str,
) -> ApiError {
    let (kafka_error, what) = match resource {
        ResourceType::Topic => ("TOPIC_AUTHORIZATION_FAILED", format!("topic {name:?}")),
        ResourceType::Group => ("GROUP_AUTHORIZATION_FAILED", format!("group {name:?}")),
        ResourceType::Cluster => ("CLUSTER_AUTHORIZATION_FAILED", "the cluster".to_owned()),
        ResourceType::TransactionalId => (
            "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
            format!("transactional id {name:?}"),
        ),
    };
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: format!(
            "{} may not {} {what}: no ACL allows it",
            access.principal,
            op.name()
        ),
        kafka_error: Some(kafka_error.to_owned()),
    }
}

/// Refuses unless `access` allows `op` on `resource` `name`.
pub(crate) fn require(
    access: &Access,
    op: Operation,
    resource: ResourceType,
    name: &str,
) -> Result<(), ApiError> {
    if access.allows(op, resource, name) {
        Ok(())
    } else {
        Err(refused(access, op, resource, name))
    }
}

/// The rule of the route `method` `path` (a request's path) takes, with
/// the path's `{…}` segments by name (percent-decoded, as the handlers'
/// `Path` reads them).
pub(crate) fn matching(method: &str, path: &str) -> Option<(Rule, Vec<(&'static str, String)>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    RULES.iter().find_map(|(m, template, rule)| {
        if *m != method {
            return None;
        }
        let wanted: Vec<&'static str> = template.trim_start_matches('/').split('/').collect();
        if wanted.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (want, got) in wanted.iter().zip(&segments) {
            match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                Some(name) if !got.is_empty() => params.push((name, percent_decoded(got))),
                Some(_) => return None,
                None if want == got => {}
                None => return None,
            }
        }
        Some((*rule, params))
    })
}

/// `%XX` escapes decoded (a bad escape is kept as it is).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The middleware, a route layer inside the authentication: applies the
/// rule of the request's route. A routed request no rule matches is
/// refused (a route added without a rule serves no one).
pub(crate) async fn check(request: Request, next: Next) -> Response {
    let Some((rule, params)) = matching(request.method().as_str(), request.uri().path()) else {
        return ApiError::internal(format!(
            "{} {} has no authorization rule: refused (a bug: add it to api/authorize.rs)",
            request.method(),
            request.uri().path()
        ))
        .into_response();
    };
    let Some(access) = request.extensions().get::<Access>().cloned() else {
        return ApiError::internal("the request was not authenticated").into_response();
    };
    let named = |key: &str| -> String {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let decided = match rule {
        Rule::Open | Rule::InHandler(_) | Rule::Pipelines => Ok(()),
        Rule::Cluster(op) if access.cluster(op) => Ok(()),
        Rule::Cluster(op) => Err(refused(&access, op, ResourceType::Cluster, "")),
        Rule::Topic(op) => require(&access, op, ResourceType::Topic, &named("topic")),
        Rule::Group(op) => require(&access, op, ResourceType::Group, &named("group")),
    };
    match decided {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_their_rule_and_name_their_resource() {
        let (rule, params) = matching("GET", "/api/v1/topics/a%2Fb%20c/configs").unwrap();
        assert_eq!(rule, Rule::Topic(DescribeConfigs));
        assert_eq!(params, vec![("topic", "a/b c".to_owned())]);
        assert_eq!(
            matching("GET", "/api/v1/topics").map(|m| m.0),
            Some(Rule::InHandler("DESCRIBE on each topic listed (Metadata)"))
        );
        assert!(matching("PUT", "/api/v1/topics/x").is_none());
        assert!(matching("GET", "/api/v1/topics//configs").is_none());
        assert!(matching("GET", "/api/v1/nothing").is_none());
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
    }
}
