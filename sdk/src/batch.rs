//! The batch encoding: how records cross the plugin boundary.
//!
//! A batch is one byte buffer, so a call into a WebAssembly plugin copies it
//! once in and once out, and a plugin reads records in place without
//! allocating. All integers are little-endian.
//!
//! ```text
//! batch   := count:u32 record{count}
//! record  := size:u32 body            size = length of body in bytes
//! body    := timestamp:i64 offset:i64 partition:i32
//!            topic:str16 key:bytes32 value:bytes32
//!            header-count:u16 (name:str16 value:bytes32){header-count}
//! str16   := len:u16 utf8{len}        len 0xFFFF = absent
//! bytes32 := len:u32 byte{len}        len 0xFFFF_FFFF = null
//! ```
//!
//! `topic` is set on output records that go to another topic than the
//! pipeline's sink; `offset` and `partition` are filled in by the host on
//! input and ignored on output. docs/plugins.md explains why one buffer and
//! not a typed WIT list.

use std::fmt;

const NULL16: u16 = u16::MAX;
const NULL32: u32 = u32::MAX;
const FIXED_BODY: usize = 8 + 8 + 4;

/// A batch that does not follow the encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed batch: {0}")]
pub struct DecodeError(pub &'static str);

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Option<Vec<u8>>,
}

/// An owned record, for building output and for tests.
///
/// ```
/// use fjord_sdk::Record;
/// let r = Record::new(b"{\"level\":\"error\"}".to_vec())
///     .with_key(b"host-1".to_vec())
///     .with_header("source", b"nginx".to_vec())
///     .to_topic("errors");
/// assert_eq!(r.topic.as_deref(), Some("errors"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Set by the host on input records; ignored on output.
    pub offset: i64,
    /// Set by the host on input records; ignored on output.
    pub partition: i32,
    /// On output: the topic this record goes to instead of the default sink.
    pub topic: Option<String>,
}

impl Record {
    /// A record with a value and nothing else.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: Some(value.into()),
        });
        self
    }

    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Routes the record to `topic` instead of the pipeline's sink.
    pub fn to_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// A record read in place from a batch.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    raw: &'a [u8],
    pub timestamp: i64,
    pub offset: i64,
    pub partition: i32,
    pub topic: Option<&'a str>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: u16,
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRef")
            .field("offset", &self.offset)
            .field("partition", &self.partition)
            .field("timestamp", &self.timestamp)
            .field("topic", &self.topic)
            .field("key", &self.key.map(String::from_utf8_lossy))
            .field("value", &self.value.map(String::from_utf8_lossy))
            .finish()
    }
}

impl<'a> RecordRef<'a> {
    /// The value as UTF-8 text, if it is.
    pub fn value_str(&self) -> Option<&'a str> {
        self.value.and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The headers in order.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            cur: Cursor { buf: self.headers },
            left: self.header_count,
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<Option<&'a [u8]>> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Copies the record out of the batch.
    pub fn to_record(&self) -> Record {
        Record {
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers()
                .map(|(name, value)| Header {
                    name: name.to_owned(),
                    value: value.map(<[u8]>::to_vec),
                })
                .collect(),
            timestamp: self.timestamp,
            offset: self.offset,
            partition: self.partition,
            topic: self.topic.map(str::to_owned),
        }
    }
}

/// Iterator over a record's headers: `(name, value)`.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    cur: Cursor<'a>,
    left: u16,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated when the record was read.
        let name = self.cur.str16().ok()?.unwrap_or("");
        let value = self.cur.bytes32().ok()?;
        Some((name, value))
    }
}

#[derive(Debug, Clone)]
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    fn str16(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.u16()? {
            NULL16 => Ok(None),
            n => std::str::from_utf8(self.take(n as usize)?)
                .map(Some)
                .map_err(|_| DecodeError("string is not UTF-8")),
        }
    }

    fn bytes32(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u32()? {
            NULL32 => Ok(None),
            n => self.take(n as usize).map(Some),
        }
    }
}

