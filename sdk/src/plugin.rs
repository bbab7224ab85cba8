//! What every plugin has, whatever its kind: a description, a configuration,
//! and an error type.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The five kinds of plugin Fjord hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Processor,
    Source,
    Sink,
    Partitioner,
    Serializer,
}

impl PluginKind {
    pub const ALL: [PluginKind; 5] = [
        Self::Processor,
        Self::Source,
        Self::Sink,
        Self::Partitioner,
        Self::Serializer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor",
            Self::Source => "source",
            Self::Sink => "sink",
            Self::Partitioner => "partitioner",
            Self::Serializer => "serializer",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}` (expected processor, source, sink, partitioner or serializer)"))
    }
}

/// One configuration key a plugin understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub default_value: Option<String>,
}

impl ConfigKey {
    pub fn required(name: &str, description: &str) -> Self {
        ConfigKey {
            name: name.into(),
            description: description.into(),
            required: true,
            default_value: None,
        }
    }

    pub fn optional(name: &str, default_value: Option<&str>, description: &str) -> Self {
        ConfigKey {
            name: name.into(),
            description: description.into(),
            required: false,
            default_value: default_value.map(Into::into),
        }
    }
}

/// A plugin's name, version, kind, description and configuration keys: what
/// `fjord plugin inspect` prints.
///
/// ```
/// use fjord_sdk::{ConfigKey, PluginInfo};
/// let info = PluginInfo::new("filter", "0.1.0")
///     .description("keeps records matching an expression")
///     .key(ConfigKey::required("expr", "e.g. level == \"error\""));
/// assert_eq!(info.config_keys.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// Filled in by the export from the trait the plugin implements.
    pub kind: PluginKind,
    pub description: String,
    pub config_keys: Vec<ConfigKey>,
}

impl PluginInfo {
    pub fn new(name: &str, version: &str) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            kind: PluginKind::Processor,
            description: String::new(),
            config_keys: Vec::new(),
        }
    }

    pub fn description(mut self, description: &str) -> Self {
        self.description = description.into();
        self
    }

    pub fn key(mut self, key: ConfigKey) -> Self {
        self.config_keys.push(key);
        self
    }

    #[doc(hidden)]
    pub fn with_kind(mut self, kind: PluginKind) -> Self {
        self.kind = kind;
        self
    }
}

/// A plugin's configuration: key/value strings in manifest order.
///
/// ```
/// use fjord_sdk::Config;
/// let c = Config::from_pairs([("expr", "status >= 500"), ("limit", "10")]);
/// assert_eq!(c.require("expr")?, "status >= 500");
/// assert_eq!(c.parse_or::<u32>("limit", 1)?, 10);
/// assert_eq!(c.parse_or::<u32>("missing", 1)?, 1);
/// # Ok::<(), fjord_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Config {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming it.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::msg(format!("missing required config key `{key}`")))
    }

    /// `key` as a list of names: a YAML list in the manifest (which reaches
    /// the plugin as a JSON array) or a comma-separated string. Empty when
    /// absent.
    ///
    /// ```
    /// let c = fjord_sdk::Config::from_pairs([("a", r#"["x","y"]"#), ("b", "x, y")]);
    /// assert_eq!(c.list("a")?, ["x", "y"]);
    /// assert_eq!(c.list("b")?, ["x", "y"]);
    /// assert!(c.list("none")?.is_empty());
    /// # Ok::<(), fjord_sdk::Error>(())
    /// ```
    pub fn list(&self, key: &str) -> Result<Vec<String>, Error> {
        let Some(text) = self.get(key) else {
            return Ok(Vec::new());
        };
        if text.trim_start().starts_with('[') {
            serde_json::from_str(text)
                .map_err(|e| Error::msg(format!("config key `{key}`: not a list of names: {e}")))
        } else {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        }
    }

    /// `key` parsed as `T`, or `default` when absent; an error names the key
    /// when the value does not parse.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| Error::msg(format!("config key `{key}`: `{v}`: {e}"))),
        }
    }
}

/// A plugin's failure: a message for the operator.
///
/// Any `std::error::Error` converts into it, so `?` works in plugin code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub fn msg(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error {
            message: e.to_string(),
        }
    }
}
