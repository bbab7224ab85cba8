//! Where each field of a manifest is: a `path → line:column` index.
//!
//! Deserialization locates its own errors, but the model it builds has no
//! positions, so checks made after parsing would have none. Once a manifest
//! has deserialized, its text is read again as events by the parser that
//! deserialized it (`granit-parser`, as re-exported by `serde-saphyr`: one
//! parser, so the two readings cannot disagree), whose events carry spans,
//! and each node's start is recorded under the same path syntax
//! serde_path_to_error uses (`spec.steps[1].plugin`).

use serde_saphyr::granit_parser::{Event, Parser, Span, SpannedEventReceiver};
use std::collections::HashMap;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// The start of every node of one manifest, by path. The root is `""`.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
}

impl Positions {
    /// Indexes `text`. A manifest is indexed once it has deserialized, so
    /// the parser accepts it; text it does not accept gives an empty index:
    /// errors then name the file and field without a line.
    pub fn index(text: &str) -> Positions {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        match parser.load(&mut recorder, false) {
            Ok(()) => recorder.positions,
            Err(_) => Positions::default(),
        }
    }

    /// Where the value at `path` starts; for a path the manifest does not
    /// have (a missing field), where its nearest present ancestor starts.
    pub fn value(&self, path: &str) -> Option<Location> {
        let mut path = path;
        loop {
            if let Some(l) = self.values.get(path) {
                return Some(*l);
            }
            path = parent(path)?;
        }
    }

    /// Where the key of the mapping entry at `path` starts, falling back like
    /// [`Positions::value`].
    pub fn key(&self, path: &str) -> Option<Location> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// The path one level up, `None` for the root.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    // Keys may contain dots (`app.kubernetes.io/name`), so the last
    // separator wins either way: the worst case is a less precise location.
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        want_key: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// A mapping or sequence used as a key: nothing under it is a field.
    Ignored,
}

#[derive(Default)]
struct Recorder {
    positions: Positions,
    stack: Vec<Frame>,
}

impl Recorder {
    /// The path of a node starting now, or `None` when it is a mapping key
    /// (recorded here) or inside one.
    fn start_node(&mut self, scalar: Option<&str>, at: Location) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Ignored) => return None,
            Some(Frame::Seq { path, next }) => {
                *next += 1;
                item(path, *next - 1)
            }
            Some(Frame::Map {
                path,
                key,
                want_key,
            }) => {
                if *want_key {
                    *key = scalar.map(str::to_owned);
                    if let Some(k) = scalar {
                        self.positions.keys.entry(child(path, k)).or_insert(at);
                    }
                    return None;
                }
                child(path, key.as_deref().unwrap_or("?"))
            }
        };
        self.positions.values.entry(path.clone()).or_insert(at);
        Some(path)
    }

    /// A node ended: the mapping holding it now expects the other half of
    /// its next entry.
    fn end_node(&mut self) {
        if let Some(Frame::Map { want_key, .. }) = self.stack.last_mut() {
            *want_key = !*want_key;
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Recorder {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let at = Location {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        match ev {
            Event::Scalar(value, ..) => {
                self.start_node(Some(&value), at);
                self.end_node();
            }
            Event::Alias(_) => {
                self.start_node(None, at);
                self.end_node();
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let frame = match self.start_node(None, at) {
                    None => Frame::Ignored,
                    Some(path) if matches!(ev, Event::MappingStart(..)) => Frame::Map {
                        path,
                        key: None,
                        want_key: true,
                    },
                    Some(path) => Frame::Seq { path, next: 0 },
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.end_node();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Location> {
        Some(Location { line, column })
    }

    #[test]
    fn nested_fields_and_list_items_are_located() {
        let p =
            Positions::index("a: 1\nb:\n  c: [x, {d: y}]\n  e:\n    - f: 2\n      g: 3\n    - h\n");
        assert_eq!(p.value("a"), at(1, 4));
        assert_eq!(p.key("a"), at(1, 1));
        assert_eq!(p.value("b.c"), at(3, 6));
        assert_eq!(p.value("b.c[1].d"), at(3, 14));
        assert_eq!(p.value("b.e[0].g"), at(6, 10));
        assert_eq!(p.key("b.e[0].g"), at(6, 7));
        assert_eq!(p.value("b.e[1]"), at(7, 7));
    }

    #[test]
    fn a_missing_field_falls_back_to_its_parent() {
        let p = Positions::index("a:\n  b: 1\n");
        assert_eq!(p.value("a.missing.deeper"), p.value("a"));
        assert_eq!(p.value("nothing"), p.value(""));
    }

    #[test]
    fn complex_keys_do_not_confuse_the_paths_after_them() {
        let p = Positions::index("? [k, l]\n: v\nz: 1\n");
        assert_eq!(p.value("z"), at(3, 4));
    }
}
