//! Who a pipeline is, and what it and its deployers may do: the ACL
//! checks of the pipeline platform, in one place.
//!
//! A pipeline runs as a principal ([`run_as`]): the one its manifest names
//! (`metadata.principal`), else whoever deployed it, else — a
//! `--pipelines` file, a record from before principals — the platform's
//! own. Its tasks ask [`Permissions`] before they start (topic creation,
//! reads, writes), before every round of batches, and before every commit,
//! with the broker's ACLs of that moment ([`LocalBroker::access`]), so a
//! binding created or deleted applies from the next round of batches on
//! (once per round, never per record). Deployers ask
//! [`may_change`], [`may_describe`] and [`may_run_as`] (the admin API does).
//!
//! Not for: the ACL decision itself (`fjord_broker`'s authorizer, the same
//! for the Kafka port), or what plugins may reach on the host
//! (`fjord-plugin-host`'s policy). The state changelogs
//! (`pipeline.<name>.<step>.changelog`) and the connector positions are
//! internal topics, written by the platform for the pipeline: they need
//! no binding.

use std::net::{IpAddr, Ipv4Addr};

use fjord_broker::{Access, LocalBroker, Operation, Principal, ResourceType};

use super::Deployment;
use crate::Pipeline;

/// The address a pipeline's checks are made from: the runtime runs in
/// the broker's process, so a binding for its principal with host `*` or
/// `127.0.0.1` applies.
pub const PIPELINE_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The principal pipeline `pipeline`, deployed as `deployment`, runs as:
/// `metadata.principal`, else the deployer, else (the operator's) the
/// platform's own principal, which every ACL check allows.
pub fn run_as(pipeline: &Pipeline, deployment: &Deployment) -> Principal {
    if let Some(named) = pipeline.named_principal() {
        return named;
    }
    match deployment.deployed_by.as_deref() {
        None => Principal::Internal,
        // Only the platform writes deployment records; one whose deployer
        // does not read back runs with the least a principal has.
        Some(by) => crate::validate::parse_principal(by).unwrap_or(Principal::Anonymous),
    }
}

/// A refusal: who may not do what to which resource. Its message says
/// the binding that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{principal} may not {} {} {name}{also}: no ACL allows it (e.g. fjord acl create \
     --allow-principal {principal} --operation {} {})",
    operation.name(),
    resource.name(),
    operation.name().to_ascii_lowercase(),
    flag(*resource, name),
    also = match alternative { Some(a) => format!(" (nor {a})"), None => String::new() },
)]
pub struct Denied {
    /// `User:name`.
    pub principal: String,
    pub operation: Operation,
    pub resource: ResourceType,
    pub name: String,
    /// The other grant that would do as well ("ALTER on the CLUSTER").
    pub alternative: Option<&'static str>,
}

/// The `fjord acl create` flag naming resource `name` of type `resource`.
fn flag(resource: ResourceType, name: &str) -> String {
    match resource {
        ResourceType::Topic => format!("--topic {name}"),
        ResourceType::Group => format!("--group {name}"),
        ResourceType::Cluster => "--cluster".to_owned(),
        ResourceType::TransactionalId => format!("--transactional-id {name}"),
    }
}

fn denied(
    access: &Access,
    operation: Operation,
    resource: ResourceType,
    name: &str,
    alternative: Option<&'static str>,
) -> Denied {
    Denied {
        principal: access.principal.to_string(),
        operation,
        resource,
        name: name.to_owned(),
        alternative,
    }
}

/// Whether `access` may deploy, pause, resume, reset or delete pipeline
/// `name`: ALTER on the CLUSTER, or ALTER_CONFIGS on the pipeline's group
/// `pipeline.<name>` (a pipeline's manifest is its group's settings; Kafka
/// accepts no ALTER on a GROUP).
pub fn may_change(access: &Access, name: &str) -> Result<(), Denied> {
    let group = crate::group_of(name);
    if access.cluster(Operation::Alter) || access.group(Operation::AlterConfigs, &group) {
        return Ok(());
    }
    Err(denied(
        access,
        Operation::AlterConfigs,
        ResourceType::Group,
        &group,
        Some("ALTER on the CLUSTER"),
    ))
}

/// Whether `access` may see pipeline `name`'s manifest, status and logs:
/// DESCRIBE on the CLUSTER, or DESCRIBE_CONFIGS on its group (which
/// ALTER_CONFIGS implies).
pub fn may_describe(access: &Access, name: &str) -> Result<(), Denied> {
    let group = crate::group_of(name);
    if access.cluster(Operation::Describe) || access.group(Operation::DescribeConfigs, &group) {
        return Ok(());
    }
    Err(denied(
        access,
        Operation::DescribeConfigs,
        ResourceType::Group,
        &group,
        Some("DESCRIBE on the CLUSTER"),
    ))
}

