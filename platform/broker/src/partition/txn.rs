//! The partition side of Kafka transactions: the markers the transaction
//! coordinator has a leader write, and what they close.

use fjord_log::{AbortedTxn, LogError, LogRead, TxnMarker};

use super::Partition;
use crate::error::PartitionError;
use crate::producer_state::ProducerView;

impl Partition {
    /// The last stable offset: below it every transaction is decided, so
    /// read_committed consumers read up to it. The high watermark, or the
    /// first offset of a transaction still open when that is lower.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.log
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw))
    }

    /// The latest offset a consumer may read (ListOffsets' latest, the
    /// bound of Fetch): the last stable offset under read_committed
    /// (isolation level 1), else the high watermark.
    pub(crate) fn readable_end(&self, read_committed: bool) -> i64 {
        if read_committed {
            self.last_stable_offset()
        } else {
            self.high_watermark()
        }
    }

    /// Reads whole batches from `offset` up to the last stable offset, for
    /// a read_committed consumer, with the aborted transactions that have
    /// records in what it may read (producer id, first offset): the
    /// consumer drops their records.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<(LogRead, Vec<AbortedTxn>), LogError> {
        let lso = self.last_stable_offset();
        let read = self.log.read(offset, max_bytes, lso)?;
        let aborted = if read.slice.is_some() {
            self.log.aborted_transactions(offset, lso)
        } else {
            Vec::new()
        };
        Ok((read, aborted))
    }

    /// For a transactional batch of `producer_id` (KIP-890 part 1): the
    /// guard token [`Partition::append_verified`] checks, and whether the
    /// batch must be verified with the coordinator first (it would be the
    /// first of a transaction here). Batches of the producer checked at
    /// the same time share the token, as in Kafka.
    pub(crate) fn verification_guard(&self, producer_id: i64) -> (u64, bool) {
        // The guard first: a marker after it removes it.
        let token = *self.verifying.lock().entry(producer_id).or_insert_with(|| {
            self.verify_tokens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1
        });
        (token, !self.log.has_open_transaction(producer_id))
    }

    /// The producers with state on this partition (DescribeProducers):
    /// each with the first offset of its open transaction, -1 when none.
    pub(crate) async fn describe_producers(
        &self,
    ) -> Result<Vec<(ProducerView, i64)>, PartitionError> {
        let guard = self.producer_states().await?;
        let open: std::collections::HashMap<i64, i64> =
            self.log.open_transactions().into_iter().collect();
        Ok(guard
            .as_ref()
            .map(|states| states.describe())
            .unwrap_or_default()
            .into_iter()
            .map(|view| {
                let start = open.get(&view.producer_id).copied().unwrap_or(-1);
                (view, start)
            })
            .collect())
    }

    /// Appends, as leader, the transaction marker of producer
    /// `producer_id` (commit or abort), written by the transaction
    /// coordinator's WriteTxnMarkers: a control batch in Kafka's format.
    /// Returns its offset; it completes that producer's open transaction
    /// on this partition and advances the high watermark like any append.
    // Its caller, the coordinator's WriteTxnMarkers, lands on another branch.
    #[allow(dead_code)]
    pub(crate) async fn write_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<i64, PartitionError> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        let marker = TxnMarker {
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
        };
        // Under the producers' lock: the marker lands after any batch of
        // that producer being appended, never between its check and append.
        let mut guard = self.producer_states().await?;
        if let Some(states) = guard.as_ref() {
            states.check_marker(producer_id, producer_epoch)?;
        }
        let info = self
            .append_as_leader(move |log, epoch| log.append_control(&marker, epoch))
            .await?;
        self.verifying.lock().remove(&producer_id);
        if let Some(states) = guard.as_mut() {
            states.mark(
                producer_id,
                producer_epoch,
                coordinator_epoch,
                crate::clock::now_ms(),
            );
        }
        Ok(info.first_offset)
    }
}

#[cfg(test)]
mod tests {
    use fjord_log::{BatchBuilder, DecodeLimits, Log, LogConfig, decode_batch};

    use super::*;

    fn partition(dir: &std::path::Path) -> Partition {
        Partition::new("t", 0, Log::open(dir, LogConfig::default()).unwrap(), 0)
    }

