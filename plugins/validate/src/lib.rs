//! `validate`: a processor that lets through the JSON records that have the
//! fields, types and properties a topic promises, and rejects the others
//! with every reason — the gate in front of an event log.
//!
//! Config (at least one of the first three):
//! - `required`: fields (a YAML list or comma list; dotted paths) that must
//!   be present and not null.
//! - `types`: field → type, one of `string`, `number`, `integer`,
//!   `boolean`, `object`, `array`; a field that is present must have it.
//! - `rules`: conditions (the language of `filter` and `when`) a record must
//!   meet; a mapping of message → condition, or a list of conditions
//!   (the message is then the condition).
//! - `on_invalid`: `fail` (default: the record fails, so the pipeline sends
//!   it to its dead-letter topic with the reasons in `fjord.error`; set the
//!   pipeline's `retry.attempts` to 1, as a rejection does not change on a
//!   retry) or `drop` (counted as `rejected`).
//!
//! Valid records are forwarded unchanged. A value that is not a JSON object
//! is invalid.
//!
//! Not for: transforming records, or rules that need state such as "the
//! balance may not go negative" (those belong to a stateful processor).

use fjord_expr::{Condition, Path};
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};
use serde_json::Value;

/// A JSON type a field may be required to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl Type {
    fn parse(text: &str) -> Result<Type, String> {
        Ok(match text {
            "string" => Type::String,
            "number" => Type::Number,
            "integer" => Type::Integer,
            "boolean" => Type::Boolean,
            "object" => Type::Object,
            "array" => Type::Array,
            other => {
                return Err(format!(
                    "{other:?} is not string, number, integer, boolean, object or array"
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Type::String => "a string",
            Type::Number => "a number",
            Type::Integer => "an integer",
            Type::Boolean => "a boolean",
            Type::Object => "an object",
            Type::Array => "an array",
        }
    }

    fn holds(self, v: &Value) -> bool {
        match self {
            Type::String => v.is_string(),
            Type::Number => v.is_number(),
            Type::Integer => v.is_i64() || v.is_u64(),
            Type::Boolean => v.is_boolean(),
            Type::Object => v.is_object(),
            Type::Array => v.is_array(),
        }
    }
}

/// The processor.
#[derive(Debug)]
pub struct Validate {
    required: Vec<Path>,
    types: Vec<(Path, Type)>,
    rules: Vec<(String, Condition)>,
    drop_invalid: bool,
}

/// `(name, text)` pairs of a JSON object of strings.
fn mapping(text: &str) -> Result<Vec<(String, String)>, String> {
    let object: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("not a mapping: {e}"))?;
    object
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(format!("{k}: {other} is not text")),
        })
        .collect()
}

impl Plugin for Validate {
    fn info() -> PluginInfo {
        PluginInfo::new("validate", env!("CARGO_PKG_VERSION"))
            .description("passes JSON records with the required fields, types and rules; rejects the rest with the reasons")
            .key(ConfigKey::optional("required", None, "fields that must be present and not null"))
            .key(ConfigKey::optional("types", None, "field -> string, number, integer, boolean, object or array"))
            .key(ConfigKey::optional("rules", None, "message -> condition, or a list of conditions"))
            .key(ConfigKey::optional("on_invalid", Some("fail"), "fail (dead-letter) or drop"))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let bad = |key: &str, e: String| Error::msg(format!("config key `{key}`: {e}"));
        let required: Vec<Path> = config
            .list("required")?
            .iter()
            .map(|n| Path::parse(n))
            .collect::<Result<_, _>>()
            .map_err(|e| bad("required", e))?;
        let types = match config.get("types") {
            None => Vec::new(),
            Some(text) => mapping(text)
                .and_then(|pairs| {
                    pairs
                        .iter()
                        .map(|(f, t)| {
                            Ok((
                                Path::parse(f)?,
                                Type::parse(t).map_err(|e| format!("{f}: {e}"))?,
                            ))
                        })
                        .collect()
                })
                .map_err(|e| bad("types", e))?,
        };
        let rules = match config.get("rules") {
            None => Vec::new(),
            Some(text) => {
                let pairs = if text.trim_start().starts_with('{') {
                    mapping(text)
                } else {
                    let conditions = config.list("rules")?;
                    Ok(conditions.into_iter().map(|c| (c.clone(), c)).collect())
                };
                pairs
                    .and_then(|pairs| {
                        pairs
                            .into_iter()
                            .map(|(message, text)| {
                                let c = Condition::parse(&text)
                                    .map_err(|e| format!("{text:?}: not a condition: {e}"))?;
                                Ok((message, c))
                            })
                            .collect()
                    })
                    .map_err(|e| bad("rules", e))?
            }
        };
        if required.is_empty() && types.is_empty() && rules.is_empty() {
            return Err(Error::msg(
                "nothing to check: set `required`, `types` or `rules`",
            ));
        }
        let drop_invalid = match config.get("on_invalid").unwrap_or("fail") {
            "fail" => false,
            "drop" => true,
            other => return Err(bad("on_invalid", format!("{other:?} is not fail or drop"))),
        };
        Ok(Validate {
            required,
            types,
            rules,
            drop_invalid,
        })
    }
}

