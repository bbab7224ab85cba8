//! The fast path of [`extract`](crate::extract::extract): a byte scanner
//! for the common shape of records — a flat or shallow JSON object whose
//! strings have few escapes.
//!
//! It answers only when it is sure the document is valid JSON and what the
//! wanted fields hold; anything else (an escape it does not decode, deep
//! nesting, anything malformed) returns `None`, and the caller asks
//! `serde_json`, which is the reference for what is valid. A property test
//! holds the two to the same answers on valid and damaged JSON (numbers:
//! the scanner's are correctly rounded, serde_json's default parse may be
//! one ulp off).
//!
//! Why: with serde_json's visitor, skipping the unwanted fields of a
//! 100-byte record cost as much as the rest of a `filter` call, and twice
//! that inside WebAssembly.

use crate::expr::Value;
use crate::extract::PathTree;
use std::borrow::Cow;

/// Deeper than this, the scanner leaves the document to serde_json (whose
/// own limit is 128).
const MAX_DEPTH: usize = 64;

struct Scanner<'de> {
    b: &'de [u8],
    at: usize,
}

/// `Some(())` when `json` is a valid JSON object and `values` holds what it
/// has at each path; `None` to ask serde_json.
pub fn extract<'de>(
    json: &'de [u8],
    tree: &PathTree,
    values: &mut [Option<Value<'de>>],
) -> Option<()> {
    let mut s = Scanner { b: json, at: 0 };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.object(Some(tree), values, 0)?;
    s.ws();
    (s.at == s.b.len()).then_some(())
}

