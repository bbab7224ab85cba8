//! `fjord consume TOPIC`: print records, from an offset or the end, until
//! the end of every partition or forever with `--follow`. With `--group`
//! it subscribes as a member of that consumer group instead: partitions
//! come from the group's assignment, reading starts at the group's
//! committed offsets (the beginning where none), and offsets are committed
//! as records are printed.
//!
//! With `--serializer` each value is passed through a serializer plugin's
//! `deserialize` before it is printed.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fjord_plugin_host::PluginInstance;
use fjord_sdk::PluginKind;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::ClientArgs;

/// `fjord consume` flags.
#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Start at the first offset of each partition (default: the end).
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition when the topic has several).
    #[arg(short, long)]
    pub offset: Option<i64>,
    /// Read only this partition.
    #[arg(short, long, conflicts_with = "group")]
    pub partition: Option<i32>,
    /// Consume as a member of this consumer group (subscribe, commit).
    #[arg(short, long, conflicts_with_all = ["offset", "from_beginning"])]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long)]
    pub max_messages: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end.
    #[arg(short, long)]
    pub follow: bool,
    /// Output template; placeholders {topic} {partition} {offset}
    /// {timestamp} {key} {value} {headers}; \n and \t are understood.
    #[arg(long, default_value = "{value}")]
    pub format: String,
    /// Serializer plugin (built-in name, .wasm or native library): each
    /// value is printed as what its `deserialize` returns. A value it
    /// refuses stops the command with an error naming its partition and
    /// offset.
    #[arg(long, value_name = "PLUGIN")]
    pub serializer: Option<String>,
    /// Configuration of the --serializer plugin, `key=value` (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = crate::client::key_value, requires = "serializer")]
    pub serializer_config: Vec<(String, String)>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let deserializer = args
        .serializer
        .as_deref()
        .map(|s| crate::plugin::instance(s, PluginKind::Serializer, &args.serializer_config))
        .transpose()?;
    if let Some(group) = &args.group {
        return run_in_group(&args, group, deserializer);
    }
    let consumer: BaseConsumer = args
        .client
        .assigning_consumer_config()
        .set("auto.offset.reset", "earliest")
        .create()
        .context("could not create the consumer")?;
    let partitions = match args.partition {
        Some(p) => vec![p],
        None => {
            let metadata = consumer
                .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
                .context("Metadata request failed")?;
            let topic = metadata
                .topics()
                .iter()
                .find(|t| t.name() == args.topic)
                .context("topic missing from metadata")?;
            if let Some(err) = topic.error() {
                bail!("topic {}: {:?}", args.topic, err);
            }
            topic.partitions().iter().map(|p| p.id()).collect()
        }
    };
    if args.offset.is_some() && partitions.len() > 1 {
        bail!("--offset needs --partition: the topic has several partitions");
    }
    let start = match (args.from_beginning, args.offset) {
        (true, _) => Offset::Beginning,
        (_, Some(offset)) => Offset::Offset(offset),
        _ => Offset::End,
    };
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(&args.topic, p, start)
            .context("building the assignment")?;
    }
    consumer.assign(&assignment).context("assign")?;

    let printed = print_records(
        &consumer,
        &args,
        deserializer,
        |at_end| at_end == partitions.len(),
        |_| Ok(()),
    )?;
    eprintln!("consumed {printed} records from {}", args.topic);
    Ok(())
}

/// `--group`: subscribe, print, commit. Without `--follow` it stops once
/// every assigned partition is at its end.
fn run_in_group(
    args: &ConsumeArgs,
    group: &str,
    deserializer: Option<PluginInstance>,
) -> Result<()> {
    let consumer: BaseConsumer = args
        .client
        .config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        // Only printed records count as consumed.
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("could not create the consumer")?;
    consumer.subscribe(&[&args.topic]).context("subscribe")?;
    let printed = print_records(
        &consumer,
        args,
        deserializer,
        |at_end| {
            let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
            assigned > 0 && at_end >= assigned
        },
        |message| {
            consumer
                .store_offset_from_message(message)
                .context("storing the offset")
        },
    )?;
    // Commit what was printed before leaving the group.
    if printed > 0
        && let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
    {
        eprintln!("warning: final commit failed: {e}");
    }
    eprintln!(
        "consumed {printed} records from {} in group {group}",
        args.topic
    );
    Ok(())
}

/// Polls and prints records until `--max-messages`, or, without
/// `--follow`, until `all_at_end(partitions at their end)` says so. Calls
/// `printed` after each record is written. Returns how many were printed.
/// Values go through `deserializer` first, when there is one.
fn print_records(
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
    mut deserializer: Option<PluginInstance>,
    all_at_end: impl Fn(usize) -> bool,
    printed: impl Fn(&BorrowedMessage<'_>) -> Result<()>,
) -> Result<u64> {
    let template = args.format.replace("\\n", "\n").replace("\\t", "\t");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut count = 0u64;
    while args.max_messages.is_none_or(|max| count < max) {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        match result {
            Ok(message) => {
                at_end.remove(&message.partition());
                let value = match (&mut deserializer, message.payload()) {
                    (Some(d), Some(payload)) => {
                        Some(d.deserialize(payload).with_context(|| {
                            format!(
                                "partition {} offset {}",
                                message.partition(),
                                message.offset()
                            )
                        })?)
                    }
                    _ => None,
                };
                let value = value.as_deref().or(message.payload());
                writeln!(out, "{}", render(&template, &message, value))?;
                printed(&message)?;
                count += 1;
            }
            Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                at_end.insert(p);
                if !args.follow && all_at_end(at_end.len()) {
                    break;
                }
                out.flush()?;
            }
            Err(e) => bail!("consume failed: {e}"),
        }
    }
    out.flush()?;
    Ok(count)
}

/// `value` is the message's payload, or what the serializer made of it.
fn render(template: &str, message: &BorrowedMessage<'_>, value: Option<&[u8]>) -> String {
    fn text(bytes: Option<&[u8]>) -> String {
        bytes
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
    let headers = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| format!("{}={}", h.key, text(h.value)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    // One pass, so a placeholder inside a key or value is printed as is.
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "topic" => out.push_str(message.topic()),
            "partition" => out.push_str(&message.partition().to_string()),
            "offset" => out.push_str(&message.offset().to_string()),
            "timestamp" => out.push_str(&message.timestamp().to_millis().unwrap_or(-1).to_string()),
            "headers" => out.push_str(&headers),
            "key" => out.push_str(&text(message.key())),
            "value" => out.push_str(&text(value)),
            _ => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}
