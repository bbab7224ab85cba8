//! `fjord-pipeline`: pipeline manifests — the YAML model, its validation,
//! and the runtime that runs them.
//!
//! A pipeline manifest says where records come from (a topic or a source
//! connector), which processors they pass through and where they go (topics
//! or sink connectors). This crate reads one into a [`Pipeline`] and checks
//! it before anything runs; every problem comes back at once, each naming
//! the file, the line and column and the field:
//!
//! ```text
//! web.yaml:14:15: spec.steps[1].plugin: no built-in plugin called "regx-parse" (built-in processors: filter, regex-parse, redact, parse)
//! ```
//!
//! ```
//! use fjord_pipeline::{Pipeline, PluginResolver};
//! use fjord_sdk::{PluginInfo, PluginKind};
//!
//! // Validation asks a resolver what each plugin reference is; the real one
//! // is `HostResolver` over a `fjord_plugin_host::PluginHost`.
//! struct AnyPlugin;
//! impl PluginResolver for AnyPlugin {
//!     fn resolve(&self, reference: &str, kind: PluginKind) -> Result<PluginInfo, String> {
//!         Ok(PluginInfo::new(reference, "1").with_kind(kind))
//!     }
//! }
//!
//! let yaml = "\
//! apiVersion: fjord.dev/v1
//! kind: Pipeline
//! metadata: {name: copy}
//! spec:
//!   source: {topic: in}
//!   sinks: [{topic: in}]
//! ";
//! let errors = Pipeline::load("copy.yaml", yaml, &AnyPlugin).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     r#"copy.yaml:6:19: spec.sinks[0].topic: "in" is also the source topic: records would cycle"#
//! );
//! ```
//!
//! The model ([`Pipeline`] and the types under it) is also what the
//! [`runtime`] runs: inside the broker, next to the data, with deployments,
//! status and logs kept in internal topics (see docs/pipelines.md).
//!
//! Not for: loading or calling plugins (`fjord-plugin-host` does), or the
//! Kafka protocol (`fjord-broker`); the runtime reaches the broker's logs
//! and group offsets through [`fjord_broker::LocalBroker`].

mod error;
mod model;
mod positions;
mod resolve;
pub mod runtime;
mod validate;

pub use error::{ManifestError, ManifestErrors};
pub use model::{
    Capabilities, ConfigValue, CreateTopic, DeadLetter, Delivery, DirGrant, Metadata, OrderedMap,
    Pipeline, PluginRef, Retry, Sink, Source, Spec, StartFrom, Step,
};
pub use positions::{Location, Positions};
pub use resolve::{HostResolver, PluginResolver, anchor_plugin_paths};
pub use validate::{API_VERSION, KIND, check_existing_topics, topic_name_problem, validate_set};

use model::Origin;
use validate::Report;

impl Pipeline {
    /// Parses a manifest and makes every check that needs no plugin: YAML
    /// syntax, unknown fields, types, `apiVersion`/`kind`, names, topics,
    /// one of `topic`/`connector`, unique step names, at least one sink,
    /// the pipeline reading its own output.
    ///
    /// `file_name` is only used in messages.
    pub fn from_yaml(file_name: &str, text: &str) -> Result<Pipeline, ManifestErrors> {
        let mut pipeline = parse(file_name, text)?;
        pipeline.origin = Origin {
            file: file_name.to_owned(),
            positions: Positions::index(text),
        };
        let mut report = Report::new(&pipeline);
        validate::check_structure(&pipeline, &mut report);
        ManifestErrors(report.errors).into_result()?;
        Ok(pipeline)
    }

    /// [`Pipeline::from_yaml`] and [`Pipeline::check_plugins`] together,
    /// reporting the errors of both; while there are any, no plugin file is
    /// loaded (loading a native library runs its code).
    pub fn load(
        file_name: &str,
        text: &str,
        resolver: &dyn PluginResolver,
    ) -> Result<Pipeline, ManifestErrors> {
        let mut pipeline = parse(file_name, text)?;
        pipeline.origin = Origin {
            file: file_name.to_owned(),
            positions: Positions::index(text),
        };
        let mut report = Report::new(&pipeline);
        validate::check_structure(&pipeline, &mut report);
        resolve::check_plugins(&pipeline, resolver, &mut report);
        ManifestErrors(report.errors).into_result()?;
        Ok(pipeline)
    }

    /// Checks every plugin the manifest names: what it would reach on the
    /// host must be inside the operator's policy
    /// ([`PluginResolver::permit`], decided before anything is loaded),
    /// and it must exist, be of the kind its place needs (a step a
    /// processor, a source connector a source, …) and get its required
    /// config keys.
    pub fn check_plugins(&self, resolver: &dyn PluginResolver) -> Result<(), ManifestErrors> {
        let mut report = Report::new(self);
        resolve::check_plugins(self, resolver, &mut report);
        ManifestErrors(report.errors).into_result()
    }

    /// The file the manifest was read from.
    pub fn file_name(&self) -> &str {
        &self.origin.file
    }

    /// Where the field at `path` (`spec.steps[0].plugin`) is in the file.
    pub fn location_of(&self, path: &str) -> Option<Location> {
        self.origin.positions.value(path)
    }

    /// The consumer group committing the pipeline's progress.
    pub fn group_id(&self) -> String {
        group_of(&self.metadata.name)
    }

    /// The principal `metadata.principal` names, if it names one (a
    /// manifest that passed validation names a valid one).
    pub fn named_principal(&self) -> Option<fjord_broker::Principal> {
        self.metadata
            .principal
            .as_deref()
            .and_then(|p| validate::parse_principal(p).ok())
    }
}

/// The consumer group of pipeline `name`, `pipeline.<name>`: where it
/// commits its progress, and the resource whose ACLs say who may change
/// it (docs/security.md, "Pipelines and ACLs").
pub fn group_of(name: &str) -> String {
    format!("pipeline.{name}")
}

/// Deserializes a manifest with Fjord's YAML reader ([`fjord_broker::yaml`]:
/// its budget bounds alias bombs and deep nesting).
fn parse(file_name: &str, text: &str) -> Result<Pipeline, ManifestErrors> {
    fjord_broker::yaml::from_str(text)
        .map_err(|e| ManifestErrors(vec![error::from_yaml(file_name, text, e)]))
}
