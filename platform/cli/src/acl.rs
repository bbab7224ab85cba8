//! `fjord acl create|list|delete`: Kafka's ACLs, with rpk's flags, over
//! the Kafka protocol (CreateAcls, DescribeAcls, DeleteAcls as raw
//! requests: librdkafka's ACL calls are not in the `rdkafka` crate). The
//! principal making the change needs ALTER on the cluster (DESCRIBE to
//! list); the broker decides (docs/security.md).

use anyhow::{Result, bail};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientArgs;
use crate::raw::{Connection, describe_error};

/// CreateAcls, DescribeAcls and DeleteAcls v1 (v1 brings pattern types;
/// Kafka 2.0+ and Fjord answer it).
const VERSION: i16 = 1;
const CLIENT_ID: &str = "fjord-cli";

/// Kafka's codes.
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const DENY: i8 = 2;
const ALLOW: i8 = 3;
const CLUSTER_NAME: &str = "kafka-cluster";

const RESOURCE_TYPES: [(i8, &str); 4] = [
    (2, "TOPIC"),
    (3, "GROUP"),
    (4, "CLUSTER"),
    (5, "TRANSACTIONAL_ID"),
];
const OPERATIONS: [(i8, &str); 11] = [
    (2, "ALL"),
    (3, "READ"),
    (4, "WRITE"),
    (5, "CREATE"),
    (6, "DELETE"),
    (7, "ALTER"),
    (8, "DESCRIBE"),
    (9, "CLUSTER_ACTION"),
    (10, "DESCRIBE_CONFIGS"),
    (11, "ALTER_CONFIGS"),
    (12, "IDEMPOTENT_WRITE"),
];

