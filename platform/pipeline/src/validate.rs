//! Checks made after parsing: names, topics, cycles (the plugins' checks
//! are in `resolve.rs`).

use crate::error::{ManifestError, ManifestErrors};
use crate::model::{Capabilities, ConfigValue, OrderedMap, Pipeline, PluginRef, Sink};
use crate::positions::{child, item};
use std::collections::{HashMap, HashSet};

pub const API_VERSION: &str = "fjord.dev/v1";
pub const KIND: &str = "Pipeline";

/// Collects errors located in one manifest.
pub(crate) struct Report<'p> {
    pipeline: &'p Pipeline,
    pub errors: Vec<ManifestError>,
}

impl<'p> Report<'p> {
    pub fn new(pipeline: &'p Pipeline) -> Self {
        Report {
            pipeline,
            errors: Vec::new(),
        }
    }

    /// An error about the value at `path`.
    pub fn at(&mut self, path: &str, message: impl Into<String>) {
        self.errors
            .push(located(self.pipeline, path, message.into(), false));
    }

    /// An error about the key of the entry at `path` (a field that should
    /// not be there).
    pub fn at_key(&mut self, path: &str, message: impl Into<String>) {
        self.errors
            .push(located(self.pipeline, path, message.into(), true));
    }
}

fn located(p: &Pipeline, path: &str, message: String, key: bool) -> ManifestError {
    let positions = &p.origin.positions;
    ManifestError {
        file: p.origin.file.clone(),
        location: if key {
            positions.key(path)
        } else {
            positions.value(path)
        },
        path: path.to_owned(),
        message,
    }
}

/// Kafka's rule for topic names.
pub fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("a topic name cannot be empty".into())
    } else if name == "." || name == ".." {
        Some(format!("{name:?} is not a legal topic name"))
    } else if name.len() > 249 {
        Some(format!(
            "topic names are at most 249 characters; this one has {}",
            name.len()
        ))
    } else {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| {
                format!(
                    "{name:?} contains {c:?}; topic names use only a-z, A-Z, 0-9, '.', '_' and '-'"
                )
            })
    }
}

/// The principal `text` names in Kafka's form, `User:<name>`
/// (`User:ANONYMOUS` is the anonymous one). Neither `User:*`, which is
/// every principal in an ACL and no one in particular, nor the platform's
/// own principal, which a manifest cannot borrow.
pub(crate) fn parse_principal(text: &str) -> Result<fjord_broker::Principal, String> {
    use fjord_broker::{INTERNAL_PRINCIPAL, Principal};
    match text.split_once(':') {
        Some(("User", "")) | None => Err(format!(
            "{text:?} is not a principal: Kafka's form is User:<name>, like User:etl"
        )),
        Some(("User", "*")) => Err(
            "User:* stands for every principal in an ACL; a pipeline runs as one, like User:etl"
                .into(),
        ),
        Some(("User", INTERNAL_PRINCIPAL)) => Err(format!(
            "User:{INTERNAL_PRINCIPAL} is the platform's own principal; a pipeline cannot run as it"
        )),
        Some(("User", "ANONYMOUS")) => Ok(Principal::Anonymous),
        Some(("User", name)) => Ok(Principal::User(name.to_owned())),
        Some((kind, _)) => Err(format!(
            "{text:?}: principals are of type User (User:<name>), not {kind}"
        )),
    }
}

fn pipeline_name_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Some("a pipeline needs a name".into()),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Some(format!(
                "{name:?} must start with a lowercase letter or a digit"
            ));
        }
        Some(_) => {}
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-'))
    {
        return Some(format!(
            "{name:?} contains {c:?}; pipeline names use only a-z, 0-9, '.' and '-'"
        ));
    }
    if name.len() > 200 {
        return Some(format!(
            "pipeline names are at most 200 characters; this one has {}",
            name.len()
        ));
    }
    None
}

