//! The pipeline runtime: runs deployed pipelines inside the broker.
//!
//! [`PipelineRuntime::start`] watches the deployments topic
//! ([`DEPLOYMENTS_TOPIC`]). For each pipeline that is deployed and not
//! paused it validates the manifest, loads the plugins and starts
//! `parallelism` task threads that share the source topic's partitions
//! (or one that runs the source connector). Progress is committed as the
//! consumer group `pipeline.<name>`. A changed deployment replaces the
//! running one: the old tasks commit what they delivered and stop, the new
//! ones resume from that commit (at-least-once across the switch). Every
//! second the runtime publishes each pipeline's [`PipelineStatus`] to
//! [`STATUS_TOPIC`] and its log lines to [`LOGS_TOPIC`].
//!
//! Each pipeline runs as a principal, and its tasks pass the broker's
//! ACLs as any Kafka client does ([`access`]): a denied one fails with the
//! refusal in its status and starts again by itself once a binding allows
//! it.
//!
//! In a cluster every broker runs this runtime for the source partitions
//! it leads; tasks start and stop as leadership moves, and everything
//! written outside the source goes through a Kafka client to the target
//! partition's leader (`runtime/topics.rs`).

pub mod access;
pub mod catalog;
mod chain;
mod changelog;
mod deployments;
mod error;
mod exactly_once;
mod outputs;
mod plan;
mod publish;
mod records;
mod stats;
mod stop;
mod task;
mod topics;

pub use error::{PipelineError, TopicsError};
pub(crate) use plan::SOURCE_PLUGIN;
pub use records::SkippedBatch;

pub use deployments::{
    DEPLOYMENTS_TOPIC, Deployment, LOGS_TOPIC, LogLine, POSITIONS_TOPIC, PartitionStatus,
    PipelineStatus, RunState, STATUS_TOPIC, StepStatus, merge_statuses,
};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fjord_broker::{LocalBroker, LocalError};
use fjord_plugin_host::{MemoryStateStore, PluginHost, StateStore};
use tokio::sync::watch;

use crate::{HostResolver, Pipeline};
use access::Permissions;
use plan::Plan;
use stats::PipelineStats;
use stop::StopSignal;
use task::{ConnectorTask, Io, LogBuffer, PartitionWork, TopicTask};
use topics::Topics;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How often the supervisor of a cluster's broker looks at deployments and
/// leaderships (a single node waits for deployments to be appended).
const TICK: Duration = Duration::from_millis(50);
/// How often each pipeline's status is published.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long the supervisor's reads and writes through a cluster may take.
const SUPERVISOR_READS: Duration = Duration::from_secs(2);

