//! The decision: Kafka's rules one by one, then properties over random
//! binding sets.

use std::net::IpAddr;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use Operation::*;
use ResourceType::*;

fn binding(
    resource: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    op: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: resource,
        resource_name: name.into(),
        pattern_type: pattern,
        principal: principal.into(),
        host: WILDCARD.into(),
        operation: op,
        permission,
    }
}

fn allow(resource: ResourceType, name: &str, principal: &str, op: Operation) -> AclBinding {
    binding(
        resource,
        name,
        PatternType::Literal,
        principal,
        op,
        Permission::Allow,
    )
}

fn deny(resource: ResourceType, name: &str, principal: &str, op: Operation) -> AclBinding {
    binding(
        resource,
        name,
        PatternType::Literal,
        principal,
        op,
        Permission::Deny,
    )
}

fn local() -> IpAddr {
    "127.0.0.1".parse().expect("an address")
}

fn access(principal: Principal, authorizer: Authorizer, acls: Vec<AclBinding>) -> Access {
    Access::new(
        principal,
        local(),
        Some((Arc::new(authorizer), Arc::new(AclIndex::new(acls)))),
    )
}

fn alice() -> Principal {
    Principal::User("alice".into())
}

#[test]
fn nothing_is_allowed_without_a_binding_by_default() {
    let a = access(alice(), Authorizer::new("", false), vec![]);
    assert!(!a.topic(Read, "orders"));
    assert!(!a.cluster(Describe));
    let open = access(alice(), Authorizer::new("", true), vec![]);
    assert!(open.topic(Read, "orders"));
    // allow.everyone.if.no.acl.found: only where no binding covers the
    // resource, whoever it names.
    let bob_only = vec![allow(Topic, "orders", "User:bob", Read)];
    let open = access(alice(), Authorizer::new("", true), bob_only);
    assert!(!open.topic(Read, "orders"));
    assert!(open.topic(Read, "other"));
}

#[test]
fn without_an_authorizer_everything_is_allowed() {
    let a = Access::new(Principal::Anonymous, local(), None);
    assert!(!a.enforced());
    assert!(a.topic(Write, "orders") && a.cluster(Alter) && a.any(Write, Topic));
    // READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (KIP-848).
    assert_eq!(a.operations(Group, "g"), 0b1101_0100_1000);
}

#[test]
fn super_users_and_the_internal_principal_may_do_anything() {
    let a = access(
        alice(),
        Authorizer::new("User:bob; User:alice", false),
        vec![],
    );
    assert!(a.cluster(Alter));
    let denied = vec![deny(Topic, "*", "User:*", All)];
    let internal = access(Principal::Internal, Authorizer::new("", false), denied);
    assert!(internal.topic(Write, "__fjord_pipelines"));
    assert!(internal.cluster(ClusterAction));
}

#[test]
fn the_anonymous_principal_is_user_anonymous() {
    let acls = vec![allow(Topic, "orders", "User:ANONYMOUS", Write)];
    let a = access(
        Principal::Anonymous,
        Authorizer::new("", false),
        acls.clone(),
    );
    assert!(a.topic(Write, "orders"));
    assert!(!access(alice(), Authorizer::new("", false), acls).topic(Write, "orders"));
}

#[test]
fn deny_wins_over_allow() {
    let acls = vec![
        allow(Topic, "orders", "User:alice", All),
        deny(Topic, "orders", "User:*", Write),
    ];
    let a = access(alice(), Authorizer::new("", false), acls);
    assert!(!a.topic(Write, "orders"));
    assert!(a.topic(Read, "orders"));
    // DENY WRITE does not deny the DESCRIBE that READ implies.
    assert!(a.topic(Describe, "orders"));
}

#[test]
fn patterns_literal_wildcard_prefixed() {
    let acls = vec![
        allow(Topic, "*", "User:alice", Describe),
        binding(
            Topic,
            "logs.",
            PatternType::Prefixed,
            "User:alice",
            Write,
            Permission::Allow,
        ),
        allow(Topic, "orders", "User:alice", Read),
    ];
    let a = access(alice(), Authorizer::new("", false), acls);
    assert!(a.topic(Describe, "anything"));
    assert!(a.topic(Write, "logs.app") && a.topic(Write, "logs."));
    assert!(!a.topic(Write, "logs") && !a.topic(Write, "orders"));
    assert!(a.topic(Read, "orders") && !a.topic(Read, "orders2"));
    let denied = vec![
        allow(Topic, "*", "User:alice", All),
        binding(
            Topic,
            "secret",
            PatternType::Prefixed,
            "User:alice",
            Read,
            Permission::Deny,
        ),
    ];
    let a = access(alice(), Authorizer::new("", false), denied);
    assert!(!a.topic(Read, "secret.keys") && a.topic(Read, "public"));
}

