//! `fjord pipeline`: manifests and the pipelines running in a broker.
//!
//! `validate` checks manifests locally. `deploy`, `pause`, `resume`,
//! `reset` and `delete` call a broker's admin HTTP API (`--admin`), which checks and
//! stores the deployment (a record in the compacted internal topic
//! `__fjord_pipelines`, which takes no Kafka client's writes). `list` and
//! `status` read, with an ordinary Kafka client, the status the brokers
//! publish to `__fjord_pipeline_status`, `logs` reads
//! `__fjord_pipeline_logs`. `run` deploys a manifest, follows its log and
//! status in the foreground and deletes it on Ctrl-C.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fjord_pipeline::runtime::{
    DEPLOYMENTS_TOPIC, Deployment, LOGS_TOPIC, LogLine, PipelineStatus, RunState, STATUS_TOPIC,
    merge_statuses,
};
use fjord_pipeline::{HostResolver, Pipeline, anchor_plugin_paths, validate_set};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::admin::Admin;
use crate::client::{AdminAddress, AdminArgs, ClientArgs};

#[derive(Subcommand, Debug)]
pub enum PipelineCommand {
    /// Check manifests; every error names the file, line, column and field.
    Validate {
        /// Manifest files (YAML); cycles are checked across all of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Validate manifests and deploy them to the broker (replacing a
    /// running pipeline of the same name, keeping its progress).
    Deploy {
        /// Manifest files, or directories of `.yaml` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Deploy without starting it.
        #[arg(long)]
        paused: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Every deployed pipeline with its state, lag and rate.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// One pipeline's state, errors and per-step counters.
    Status {
        name: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop a pipeline's tasks, keeping its manifest and progress.
    Pause {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Start a paused (or failed) pipeline again.
    Resume {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Move a paused pipeline's position (its group `pipeline.NAME`'s
    /// committed offsets) and empty its steps' state, so that it reads
    /// again from there on `resume`. `startFrom` never does this: it only
    /// says where a pipeline with no committed position begins.
    Reset {
        name: String,
        /// Every record still in the source topic.
        #[arg(long, group = "to")]
        to_earliest: bool,
        /// Skip everything stored.
        #[arg(long, group = "to")]
        to_latest: bool,
        /// The first record at or after this time: ms since the epoch, or
        /// RFC 3339 like 2026-01-31T12:00:00Z.
        #[arg(long, group = "to")]
        to_datetime: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a pipeline (its committed offsets stay with its group).
    Delete {
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// A pipeline's log lines.
    Logs {
        name: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Deploy a manifest and follow it in the foreground; Ctrl-C deletes it.
    Run {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        admin: AdminAddress,
    },
}

pub fn run(command: PipelineCommand) -> Result<()> {
    match command {
        PipelineCommand::Validate { files } => validate(&files).map(|_| ()),
        PipelineCommand::Deploy {
            files,
            paused,
            admin,
        } => deploy(&Admin::new(&admin)?, &files, paused),
        PipelineCommand::List { client } => list(&client),
        PipelineCommand::Status { name, json, client } => status(&client, &name, json),
        PipelineCommand::Pause { name, admin } => set_paused(&Admin::new(&admin)?, &name, true),
        PipelineCommand::Resume { name, admin } => set_paused(&Admin::new(&admin)?, &name, false),
        PipelineCommand::Reset {
            name,
            to_earliest,
            to_latest,
            to_datetime,
            admin,
        } => {
            let to = match (to_earliest, to_latest, to_datetime) {
                (true, _, _) => serde_json::json!("earliest"),
                (_, true, _) => serde_json::json!("latest"),
                (_, _, Some(t)) => {
                    serde_json::json!({ "timestamp": crate::group::parse_time(&t)? })
                }
                _ => bail!("say where to: --to-earliest, --to-latest or --to-datetime"),
            };
            reset(&Admin::new(&admin)?, &name, to)
        }
        PipelineCommand::Delete { name, admin } => {
            Admin::new(&admin)?.delete(&name)?;
            println!("pipeline {name} deleted");
            Ok(())
        }
        PipelineCommand::Logs {
            name,
            follow,
            client,
        } => logs(&client, &name, follow),
        PipelineCommand::Run {
            file,
            client,
            admin,
        } => run_foreground(&client, &Admin::with(&admin, &client.sasl)?, &file),
    }
}

/// The manifests `paths` name: files as given, directories' `.yaml` and
/// `.yml` files in name order.
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads and checks (structure only: plugins are resolved by the broker
/// that runs it) one manifest, as (name, deployment). Relative plugin
/// paths in it are made absolute against the manifest's directory (see
/// [`read_manifest`]).
pub fn read_deployment(file: &Path) -> Result<(String, Deployment)> {
    let text = read_manifest(file)?;
    let shown = file.display().to_string();
    let pipeline = Pipeline::from_yaml(&shown, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((
        pipeline.metadata.name.clone(),
        Deployment {
            manifest: text,
            file: shown,
            paused: false,
            deployed_by: None,
        },
    ))
}

/// A manifest's text, its relative plugin paths made absolute against
/// the directory of `file`: a manifest names its plugins as its author
/// sees them from where it lies, whichever directory `fjord` (or the
/// broker, which stores the deployment) runs in.
pub fn read_manifest(file: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let absolute = std::path::absolute(file)
        .with_context(|| format!("finding the directory of {}", file.display()))?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    Ok(anchor_plugin_paths(&text, dir))
}

fn validate(files: &[PathBuf]) -> Result<Vec<Pipeline>> {
    let host = crate::plugin::host()?;
    let resolver = HostResolver::new(&host);
    let mut pipelines = Vec::new();
    let mut failed = false;
    for file in files {
        let text = read_manifest(file)?;
        match Pipeline::load(&file.display().to_string(), &text, &resolver) {
            Ok(p) => pipelines.push(p),
            Err(errors) => {
                eprintln!("{errors}");
                failed = true;
            }
        }
    }
    if let Err(errors) = validate_set(&pipelines) {
        eprintln!("{errors}");
        failed = true;
    }
    if failed {
        bail!("invalid pipeline manifest");
    }
    for p in &pipelines {
        println!("{}: pipeline {} is valid", p.file_name(), p.metadata.name);
    }
    Ok(pipelines)
}

fn deploy(admin: &Admin, paths: &[PathBuf], paused: bool) -> Result<()> {
    let files = manifest_files(paths)?;
    // Structure only, every file before any is sent: plugins and what they
    // may touch are the broker's to check, with the operator's policy of
    // that machine (this one's could refuse what the broker allows).
    let mut deployments = files
        .iter()
        .map(|file| read_deployment(file).map(|(_, d)| (file, d)))
        .collect::<Result<Vec<_>>>()?;
    // What can be checked across the files without plugins (names, cycles,
    // partition counts), before any is sent.
    let pipelines: Vec<Pipeline> = deployments
        .iter()
        .filter_map(|(_, d)| Pipeline::from_yaml(&d.file, &d.manifest).ok())
        .collect();
    validate_set(&pipelines).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Pipelines that create a topic go before the ones reading it, so
    // that it gets the partitions its creator asks for, not the default
    // of a reader that started first.
    let created: Vec<&str> = pipelines
        .iter()
        .flat_map(|p| &p.spec.sinks)
        .filter(|s| s.create.as_ref().is_some_and(|c| c.partitions.is_some()))
        .filter_map(|s| s.topic.as_deref())
        .collect();
    let reads_created = |d: &Deployment| {
        Pipeline::from_yaml(&d.file, &d.manifest)
            .ok()
            .and_then(|p| p.spec.source.topic)
            .is_some_and(|t| created.contains(&t.as_str()))
    };
    deployments.sort_by_key(|(_, d)| reads_created(d));
    let mut deployed = Vec::new();
    for (file, deployment) in deployments {
        let done = admin
            .deploy(&deployment.manifest, &deployment.file, paused)
            .with_context(|| format!("deploying {}", file.display()))?;
        if done.unchanged {
            // Nothing to wait for: the running revision goes on.
            println!("pipeline {} unchanged", done.name);
        } else {
            deployed.push((done.name, done.revision));
        }
    }
    let failed = await_states(admin, deployed)?;
    if !failed.is_empty() {
        bail!("pipeline {} did not start", failed.join(", "));
    }
    Ok(())
}

/// Waits (a little) for the broker to run each deployed revision, prints
/// the state each reached and returns the names of those that failed
/// (`failed` or `invalid`), so that `deploy` can exit non-zero for them.
/// A revision is watched over two statuses (a second apart): a task that
/// cannot start, or stops on the first batch, shows by the second.
fn await_states(admin: &Admin, deployed: Vec<(String, i64)>) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut failed = Vec::new();
    // Per pipeline: when its revision's first status was taken.
    let mut first_seen: BTreeMap<String, i64> = BTreeMap::new();
    let mut pending = deployed;
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        for (name, revision) in pending {
            let status = admin.status(&name)?.filter(|s| s.revision >= revision);
            let settled = match &status {
                Some(s) if matches!(s.state, RunState::Failed | RunState::Invalid) => true,
                Some(s) => {
                    let first = *first_seen.entry(name.clone()).or_insert(s.updated_ms);
                    s.updated_ms >= first + 1000
                }
                None => false,
            };
            match status {
                Some(s) if settled || Instant::now() >= deadline => {
                    println!("pipeline {name} deployed: {}", state_text(&s));
                    for e in &s.errors {
                        println!("  {e}");
                    }
                    for w in &s.warnings {
                        println!("  warning: {w}");
                    }
                    if matches!(s.state, RunState::Failed | RunState::Invalid) {
                        failed.push(name);
                    }
                }
                None if Instant::now() >= deadline => {
                    println!("pipeline {name} deployed; no status from the broker yet");
                }
                _ => waiting.push((name, revision)),
            }
        }
        pending = waiting;
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Ok(failed)
}

fn state_text(s: &PipelineStatus) -> String {
    serde_json::to_value(s.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn current(client: &ClientArgs, name: &str) -> Result<Deployment> {
    let value = read_latest(client, DEPLOYMENTS_TOPIC)?
        .remove(name)
        .with_context(|| format!("no pipeline called {name:?} is deployed"))?;
    Deployment::from_json(&value).map_err(anyhow::Error::msg)
}

fn set_paused(admin: &Admin, name: &str, paused: bool) -> Result<()> {
    admin.set_paused(name, paused)?;
    println!(
        "pipeline {name} {}",
        if paused { "paused" } else { "resumed" }
    );
    Ok(())
}

fn reset(admin: &Admin, name: &str, to: serde_json::Value) -> Result<()> {
    let answer = admin.reset(name, to)?;
    let topic = answer["topic"].as_str().unwrap_or_default();
    for o in answer["offsets"].as_array().into_iter().flatten() {
        println!("{topic}-{} -> {}", o["partition"], o["offset"]);
    }
    for changelog in answer["changelogs"].as_array().into_iter().flatten() {
        println!("state emptied: {}", changelog.as_str().unwrap_or_default());
    }
    println!("pipeline {name} reset; `fjord pipeline resume {name}` reads from there");
    Ok(())
}

fn statuses(client: &ClientArgs) -> Result<BTreeMap<String, PipelineStatus>> {
    let latest = read_latest(client, STATUS_TOPIC)?;
    Ok(merge_statuses(latest.values().map(Vec::as_slice)))
}

fn list(client: &ClientArgs) -> Result<()> {
    let deployed = read_latest(client, DEPLOYMENTS_TOPIC)?;
    let statuses = statuses(client)?;
    println!(
        "{:<24} {:<8} {:<28} {:>10} {:>12}",
        "NAME", "STATE", "SOURCE", "LAG", "IN/S"
    );
    for name in deployed.keys() {
        match statuses.get(name) {
            Some(s) => println!(
                "{:<24} {:<8} {:<28} {:>10} {:>12.0}",
                name,
                state_text(s),
                s.source,
                s.lag,
                s.steps.first().or(s.sinks.first()).map_or(0.0, |c| c.rate)
            ),
            None => println!("{name:<24} {:<8}", "pending"),
        }
    }
    Ok(())
}

fn status(client: &ClientArgs, name: &str, json: bool) -> Result<()> {
    let deployment = current(client, name)?;
    let status = statuses(client)?
        .remove(name)
        .with_context(|| format!("pipeline {name} has no status yet"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "pipeline {}: {} (broker {})",
        status.name,
        state_text(&status),
        status.node_id
    );
    println!(
        "source: {}   lag: {}   dead-lettered: {}",
        status.source, status.lag, status.dead_lettered
    );
    if let Ok(pipeline) = Pipeline::from_yaml(&deployment.file, &deployment.manifest) {
        println!(
            "runs as: {}   deployed by: {}",
            fjord_pipeline::runtime::access::run_as(&pipeline, &deployment),
            deployment.deployed_by.as_deref().unwrap_or("the operator")
        );
    }
    for e in &status.errors {
        println!("error: {e}");
    }
    for w in &status.warnings {
        println!("warning: {w}");
    }
    println!(
        "{:<28} {:>12} {:>12} {:>10} {:>8} {:>10}  LAST ERROR",
        "STEP/SINK", "IN", "OUT", "DROPPED", "FAILED", "IN/S"
    );
    for (kind, c) in status
        .steps
        .iter()
        .map(|c| ("step", c))
        .chain(status.sinks.iter().map(|c| ("sink", c)))
    {
        println!(
            "{:<28} {:>12} {:>12} {:>10} {:>8} {:>10.0}  {}",
            format!("{kind} {}", c.name),
            c.records_in,
            c.records_out,
            c.dropped,
            c.failed,
            c.rate,
            c.last_error.as_deref().unwrap_or("")
        );
        // The plugin's own counters say why records went without output
        // (an aggregate's late or future records, a validator's rejects).
        print_counters("", &c.counters);
    }
    // The source connector's own counters (a syslog source's drops).
    print_counters("source connector", &status.source_counters);
    if !status.partitions.is_empty() {
        println!(
            "{:<10} {:>12} {:>12} {:>10}",
            "PARTITION", "POSITION", "END", "LAG"
        );
        for p in &status.partitions {
            println!(
                "{:<10} {:>12} {:>12} {:>10}",
                p.partition, p.position, p.end, p.lag
            );
        }
    }
    Ok(())
}

/// A plugin's own counters as `name=value` pairs on one line under `label`;
/// nothing when it counted nothing.
fn print_counters(label: &str, counters: &std::collections::BTreeMap<String, u64>) {
    if counters.is_empty() {
        return;
    }
    let pairs: Vec<String> = counters
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("{label:<28} {}", pairs.join(" "));
}

fn logs(client: &ClientArgs, name: &str, follow: bool) -> Result<()> {
    let (consumer, high) = reader(client, LOGS_TOPIC)?;
    if high == 0 && !follow {
        return Ok(());
    }
    let mut idle_since = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                idle_since = Instant::now();
                if m.key() == Some(name.as_bytes())
                    && let Some(line) = m
                        .payload()
                        .and_then(|v| serde_json::from_slice::<LogLine>(v).ok())
                {
                    println!(
                        "{} {:<5} {}",
                        rfc3339(line.time_ms),
                        line.level,
                        line.message
                    );
                }
                if !follow && m.offset() >= high - 1 {
                    return Ok(());
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) if !follow => return Ok(()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(e).context("reading the pipeline log"),
            None if !follow && idle_since.elapsed() > Duration::from_secs(5) => return Ok(()),
            None => {}
        }
    }
}

fn run_foreground(client: &ClientArgs, admin: &Admin, file: &Path) -> Result<()> {
    // The broker checks plugins with its own policy (see `deploy`).
    let (name, deployment) = read_deployment(file)?;
    admin.deploy(&deployment.manifest, &deployment.file, false)?;
    println!("running pipeline {name}; Ctrl-C stops and deletes it");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    ctrlc_flag(flag)?;
    let (consumer, _) = reader(client, LOGS_TOPIC)?;
    let mut last_status = Instant::now();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200))
            && m.key() == Some(name.as_bytes())
            && let Some(line) = m
                .payload()
                .and_then(|v| serde_json::from_slice::<LogLine>(v).ok())
        {
            println!("[log] {:<5} {}", line.level, line.message);
        }
        if last_status.elapsed() >= Duration::from_secs(5) {
            last_status = Instant::now();
            if let Some(s) = statuses(client)?.remove(&name) {
                let counts: Vec<String> = s
                    .steps
                    .iter()
                    .chain(&s.sinks)
                    .map(|c| {
                        format!(
                            "{} {}→{} ({:.0}/s)",
                            c.name, c.records_in, c.records_out, c.rate
                        )
                    })
                    .collect();
                println!(
                    "[status] {} lag {} | {}",
                    state_text(&s),
                    s.lag,
                    counts.join(" | ")
                );
            }
        }
    }
    admin.delete(&name)?;
    println!("pipeline {name} deleted");
    Ok(())
}

/// Sets `flag` on Ctrl-C (SIGINT) instead of ending the process.
fn ctrlc_flag(flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    Ok(())
}

/// A consumer of partition 0 of `topic` from its start, and the partition's
/// high watermark when it started: where "everything so far" ends. (A busy
/// topic, such as the status topic of a cluster whose brokers each publish
/// every second, may never give an end-of-partition event to wait for.)
fn reader(client: &ClientArgs, topic: &str) -> Result<(BaseConsumer, i64)> {
    let consumer: BaseConsumer = client
        .assigning_consumer_config()
        .create()
        .context("creating a consumer")?;
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .with_context(|| format!("reading the end of {topic} at {}", client.bootstrap_server))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    Ok((consumer, high))
}

fn read_latest(client: &ClientArgs, topic: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let (consumer, high) = reader(client, topic)?;
    let mut latest = BTreeMap::new();
    if high == 0 {
        return Ok(latest);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Instant::now() >= deadline {
            bail!("no answer from {} reading {topic}", client.bootstrap_server)
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) {
                    match m.payload() {
                        Some(v) => latest.insert(key.to_owned(), v.to_vec()),
                        None => latest.remove(key),
                    };
                }
                if m.offset() >= high - 1 {
                    return Ok(latest);
                }
            }
            // Compaction can leave the end past the last record.
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return Ok(latest),
            Some(Err(e)) => return Err(e).with_context(|| format!("reading {topic}")),
            None => {}
        }
    }
}

/// `time_ms` (ms since the epoch) as an RFC 3339 UTC time with
/// milliseconds, as logs are read and sorted by people and tools.
fn rfc3339(time_ms: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(time_ms.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}
