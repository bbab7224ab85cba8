//! Authorization: Kafka's ACL model, decided. Given the ACL bindings the
//! metadata holds ([`AclIndex`]), the broker's settings ([`Authorizer`]:
//! `super.users`, `allow.everyone.if.no.acl.found`) and who asks
//! ([`Access`]: the session's principal and address), says whether an
//! operation on a resource is allowed, as Kafka's `StandardAuthorizer`
//! does:
//!
//! - super users (and the platform's internal principal) may do anything;
//! - the bindings that apply are those whose pattern covers the resource
//!   (the literal name, the literal `*`, every prefix), whose principal is
//!   the requester's or `User:*`, and whose host is the requester's IP or
//!   `*`;
//! - a resource no binding covers at all is allowed only with
//!   `allow.everyone.if.no.acl.found`;
//! - a DENY for the operation (or ALL) wins over any ALLOW;
//! - otherwise an ALLOW for the operation, ALL, or an operation that
//!   implies it (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS
//!   implies DESCRIBE_CONFIGS) allows it.
//!
//! It is for the decision and the one door handlers ask ([`Access`]); it
//! is not for storing bindings (the metadata frontend, `crate::metadata`)
//! or for the wire (the ACL APIs in `crate::apis::acls`). With no
//! `authorizer.class.name` there is no authorizer and [`Access`] allows
//! everything, as before ACLs existed.

mod filter;
mod model;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

pub(crate) use filter::AclFilter;
pub(crate) use model::{AclBinding, AclError, CLUSTER_NAME, PatternType};
pub use model::{Operation, ResourceType};
#[cfg(test)]
pub(crate) use model::{Permission, WILDCARD};

use crate::auth::Principal;

/// The `authorizer.class.name` values that turn authorization on: Kafka's
/// two ACL authorizers (so a Kafka config works unchanged) and short names.
pub const AUTHORIZER_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "acl",
    "fjord",
];

/// The broker's authorization settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Authorizer {
    /// `super.users`, as `User:name`.
    super_users: HashSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    allow_if_no_acl: bool,
}

impl Authorizer {
    /// An authorizer with `super.users` (`User:a;User:b`) and
    /// `allow.everyone.if.no.acl.found`.
    pub(crate) fn new(super_users: &str, allow_if_no_acl: bool) -> Self {
        Authorizer {
            super_users: super_users
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            allow_if_no_acl,
        }
    }

    fn is_super(&self, principal: &Principal) -> bool {
        *principal == Principal::Internal || self.super_users.contains(&principal.to_string())
    }

    /// Whether `principal` from `host` may do `op` to resource `name` of
    /// type `resource`, given `acls`.
    pub(crate) fn authorize(
        &self,
        acls: &AclIndex,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super(principal) {
            return true;
        }
        let who = principal.to_string();
        let host = host.to_string();
        let mut covered = false;
        let mut allowed = false;
        for binding in acls.covering(resource, name) {
            covered = true;
            if !applies_to(binding, &who, &host) {
                continue;
            }
            match binding.permission {
                model::Permission::Deny if binding.operation.denies(op) => return false,
                model::Permission::Allow if binding.operation.allows(op) => allowed = true,
                _ => {}
            }
        }
        allowed || (!covered && self.allow_if_no_acl)
    }

