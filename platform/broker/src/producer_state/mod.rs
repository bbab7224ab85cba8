//! Idempotent producers: producer id allocation (InitProducerId) and, per
//! partition, the sequence state that turns a retried batch into a
//! duplicate answered with its original offset, and a gap into
//! OUT_OF_ORDER_SEQUENCE_NUMBER — Kafka's rules, with the last five batches
//! of each producer kept (librdkafka and the Java client keep at most five
//! requests in flight with idempotence).
//!
//! The state survives restarts: a clean shutdown writes a snapshot of it
//! per partition (`snapshot`), and the first idempotent batch after a start
//! loads that snapshot and scans only the batches after it — or, without a
//! usable snapshot (after a crash), rebuilds the state from every stored
//! batch header (see [`ProducerStates::rebuild`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};

pub(crate) mod snapshot;

use fjord_log::{BatchHeader, Log};

/// Batches remembered per producer and partition.
pub(crate) const KEPT_BATCHES: usize = 5;

/// Hands out producer ids. Ids must not repeat across restarts and there
/// is no controller to hand out blocks yet, so they start at the start
/// time in ms × 1000: a restart more than a millisecond later begins above
/// anything a previous run could have reached unless it allocated over a
/// thousand ids per millisecond of its uptime.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicI64,
}

impl ProducerIds {
    pub(crate) fn new(now_ms: i64) -> Self {
        ProducerIds {
            next: AtomicI64::new(now_ms.max(1).saturating_mul(1000)),
        }
    }

    pub(crate) fn allocate(&self) -> i64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Why an idempotent batch is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SequenceError {
    /// The batch's epoch is older than the producer's current one.
    #[error("producer {producer_id} epoch {epoch} is older than {current}")]
    InvalidEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// A gap or reordering in the sequence.
    #[error("producer {producer_id}: sequence {got}, expected {expected}")]
    OutOfOrder {
        producer_id: i64,
        got: i32,
        expected: i32,
    },
    /// No state for this producer and the batch does not start at 0.
    #[error("producer {producer_id} is unknown and its batch starts at sequence {got}")]
    UnknownProducer { producer_id: i64, got: i32 },
}

/// What to do with a batch that passed the checks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: append it.
    Append,
    /// Already stored (a retry): answer success with this base offset.
    Duplicate(i64),
}

#[derive(Debug, Clone, Copy)]
struct StoredBatch {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    batches: VecDeque<StoredBatch>,
}

/// The last sequence of a batch: sequences wrap from i32::MAX to 0.
fn last_sequence(header: &BatchHeader) -> i32 {
    let last = i64::from(header.base_sequence) + i64::from(header.last_offset_delta);
    (last % (i64::from(i32::MAX) + 1)) as i32
}

fn next_sequence(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// The idempotent producers of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, Producer>,
}

