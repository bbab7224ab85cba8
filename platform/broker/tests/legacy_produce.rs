//! Produce v0–2, as Kafka 4.0 handles them (KAFKA-18659): advertised in
//! ApiVersions (old librdkafka, e.g. Debian 12's 2.0.2 and its kcat, only
//! compresses against a broker whose lowest Produce version is 0) and
//! answered with UNSUPPORTED_VERSION for every partition, never stored.

mod common;

use bytes::Buf;
use common::{Raw, TestBroker, batch};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// A Produce frame at `version` (0–2): the v3 encoding without its
/// transactional id, which is the only difference in the request.
fn legacy_produce(raw: &mut Raw, version: i16, acks: i16) -> (i32, Vec<u8>) {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("legacy")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(1, 10, 0).into())),
                    PartitionProduceData::default()
                        .with_index(1)
                        .with_records(Some(batch(1, 10, 0).into())),
                ]),
        ]);
    let (id, mut frame) = raw.frame(ApiKey::Produce, 3, &RequestKind::Produce(request));
    // length, key, version, correlation id, client id "raw-test" (2 + 8).
    let body = 4 + 2 + 2 + 4 + 2 + 8;
    assert_eq!(
        &frame[body..body + 2],
        &[0xff, 0xff],
        "a null transactional id"
    );
    frame.drain(body..body + 2);
    frame[6..8].copy_from_slice(&version.to_be_bytes());
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    (id, frame)
}

#[test]
fn produce_v0_to_v2_is_advertised_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = TestBroker::start(dir.path());
    let mut raw = Raw::connect(broker.addr);
    match raw.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("t"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ),
    ) {
        ResponseKind::ApiVersions(r) => {
            let produce = r
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::Produce as i16)
                .expect("Produce advertised");
            assert_eq!((produce.min_version, produce.max_version), (0, 13));
        }
        other => panic!("{other:?}"),
    }

    for version in 0..=2i16 {
        // acks=0: no answer at all, as for any acks=0 produce; the next
        // request on the connection is answered.
        let (_, frame) = legacy_produce(&mut raw, version, 0);
        raw.send_bytes(&frame);
        let (id, frame) = legacy_produce(&mut raw, version, 1);
        raw.send_bytes(&frame);
        let mut answer = raw.read_frame().expect("an answer");
        assert_eq!(
            answer.get_i32(),
            id,
            "v{version}: the acks=1 request's answer"
        );
        assert_eq!(answer.get_i32(), 1, "one topic");
        let name_len = answer.get_i16() as usize;
        assert_eq!(&answer[..name_len], b"legacy");
        answer.advance(name_len);
        assert_eq!(answer.get_i32(), 2, "two partitions");
        for index in 0..2 {
            assert_eq!(answer.get_i32(), index);
            assert_eq!(answer.get_i16(), 35, "UNSUPPORTED_VERSION");
            assert_eq!(answer.get_i64(), -1, "no base offset");
            if version >= 2 {
                assert_eq!(answer.get_i64(), -1, "no log append time");
            }
        }
        if version >= 1 {
            assert_eq!(answer.get_i32(), 0, "throttle time");
        }
        assert!(answer.is_empty(), "v{version}: nothing more in the answer");
    }
    // Nothing was stored: the topic was not even created.
    assert!(
        broker.local().topic("legacy").is_none(),
        "an old produce creates nothing"
    );
    broker.stop();
}