    /// Whether `principal` may do `op` to *some* resource of type
    /// `resource` (Kafka's `authorizeByResourceType`, KIP-679: an
    /// idempotent producer needs WRITE on any topic): an ALLOW binding
    /// for it exists that no DENY of the same principal covers — a DENY on
    /// the literal `*`, on the same literal, or on a prefix of its name.
    pub(crate) fn authorize_any(
        &self,
        acls: &AclIndex,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        resource: ResourceType,
    ) -> bool {
        if self.is_super(principal) {
            return true;
        }
        let who = principal.to_string();
        let host = host.to_string();
        let bindings: Vec<&AclBinding> = acls
            .of_type(resource)
            .filter(|b| applies_to(b, &who, &host))
            .collect();
        let denied = |allow: &AclBinding| {
            bindings.iter().any(|d| {
                d.permission == model::Permission::Deny
                    && d.operation.denies(op)
                    && match d.pattern_type {
                        PatternType::Literal => {
                            d.resource_name == model::WILDCARD
                                || (allow.pattern_type == PatternType::Literal
                                    && d.resource_name == allow.resource_name)
                        }
                        PatternType::Prefixed => {
                            allow.resource_name.starts_with(d.resource_name.as_str())
                        }
                    }
            })
        };
        let allowed = bindings.iter().any(|b| {
            b.permission == model::Permission::Allow && b.operation.allows(op) && !denied(b)
        });
        allowed || (self.allow_if_no_acl && acls.of_type(resource).next().is_none())
    }
}

/// Whether `binding` is for principal `who` (or `User:*`) at `host` (or
/// `*`).
fn applies_to(binding: &AclBinding, who: &str, host: &str) -> bool {
    let principal_ok = binding.principal == who
        || binding
            .principal
            .strip_prefix("User:")
            .is_some_and(|n| n == model::WILDCARD);
    principal_ok && (binding.host == model::WILDCARD || binding.host == host)
}

/// The ACL bindings, indexed for deciding: by resource type, literal names
/// in a map, the `*` literal and the prefixes in lists.
#[derive(Debug, Default)]
pub(crate) struct AclIndex {
    by_type: HashMap<ResourceType, TypeIndex>,
    len: usize,
}

#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<AclBinding>>,
    wildcard: Vec<AclBinding>,
    prefixed: Vec<AclBinding>,
}

impl AclIndex {
    /// The index of `bindings`.
    pub(crate) fn new(bindings: impl IntoIterator<Item = AclBinding>) -> Self {
        let mut index = AclIndex::default();
        for b in bindings {
            index.len += 1;
            let of_type = index.by_type.entry(b.resource_type).or_default();
            match b.pattern_type {
                PatternType::Literal if b.resource_name == model::WILDCARD => {
                    of_type.wildcard.push(b)
                }
                PatternType::Literal => of_type
                    .literal
                    .entry(b.resource_name.clone())
                    .or_default()
                    .push(b),
                PatternType::Prefixed => of_type.prefixed.push(b),
            }
        }
        index
    }

    /// The index of the stored records (a record that does not parse
    /// grants and denies nothing, and is logged).
    pub(crate) fn from_records<'a>(
        records: impl IntoIterator<Item = &'a fjord_controller::Acl>,
    ) -> Self {
        Self::new(records.into_iter().filter_map(|r| {
            let parsed = AclBinding::from_record(r);
            if parsed.is_none() {
                tracing::warn!(acl = ?r, "a stored ACL binding does not parse: ignored");
            }
            parsed
        }))
    }

    /// How many bindings there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bindings whose pattern covers resource `name` of type
    /// `resource`.
    fn covering<'a>(
        &'a self,
        resource: ResourceType,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AclBinding> + 'a {
        let of_type = self.by_type.get(&resource);
        let literal = of_type
            .and_then(|t| t.literal.get(name))
            .into_iter()
            .flatten();
        let wildcard = of_type.into_iter().flat_map(|t| &t.wildcard);
        let prefixed = of_type
            .into_iter()
            .flat_map(|t| &t.prefixed)
            .filter(move |b| name.starts_with(b.resource_name.as_str()));
        literal.chain(wildcard).chain(prefixed)
    }

    /// Every binding of type `resource`.
    fn of_type(&self, resource: ResourceType) -> impl Iterator<Item = &AclBinding> {
        self.by_type.get(&resource).into_iter().flat_map(|t| {
            t.literal
                .values()
                .flatten()
                .chain(&t.wildcard)
                .chain(&t.prefixed)
        })
    }

    /// Every binding.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        ResourceType::ALL.into_iter().flat_map(|t| self.of_type(t))
    }
}

