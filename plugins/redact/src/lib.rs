//! `redact`: a processor that masks whatever a regular expression matches —
//! card numbers, e-mail addresses, tokens — before records leave a trusted
//! topic.
//!
//! Config:
//! - `pattern` (required): a regex; give the key several times (in a
//!   manifest, a YAML list arrives as JSON text and is also accepted) to
//!   mask several patterns.
//! - `replacement` (default `***`): what each match becomes (`$name`
//!   refers to a named capture, as in the `regex` crate).
//! - `field` (optional): mask only inside this string field of a JSON
//!   value; otherwise the whole value is treated as text.
//!
//! Records with nothing to mask are forwarded unchanged.
//!
//! Not for: dropping records (`filter`) or parsing (`regex-parse`).

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};
use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;

/// The processor.
#[derive(Debug)]
pub struct Redact {
    patterns: Vec<Regex>,
    replacement: String,
    field: Option<String>,
}

/// Every `pattern` given: repeated keys, or one JSON array of strings.
fn patterns(config: &Config) -> Result<Vec<Regex>, Error> {
    let mut texts = Vec::new();
    for (k, v) in config.pairs() {
        if k != "pattern" {
            continue;
        }
        match serde_json::from_str::<Vec<String>>(v) {
            Ok(list) if v.trim_start().starts_with('[') => texts.extend(list),
            _ => texts.push(v.clone()),
        }
    }
    if texts.is_empty() {
        return Err(Error::msg("missing required config key `pattern`"));
    }
    texts
        .iter()
        .map(|t| Regex::new(t).map_err(|e| Error::msg(format!("config key `pattern`: `{t}`: {e}"))))
        .collect()
}

impl Plugin for Redact {
    fn info() -> PluginInfo {
        PluginInfo::new("redact", env!("CARGO_PKG_VERSION"))
            .description("masks what regular expressions match")
            .key(ConfigKey::required(
                "pattern",
                "a regex to mask; repeat the key (or give a list) for several",
            ))
            .key(ConfigKey::optional(
                "replacement",
                Some("***"),
                "what a match becomes ($name: a named capture)",
            ))
            .key(ConfigKey::optional(
                "field",
                None,
                "mask only inside this string field of a JSON value",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Redact {
            patterns: patterns(config)?,
            replacement: config.get("replacement").unwrap_or("***").to_owned(),
            field: config.get("field").map(str::to_owned),
        })
    }
}

impl Redact {
    /// The text with every pattern masked; borrowed when nothing matched.
    fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for re in &self.patterns {
            if let Cow::Owned(s) = re.replace_all(&out, self.replacement.as_str()) {
                out = Cow::Owned(s);
            }
        }
        out
    }

    /// The new value, or `None` when nothing changes.
    fn redact(&self, value: &[u8]) -> Option<Vec<u8>> {
        match &self.field {
            None => match self.mask(std::str::from_utf8(value).ok()?) {
                Cow::Borrowed(_) => None,
                Cow::Owned(s) => Some(s.into_bytes()),
            },
            Some(field) => {
                let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(value) else {
                    return None;
                };
                let Some(Value::String(text)) = object.get(field) else {
                    return None;
                };
                let masked = match self.mask(text) {
                    Cow::Borrowed(_) => return None,
                    Cow::Owned(s) => s,
                };
                object.insert(field.clone(), Value::String(masked));
                serde_json::to_vec(&object).ok()
            }
        }
    }
}

#[fjord_sdk::processor]
impl Processor for Redact {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        _: &mut Context<'_>,
    ) -> Result<(), Error> {
        match r.value.and_then(|v| self.redact(v)) {
            Some(masked) => out.emit_with_value(&r, Some(&masked)),
            None => out.forward(&r),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::{Harness, process};

    const CARD: &str = r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b";
    const EMAIL: &str = r"[\w.+-]+@[\w-]+\.[\w.]+";

    #[test]
    fn masks_every_pattern_and_leaves_the_rest() {
        let input = vec![
            Record::new("card 4111 1111 1111 1111 by bob@example.com").with_key("k"),
            Record::new("nothing to hide"),
            Record {
                value: None,
                ..Record::default()
            },
        ];
        let out = process::<Redact>(&[("pattern", CARD), ("pattern", EMAIL)], input).unwrap();
        assert_eq!(out[0].value_str(), Some("card *** by ***"));
        assert_eq!(out[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out[1].value_str(), Some("nothing to hide"));
        assert_eq!(out[2].value, None);
    }

    #[test]
    fn a_json_list_of_patterns_a_replacement_and_a_field() {
        let list = serde_json::to_string(&[CARD, EMAIL]).unwrap();
        let input = vec![Record::new(
            r#"{"user":"bob@example.com","note":"bob@example.com"}"#,
        )];
        let out = process::<Redact>(
            &[
                ("pattern", list.as_str()),
                ("replacement", "<hidden>"),
                ("field", "note"),
            ],
            input,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(out[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"user":"bob@example.com","note":"<hidden>"})
        );
    }

    #[test]
    fn named_captures_in_the_replacement() {
        let out = process::<Redact>(
            &[
                ("pattern", r"token=(?P<head>\w{3})\w+"),
                ("replacement", "token=${head}…"),
            ],
            vec![Record::new("token=abcdef123")],
        )
        .unwrap();
        assert_eq!(out[0].value_str(), Some("token=abc…"));
    }

    #[test]
    fn bad_config() {
        assert!(
            Harness::<Redact>::new(&[])
                .unwrap_err()
                .message()
                .contains("`pattern`")
        );
        assert!(
            Harness::<Redact>::new(&[("pattern", "(")])
                .unwrap_err()
                .message()
                .contains("`pattern`")
        );
    }
}