/// The running pipeline runtime of one broker.
#[derive(Debug)]
pub struct PipelineRuntime {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl PipelineRuntime {
    /// Creates the internal topics if missing and starts watching
    /// deployments. Must be called inside the broker's tokio runtime.
    pub async fn start(
        local: LocalBroker,
        host: Arc<PluginHost>,
    ) -> Result<PipelineRuntime, LocalError> {
        // The supervisor's own reads (deployments, a connector's position)
        // give up quickly: it retries on its next tick, and meanwhile
        // keeps starting and stopping tasks as leaderships move.
        let topics = Topics::of(&local).with_timeout(SUPERVISOR_READS);
        topics.prepare().await?;
        let stop = Arc::new(StopSignal::default());
        let supervisor = Supervisor {
            local,
            topics,
            internal_topics: false,
            deployments_unread: false,
            host,
            handle: tokio::runtime::Handle::current(),
            stop: Arc::clone(&stop),
            logs: Arc::new(LogBuffer::default()),
            read_from: 0,
            desired: BTreeMap::new(),
            running: BTreeMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("fjord-pipelines".into())
            .spawn(move || supervisor.run())
            .map_err(|e| LocalError::from_message(e.to_string()))?;
        Ok(PipelineRuntime {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops every pipeline; their tasks commit what they delivered.
    pub async fn stop(mut self) {
        self.stop.set();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// The source partitions this broker runs `source`'s tasks for: the
/// ones it leads (all of them on a single node), so that in a cluster
/// each partition is processed by its leader only and moves with its
/// leadership. A source connector (`source` empty) runs on the leader
/// of the positions topic, where it saves its position.
fn owned(local: &LocalBroker, source: &str) -> Vec<i32> {
    let topic = if source.is_empty() {
        POSITIONS_TOPIC
    } else {
        source
    };
    let Some(topic) = local.topic(topic) else {
        return Vec::new();
    };
    topic
        .partitions()
        .iter()
        .filter(|p| local.leads(p) && (!source.is_empty() || p.index() == 0))
        .map(|p| p.index())
        .collect()
}

/// Deploys `deployment` as pipeline `name` on the broker `local` (what
/// the admin API, and so `fjord pipeline deploy`, does), unless it is
/// what is deployed already (see [`deploy_if_changed`]). Returns the
/// deployment's revision (the offset of its record), which its status
/// reports once the runtime has taken it up.
pub async fn deploy_local(
    local: &LocalBroker,
    name: &str,
    deployment: &Deployment,
) -> Result<i64, LocalError> {
    deploy_if_changed(local, name, deployment)
        .await
        .map(|d| d.revision)
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployed {
    /// The revision now deployed.
    pub revision: i64,
    /// False when the same manifest text (and paused state) was deployed
    /// already: nothing was written, the running tasks go on.
    pub changed: bool,
}

/// Deploys `deployment` as pipeline `name` unless the current deployment
/// has the same manifest text, paused state and deployer (who deployed it
/// is who it may run as). The file it came from
/// does not count: the same manifest deployed from another path (or
/// through the API) is no new revision, and restarts nothing.
pub async fn deploy_if_changed(
    local: &LocalBroker,
    name: &str,
    deployment: &Deployment,
) -> Result<Deployed, LocalError> {
    let current = catalog::deployments_blocking(local).await?.remove(name);
    if let Some((revision, current)) = current
        && current.manifest == deployment.manifest
        && current.paused == deployment.paused
        && current.deployed_by == deployment.deployed_by
    {
        return Ok(Deployed {
            revision,
            changed: false,
        });
    }
    let revision = catalog::write(local, name, Some(deployment.to_json())).await?;
    Ok(Deployed {
        revision,
        changed: true,
    })
}

impl Drop for PipelineRuntime {
    fn drop(&mut self) {
        self.stop.set();
    }
}

/// A pipeline as this broker runs it.
struct Running {
    /// Offset of the deployment record it runs.
    revision: i64,
    state: RunState,
    errors: Vec<String>,
    /// What runs, but not as the manifest asks (see
    /// [`PipelineStatus::warnings`]).
    warnings: Vec<String>,
    source: String,
    stats: Arc<PipelineStats>,
    stop: Arc<StopSignal>,
    tasks: Vec<JoinHandle<()>>,
    /// The source partitions its tasks run (see [`Supervisor::owned`]).
    owned: Vec<i32>,
    last_status: Instant,
    /// What it needs of the ACLs (once its manifest loaded).
    permissions: Option<Arc<Permissions>>,
    /// Failed because an ACL refused it: its permissions are checked on
    /// every round of the supervisor, and it starts again once allowed.
    refused: bool,
}

impl Running {
    fn halt(&mut self) {
        self.stop.set();
        for t in self.tasks.drain(..) {
            let _ = t.join();
        }
    }
}

/// The tasks of a started pipeline, their stats and the source
/// partitions they run.
type Started = (Vec<JoinHandle<()>>, Arc<PipelineStats>, Vec<i32>);

struct Supervisor {
    local: LocalBroker,
    topics: Topics,
    /// Whether the internal topics exist (in a cluster they are created
    /// once enough brokers are up to replicate them).
    internal_topics: bool,
    /// The last read of the deployments failed (said once per failure).
    deployments_unread: bool,
    host: Arc<PluginHost>,
    handle: tokio::runtime::Handle,
    stop: Arc<StopSignal>,
    logs: Arc<LogBuffer>,
    read_from: i64,
    /// Deployment offset and record by name.
    desired: BTreeMap<String, (i64, Deployment)>,
    running: BTreeMap<String, Running>,
}

impl Supervisor {
    fn run(mut self) {
        let mut last_status = Instant::now();
        let mut deployments: Option<watch::Receiver<i64>> = None;
        while !self.stop.is_set() {
            if !self.internal_topics {
                self.internal_topics = self.topics.internal_topics_ready(&self.handle);
            }
            // Subscribed before the read: a deployment appended in between
            // still wakes the supervisor.
            if deployments.is_none() {
                deployments = self.topics.deployments_appended();
            }
            self.read_deployments();
            self.reconcile();
            if last_status.elapsed() >= STATUS_EVERY {
                let seconds = last_status.elapsed().as_secs_f64();
                last_status = Instant::now();
                self.publish(seconds);
            }
            match &mut deployments {
                // A single node: the supervisor sleeps until a deployment
                // is appended or the next status is due (a task that ended
                // on its own is noticed then).
                Some(appended) => {
                    let (stop, next_status) = (&self.stop, last_status + STATUS_EVERY);
                    let gone = self.handle.block_on(async {
                        tokio::select! {
                            changed = appended.changed() => changed.is_err(),
                            () = stop.stopped() => false,
                            () = tokio::time::sleep_until(next_status.into()) => false,
                        }
                    });
                    // The partition was dropped (the topic deleted): its
                    // successor is subscribed to on the next round.
                    if gone {
                        deployments = None;
                        self.stop.sleep_until(&self.handle, Instant::now() + TICK);
                    }
                }
                // A cluster: leaderships move, and the deployments may be
                // led by another broker; look again every tick.
                None => {
                    self.stop.sleep_until(&self.handle, Instant::now() + TICK);
                }
            }
        }
        for (_, mut r) in std::mem::take(&mut self.running) {
            r.halt();
        }
        self.publish(1.0);
    }

    fn read_deployments(&mut self) {
        if self.local.topic(DEPLOYMENTS_TOPIC).is_none() {
            return;
        }
        let read = match self
            .topics
            .read_to_end(DEPLOYMENTS_TOPIC, 0, self.read_from)
        {
            Ok(r) => r,
            Err(e) => {
                // A cluster between leaders: try again on the next tick,
                // saying so once.
                if !self.deployments_unread {
                    tracing::warn!(error = %e, "cannot read the deployments topic; retrying");
                }
                self.deployments_unread = true;
                return;
            }
        };
        self.deployments_unread = false;
        self.read_from = read.next;
        for r in read.records {
            let Some(name) = r.key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else {
                continue;
            };
            match r.value.as_deref().map(Deployment::from_json) {
                None => {
                    self.desired.remove(name);
                }
                Some(Ok(d)) => {
                    self.desired.insert(name.to_owned(), (r.offset, d));
                }
                Some(Err(e)) => {
                    self.logs
                        .push(name, "error", format!("deployment record ignored: {e}"));
                }
            }
        }
    }

    fn reconcile(&mut self) {
        // Deleted pipelines.
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|n| !self.desired.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(mut r) = self.running.remove(&name) {
                r.halt();
                self.logs
                    .push(&name, "info", "deleted; tasks stopped".into());
                self.write_status_tombstone(&name);
            }
        }
        let desired: Vec<(String, i64, Deployment)> = self
            .desired
            .iter()
            .map(|(n, (o, d))| (n.clone(), *o, d.clone()))
            .collect();
        for (name, revision, deployment) in desired {
            let current = self.running.get_mut(&name);
            let restart = match current {
                None => true,
                Some(r) if r.revision != revision => true,
                // An exactly-once task whose transaction was aborted (in a
                // cluster: a record or the commit failed) cannot go on from
                // where it is: all start again from the last commit.
                Some(r)
                    if r.state == RunState::Running
                        && r.stats.lost_a_transaction()
                        && r.tasks.iter().any(|t| t.is_finished()) =>
                {
                    true
                }
                Some(r) => {
                    // A task ended on its own: an error it cannot get past,
                    // or an ACL that refuses the pipeline now.
                    if r.state == RunState::Running && r.tasks.iter().any(|t| t.is_finished()) {
                        r.state = RunState::Failed;
                        r.errors = r.stats.fatal_errors();
                        r.halt();
                        if r.stats.was_refused() {
                            r.refused = true;
                            self.logs.push(
                                &name,
                                "error",
                                format!(
                                    "stopped at revision {}: refused by an ACL; it starts \
                                     again once a binding allows it",
                                    r.revision
                                ),
                            );
                        } else {
                            self.logs.push(
                                &name,
                                "error",
                                format!("failed at revision {}; `resume` restarts it", r.revision),
                            );
                        }
                    }
                    // Refused by an ACL: allowed now, or its error says
                    // what it still needs.
                    let allowed = match r.permissions.as_ref().filter(|_| r.refused) {
                        None => false,
                        Some(p) => match p.to_start() {
                            Ok(()) => true,
                            Err(denied) => {
                                let error = denied.to_string();
                                if r.errors != [error.as_str()] {
                                    r.errors = vec![error];
                                }
                                false
                            }
                        },
                    };
                    // New source partitions, or leadership that moved,
                    // need tasks here started or stopped.
                    allowed
                        || (r.state == RunState::Running
                            && owned(&self.local, &r.source) != r.owned)
                }
            };
            if restart {
                if let Some(mut old) = self.running.remove(&name) {
                    old.halt();
                    // Resuming is a new revision too: say what it does.
                    let why = match (old.state, deployment.paused) {
                        _ if old.refused && old.revision == revision => "allowed by the ACLs now; ",
                        _ if old.stats.lost_a_transaction() => {
                            "a transaction was aborted, starting again from the last commit; "
                        }
                        (RunState::Paused, false) => "resumed; ",
                        (RunState::Failed, false) => "restarted after failing; ",
                        (RunState::Running, true) => "pausing; ",
                        _ => "",
                    };
                    self.logs.push(
                        &name,
                        "info",
                        format!("{why}replacing revision {}", old.revision),
                    );
                }
                let running = self.launch(&name, revision, &deployment);
                self.running.insert(name, running);
            }
        }
    }

    fn launch(&self, name: &str, revision: i64, deployment: &Deployment) -> Running {
        let stop = Arc::new(StopSignal::default());
        let mut running = Running {
            revision,
            state: RunState::Paused,
            errors: Vec::new(),
            warnings: Vec::new(),
            source: String::new(),
            stats: Arc::new(PipelineStats::default()),
            stop: Arc::clone(&stop),
            tasks: Vec::new(),
            owned: Vec::new(),
            last_status: Instant::now(),
            permissions: None,
            refused: false,
        };
        let pipeline = match Pipeline::load(
            &deployment.file,
            &deployment.manifest,
            &HostResolver::new(&self.host),
        ) {
            Ok(p) => p,
            Err(errors) => {
                running.state = RunState::Invalid;
                running.errors = errors.errors().iter().map(|e| e.to_string()).collect();
                self.logs
                    .push(name, "error", format!("invalid manifest:\n{errors}"));
                return running;
            }
        };
        running.source = pipeline.spec.source.topic.clone().unwrap_or_default();
        if pipeline.metadata.name != name {
            running.state = RunState::Invalid;
            running.errors = vec![format!(
                "deployed as {name:?} but metadata.name is {:?}",
                pipeline.metadata.name
            )];
            return running;
        }
        let steps: Vec<String> = pipeline.spec.steps.iter().map(|s| s.name.clone()).collect();
        if deployment.paused {
            running.stats = Arc::new(PipelineStats::new(name, &steps, &[]));
            self.logs.push(name, "info", "paused".into());
            return running;
        }
        let permissions = Arc::new(Permissions::of(
            &self.local,
            &pipeline,
            access::run_as(&pipeline, deployment),
        ));
        running.permissions = Some(Arc::clone(&permissions));
        // Checked before anything is created or read; said once, not on
        // every round that finds it still refused.
        if let Err(denied) = permissions.to_start() {
            running.state = RunState::Failed;
            self.logs.push(
                name,
                "error",
                format!("cannot start: {denied}; it starts once a binding allows it"),
            );
            running.errors = vec![denied.to_string()];
            running.refused = true;
            return running;
        }
        if let Err(e) = self.create_source_as_promised(&pipeline) {
            running.state = RunState::Failed;
            self.logs.push(name, "error", format!("cannot start: {e}"));
            running.errors = vec![e.to_string()];
            return running;
        }
        let parallelism = pipeline.spec.parallelism;
        let delivery = delivery_warnings(&pipeline);
        match self.start_tasks(name, pipeline, &stop, &permissions) {
            Ok((tasks, stats, owned)) => {
                running.warnings = self.parallelism_warning(&running.source, parallelism);
                running.warnings.extend(delivery);
                running.state = RunState::Running;
                running.tasks = tasks;
                running.stats = stats;
                running.owned = owned;
                self.logs
                    .push(name, "info", format!("running revision {revision}"));
            }
            Err(e) => {
                running.state = RunState::Failed;
                self.logs.push(name, "error", format!("cannot start: {e}"));
                running.errors = vec![e.to_string()];
            }
        }
        running
    }

    /// A source topic that does not exist yet, which another deployed
    /// pipeline creates with `create: {partitions: N}`, is created here
    /// with those N partitions: whichever of the two starts first, the
    /// topic gets the count its manifests ask for.
    fn create_source_as_promised(&self, pipeline: &Pipeline) -> Result<(), PipelineError> {
        let Some(source) = pipeline.spec.source.topic.as_deref() else {
            return Ok(());
        };
        if self.local.topic(source).is_some() {
            return Ok(());
        }
        let promised = self
            .desired
            .values()
            .filter_map(|(_, d)| Pipeline::from_yaml(&d.file, &d.manifest).ok())
            .flat_map(|p| p.spec.sinks)
            .filter(|s| s.topic.as_deref() == Some(source))
            .find_map(|s| s.create.and_then(|c| c.partitions));
        let Some(partitions) = promised else {
            return Ok(());
        };
        self.handle
            .block_on(
                self.local
                    .ensure_topic(source, Some(partitions as i32), &[]),
            )
            .map(|_| ())
            .map_err(|e| PipelineError::Topic {
                topic: source.to_owned(),
                source: e,
            })
    }

    /// The status warning of a pipeline whose `parallelism` exceeds its
    /// source topic's partitions: a partition is read by one task, so the
    /// extra tasks would have nothing to do, and none are started.
    fn parallelism_warning(&self, source: &str, parallelism: u32) -> Vec<String> {
        let Some(topic) = self.local.topic(source) else {
            return Vec::new();
        };
        let partitions = topic.partition_count();
        if i64::from(parallelism) <= i64::from(partitions) {
            return Vec::new();
        }
        vec![format!(
            "parallelism {parallelism} exceeds the {partitions} partition{} of source topic \
             {source}: {partitions} task{} run{}",
            if partitions == 1 { "" } else { "s" },
            if partitions == 1 { "" } else { "s" },
            if partitions == 1 { "s" } else { "" },
        )]
    }

    fn start_tasks(
        &self,
        name: &str,
        pipeline: Pipeline,
        stop: &Arc<StopSignal>,
        permissions: &Arc<Permissions>,
    ) -> Result<Started, PipelineError> {
        let host = &self.host;
        let plugin_log: Arc<dyn fjord_plugin_host::PluginLog> = Arc::new(task::PipelineLog {
            pipeline: name.to_owned(),
            buffer: Arc::clone(&self.logs),
        });
        let plan = Plan::new(&self.local, host, &self.handle, pipeline, plugin_log)?;
        let steps: Vec<String> = plan
            .pipeline
            .spec
            .steps
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let stats = Arc::new(
            PipelineStats::new(name, &steps, &plan.sink_labels())
                .with_plugin_metrics(Arc::clone(&plan.metrics)),
        );
        let io = Io {
            // Tasks retry their reads themselves: the default patience.
            topics: Topics::of(&self.local),
            handle: self.handle.clone(),
            stop: Arc::clone(stop),
            logs: Arc::clone(&self.logs),
            pipeline: name.to_owned(),
            permissions: Arc::clone(permissions),
            exactly_once: plan.pipeline.spec.delivery == crate::Delivery::ExactlyOnce,
        };
        let spawn = |label: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(label)
                .spawn(f)
                .map_err(PipelineError::Thread)
        };
        let mut tasks = Vec::new();
        if let Some(connector) = &plan.source_connector {
            let owned = owned(&self.local, "");
            if owned.is_empty() {
                // Another broker runs the connector.
                return Ok((tasks, stats, owned));
            }
            // Made by the task once it has read the saved position (in a
            // cluster, from another broker, retrying between leaders).
            let source: task::MakeSource = {
                let (host, metrics, log) = (
                    Arc::clone(&self.host),
                    Arc::clone(&plan.metrics),
                    Arc::clone(&plan.plugin_log),
                );
                let connector = connector.clone();
                Box::new(move |position| {
                    let state: Arc<dyn StateStore> = Arc::new(MemoryStateStore::default());
                    connector.instance(&host, 0, state, &metrics, &log, position)
                })
            };
            let task = ConnectorTask {
                chain: plan.chain(host, 0, &stats, stop, &self.handle)?,
                router: plan.router(host, &stats)?,
                stores: plan.stores.clone(),
                stats: Arc::clone(&stats),
                io,
                source: Some(source),
                polled: 0,
            };
            tasks.push(spawn(
                format!("pipeline-{name}"),
                Box::new(move || task.run()),
            )?);
            return Ok((tasks, stats, owned));
        }
        let topic = plan
            .source_topic
            .clone()
            .ok_or(PipelineError::SourceWithoutTarget)?;
        let group = plan.pipeline.group_id();
        let owned = owned(&self.local, topic.name());
        let partitions: Vec<_> = owned.iter().filter_map(|&i| topic.partition(i)).collect();
        let slots = (plan.pipeline.spec.parallelism.max(1) as usize).min(partitions.len().max(1));
        let mut works: Vec<Vec<PartitionWork>> = (0..slots).map(|_| Vec::new()).collect();
        for (n, log) in partitions.iter().enumerate() {
            let index = log.index();
            works[n % slots].push(PartitionWork {
                log: Arc::clone(log),
                chain: plan.chain(host, index, &stats, stop, &self.handle)?,
                // Found by the task when it starts (see TopicTask::resume).
                position: -1,
                committed: -1,
                txn: None,
            });
        }
        for (slot, works) in works.into_iter().enumerate() {
            let task = TopicTask {
                io: io.clone(),
                group: group.clone(),
                topic: topic.name().to_owned(),
                partitions: topic.partition_count(),
                works,
                start_from: plan.pipeline.spec.source.start_from(),
                stores: plan.stores.clone(),
                router: plan.router(host, &stats)?,
                stats: Arc::clone(&stats),
            };
            tasks.push(spawn(
                format!("pipeline-{name}-{slot}"),
                Box::new(move || task.run()),
            )?);
        }
        Ok((tasks, stats, owned))
    }
}

/// The status warnings of an exactly-once pipeline with sink connectors:
/// a connector writes outside the broker's transaction, so what it is
/// given may be written again after a restart (at least once).
fn delivery_warnings(pipeline: &Pipeline) -> Vec<String> {
    if pipeline.spec.delivery != crate::Delivery::ExactlyOnce {
        return Vec::new();
    }
    pipeline
        .spec
        .sinks
        .iter()
        .filter_map(|s| s.connector.as_ref())
        .map(|c| {
            format!(
                "spec.delivery exactly-once does not cover sink connector {}: \
                 it is written at least once",
                c.plugin
            )
        })
        .collect()
}
