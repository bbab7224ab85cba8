//! Reads only the fields an expression names out of a JSON object, in one
//! pass and without building a tree: wanted fields are captured (strings
//! borrowed when unescaped), nested objects are entered only on a wanted
//! path, and everything else is skipped — by the byte scanner in
//! [`scan`](crate::scan) when it is sure of the answer, else by serde_json
//! with `IgnoredAny`.

use crate::expr::Value;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The paths to capture, as a tree of segments.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    /// (segment, index of the path ending here, children)
    children: Vec<(String, Option<usize>, PathTree)>,
    /// Bit `n` is set when a child's segment is `n` bytes long (bit 63:
    /// 63 or more), so most unwanted keys are passed over without a
    /// comparison.
    lengths: u64,
    /// The first eight bytes of each child's segment, zero-padded, in the
    /// order of `children`.
    heads: Vec<u64>,
}

/// A key's first eight bytes, zero-padded.
#[inline]
fn head(key: &[u8]) -> u64 {
    let mut word = [0; 8];
    let n = key.len().min(8);
    word[..n].copy_from_slice(&key[..n]);
    u64::from_le_bytes(word)
}

#[inline]
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl PathTree {
    pub fn new(paths: &[Vec<String>]) -> Self {
        let mut root = PathTree::default();
        for (index, path) in paths.iter().enumerate() {
            let mut node = &mut root;
            for (depth, segment) in path.iter().enumerate() {
                let at = match node.children.iter().position(|(s, _, _)| s == segment) {
                    Some(i) => i,
                    None => {
                        node.children
                            .push((segment.clone(), None, PathTree::default()));
                        node.lengths |= length_bit(segment.len());
                        node.heads.push(head(segment.as_bytes()));
                        node.children.len() - 1
                    }
                };
                let child = &mut node.children[at];
                if depth + 1 == path.len() {
                    child.1 = Some(index);
                }
                node = &mut child.2;
            }
        }
        root
    }

    /// The wanted segment `key`: the index of the path ending there, and
    /// the paths below it.
    ///
    /// Every key of every record comes through here. Inside WebAssembly
    /// each loop turn and each `memcmp` call costs a deadline check, so a
    /// key is first checked against the wanted lengths, then compared a
    /// word at a time.
    #[inline]
    pub(crate) fn child_bytes(&self, key: &[u8]) -> Option<(Option<usize>, &PathTree)> {
        if self.lengths & length_bit(key.len()) == 0 {
            return None;
        }
        let first = head(key);
        let at = self
            .heads
            .iter()
            .zip(&self.children)
            .position(|(h, (s, _, _))| {
                *h == first && s.len() == key.len() && (key.len() <= 8 || s.as_bytes() == key)
            })?;
        let (_, end, sub) = &self.children[at];
        Some((*end, sub))
    }
}

/// Why a value could not be read as a JSON object.
#[derive(Debug)]
pub struct NotAnObject(pub String);

/// Fills `values[i]` for each path `i` found in `json` (a JSON object).
pub fn extract<'de>(
    json: &'de [u8],
    tree: &PathTree,
    values: &mut [Option<Value<'de>>],
) -> Result<(), NotAnObject> {
    values.iter_mut().for_each(|v| *v = None);
    if crate::scan::extract(json, tree, values).is_some() {
        return Ok(());
    }
    // The scanner was not sure: serde_json decides, from scratch.
    extract_with_serde(json, tree, values)
}

/// serde_json alone: the slow path, and the reference the scanner is
/// tested against.
pub(crate) fn extract_with_serde<'de>(
    json: &'de [u8],
    tree: &PathTree,
    values: &mut [Option<Value<'de>>],
) -> Result<(), NotAnObject> {
    values.iter_mut().for_each(|v| *v = None);
    let mut de = serde_json::Deserializer::from_slice(json);
    ObjectSeed { tree, values }
        .deserialize(&mut de)
        .map_err(|e| NotAnObject(e.to_string()))?;
    de.end().map_err(|e| NotAnObject(e.to_string()))
}

struct ObjectSeed<'t, 'v, 'de> {
    tree: &'t PathTree,
    values: &'v mut [Option<Value<'de>>],
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(found) = map.next_key_seed(KeySeed(self.tree))? {
            match found.map(|i| &self.tree.children[i]) {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some((_, end, sub)) => {
                    let captured = map.next_value_seed(FieldSeed {
                        tree: sub,
                        values: &mut *self.values,
                    })?;
                    if let Some(i) = end {
                        self.values[*i] = Some(captured);
                    }
                }
            }
        }
        Ok(())
    }
}

/// A key, as the index of the wanted segment it names (if any). Compared
/// in place: serde's `Cow<str>` would allocate a `String` per key.
struct KeySeed<'t>(&'t PathTree);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.children.iter().position(|(s, _, _)| s == key))
    }
}

/// A wanted field: its own value, and the wanted fields below it.
struct FieldSeed<'t, 'v, 'de> {
    tree: &'t PathTree,
    values: &'v mut [Option<Value<'de>>],
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_, '_, 'de> {
    type Value = Value<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_, '_, 'de> {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::Number(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::Composite)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value<'de>, A::Error> {
        ObjectSeed {
            tree: self.tree,
            values: self.values,
        }
        .visit_map(map)?;
        Ok(Value::Composite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<Vec<String>> {
        p.iter()
            .map(|s| s.split('.').map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn captures_wanted_fields_only() {
        let p = paths(&["level", "http.status", "http", "missing", "arr"]);
        let tree = PathTree::new(&p);
        let mut values = vec![None; p.len()];
        let json =
            br#"{"level":"err\"or","x":{"deep":[1,2]},"http":{"status":503,"m":"GET"},"arr":[1]}"#;
        extract(json, &tree, &mut values).unwrap();
        assert_eq!(values[0], Some(Value::Str("err\"or".into())));
        assert_eq!(values[1], Some(Value::Number(503.0)));
        assert_eq!(values[2], Some(Value::Composite));
        assert_eq!(values[3], None);
        assert_eq!(values[4], Some(Value::Composite));
    }

    #[test]
    fn non_objects_and_bad_json_are_errors() {
        let tree = PathTree::new(&paths(&["a"]));
        let mut values = vec![None];
        assert!(extract(b"[1,2]", &tree, &mut values).is_err());
        assert!(extract(b"{\"a\":1", &tree, &mut values).is_err());
        assert!(extract(b"{\"a\":1} trailing", &tree, &mut values).is_err());
        assert!(extract(b"not json", &tree, &mut values).is_err());
    }
}
