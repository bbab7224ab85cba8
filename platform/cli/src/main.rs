//! `fjord`: the one binary of the platform. `fjord server` runs a broker;
//! every other subcommand is a Kafka client of one (through librdkafka, the
//! `rdkafka` crate, or raw Kafka requests where librdkafka has no call), so
//! what it shows is what any Kafka tool would see — except the commands
//! that change pipelines, which call the broker's admin HTTP API (its
//! internal topics take no client's writes).
//!
//! It is not where broker logic lives: that is `fjord-broker`; this crate
//! only parses flags, loads configuration and prints.

mod acl;
mod admin;
mod bench;
mod bench_commits;
mod bench_fetch;
mod bench_logins;
mod client;
mod cluster;
mod consume;
mod group;
mod pipeline;
mod plugin;
mod policy;
mod produce;
mod quorum;
mod quota;
mod raw;
mod server;
mod topic;
mod transaction;
mod user;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Fjord: a Kafka-compatible streaming platform.
#[derive(Parser, Debug)]
#[command(name = "fjord", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker (embedded single node by default, data in ./fjord-data).
    Server(Box<server::ServerArgs>),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Write standard input to a topic, one record per line.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// List, describe, reset the offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Create, list and delete ACLs (Kafka's authorization).
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Client quotas (produce and fetch byte rates): alter, describe.
    #[command(subcommand)]
    Quota(quota::QuotaCommand),
    /// Brokers, leader elections, partition reassignment, decommissioning.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Users and their SCRAM credentials: create, delete, list.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Kafka transactions: list, describe, describe-producers, abort.
    #[command(subcommand)]
    Transaction(transaction::TransactionCommand),
    /// Load generators.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Scaffold, build, try out and inspect plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Pipelines: validate, deploy, list, status, pause, resume, delete, logs, run.
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The server (and `pipeline run`, a broker of its own) keeps Rust's
    // ignored SIGPIPE: a write to a peer that reset its connection (a TLS
    // alert to a client that already left) must be an error for that
    // connection, not a signal that kills the broker.
    match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Plugin(c) => {
            restore_default_sigpipe();
            plugin::run(c)
        }
        Command::Pipeline(c) => pipeline::run(c),
        command => {
            restore_default_sigpipe();
            init_client_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                match command {
                    Command::Topic(c) => topic::run(c).await,
                    Command::Produce(a) => tokio::task::block_in_place(|| produce::run(a)),
                    Command::Consume(a) => tokio::task::block_in_place(|| consume::run(a)),
                    Command::Group(c) => group::run(c).await,
                    Command::Cluster(c) => tokio::task::block_in_place(|| cluster::run(c)),
                    Command::Acl(c) => tokio::task::block_in_place(|| acl::run(c)),
                    Command::Quota(c) => tokio::task::block_in_place(|| quota::run(c)),
                    Command::Bench(c) => tokio::task::block_in_place(|| bench::run(c)),
                    Command::User(c) => tokio::task::block_in_place(|| user::run(c)),
                    Command::Transaction(c) => tokio::task::block_in_place(|| transaction::run(c)),
                    Command::Server(_) | Command::Plugin(_) | Command::Pipeline(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }
    }
}

/// Client subcommands log warnings only, to stderr, so their output stays clean.
fn init_client_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FJORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rdkafka::client=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Rust ignores SIGPIPE, so `fjord topic list | head -1` would panic on the
/// closed pipe. A command-line tool should just stop, as `cat` does. Only
/// for client commands: a server must never die of a peer's closed socket.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    /// Every subcommand's flags are consistent (unique names, valid
    /// `requires`): clap checks this only when a command is parsed.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
