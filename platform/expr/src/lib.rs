//! The condition language of Fjord's pipelines: expressions such as
//! `level == "error" && status >= 500` over the fields of a record's JSON
//! value. The `filter` processor keeps the records that match one, a
//! pipeline sink's `when` routes by one, `aggregate` counts the records
//! that match one and `validate` rejects the records that do not.
//!
//! A [`Condition`] is parsed once and evaluated per record on the raw
//! bytes: only the fields it names are read, in one pass, without building
//! a JSON tree ([`extract`]). The grammar is in [`expr`].
//!
//! ```
//! let c = fjord_expr::Condition::parse(r#"level == "error" && status >= 500"#)?;
//! assert!(c.matches(br#"{"level":"error","status":503}"#).unwrap());
//! assert!(!c.matches(br#"{"level":"info","status":503}"#).unwrap());
//! assert!(c.matches(b"not json").is_err());
//! # Ok::<(), fjord_expr::ParseError>(())
//! ```
//!
//! Not for: computing values (arithmetic, string functions) or reading
//! anything but JSON objects.

pub mod expr;
pub mod extract;
mod path;

pub use expr::ParseError;
pub use extract::NotAnObject;
pub use path::Path;

use expr::{Expr, Value};
use extract::PathTree;

/// A parsed condition, ready to test records with.
#[derive(Debug, Clone)]
pub struct Condition {
    expr: Expr,
    tree: PathTree,
    paths: usize,
    text: String,
}

impl Condition {
    /// Parses `text`; the error names the column.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let parsed = expr::parse(text)?;
        Ok(Condition {
            tree: PathTree::new(&parsed.paths),
            paths: parsed.paths.len(),
            expr: parsed.expr,
            text: text.to_owned(),
        })
    }

    /// Whether a value matches; `Err` for one that is not a JSON object.
    pub fn matches(&self, value: &[u8]) -> Result<bool, NotAnObject> {
        // Small expressions: the values live on the stack.
        let mut values: smallvec::SmallVec<[Option<Value<'_>>; 8]> =
            smallvec::smallvec![None; self.paths];
        extract::extract(value, &self.tree, &mut values)?;
        Ok(self.expr.eval(&values))
    }

    /// The text it was parsed from.
    pub fn text(&self) -> &str {
        &self.text
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
            let condition = Condition::parse(EXPRS[which]).unwrap();
            let parsed = expr::parse(EXPRS[which]).unwrap();
            let bytes = serde_json::to_vec(&doc).unwrap();
            prop_assert_eq!(condition.matches(&bytes).unwrap(), reference(&parsed.expr, &parsed.paths, &doc));
        }
    }
}
