//! `fjord topic`: create, list, describe, alter and delete topics through
//! the Kafka admin APIs.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::client::{ClientArgs, key_value};

const TIMEOUT: Duration = Duration::from_secs(10);

/// `fjord topic …`
#[derive(clap::Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(short, long, default_value_t = 1)]
        partitions: i32,
        /// Replicas per partition.
        #[arg(short = 'r', long, default_value_t = 1)]
        replication_factor: i32,
        /// Topic config, e.g. `--config retention.ms=3600000` (repeatable).
        #[arg(short, long = "config", value_parser = key_value)]
        configs: Vec<(String, String)>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List topics.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a topic's partitions, offsets and configs.
    Describe {
        /// Topic name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change topic configs or add partitions.
    Alter {
        /// Topic name.
        name: String,
        /// Config to set, e.g. `--config retention.ms=60000` (repeatable).
        #[arg(short, long = "config", value_parser = key_value)]
        configs: Vec<(String, String)>,
        /// Grow the topic to this many partitions.
        #[arg(short, long)]
        partitions: Option<usize>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a partition's records before an offset (DeleteRecords): the
    /// partition's log start offset moves to OFFSET.
    Trim {
        /// Topic name.
        name: String,
        /// Partition index.
        #[arg(short, long)]
        partition: i32,
        /// First offset to keep (-1: the high watermark, i.e. everything).
        #[arg(long, allow_hyphen_values = true)]
        before: i64,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(command: TopicCommand) -> Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            client,
        } => {
            let admin = admin(&client)?;
            let mut topic = NewTopic::new(
                &name,
                partitions,
                TopicReplication::Fixed(replication_factor),
            );
            for (k, v) in &configs {
                topic = topic.set(k, v);
            }
            let results = admin
                .create_topics([&topic], &options())
                .await
                .context("CreateTopics request failed")?;
            for result in results {
                match result {
                    Ok(name) => println!("created topic {name}"),
                    Err((name, code)) => bail!("could not create topic {name}: {code}"),
                }
            }
        }
        TopicCommand::List { client } => {
            let consumer = consumer(&client)?;
            let metadata = consumer
                .fetch_metadata(None, TIMEOUT)
                .context("Metadata request failed")?;
            let mut names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
            names.sort_unstable();
            for name in names {
                println!("{name}");
            }
        }
        TopicCommand::Describe { name, client } => describe(&client, &name).await?,
        TopicCommand::Alter {
            name,
            configs,
            partitions,
            client,
        } => {
            if configs.is_empty() && partitions.is_none() {
                bail!("nothing to alter: give --config key=value or --partitions N");
            }
            let admin = admin(&client)?;
            if let Some(count) = partitions {
                let results = admin
                    .create_partitions([&NewPartitions::new(&name, count)], &options())
                    .await
                    .context("CreatePartitions request failed")?;
                for result in results {
                    if let Err((name, code)) = result {
                        bail!("could not add partitions to {name}: {code}");
                    }
                }
                println!("topic {name} now has {count} partitions");
            }
            if !configs.is_empty() {
                // AlterConfigs replaces a topic's whole config set: start
                // from what is set now so other keys survive.
                let mut merged = current_configs(&admin, &name).await?;
                for (k, v) in configs {
                    merged.retain(|(key, _)| *key != k);
                    merged.push((k, v));
                }
                let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&name));
                for (k, v) in &merged {
                    alter = alter.set(k, v);
                }
                let results = admin
                    .alter_configs([&alter], &options())
                    .await
                    .context("AlterConfigs request failed")?;
                for result in results {
                    if let Err((_, code)) = result {
                        bail!("could not alter configs of {name}: {code}");
                    }
                }
                println!("altered configs of topic {name}");
            }
        }
        TopicCommand::Delete { name, client } => {
            let admin = admin(&client)?;
            let results = admin
                .delete_topics(&[&name], &options())
                .await
                .context("DeleteTopics request failed")?;
            for result in results {
                match result {
                    Ok(name) => println!("deleted topic {name}"),
                    Err((name, code)) => bail!("could not delete topic {name}: {code}"),
                }
            }
        }
        TopicCommand::Trim {
            name,
            partition,
            before,
            client,
        } => {
            let admin = admin(&client)?;
            let offset = if before == -1 {
                rdkafka::Offset::End
            } else {
                rdkafka::Offset::Offset(before)
            };
            let mut list = rdkafka::TopicPartitionList::new();
            list.add_partition_offset(&name, partition, offset)
                .context("bad partition or offset")?;
            let result = admin
                .delete_records(&list, &options())
                .await
                .context("DeleteRecords request failed")?;
            let Some(element) = result.find_partition(&name, partition) else {
                bail!("no answer for {name}-{partition}");
            };
            if let Err(e) = element.error() {
                bail!("could not trim {name}-{partition}: {e}");
            }
            match element.offset() {
                rdkafka::Offset::Offset(start) => {
                    println!("trimmed {name}-{partition}: log start offset is now {start}")
                }
                other => println!("trimmed {name}-{partition}: {other:?}"),
            }
        }
    }
    Ok(())
}

async fn describe(client: &ClientArgs, name: &str) -> Result<()> {
    let consumer = consumer(client)?;
    let metadata = consumer
        .fetch_metadata(Some(name), TIMEOUT)
        .context("Metadata request failed")?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
        bail!("topic {name} not found");
    };
    if let Some(err) = topic.error() {
        bail!("topic {name}: {:?}", err);
    }
    println!("topic: {name}");
    println!("partitions: {}", topic.partitions().len());
    println!(
        "{:>9}  {:>6}  {:>10}  {:>10}  {:>12}  {:>12}",
        "partition", "leader", "replicas", "isr", "log-start", "log-end"
    );
    for partition in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(name, partition.id(), TIMEOUT)
            .with_context(|| format!("ListOffsets for partition {}", partition.id()))?;
        println!(
            "{:>9}  {:>6}  {:>10}  {:>10}  {:>12}  {:>12}",
            partition.id(),
            partition.leader(),
            join(partition.replicas()),
            join(partition.isr()),
            low,
            high
        );
    }
    let admin = admin(client)?;
    let configs = current_configs(&admin, name).await?;
    println!("configs:");
    for (k, v) in configs {
        println!("  {k}={v}");
    }
    Ok(())
}

/// The topic's configs that are set explicitly (not broker defaults).
async fn current_configs(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
) -> Result<Vec<(String, String)>> {
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(name)], &options())
        .await
        .context("DescribeConfigs request failed")?;
    let mut out = Vec::new();
    for result in results {
        let resource = result.map_err(|code| anyhow::anyhow!("DescribeConfigs {name}: {code}"))?;
        for entry in resource.entries {
            if !entry.is_default
                && let Some(value) = entry.value
            {
                out.push((entry.name, value));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn admin(client: &ClientArgs) -> Result<AdminClient<DefaultClientContext>> {
    client
        .config()
        .create()
        .context("could not create the admin client")
}

pub(crate) fn consumer(client: &ClientArgs) -> Result<BaseConsumer> {
    client
        .config()
        .set("enable.auto.commit", "false")
        .create()
        .context("could not create the client")
}
