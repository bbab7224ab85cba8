//! `fjord quota alter|describe`: Kafka's client quotas (KIP-546), with
//! rpk's flags (`rpk cluster quotas`), over the Kafka protocol
//! (AlterClientQuotas, DescribeClientQuotas as raw requests: the `rdkafka`
//! crate has no quota calls). Altering needs ALTER_CONFIGS on the cluster,
//! describing DESCRIBE_CONFIGS; the broker checks keys and values and
//! decides (docs/reliability.md, "Quotas").

use anyhow::{Context, Result, bail};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::ClientArgs;
use crate::raw::{Connection, describe_error};

/// AlterClientQuotas and DescribeClientQuotas v0 (Kafka 2.6+).
const VERSION: i16 = 0;
const CLIENT_ID: &str = "fjord-cli";

/// `fjord quota …`
#[derive(clap::Subcommand, Debug)]
pub enum QuotaCommand {
    /// Set (`--add key=value`) or remove (`--delete key`) quotas of one
    /// entity, named by `--name type=name` and `--default type`.
    Alter {
        #[command(flatten)]
        entity: EntityArgs,
        /// `key=value` to set (producer_byte_rate, consumer_byte_rate,
        /// request_percentage, controller_mutation_rate; for an `ip`
        /// entity connection_creation_rate); repeatable.
        #[arg(long = "add")]
        add: Vec<String>,
        /// Keys to remove; repeatable.
        #[arg(long = "delete")]
        delete: Vec<String>,
        /// Only check the change.
        #[arg(long = "dry")]
        dry: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print the quotas whose entity matches the flags (none: all).
    #[command(alias = "list")]
    Describe {
        #[command(flatten)]
        entity: EntityArgs,
        /// Entity types that must be named, by any name or the default
        /// (`user`, `client-id`, `ip`); repeatable.
        #[arg(long = "any")]
        any: Vec<String>,
        /// Only entities that name no other type than the flags do.
        #[arg(long = "strict")]
        strict: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The flags that name an entity (rpk's).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EntityArgs {
    /// `type=name`: `user=alice`, `client-id=app`, `ip=10.0.0.7` (an ip
    /// names no other type); repeatable.
    #[arg(long = "name")]
    pub name: Vec<String>,
    /// Entity types whose default is meant (`user`, `client-id`, `ip`).
    #[arg(long = "default")]
    pub default: Vec<String>,
}

pub fn run(command: QuotaCommand) -> Result<()> {
    match command {
        QuotaCommand::Alter {
            entity,
            add,
            delete,
            dry,
            client,
        } => alter(&entity, &add, &delete, dry, &client),
        QuotaCommand::Describe {
            entity,
            any,
            strict,
            client,
        } => describe(&entity, &any, strict, &client),
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// `(type, name)` pairs of the flags (`None`: the default).
fn parts(args: &EntityArgs) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for n in &args.name {
        let (kind, name) = n
            .split_once('=')
            .with_context(|| format!("--name {n:?}: expected type=name"))?;
        out.push((kind.to_owned(), Some(name.to_owned())));
    }
    for kind in &args.default {
        out.push((kind.clone(), None));
    }
    Ok(out)
}

fn alter(
    args: &EntityArgs,
    add: &[String],
    delete: &[String],
    dry: bool,
    client: &ClientArgs,
) -> Result<()> {
    let entity = parts(args)?;
    if entity.is_empty() || (add.is_empty() && delete.is_empty()) {
        bail!("name an entity (--name, --default) and what to change (--add, --delete)");
    }
    let mut ops = Vec::new();
    for a in add {
        let (key, value) = a
            .split_once('=')
            .with_context(|| format!("--add {a:?}: expected key=value"))?;
        let value: f64 = value
            .parse()
            .with_context(|| format!("--add {a:?}: the value is not a number"))?;
        ops.push(OpData::default().with_key(text(key)).with_value(value));
    }
    for key in delete {
        ops.push(OpData::default().with_key(text(key)).with_remove(true));
    }
    let request = AlterClientQuotasRequest::default()
        .with_validate_only(dry)
        .with_entries(vec![
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(text(kind))
                                .with_entity_name(name.as_deref().map(text))
                        })
                        .collect(),
                )
                .with_ops(ops),
        ]);
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let response = conn.call(VERSION, &request)?;
    for e in &response.entries {
        if e.error_code != 0 {
            bail!(
                "altering the quotas: {}",
                describe_error(e.error_code, e.error_message.as_ref())
            );
        }
    }
    println!("{}", if dry { "valid" } else { "altered" });
    Ok(())
}

fn describe(args: &EntityArgs, any: &[String], strict: bool, client: &ClientArgs) -> Result<()> {
    /// Kafka's match types.
    const EXACT: i8 = 0;
    const DEFAULT: i8 = 1;
    const SPECIFIED: i8 = 2;
    let mut components: Vec<ComponentData> = parts(args)?
        .into_iter()
        .map(|(kind, name)| {
            let component = ComponentData::default().with_entity_type(text(&kind));
            match name {
                Some(name) => component
                    .with_match_type(EXACT)
                    .with_match(Some(text(&name))),
                None => component.with_match_type(DEFAULT).with_match(None),
            }
        })
        .collect();
    components.extend(any.iter().map(|kind| {
        ComponentData::default()
            .with_entity_type(text(kind))
            .with_match_type(SPECIFIED)
            .with_match(None)
    }));
    let request = DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(strict);
    let mut conn = Connection::open_client(client, CLIENT_ID)?;
    let response = conn.call(VERSION, &request)?;
    if response.error_code != 0 {
        bail!(
            "describing the quotas: {}",
            describe_error(response.error_code, response.error_message.as_ref())
        );
    }
    println!("ENTITY\tKEY\tVALUE");
    for entry in response.entries.unwrap_or_default() {
        let entity: Vec<String> = entry
            .entity
            .iter()
            .map(|e| match &e.entity_name {
                Some(name) => format!("{}={}", e.entity_type.as_str(), name.as_str()),
                None => format!("{}=<default>", e.entity_type.as_str()),
            })
            .collect();
        for value in &entry.values {
            println!(
                "{}\t{}\t{}",
                entity.join(","),
                value.key.as_str(),
                value.value
            );
        }
    }
    Ok(())
}
