//! Reading the request versions decoded by hand (`legacy_*`: versions
//! Kafka 4 removed and the crate's schemas no longer hold). Every read is
//! checked against the bytes left, and every array count against the bytes
//! after it and `request.max.array.elements` before anything is allocated
//! for it, so a hostile frame is refused with [`DecodeError`], never a
//! panic nor a large allocation.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::request::DecodeError;

/// A frame being read: what is left of it, and the elements built so far.
pub(crate) struct WireReader {
    buf: Bytes,
    api: ApiKey,
    version: i16,
    used: usize,
    max_elements: usize,
}

impl WireReader {
    /// Reads a frame's request header (v1, as every one of these versions
    /// has) and returns it with a reader of the body.
    pub(crate) fn new(
        frame: Bytes,
        api: ApiKey,
        version: i16,
        max_elements: usize,
    ) -> Result<(RequestHeader, WireReader), DecodeError> {
        let mut buf = frame;
        let mut reader = WireReader {
            buf: Bytes::new(),
            api,
            version,
            used: 0,
            max_elements,
        };
        let header = RequestHeader::decode(&mut buf, 1)
            .map_err(|e| reader.malformed(format!("header: {e}")))?;
        reader.buf = buf;
        Ok((header, reader))
    }

    /// Array elements built so far.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    fn malformed(&self, reason: String) -> DecodeError {
        DecodeError::Malformed {
            api: self.api,
            version: self.version,
            reason,
        }
    }

    fn need(&self, n: usize, what: &str) -> Result<(), DecodeError> {
        if self.buf.remaining() < n {
            return Err(self.malformed(format!("{what}: the frame ends")));
        }
        Ok(())
    }

    pub(crate) fn i8(&mut self, what: &str) -> Result<i8, DecodeError> {
        self.need(1, what)?;
        Ok(self.buf.get_i8())
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        self.need(4, what)?;
        Ok(self.buf.get_i32())
    }

    pub(crate) fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        self.need(8, what)?;
        Ok(self.buf.get_i64())
    }

    /// A nullable string: i16 length (-1 for null), UTF-8.
    pub(crate) fn nullable_string(&mut self, what: &str) -> Result<Option<StrBytes>, DecodeError> {
        self.need(2, what)?;
        let len = self.buf.get_i16();
        if len == -1 {
            return Ok(None);
        }
        let len =
            usize::try_from(len).map_err(|_| self.malformed(format!("{what}: length {len}")))?;
        self.need(len, what)?;
        StrBytes::from_utf8(self.buf.split_to(len))
            .map(Some)
            .map_err(|e| self.malformed(format!("{what}: {e}")))
    }

    /// A non-null string.
    pub(crate) fn string(&mut self, what: &str) -> Result<StrBytes, DecodeError> {
        self.nullable_string(what)?
            .ok_or_else(|| self.malformed(format!("{what}: null")))
    }

    /// A nullable array's count (-1 for null), each element at least
    /// `min_bytes` on the wire.
    pub(crate) fn nullable_count(
        &mut self,
        min_bytes: usize,
        what: &str,
    ) -> Result<Option<usize>, DecodeError> {
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| self.malformed(format!("{what}: count {n}")))?;
        if n > self.buf.remaining() / min_bytes.max(1) {
            return Err(self.malformed(format!(
                "{what}: {n} elements in {} bytes",
                self.buf.remaining()
            )));
        }
        self.used = self.used.saturating_add(n);
        if self.used > self.max_elements {
            return Err(DecodeError::TooManyElements {
                api: self.api,
                version: self.version,
                limit: self.max_elements,
            });
        }
        Ok(Some(n))
    }

    /// A non-null array's count.
    pub(crate) fn count(&mut self, min_bytes: usize, what: &str) -> Result<usize, DecodeError> {
        self.nullable_count(min_bytes, what)?
            .ok_or_else(|| self.malformed(format!("{what}: null")))
    }
}