/// Reads the records of an encoded batch in place.
///
/// ```
/// use fjord_sdk::{BatchReader, BatchWriter, Record};
/// let mut w = BatchWriter::new();
/// w.emit(&Record::new("a"));
/// w.emit(&Record::new("b"));
/// let bytes = w.finish();
/// let values: Vec<_> = BatchReader::new(&bytes)?
///     .map(|r| r.map(|r| r.value_str().unwrap_or("").to_owned()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(values, ["a", "b"]);
/// # Ok::<(), fjord_sdk::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchReader<'a> {
    cur: Cursor<'a>,
    left: u32,
}

impl<'a> BatchReader<'a> {
    pub fn new(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut cur = Cursor { buf };
        let left = cur.u32()?;
        // Every record takes at least its fixed part: a count larger than the
        // bytes can hold is a lie, whatever follows.
        if left as usize > cur.buf.len() / (4 + FIXED_BODY) {
            return Err(DecodeError("record count larger than the batch"));
        }
        Ok(BatchReader { cur, left })
    }

    /// Records not yet read.
    pub fn remaining(&self) -> u32 {
        self.left
    }

    fn read_record(&mut self) -> Result<RecordRef<'a>, DecodeError> {
        let before = self.cur.buf;
        let size = self.cur.u32()? as usize;
        let body = self.cur.take(size)?;
        let raw = &before[..4 + size];
        let mut c = Cursor { buf: body };
        let timestamp = c.i64()?;
        let offset = c.i64()?;
        let partition = c.array().map(i32::from_le_bytes)?;
        let topic = c.str16()?;
        let key = c.bytes32()?;
        let value = c.bytes32()?;
        let header_count = c.u16()?;
        let headers = c.buf;
        for _ in 0..header_count {
            c.str16()?.ok_or(DecodeError("header without a name"))?;
            c.bytes32()?;
        }
        if !c.buf.is_empty() {
            return Err(DecodeError("bytes after the last header"));
        }
        Ok(RecordRef {
            raw,
            timestamp,
            offset,
            partition,
            topic,
            key,
            value,
            headers,
            header_count,
        })
    }
}

impl<'a> Iterator for BatchReader<'a> {
    type Item = Result<RecordRef<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return if self.cur.buf.is_empty() {
                None
            } else {
                Some(Err(DecodeError("bytes after the last record")))
            };
        }
        self.left -= 1;
        let r = self.read_record();
        if r.is_err() {
            self.left = 0;
            self.cur.buf = &[];
        }
        Some(r)
    }
}

/// Checks a whole batch and returns its record count.
pub fn validate(buf: &[u8]) -> Result<u32, DecodeError> {
    let reader = BatchReader::new(buf)?;
    let n = reader.remaining();
    for r in reader {
        r?;
    }
    Ok(n)
}

/// Builds an encoded batch: a plugin's output.
#[derive(Debug, Clone)]
pub struct BatchWriter {
    buf: Vec<u8>,
    count: u32,
}

impl Default for BatchWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// What a header list looks like to the writer.
trait HeaderSource {
    fn count(&self) -> usize;
    fn write(&self, w: &mut Vec<u8>);
}

impl HeaderSource for [Header] {
    fn count(&self) -> usize {
        self.len()
    }
    fn write(&self, w: &mut Vec<u8>) {
        for h in self {
            put_str16(w, Some(&h.name));
            put_bytes32(w, h.value.as_deref());
        }
    }
}

impl HeaderSource for RecordRef<'_> {
    fn count(&self) -> usize {
        self.header_count as usize
    }
    fn write(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(self.headers);
    }
}

fn put_str16(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        // A longer string cannot be represented; it is cut at a char boundary.
        Some(s) => {
            let mut end = s.len().min(NULL16 as usize - 1);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            w.extend_from_slice(&(end as u16).to_le_bytes());
            w.extend_from_slice(&s.as_bytes()[..end]);
        }
        None => w.extend_from_slice(&NULL16.to_le_bytes()),
    }
}

fn put_bytes32(w: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            w.extend_from_slice(&(b.len() as u32).to_le_bytes());
            w.extend_from_slice(b);
        }
        None => w.extend_from_slice(&NULL32.to_le_bytes()),
    }
}

