//! The filters DescribeAcls and DeleteAcls select bindings with, matched
//! as Kafka's `AclBindingFilter` matches.

use super::model::{AclBinding, AclError, Operation, PatternType, Permission, ResourceType};

/// Which pattern types a filter matches (Kafka's filter pattern types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternFilter {
    /// ANY (1): bindings of any pattern type whose name is the filter's.
    Any,
    /// MATCH (2): bindings that would apply to the resource the filter
    /// names (its literal, the `*` literal, prefixes of it).
    Match,
    /// LITERAL or PREFIXED: that pattern type and the filter's name.
    Exactly(PatternType),
}

/// A filter over bindings (DescribeAcls, DeleteAcls): `None` is ANY (or a
/// null string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl AclFilter {
    /// A filter from Kafka's codes: ANY (1) is "any"; UNKNOWN (0) and
    /// codes Fjord does not serve are refused.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_wire(
        resource_type: i8,
        resource_name: Option<&str>,
        pattern_type: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Result<Self, AclError> {
        let any_or = |code: i8| code == 1;
        Ok(AclFilter {
            resource_type: if any_or(resource_type) {
                None
            } else {
                Some(
                    ResourceType::from_code(resource_type)
                        .ok_or(AclError::ResourceType(resource_type))?,
                )
            },
            resource_name: resource_name.map(str::to_owned),
            pattern: match pattern_type {
                1 => PatternFilter::Any,
                2 => PatternFilter::Match,
                code => PatternFilter::Exactly(
                    PatternType::from_code(code).ok_or(AclError::PatternType(code))?,
                ),
            },
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: if any_or(operation) {
                None
            } else {
                Some(Operation::from_code(operation).ok_or(AclError::Operation(operation))?)
            },
            permission: if any_or(permission) {
                None
            } else {
                Some(Permission::from_code(permission).ok_or(AclError::Permission(permission))?)
            },
        })
    }

    /// The filter that matches every binding.
    #[cfg(test)]
    pub(crate) fn any() -> Self {
        AclFilter {
            resource_type: None,
            resource_name: None,
            pattern: PatternFilter::Any,
            principal: None,
            host: None,
            operation: None,
            permission: None,
        }
    }

    /// Whether `binding` matches, as Kafka's `AclBindingFilter.matches`.
    pub(crate) fn matches(&self, binding: &AclBinding) -> bool {
        let same = |wanted: &Option<String>, got: &str| wanted.as_deref().is_none_or(|w| w == got);
        if self
            .resource_type
            .is_some_and(|t| t != binding.resource_type)
        {
            return false;
        }
        let pattern_ok = match self.pattern {
            PatternFilter::Any | PatternFilter::Match => true,
            PatternFilter::Exactly(p) => p == binding.pattern_type,
        };
        if !pattern_ok {
            return false;
        }
        let name_ok = match (&self.resource_name, self.pattern) {
            (None, _) => true,
            (Some(name), PatternFilter::Match) => binding.covers(name),
            (Some(name), _) => *name == binding.resource_name,
        };
        name_ok
            && same(&self.principal, &binding.principal)
            && same(&self.host, &binding.host)
            && self.operation.is_none_or(|o| o == binding.operation)
            && self.permission.is_none_or(|p| p == binding.permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorizer::model::WILDCARD;

    fn binding(
        resource_type: ResourceType,
        name: &str,
        pattern_type: PatternType,
        principal: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.into(),
            pattern_type,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation,
            permission,
        }
    }

    #[test]
    fn filters_match_as_kafkas() {
        use Operation::*;
        use PatternType::*;
        use ResourceType::*;
        let literal = binding(Topic, "orders", Literal, "User:a", Read, Permission::Allow);
        let wildcard = binding(Topic, "*", Literal, "User:a", Read, Permission::Allow);
        let prefixed = binding(Topic, "ord", Prefixed, "User:a", Read, Permission::Allow);
        let group = binding(Group, "orders", Literal, "User:a", Read, Permission::Allow);
        let filter = |name: Option<&str>, pattern: i8| {
            AclFilter::from_wire(2, name, pattern, None, None, 1, 1).expect("a filter")
        };
        let matched = |f: &AclFilter| {
            [&literal, &wildcard, &prefixed, &group]
                .iter()
                .map(|b| f.matches(b))
                .collect::<Vec<_>>()
        };
        assert_eq!(matched(&filter(None, 1)), [true, true, true, false]);
        assert_eq!(
            matched(&filter(Some("orders"), 1)),
            [true, false, false, false]
        );
        assert_eq!(
            matched(&filter(Some("orders"), 2)),
            [true, true, true, false]
        );
        assert_eq!(
            matched(&filter(Some("ord"), 4)),
            [false, false, true, false]
        );
        assert_eq!(matched(&filter(None, 3)), [true, true, false, false]);
        assert_eq!(
            matched(&filter(Some("other"), 2)),
            [false, true, false, false]
        );
        let mut by_principal = AclFilter::any();
        by_principal.principal = Some("User:b".into());
        assert!(!by_principal.matches(&literal));
        assert!(AclFilter::any().matches(&group));
        assert!(AclFilter::from_wire(0, None, 1, None, None, 1, 1).is_err());
    }
}