/// `fjord acl …`
#[derive(clap::Subcommand, Debug)]
pub enum AclCommand {
    /// Create ACLs: every combination of the principals, operations and
    /// resources given.
    Create {
        #[command(flatten)]
        acl: AclArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the ACLs that match the flags (none: all).
    #[command(alias = "describe")]
    List {
        #[command(flatten)]
        acl: AclArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete the ACLs that match the flags, and print them.
    Delete {
        #[command(flatten)]
        acl: AclArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The flags that name bindings (rpk's names).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AclArgs {
    /// Principals to allow (`User:alice`, `User:*`); repeatable.
    #[arg(long = "allow-principal")]
    pub allow_principal: Vec<String>,
    /// Principals to deny; repeatable.
    #[arg(long = "deny-principal")]
    pub deny_principal: Vec<String>,
    /// Hosts the allowing ACLs apply to (IP addresses; default: any, `*`).
    #[arg(long = "allow-host")]
    pub allow_host: Vec<String>,
    /// Hosts the denying ACLs apply to (default: any, `*`).
    #[arg(long = "deny-host")]
    pub deny_host: Vec<String>,
    /// Operations: all, read, write, create, delete, alter, describe,
    /// cluster_action, describe_configs, alter_configs, idempotent_write;
    /// repeatable or comma-separated.
    #[arg(long = "operation", value_delimiter = ',')]
    pub operation: Vec<String>,
    /// Topics (`*` for every topic); repeatable.
    #[arg(long = "topic")]
    pub topic: Vec<String>,
    /// Consumer groups (`*` for every group); repeatable.
    #[arg(long = "group")]
    pub group: Vec<String>,
    /// The cluster resource.
    #[arg(long = "cluster")]
    pub cluster: bool,
    /// Transactional ids; repeatable.
    #[arg(long = "transactional-id")]
    pub transactional_id: Vec<String>,
    /// How resource names match: literal (default to create) or prefixed;
    /// to list and delete also any (default) or match (every ACL that
    /// applies to the named resource).
    #[arg(long = "resource-pattern-type")]
    pub resource_pattern_type: Option<String>,
}

pub fn run(command: AclCommand) -> Result<()> {
    match command {
        AclCommand::Create { acl, client } => create(&acl, &client),
        AclCommand::List { acl, client } => list(&acl, &client),
        AclCommand::Delete { acl, client } => delete(&acl, &client),
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn code_of(table: &[(i8, &'static str)], name: &str, what: &str) -> Result<i8> {
    let wanted = name.trim().replace('-', "_").to_ascii_uppercase();
    match table.iter().find(|(_, n)| *n == wanted) {
        Some((code, _)) => Ok(*code),
        None => bail!(
            "unknown {what} {name:?}: one of {}",
            table
                .iter()
                .map(|(_, n)| n.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn name_of(table: &[(i8, &'static str)], code: i8) -> String {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| format!("{code}"), |(_, n)| (*n).to_owned())
}

fn pattern_code(name: Option<&str>, default: i8, filter: bool) -> Result<i8> {
    let Some(name) = name else {
        return Ok(default);
    };
    match name.to_ascii_lowercase().as_str() {
        "literal" => Ok(LITERAL),
        "prefixed" => Ok(PREFIXED),
        "any" if filter => Ok(ANY),
        "match" if filter => Ok(MATCH),
        _ if filter => bail!("--resource-pattern-type is literal, prefixed, any or match"),
        _ => bail!("--resource-pattern-type is literal or prefixed to create an ACL"),
    }
}

/// The resources the flags name: `(type code, name)`.
fn resources(args: &AclArgs) -> Vec<(i8, String)> {
    let mut out: Vec<(i8, String)> = Vec::new();
    out.extend(args.topic.iter().map(|t| (2, t.clone())));
    out.extend(args.group.iter().map(|g| (3, g.clone())));
    if args.cluster {
        out.push((4, CLUSTER_NAME.to_owned()));
    }
    out.extend(args.transactional_id.iter().map(|t| (5, t.clone())));
    out
}

/// `(permission, principal, host)` of the principals the flags name.
fn principals(args: &AclArgs) -> Vec<(i8, String, Vec<String>)> {
    let hosts = |given: &[String]| {
        if given.is_empty() {
            vec!["*".to_owned()]
        } else {
            given.to_vec()
        }
    };
    let allow = args
        .allow_principal
        .iter()
        .map(|p| (ALLOW, p.clone(), hosts(&args.allow_host)));
    let deny = args
        .deny_principal
        .iter()
        .map(|p| (DENY, p.clone(), hosts(&args.deny_host)));
    allow.chain(deny).collect()
}

fn operations(args: &AclArgs) -> Result<Vec<i8>> {
    args.operation
        .iter()
        .filter(|o| !o.trim().is_empty())
        .map(|o| code_of(&OPERATIONS, o, "operation"))
        .collect()
}

fn create(args: &AclArgs, client: &ClientArgs) -> Result<()> {
    let resources = resources(args);
    let principals = principals(args);
    let operations = operations(args)?;
    if resources.is_empty() || principals.is_empty() || operations.is_empty() {
        bail!(
            "give at least one resource (--topic, --group, --cluster, --transactional-id), \
             one principal (--allow-principal, --deny-principal) and one --operation"
        );
    }
    let pattern = pattern_code(args.resource_pattern_type.as_deref(), LITERAL, false)?;
    let mut creations = Vec::new();
    for (resource_type, name) in &resources {
        // The cluster is one literal resource whatever the flag says.
        let pattern = if *resource_type == 4 {
            LITERAL
        } else {
            pattern
        };
        for (permission, principal, hosts) in &principals {
            for host in hosts {
                for &operation in &operations {
                    creations.push(
                        AclCreation::default()
                            .with_resource_type(*resource_type)
                            .with_resource_name(text(name))
                            .with_resource_pattern_type(pattern)
                            .with_principal(text(principal))
                            .with_host(text(host))
                            .with_operation(operation)
                            .with_permission_type(*permission),
                    );
                }
            }
        }
    }
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let request = CreateAclsRequest::default().with_creations(creations.clone());
    let response = conn.call(VERSION, &request)?;
    let mut failed = 0;
    println!(
        "PRINCIPAL\tHOST\tRESOURCE-TYPE\tRESOURCE-NAME\tPATTERN\tOPERATION\tPERMISSION\tERROR"
    );
    for (c, result) in creations.iter().zip(&response.results) {
        let error = if result.error_code == 0 {
            String::new()
        } else {
            failed += 1;
            describe_error(result.error_code, result.error_message.as_ref())
        };
        let line = row(
            c.resource_type,
            &c.resource_name,
            c.resource_pattern_type,
            &c.principal,
            &c.host,
            c.operation,
            c.permission_type,
        );
        println!("{line}\t{error}");
    }
    if failed > 0 {
        bail!("{failed} of {} ACLs were not created", creations.len());
    }
    Ok(())
}

/// One line of the listing (without the error column).
fn row(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> String {
    let pattern = match pattern {
        LITERAL => "LITERAL".to_owned(),
        PREFIXED => "PREFIXED".to_owned(),
        other => other.to_string(),
    };
    let permission = match permission {
        ALLOW => "ALLOW",
        DENY => "DENY",
        _ => "?",
    };
    format!(
        "{principal}\t{host}\t{}\t{name}\t{pattern}\t{}\t{permission}",
        name_of(&RESOURCE_TYPES, resource_type),
        name_of(&OPERATIONS, operation)
    )
}

/// The filters the flags describe: one per resource (ANY when none), per
/// principal (ANY when none) and per operation (ANY when none).
fn filters(args: &AclArgs) -> Result<Vec<DeleteAclsFilter>> {
    let pattern = pattern_code(args.resource_pattern_type.as_deref(), ANY, true)?;
    let mut resources: Vec<(i8, Option<String>)> = resources(args)
        .into_iter()
        .map(|(t, n)| (t, Some(n)))
        .collect();
    if resources.is_empty() {
        resources.push((ANY, None));
    }
    let mut principals: Vec<(i8, Option<String>, Option<String>)> = principals(args)
        .into_iter()
        .flat_map(|(permission, principal, hosts)| {
            let explicit = !(if permission == ALLOW {
                &args.allow_host
            } else {
                &args.deny_host
            })
            .is_empty();
            hosts
                .into_iter()
                .map(move |h| (permission, Some(principal.clone()), explicit.then_some(h)))
        })
        .collect();
    if principals.is_empty() {
        principals.push((ANY, None, None));
    }
    let mut operations = operations(args)?;
    if operations.is_empty() {
        operations.push(ANY);
    }
    let mut out = Vec::new();
    for (resource_type, name) in &resources {
        for (permission, principal, host) in &principals {
            for &operation in &operations {
                out.push(
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(*resource_type)
                        .with_resource_name_filter(name.as_deref().map(text))
                        .with_pattern_type_filter(pattern)
                        .with_principal_filter(principal.as_deref().map(text))
                        .with_host_filter(host.as_deref().map(text))
                        .with_operation(operation)
                        .with_permission_type(*permission),
                );
            }
        }
    }
    Ok(out)
}

fn list(args: &AclArgs, client: &ClientArgs) -> Result<()> {
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let mut rows = std::collections::BTreeSet::new();
    for f in filters(args)? {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type_filter)
            .with_resource_name_filter(f.resource_name_filter)
            .with_pattern_type_filter(f.pattern_type_filter)
            .with_principal_filter(f.principal_filter)
            .with_host_filter(f.host_filter)
            .with_operation(f.operation)
            .with_permission_type(f.permission_type);
        let response = conn.call(VERSION, &request)?;
        if response.error_code != 0 {
            bail!(
                "listing ACLs: {}",
                describe_error(response.error_code, response.error_message.as_ref())
            );
        }
        for resource in &response.resources {
            for acl in &resource.acls {
                rows.insert(row(
                    resource.resource_type,
                    &resource.resource_name,
                    resource.pattern_type,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type,
                ));
            }
        }
    }
    println!("PRINCIPAL\tHOST\tRESOURCE-TYPE\tRESOURCE-NAME\tPATTERN\tOPERATION\tPERMISSION");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

fn delete(args: &AclArgs, client: &ClientArgs) -> Result<()> {
    if resources(args).is_empty() && principals(args).is_empty() {
        bail!(
            "name what to delete: a resource (--topic, --group, --cluster, --transactional-id) \
             or a principal (--allow-principal, --deny-principal)"
        );
    }
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let request = DeleteAclsRequest::default().with_filters(filters(args)?);
    let response = conn.call(VERSION, &request)?;
    println!("PRINCIPAL\tHOST\tRESOURCE-TYPE\tRESOURCE-NAME\tPATTERN\tOPERATION\tPERMISSION");
    let mut errors = Vec::new();
    for result in &response.filter_results {
        if result.error_code != 0 {
            errors.push(describe_error(
                result.error_code,
                result.error_message.as_ref(),
            ));
            continue;
        }
        for acl in &result.matching_acls {
            println!(
                "{}",
                row(
                    acl.resource_type,
                    &acl.resource_name,
                    acl.pattern_type,
                    &acl.principal,
                    &acl.host,
                    acl.operation,
                    acl.permission_type
                )
            );
        }
    }
    if !errors.is_empty() {
        bail!("deleting ACLs: {}", errors.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_kafkas_codes() {
        assert_eq!(
            code_of(&OPERATIONS, "describe-configs", "operation").unwrap(),
            10
        );
        assert_eq!(code_of(&OPERATIONS, "Read", "operation").unwrap(), 3);
        assert!(code_of(&OPERATIONS, "fly", "operation").is_err());
        assert_eq!(
            pattern_code(Some("prefixed"), LITERAL, false).unwrap(),
            PREFIXED
        );
        assert!(pattern_code(Some("match"), LITERAL, false).is_err());
        assert_eq!(pattern_code(None, ANY, true).unwrap(), ANY);
        let args = AclArgs {
            allow_principal: vec!["User:a".into()],
            operation: vec!["read".into(), "write".into()],
            topic: vec!["t".into()],
            cluster: true,
            ..AclArgs::default()
        };
        let made = filters(&args).unwrap();
        assert_eq!(made.len(), 4, "2 resources x 1 principal x 2 operations");
        assert!(made.iter().all(|f| f.host_filter.is_none()));
        assert_eq!(made[0].permission_type, ALLOW);
        let none = filters(&AclArgs::default()).unwrap();
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].resource_type_filter, ANY);
        assert!(none[0].principal_filter.is_none());
    }
}