impl ProducerStates {
    /// Checks an idempotent batch (producer id ≥ 0) against the state.
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<Verdict, SequenceError> {
        let producer_id = header.producer_id;
        let (epoch, first) = (header.producer_epoch, header.base_sequence);
        let Some(producer) = self.producers.get(&producer_id) else {
            return if first == 0 {
                Ok(Verdict::Append)
            } else {
                Err(SequenceError::UnknownProducer {
                    producer_id,
                    got: first,
                })
            };
        };
        if epoch < producer.epoch {
            return Err(SequenceError::InvalidEpoch {
                producer_id,
                epoch,
                current: producer.epoch,
            });
        }
        if epoch > producer.epoch {
            // A bumped epoch starts its sequences again at 0.
            return if first == 0 {
                Ok(Verdict::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id,
                    got: first,
                    expected: 0,
                })
            };
        }
        let last = last_sequence(header);
        if let Some(stored) = producer
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Verdict::Duplicate(stored.first_offset));
        }
        let expected = producer
            .batches
            .back()
            .map_or(0, |b| next_sequence(b.last_seq));
        if first == expected {
            Ok(Verdict::Append)
        } else {
            Err(SequenceError::OutOfOrder {
                producer_id,
                got: first,
                expected,
            })
        }
    }

    /// Records a stored idempotent batch whose first offset is
    /// `first_offset`.
    pub(crate) fn record(&mut self, header: &BatchHeader, first_offset: i64) {
        let producer = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != producer.epoch {
            producer.epoch = header.producer_epoch;
            producer.batches.clear();
        }
        producer.batches.push_back(StoredBatch {
            first_seq: header.base_sequence,
            last_seq: last_sequence(header),
            first_offset,
        });
        while producer.batches.len() > KEPT_BATCHES {
            producer.batches.pop_front();
        }
    }

    /// Rebuilds the state: from the partition's snapshot, if a usable one
    /// was left by a clean shutdown, plus the batches after it; otherwise
    /// from the headers of every stored batch that has a producer id.
    /// Reading stops at the first unreadable spot (logged): a partial state
    /// only risks a spurious OUT_OF_ORDER for a retry, not a duplicate,
    /// because the newest batches come last.
    pub(crate) fn rebuild(log: &Log) -> Self {
        let end = log.log_end_offset();
        let (mut states, mut next) = match snapshot::take(log.dir()) {
            // A snapshot from beyond today's end belongs to another history.
            Some((states, at)) if at <= end => (states, at.max(log.log_start_offset())),
            _ => (ProducerStates::default(), log.log_start_offset()),
        };
        while next < end {
            let bytes = match log.read(next, 1 << 20, end) {
                Ok(read) => match read.slice.map(|s| s.bytes()) {
                    Some(Ok(bytes)) => bytes,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "producer state rebuild: read failed");
                        break;
                    }
                    None => break,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "producer state rebuild: read failed");
                    break;
                }
            };
            let before = next;
            let mut at = 0;
            while at < bytes.len() {
                let Ok(header) = BatchHeader::parse(&bytes[at..]) else {
                    break;
                };
                if header.size() == 0 || at + header.size() > bytes.len() {
                    break;
                }
                if header.producer_id >= 0 && header.base_offset >= before {
                    states.record(&header, header.base_offset);
                }
                next = next.max(header.base_offset + i64::from(header.last_offset_delta) + 1);
                at += header.size();
            }
            if next == before {
                break;
            }
        }
        states
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::error::sequence_error_code;

    pub(crate) fn header(producer_id: i64, epoch: i16, first: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence: first,
            records_count: count,
        }
    }

    #[test]
    fn sequences_duplicates_gaps_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&header(7, 0, 0, 3)), Ok(Verdict::Append));
        s.record(&header(7, 0, 0, 3), 100);
        assert_eq!(s.check(&header(7, 0, 0, 3)), Ok(Verdict::Duplicate(100)));
        assert_eq!(
            s.check(&header(7, 0, 5, 1))
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
        assert_eq!(s.check(&header(7, 0, 3, 2)), Ok(Verdict::Append));
        s.record(&header(7, 0, 3, 2), 103);
        for i in 0..5 {
            s.record(&header(7, 0, 5 + i, 1), 105 + i64::from(i));
        }
        // The first two batches fell out of the window of five.
        assert_eq!(
            s.check(&header(7, 0, 0, 3))
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
        assert_eq!(s.check(&header(7, 0, 9, 1)), Ok(Verdict::Duplicate(109)));
        assert_eq!(
            s.check(&header(8, 0, 4, 1))
                .map_err(|e| sequence_error_code(&e)),
            Err(59)
        );
        assert_eq!(s.check(&header(7, 1, 0, 1)), Ok(Verdict::Append));
        s.record(&header(7, 1, 0, 1), 200);
        assert_eq!(
            s.check(&header(7, 0, 10, 1))
                .map_err(|e| sequence_error_code(&e)),
            Err(47)
        );
        assert_eq!(
            s.check(&header(7, 2, 3, 1))
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
    }

    #[test]
    fn sequences_wrap() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 1), 0);
        let mut h = header(1, 0, i32::MAX - 1, 3);
        assert_eq!(last_sequence(&h), 0);
        if let Some(b) = s.producers.entry(1).or_default().batches.back_mut() {
            b.last_seq = i32::MAX - 2;
        }
        assert_eq!(s.check(&h), Ok(Verdict::Append));
        s.record(&h, 10);
        h = header(1, 0, 1, 1);
        assert_eq!(s.check(&h), Ok(Verdict::Append));
    }
}
