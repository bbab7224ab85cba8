//! `fjord cluster info`: the brokers and topics a bootstrap server reports.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::Consumer;

use crate::client::ClientArgs;
use crate::topic::consumer;

/// `fjord cluster …`
#[derive(clap::Subcommand, Debug)]
pub enum ClusterCommand {
    /// Brokers, topics and partitions of the cluster.
    Info {
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub fn run(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Info { client } => {
            let consumer = consumer(&client)?;
            let metadata = consumer
                .fetch_metadata(None, Duration::from_secs(10))
                .context("Metadata request failed")?;
            println!(
                "answered by broker {} ({})",
                metadata.orig_broker_id(),
                metadata.orig_broker_name()
            );
            println!("brokers:");
            for broker in metadata.brokers() {
                println!("  {} {}:{}", broker.id(), broker.host(), broker.port());
            }
            let partitions: usize = metadata.topics().iter().map(|t| t.partitions().len()).sum();
            println!("topics: {}", metadata.topics().len());
            println!("partitions: {partitions}");
        }
    }
    Ok(())
}
