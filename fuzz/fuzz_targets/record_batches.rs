//! Record batches as a producer sends them and the log stores them: the
//! log's validator of produced batches (streaming, capped decompression
//! included), its bounded decoder that every reader uses, and the full
//! decode of the `kafka-protocol` crate never panic; and what the
//! validator accepts, the decoder reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small cap, so that bombs are found without slowing the fuzzer.
    let config = fjord_log::LogConfig {
        max_decompressed_bytes: 1 << 20,
        cleanup_policy: if data.first().is_some_and(|b| b & 1 == 1) {
            fjord_log::CleanupPolicy::Compact
        } else {
            fjord_log::CleanupPolicy::Delete
        },
        ..fjord_log::LogConfig::default()
    };
    let limits = fjord_log::DecodeLimits::of(&config);
    let mut produced = data.to_vec();
    let mut ranges = Vec::new();
    let mut at = 0;
    let accepted = fjord_log::validate_produced(&mut produced, &config, |h| {
        ranges.push(at..at + h.size());
        at += h.size();
    });
    if accepted.is_ok() {
        for range in ranges {
            let batch = fjord_log::decode_batch(&produced[range], limits)
                .expect("a batch the validator accepted decodes");
            for record in batch.records() {
                let _ = record.headers().count();
            }
        }
    }
    // Stored batches, CRC checked or not: the decoder must not rely on it.
    for batch in fjord_log::validated_batches(data) {
        let Ok((_, range)) = batch else {
            break;
        };
        let _ = fjord_log::decode_batch(&data[range], limits);
    }
    let _ = fjord_log::decode_batch(data, limits);
    let mut buf = bytes::Bytes::copy_from_slice(data);
    let _ = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf);
});
