//! The manifest as typed data. Field names are camelCase in YAML; unknown
//! fields are refused so a typo is an error rather than a silent default.

use crate::positions::Positions;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A pipeline manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    /// Must be `fjord.dev/v1`.
    pub api_version: String,
    /// Must be `Pipeline`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
    /// Where the manifest came from, so that checks made after parsing
    /// (plugins, cycles across manifests) can still point at a line.
    #[serde(skip)]
    pub(crate) origin: Origin,
}

/// The file a manifest was read from and where each of its fields is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub file: String,
    pub positions: Positions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// `[a-z0-9][a-z0-9.-]*`, at most 200 characters; also names the
    /// consumer group `pipeline.<name>`.
    pub name: String,
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub labels: OrderedMap<String>,
    /// Who the pipeline runs as, in Kafka's form (`User:etl`): the
    /// principal whose ACLs its reads, writes, commits and topic creation
    /// pass. Unset: whoever deployed it (see `runtime::access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    pub source: Source,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub sinks: Vec<Sink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default = "one")]
    pub parallelism: u32,
    #[serde(default)]
    pub retry: Retry,
}

/// How often a record a step fails is tried again before it goes to the
/// dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Tries in all, the first included (at least 1).
    #[serde(default = "three")]
    pub attempts: u32,
    /// The wait before the second try; it doubles for each next one.
    #[serde(default = "hundred")]
    pub backoff_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: three(),
            backoff_ms: hundred(),
        }
    }
}

fn three() -> u32 {
    3
}

fn hundred() -> u64 {
    100
}

fn one() -> u32 {
    1
}

/// Where records come from: exactly one of `topic` and `connector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Only for a topic; `None` means [`StartFrom::Committed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<StartFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<PluginRef>,
}

impl Source {
    pub fn start_from(&self) -> StartFrom {
        self.start_from.unwrap_or_default()
    }
}

/// Where a topic source starts when the pipeline's group has no committed
/// offset yet (Kafka's `auto.offset.reset`). Once it has one, a pipeline
/// always continues from it; `fjord pipeline reset` moves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    Earliest,
    Latest,
    /// The offset committed by the group `pipeline.<name>`; the earliest
    /// when there is none.
    #[default]
    Committed,
}

/// A plugin with its configuration: a source or sink connector, a
/// partitioner, a serializer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    /// A built-in name, or a path to a `.wasm` component or native library.
    pub plugin: String,
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub config: OrderedMap<ConfigValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// One processor in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Step {
    /// Unique within the pipeline.
    pub name: String,
    pub plugin: String,
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub config: OrderedMap<ConfigValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

/// What a WebAssembly plugin may reach; nothing unless listed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// `host:port` destinations for outbound TCP.
    #[serde(default)]
    pub network: Vec<String>,
    #[serde(default)]
    pub env: OrderedMap<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    /// Read-only unless said otherwise: writing is the rarer need.
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

/// Where records go: exactly one of `topic` and `connector`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Create the topic when it does not exist (topic sinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<CreateTopic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioner: Option<PluginRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serializer: Option<PluginRef>,
    /// A condition in the `filter` plugin's expression language; only
    /// records matching it go to this sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<PluginRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTopic {
    /// `None`: the broker's default partition count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Topic configs for a topic created here, such as
    /// `cleanup.policy: compact`.
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    pub configs: OrderedMap<ConfigValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    pub topic: String,
}

/// Delivery guarantee. At least once: offsets are committed after the
/// sinks acknowledged. Exactly once: each source partition's sink records,
/// state changelog records and offsets are written in one broker
/// transaction (sink connectors stay at least once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    #[default]
    #[serde(rename = "at-least-once")]
    AtLeastOnce,
    #[serde(rename = "exactly-once")]
    ExactlyOnce,
}

/// A YAML mapping with string keys, kept in manifest order (plugin config is
/// ordered, and a repeated key is more likely a mistake than an override).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                read_ordered_map(map)
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

fn read_ordered_map<'de, V: Deserialize<'de>, A: MapAccess<'de>>(
    mut map: A,
) -> Result<OrderedMap<V>, A::Error> {
    let mut entries: Vec<(String, V)> = Vec::new();
    while let Some(key) = map.next_key::<String>()? {
        if entries.iter().any(|(k, _)| *k == key) {
            return Err(de::Error::custom(format!("duplicate key `{key}`")));
        }
        let value = map.next_value()?;
        entries.push((key, value));
    }
    Ok(OrderedMap(entries))
}

/// A plugin config value as the manifest wrote it. Its own type rather than
/// `serde_json::Value` because nested mappings keep the manifest's order
/// (a plugin may read one as an ordered list of fields), and a repeated
/// key is refused at every depth.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// `key:`, `key: ~`, `key: null`.
    Null,
    Bool(bool),
    Number(serde_json::Number),
    /// Also NaN and the infinities, as `.nan`, `.inf`, `-.inf`: JSON has no
    /// number for them.
    String(String),
    Sequence(Vec<ConfigValue>),
    Mapping(OrderedMap<ConfigValue>),
}

impl ConfigValue {
    pub fn is_null(&self) -> bool {
        matches!(self, ConfigValue::Null)
    }
}