impl BatchWriter {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A writer whose buffer holds `bytes` before it grows.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(4));
        buf.extend_from_slice(&0u32.to_le_bytes());
        BatchWriter { buf, count: 0 }
    }

    /// Records written so far.
    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[allow(clippy::too_many_arguments)]
    fn write<H: HeaderSource + ?Sized>(
        &mut self,
        timestamp: i64,
        offset: i64,
        partition: i32,
        topic: Option<&str>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &H,
    ) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&timestamp.to_le_bytes());
        self.buf.extend_from_slice(&offset.to_le_bytes());
        self.buf.extend_from_slice(&partition.to_le_bytes());
        put_str16(&mut self.buf, topic);
        put_bytes32(&mut self.buf, key);
        put_bytes32(&mut self.buf, value);
        let n = headers.count().min(NULL16 as usize) as u16;
        self.buf.extend_from_slice(&n.to_le_bytes());
        headers.write(&mut self.buf);
        let size = (self.buf.len() - start - 4) as u32;
        self.buf[start..start + 4].copy_from_slice(&size.to_le_bytes());
        self.count += 1;
    }

    /// Writes an owned record.
    pub fn emit(&mut self, r: &Record) {
        self.write(
            r.timestamp,
            r.offset,
            r.partition,
            r.topic.as_deref(),
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers[..],
        );
    }

    /// Writes a new record from its parts, without building a [`Record`]
    /// (for sources emitting many small records).
    pub fn emit_parts(&mut self, timestamp: i64, key: Option<&[u8]>, value: &[u8]) {
        self.write(timestamp, 0, 0, None, key, Some(value), &[][..]);
    }

    /// Writes an input record unchanged (one copy, no re-encoding).
    pub fn forward(&mut self, r: &RecordRef<'_>) {
        self.buf.extend_from_slice(r.raw);
        self.count += 1;
    }

    /// Writes an input record with a new value, keeping key, headers,
    /// timestamp and topic.
    pub fn emit_with_value(&mut self, r: &RecordRef<'_>, value: Option<&[u8]>) {
        self.write(r.timestamp, r.offset, r.partition, r.topic, r.key, value, r);
    }

    /// Writes an input record routed to `topic`.
    pub fn forward_to(&mut self, r: &RecordRef<'_>, topic: &str) {
        self.write(
            r.timestamp,
            r.offset,
            r.partition,
            Some(topic),
            r.key,
            r.value,
            r,
        );
    }

    /// The encoded batch.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf[..4].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}

/// Encodes owned records as a batch.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut w = BatchWriter::with_capacity(
        records
            .iter()
            .map(|r| 64 + r.value.as_ref().map_or(0, Vec::len))
            .sum(),
    );
    for r in records {
        w.emit(r);
    }
    w.finish()
}

/// Decodes a batch into owned records.
pub fn decode(buf: &[u8]) -> Result<Vec<Record>, DecodeError> {
    BatchReader::new(buf)?
        .map(|r| r.map(|r| r.to_record()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::new("v1")
                .with_key("k1")
                .with_header("h", "x")
                .with_timestamp(7),
            Record {
                key: None,
                value: None,
                offset: 9,
                partition: 3,
                ..Record::default()
            },
            Record::new("").to_topic("other"),
        ]
    }

    #[test]
    fn roundtrip() {
        let records = sample();
        assert_eq!(decode(&encode(&records)).unwrap(), records);
    }

    #[test]
    fn forward_and_replace_value_keep_the_rest() {
        let input = encode(&sample());
        let mut w = BatchWriter::new();
        for r in BatchReader::new(&input).unwrap() {
            let r = r.unwrap();
            w.forward(&r);
            w.emit_with_value(&r, Some(b"new"));
            w.forward_to(&r, "t2");
        }
        let out = decode(&w.finish()).unwrap();
        assert_eq!(out.len(), 9);
        assert_eq!(out[0], sample()[0]);
        assert_eq!(out[1].value.as_deref(), Some(&b"new"[..]));
        assert_eq!(out[1].headers, sample()[0].headers);
        assert_eq!(out[2].topic.as_deref(), Some("t2"));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let input = encode(&sample());
        for len in 0..input.len() {
            assert!(
                validate(&input[..len]).is_err(),
                "prefix of {len} bytes accepted"
            );
        }
        assert_eq!(validate(&input), Ok(3));
    }

    #[test]
    fn a_lying_count_is_refused() {
        let mut input = encode(&sample());
        input[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(BatchReader::new(&input).is_err());
    }
}
