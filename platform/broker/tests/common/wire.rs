//! Protocol-level helpers over [`Raw`]: topics by name and id, record
//! batches encoded and decoded with `kafka-protocol`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};
use uuid::Uuid;

use super::Raw;

/// A topic as both kinds of request name it: by name, or by id (v13+).
pub struct Topic {
    pub name: String,
    pub id: Uuid,
}

/// A protocol string.
pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The wall clock, as the broker stamps and checks timestamps.
pub fn now_ms() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_millis()).expect("ms fit")
}

/// A one-partition topic with `configs`, created by CreateTopics v7.
pub fn create(raw: &mut Raw, name: &str, configs: &[(&str, &str)]) -> Topic {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(text(k))
                .with_value(Some(text(v)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(text(name)))
                .with_num_partitions(1)
                .with_replication_factor(1)
                .with_configs(configs),
        ]);
    let ResponseKind::CreateTopics(r) = raw.call(ApiKey::CreateTopics, 7, request.into()) else {
        panic!("not a CreateTopics answer");
    };
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0, "{name}: {:?}", t.error_message);
    Topic {
        name: name.to_string(),
        id: t.topic_id,
    }
}

/// One uncompressed RecordBatch v2 of `records` (the encoder keeps them
/// in one batch while offset minus sequence stays the same).
pub fn encode(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("batch encodes");
    buf.freeze()
}

/// The records of fetched bytes, and each batch's (attributes, max
/// timestamp) read from its header (the decoder does not give them).
pub fn decode(fetched: &Bytes) -> (Vec<Record>, Vec<(i16, i64)>) {
    let mut headers = Vec::new();
    let mut at = 0;
    while at < fetched.len() {
        let field = |from: usize, len: usize| &fetched[at + from..at + from + len];
        let length = i32::from_be_bytes(field(8, 4).try_into().expect("4 bytes"));
        let attributes = i16::from_be_bytes(field(21, 2).try_into().expect("2 bytes"));
        let max_timestamp = i64::from_be_bytes(field(35, 8).try_into().expect("8 bytes"));
        headers.push((attributes, max_timestamp));
        at += 12 + usize::try_from(length).expect("a length");
    }
    let mut buf = fetched.clone();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("fetched batches decode");
    (sets.into_iter().flat_map(|s| s.records).collect(), headers)
}
