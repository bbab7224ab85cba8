//! The records inside a batch: finding each record's fields (length,
//! timestamp and offset deltas, key, value, headers) in the decompressed
//! records section, without copying or allocating per record.
//!
//! This is the log's one record parser. The validator of produced batches
//! checks every record through it, the cleaner reads keys and rewrites
//! records through it, and [`decode_batch`] lends it to every other reader
//! (the broker's offsets loader and ListOffsets, pipelines, the console),
//! always with the decompression cap of [`DecodeLimits`], so no reader can
//! be made to inflate a stored batch without bound.

use std::borrow::Cow;
use std::ops::Range;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::codec::Decompressor;
use crate::{LogConfig, LogError};

/// Default of `message.max.decompressed.bytes`: the most bytes one batch's
/// records may decompress to, on produce and on every read. 64 MiB is 64
/// times Kafka's default `max.message.bytes`, far above what real records
/// compress by, and small enough that a few at once do not hurt a broker.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Bounds a reader decodes stored batches with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most bytes a batch's records may decompress to; more is an error
    /// found after reading one byte past it.
    pub max_decompressed_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
        }
    }
}

impl DecodeLimits {
    /// The limits of a log with `config`.
    pub fn of(config: &LogConfig) -> Self {
        DecodeLimits {
            max_decompressed_bytes: config.max_decompressed_bytes,
        }
    }
}

/// One batch decoded: its header and its records, borrowed from the batch
/// (uncompressed) or from the decompressed records it owns.
#[derive(Debug)]
pub struct DecodedBatch<'a> {
    header: BatchHeader,
    payload: Cow<'a, [u8]>,
    records: Vec<RawRecord>,
}

/// One record of a [`DecodedBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (the batch's max timestamp under LogAppendTime).
    pub timestamp: i64,
    /// Its key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// Its value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// Its headers, name and value (`None` when null), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        let section = self.headers;
        let mut p = 0;
        // The section was checked when the batch was decoded.
        let count = get_varint(section, &mut p).unwrap_or(0).max(0);
        (0..count).map_while(move |_| {
            let name = bytes_field(section, &mut p).ok()??;
            let value = bytes_field(section, &mut p).ok()?;
            Some((name, value))
        })
    }
}

impl<'a> DecodedBatch<'a> {
    /// The batch header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no record (the cleaner may leave such).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in offset order.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        let log_append_time = self.header.attributes & 0x08 != 0;
        self.records.iter().map(move |r| Record {
            offset: r.offset(&self.header),
            timestamp: if log_append_time {
                self.header.max_timestamp
            } else {
                self.header.base_timestamp.wrapping_add(r.ts_delta)
            },
            key: r.key(&self.payload),
            value: r.value.clone().map(|v| &self.payload[v]),
            headers: &self.payload[r.headers.clone()],
        })
    }
}

/// Decodes one stored batch (header included, and nothing after it):
/// checks its header and CRC-32C, decompresses its records within
/// `limits`, and finds every record's fields. Any fault is an error, never
/// a panic, and memory stays within the limits whatever the batch claims.
///
/// ```
/// # use fjord_log::{DecodeLimits, decode_batch};
/// assert!(decode_batch(&[0u8; 10], DecodeLimits::default()).is_err());
/// ```
pub fn decode_batch(batch: &[u8], limits: DecodeLimits) -> Result<DecodedBatch<'_>, LogError> {
    let header = batch::validate(batch)?;
    if batch.len() != header.size() {
        return Err(LogError::corrupt(format!(
            "{} bytes follow the batch at {}",
            batch.len() - header.size(),
            header.base_offset
        )));
    }
    let mut decompressor = Decompressor::default();
    let (payload, records) = {
        let records = decode_records(&header, batch, &mut decompressor, limits)?;
        let payload_is_batch = std::ptr::eq(records.payload.as_ptr(), batch[HEADER_LEN..].as_ptr());
        (payload_is_batch, records.records)
    };
    let payload = if payload {
        Cow::Borrowed(&batch[HEADER_LEN..])
    } else {
        Cow::Owned(decompressor.take_buffer())
    };
    Ok(DecodedBatch {
        header,
        payload,
        records,
    })
}

