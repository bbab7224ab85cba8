//! Record batches as a producer sends them and the log stores them: the
//! log's validation and the full decode (decompression included, as the
//! key check of compacted topics and the cleaner do) never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for batch in fjord_log::validated_batches(data) {
        if batch.is_err() {
            break;
        }
    }
    let mut buf = bytes::Bytes::copy_from_slice(data);
    let _ = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf);
});
