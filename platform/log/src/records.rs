//! The records inside a batch: finding each record's fields (length,
//! timestamp and offset deltas, key, whether the value is null) in the
//! decompressed records section, without copying or allocating per record.
//!
//! This is the log's one record parser: the cleaner reads keys and rewrites
//! records through it, and [`visit_keys`] lends it to the broker (the key
//! check of compacted topics). Full decoding into owned records, for
//! clients and tools, is the `kafka-protocol` crate's job.

use crate::LogError;
use crate::batch::{BatchHeader, HEADER_LEN};
use crate::codec::Decompressor;

/// Calls `visit` with the offset and key of each record of `batch`, one
/// whole batch in the v2 format (header included; its CRC is not checked
/// here), decompressing its records section as needed. Control batches
/// are visited too (their records have keys).
///
/// ```
/// # use fjord_log::visit_keys;
/// // A batch that does not parse is an error, not a panic.
/// assert!(visit_keys(&[0u8; 10], |_, _| {}).is_err());
/// ```
pub fn visit_keys(batch: &[u8], mut visit: impl FnMut(i64, Option<&[u8]>)) -> Result<(), LogError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() < header.size() {
        return Err(LogError::corrupt(format!(
            "the batch at {} is cut short ({} of {} bytes)",
            header.base_offset,
            batch.len(),
            header.size()
        )));
    }
    let mut decompressor = Decompressor::default();
    let records = decode_records(&header, batch, &mut decompressor)?;
    for record in records.iter() {
        visit(record.offset(&header), record.key(records.payload));
    }
    Ok(())
}

/// One record inside a batch's (decompressed) records payload.
pub(crate) struct RawRecord {
    pub(crate) range: std::ops::Range<usize>,
    /// Where the timestamp delta starts and ends.
    ts_range: std::ops::Range<usize>,
    ts_delta: i64,
    offset_delta: i64,
    key: Option<std::ops::Range<usize>>,
    pub(crate) value_null: bool,
}

impl RawRecord {
    pub(crate) fn offset(&self, header: &BatchHeader) -> i64 {
        header.base_offset.saturating_add(self.offset_delta)
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

/// Decompresses a batch's records and finds each record's fields.
pub(crate) fn decode_records<'a>(
    header: &BatchHeader,
    bytes: &'a [u8],
    decompressor: &'a mut Decompressor,
) -> Result<Records<'a>, LogError> {
    let payload = decompressor.records(header.codec(), &bytes[HEADER_LEN..header.size()])?;
    // The count is the sender's word: no more slots than the bytes could
    // hold (a record takes at least 7).
    let mut records =
        Vec::with_capacity((header.records_count.max(0) as usize).min(payload.len() / 7 + 1));
    let mut pos = 0usize;
    let bad = || {
        LogError::corrupt(format!(
            "a record of the batch at {} does not parse",
            header.base_offset
        ))
    };
    for _ in 0..header.records_count {
        let len_start = pos;
        let len = get_varlong(payload, &mut pos).ok_or_else(bad)?;
        let start = pos;
        let end = start
            .checked_add(usize::try_from(len).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        if end > payload.len() || start >= end {
            return Err(bad());
        }
        let mut p = start + 1; // attributes
        let ts_start = p;
        let ts_delta = get_varlong(&payload[..end], &mut p).ok_or_else(bad)?;
        let ts_end = p;
        let offset_delta = get_varlong(&payload[..end], &mut p).ok_or_else(bad)?;
        if !(0..=i64::from(header.last_offset_delta)).contains(&offset_delta) {
            return Err(bad());
        }
        // The end of a field `len` bytes long starting at `p`, inside the record.
        let field_end = |p: usize, len: i64| {
            usize::try_from(len)
                .ok()
                .and_then(|len| p.checked_add(len))
                .filter(|e| *e <= end)
                .ok_or_else(bad)
        };
        let key_len = get_varlong(&payload[..end], &mut p).ok_or_else(bad)?;
        let key = if key_len < 0 {
            None
        } else {
            let k = p..field_end(p, key_len)?;
            p = k.end;
            Some(k)
        };
        let value_len = get_varlong(&payload[..end], &mut p).ok_or_else(bad)?;
        if value_len >= 0 {
            field_end(p, value_len)?;
        }
        records.push(RawRecord {
            range: len_start..end,
            ts_range: ts_start..ts_end,
            ts_delta,
            offset_delta,
            key,
            value_null: value_len < 0,
        });
        pos = end;
    }
    if pos != payload.len() {
        return Err(LogError::corrupt(format!(
            "the batch at {} has {} bytes after its {} records",
            header.base_offset,
            payload.len() - pos,
            header.records_count
        )));
    }
    Ok(Records { payload, records })
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

fn put_varlong(out: &mut Vec<u8>, value: i64) {
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
}