/// Everything that can be checked without plugins.
pub(crate) fn check_structure(p: &Pipeline, r: &mut Report<'_>) {
    if p.api_version != API_VERSION {
        r.at(
            "apiVersion",
            format!("expected {API_VERSION:?}, found {:?}", p.api_version),
        );
    }
    if p.kind != KIND {
        r.at("kind", format!("expected {KIND:?}, found {:?}", p.kind));
    }
    if let Some(problem) = pipeline_name_problem(&p.metadata.name) {
        r.at("metadata.name", problem);
    }
    if let Some(Err(problem)) = p.metadata.principal.as_deref().map(parse_principal) {
        r.at("metadata.principal", problem);
    }

    let spec = &p.spec;
    let source = &spec.source;
    match (&source.topic, &source.connector) {
        (Some(_), Some(_)) => r.at_key(
            "spec.source.connector",
            "a source is either a `topic` or a `connector`, not both",
        ),
        (None, None) => r.at("spec.source", "a source needs a `topic` or a `connector`"),
        (Some(topic), None) => check_topic(r, "spec.source.topic", topic),
        (None, Some(_)) => {
            if source.start_from.is_some() {
                r.at_key(
                    "spec.source.startFrom",
                    "`startFrom` applies to a topic source, not to a connector",
                );
            }
        }
    }
    if let Some(c) = &source.connector {
        check_plugin_ref_shape(r, "spec.source.connector", c);
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, step) in spec.steps.iter().enumerate() {
        let path = item("spec.steps", i);
        let name_path = child(&path, "name");
        if step.name.is_empty() {
            r.at(&name_path, "a step needs a name");
        } else if let Some(first) = seen.get(step.name.as_str()) {
            r.at(
                &name_path,
                format!(
                    "step name {:?} is already used by spec.steps[{first}]",
                    step.name
                ),
            );
        } else if step.name == crate::runtime::SOURCE_PLUGIN {
            // The source connector's plugin metrics carry `step="source"`
            // on /metrics: a step of that name would mix its counters in.
            r.at(
                &name_path,
                format!(
                    "step name {:?} is reserved for the source connector's metrics",
                    step.name
                ),
            );
        } else if let Some(c) = step
            .name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            // A step's state lives in the topic `pipeline.<name>.<step>.changelog`.
            r.at(
                &name_path,
                format!(
                    "{:?} contains {c:?}; step names use only a-z, A-Z, 0-9, '.', '_' and '-'",
                    step.name
                ),
            );
        }
        seen.entry(&step.name).or_insert(i);
        check_plugin_name(r, &child(&path, "plugin"), &step.plugin);
        check_config(r, &child(&path, "config"), &step.config);
        if let Some(caps) = &step.capabilities {
            check_capabilities(r, &child(&path, "capabilities"), caps);
        }
    }

    if spec.sinks.is_empty() {
        r.at("spec.sinks", "a pipeline needs at least one sink");
    }
    for (i, sink) in spec.sinks.iter().enumerate() {
        check_sink(r, &item("spec.sinks", i), sink);
    }
    if let Some(dl) = &spec.dead_letter {
        check_topic(r, "spec.deadLetter.topic", &dl.topic);
    }
    if spec.retry.attempts == 0 {
        r.at(
            "spec.retry.attempts",
            "must be at least 1 (the first try counts)",
        );
    }
    if spec.parallelism == 0 {
        r.at("spec.parallelism", "must be at least 1");
    }

    // A pipeline writing to the topic it reads would feed on its own output.
    if let Some(source_topic) = &source.topic {
        for (i, sink) in spec.sinks.iter().enumerate() {
            if sink.topic.as_ref() == Some(source_topic) {
                r.at(
                    &child(&item("spec.sinks", i), "topic"),
                    format!("{source_topic:?} is also the source topic: records would cycle"),
                );
            }
        }
        if spec.dead_letter.as_ref().map(|d| &d.topic) == Some(source_topic) {
            r.at(
                "spec.deadLetter.topic",
                format!("{source_topic:?} is also the source topic: failed records would cycle"),
            );
        }
    }
}

