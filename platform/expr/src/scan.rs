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

    /// Skips whitespace. Most records have none between tokens, so that
    /// case is one comparison.
    #[inline]
    fn ws(&mut self) {
        if self.peek().is_some_and(|c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    #[inline]
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
    #[inline(always)]
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
                let integer = self.number()?;
                Value::Number(number_value(&self.b[start..self.at], integer)?)
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
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'de str> {
        let start = self.at + 1;
        let mut end = string_stop(self.b, start)?;
        let mut ascii = true;
        while self.b[end] >= 0x80 {
            ascii = false;
            end = string_stop(self.b, end + 1)?;
        }
        if self.b[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        let bytes = &self.b[start..end];
        if ascii {
            // SAFETY: every byte is below 0x80 (`string_stop` stops at any
            // other), so the bytes are UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// The bytes of a string without escapes, checked to be UTF-8.
    fn plain_bytes(&mut self) -> Option<&'de [u8]> {
        self.plain_string().map(str::as_bytes)
    }

    /// Skips any value, checking it as strictly as serde_json would.
    ///
    /// Strings and numbers, most of what is skipped, are handled inline:
    /// inside WebAssembly every call costs a deadline check on entry.
    #[inline(always)]
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'0'..=b'9' | b'-' => self.number().map(drop),
            _ => self.skip_other(depth),
        }
    }

    /// Skips an object, array or literal.
    fn skip_other(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
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
            // Strings and numbers were taken by `skip`.
            _ => None,
        }
    }

    /// Skips a string with the simple escapes (`\"` `\\` `\/` `\b` `\f`
    /// `\n` `\r` `\t`); `\u` is left to serde_json.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<()> {
        let start = self.at + 1;
        let mut at = start;
        let mut ascii = true;
        loop {
            at = string_stop(self.b, at)?;
            match self.b[at] {
                b'"' => break,
                b'\\' => match self.b.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                    _ => return None,
                },
                c if c >= 0x80 => {
                    ascii = false;
                    at += 1;
                }
                _ => return None,
            }
        }
        if !ascii {
            std::str::from_utf8(&self.b[start..at]).ok()?;
        }
        self.at = at + 1;
        Some(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; `Some(true)` for
    /// an integer (no fraction, no exponent).
    #[inline(always)]
    fn number(&mut self) -> Option<bool> {
        let digits = |s: &mut Self| {
            let n = digit_run(&s.b[s.at..]);
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
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(integer)
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that is `"`, `\\`, a control character
/// or not ASCII. Only the lowest set bit is exact (a borrow can mark a byte
/// above a real one), which is all `string_stop` uses.
#[inline]
fn stops(x: u64) -> u64 {
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH_BITS;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x & HIGH_BITS;
    zero_byte(x ^ (ONES * u64::from(b'"')))
        | zero_byte(x ^ (ONES * u64::from(b'\\')))
        | below_space
        | (x & HIGH_BITS)
}

/// From `at`, the index of the first byte that ends a plain run of a
/// string: `"`, `\\`, a control character, or a byte of a non-ASCII
/// character (rare; the callers then check UTF-8 the slow way). `None`
/// when the input ends first.
///
/// Eight bytes at a time: this is the scanner's hottest loop, and inside
/// WebAssembly (no vector unit, a deadline check per loop turn) a byte at a
/// time cost a third of a `filter` call.
#[inline(always)]
fn string_stop(b: &[u8], mut at: usize) -> Option<usize> {
    while let Some(chunk) = b.get(at..at + 8) {
        let m = stops(u64::from_le_bytes(chunk.try_into().ok()?));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = b.get(at..)?;
    let n = tail
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))?;
    Some(at + n)
}

/// How many ASCII digits `b` starts with, eight bytes at a time
/// (timestamps have 13).
#[inline(always)]
fn digit_run(b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(chunk) = b.get(n..n + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // A byte is a digit when its high nibble is 3 and its low nibble
        // plus 6 stays below 16; no step carries into the next byte.
        let high_nibble = (x & (ONES * 0xF0)) ^ (ONES * 0x30);
        let nonzero = (high_nibble | ((high_nibble & (ONES * 0x7F)) + ONES * 0x7F)) & HIGH_BITS;
        let low_over_nine = (((x & (ONES * 0x0F)) + ONES * 0x06) & (ONES * 0x10)) << 3;
        let not_digit = nonzero | low_over_nine;
        if not_digit != 0 {
            return n + (not_digit.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + b[n..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The value of a number `Scanner::number` accepted (`integer`: what it
/// returned). Integers of up to 15
/// digits are exact in an f64 and are summed directly: `str::parse::<f64>`
/// costs as much as scanning the rest of a typical record.
fn number_value(text: &[u8], integer: bool) -> Option<f64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if integer && digits.len() <= 15 {
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
            let integer = !text.contains(['.', 'e']);
            assert_eq!(number_value(text.as_bytes(), integer), expected, "{text}");
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
        fn string_stop_matches_a_byte_at_a_time_search(
            bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b'a'), Just(b'"')], 0..40),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let expected = bytes[from..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))
                .map(|i| from + i);
            prop_assert_eq!(string_stop(&bytes, from), expected);
        }

        #[test]
        fn digit_run_matches_a_byte_at_a_time_count(
            bytes in prop::collection::vec(prop_oneof![any::<u8>(), b'0'..=b'9', b'0'..=b'9'], 0..40),
        ) {
            let expected = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
            prop_assert_eq!(digit_run(&bytes), expected);
        }

        #[test]
        fn integer_values_match_the_float_parse(n in any::<i64>()) {
            let text = n.to_string();
            prop_assert_eq!(number_value(text.as_bytes(), true), text.parse::<f64>().ok());
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
