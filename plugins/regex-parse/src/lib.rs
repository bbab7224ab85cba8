//! `regex-parse`: a processor that turns text into JSON with a regular
//! expression's named captures — an access-log line into
//! `{"client":…,"method":…,"status":…}`.
//!
//! Config:
//! - `pattern` (required): a regex (Rust `regex` syntax) with named
//!   captures `(?P<name>…)`; each becomes a string field.
//! - `field` (optional): the value is a JSON object and the regex applies
//!   to this string field; the output is the object with the captures
//!   added. Without it the regex applies to the whole value as text and the
//!   output is an object of the captures alone.
//! - `on_mismatch`: `keep` (default: forward the record unchanged), `drop`,
//!   or `fail` (fail the batch, so the pipeline dead-letters it).
//!
//! Not for: filtering on the parsed fields (chain `filter`) or masking
//! (`redact`).

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};
use regex::Regex;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What to do with a record the pattern does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnMismatch {
    Keep,
    Drop,
    Fail,
}

/// The processor.
#[derive(Debug)]
pub struct RegexParse {
    regex: Regex,
    /// Capture group indexes with their names, in pattern order.
    names: Vec<(usize, String)>,
    field: Option<String>,
    on_mismatch: OnMismatch,
    /// Reused across records.
    buf: Vec<u8>,
}

impl Plugin for RegexParse {
    fn info() -> PluginInfo {
        PluginInfo::new("regex-parse", env!("CARGO_PKG_VERSION"))
            .description(
                "named captures of a regular expression become the fields of a JSON object",
            )
            .key(ConfigKey::required(
                "pattern",
                "a regex with named captures, e.g. (?P<method>\\S+) (?P<path>\\S+)",
            ))
            .key(ConfigKey::optional(
                "field",
                None,
                "apply to this string field of a JSON value instead of the whole value",
            ))
            .key(ConfigKey::optional(
                "on_mismatch",
                Some("keep"),
                "`keep`, `drop` or `fail`",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let pattern = config.require("pattern")?;
        let regex =
            Regex::new(pattern).map_err(|e| Error::msg(format!("config key `pattern`: {e}")))?;
        let names: Vec<(usize, String)> = regex
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_owned())))
            .collect();
        if names.is_empty() {
            return Err(Error::msg(
                "config key `pattern`: has no named captures (?P<name>…)",
            ));
        }
        let on_mismatch = match config.get("on_mismatch").unwrap_or("keep") {
            "keep" => OnMismatch::Keep,
            "drop" => OnMismatch::Drop,
            "fail" => OnMismatch::Fail,
            other => {
                return Err(Error::msg(format!(
                    "config key `on_mismatch`: `{other}` is not keep, drop or fail"
                )));
            }
        };
        Ok(RegexParse {
            regex,
            names,
            field: config.get("field").map(str::to_owned),
            on_mismatch,
            buf: Vec::new(),
        })
    }
}

impl RegexParse {
    /// The output value for `value`, or `None` when the pattern does not
    /// match (or the field is missing).
    fn parse(&self, value: &[u8]) -> Result<Option<Map<String, Value>>, Error> {
        let (mut object, text): (Map<String, Value>, Cow<'_, str>) = match &self.field {
            None => match std::str::from_utf8(value) {
                Ok(text) => (Map::new(), Cow::Borrowed(text)),
                Err(_) => return Ok(None),
            },
            Some(field) => {
                let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(value) else {
                    return Ok(None);
                };
                let Some(Value::String(text)) = object.get(field).cloned() else {
                    return Ok(None);
                };
                (object, Cow::Owned(text))
            }
        };
        let Some(caps) = self.regex.captures(&text) else {
            return Ok(None);
        };
        for (i, name) in &self.names {
            if let Some(m) = caps.get(*i) {
                object.insert(name.clone(), Value::String(m.as_str().to_owned()));
            }
        }
        Ok(Some(object))
    }
}

#[fjord_sdk::processor]
impl Processor for RegexParse {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        _: &mut Context<'_>,
    ) -> Result<(), Error> {
        match self.parse(r.value.unwrap_or_default())? {
            Some(object) => {
                self.buf.clear();
                serde_json::to_writer(&mut self.buf, &object)?;
                out.emit_with_value(&r, Some(&self.buf));
            }
            None => match self.on_mismatch {
                OnMismatch::Keep => out.forward(&r),
                OnMismatch::Drop => {}
                OnMismatch::Fail => {
                    return Err(Error::msg(format!(
                        "record at offset {}: the pattern does not match",
                        r.offset
                    )));
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::{Harness, process};

    const ACCESS: &str = r#"^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) \S+" (?P<status>\d+) (?P<bytes>\d+)$"#;

    fn json(r: &Record) -> Value {
        serde_json::from_slice(r.value.as_deref().unwrap_or_default()).unwrap()
    }

    #[test]
    fn access_log_lines_become_json() {
        let line = r#"203.0.113.9 - - [22/Nov/2026:10:00:00 +0000] "GET /api/v1/items/7 HTTP/1.1" 503 512"#;
        let out = process::<RegexParse>(
            &[("pattern", ACCESS)],
            vec![Record::new(line).with_key("k")],
        )
        .unwrap();
        assert_eq!(
            json(&out[0]),
            serde_json::json!({"client":"203.0.113.9","time":"22/Nov/2026:10:00:00 +0000","method":"GET","path":"/api/v1/items/7","status":"503","bytes":"512"})
        );
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn a_field_of_a_json_value_keeps_the_other_fields() {
        let input = Record::new(r#"{"host":"web-1","msg":"user=alice action=login"}"#);
        let out = process::<RegexParse>(
            &[
                ("pattern", r"user=(?P<user>\w+) action=(?P<action>\w+)"),
                ("field", "msg"),
            ],
            vec![input],
        )
        .unwrap();
        assert_eq!(
            json(&out[0]),
            serde_json::json!({"host":"web-1","msg":"user=alice action=login","user":"alice","action":"login"})
        );
    }

    #[test]
    fn mismatches_keep_drop_or_fail() {
        let input = vec![Record::new("no match here"), Record::new("n=1")];
        let keep = process::<RegexParse>(&[("pattern", r"n=(?P<n>\d)")], input.clone()).unwrap();
        assert_eq!(keep[0].value_str(), Some("no match here"));
        assert_eq!(json(&keep[1]), serde_json::json!({"n":"1"}));
        let drop = process::<RegexParse>(
            &[("pattern", r"n=(?P<n>\d)"), ("on_mismatch", "drop")],
            input.clone(),
        )
        .unwrap();
        assert_eq!(drop.len(), 1);
        let err = process::<RegexParse>(
            &[("pattern", r"n=(?P<n>\d)"), ("on_mismatch", "fail")],
            input,
        )
        .unwrap_err();
        assert!(err.message().contains("offset 0"), "{err}");
    }

    #[test]
    fn bad_config() {
        assert!(
            Harness::<RegexParse>::new(&[("pattern", "(unclosed")])
                .unwrap_err()
                .message()
                .contains("`pattern`")
        );
        assert!(
            Harness::<RegexParse>::new(&[("pattern", r"\d+")])
                .unwrap_err()
                .message()
                .contains("named")
        );
        assert!(
            Harness::<RegexParse>::new(&[("pattern", "(?P<a>x)"), ("on_mismatch", "x")]).is_err()
        );
    }
}
