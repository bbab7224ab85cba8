//! Which plugins a manifest names, whether the operator's policy lets
//! them reach what they would, and what they are: the checks that need a
//! [`PluginResolver`] (in the broker and the CLI, [`HostResolver`] over the
//! plugin host).

use crate::model::{Capabilities, ConfigValue, OrderedMap, Pipeline};
use crate::positions::{child, item};
use crate::validate::Report;
use fjord_plugin_host::{ErrorKind, PluginHost};
use fjord_sdk::{PluginInfo, PluginKind};

/// Finds a plugin by reference and says what it is. Validation goes through
/// this so it can be tested without loading plugins.
pub trait PluginResolver {
    /// The plugin `reference` names, which must be of `kind`; the error is a
    /// message for the manifest's author.
    fn resolve(&self, reference: &str, kind: PluginKind) -> Result<PluginInfo, String>;

    /// Whether the operator allows what the plugin would reach with this
    /// `config` and these `capabilities`, decided without loading it. The
    /// error is the field it concerns (`config.path`, `plugin`, …) and
    /// the message. The default allows everything.
    fn permit(
        &self,
        reference: &str,
        kind: PluginKind,
        config: &fjord_sdk::Config,
        capabilities: &fjord_plugin_host::Capabilities,
    ) -> Result<(), (String, String)> {
        let _ = (reference, kind, config, capabilities);
        Ok(())
    }
}

/// Resolves references with a [`PluginHost`]: built-ins by name, `.wasm`
/// components and native libraries by path (loading them), and permits
/// them by the host's policy ([`PluginHost::check`]).
#[derive(Debug)]
pub struct HostResolver<'a> {
    host: &'a PluginHost,
}

impl<'a> HostResolver<'a> {
    pub fn new(host: &'a PluginHost) -> Self {
        HostResolver { host }
    }
}

impl PluginResolver for HostResolver<'_> {
    fn resolve(&self, reference: &str, kind: PluginKind) -> Result<PluginInfo, String> {
        match self.host.load_kind(reference, kind) {
            Ok(plugin) => Ok(plugin.info().clone()),
            Err(e) => Err(match e.kind {
                // The host looks built-ins up by name and kind together,
                // so a built-in of another kind reads as "not found".
                ErrorKind::NotFound(_) if !reference.contains('/') && !reference.contains('.') => {
                    builtin_not_found(self.host, reference, kind)
                }
                ErrorKind::NotFound(m) | ErrorKind::NotAPlugin(m) => m,
                ErrorKind::WrongKind { expected, found } => {
                    format!("{reference:?} is a {found}, not a {expected}")
                }
                _ => e.to_string(),
            }),
        }
    }

    fn permit(
        &self,
        reference: &str,
        kind: PluginKind,
        config: &fjord_sdk::Config,
        capabilities: &fjord_plugin_host::Capabilities,
    ) -> Result<(), (String, String)> {
        self.host
            .check(reference, kind, config, capabilities)
            .map_err(|e| match e.kind {
                ErrorKind::NotAllowed { field, reason } => (field, reason),
                ErrorKind::NotFound(m) | ErrorKind::NotAPlugin(m) => ("plugin".into(), m),
                other => ("plugin".into(), other.to_string()),
            })
    }
}

fn builtin_not_found(host: &PluginHost, reference: &str, kind: PluginKind) -> String {
    let infos: Vec<PluginInfo> = host.builtins().iter().map(|b| b.info()).collect();
    let other: Vec<String> = infos
        .iter()
        .filter(|i| i.name == reference || format!("{}-{}", i.name, i.kind) == reference)
        .map(|i| i.kind.to_string())
        .collect();
    if !other.is_empty() {
        return format!("{reference:?} is a {}, not a {kind}", other.join(" and a "));
    }
    let names: Vec<&str> = infos
        .iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.name.as_str())
        .collect();
    if names.is_empty() {
        format!("no built-in plugin called {reference:?} (there is no built-in {kind})")
    } else {
        format!(
            "no built-in plugin called {reference:?} (built-in {kind}s: {})",
            names.join(", ")
        )
    }
}

/// A plugin the manifest names: where, the reference, its config and
/// grants, and the kind its place needs.
struct Wanted<'p> {
    path: String,
    reference: &'p str,
    config: &'p OrderedMap<ConfigValue>,
    capabilities: Option<&'p Capabilities>,
    kind: PluginKind,
}