/// Who sends a request, and what decides for them: what handlers ask
/// (one per request, made by `crate::apis::handle` from the session and
/// the broker's state; owned, so a handler may move it to a blocking
/// thread).
#[derive(Debug, Clone)]
pub struct Access {
    pub principal: Principal,
    host: IpAddr,
    /// `None`: no authorizer configured, everything is allowed.
    decider: Option<(Arc<Authorizer>, Arc<AclIndex>)>,
}

/// The value of an `authorized_operations` field that was not asked for
/// (KIP-430).
pub(crate) const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

impl Access {
    /// `principal` at `host`, decided by `authorizer` over `acls` (`None`:
    /// authorization is off).
    pub(crate) fn new(
        principal: Principal,
        host: IpAddr,
        decider: Option<(Arc<Authorizer>, Arc<AclIndex>)>,
    ) -> Self {
        // A v4 client on a dual-stack socket shows as ::ffff:a.b.c.d;
        // bindings name it a.b.c.d.
        let host = match host {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(host, IpAddr::V4),
            v4 => v4,
        };
        Access {
            principal,
            host,
            decider,
        }
    }

    /// Whether authorization is on.
    pub fn enforced(&self) -> bool {
        self.decider.is_some()
    }

    /// Whether `op` on resource `name` of type `resource` is allowed.
    pub fn allows(&self, op: Operation, resource: ResourceType, name: &str) -> bool {
        match &self.decider {
            None => true,
            Some((authorizer, acls)) => {
                authorizer.authorize(acls, &self.principal, self.host, op, resource, name)
            }
        }
    }

    /// [`Access::allows`] on a topic.
    pub fn topic(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Topic, name)
    }

    /// [`Access::allows`] on a group.
    pub fn group(&self, op: Operation, name: &str) -> bool {
        self.allows(op, ResourceType::Group, name)
    }

    /// Whether the principal may make `op` on the cluster's own state that
    /// is never open to everyone (users' SCRAM credentials): with an
    /// authorizer, its decision (ALTER or DESCRIBE on CLUSTER, super users
    /// included); without one, only `super_users` and the platform
    /// ([`crate::auth::authorize_cluster`]), where Kafka would let anyone.
    pub(crate) fn cluster_admin(
        &self,
        op: crate::auth::ClusterOperation,
        super_users: &[String],
    ) -> Result<(), crate::auth::AuthError> {
        use crate::auth::ClusterOperation;
        if !self.enforced() {
            return crate::auth::authorize_cluster(&self.principal, op, super_users);
        }
        let wanted = match op {
            ClusterOperation::Alter => Operation::Alter,
            ClusterOperation::Describe => Operation::Describe,
        };
        if self.cluster(wanted) {
            Ok(())
        } else {
            Err(crate::auth::AuthError::Cluster {
                principal: self.principal.to_string(),
                operation: op.name(),
            })
        }
    }

    /// [`Access::allows`] on the cluster.
    pub fn cluster(&self, op: Operation) -> bool {
        self.allows(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether `op` is allowed on some resource of type `resource`
    /// ([`Authorizer::authorize_any`]).
    pub(crate) fn any(&self, op: Operation, resource: ResourceType) -> bool {
        match &self.decider {
            None => true,
            Some((authorizer, acls)) => {
                authorizer.authorize_any(acls, &self.principal, self.host, op, resource)
            }
        }
    }

    /// Whether creating topic `name` is allowed: CREATE on the cluster or
    /// on the topic.
    pub fn may_create_topic(&self, name: &str) -> bool {
        self.cluster(Operation::Create) || self.topic(Operation::Create, name)
    }

    /// The KIP-430 bit field of the operations allowed on resource `name`
    /// of type `resource` (bit `code` set for each allowed operation of
    /// those that apply to the type); every one of them without an
    /// authorizer.
    pub(crate) fn operations(&self, resource: ResourceType, name: &str) -> i32 {
        resource
            .operations()
            .iter()
            .filter(|&&op| self.allows(op, resource, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}

#[cfg(test)]
mod tests;