impl Validate {
    /// Every reason the value is invalid; empty when it is valid.
    pub fn problems(&self, raw: &[u8]) -> Vec<String> {
        let value = match serde_json::from_slice::<Value>(raw) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return vec!["not a JSON object".into()],
            Err(e) => return vec![format!("not JSON: {e}")],
        };
        let mut problems = Vec::new();
        for path in &self.required {
            if path.get(&value).is_none_or(Value::is_null) {
                problems.push(format!("`{}` is missing", path.name()));
            }
        }
        for (path, ty) in &self.types {
            if let Some(v) = path.get(&value).filter(|v| !v.is_null() && !ty.holds(v)) {
                problems.push(format!("`{}` is {v}, not {}", path.name(), ty.name()));
            }
        }
        for (message, condition) in &self.rules {
            if !condition.matches(raw).unwrap_or(false) {
                problems.push(message.clone());
            }
        }
        problems
    }
}

#[fjord_sdk::processor]
impl Processor for Validate {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let problems = self.problems(r.value.unwrap_or_default());
        if problems.is_empty() {
            out.forward(&r);
            return Ok(());
        }
        ctx.counter("rejected", 1);
        if self.drop_invalid {
            return Ok(());
        }
        Err(Error::msg(format!(
            "record at offset {} rejected: {}",
            r.offset,
            problems.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::{Harness, process};

    const LEDGER: &[(&str, &str)] = &[
        ("required", "id, account, amount"),
        (
            "types",
            r#"{"account":"string","amount":"number","id":"string"}"#,
        ),
        (
            "rules",
            r#"{"amount is zero":"amount != 0","unknown currency":"currency == \"EUR\" || currency == \"USD\""}"#,
        ),
    ];

    #[test]
    fn valid_records_pass_unchanged() {
        let input = vec![
            Record::new(r#"{"id":"c1","account":"alice","amount":-30.5,"currency":"EUR"}"#)
                .with_key("alice"),
        ];
        let out = process::<Validate>(LEDGER, input.clone()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].value, input[0].value);
        assert_eq!(out[0].key, input[0].key);
    }

    #[test]
    fn a_rejection_gives_every_reason() {
        let mut h = Harness::<Validate>::new(LEDGER).unwrap();
        let err = h
            .process(vec![Record::new(
                r#"{"account":7,"amount":0,"currency":"GBP"}"#,
            )])
            .unwrap_err();
        assert_eq!(
            err.message(),
            "record at offset 0 rejected: `id` is missing; `account` is 7, not a string; amount is zero; unknown currency"
        );
        assert_eq!(h.host.counter("rejected"), 1);
        let err = h.process(vec![Record::new("[]")]).unwrap_err();
        assert!(err.message().ends_with("not a JSON object"), "{err}");
    }

    #[test]
    fn rules_as_a_list_and_dropping() {
        let mut h =
            Harness::<Validate>::new(&[("rules", r#"["amount > 0"]"#), ("on_invalid", "drop")])
                .unwrap();
        let out = h
            .process(vec![
                Record::new(r#"{"amount":1}"#),
                Record::new(r#"{"amount":-1}"#),
            ])
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(h.host.counter("rejected"), 1);
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |c: &[(&str, &str)]| Harness::<Validate>::new(c).unwrap_err().to_string();
        assert!(err(&[]).contains("nothing to check"));
        assert!(err(&[("types", r#"{"a":"text"}"#)]).contains("`types`: a: \"text\" is not"));
        assert!(err(&[("rules", r#"["a >"]"#)]).contains("`rules`"));
        assert!(err(&[("required", "a b")]).contains("`required`"));
    }
}
