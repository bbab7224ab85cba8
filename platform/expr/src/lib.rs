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
mod scan;

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
    paths: Vec<Vec<String>>,
}

impl Condition {
    /// Parses `text`; the error names the column.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let parsed = expr::parse(text)?;
        Ok(Condition {
            tree: PathTree::new(&parsed.paths),
            paths: parsed.paths,
            expr: parsed.expr,
        })
    }

    /// Whether a value matches; `Err` for one that is not a JSON object.
    pub fn matches(&self, value: &[u8]) -> Result<bool, NotAnObject> {
        // Small expressions: the values live on the stack.
        let mut values: smallvec::SmallVec<[Option<Value<'_>>; 8]> =
            smallvec::smallvec![None; self.paths.len()];
        extract::extract(value, &self.tree, &mut values)?;
        Ok(self.expr.eval(&values))
    }
}

/// Several conditions tested against a record in one pass over its bytes:
/// how a pipeline evaluates the `when` of all its sinks, at the cost of one
/// condition rather than one per sink.
///
/// ```
/// use fjord_expr::{Condition, ConditionSet};
/// let api = Condition::parse(r#"service == "api""#)?;
/// let errors = Condition::parse("status >= 500")?;
/// let set = ConditionSet::new([&api, &errors]);
/// let mut verdicts = Vec::new();
/// set.matches(br#"{"service":"api","status":503}"#, &mut verdicts);
/// assert_eq!(verdicts, [true, true]);
/// set.matches(b"[]", &mut verdicts);
/// assert_eq!(verdicts, [false, false]);
/// # Ok::<(), fjord_expr::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConditionSet {
    exprs: Vec<Expr>,
    tree: PathTree,
    paths: usize,
}

impl ConditionSet {
    pub fn new<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        let mut paths: Vec<Vec<String>> = Vec::new();
        let exprs = conditions
            .into_iter()
            .map(|c| {
                let map: Vec<usize> = c
                    .paths
                    .iter()
                    .map(|p| match paths.iter().position(|q| q == p) {
                        Some(i) => i,
                        None => {
                            paths.push(p.clone());
                            paths.len() - 1
                        }
                    })
                    .collect();
                c.expr.remapped(&map)
            })
            .collect();
        ConditionSet {
            exprs,
            tree: PathTree::new(&paths),
            paths: paths.len(),
        }
    }

    /// How many conditions there are.
    pub fn len(&self) -> usize {
        self.exprs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Sets `verdicts` to each condition's verdict on `value`, in order; a
    /// value that is not a JSON object matches none.
    pub fn matches(&self, value: &[u8], verdicts: &mut Vec<bool>) {
        verdicts.clear();
        let mut values: smallvec::SmallVec<[Option<Value<'_>>; 16]> =
            smallvec::smallvec![None; self.paths];
        let found = extract::extract(value, &self.tree, &mut values).is_ok();
        verdicts.extend(self.exprs.iter().map(|e| found && e.eval(&values)));
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

        #[test]
        fn a_set_agrees_with_its_conditions_one_by_one(doc in doc()) {
            let conditions: Vec<Condition> = EXPRS.iter().map(|e| Condition::parse(e).unwrap()).collect();
            let set = ConditionSet::new(&conditions);
            let bytes = serde_json::to_vec(&doc).unwrap();
            let mut verdicts = Vec::new();
            set.matches(&bytes, &mut verdicts);
            let one_by_one: Vec<bool> = conditions.iter().map(|c| c.matches(&bytes).unwrap()).collect();
            prop_assert_eq!(verdicts, one_by_one);
        }
    }
}
