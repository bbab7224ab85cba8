//! Manifest errors: each names the file, the line and column, and the field.

use crate::positions::{Location, Positions};
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

/// Turns an error reading `text` into a located one.
pub(crate) fn from_yaml(
    file: &str,
    text: &str,
    error: fjord_broker::yaml::YamlError,
) -> ManifestError {
    let mut location = error
        .location
        .map(|(line, column)| Location { line, column });
    // The parser places a missing field where its mapping ends; the
    // mapping's start is where to add it.
    if error.missing_field {
        location = Positions::index(text).value(&error.path).or(location);
    }
    ManifestError {
        file: file.to_owned(),
        location,
        path: error.path,
        message: error.message,
    }
}