/// Checks every plugin the pipeline names: first what it would reach on
/// the host (the operator's policy, decided without loading anything),
/// then, if the manifest passed every check so far, resolves it and checks
/// its kind and required config keys. A manifest with errors loads no
/// plugin file: loading a native library runs its code.
pub(crate) fn check_plugins(p: &Pipeline, resolver: &dyn PluginResolver, r: &mut Report<'_>) {
    let spec = &p.spec;
    let mut wanted: Vec<Wanted<'_>> = Vec::new();
    if let Some(c) = &spec.source.connector {
        wanted.push(Wanted {
            path: "spec.source.connector".into(),
            reference: &c.plugin,
            config: &c.config,
            capabilities: c.capabilities.as_ref(),
            kind: PluginKind::Source,
        });
    }
    for (i, step) in spec.steps.iter().enumerate() {
        wanted.push(Wanted {
            path: item("spec.steps", i),
            reference: &step.plugin,
            config: &step.config,
            capabilities: step.capabilities.as_ref(),
            kind: PluginKind::Processor,
        });
    }
    for (i, sink) in spec.sinks.iter().enumerate() {
        let path = item("spec.sinks", i);
        for (field, plugin, kind) in [
            ("connector", &sink.connector, PluginKind::Sink),
            ("partitioner", &sink.partitioner, PluginKind::Partitioner),
            ("serializer", &sink.serializer, PluginKind::Serializer),
        ] {
            if let Some(plugin) = plugin {
                wanted.push(Wanted {
                    path: child(&path, field),
                    reference: &plugin.plugin,
                    config: &plugin.config,
                    capabilities: plugin.capabilities.as_ref(),
                    kind,
                });
            }
        }
    }
    wanted.retain(|w| !w.reference.trim().is_empty());
    for w in &wanted {
        let capabilities = w
            .capabilities
            .map(Capabilities::to_host)
            .unwrap_or_default();
        let config = crate::model::plugin_config(w.config);
        if let Err((field, message)) = resolver.permit(w.reference, w.kind, &config, &capabilities)
        {
            r.at(&child(&w.path, &field), message);
        }
    }
    let load_files = r.errors.is_empty();
    for w in wanted {
        if !load_files && fjord_plugin_host::is_file_reference(w.reference) {
            continue;
        }
        match resolver.resolve(w.reference, w.kind) {
            Err(message) => r.at(&child(&w.path, "plugin"), message),
            Ok(info) => {
                for key in info.config_keys.iter().filter(|k| k.required) {
                    if w.config.get(&key.name).is_none() {
                        r.at(
                            &child(&w.path, "config"),
                            format!(
                                "plugin {:?} needs config key `{}` ({})",
                                info.name, key.name, key.description
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// `text` (a manifest) with each relative plugin path (`./x.wasm`,
/// `plugins/libx.so`) made absolute against `base`, the directory of the
/// manifest's file, so that it names the same file whichever working
/// directory the CLI or the broker has. Built-in names, absolute paths and
/// a manifest that does not parse are left as they are (its errors come
/// from the checks that follow). Only the path's own text changes: lines,
/// comments and layout stay, so errors still point at the file's lines.
pub fn anchor_plugin_paths(text: &str, base: &std::path::Path) -> String {
    let Ok(pipeline) = crate::Pipeline::from_yaml("", text) else {
        return text.to_owned();
    };
    let spec = &pipeline.spec;
    let mut references: Vec<(String, &str)> = Vec::new();
    if let Some(c) = &spec.source.connector {
        references.push(("spec.source.connector.plugin".into(), &c.plugin));
    }
    for (i, step) in spec.steps.iter().enumerate() {
        references.push((child(&item("spec.steps", i), "plugin"), &step.plugin));
    }
    for (i, sink) in spec.sinks.iter().enumerate() {
        for (field, plugin) in [
            ("connector", &sink.connector),
            ("partitioner", &sink.partitioner),
            ("serializer", &sink.serializer),
        ] {
            if let Some(plugin) = plugin {
                let path = child(&child(&item("spec.sinks", i), field), "plugin");
                references.push((path, &plugin.plugin));
            }
        }
    }
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    // Right to left within a line, so earlier columns stay valid.
    let mut edits: Vec<(usize, usize, &str, String)> = references
        .into_iter()
        .filter(|(_, r)| {
            fjord_plugin_host::is_file_reference(r) && std::path::Path::new(r).is_relative()
        })
        .filter_map(|(path, r)| {
            let at = pipeline.location_of(&path)?;
            Some((at.line, at.column, r, absolute(base, r)))
        })
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    for (line, column, reference, absolute) in edits {
        let Some(text) = lines.get_mut(line - 1) else {
            continue;
        };
        let Some(start) = text.char_indices().nth(column - 1).map(|(i, _)| i) else {
            continue;
        };
        // As written: plain, or quoted without escapes; anything else is
        // left alone rather than rewritten wrongly.
        let rest = &text[start..];
        let written = [
            reference.to_owned(),
            format!("'{reference}'"),
            format!("\"{reference}\""),
        ]
        .into_iter()
        .find(|w| rest.starts_with(w.as_str()));
        if let Some(written) = written {
            // A JSON string is a YAML double-quoted scalar.
            let quoted = serde_json::Value::String(absolute).to_string();
            text.replace_range(start..start + written.len(), &quoted);
        }
    }
    lines.join("\n")
}

/// `reference` under `base`, without `.` components.
fn absolute(base: &std::path::Path, reference: &str) -> String {
    let joined: std::path::PathBuf = base
        .join(reference)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    joined.display().to_string()
}

#[cfg(test)]
mod anchor_tests {
    use super::anchor_plugin_paths;
    use std::path::Path;

    #[test]
    fn relative_plugin_paths_become_absolute_and_the_rest_stays() {
        let text = "\
apiVersion: fjord.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  source: {topic: in}
  steps:
    - {name: a, plugin: ./plugins/a.wasm}   # a comment
    - name: b
      plugin: 'lib/libb.so'
    - {name: c, plugin: filter, config: {expr: 'x > 1'}}
    - {name: d, plugin: /opt/d.wasm}
  sinks:
    - topic: out
      serializer: {plugin: ../s.wasm}
";
        let anchored = anchor_plugin_paths(text, Path::new("/srv/manifests"));
        assert_eq!(
            anchored,
            text.replace("./plugins/a.wasm", "\"/srv/manifests/plugins/a.wasm\"")
                .replace("'lib/libb.so'", "\"/srv/manifests/lib/libb.so\"")
                .replace("../s.wasm", "\"/srv/manifests/../s.wasm\"")
        );
    }

    #[test]
    fn a_manifest_that_does_not_parse_is_left_alone() {
        let text = "spec: [unclosed\n";
        assert_eq!(anchor_plugin_paths(text, Path::new("/srv")), text);
    }
}