/// One record inside a batch's (decompressed) records payload.
#[derive(Debug)]
pub(crate) struct RawRecord {
    /// The whole record, its length varint included.
    pub(crate) range: Range<usize>,
    /// Where the timestamp delta starts and ends.
    ts_range: Range<usize>,
    ts_delta: i64,
    pub(crate) offset_delta: i64,
    pub(crate) key: Option<Range<usize>>,
    pub(crate) value: Option<Range<usize>>,
    /// The headers section: count, then each header.
    headers: Range<usize>,
}

impl RawRecord {
    pub(crate) fn offset(&self, header: &BatchHeader) -> i64 {
        header.base_offset.saturating_add(self.offset_delta)
    }

    /// The timestamp under CreateTime (wrapping, as Kafka computes it).
    pub(crate) fn create_time(&self, header: &BatchHeader) -> i64 {
        header.base_timestamp.wrapping_add(self.ts_delta)
    }

    pub(crate) fn key<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        self.key.clone().map(|r| &payload[r])
    }

    /// Writes the record with its timestamp delta increased by `shift`.
    pub(crate) fn write_rebased(&self, payload: &[u8], shift: i64, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(self.range.len() + 8);
        body.push(payload[self.ts_range.start - 1]); // attributes
        // Wrapping, as the absolute timestamp (base + delta) is.
        put_varlong(&mut body, self.ts_delta.wrapping_add(shift));
        body.extend_from_slice(&payload[self.ts_range.end..self.range.end]);
        put_varlong(out, body.len() as i64);
        out.extend_from_slice(&body);
    }
}

pub(crate) struct Records<'a> {
    pub(crate) payload: &'a [u8],
    records: Vec<RawRecord>,
}

impl Records<'_> {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, RawRecord> {
        self.records.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

/// Decompresses a stored batch's records within `limits` and finds each
/// record's fields: they must be exactly `records_count` records filling
/// the section.
pub(crate) fn decode_records<'a>(
    header: &BatchHeader,
    bytes: &'a [u8],
    decompressor: &'a mut Decompressor,
    limits: DecodeLimits,
) -> Result<Records<'a>, LogError> {
    let payload = decompressor.records(
        header.codec(),
        &bytes[HEADER_LEN..header.size()],
        limits.max_decompressed_bytes,
    )?;
    // The count is the sender's word: no more slots than the bytes could
    // hold (a record takes at least 7).
    let mut records =
        Vec::with_capacity((header.records_count.max(0) as usize).min(payload.len() / 7 + 1));
    for (i, record) in parse_records(payload, header.last_offset_delta).enumerate() {
        let record = record.map_err(|reason| {
            LogError::invalid(format!(
                "record {i} of the batch at {} does not parse: {reason}",
                header.base_offset
            ))
        })?;
        records.push(record);
    }
    if records.len() != header.records_count as usize {
        return Err(LogError::invalid(format!(
            "the batch at {} claims {} records but holds {}",
            header.base_offset,
            header.records_count,
            records.len()
        )));
    }
    Ok(Records { payload, records })
}

/// The records of a decompressed records section, one after the other
/// until its end (not until the count the header claims: a lying count
/// costs nothing). A record that does not parse ends the walk with its
/// reason.
pub(crate) fn parse_records(
    payload: &[u8],
    last_offset_delta: i32,
) -> impl Iterator<Item = Result<RawRecord, &'static str>> + '_ {
    let mut pos = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= payload.len() {
            return None;
        }
        let record = parse_record(payload, pos, last_offset_delta);
        match &record {
            Ok(r) => pos = r.range.end,
            Err(_) => failed = true,
        }
        Some(record)
    })
}

