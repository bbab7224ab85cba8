//! Turning a validated manifest into running parts: the plugins loaded
//! once, then per task the instances of each step (per source partition),
//! the sinks and the dead-letter topic.

use std::sync::Arc;

use fjord_broker::{LocalBroker, Topic};
use fjord_plugin_host::{
    InstanceOptions, LoadedPlugin, PluginHost, PluginInstance, PluginLog, PluginMetrics, Services,
    StateStore,
};
use fjord_sdk::{Config, PluginKind};

use super::chain::{Chain, Step};
use super::changelog::ChangelogStore;
use super::error::PipelineError;
use super::outputs::{Output, Router, Target, TopicOutput};
use super::stats::PipelineStats;
use super::stop::StopSignal;
use crate::{Pipeline, PluginRef};

/// A plugin loaded with the options its instances get.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub name: String,
    pub plugin: Arc<LoadedPlugin>,
    pub config: Config,
    pub capabilities: fjord_plugin_host::Capabilities,
}

impl Loaded {
    fn new(
        host: &PluginHost,
        name: &str,
        r: &PluginRef,
        kind: PluginKind,
    ) -> Result<Self, PipelineError> {
        Ok(Loaded {
            name: name.to_owned(),
            plugin: host
                .load_kind(&r.plugin, kind)
                .map_err(|source| PipelineError::Plugin {
                    name: name.to_owned(),
                    source,
                })?,
            config: r.plugin_config(),
            capabilities: r.plugin_capabilities(),
        })
    }

    pub fn instance(
        &self,
        host: &PluginHost,
        partition: i32,
        state: Arc<dyn StateStore>,
        metrics: &Arc<PluginMetrics>,
        log: &Arc<dyn PluginLog>,
        position: Option<Vec<u8>>,
    ) -> Result<PluginInstance, PipelineError> {
        self.instance_with(host, partition, state, metrics, log, position, false)
    }

    /// An instance of a step: its counters, like its state writes, count
    /// only once [`super::chain::Step`] applies them after a good call.
    #[allow(clippy::too_many_arguments)]
    fn instance_with(
        &self,
        host: &PluginHost,
        partition: i32,
        state: Arc<dyn StateStore>,
        metrics: &Arc<PluginMetrics>,
        log: &Arc<dyn PluginLog>,
        position: Option<Vec<u8>>,
        counters_on_success: bool,
    ) -> Result<PluginInstance, PipelineError> {
        let mut options = InstanceOptions::new(self.config.clone());
        options.capabilities = self.capabilities.clone();
        options.position = position;
        options.services = Some(Services {
            plugin: self.name.clone(),
            partition,
            state,
            metrics: Arc::clone(metrics),
            log: Some(Arc::clone(log)),
            counters_on_success,
        });
        host.instantiate(&self.plugin, options)
            .map_err(|source| PipelineError::Plugin {
                name: self.name.clone(),
                source,
            })
    }
}

/// The name the source connector's plugin records its metrics under:
/// the `step` label of its counters on `/metrics`, and the status's
/// `source_counters`.
pub(crate) const SOURCE_PLUGIN: &str = "source";

/// Everything loaded for one pipeline.
pub(crate) struct Plan {
    pub pipeline: Pipeline,
    pub source_topic: Option<Arc<Topic>>,
    pub source_connector: Option<Loaded>,
    pub steps: Vec<Loaded>,
    pub stores: Vec<Arc<ChangelogStore>>,
    pub sink_topics: Vec<Option<Arc<Topic>>>,
    pub dead_letter: Option<Arc<Topic>>,
    pub metrics: Arc<PluginMetrics>,
    /// The pipeline's log, where its plugins' log lines go.
    pub plugin_log: Arc<dyn PluginLog>,
}