impl Serialize for ConfigValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ConfigValue::Null => serializer.serialize_unit(),
            ConfigValue::Bool(b) => serializer.serialize_bool(*b),
            ConfigValue::Number(n) => n.serialize(serializer),
            ConfigValue::String(s) => serializer.serialize_str(s),
            ConfigValue::Sequence(items) => serializer.collect_seq(items),
            ConfigValue::Mapping(m) => m.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;

        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = ConfigValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ConfigValue, D::Error> {
                ConfigValue::deserialize(d)
            }

            fn visit_bool<E: de::Error>(self, b: bool) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Bool(b))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n.into()))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Number(n.into()))
            }

            fn visit_f64<E: de::Error>(self, n: f64) -> Result<ConfigValue, E> {
                Ok(serde_json::Number::from_f64(n).map_or_else(
                    || ConfigValue::String(non_finite_text(n).to_owned()),
                    ConfigValue::Number,
                ))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<ConfigValue, E> {
                Ok(ConfigValue::String(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<ConfigValue, E> {
                Ok(ConfigValue::String(s))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConfigValue, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(ConfigValue::Sequence(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ConfigValue, A::Error> {
                read_ordered_map(map).map(ConfigValue::Mapping)
            }
        }

        deserializer.deserialize_any(ValueVisitor)
    }
}

/// YAML's spelling of a float JSON has no number for.
fn non_finite_text(n: f64) -> &'static str {
    if n.is_nan() {
        ".nan"
    } else if n > 0.0 {
        ".inf"
    } else {
        "-.inf"
    }
}

/// A config value as the plugin sees it: plugins get strings, so numbers and
/// bools become their text and nested values compact JSON.
pub(crate) fn config_text(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Null => String::new(),
        ConfigValue::Bool(b) => b.to_string(),
        ConfigValue::Number(n) => n.to_string(),
        ConfigValue::String(s) => s.clone(),
        ConfigValue::Sequence(_) | ConfigValue::Mapping(_) => {
            // Writing JSON into a String cannot fail: every key is a string.
            serde_json::to_string(value).unwrap_or_default()
        }
    }
}

pub(crate) fn plugin_config(config: &OrderedMap<ConfigValue>) -> fjord_sdk::Config {
    fjord_sdk::Config::from_pairs(config.iter().map(|(k, v)| (k, config_text(v))))
}

impl Step {
    /// The step's `config` as the plugin receives it.
    pub fn plugin_config(&self) -> fjord_sdk::Config {
        plugin_config(&self.config)
    }

    /// The capabilities granted to the step's plugin (none when absent).
    pub fn plugin_capabilities(&self) -> fjord_plugin_host::Capabilities {
        self.capabilities
            .as_ref()
            .map(Capabilities::to_host)
            .unwrap_or_default()
    }
}

impl PluginRef {
    /// The `config` as the plugin receives it.
    pub fn plugin_config(&self) -> fjord_sdk::Config {
        plugin_config(&self.config)
    }

    pub fn plugin_capabilities(&self) -> fjord_plugin_host::Capabilities {
        self.capabilities
            .as_ref()
            .map(Capabilities::to_host)
            .unwrap_or_default()
    }
}

impl Capabilities {
    pub fn to_host(&self) -> fjord_plugin_host::Capabilities {
        fjord_plugin_host::Capabilities {
            dirs: self
                .dirs
                .iter()
                .map(|d| fjord_plugin_host::DirGrant {
                    host: d.host.clone().into(),
                    guest: d.guest.clone(),
                    read_only: d.read_only,
                })
                .collect(),
            network: self.network.clone(),
            env: self.env.0.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(yaml: &str) -> ConfigValue {
        fjord_broker::yaml::from_str(yaml).unwrap_or(ConfigValue::Null)
    }

    #[test]
    fn config_values_become_text_and_nested_ones_compact_json() {
        assert_eq!(config_text(&value("plain")), "plain");
        assert_eq!(config_text(&value("42")), "42");
        assert_eq!(config_text(&value("-1.5")), "-1.5");
        assert_eq!(config_text(&value("true")), "true");
        assert_eq!(config_text(&value("'007'")), "007");
        assert_eq!(
            config_text(&value("{a: 1, b: [x, true]}")),
            r#"{"a":1,"b":["x",true]}"#
        );
        assert_eq!(config_text(&value("{3: null}")), r#"{"3":null}"#);
        // As serde_yaml read them: YAML 1.2 booleans only, numbers with a
        // leading zero or underscores kept as written, NaN as YAML spells it.
        assert_eq!(config_text(&value("yes")), "yes");
        assert_eq!(config_text(&value("0644")), "0644");
        assert_eq!(config_text(&value("1_000")), "1_000");
        assert_eq!(config_text(&value("0x1f")), "31");
        assert_eq!(config_text(&value(".nan")), ".nan");
        assert_eq!(config_text(&value("[1.0, -.inf]")), r#"[1.0,"-.inf"]"#);
        // Nested mappings keep the manifest's order.
        assert_eq!(config_text(&value("{b: 1, a: 2}")), r#"{"b":1,"a":2}"#);
    }

    #[test]
    fn repeated_keys_are_refused() {
        let r: Result<OrderedMap<String>, _> = fjord_broker::yaml::from_str("a: 1\nb: 2\na: 3\n");
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("duplicate key `a`"), "{e}");
    }
}
