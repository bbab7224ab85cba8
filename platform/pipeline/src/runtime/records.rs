//! Records between the log and the plugins: stored Kafka batches decoded
//! into the SDK's [`Record`], and records encoded into one batch to append.

use bytes::Bytes;
use fjord_broker::Partition;
use fjord_log::{BatchBuilder, LogError};
use fjord_sdk::{Header, Record};

use super::error::PipelineError;

/// What one read of a partition gave.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Records at or after the asked offset, in offset order.
    pub records: Vec<Record>,
    /// Where the next read starts: after the last batch read, which may be
    /// past the last record (compacted batches lose records).
    pub next: i64,
    /// Stored batches that did not decode within the bounds, passed over:
    /// `next` is past them. Readers that must not lose records (pipeline
    /// tasks) turn the first into an error with [`Read::strict`].
    pub skipped: Vec<SkippedBatch>,
}

/// A stored batch a read passed over, and why.
#[derive(Debug, Clone)]
pub struct SkippedBatch {
    pub topic: String,
    pub partition: i32,
    /// Its first offset.
    pub offset: i64,
    /// The offset after its last.
    pub next_offset: i64,
    pub error: String,
}

impl std::fmt::Display for SkippedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}: undecodable batch at offset {}: {}",
            self.topic, self.partition, self.offset, self.error
        )
    }
}

impl std::error::Error for SkippedBatch {}

impl Read {
    /// The read, or the first skipped batch as an error.
    pub fn strict(mut self) -> Result<Read, SkippedBatch> {
        if self.skipped.is_empty() {
            Ok(self)
        } else {
            Err(self.skipped.swap_remove(0))
        }
    }
}

/// Reads up to about `max_bytes` of `partition` from `offset`, passing
/// over (and listing in [`Read::skipped`]) any stored batch that does not
/// decode within the bounds. Pipelines read committed, as Kafka Streams
/// and librdkafka consumers do by default: up to the last stable offset,
/// without the records of aborted transactions or the markers.
pub(crate) fn read(
    partition: &Partition,
    offset: i64,
    max_bytes: usize,
) -> Result<Read, PipelineError> {
    let (read, aborted) = partition
        .read_committed(offset, max_bytes)
        .map_err(|source| PipelineError::Read {
            topic: partition.topic().to_owned(),
            partition: partition.index(),
            source,
        })?;
    let mut out = Read {
        next: offset,
        ..Read::default()
    };
    // Compaction or retention moved the start past us: go on from there.
    if offset < read.log_start_offset {
        out.next = read.log_start_offset;
        return Ok(out);
    }
    let Some(slice) = read.slice else {
        return Ok(out);
    };
    let bytes = slice.bytes().map_err(PipelineError::ReadBytes)?;
    // Bounded like every reader of records: a stored batch that inflates
    // past the cap (or does not decode) is passed over with its place,
    // never the process.
    let limits = fjord_log::DecodeLimits::of(&partition.log().config());
    let mut committed = fjord_log::CommittedFilter::new(aborted);
    let mut at = 0;
    while let Ok(header) = fjord_log::BatchHeader::parse(&bytes[at..]) {
        let skip = |error: String| SkippedBatch {
            topic: partition.topic().to_owned(),
            partition: partition.index(),
            offset: header.base_offset,
            next_offset: header.next_offset(),
            error,
        };
        let Some(batch) = bytes.get(at..at + header.size()) else {
            // Its stated size runs past what the log returned.
            out.skipped.push(skip("cut short".into()));
            out.next = out.next.max(header.next_offset());
            break;
        };
        at += header.size();
        if !committed.keeps(&header, batch) {
            out.next = out.next.max(header.next_offset());
            continue;
        }
        let batch = match fjord_log::decode_batch(batch, limits) {
            Ok(batch) => batch,
            Err(e) => {
                out.skipped.push(skip(e.to_string()));
                out.next = out.next.max(header.next_offset());
                continue;
            }
        };
        out.next = out.next.max(header.next_offset());
        for r in batch.records() {
            if r.offset < offset {
                continue;
            }
            out.records.push(Record {
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                headers: r
                    .headers()
                    .map(|(name, value)| Header {
                        name: String::from_utf8_lossy(name).into_owned(),
                        value: value.map(<[u8]>::to_vec),
                    })
                    .collect(),
                timestamp: r.timestamp,
                offset: r.offset,
                partition: partition.index(),
                topic: None,
            });
        }
    }
    Ok(out)
}

/// One uncompressed v2 batch holding `records` (offsets are assigned by the
/// append).
pub(crate) fn encode<'a>(
    records: impl IntoIterator<Item = &'a Record>,
) -> Result<Vec<u8>, LogError> {
    builder(records).build()
}

/// The builder of [`encode`]'s batch (a transaction sets its producer).
pub(crate) fn builder<'a>(records: impl IntoIterator<Item = &'a Record>) -> BatchBuilder {
    let records = records.into_iter();
    let mut batch = BatchBuilder::with_capacity(records.size_hint().0);
    for r in records {
        batch.push_with_headers(
            r.timestamp,
            r.key.as_deref().map(Bytes::copy_from_slice),
            r.value.as_deref().map(Bytes::copy_from_slice),
            r.headers.iter().map(|h| {
                (
                    h.name.clone(),
                    h.value.as_deref().map(Bytes::copy_from_slice),
                )
            }),
        );
    }
    batch
}
