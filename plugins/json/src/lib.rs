//! `json`: a serializer for topics that hold JSON documents.
//!
//! `serialize` (produce) refuses anything that is not one JSON document —
//! the error names serde_json's line and column — and stores it compact.
//! `deserialize` (consume) checks the stored bytes the same way and shows
//! them compact, or indented when config `pretty` = `true`.
//!
//! The document is re-spaced, never re-encoded: object keys keep their order
//! (and duplicates), numbers and string escapes keep their spelling, so what
//! is stored is exactly what was produced, less insignificant whitespace.
//!
//! Not for: schemas (any valid JSON passes) or JSON Lines (one document per
//! record: split lines before producing).

use fjord_sdk::{Config, ConfigKey, Error, Plugin, PluginInfo, Serializer};

/// The serializer.
#[derive(Debug)]
pub struct Json {
    pretty: bool,
}

/// Fails with serde_json's message (which ends "at line L column C") unless
/// `bytes` is exactly one JSON document.
fn validate(bytes: &[u8]) -> Result<(), Error> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map(|_| ())
        .map_err(|e| Error::msg(format!("not JSON: {e}")))
}

/// Copies a string token starting at `bytes[i]` (the opening quote) to
/// `out`; returns the index after its closing quote.
fn copy_string(bytes: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    let start = i;
    i += 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                i += 1;
                break;
            }
            _ => i += 1,
        }
    }
    let end = i.min(bytes.len());
    out.extend_from_slice(&bytes[start..end]);
    end
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Removes the whitespace between tokens of a document already validated.
fn compact(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = copy_string(bytes, i, &mut out),
            b if is_space(b) => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.resize(out.len() + 2 * depth, b' ');
}

/// Indents a compact document as serde_json's pretty printer does: two
/// spaces, `": "` after keys, `[]` and `{}` when empty.
fn pretty(compact: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    while i < compact.len() {
        match compact[i] {
            b'"' => {
                i = copy_string(compact, i, &mut out);
                continue;
            }
            open @ (b'{' | b'[') => {
                out.push(open);
                if matches!(compact.get(i + 1), Some(b'}' | b']')) {
                    out.push(compact[i + 1]);
                    i += 1;
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            close @ (b'}' | b']') => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(close);
            }
            b',' => {
                out.push(b',');
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

impl Plugin for Json {
    fn info() -> PluginInfo {
        PluginInfo::new("json", env!("CARGO_PKG_VERSION"))
            .description(
                "checks values are JSON; stores them compact, shows them compact or pretty",
            )
            .key(ConfigKey::optional(
                "pretty",
                Some("false"),
                "`true` to indent what `deserialize` shows",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Json {
            pretty: config.parse_or("pretty", false)?,
        })
    }
}

#[fjord_sdk::serializer]
impl Serializer for Json {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        validate(input)?;
        Ok(compact(input))
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        validate(bytes)?;
        let c = compact(bytes);
        Ok(if self.pretty { pretty(&c) } else { c })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    fn harness(pretty: &str) -> Harness<Json> {
        Harness::new(&[("pretty", pretty)]).unwrap()
    }

    #[test]
    fn serialize_compacts_keeping_order_and_spelling() {
        let mut h = harness("false");
        let input =
            b" {\n  \"z\" : 1.50,\t\"a\": [ 1 , 2e3 ],\r\n \"s\": \"a b \\\" c\",\"z\":null }\n";
        assert_eq!(
            h.serialize(input).unwrap(),
            br#"{"z":1.50,"a":[1,2e3],"s":"a b \" c","z":null}"#
        );
    }

    #[test]
    fn strings_keep_their_whitespace_and_escapes() {
        let mut h = harness("false");
        let input = r#"["  x  ", "\\", "\\\"", "\u00e9 \n", "é"]"#.as_bytes();
        assert_eq!(
            h.serialize(input).unwrap(),
            r#"["  x  ","\\","\\\"","\u00e9 \n","é"]"#.as_bytes()
        );
    }

    #[test]
    fn scalars_are_documents_too() {
        let mut h = harness("false");
        assert_eq!(h.serialize(b" 42 ").unwrap(), b"42");
        assert_eq!(h.serialize(b"\"x\"").unwrap(), b"\"x\"");
        assert_eq!(h.serialize(b"null").unwrap(), b"null");
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let mut h = harness("false");
        let err = h.serialize(b"{\n  \"a\": 1,\n  \"b\": }").unwrap_err();
        assert!(err.message().contains("line 3 column"), "{err}");
        for bad in [&b""[..], b"{", b"{} {}", b"'a'", b"[1,]", b"\xff"] {
            assert!(h.serialize(bad).is_err(), "{bad:?}");
            assert!(h.deserialize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserialize_returns_compact_by_default() {
        let mut h = Harness::<Json>::new(&[]).unwrap();
        assert_eq!(
            h.deserialize(br#"{"a":[1,{}]}"#).unwrap(),
            br#"{"a":[1,{}]}"#
        );
        assert_eq!(h.deserialize(b"{ \"a\" : 1 }").unwrap(), br#"{"a":1}"#);
    }

    #[test]
    fn pretty_matches_serde_json() {
        let mut h = harness("true");
        for doc in [
            &br#"{"a":[1,{"b":null,"c":[]},{}],"d":"x,y:{z}","e":{"f":true}}"#[..],
            br#"[[],[[1]],"]"]"#,
            b"1",
            br#"{}"#,
        ] {
            let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
            let want = serde_json::to_string_pretty(&value).unwrap();
            let got = h.deserialize(doc).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
        }
    }

    #[test]
    fn round_trip() {
        let mut h = harness("false");
        let stored = h.serialize(b"{ \"k\": [true, false] }").unwrap();
        assert_eq!(h.deserialize(&stored).unwrap(), stored);
    }

    #[test]
    fn bad_pretty_is_refused() {
        let err = Json::init(&Config::from_pairs([("pretty", "yes")])).unwrap_err();
        assert!(err.message().contains("`pretty`"), "{err}");
    }

    #[test]
    fn info_lists_pretty() {
        let info = Json::info();
        assert_eq!(info.name, "json");
        assert_eq!(info.config_keys[0].name, "pretty");
        assert_eq!(info.config_keys[0].default_value.as_deref(), Some("false"));
    }
}
