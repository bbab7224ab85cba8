//! Kafka's ACL vocabulary: resource types, pattern types, operations,
//! permissions and bindings, with Kafka's wire codes and names (the
//! filters DescribeAcls and DeleteAcls match them with are in `filter`). Pure values: deciding is
//! in the parent module, storing in `crate::metadata`.

use std::fmt;

/// What an ACL protects (Kafka's `ResourceType`; delegation tokens and
/// users are not served).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How a binding's resource name matches (Kafka's `PatternType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PatternType {
    /// The name itself, or every resource of the type when it is `*`.
    Literal,
    /// Every resource whose name starts with the binding's name.
    Prefixed,
}

/// What a binding allows or denies (Kafka's `AclOperation`, codes 2–12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// ALLOW or DENY (Kafka's `AclPermissionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Permission {
    Deny,
    Allow,
}

/// The name every resource of a literal pattern matches, and the host and
/// principal name that match any.
pub(crate) const WILDCARD: &str = "*";

/// The principal type Fjord's principals have (Kafka's only one too).
pub(crate) const USER_TYPE: &str = "User";

impl ResourceType {
    pub(crate) const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    pub(crate) fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's name of the type: `TOPIC`, `GROUP`, `CLUSTER`,
    /// `TRANSACTIONAL_ID` (what refusals name).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }

    /// The operations that apply to this resource type: the bits a
    /// KIP-430 `authorized_operations` answer may set.
    pub(crate) fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            // DESCRIBE_CONFIGS and ALTER_CONFIGS: a group's settings, as
            // Kafka has them since KIP-848 (3.8); a pipeline's manifest is
            // the settings of its group `pipeline.<name>`.
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
        }
    }
}

/// The name of the one CLUSTER resource.
pub(crate) const CLUSTER_NAME: &str = "kafka-cluster";

impl PatternType {
    pub(crate) fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
}