    #[tokio::test]
    async fn a_marker_is_appended_as_a_control_batch_and_moves_the_high_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let mut builder = BatchBuilder::new();
        builder.push(1, None, Some(bytes::Bytes::from("v")));
        partition.append(builder.build().unwrap()).await.unwrap();
        let offset = partition.write_txn_marker(9, 2, true, 5).await.unwrap();
        assert_eq!(offset, 1);
        assert_eq!(partition.high_watermark(), 2);
        let read = partition.read(1, 1 << 20).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let decoded = decode_batch(&bytes, DecodeLimits::default()).unwrap();
        assert!(decoded.header().is_control());
        assert_eq!(decoded.header().base_offset, 1);
        assert_eq!(
            TxnMarker::parse(&bytes).unwrap(),
            Some(TxnMarker {
                producer_id: 9,
                producer_epoch: 2,
                commit: true,
                coordinator_epoch: 5
            })
        );
        let abort = partition.write_txn_marker(9, 2, false, 5).await.unwrap();
        assert_eq!((abort, partition.high_watermark()), (2, 3));
    }

    /// A transactional batch of producer `pid` (epoch 0, sequence `seq`).
    pub(crate) fn txn_batch(pid: i64, seq: i32) -> Vec<u8> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut builder = BatchBuilder::new();
        // Now: an old timestamp would roll a segment before the marker.
        builder.push(now, None, Some(bytes::Bytes::from("v")));
        let mut batch = builder.build().unwrap();
        batch[21..23].copy_from_slice(&0x10i16.to_be_bytes());
        batch[43..51].copy_from_slice(&pid.to_be_bytes());
        batch[51..53].copy_from_slice(&0i16.to_be_bytes());
        batch[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[tokio::test]
    async fn the_last_stable_offset_stops_at_an_open_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        partition.append(txn_batch(5, 0)).await.unwrap();
        assert_eq!(partition.high_watermark(), 1);
        assert_eq!(partition.last_stable_offset(), 0);
        partition.append(txn_batch(6, 0)).await.unwrap();
        partition.write_txn_marker(5, 0, true, 0).await.unwrap();
        assert_eq!(partition.last_stable_offset(), 1);
        partition.write_txn_marker(6, 0, false, 0).await.unwrap();
        assert_eq!(partition.last_stable_offset(), 4);
        assert_eq!(partition.log().aborted_transactions(0, 4).len(), 1);
    }

    /// KIP-890's guard: the producer's marker between its batch's check
    /// and its append refuses the batch (it would open a transaction the
    /// coordinator never heard of); another producer's marker does not.
    #[tokio::test]
    async fn a_marker_while_a_batch_is_verified_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let append = |batch: Vec<u8>, token| {
            let header = header_of(&batch);
            let partition = &partition;
            async move {
                partition
                    .append_verified(batch, &header, expiry(), Some(token))
                    .await
            }
        };
        let (token, needed) = partition.verification_guard(5);
        assert!(needed);
        partition.write_txn_marker(5, 0, false, 0).await.unwrap();
        let refused = append(txn_batch(5, 0), token).await.unwrap_err();
        assert!(
            matches!(
                refused,
                PartitionError::Sequence(crate::producer_state::SequenceError::NotVerified { .. })
            ),
            "{refused}"
        );

        let (token, _) = partition.verification_guard(6);
        partition.write_txn_marker(7, 0, false, 0).await.unwrap();
        append(txn_batch(6, 0), token).await.unwrap();
        // In its open transaction now: the next batch is not asked about.
        let (token, needed) = partition.verification_guard(6);
        assert!(!needed);
        append(txn_batch(6, 1), token).await.unwrap();
    }

    fn expiry() -> crate::producer_state::Expiry {
        crate::producer_state::Expiry {
            now_ms: crate::clock::now_ms(),
            after_ms: 86_400_000,
        }
    }

    fn header_of(batch: &[u8]) -> fjord_log::BatchHeader {
        fjord_log::validate_batch(batch).unwrap()
    }

    /// A transactional batch of `pid` in `epoch` starting at `seq`.
    fn txn_batch_epoch(pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
        let mut batch = txn_batch(pid, seq);
        batch[51..53].copy_from_slice(&epoch.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    #[tokio::test]
    async fn a_marker_fences_older_epochs_and_keeps_sequences_across_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let b = txn_batch_epoch(5, 0, 0);
        partition
            .append_idempotent(b.clone(), &header_of(&b), expiry())
            .await
            .unwrap();
        // The coordinator aborted with a bumped epoch (a timeout).
        partition.write_txn_marker(5, 1, false, 3).await.unwrap();
        let old = txn_batch_epoch(5, 0, 1);
        let refused = partition
            .append_idempotent(old.clone(), &header_of(&old), expiry())
            .await
            .unwrap_err();
        assert_eq!(crate::error::partition_error_code(&refused), 47);
        // A marker of an older epoch is refused too.
        assert!(partition.write_txn_marker(5, 0, true, 3).await.is_err());
        // The new epoch starts at sequence 0.
        let new = txn_batch_epoch(5, 1, 0);
        let (offset, _) = partition
            .append_idempotent(new.clone(), &header_of(&new), expiry())
            .await
            .unwrap();
        assert_eq!(offset, 2);
        partition.write_txn_marker(5, 1, true, 3).await.unwrap();
        // Rebuilt from the log (markers included), the next batch follows.
        let rebuilt = crate::producer_state::ProducerStates::rebuild(partition.log());
        let next = txn_batch_epoch(5, 1, 1);
        assert_eq!(
            rebuilt.check(&header_of(&next), expiry()),
            Ok(crate::producer_state::Verdict::Append)
        );
        let stale = txn_batch_epoch(5, 0, 0);
        assert!(rebuilt.check(&header_of(&stale), expiry()).is_err());
    }

    #[tokio::test]
    async fn a_plain_batch_of_a_producer_with_an_open_transaction_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let open = txn_batch_epoch(5, 0, 0);
        partition
            .append_idempotent(open.clone(), &header_of(&open), expiry())
            .await
            .unwrap();
        // The same producer, sequence 1, without the transactional bit.
        let mut plain = txn_batch_epoch(5, 0, 1);
        plain[21..23].copy_from_slice(&0i16.to_be_bytes());
        let crc = crc32c::crc32c(&plain[21..]);
        plain[17..21].copy_from_slice(&crc.to_be_bytes());
        let refused = partition
            .append_idempotent(plain.clone(), &header_of(&plain), expiry())
            .await
            .unwrap_err();
        assert_eq!(crate::error::partition_error_code(&refused), 48);
        assert_eq!(partition.high_watermark(), 1);
        // After its marker it may write plain batches again.
        partition.write_txn_marker(5, 0, true, 0).await.unwrap();
        partition
            .append_idempotent(plain.clone(), &header_of(&plain), expiry())
            .await
            .unwrap();
        assert_eq!(partition.high_watermark(), 3);
    }

    #[tokio::test]
    async fn read_committed_stops_at_the_last_stable_offset_and_names_aborts() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        partition.append(txn_batch(5, 0)).await.unwrap(); // 0
        partition.write_txn_marker(5, 0, false, 0).await.unwrap(); // 1
        partition.append(txn_batch(6, 0)).await.unwrap(); // 2, open
        assert_eq!(partition.readable_end(false), 3);
        assert_eq!(partition.readable_end(true), 2);
        let (read, aborted) = partition.read_committed(0, 1 << 20).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let headers: Vec<i64> = fjord_log::validated_batches(&bytes)
            .map(|b| b.unwrap().0.base_offset)
            .collect();
        assert_eq!(headers, [0, 1]);
        assert_eq!(aborted.len(), 1);
        assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (5, 0));
        let (read, aborted) = partition.read_committed(2, 1 << 20).unwrap();
        assert!(read.slice.is_none() && aborted.is_empty());
    }

    #[tokio::test]
    async fn a_follower_copying_the_leader_tracks_the_same_transactions() {
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = partition(leader_dir.path());
        leader.append(txn_batch(5, 0)).await.unwrap(); // 0
        leader.write_txn_marker(5, 0, false, 1).await.unwrap(); // 1
        leader.append(txn_batch(6, 0)).await.unwrap(); // 2, open
        let read = leader.read_for_follower(0, 1 << 20).unwrap();
        let mut copy = read.slice.unwrap().bytes().unwrap().to_vec();
        let follower_dir = tempfile::tempdir().unwrap();
        let log = Log::open(follower_dir.path(), LogConfig::default()).unwrap();
        let follower = Partition::replicated("t", 0, log, 0);
        follower.become_follower(0);
        follower.append_from_leader(&mut copy, 3).unwrap();
        assert_eq!(follower.high_watermark(), 3);
        assert_eq!(follower.last_stable_offset(), 2);
        let aborted = follower.log().aborted_transactions(0, 3);
        assert_eq!(aborted, leader.log().aborted_transactions(0, 3));
        assert_eq!((aborted.len(), aborted[0].producer_id), (1, 5));
        // Its own .txnindex, as the leader's.
        assert!(
            follower_dir
                .path()
                .join("00000000000000000000.txnindex")
                .exists()
        );
    }

    /// What a read_committed consumer reading the partition from its start
    /// keeps, through `Partition::read_committed` (the Fetch path) and the
    /// aborted transactions it returns: (batch base offset, values).
    fn committed_from_start(partition: &Partition) -> Vec<(i64, Vec<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut offset = partition.log().log_start_offset();
        loop {
            let (read, aborted) = partition.read_committed(offset, 1 << 20).unwrap();
            let Some(slice) = read.slice else {
                return out;
            };
            let bytes = slice.bytes().unwrap();
            let mut filter = fjord_log::CommittedFilter::new(aborted);
            let start = offset;
            for batch in fjord_log::validated_batches(&bytes) {
                let (header, range) = batch.unwrap();
                let whole = &bytes[range];
                offset = offset.max(header.next_offset());
                if !filter.keeps(&header, whole) || header.next_offset() <= start {
                    continue;
                }
                let decoded = decode_batch(whole, DecodeLimits::default()).unwrap();
                let values = decoded
                    .records()
                    .map(|r| r.value.unwrap_or_default().to_vec())
                    .collect();
                out.push((header.base_offset, values));
            }
        }
    }

    /// The cleaner removes aborted records, then their markers after
    /// `delete.retention.ms`: what a read_committed Fetch from the start
    /// returns is the same after every pass, with no aborted value.
    #[tokio::test]
    async fn read_committed_from_the_start_is_the_same_through_marker_removal() {
        const RETENTION: i64 = 60_000;
        // Written as `delete` (the batches here have no key), compacted
        // once written.
        let config = |segment_bytes, cleanup_policy| LogConfig {
            cleanup_policy,
            segment_bytes,
            delete_retention_ms: RETENTION,
            ..LogConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let partition = Partition::new(
            "t",
            0,
            Log::open(dir.path(), config(150, fjord_log::CleanupPolicy::Delete)).unwrap(),
            0,
        );
        let plain = || {
            let mut builder = BatchBuilder::new();
            builder.push(
                crate::clock::now_ms(),
                None,
                Some(bytes::Bytes::from("plain")),
            );
            builder.build().unwrap()
        };
        partition.append(txn_batch(5, 0)).await.unwrap(); // aborted
        partition.append(plain()).await.unwrap();
        partition.append(txn_batch(6, 0)).await.unwrap(); // committed
        partition.append(txn_batch(5, 1)).await.unwrap(); // aborted
        partition.write_txn_marker(5, 0, false, 0).await.unwrap();
        partition.write_txn_marker(6, 0, true, 0).await.unwrap();
        for _ in 0..4 {
            partition.append(plain()).await.unwrap();
        }
        partition
            .log()
            .set_config(config(1 << 20, fjord_log::CleanupPolicy::Compact));
        let view = committed_from_start(&partition);
        assert_eq!(view.len(), 6, "{view:?}");
        let cleaner = fjord_log::CleanerConfig::default();
        let t = crate::clock::now_ms();
        for (pass, at) in [t, t, t + RETENTION].into_iter().enumerate() {
            partition.log().clean_until(at, &cleaner, None).unwrap();
            assert_eq!(committed_from_start(&partition), view, "pass {pass}");
        }
        // The ABORT marker and its entry are gone; the COMMIT marker stays
        // with its committed record.
        let end = partition.high_watermark();
        assert_eq!(partition.log().aborted_transactions(0, end), vec![]);
        let read = partition.read(0, 1 << 20).unwrap();
        let bytes = read.slice.unwrap().bytes().unwrap();
        let markers: Vec<bool> = fjord_log::validated_batches(&bytes)
            .map(|b| b.unwrap())
            .filter(|(h, _)| h.is_control() && h.records_count > 0)
            .map(|(_, range)| TxnMarker::parse(&bytes[range]).unwrap().unwrap().commit)
            .collect();
        assert_eq!(markers, [true]);
        assert_eq!(partition.last_stable_offset(), end);
    }
}