fn check_sink(r: &mut Report<'_>, path: &str, sink: &Sink) {
    match (&sink.topic, &sink.connector) {
        (Some(_), Some(_)) => r.at_key(
            &child(path, "connector"),
            "a sink is either a `topic` or a `connector`, not both",
        ),
        (None, None) => r.at(path, "a sink needs a `topic` or a `connector`"),
        (Some(topic), None) => check_topic(r, &child(path, "topic"), topic),
        (None, Some(_)) => {
            let topic_only = [
                ("create", sink.create.is_some()),
                ("partitioner", sink.partitioner.is_some()),
                ("serializer", sink.serializer.is_some()),
            ];
            for (field, present) in topic_only {
                if present {
                    r.at_key(
                        &child(path, field),
                        format!("`{field}` applies to a topic sink, not to a connector"),
                    );
                }
            }
        }
    }
    if let Some(create) = &sink.create
        && create.partitions == Some(0)
    {
        r.at(
            &child(path, "create.partitions"),
            "a topic needs at least 1 partition",
        );
    }
    if let Some(when) = &sink.when {
        if when.trim().is_empty() {
            r.at(
                &child(path, "when"),
                "an empty condition; leave `when` out to send every record",
            );
        } else if let Err(e) = fjord_expr::Condition::parse(when) {
            r.at(&child(path, "when"), format!("not a condition: {e}"));
        }
    }
    for (field, plugin) in [
        ("connector", &sink.connector),
        ("partitioner", &sink.partitioner),
        ("serializer", &sink.serializer),
    ] {
        if let Some(plugin) = plugin {
            check_plugin_ref_shape(r, &child(path, field), plugin);
        }
    }
}

fn check_topic(r: &mut Report<'_>, path: &str, topic: &str) {
    if let Some(problem) = topic_name_problem(topic) {
        r.at(path, problem);
    }
}

fn check_plugin_name(r: &mut Report<'_>, path: &str, plugin: &str) {
    if plugin.trim().is_empty() {
        r.at(path, "names no plugin");
    }
}

fn check_plugin_ref_shape(r: &mut Report<'_>, path: &str, plugin: &PluginRef) {
    check_plugin_name(r, &child(path, "plugin"), &plugin.plugin);
    check_config(r, &child(path, "config"), &plugin.config);
    if let Some(caps) = &plugin.capabilities {
        check_capabilities(r, &child(path, "capabilities"), caps);
    }
}

fn check_config(r: &mut Report<'_>, path: &str, config: &OrderedMap<ConfigValue>) {
    for (key, value) in config.iter() {
        if value.is_null() {
            r.at(
                &child(path, key),
                "no value; write \"\" for an empty string, or leave the key out",
            );
        }
    }
}

fn check_capabilities(r: &mut Report<'_>, path: &str, caps: &Capabilities) {
    for (i, dir) in caps.dirs.iter().enumerate() {
        let dir_path = item(&child(path, "dirs"), i);
        if dir.host.is_empty() {
            r.at(&child(&dir_path, "host"), "an empty host directory");
        }
        if !dir.guest.starts_with('/') {
            r.at(
                &child(&dir_path, "guest"),
                format!(
                    "{:?} is not absolute: the plugin sees directories at absolute paths such as /data",
                    dir.guest
                ),
            );
        }
    }
    for (i, target) in caps.network.iter().enumerate() {
        let ok = target
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            r.at(
                &item(&child(path, "network"), i),
                format!("{target:?} is not `host:port`"),
            );
        }
    }
}