/// Parses the record starting at `payload[pos]`: every length and varint
/// must lie inside the record, and the record inside the payload.
fn parse_record(
    payload: &[u8],
    pos: usize,
    last_offset_delta: i32,
) -> Result<RawRecord, &'static str> {
    let mut p = pos;
    let len = get_varint(payload, &mut p).ok_or("bad record length varint")?;
    let start = p;
    let end = usize::try_from(len)
        .ok()
        .filter(|len| *len > 0)
        .and_then(|len| start.checked_add(len))
        .filter(|end| *end <= payload.len())
        .ok_or("the record length does not fit the batch")?;
    let record = &payload[..end];
    p = start + 1; // attributes
    let ts_start = p;
    let ts_delta = get_varlong(record, &mut p).ok_or("bad timestamp delta varint")?;
    let ts_end = p;
    let offset_delta = get_varint(record, &mut p).ok_or("bad offset delta varint")?;
    if !(0..=last_offset_delta).contains(&offset_delta) {
        return Err("the offset delta is outside the batch");
    }
    let key = bytes_field(record, &mut p)?.map(|k| range_of(payload, k));
    let value = bytes_field(record, &mut p)?.map(|v| range_of(payload, v));
    let headers_start = p;
    let count = get_varint(record, &mut p).ok_or("bad header count varint")?;
    if count < 0 {
        return Err("negative header count");
    }
    for _ in 0..count {
        // Each header takes at least two bytes: the loop ends with the record.
        if bytes_field(record, &mut p)?.is_none() {
            return Err("a header without a name");
        }
        bytes_field(record, &mut p)?;
    }
    if p != end {
        return Err("bytes left after the record's headers");
    }
    Ok(RawRecord {
        range: pos..end,
        ts_range: ts_start..ts_end,
        ts_delta,
        offset_delta: i64::from(offset_delta),
        key,
        value,
        headers: headers_start..end,
    })
}

/// A length-prefixed field at `buf[*pos]`: `None` for length -1 (null).
fn bytes_field<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, &'static str> {
    let len = get_varint(buf, pos).ok_or("bad length varint")?;
    if len == -1 {
        return Ok(None);
    }
    let field = usize::try_from(len)
        .ok()
        .and_then(|len| pos.checked_add(len))
        .filter(|end| *end <= buf.len())
        .map(|end| &buf[*pos..end])
        .ok_or("a field length does not fit the record")?;
    *pos += field.len();
    Ok(Some(field))
}

fn range_of(payload: &[u8], field: &[u8]) -> Range<usize> {
    let start = field.as_ptr() as usize - payload.as_ptr() as usize;
    start..start + field.len()
}

/// A zigzag varint of at most 32 bits, as Kafka reads one (5 bytes at most).
fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        if i == 4 && byte > 0x0f {
            return None;
        }
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    None
}

fn get_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlong_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i64::MAX,
            i64::MIN,
            1 << 40,
        ] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            let mut pos = 0;
            assert_eq!(get_varlong(&buf, &mut pos), Some(v));
            assert_eq!(pos, buf.len());
        }
    }

    /// 32-bit varints read back; wider values (a record length of 2^40)
    /// are refused, as Kafka's reader refuses them.
    #[test]
    fn varints_are_32_bits() {
        for v in [0i32, 1, -1, 300, -300, i32::MAX, i32::MIN] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, i64::from(v));
            let mut pos = 0;
            assert_eq!(get_varint(&buf, &mut pos), Some(v), "{v}");
            assert_eq!(pos, buf.len());
        }
        for v in [1i64 << 40, i64::from(i32::MAX) + 1, i64::from(i32::MIN) - 1] {
            let mut buf = Vec::new();
            put_varlong(&mut buf, v);
            assert_eq!(get_varint(&buf, &mut 0), None, "{v}");
        }
    }
}
