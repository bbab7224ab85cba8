//! Fjord's one YAML parser and writer, configured once for every YAML the
//! platform reads (broker config, topic metadata files, pipeline manifests)
//! and writes (topic metadata files).
//!
//! Why `serde-saphyr`: it is maintained, deserializes straight into the
//! target types, locates every error (line and column), and enforces a
//! budget (events, aliases, anchors, nesting) against hostile input such as
//! alias bombs. Its parser, `granit-parser`, is re-exported
//! ([`serde_saphyr::granit_parser`]) and gives every node a span, so the
//! pipeline crate indexes field positions with the very parser that
//! deserialized the manifest: the two cannot disagree on what is valid.
//! `serde_yaml` is deprecated upstream and its forks (`serde_yaml_ng`,
//! `serde_norway`) give no node positions, which would have kept a second
//! parser beside them.
//!
//! The options keep what Fjord accepted before (with `serde_yaml` 0.9, a
//! YAML 1.2 reader): only `true`/`false` are booleans, an empty or `null`
//! value read as a string is its text, an untyped `0644` is a string, and a repeated field is refused by
//! the type it is read into.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{DefaultMessageFormatter, Error as ParseError, MessageFormatter};
use std::borrow::Cow;
use std::fmt;

pub use serde_saphyr::SerializeError;

/// The options every Fjord YAML reader uses.
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        // YAML 1.2: `yes`, `on`, `y` are strings, not booleans.
        strict_booleans: true,
        // `name:` read into a string is "" (and `~` is "~"), as before; the
        // validators say what is wrong with an empty value.
        null_as_string: true,
        // A repeated key reaches the target type, which refuses it with a
        // message of its own (serde's "duplicate field", the pipeline
        // model's "duplicate key"), as before; the parser's own message is
        // meant for developers.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // An untyped value (plugin config) of `.nan` or `.inf` is that text,
        // as JSON has no number for it; so are `0644` and `1_000`, as
        // serde_yaml read them (a file mode stays "0644").
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        // The default budget bounds what hostile text costs: 250,000 nodes
        // once aliases are expanded, 1,000,000 events, 50,000 aliases,
        // 64 MiB of scalars, 64 levels of nesting (serde_yaml allowed 128,
        // but reading that deep overflows a 2 MiB thread stack in a debug
        // build: tokio's workers, where the admin API reads manifests,
        // have 2 MiB).
        // Messages carry line and column; the snippet of text around them
        // is for terminals of the crate's own CLI, not for ours.
        with_snippet: false,
    }
}

/// YAML that does not read as the type asked for: what is wrong, where,
/// and in which field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    /// The field, as serde_path_to_error writes it (`spec.steps[1].plugin`,
    /// an unknown field's own name included); empty for the document as a
    /// whole, as for a syntax error.
    pub path: String,
    /// Without the path and the location.
    pub message: String,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// A required field is missing; the location is then where its mapping
    /// ends.
    pub missing_field: bool,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some((line, column)) = self.location {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

impl YamlError {
    /// `error`, met reading `text` at `path`, in the words Fjord's messages
    /// use.
    fn new(error: &ParseError, text: &str, path: Option<&serde_path_to_error::Path>) -> YamlError {
        let location = error
            .location()
            .filter(|l| *l != serde_saphyr::Location::UNKNOWN)
            .map(|l| (to_usize(l.line()), to_usize(l.column())));
        // The error itself, not its wrappers (the alias it was met
        // through, the snippet of text).
        let mut error = error;
        while let ParseError::AliasError { error: inner, .. }
        | ParseError::WithSnippet { error: inner, .. } = error
        {
            error = inner;
        }
        let message = SerdeWording { text }.format_message(error).into_owned();
        let mut path = path.map(ToString::to_string).unwrap_or_default();
        if path == "." {
            path.clear();
        }
        // `?` stands for a key serde never saw, as in a syntax error.
        while path == "?" || path.ends_with(".?") {
            path.truncate(path.len().saturating_sub(2));
        }
        YamlError {
            path,
            message,
            location,
            missing_field: matches!(error, ParseError::SerdeMissingField { .. }),
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Reads one YAML document into `T`; a budget bounds what hostile text
/// can cost (alias bombs, deep nesting).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    // The deserializer lives only inside the closure; the path of a failure
    // is taken out through `failed_at` (an error after the document, such
    // as a second document, has none).
    let mut failed_at = None;
    serde_saphyr::with_deserializer_from_str_with_options(text, options(), |deserializer| {
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            failed_at = Some(e.path().clone());
            e.into_inner()
        })
    })
    .map_err(|e| YamlError::new(&e, text, failed_at.as_ref()))
}

/// Writes `value` as one YAML document.
pub fn to_string<T: Serialize>(value: &T) -> Result<String, SerializeError> {
    serde_saphyr::to_string(value)
}

/// Serde's own wording for the errors serde words (the parser rewords a
/// few: unknown fields and variants without their backquotes, a scalar of
/// the wrong type without the scalar), words for a budget's refusal, and
/// the parser's for the rest (syntax).
struct SerdeWording<'t> {
    /// The text read: a scalar of the wrong type is quoted from it.
    text: &'t str,
}

