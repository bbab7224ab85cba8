//! `filter`: a processor that keeps the records whose JSON value matches an
//! expression, such as `level == "error" && status >= 500`.
//!
//! Config: `expr` (required; the grammar is in [`expr`]), `on_invalid` =
//! `drop` (default: a value that is not a JSON object is dropped) or `fail`
//! (it fails the batch, so the pipeline sends it to its dead-letter topic).
//!
//! The expression is parsed once, at `init`. Per record only the fields the
//! expression names are read, in one pass over the bytes ([`extract`]); kept
//! records are forwarded unchanged.
//!
//! Not for: transforming records (see `regex-parse`, `redact`) or routing
//! (pipeline sinks have `when`).

pub mod expr;
pub mod extract;

use expr::{Expr, Value};
use extract::PathTree;
use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Processor, RecordRef,
};

/// The filter processor.
#[derive(Debug)]
pub struct Filter {
    expr: Expr,
    tree: PathTree,
    paths: usize,
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
        let parsed =
            expr::parse(text).map_err(|e| Error::msg(format!("config key `expr`: {e}: {text}")))?;
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
            tree: PathTree::new(&parsed.paths),
            paths: parsed.paths.len(),
            expr: parsed.expr,
            fail_on_invalid,
        })
    }
}

impl Filter {
    /// Whether a value matches; `Err` for one that is not a JSON object.
    pub fn matches(&self, value: &[u8]) -> Result<bool, extract::NotAnObject> {
        // Small expressions: the values live on the stack.
        let mut values: smallvec::SmallVec<[Option<Value<'_>>; 8]> =
            smallvec::smallvec![None; self.paths];
        extract::extract(value, &self.tree, &mut values)?;
        Ok(self.expr.eval(&values))
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
        match self.matches(r.value.unwrap_or_default()) {
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

#[cfg(test)]
mod props {
    //! The streaming extraction against a reference evaluation over a whole
    //! `serde_json::Value`.

    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    fn reference(e: &Expr, paths: &[Vec<String>], doc: &Json) -> bool {
        let lookup = |p: &Vec<String>| -> Option<Value<'static>> {
            let mut v = doc;
            for s in p {
                v = v.as_object()?.get(s)?;
            }
            Some(match v {
                Json::Null => Value::Null,
                Json::Bool(b) => Value::Bool(*b),
                Json::Number(n) => Value::Number(n.as_f64()?),
                Json::String(s) => Value::Str(s.clone().into()),
                _ => Value::Composite,
            })
        };
        let values: Vec<Option<Value<'static>>> = paths.iter().map(lookup).collect();
        e.eval(&values)
    }

    fn leaf() -> impl Strategy<Value = Json> {
        prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            (-5i64..600).prop_map(|n| json!(n)),
            prop_oneof![Just("error"), Just("info"), Just(""), Just("e\"rr")]
                .prop_map(|s| json!(s)),
        ]
    }

    fn doc() -> impl Strategy<Value = Json> {
        let names = prop_oneof![Just("level"), Just("status"), Just("http"), Just("x")];
        let inner = prop::collection::btree_map(names.clone(), leaf(), 0..4)
            .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        let field = prop_oneof![leaf(), inner];
        prop::collection::btree_map(names, field, 0..5)
            .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    const EXPRS: [&str; 6] = [
        r#"level == "error" && status >= 500"#,
        r#"http.status > 100 || !level"#,
        r#"http.level != "info" && x"#,
        r#"status < 0 || status == null || level == "e\"rr""#,
        r#"!(x.status >= 7) && http"#,
        r#"level"#,
    ];

    proptest! {
        #[test]
        fn streaming_matches_the_reference(doc in doc(), which in 0..EXPRS.len()) {
            let filter = Filter::init(&Config::from_pairs([("expr", EXPRS[which])])).unwrap();
            let parsed = expr::parse(EXPRS[which]).unwrap();
            let bytes = serde_json::to_vec(&doc).unwrap();
            prop_assert_eq!(filter.matches(&bytes).unwrap(), reference(&parsed.expr, &parsed.paths, &doc));
        }
    }
}
