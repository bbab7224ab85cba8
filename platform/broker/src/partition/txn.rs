//! The partition side of Kafka transactions: the markers the transaction
//! coordinator has a leader write, and what they close.

use fjord_log::TxnMarker;

use super::Partition;
use crate::error::PartitionError;

impl Partition {
    /// The last stable offset: below it every transaction is decided, so
    /// read_committed consumers read up to it. The high watermark, or the
    /// first offset of a transaction still open when that is lower.
    #[allow(dead_code)]
    pub(crate) fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        self.log
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw))
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
        let _producers = self.producers.lock().await;
        let info = self
            .append_as_leader(move |log, epoch| log.append_control(&marker, epoch))
            .await?;
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
        let mut builder = BatchBuilder::new();
        builder.push(1, None, Some(bytes::Bytes::from("v")));
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
}