impl MessageFormatter for SerdeWording<'_> {
    fn format_message<'a>(&self, err: &'a ParseError) -> Cow<'a, str> {
        match err {
            ParseError::SerdeUnknownField {
                field, expected, ..
            } => Cow::Owned(unknown("field", field, expected)),
            ParseError::SerdeUnknownVariant {
                variant, expected, ..
            } => Cow::Owned(unknown("variant", variant, expected)),
            ParseError::InvalidScalar { ty, location } => self.wrong_scalar(err, *location, ty),
            ParseError::InvalidBooleanStrict { location } => {
                self.wrong_scalar(err, *location, "a boolean")
            }
            ParseError::Budget { breach, .. } => match over_budget(breach) {
                Some(what) => Cow::Owned(format!("refused, over a reading limit: {what}")),
                None => DefaultMessageFormatter.format_message(err),
            },
            _ => DefaultMessageFormatter.format_message(err),
        }
    }
}

/// What a document the budget refused has too much of (the parser's own
/// text is a Rust debug print).
fn over_budget(breach: &BudgetBreach) -> Option<String> {
    Some(match breach {
        BudgetBreach::Nodes { nodes } => format!("{nodes} nodes once aliases are expanded"),
        BudgetBreach::Depth { depth } => format!("nested {depth} levels deep"),
        BudgetBreach::Aliases { aliases } => format!("{aliases} aliases"),
        BudgetBreach::Anchors { anchors } => format!("{anchors} anchors"),
        BudgetBreach::Events { events } => format!("{events} parser events"),
        BudgetBreach::ScalarBytes { total_scalar_bytes } => {
            format!("{total_scalar_bytes} bytes of scalars")
        }
        BudgetBreach::Documents { documents } => format!("{documents} documents"),
        _ => return None,
    })
}

impl SerdeWording<'_> {
    fn wrong_scalar<'a>(
        &self,
        err: &'a ParseError,
        location: serde_saphyr::Location,
        expected: &str,
    ) -> Cow<'a, str> {
        match self.scalar_at(location) {
            Some(scalar) => Cow::Owned(format!("{}, expected {expected}", unexpected(scalar))),
            None => DefaultMessageFormatter.format_message(err),
        }
    }

    /// The scalar's text as written, quotes included.
    fn scalar_at(&self, location: serde_saphyr::Location) -> Option<&str> {
        let span = location.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.text
            .get(start..start.checked_add(len)?)
            .filter(|s| !s.is_empty())
    }
}

/// serde's `unknown field `x`, expected one of `a`, `b``.
fn unknown(what: &str, name: &str, expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown {what} `{name}`, there are no {what}s"),
        [one] => format!("unknown {what} `{name}`, expected {one}"),
        [a, b] => format!("unknown {what} `{name}`, expected {a} or {b}"),
        all => format!(
            "unknown {what} `{name}`, expected one of {}",
            all.join(", ")
        ),
    }
}

/// serde's `invalid type: string "x"` (or `invalid value: integer `-1``)
/// for a scalar as YAML 1.2 reads it.
fn unexpected(scalar: &str) -> String {
    let quoted = ['"', '\'']
        .iter()
        .find_map(|q| scalar.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)));
    if let Some(text) = quoted {
        return format!("invalid type: string {text:?}");
    }
    if let Ok(n) = scalar.parse::<i128>() {
        return format!("invalid value: integer `{n}`");
    }
    if let Ok(f) = scalar.parse::<f64>() {
        return format!("invalid type: floating point `{f}`");
    }
    match scalar {
        "true" | "false" => format!("invalid type: boolean `{scalar}`"),
        "~" | "null" | "Null" | "NULL" => "invalid type: unit value".to_owned(),
        _ => format!("invalid type: string {scalar:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // read only to be refused
    struct Two {
        count: u32,
        on: bool,
    }

    fn error(text: &str) -> String {
        from_str::<Two>(text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn messages_are_worded_as_serde_words_them() {
        assert_eq!(
            error("count: many\non: true\n"),
            r#"count: invalid type: string "many", expected u32 at line 1 column 8"#
        );
        assert_eq!(
            error("count: -1\non: true\n"),
            "count: invalid value: integer `-1`, expected u32 at line 1 column 8"
        );
        assert_eq!(
            error("count: 1\non: yes\n"),
            r#"on: invalid type: string "yes", expected a boolean at line 2 column 5"#
        );
        assert_eq!(
            error("count: 1\nof: true\n"),
            "of: unknown field `of`, expected `count` or `on` at line 2 column 1"
        );
    }
}