impl<'de> Scanner<'de> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// An object at `self.at` (its `{`), capturing the fields `tree` wants.
    fn object(
        &mut self,
        tree: Option<&PathTree>,
        values: &mut [Option<Value<'de>>],
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.plain_bytes()?;
            self.eat(b':')?;
            self.ws();
            let wanted = tree.and_then(|t| t.child_bytes(key));
            match wanted {
                None => self.skip(depth)?,
                Some((end, sub)) => {
                    let captured = self.value(sub, values, depth)?;
                    if let Some(i) = end {
                        values[i] = Some(captured);
                    }
                }
            }
            self.ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A wanted value; objects are entered for the fields below.
    fn value(
        &mut self,
        sub: &PathTree,
        values: &mut [Option<Value<'de>>],
        depth: usize,
    ) -> Option<Value<'de>> {
        Some(match self.peek()? {
            b'"' => Value::Str(Cow::Borrowed(self.plain_string()?)),
            b'{' => {
                self.object(Some(sub), values, depth + 1)?;
                Value::Composite
            }
            b'[' => {
                self.skip(depth)?;
                Value::Composite
            }
            b't' => self.literal(b"true", Value::Bool(true))?,
            b'f' => self.literal(b"false", Value::Bool(false))?,
            b'n' => self.literal(b"null", Value::Null)?,
            _ => {
                let start = self.at;
                self.number()?;
                Value::Number(number_value(&self.b[start..self.at])?)
            }
        })
    }

    fn literal(&mut self, word: &[u8], v: Value<'de>) -> Option<Value<'de>> {
        if self.b.get(self.at..self.at + word.len())? != word {
            return None;
        }
        self.at += word.len();
        Some(v)
    }

    /// A string without escapes, as `str`; `None` for one with escapes
    /// (left to serde_json to decode), a control character or bad UTF-8.
    fn plain_string(&mut self) -> Option<&'de str> {
        std::str::from_utf8(self.plain_bytes()?).ok()
    }

    /// The bytes of a string without escapes, checked to be UTF-8 (most
    /// are ASCII, which is cheaper to check).
    fn plain_bytes(&mut self) -> Option<&'de [u8]> {
        let start = self.at + 1;
        let len = self
            .b
            .get(start..)?
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        let end = start + len;
        if self.b[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        let bytes = &self.b[start..end];
        (bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()).then_some(bytes)
    }

    /// Skips any value, checking it as strictly as serde_json would.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(None, &mut [], depth + 1),
            b'[' => {
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true", Value::Null).map(drop),
            b'f' => self.literal(b"false", Value::Null).map(drop),
            b'n' => self.literal(b"null", Value::Null).map(drop),
            _ => self.number(),
        }
    }

    /// Skips a string with the simple escapes (`\"` `\\` `\/` `\b` `\f`
    /// `\n` `\r` `\t`); `\u` is left to serde_json.
    fn skip_string(&mut self) -> Option<()> {
        let start = self.at + 1;
        let mut at = start;
        loop {
            let len = self
                .b
                .get(at..)?
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            at += len;
            match self.b[at] {
                b'"' => break,
                b'\\' => match self.b.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                    _ => return None,
                },
                _ => return None,
            }
        }
        let bytes = &self.b[start..at];
        if !bytes.is_ascii() {
            std::str::from_utf8(bytes).ok()?;
        }
        self.at = at + 1;
        Some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        let digits = |s: &mut Self| {
            let n = s.b[s.at..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            s.at += n;
            n
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }
}

/// The value of a number `Scanner::number` accepted. Integers of up to 15
/// digits are exact in an f64 and are summed directly: `str::parse::<f64>`
/// costs as much as scanning the rest of a typical record.
fn number_value(text: &[u8]) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')) as f64;
        return Some(if negative { -n } else { n });
    }
    // Only ASCII reaches here (`number` accepts nothing else).
    let text = std::str::from_utf8(text).ok()?;
    // serde_json refuses numbers out of f64's range.
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::extract_with_serde;
    use proptest::prelude::*;

    fn paths() -> Vec<Vec<String>> {
        ["level", "status", "http.status", "http", "x.y.z", "a"]
            .iter()
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect()
    }

    /// The scanner, when it answers, answers as serde_json does.
    fn agrees(json: &[u8]) -> Result<bool, TestCaseError> {
        let paths = paths();
        let tree = PathTree::new(&paths);
        let mut fast = vec![None; paths.len()];
        let mut reference = vec![None; paths.len()];
        let expected = extract_with_serde(json, &tree, &mut reference);
        match extract(json, &tree, &mut fast) {
            None => Ok(false),
            Some(()) => {
                prop_assert!(
                    expected.is_ok(),
                    "scanner accepted what serde refuses: {:?}",
                    String::from_utf8_lossy(json)
                );
                // Numbers: the scanner's parse is correctly rounded, serde_json's
                // default one may be 1 ulp off.
                let same = fast.len() == reference.len()
                    && fast.iter().zip(&reference).all(|(a, b)| match (a, b) {
                        (Some(Value::Number(x)), Some(Value::Number(y))) => {
                            x == y || ((x - y) / y).abs() < 1e-15
                        }
                        _ => a == b,
                    });
                prop_assert!(
                    same,
                    "{:?} != {:?} for {:?}",
                    fast,
                    reference,
                    String::from_utf8_lossy(json)
                );
                Ok(true)
            }
        }
    }

    #[test]
    fn typical_records_take_the_fast_path() {
        for doc in [
            &br#"{"level":"error","status":503,"path":"/a/b","ms":1.5e2,"ok":true,"n":null}"#[..],
            br#" { "http" : { "status" : 404 , "h": [1, {"q": "x\"y"}] }, "msg": "tab\there" } "#,
            br#"{"x":{"y":{"z":-0.25}},"level":""}"#,
            b"{}",
        ] {
            assert!(agrees(doc).unwrap(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn doubtful_documents_are_left_to_serde() {
        for doc in [
            &br#"{"level":"\u00e9"}"#[..],
            br#"{"le\nvel":1}"#,
            br#"{"status":1e400}"#,
            br#"{"a":1,}"#,
            br#"{"a":01}"#,
            br#"{"a":tru}"#,
            b"{\"a\":\"\xff\"}",
            br#"{"a":1} x"#,
            b"[1]",
            b"",
        ] {
            assert!(!agrees(doc).unwrap(), "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn integers_are_summed_exactly_and_the_rest_parsed() {
        for text in [
            "0",
            "-0",
            "7",
            "503",
            "-42",
            "999999999999999",
            "1234567890123456",
            "-98765432109876543",
            "1.5",
            "-2.5e3",
            "1e400",
        ] {
            let expected = text.parse::<f64>().ok().filter(|x| x.is_finite());
            assert_eq!(number_value(text.as_bytes()), expected, "{text}");
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            any::<i32>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| format!("{x:e}")),
            "[a-z\\\\\"\\t\u{e9}]{0,6}".prop_map(|s| format!("{:?}", s)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            let key = prop_oneof![
                Just("level"),
                Just("status"),
                Just("http"),
                Just("x"),
                Just("y"),
                Just("z"),
                Just("a"),
                Just("b")
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key, inner), 0..5).prop_map(|v| {
                    let fields: Vec<String> =
                        v.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                    format!("{{{}}}", fields.join(", "))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn integer_values_match_the_float_parse(n in any::<i64>()) {
            let text = n.to_string();
            prop_assert_eq!(number_value(text.as_bytes()), text.parse::<f64>().ok());
        }

        #[test]
        fn agrees_with_serde_on_json(doc in json_text()) {
            agrees(doc.as_bytes())?;
        }

        #[test]
        fn agrees_with_serde_on_damaged_json(doc in json_text(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
            let mut bytes = doc.into_bytes();
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                if cut { bytes.truncate(i) } else { bytes[i] = byte }
            }
            agrees(&bytes)?;
        }
    }
}