/// Whether `access` may deploy a pipeline that runs as `principal`: one
/// may always name oneself; naming another needs ALTER on the CLUSTER
/// (who may grant themselves any ACL may as well lend a principal).
pub fn may_run_as(access: &Access, principal: &Principal) -> Result<(), Denied> {
    if access.principal == *principal || access.cluster(Operation::Alter) {
        return Ok(());
    }
    Err(denied(
        access,
        Operation::Alter,
        ResourceType::Cluster,
        CLUSTER,
        None,
    ))
}

/// The name of Kafka's one CLUSTER resource.
const CLUSTER: &str = "kafka-cluster";

/// One thing a running pipeline does that an ACL must allow.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    operation: Operation,
    resource: ResourceType,
    name: String,
}

impl Need {
    fn topic(operation: Operation, name: &str) -> Self {
        Need {
            operation,
            resource: ResourceType::Topic,
            name: name.to_owned(),
        }
    }
}

/// What one running pipeline needs, checked against the broker's ACLs
/// each time it is asked (an [`Access`] is a snapshot of them: taking one
/// is two reference counts, each check a few hash lookups).
#[derive(Debug, Clone)]
pub(crate) struct Permissions {
    local: LocalBroker,
    principal: Principal,
    /// READ on the source topic and the group (reading, and committing:
    /// Kafka's OffsetCommit needs both).
    reads: Vec<Need>,
    /// WRITE on every sink topic and the dead-letter topic.
    writes: Vec<Need>,
    /// Every topic the pipeline creates when missing: CREATE on it or on
    /// the CLUSTER, while it is missing.
    topics: Vec<String>,
}

impl Permissions {
    /// The needs of `pipeline`, running as `principal` on `local`.
    pub(crate) fn of(local: &LocalBroker, pipeline: &Pipeline, principal: Principal) -> Self {
        let spec = &pipeline.spec;
        let mut reads = Vec::new();
        let mut topics = Vec::new();
        if let Some(source) = &spec.source.topic {
            reads.push(Need::topic(Operation::Read, source));
            reads.push(Need {
                operation: Operation::Read,
                resource: ResourceType::Group,
                name: pipeline.group_id(),
            });
            topics.push(source.clone());
        }
        let mut writes = Vec::new();
        let written = spec
            .sinks
            .iter()
            .filter_map(|s| s.topic.as_ref())
            .chain(spec.dead_letter.as_ref().map(|d| &d.topic));
        for topic in written {
            if !topics.contains(topic) {
                writes.push(Need::topic(Operation::Write, topic));
                topics.push(topic.clone());
            }
        }
        Permissions {
            local: local.clone(),
            principal,
            reads,
            writes,
            topics,
        }
    }

    fn access(&self) -> Access {
        self.local.access(self.principal.clone(), PIPELINE_HOST)
    }

    /// Before the pipeline starts: creating each missing topic, and
    /// everything [`Permissions::to_run`] checks.
    pub(crate) fn to_start(&self) -> Result<(), Denied> {
        let access = self.access();
        if !access.enforced() {
            return Ok(());
        }
        for topic in &self.topics {
            if self.local.topic(topic).is_none() && !access.may_create_topic(topic) {
                return Err(denied(
                    &access,
                    Operation::Create,
                    ResourceType::Topic,
                    topic,
                    Some("CREATE on the CLUSTER"),
                ));
            }
        }
        check(&access, self.reads.iter().chain(&self.writes))
    }

    /// Before each round of batches: reading the source and writing the
    /// sinks.
    pub(crate) fn to_run(&self) -> Result<(), Denied> {
        let access = self.access();
        check(&access, self.reads.iter().chain(&self.writes))
    }

    /// Before each commit of the source position.
    pub(crate) fn to_commit(&self) -> Result<(), Denied> {
        check(&self.access(), &self.reads)
    }
}

fn check<'a>(access: &Access, needs: impl IntoIterator<Item = &'a Need>) -> Result<(), Denied> {
    if !access.enforced() {
        return Ok(());
    }
    match needs
        .into_iter()
        .find(|n| !access.allows(n.operation, n.resource, &n.name))
    {
        None => Ok(()),
        Some(n) => Err(denied(access, n.operation, n.resource, &n.name, None)),
    }
}