/// Checks a set of pipelines together: no two with the same name, no
/// topic that two create with different partition counts, and no cycle of
/// topics through them (one's sink feeding another's source and so on
/// back to the first).
pub fn validate_set(pipelines: &[Pipeline]) -> Result<(), ManifestErrors> {
    let mut errors = Vec::new();

    let mut names: HashMap<&str, &Pipeline> = HashMap::new();
    for p in pipelines {
        if let Some(first) = names.insert(&p.metadata.name, p) {
            errors.push(located(
                p,
                "metadata.name",
                format!(
                    "pipeline {:?} is also defined in {}",
                    p.metadata.name, first.origin.file
                ),
                false,
            ));
        }
    }

    // A topic created by two pipelines with different partition counts
    // would get whichever started first: say so instead.
    let mut created: HashMap<&str, (&Pipeline, u32)> = HashMap::new();
    for p in pipelines {
        for (i, sink) in p.spec.sinks.iter().enumerate() {
            let (Some(topic), Some(partitions)) = (
                sink.topic.as_deref(),
                sink.create.as_ref().and_then(|c| c.partitions),
            ) else {
                continue;
            };
            match created.get(topic) {
                Some((first, n)) if *n != partitions => errors.push(located(
                    p,
                    &child(&item("spec.sinks", i), "create.partitions"),
                    format!(
                        "{partitions} partitions for topic {topic:?}, but pipeline {:?} ({}) \
                         creates it with {n}",
                        first.metadata.name, first.origin.file
                    ),
                    false,
                )),
                Some(_) => {}
                None => {
                    created.insert(topic, (p, partitions));
                }
            }
        }
    }

    // Edges: pipeline i → pipeline j when i writes (sink or dead letter) to
    // the topic j reads.
    let readers: Vec<(usize, &str)> = pipelines
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.spec.source.topic.as_deref().map(|t| (i, t)))
        .collect();
    let outputs = |p: &Pipeline| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = p
            .spec
            .sinks
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.topic
                    .clone()
                    .map(|t| (child(&item("spec.sinks", i), "topic"), t))
            })
            .collect();
        if let Some(dl) = &p.spec.dead_letter {
            out.push(("spec.deadLetter.topic".into(), dl.topic.clone()));
        }
        out
    };
    // (from, to) → the path in `from` of the output feeding `to`.
    let mut edges: Vec<Vec<(usize, String, String)>> = vec![Vec::new(); pipelines.len()];
    for (i, p) in pipelines.iter().enumerate() {
        for (path, topic) in outputs(p) {
            for &(j, read) in &readers {
                if read == topic && i != j {
                    edges[i].push((j, path.clone(), topic.clone()));
                }
            }
        }
    }

    // Each cycle is reported once, at the output of its first pipeline
    // in manifest order.
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for start in 0..pipelines.len() {
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        let mut on_path: Vec<usize> = vec![start];
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let Some(to) = edges[node].get(top.1).map(|e| e.0) else {
                stack.pop();
                on_path.pop();
                continue;
            };
            top.1 += 1;
            if to == start {
                let mut key = on_path.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    errors.push(cycle_error(pipelines, &edges, &stack));
                }
            } else if to > start && !on_path.contains(&to) {
                stack.push((to, 0));
                on_path.push(to);
            }
        }
    }

    ManifestErrors(errors).into_result()
}

/// The cycle the DFS `stack` closes: each entry's last taken edge leads to
/// the next entry, the top one's back to the first.
fn cycle_error(
    pipelines: &[Pipeline],
    edges: &[Vec<(usize, String, String)>],
    stack: &[(usize, usize)],
) -> ManifestError {
    let mut text = String::new();
    let mut first_path = "";
    for (k, &(node, next)) in stack.iter().enumerate() {
        let Some((_, path, topic)) = next.checked_sub(1).and_then(|e| edges[node].get(e)) else {
            continue;
        };
        if k == 0 {
            first_path = path;
        }
        text.push_str(&format!("{} → {topic:?} → ", pipelines[node].metadata.name));
    }
    let first = &pipelines[stack[0].0];
    text.push_str(&first.metadata.name);
    located(
        first,
        first_path,
        format!("topics form a cycle: {text}"),
        false,
    )
}

/// Checks `pipeline`'s `create: {partitions: N}` against the topics that
/// exist (`partitions_of` gives a topic's partition count, `None` when it
/// does not exist): `create` does nothing for an existing topic, so a
/// different count there is a promise the manifest cannot keep.
pub fn check_existing_topics(
    pipeline: &Pipeline,
    partitions_of: &dyn Fn(&str) -> Option<i32>,
) -> Result<(), ManifestErrors> {
    let mut report = Report::new(pipeline);
    for (i, sink) in pipeline.spec.sinks.iter().enumerate() {
        let (Some(topic), Some(wanted)) = (
            sink.topic.as_deref(),
            sink.create.as_ref().and_then(|c| c.partitions),
        ) else {
            continue;
        };
        if let Some(existing) = partitions_of(topic)
            && i64::from(existing) != i64::from(wanted)
        {
            report.at(
                &child(&item("spec.sinks", i), "create.partitions"),
                format!(
                    "topic {topic:?} exists with {existing} partition{}; `create` \
                         does not change it (ask for {existing}, or leave `partitions` out)",
                    if existing == 1 { "" } else { "s" }
                ),
            );
        }
    }
    ManifestErrors(report.errors).into_result()
}
