//! The log's bounded record decoder (`decode_batch`, what every reader of
//! records uses; the validator and the cleaner share its parser) against
//! the `kafka-protocol` crate's full decoder, and on damaged input.

mod common;

use bytes::Bytes;
use fjord_log::DecodeLimits;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use proptest::prelude::*;

fn codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

type Keyed = Vec<(Option<Vec<u8>>, Vec<u8>)>;

fn batch(records: &Keyed, compression: Compression) -> Vec<u8> {
    let records: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| common::record(k.as_deref(), v, 1_000 + i as i64))
        .collect();
    common::encode(&records, compression)
}

fn keyed() -> impl Strategy<Value = Keyed> {
    prop::collection::vec(
        (
            prop::option::of(prop::collection::vec(any::<u8>(), 0..20)),
            prop::collection::vec(any::<u8>(), 0..200),
        ),
        1..40,
    )
}

proptest! {
    /// Same offsets and keys as the reference decoder, for every codec.
    #[test]
    fn keys_match_the_reference_decoder(records in keyed(), compression in codec()) {
        let bytes = batch(&records, compression);
        type Fields = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(Vec<u8>, Option<Vec<u8>>)>);
        let decoded = fjord_log::decode_batch(&bytes, DecodeLimits::default()).unwrap();
        let ours: Vec<Fields> = decoded
            .records()
            .map(|r| (
                r.offset,
                r.timestamp,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                r.headers().map(|(n, v)| (n.to_vec(), v.map(<[u8]>::to_vec))).collect(),
            ))
            .collect();
        let mut buf = Bytes::from(bytes);
        let theirs: Vec<Fields> = RecordBatchDecoder::decode_all(&mut buf)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records)
            .map(|r| (
                r.offset,
                r.timestamp,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_ref().map(|v| v.to_vec()))).collect(),
            ))
            .collect();
        prop_assert_eq!(ours, theirs);
    }

    /// Damaged batches (bytes changed, cut short) are refused or parsed,
    /// never a panic; CRCs are not what keeps the parser safe.
    #[test]
    fn damaged_batches_never_panic(
        records in keyed(),
        compression in codec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = batch(&records, compression);
        for (at, value) in flips {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        // With the CRC made right again, so the parser itself is tried.
        common::fix_crc(&mut bytes);
        if let Ok(batch) = fjord_log::decode_batch(&bytes, DecodeLimits::default()) {
            for record in batch.records() {
                let _ = record.headers().count();
            }
        }
        let cut = cut.index(bytes.len());
        let _ = fjord_log::decode_batch(&bytes[..cut], DecodeLimits::default());
    }
}

/// Found by the `record_batches` fuzz target: a base offset near `i64::MIN`
/// and an offset delta past the batch's last offset delta.
#[test]
fn offset_delta_outside_the_batch_is_refused() {
    let mut bytes = batch(
        &vec![(Some(b"k".to_vec()), b"v".to_vec())],
        Compression::None,
    );
    bytes[..8].copy_from_slice(&i64::MIN.to_be_bytes());
    // The record's offset delta (zigzag varint) after length, attributes and
    // timestamp delta: make it -1.
    let offset_delta_at = fjord_log::HEADER_LEN + 3;
    assert_eq!(bytes[offset_delta_at], 0);
    bytes[offset_delta_at] = 1; // zigzag(-1)
    common::fix_crc(&mut bytes);
    assert!(fjord_log::decode_batch(&bytes, DecodeLimits::default()).is_err());
}
