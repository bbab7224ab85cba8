//! Idempotent producers: producer id allocation (InitProducerId) and, per
//! partition, the sequence state that turns a retried batch into a
//! duplicate answered with its original offset, and a gap into
//! OUT_OF_ORDER_SEQUENCE_NUMBER — Kafka's rules, with the last five batches
//! of each producer kept (librdkafka and the Java client keep at most five
//! requests in flight with idempotence).
//!
//! A producer's state on a partition is dropped once it has not written
//! there for `producer.id.expiration.ms` (as in Kafka), so producers that
//! come and go — or a client that asks InitProducerId in a loop — cannot
//! grow it without end: memory is bounded by the producers that wrote
//! within the window. Expired producers are swept at most once per
//! [`SWEEP_INTERVAL_MS`] of appends, and never answered from in between.
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

/// How often, at most, an appending partition looks for expired producers
/// (Kafka: `producer.id.expiration.check.interval.ms`, 10 minutes; ours is
/// shorter because the sweep is cheap and only runs on appends).
pub(crate) const SWEEP_INTERVAL_MS: i64 = 60_000;

/// The time now and how long a silent producer's state lives, for the
/// checks that expire it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    pub now_ms: i64,
    /// `producer.id.expiration.ms`.
    pub after_ms: i64,
}

impl Expiry {
    fn expired(&self, producer: &Producer) -> bool {
        self.now_ms.saturating_sub(producer.last_write_ms) >= self.after_ms
    }
}

/// Hands out producer ids. Ids must not repeat across restarts nor across
/// the brokers of a cluster, and there is no controller to hand out blocks
/// of them yet (Kafka's KIP-730), so an id is a sequence shifted left by
/// [`NODE_BITS`] with the issuing broker's `node.id` in the low bits: two
/// brokers never issue the same id, whenever they start. The sequence
/// starts at the start time in ms × 1000, so a restart more than a
/// millisecond later begins above anything a previous run could have
/// reached unless it allocated over a thousand ids per millisecond of its
/// uptime. (Ids stay below 2^62 until the year 2200 or so.)
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicI64,
    node: i64,
}

/// Low bits of a producer id that name the broker that issued it: node ids
/// are taken modulo 1 024 (a cluster whose node ids collide modulo 1 024
/// could issue one id twice; the broker warns at start).
pub(crate) const NODE_BITS: u32 = 10;

impl ProducerIds {
    pub(crate) fn new(now_ms: i64, node_id: i32) -> Self {
        if !(0..1 << NODE_BITS).contains(&node_id) {
            tracing::warn!(
                node_id,
                "node.id is 1024 or more: producer ids are unique across brokers only while node ids differ modulo 1024"
            );
        }
        ProducerIds {
            next: AtomicI64::new(now_ms.max(1).saturating_mul(1000)),
            node: i64::from(node_id) & ((1 << NODE_BITS) - 1),
        }
    }

    pub(crate) fn allocate(&self) -> i64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n << NODE_BITS) | self.node
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
    /// A non-transactional batch from a producer whose transaction is open
    /// on the partition (Kafka: INVALID_TXN_STATE).
    #[error(
        "producer {producer_id} has a transaction open here: its batches must be transactional"
    )]
    NotTransactional { producer_id: i64 },
    /// A transactional batch verified with the coordinator whose
    /// transaction ended on the partition before it was appended
    /// (KIP-890's verification guard; Kafka: INVALID_TXN_STATE).
    #[error("producer {producer_id}: the transaction ended here while its batch was verified")]
    NotVerified { producer_id: i64 },
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

#[derive(Debug)]
struct Producer {
    epoch: i16,
    /// The epoch of the transaction coordinator that wrote its last
    /// marker here, -1 before any.
    coordinator_epoch: i32,
    /// The largest timestamp of its last batch (or when its last marker
    /// was written), -1 before any.
    last_timestamp: i64,
    batches: VecDeque<StoredBatch>,
    /// When it last wrote here, by the broker's clock. State rebuilt from
    /// the log at a start counts as written then: Kafka takes the batches'
    /// timestamps, which a client sets, so replayed old data would expire
    /// at once and its retries be stored twice; this keeps it one more
    /// window instead.
    last_write_ms: i64,
}

impl Default for Producer {
    fn default() -> Self {
        Producer {
            epoch: 0,
            coordinator_epoch: -1,
            last_timestamp: -1,
            batches: VecDeque::new(),
            last_write_ms: 0,
        }
    }
}

/// One producer's state on a partition, as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    /// Sequence of its last stored record, -1 when none (after a marker
    /// bumped its epoch).
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
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
    /// No sweep for expired producers before this time.
    next_sweep_ms: i64,
}