impl Operation {
    pub(crate) const EVERY: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];

    pub(crate) fn code(self) -> i8 {
        match self {
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Self> {
        Self::EVERY.into_iter().find(|o| o.code() == code)
    }

    /// Kafka's name of the operation: `READ`, `ALTER_CONFIGS`, … (what
    /// refusals name).
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    /// Whether an ALLOW binding for `self` allows `wanted`: ALL allows
    /// everything; READ, WRITE, DELETE and ALTER allow DESCRIBE;
    /// ALTER_CONFIGS allows DESCRIBE_CONFIGS (Kafka's implied operations).
    pub(crate) fn allows(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }

    /// Whether a DENY binding for `self` denies `wanted`: only the same
    /// operation or ALL (denying READ leaves DESCRIBE as it was).
    pub(crate) fn denies(self, wanted: Operation) -> bool {
        self == Operation::All || self == wanted
    }
}

impl Permission {
    pub(crate) fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// One ACL binding: who (principal, host) may or may not do what
/// (operation) to which resources (pattern).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:name` or `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why a binding cannot be stored (CreateAcls answers INVALID_REQUEST with
/// it, or UNKNOWN/unsupported codes as Kafka does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AclError {
    #[error("unknown or unsupported resource type {0}")]
    ResourceType(i8),
    #[error("pattern type {0} is not LITERAL (3) or PREFIXED (4)")]
    PatternType(i8),
    #[error("unknown operation {0}")]
    Operation(i8),
    #[error("permission type {0} is not DENY (2) or ALLOW (3)")]
    Permission(i8),
    #[error("the resource name is empty")]
    EmptyName,
    #[error("a CLUSTER binding is for the literal resource kafka-cluster, not {0:?}")]
    ClusterName(String),
    #[error("principal {0:?} is not User:<name> or User:*")]
    Principal(String),
    #[error("host {0:?} is not an IP address or *")]
    Host(String),
    #[error("operation {op} does not apply to {resource} resources")]
    NotApplicable {
        op: &'static str,
        resource: &'static str,
    },
}

impl AclBinding {
    /// A binding from Kafka's codes, checked as Kafka's authorizer checks
    /// a CreateAcls creation.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        let resource_type =
            ResourceType::from_code(resource_type).ok_or(AclError::ResourceType(resource_type))?;
        let pattern_type =
            PatternType::from_code(pattern_type).ok_or(AclError::PatternType(pattern_type))?;
        let operation = Operation::from_code(operation).ok_or(AclError::Operation(operation))?;
        let permission =
            Permission::from_code(permission).ok_or(AclError::Permission(permission))?;
        if resource_name.is_empty() {
            return Err(AclError::EmptyName);
        }
        if resource_type == ResourceType::Cluster
            && (resource_name != CLUSTER_NAME || pattern_type != PatternType::Literal)
        {
            return Err(AclError::ClusterName(resource_name.to_owned()));
        }
        match principal.split_once(':') {
            Some((USER_TYPE, name)) if !name.is_empty() => {}
            _ => return Err(AclError::Principal(principal.to_owned())),
        }
        if host != WILDCARD && host.parse::<std::net::IpAddr>().is_err() {
            return Err(AclError::Host(host.to_owned()));
        }
        if operation != Operation::All && !resource_type.operations().contains(&operation) {
            return Err(AclError::NotApplicable {
                op: operation.name(),
                resource: resource_type.name(),
            });
        }
        Ok(AclBinding {
            resource_type,
            resource_name: resource_name.to_owned(),
            pattern_type,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation,
            permission,
        })
    }

    /// The binding as the metadata stores it.
    pub(crate) fn to_record(&self) -> fjord_controller::Acl {
        fjord_controller::Acl {
            resource_type: self.resource_type.code(),
            resource_name: self.resource_name.clone(),
            pattern_type: self.pattern_type.code(),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.code(),
            permission_type: self.permission.code(),
        }
    }

    /// A stored binding, checked again (a record from a newer or a damaged
    /// store that does not parse is `None` and grants nothing).
    pub(crate) fn from_record(record: &fjord_controller::Acl) -> Option<Self> {
        Self::from_wire(
            record.resource_type,
            &record.resource_name,
            record.pattern_type,
            &record.principal,
            &record.host,
            record.operation,
            record.permission_type,
        )
        .ok()
    }

    /// Whether the binding's pattern covers resource `name` of its type.
    pub(crate) fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.resource_name.as_str()),
        }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} {:?} from {}",
            self.principal,
            self.permission.name(),
            self.operation.name(),
            self.pattern_type.name(),
            self.resource_type.name(),
            self.resource_name,
            self.host
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_kafkas() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_code(t.code()), Some(t));
        }
        for o in Operation::EVERY {
            assert_eq!(Operation::from_code(o.code()), Some(o));
        }
        assert_eq!(Operation::IdempotentWrite.code(), 12);
        assert_eq!(ResourceType::TransactionalId.code(), 5);
        assert_eq!(ResourceType::from_code(7), None, "USER is not served");
        assert_eq!(Operation::from_code(1), None, "ANY is a filter value");
    }

    #[test]
    fn creations_are_checked() {
        let ok = AclBinding::from_wire(2, "orders", 3, "User:alice", "*", 3, 3);
        assert!(ok.is_ok());
        let cases = [
            (
                AclBinding::from_wire(1, "x", 3, "User:a", "*", 3, 3),
                "resource type 1",
            ),
            (
                AclBinding::from_wire(2, "x", 2, "User:a", "*", 3, 3),
                "pattern type 2",
            ),
            (
                AclBinding::from_wire(2, "", 3, "User:a", "*", 3, 3),
                "empty",
            ),
            (
                AclBinding::from_wire(2, "x", 3, "alice", "*", 3, 3),
                "principal",
            ),
            (
                AclBinding::from_wire(2, "x", 3, "Group:a", "*", 3, 3),
                "principal",
            ),
            (
                AclBinding::from_wire(2, "x", 3, "User:a", "host.example", 3, 3),
                "host",
            ),
            (
                AclBinding::from_wire(2, "x", 3, "User:a", "*", 1, 3),
                "operation 1",
            ),
            (
                AclBinding::from_wire(2, "x", 3, "User:a", "*", 3, 1),
                "permission",
            ),
            (
                AclBinding::from_wire(4, "x", 3, "User:a", "*", 7, 3),
                "kafka-cluster",
            ),
            (
                AclBinding::from_wire(3, "g", 3, "User:a", "*", 4, 3),
                "WRITE does not apply",
            ),
        ];
        for (result, wanted) in cases {
            let e = result.expect_err(wanted).to_string();
            assert!(e.contains(wanted), "{e} (wanted {wanted})");
        }
    }

    #[test]
    fn implied_operations_are_kafkas() {
        use Operation::*;
        for op in [Read, Write, Delete, Alter, Describe, All] {
            assert!(op.allows(Describe), "{op:?}");
        }
        for op in [
            Create,
            ClusterAction,
            IdempotentWrite,
            DescribeConfigs,
            AlterConfigs,
        ] {
            assert!(!op.allows(Describe), "{op:?}");
        }
        assert!(AlterConfigs.allows(DescribeConfigs));
        assert!(!DescribeConfigs.allows(AlterConfigs));
        assert!(!Read.allows(Write));
        assert!(Operation::EVERY.iter().all(|&o| All.allows(o)));
        assert!(!Read.denies(Describe), "a DENY READ leaves DESCRIBE alone");
        assert!(All.denies(Describe));
    }
}
