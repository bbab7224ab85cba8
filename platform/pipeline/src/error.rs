//! Manifest errors: each names the file, the line and column, and the field.

use crate::positions::Location;
use std::fmt;

/// One thing wrong with a manifest.
///
/// Displays as `file:line:column: field.path: message`; the field is left
/// out for errors about the text itself (YAML syntax), the location when it
/// is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub file: String,
    pub location: Option<Location>,
    /// `spec.steps[1].plugin`; empty for the document as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(l) = self.location {
            write!(f, "{}:{}:", l.line, l.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every error found in one or more manifests, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ManifestErrors {
    pub fn errors(&self) -> &[ManifestError] {
        &self.0
    }

    /// `Ok` when there is nothing to report.
    pub(crate) fn into_result(self) -> Result<(), ManifestErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Turns a serde_yaml error into a located one. serde_yaml writes its own
/// path and location into the message; the path from serde_path_to_error
/// (which, unlike serde_yaml's, includes an unknown field's name) and the
/// location are given separately, so both are taken out of the text.
pub(crate) fn from_serde(
    file: &str,
    path: &serde_path_to_error::Path,
    error: &serde_yaml::Error,
) -> ManifestError {
    let location = error.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    });
    let mut message = error.to_string();
    if let Some(l) = &location {
        let suffix = format!(" at line {} column {}", l.line, l.column);
        if let Some(cut) = message.find(&suffix) {
            // libyaml syntax errors continue after the location with the
            // context (", while parsing a block mapping at …"): keep it.
            message = format!("{}{}", &message[..cut], &message[cut + suffix.len()..]);
        }
    }
    let mut path = path.to_string();
    if path == "." {
        path.clear();
    }
    // `?` stands for a key serde never saw, as in a syntax error.
    while path == "?" || path.ends_with(".?") {
        path.truncate(path.len().saturating_sub(2));
    }
    // serde_yaml's own path is the failing field or its mapping: a prefix
    // of serde_path_to_error's.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if !prefix.is_empty() && path.starts_with(prefix) {
            message = rest.to_owned();
        }
    }
    ManifestError {
        file: file.to_owned(),
        location,
        path,
        message,
    }
}
