//! `filter`: a processor that keeps the records whose JSON value matches an
//! expression, such as `level == "error" && status >= 500`.
//!
//! Config: `expr` (required; the grammar is in [`fjord_expr::expr`]), `on_invalid` =
//! `drop` (default: a value that is not a JSON object is dropped) or `fail`
//! (it fails the batch, so the pipeline sends it to its dead-letter topic).
//!
//! The expression is parsed once, at `init`, into a [`Condition`]; per
//! record only the fields it names are read. Kept records are forwarded
//! unchanged.
//!
//! Not for: transforming records (see `regex-parse`, `redact`) or routing
//! (pipeline sinks have `when`).

use fjord_expr::Condition;
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};

/// The filter processor.
#[derive(Debug)]
pub struct Filter {
    condition: Condition,
    fail_on_invalid: bool,
}

impl Plugin for Filter {
    fn info() -> PluginInfo {
        PluginInfo::new("filter", env!("CARGO_PKG_VERSION"))
            .description("keeps records whose JSON value matches an expression, e.g. level == \"error\" && status >= 500")
            .key(ConfigKey::required(
                "expr",
                "the expression: comparisons (== != < <= > >=) of dotted field paths with literals, && || ! and parentheses",
            ))
            .key(ConfigKey::optional(
                "on_invalid",
                Some("drop"),
                "`drop` or `fail`: what to do with a value that is not a JSON object",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let text = config.require("expr")?;
        let condition = Condition::parse(text)
            .map_err(|e| Error::msg(format!("config key `expr`: {e}: {text}")))?;
        let fail_on_invalid = match config.get("on_invalid").unwrap_or("drop") {
            "drop" => false,
            "fail" => true,
            other => {
                return Err(Error::msg(format!(
                    "config key `on_invalid`: `{other}` is not `drop` or `fail`"
                )));
            }
        };
        Ok(Filter {
            condition,
            fail_on_invalid,
        })
    }
}

#[fjord_sdk::processor]
impl Processor for Filter {
    fn process(
        &mut self,
        r: RecordRef<'_>,
        out: &mut BatchWriter,
        _: &mut Context<'_>,
    ) -> Result<(), Error> {
        match self.condition.matches(r.value.unwrap_or_default()) {
            Ok(true) => out.forward(&r),
            Ok(false) => {}
            Err(e) if self.fail_on_invalid => {
                return Err(Error::msg(format!(
                    "record at offset {}: not a JSON object: {}",
                    r.offset, e.0
                )));
            }
            Err(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::{Harness, process};

    fn values(out: &[Record]) -> Vec<&str> {
        out.iter().map(|r| r.value_str().unwrap_or("")).collect()
    }

    #[test]
    fn keeps_matching_records_unchanged() {
        let input = vec![
            Record::new(r#"{"level":"error","status":503}"#)
                .with_key("a")
                .with_header("h", "1"),
            Record::new(r#"{"level":"error","status":404}"#),
            Record::new(r#"{"level":"info","status":500}"#),
            Record::new(r#"{"status":500,"level":"error","extra":{"x":[1,2,{"y":null}]}}"#),
        ];
        let out = process::<Filter>(
            &[("expr", r#"level == "error" && status >= 500"#)],
            input.clone(),
        )
        .unwrap();
        assert_eq!(
            values(&out),
            [input[0].value_str().unwrap(), input[3].value_str().unwrap()]
        );
        assert_eq!(out[0].key, input[0].key);
        assert_eq!(out[0].headers, input[0].headers);
    }

    #[test]
    fn nested_paths_or_not_and_truthiness() {
        let expr = r#"(http.status >= 500 || http.slow) && !internal"#;
        let input = vec![
            Record::new(r#"{"http":{"status":502}}"#),
            Record::new(r#"{"http":{"status":200,"slow":true}}"#),
            Record::new(r#"{"http":{"status":200,"slow":false}}"#),
            Record::new(r#"{"http":{"status":503},"internal":true}"#),
            Record::new(r#"{"http":"not an object"}"#),
        ];
        let out = process::<Filter>(&[("expr", expr)], input).unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn invalid_values_are_dropped_or_fail_the_batch() {
        let input = vec![
            Record::new("not json"),
            Record::new("[1]"),
            Record::new(r#"{"a":1}"#),
        ];
        let out = process::<Filter>(&[("expr", "a == 1")], input.clone()).unwrap();
        assert_eq!(out.len(), 1);
        let err =
            process::<Filter>(&[("expr", "a == 1"), ("on_invalid", "fail")], input).unwrap_err();
        assert!(err.message().contains("offset 0"), "{err}");
    }

    #[test]
    fn bad_config_names_the_key_and_column() {
        let err = Harness::<Filter>::new(&[("expr", "level === 1")]).unwrap_err();
        assert!(
            err.message().starts_with("config key `expr`: column 9"),
            "{err}"
        );
        assert!(
            Harness::<Filter>::new(&[])
                .unwrap_err()
                .message()
                .contains("`expr`")
        );
        let err = Harness::<Filter>::new(&[("expr", "a"), ("on_invalid", "maybe")]).unwrap_err();
        assert!(err.message().contains("on_invalid"));
    }
}
