//! A request frame as a client sends it (without the length prefix): it
//! decodes or is refused with an error, and never panics. A Produce
//! request's record sets go on through what the broker does with them.
#![no_main]

use bytes::Bytes;
use fjord_broker::{Frame, decode_request};
use kafka_protocol::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(Frame::Request(request)) = decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    if let RequestKind::Produce(produce) = request.body {
        for topic in produce.topic_data {
            for partition in topic.partition_data {
                if let Some(records) = partition.records {
                    // What the log runs on every produced batch.
                    let config = fjord_log::LogConfig {
                        max_decompressed_bytes: 1 << 20,
                        ..fjord_log::LogConfig::default()
                    };
                    let _ = fjord_log::validate_produced(&mut records.to_vec(), &config, |_| {});
                    let mut buf = records.clone();
                    let _ = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf);
                }
            }
        }
    }
});
