//! Record batches as a producer sends them and the log stores them: the
//! log's validation, its record parser (decompression included: the key
//! check of compacted topics and the cleaner use it), and the full decode
//! of the `kafka-protocol` crate never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for batch in fjord_log::validated_batches(data) {
        let Ok((_, range)) = batch else {
            break;
        };
        let _ = fjord_log::visit_keys(&data[range], |_, _| {});
    }
    // Unchecked CRCs too: the parser must not rely on them.
    let _ = fjord_log::visit_keys(data, |_, _| {});
    let mut buf = bytes::Bytes::copy_from_slice(data);
    let _ = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf);
});
