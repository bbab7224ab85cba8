//! Writing a JSON object field by field into a byte buffer.

/// Builds one JSON object in `buf`.
pub(crate) struct Object<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        Object { buf, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// A string field; invalid UTF-8 is replaced, as JSON needs text.
    pub fn str(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        string(self.buf, value);
    }

    /// A number field, written as the line had it (already checked to be
    /// digits, optionally with one `.`).
    pub fn raw_number(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.buf.extend_from_slice(value);
    }

    pub fn int(&mut self, key: &str, value: i64) {
        use std::io::Write;
        self.key(key);
        // Writing to a Vec cannot fail.
        let _ = write!(self.buf, "{value}");
    }

    pub fn finish(self) {
        self.buf.push(b'}');
    }
}

/// `value` as a JSON string.
pub(crate) fn string(buf: &mut Vec<u8>, value: &[u8]) {
    let plain = value
        .iter()
        .all(|&b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x80);
    if plain {
        buf.push(b'"');
        buf.extend_from_slice(value);
        buf.push(b'"');
        return;
    }
    let text = String::from_utf8_lossy(value);
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &text);
}