#[test]
fn hosts_filter() {
    let mut from_elsewhere = allow(Topic, "orders", "User:alice", Read);
    from_elsewhere.host = "10.0.0.1".into();
    let mut from_here = allow(Topic, "orders", "User:alice", Write);
    from_here.host = "127.0.0.1".into();
    let a = access(
        alice(),
        Authorizer::new("", false),
        vec![from_elsewhere, from_here],
    );
    assert!(!a.topic(Read, "orders") && a.topic(Write, "orders"));
    // An IPv4 client on a dual-stack socket is its IPv4 address.
    let mapped = Access::new(
        alice(),
        "::ffff:127.0.0.1".parse().expect("an address"),
        a.decider.clone(),
    );
    assert!(mapped.topic(Write, "orders"));
}

#[test]
fn kip_679_write_on_any_topic() {
    let none = access(alice(), Authorizer::new("", false), vec![]);
    assert!(!none.any(Write, Topic));
    let some = vec![binding(
        Topic,
        "logs.",
        PatternType::Prefixed,
        "User:alice",
        Write,
        Permission::Allow,
    )];
    assert!(access(alice(), Authorizer::new("", false), some.clone()).any(Write, Topic));
    // A read-only binding is not WRITE on any topic.
    let read = vec![allow(Topic, "orders", "User:alice", Read)];
    assert!(!access(alice(), Authorizer::new("", false), read).any(Write, Topic));
    // Denied everywhere, or exactly where it is allowed: not allowed.
    let mut denied = some.clone();
    denied.push(deny(Topic, "*", "User:alice", Write));
    assert!(!access(alice(), Authorizer::new("", false), denied).any(Write, Topic));
    let mut denied = some;
    denied.push(binding(
        Topic,
        "logs",
        PatternType::Prefixed,
        "User:*",
        All,
        Permission::Deny,
    ));
    assert!(!access(alice(), Authorizer::new("", false), denied).any(Write, Topic));
}

#[test]
fn authorized_operations_are_the_real_set() {
    let acls = vec![
        allow(Topic, "orders", "User:alice", Read),
        allow(Topic, "orders", "User:alice", AlterConfigs),
    ];
    let a = access(alice(), Authorizer::new("", false), acls);
    let bits = a.operations(Topic, "orders");
    let want = [Read, Describe, DescribeConfigs, AlterConfigs]
        .iter()
        .fold(0, |b, o| b | (1 << o.code()));
    assert_eq!(bits, want);
    assert_eq!(a.operations(Topic, "other"), 0);
}

fn arb_binding() -> impl Strategy<Value = AclBinding> {
    (
        prop::sample::select(vec![Topic, Group]),
        prop::sample::select(vec!["a", "ab", "abc", "b", "*"]),
        prop::bool::ANY,
        prop::sample::select(vec!["User:alice", "User:bob", "User:*"]),
        prop::sample::select(Operation::EVERY.to_vec()),
        prop::bool::ANY,
    )
        .prop_map(|(t, name, prefixed, principal, op, allowed)| {
            let pattern = if prefixed && name != "*" {
                PatternType::Prefixed
            } else {
                PatternType::Literal
            };
            let permission = if allowed {
                Permission::Allow
            } else {
                Permission::Deny
            };
            binding(t, name, pattern, principal, op, permission)
        })
}

proptest! {
    /// The index finds what a linear scan of Kafka's rules finds, and the
    /// decision's laws hold: adding a DENY never allows more, adding an
    /// ALLOW never allows less (with the default no-ACL rule off), a
    /// super user is always allowed.
    #[test]
    fn decisions_follow_the_rules(
        acls in prop::collection::vec(arb_binding(), 0..12),
        extra in arb_binding(),
        name in prop::sample::select(vec!["a", "ab", "abc", "b", "c"]),
        op in prop::sample::select(Operation::EVERY.to_vec()),
        resource in prop::sample::select(vec![Topic, Group]),
    ) {
        let authorizer = Authorizer::new("User:root", false);
        let decide = |acls: &[AclBinding]| {
            access(alice(), authorizer.clone(), acls.to_vec()).allows(op, resource, name)
        };
        // Kafka's rules, by scanning.
        let applies = |b: &&AclBinding| {
            b.resource_type == resource
                && b.covers(name)
                && (b.principal == "User:alice" || b.principal == "User:*")
        };
        let denied = acls.iter().filter(applies).any(|b| {
            b.permission == Permission::Deny && b.operation.denies(op)
        });
        let allowed = acls.iter().filter(applies).any(|b| {
            b.permission == Permission::Allow && b.operation.allows(op)
        });
        prop_assert_eq!(decide(&acls), allowed && !denied);

        let mut more = acls.clone();
        more.push(extra.clone());
        if extra.permission == Permission::Deny {
            prop_assert!(!decide(&more) || decide(&acls));
        } else {
            prop_assert!(decide(&more) || !decide(&acls));
        }
        let root = access(Principal::User("root".into()), authorizer.clone(), more);
        prop_assert!(root.allows(op, resource, name));
    }

    /// A principal allowed to write one topic is allowed to write "any
    /// topic" (KIP-679 cannot refuse a producer a topic would accept).
    #[test]
    fn allowed_somewhere_is_allowed_on_any(
        acls in prop::collection::vec(arb_binding(), 0..12),
        name in prop::sample::select(vec!["a", "ab", "abc", "b", "c"]),
    ) {
        let a = access(alice(), Authorizer::new("", false), acls);
        prop_assert!(!a.topic(Write, name) || a.any(Write, Topic));
    }
}
