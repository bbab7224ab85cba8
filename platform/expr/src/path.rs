//! A dotted field path such as `http.status`, as conditions name fields,
//! for code that reads a field out of a parsed JSON value.

use serde_json::Value;

/// A field path: identifiers `[A-Za-z_][A-Za-z0-9_-]*` joined by dots.
///
/// ```
/// let p = fjord_expr::Path::parse("http.status")?;
/// let v = serde_json::json!({"http": {"status": 503}});
/// assert_eq!(p.get(&v), Some(&serde_json::json!(503)));
/// assert_eq!(p.name(), "http.status");
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    name: String,
    segments: Vec<String>,
}

impl Path {
    /// Parses a path; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Path, String> {
        let name = text.trim();
        let segments: Vec<String> = name.split('.').map(str::to_owned).collect();
        let valid = |s: &String| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !segments.iter().all(valid) {
            return Err(format!("{name:?} is not a field name or dotted path"));
        }
        Ok(Path {
            name: name.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The field's value in `object`, if present.
    pub fn get<'a>(&self, object: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(object, |v, s| v.as_object()?.get(s))
    }
}