impl ProducerStates {
    /// Checks an idempotent batch (producer id ≥ 0) against the state; an
    /// expired producer is unknown.
    pub(crate) fn check(
        &self,
        header: &BatchHeader,
        expiry: Expiry,
    ) -> Result<Verdict, SequenceError> {
        let producer_id = header.producer_id;
        let (epoch, first) = (header.producer_epoch, header.base_sequence);
        let known = self
            .producers
            .get(&producer_id)
            .filter(|p| !expiry.expired(p));
        let Some(producer) = known else {
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

    /// Records a batch appended now whose first offset is `first_offset`,
    /// and sweeps expired producers when a sweep is due.
    pub(crate) fn record(&mut self, header: &BatchHeader, first_offset: i64, expiry: Expiry) {
        if expiry.now_ms >= self.next_sweep_ms {
            self.producers.retain(|_, p| !expiry.expired(p));
            self.next_sweep_ms = expiry.now_ms.saturating_add(SWEEP_INTERVAL_MS);
        } else if self
            .producers
            .get(&header.producer_id)
            .is_some_and(|p| expiry.expired(p))
        {
            // Expired but not swept yet: it starts over, as `check` said.
            self.producers.remove(&header.producer_id);
        }
        self.remember(header, first_offset, expiry.now_ms);
    }

    /// Checks a transaction marker of `producer_id` in `epoch` against
    /// the state: a marker of an epoch older than the producer's is
    /// refused (a zombie coordinator's, or a fenced producer's), as
    /// Kafka's `ProducerAppendInfo.appendEndTxnMarker`.
    pub(crate) fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), SequenceError> {
        match self.producers.get(&producer_id) {
            Some(p) if epoch < p.epoch => Err(SequenceError::InvalidEpoch {
                producer_id,
                epoch,
                current: p.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records a transaction marker written now: the producer's epoch
    /// becomes the marker's (later batches of an older epoch are refused;
    /// a new epoch starts its sequences at 0) and its coordinator epoch is
    /// kept.
    pub(crate) fn mark(
        &mut self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        written_ms: i64,
    ) {
        let producer = self.producers.entry(producer_id).or_default();
        if epoch != producer.epoch {
            producer.epoch = epoch;
            producer.batches.clear();
        }
        producer.coordinator_epoch = coordinator_epoch;
        producer.last_timestamp = written_ms;
        producer.last_write_ms = producer.last_write_ms.max(written_ms);
    }

    /// The producers with state here (DescribeProducers), by id.
    pub(crate) fn describe(&self) -> Vec<ProducerView> {
        let mut views: Vec<ProducerView> = self
            .producers
            .iter()
            .map(|(&producer_id, p)| ProducerView {
                producer_id,
                epoch: p.epoch,
                last_sequence: p.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: p.last_timestamp,
                coordinator_epoch: p.coordinator_epoch,
            })
            .collect();
        views.sort_unstable_by_key(|v| v.producer_id);
        views
    }

    /// The number of producers with state here (expired ones not yet
    /// swept included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }

    fn remember(&mut self, header: &BatchHeader, first_offset: i64, written_ms: i64) {
        let producer = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != producer.epoch {
            producer.epoch = header.producer_epoch;
            producer.batches.clear();
        }
        producer.last_write_ms = producer.last_write_ms.max(written_ms);
        producer.last_timestamp = header.max_timestamp;
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
        let started = crate::clock::now_ms();
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
                    if header.is_control() {
                        // A marker closes a transaction: it has no sequence.
                        let batch = &bytes[at..at + header.size()];
                        if let Ok(Some(marker)) = fjord_log::TxnMarker::parse(batch) {
                            states.mark(
                                marker.producer_id,
                                marker.producer_epoch,
                                marker.coordinator_epoch,
                                started,
                            );
                        }
                    } else {
                        states.remember(&header, header.base_offset, started);
                    }
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

    /// A clock for tests that do not look at expiry: nothing expires.
    pub(crate) const NOW: Expiry = Expiry {
        now_ms: 1_000,
        after_ms: 86_400_000,
    };

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
        assert_eq!(s.check(&header(7, 0, 0, 3), NOW), Ok(Verdict::Append));
        s.record(&header(7, 0, 0, 3), 100, NOW);
        assert_eq!(
            s.check(&header(7, 0, 0, 3), NOW),
            Ok(Verdict::Duplicate(100))
        );
        assert_eq!(
            s.check(&header(7, 0, 5, 1), NOW)
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
        assert_eq!(s.check(&header(7, 0, 3, 2), NOW), Ok(Verdict::Append));
        s.record(&header(7, 0, 3, 2), 103, NOW);
        for i in 0..5 {
            s.record(&header(7, 0, 5 + i, 1), 105 + i64::from(i), NOW);
        }
        // The first two batches fell out of the window of five.
        assert_eq!(
            s.check(&header(7, 0, 0, 3), NOW)
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
        assert_eq!(
            s.check(&header(7, 0, 9, 1), NOW),
            Ok(Verdict::Duplicate(109))
        );
        assert_eq!(
            s.check(&header(8, 0, 4, 1), NOW)
                .map_err(|e| sequence_error_code(&e)),
            Err(59)
        );
        assert_eq!(s.check(&header(7, 1, 0, 1), NOW), Ok(Verdict::Append));
        s.record(&header(7, 1, 0, 1), 200, NOW);
        assert_eq!(
            s.check(&header(7, 0, 10, 1), NOW)
                .map_err(|e| sequence_error_code(&e)),
            Err(47)
        );
        assert_eq!(
            s.check(&header(7, 2, 3, 1), NOW)
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
    }

    #[test]
    fn sequences_wrap() {
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 1), 0, NOW);
        let mut h = header(1, 0, i32::MAX - 1, 3);
        assert_eq!(last_sequence(&h), 0);
        if let Some(b) = s.producers.entry(1).or_default().batches.back_mut() {
            b.last_seq = i32::MAX - 2;
        }
        assert_eq!(s.check(&h, NOW), Ok(Verdict::Append));
        s.record(&h, 10, NOW);
        h = header(1, 0, 1, 1);
        assert_eq!(s.check(&h, NOW), Ok(Verdict::Append));
    }

    #[test]
    fn a_silent_producer_expires_and_a_sweep_drops_it() {
        let at = |now_ms| Expiry {
            now_ms,
            after_ms: 10_000,
        };
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 1), 0, at(1_000));
        s.record(&header(2, 0, 0, 1), 1, at(5_000));
        // Within the window both are known: a retry is a duplicate.
        assert_eq!(
            s.check(&header(1, 0, 0, 1), at(10_999)),
            Ok(Verdict::Duplicate(0))
        );
        // Producer 1 silent for 10 s: unknown, so sequence 1 is refused as
        // UNKNOWN_PRODUCER_ID and sequence 0 starts it over.
        assert_eq!(
            s.check(&header(1, 0, 1, 1), at(11_000))
                .map_err(|e| sequence_error_code(&e)),
            Err(59)
        );
        assert_eq!(
            s.check(&header(1, 0, 0, 1), at(11_000)),
            Ok(Verdict::Append)
        );
        assert_eq!(
            s.check(&header(2, 0, 1, 1), at(11_000)),
            Ok(Verdict::Append)
        );
        // The next append past the sweep interval drops every expired one.
        s.record(&header(3, 0, 0, 1), 2, at(SWEEP_INTERVAL_MS + 2_000));
        assert_eq!(s.len(), 1, "only producer 3 is left");
        // Many producers that each write once hold memory only while fresh.
        let mut s = ProducerStates::default();
        for id in 0..10_000 {
            s.record(&header(id, 0, 0, 1), id, at(id * 100));
        }
        assert!(
            s.len() <= 1_000 + (SWEEP_INTERVAL_MS / 100) as usize,
            "{} producers kept",
            s.len()
        );
    }

    #[test]
    fn an_expired_producer_recorded_before_a_sweep_starts_over() {
        let at = |now_ms| Expiry {
            now_ms,
            after_ms: 10_000,
        };
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, 0, 5), 0, at(0));
        // A sweep is not due yet at 15 s (the first one ran at 0).
        s.record(&header(1, 0, 0, 1), 10, at(15_000));
        assert_eq!(
            s.check(&header(1, 0, 1, 1), at(15_001)),
            Ok(Verdict::Append)
        );
        // Its batches before the expiry are forgotten: no duplicate answer.
        assert_eq!(
            s.check(&header(1, 0, 0, 5), at(15_001))
                .map_err(|e| sequence_error_code(&e)),
            Err(45)
        );
    }

    #[test]
    fn producer_ids_never_repeat_across_brokers_or_restarts() {
        let now = 1_800_000_000_000;
        // Two brokers started in the same millisecond.
        let (a, b) = (ProducerIds::new(now, 1), ProducerIds::new(now, 2));
        let from_a: Vec<i64> = (0..5_000).map(|_| a.allocate()).collect();
        let from_b: Vec<i64> = (0..5_000).map(|_| b.allocate()).collect();
        let all: std::collections::HashSet<i64> = from_a.iter().chain(&from_b).copied().collect();
        assert_eq!(all.len(), 10_000, "no id issued twice");
        assert!(from_a.windows(2).all(|w| w[0] < w[1]), "increasing");
        assert!(from_a.iter().chain(&from_b).all(|id| *id > 0));
        // A restart of broker 1 a millisecond later starts above its first
        // run (which issued fewer than 1 000 ids per millisecond).
        let again = ProducerIds::new(now + 10, 1);
        assert!(again.allocate() > from_a[..1_000].iter().copied().max().unwrap_or(0));
    }
}