impl Plan {
    /// Loads the plugins and creates the topics `pipeline` needs.
    pub fn new(
        local: &LocalBroker,
        host: &PluginHost,
        handle: &tokio::runtime::Handle,
        pipeline: Pipeline,
        plugin_log: Arc<dyn PluginLog>,
    ) -> Result<Plan, PipelineError> {
        let name = pipeline.metadata.name.clone();
        let spec = &pipeline.spec;
        let ensure_with = |topic: &str, partitions: Option<i32>, configs: &[(&str, &str)]| {
            handle
                .block_on(local.ensure_topic(topic, partitions, configs))
                .map_err(|source| PipelineError::Topic {
                    topic: topic.to_owned(),
                    source,
                })
        };
        let ensure = |topic: &str, partitions: Option<i32>| ensure_with(topic, partitions, &[]);
        let source_topic = match &spec.source.topic {
            Some(t) => Some(ensure(t, None)?),
            None => None,
        };
        let source_connector = match &spec.source.connector {
            Some(c) => Some(Loaded::new(host, SOURCE_PLUGIN, c, PluginKind::Source)?),
            None => None,
        };
        let steps = spec
            .steps
            .iter()
            .map(|s| {
                Loaded::new(
                    host,
                    &s.name,
                    &PluginRef {
                        plugin: s.plugin.clone(),
                        config: s.config.clone(),
                        capabilities: s.capabilities.clone(),
                    },
                    PluginKind::Processor,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stores = spec
            .steps
            .iter()
            .map(|s| Arc::new(ChangelogStore::new(&name, &s.name)))
            .collect();
        let sink_topics = spec
            .sinks
            .iter()
            .map(|s| match &s.topic {
                Some(t) => {
                    let partitions = s.create.as_ref().and_then(|c| c.partitions);
                    let configs: Vec<(String, String)> = s
                        .create
                        .iter()
                        .flat_map(|c| c.configs.iter())
                        .map(|(k, v)| (k.to_owned(), crate::model::config_text(v)))
                        .collect();
                    let configs: Vec<(&str, &str)> = configs
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    ensure_with(t, partitions.map(|p| p as i32), &configs).map(Some)
                }
                None => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dead_letter = match &spec.dead_letter {
            Some(d) => Some(ensure(&d.topic, None)?),
            None => None,
        };
        Ok(Plan {
            source_topic,
            source_connector,
            steps,
            stores,
            sink_topics,
            dead_letter,
            metrics: Arc::new(PluginMetrics::default()),
            plugin_log,
            pipeline,
        })
    }

    /// The labels of the sinks, for status.
    pub fn sink_labels(&self) -> Vec<String> {
        self.pipeline
            .spec
            .sinks
            .iter()
            .map(|s| match (&s.topic, &s.connector) {
                (Some(t), _) => format!("topic {t}"),
                (None, Some(c)) => format!("connector {}", c.plugin),
                (None, None) => "sink".to_owned(),
            })
            .collect()
    }

    /// The step instances for source partition `partition`.
    pub fn chain(
        &self,
        host: &PluginHost,
        partition: i32,
        stats: &Arc<PipelineStats>,
        stop: &Arc<StopSignal>,
        handle: &tokio::runtime::Handle,
    ) -> Result<Chain, PipelineError> {
        let steps = self
            .steps
            .iter()
            .zip(&self.stores)
            .map(|(loaded, store)| {
                let state: Arc<dyn StateStore> = store.clone();
                Ok(Step {
                    name: loaded.name.clone(),
                    instance: loaded.instance_with(
                        host,
                        partition,
                        state,
                        &self.metrics,
                        &self.plugin_log,
                        None,
                        true,
                    )?,
                    store: Arc::clone(store),
                })
            })
            .collect::<Result<Vec<_>, PipelineError>>()?;
        Ok(Chain::new(
            steps,
            partition,
            Arc::clone(stats),
            self.pipeline.spec.retry,
            Arc::clone(stop),
            handle.clone(),
        )
        .stopping_at_failure(self.pipeline.spec.dead_letter.is_none()))
    }

    /// The sinks and dead-letter topic of one task.
    pub fn router(
        &self,
        host: &PluginHost,
        stats: &Arc<PipelineStats>,
    ) -> Result<Router, PipelineError> {
        let memory =
            || -> Arc<dyn StateStore> { Arc::new(fjord_plugin_host::MemoryStateStore::default()) };
        let plugin = |name: &str, r: &PluginRef, kind| -> Result<PluginInstance, PipelineError> {
            Loaded::new(host, name, r, kind)?.instance(
                host,
                0,
                memory(),
                &self.metrics,
                &self.plugin_log,
                None,
            )
        };
        let builtin =
            |reference: &str, kind, config: Config| -> Result<PluginInstance, PipelineError> {
                let r = PluginRef {
                    plugin: reference.to_owned(),
                    config: Default::default(),
                    capabilities: None,
                };
                let mut loaded = Loaded::new(host, reference, &r, kind)?;
                loaded.config = config;
                loaded.instance(host, 0, memory(), &self.metrics, &self.plugin_log, None)
            };
        let topic_output = |topic: &Arc<Topic>,
                            partitioner: Option<&PluginRef>,
                            serializer: Option<&PluginRef>|
         -> Result<TopicOutput, PipelineError> {
            Ok(TopicOutput {
                topic: Arc::clone(topic),
                partitioner: partitioner
                    .map(|p| plugin("partitioner", p, PluginKind::Partitioner))
                    .transpose()?,
                keyed: builtin("murmur2", PluginKind::Partitioner, Config::default())?,
                serializer: serializer
                    .map(|s| plugin("serializer", s, PluginKind::Serializer))
                    .transpose()?,
                next: 0,
            })
        };
        let labels = self.sink_labels();
        let mut outputs = Vec::new();
        for ((sink, topic), label) in self
            .pipeline
            .spec
            .sinks
            .iter()
            .zip(&self.sink_topics)
            .zip(labels)
        {
            let target = match (topic, &sink.connector) {
                (Some(t), _) => Target::Topic(Box::new(topic_output(
                    t,
                    sink.partitioner.as_ref(),
                    sink.serializer.as_ref(),
                )?)),
                (None, Some(c)) => {
                    Target::Connector(Box::new(plugin(&label, c, PluginKind::Sink)?))
                }
                (None, None) => return Err(PipelineError::SinkWithoutTarget(label)),
            };
            let when = sink
                .when
                .as_ref()
                .map(|expr| {
                    fjord_expr::Condition::parse(expr).map_err(|source| PipelineError::Condition {
                        sink: label.clone(),
                        source,
                    })
                })
                .transpose()?;
            outputs.push(Output {
                label,
                topic_name: sink.topic.clone(),
                when,
                target,
            });
        }
        let dead_letter = self
            .dead_letter
            .as_ref()
            .map(|t| topic_output(t, None, None))
            .transpose()?;
        Ok(Router {
            conditions: fjord_expr::ConditionSet::new(
                outputs.iter().filter_map(|o| o.when.as_ref()),
            ),
            outputs,
            dead_letter,
            pipeline: self.pipeline.metadata.name.clone(),
            source: match (
                &self.pipeline.spec.source.topic,
                &self.pipeline.spec.source.connector,
            ) {
                (Some(t), _) => format!("topic {t}"),
                (None, Some(c)) => format!("connector {}", c.plugin),
                _ => String::new(),
            },
            stats: Arc::clone(stats),
        })
    }
}
