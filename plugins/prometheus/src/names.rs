//! What the config says to export and how to call it: the `metrics`
//! fields with their metric names and fixed labels, and the `help` texts.

use fjord_sdk::{Config, Error};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Label pairs, sorted by name (the order the exposition shows them in).
pub type Labels = Vec<(String, String)>;

/// One numeric field of a wide record and the series it becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricField {
    /// The record's field.
    pub field: String,
    /// The metric name, prefixed and sanitised.
    pub name: String,
    /// Labels every series of this field carries (`quantile="0.99"`),
    /// sorted; they win over a record's label of the same name.
    pub labels: Labels,
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*` (`colon` false: no `:`, for label names).
pub fn sanitise(name: &str, colon: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A comma list of names; `None` when the key is not set.
pub fn comma_list(config: &Config, key: &str) -> Result<Option<Vec<String>>, Error> {
    let Some(text) = config.get(key) else {
        return Ok(None);
    };
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err(Error::msg(format!(
            "config key `{key}`: lists no field names"
        )));
    }
    Ok(Some(list))
}

/// A config value that is a mapping (a YAML mapping in the manifest arrives
/// as a JSON object); `None` when it is not one.
fn mapping(text: &str) -> Option<Result<Map<String, Value>, String>> {
    text.trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str(text).map_err(|e| format!("not a mapping: {e}")))
}

/// The `metrics` config: a comma list of fields (each exported under its
/// own name) or a mapping field → `NAME` or `NAME{label="value",…}`.
pub fn metric_fields(config: &Config, prefix: &str) -> Result<Option<Vec<MetricField>>, Error> {
    let bad = |e: String| Error::msg(format!("config key `metrics`: {e}"));
    let Some(text) = config.get("metrics") else {
        return Ok(None);
    };
    let named = |field: &str, target: &str| -> Result<MetricField, Error> {
        let (name, labels) = target_of(target).map_err(bad)?;
        Ok(MetricField {
            field: field.to_owned(),
            name: sanitise(&format!("{prefix}{name}"), true),
            labels,
        })
    };
    let fields = match mapping(text) {
        Some(map) => map
            .map_err(bad)?
            .iter()
            .map(|(field, target)| match target {
                Value::String(target) => named(field, target),
                other => Err(bad(format!("`{field}`: {other} is not a metric name"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => comma_list(config, "metrics")?
            .unwrap_or_default()
            .iter()
            .map(|field| named(field, field))
            .collect::<Result<Vec<_>, _>>()?,
    };
    if fields.is_empty() {
        return Err(bad("lists no field names".into()));
    }
    Ok(Some(fields))
}

/// `NAME` or `NAME{label="value",…}` (values without `,` or `"`).
fn target_of(text: &str) -> Result<(String, Labels), String> {
    let Some((name, rest)) = text.split_once('{') else {
        return Ok((text.trim().to_owned(), Vec::new()));
    };
    let inside = rest
        .trim_end()
        .strip_suffix('}')
        .ok_or_else(|| format!("{text:?}: missing the closing `}}`"))?;
    let mut labels = Vec::new();
    for pair in inside.split(',').filter(|p| !p.trim().is_empty()) {
        let value = pair
            .split_once('=')
            .and_then(|(k, v)| {
                let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
                Some((sanitise(k.trim(), false), v.to_owned()))
            })
            .ok_or_else(|| format!("{text:?}: expected label=\"value\", got {pair:?}"))?;
        labels.push(value);
    }
    labels.sort();
    Ok((name.trim().to_owned(), labels))
}

/// The `help` config: metric name (as in `metrics`, or as a one-metric
/// record names it, without the prefix) → help text; by exported name.
pub fn help(config: &Config, prefix: &str) -> Result<BTreeMap<String, String>, Error> {
    let bad = |e: String| Error::msg(format!("config key `help`: {e}"));
    let Some(text) = config.get("help") else {
        return Ok(BTreeMap::new());
    };
    let map = mapping(text)
        .ok_or_else(|| bad("expected a mapping of metric name to help text".into()))?
        .map_err(bad)?;
    map.into_iter()
        .map(|(name, text)| match text {
            // One line, as the text format wants it: `\` and newlines escaped.
            Value::String(text) => Ok((
                sanitise(&format!("{prefix}{name}"), true),
                text.replace('\\', "\\\\").replace('\n', "\\n"),
            )),
            other => Err(bad(format!("`{name}`: {other} is not text"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_carry_fixed_labels() {
        assert_eq!(
            target_of(r#"latency_seconds{quantile="0.99", le = "x"}"#).unwrap(),
            (
                "latency_seconds".to_owned(),
                vec![
                    ("le".to_owned(), "x".to_owned()),
                    ("quantile".to_owned(), "0.99".to_owned())
                ]
            )
        );
        assert_eq!(target_of(" plain ").unwrap(), ("plain".to_owned(), vec![]));
        assert!(target_of("x{quantile=0.9}").is_err());
        assert!(target_of(r#"x{quantile="0.9""#).is_err());
    }
}
