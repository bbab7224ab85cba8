//! `fjord bench commits`: offset commits per second, the way consumers
//! commit them — synchronous OffsetCommit requests through librdkafka, from
//! `--clients` consumers (each its own group) in parallel.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::ClientArgs;

/// `fjord bench commits` flags.
#[derive(clap::Args, Debug)]
pub struct CommitBench {
    /// Topic whose partitions the commits name (auto-created when the
    /// broker allows it).
    #[arg(short, long, default_value = "fjord-bench")]
    pub topic: String,
    /// Commits per client.
    #[arg(short = 'n', long, default_value_t = 20_000)]
    pub commits: u64,
    /// Parallel clients (threads), each committing for its own group.
    #[arg(short, long, default_value_t = 4)]
    pub clients: usize,
    /// Partitions named in each commit (from 0).
    #[arg(short, long, default_value_t = 1)]
    pub partitions: i32,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: CommitBench) -> Result<()> {
    if args.clients == 0 || args.partitions < 1 {
        bail!("--clients and --partitions must be at least 1");
    }
    // Make sure the topic (and enough partitions) exist before timing.
    let probe: BaseConsumer = args.client.config().create()?;
    let metadata = probe
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .context("Metadata request failed")?;
    let available = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .map_or(0, |t| t.partitions().len() as i32);
    if available < args.partitions {
        bail!(
            "topic {} has {available} partitions, fewer than --partitions {}",
            args.topic,
            args.partitions
        );
    }
    let started = Instant::now();
    let workers: Vec<_> = (0..args.clients)
        .map(|c| {
            let (client, topic, n, partitions) = (
                args.client.clone(),
                args.topic.clone(),
                args.commits,
                args.partitions,
            );
            std::thread::spawn(move || -> Result<()> {
                let consumer: BaseConsumer = client
                    .config()
                    .set("group.id", format!("fjord-bench-commits-{c}"))
                    .set("enable.auto.commit", "false")
                    .create()?;
                for i in 0..n {
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..partitions {
                        tpl.add_partition_offset(&topic, p, Offset::Offset(i as i64 + 1))?;
                    }
                    consumer
                        .commit(&tpl, CommitMode::Sync)
                        .with_context(|| format!("commit {i} of client {c}"))?;
                }
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a commit thread panicked"))??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = args.commits * args.clients as u64;
    println!(
        "{total} commits ({} partitions each) from {} clients in {elapsed:.2} s: {:.0} commits/s",
        args.partitions,
        args.clients,
        total as f64 / elapsed
    );
    Ok(())
}
