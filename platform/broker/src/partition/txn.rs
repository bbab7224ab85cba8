//! The partition side of Kafka transactions: the markers the transaction
//! coordinator has a leader write, and what they close.

use fjord_log::TxnMarker;

use super::Partition;
use crate::error::PartitionError;

impl Partition {
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
}
