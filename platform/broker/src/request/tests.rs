//! The decoder against random, mutated and oversized frames: it refuses,
//! never panics, and never allocates what it has not charged.

use super::samples::sample;
use super::*;
use crate::versions::SUPPORTED_APIS;
use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;
use kafka_protocol::protocol::StrBytes;

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_frames_never_panic() {
    let mut rng = Rng(0x5eed_f00d_cafe_beef);
    for i in 0..20_000 {
        let len = (rng.next() % 300) as usize;
        let mut frame = rng.bytes(len);
        // Most random keys and versions are refused before decoding;
        // steer half of the frames into a supported (api, version) so
        // the body decoders see random bytes too.
        if i % 2 == 0 && frame.len() >= 4 {
            let (api, min, max) = SUPPORTED_APIS[(rng.next() as usize) % SUPPORTED_APIS.len()];
            let version = min + (rng.next() % ((max - min + 1) as u64)) as i16;
            frame[..2].copy_from_slice(&(api as i16).to_be_bytes());
            frame[2..4].copy_from_slice(&version.to_be_bytes());
            // A plausible header: empty client id, no tagged fields.
            if frame.len() >= 12 && i % 4 == 0 {
                frame[8..10].copy_from_slice(&(-1i16).to_be_bytes());
                if api.request_header_version(version) >= 2 {
                    frame[10] = 0;
                }
            }
        }
        let _ = decode_request(Bytes::from(frame));
    }
}

/// A well-formed request frame of `api` at `version`.
fn valid_frame(api: ApiKey, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(9)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, api.request_header_version(version))
        .expect("header encodes");
    sample(api, version)
        .encode(&mut frame, version)
        .expect("sample encodes");
    frame.freeze()
}

#[test]
fn mutated_valid_requests_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for &(api, min, max) in SUPPORTED_APIS {
        for version in min..=max {
            let frame = valid_frame(api, version);
            match decode_request(frame.clone()) {
                Ok(Frame::Request(r)) => assert_eq!((r.api_key, r.version), (api, version)),
                other => panic!("{api:?} v{version}: {other:?}"),
            }
            for _ in 0..300 {
                let mut mutated = frame.to_vec();
                match rng.next() % 3 {
                    0 => {
                        let at = 8 + (rng.next() as usize) % (mutated.len() - 8);
                        mutated[at] ^= 1 << (rng.next() % 8);
                    }
                    1 => {
                        let at = 8 + (rng.next() as usize) % (mutated.len() - 8);
                        mutated[at] = 0xff;
                    }
                    _ => mutated.truncate(8 + (rng.next() as usize) % (mutated.len() - 8)),
                }
                let _ = decode_request(Bytes::from(mutated));
            }
        }
    }
}

/// The fuzz target `request` starts from one valid frame per API and
/// version (fuzz/seeds/request). They must stay valid requests;
/// `FJORD_WRITE_FUZZ_SEEDS=1 cargo test -p fjord-broker fuzz_seeds`
/// writes them again after the supported versions change.
#[test]
fn fuzz_seeds_are_valid_requests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/request");
    if std::env::var_os("FJORD_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for &(api, min, max) in SUPPORTED_APIS {
            for version in min..=max {
                std::fs::write(
                    dir.join(format!("{api:?}-v{version}")),
                    valid_frame(api, version),
                )
                .unwrap();
            }
        }
    }
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(matches!(
            decode_request(Bytes::from(bytes)),
            Ok(Frame::Request(_))
        ));
        seeds += 1;
    }
    assert!(seeds >= SUPPORTED_APIS.len(), "{seeds} seeds");
}

#[test]
fn huge_array_counts_are_refused_not_allocated() {
    // Metadata v0: header (key 3, v0, corr 1, client id null), then a
    // topics array claiming i32::MAX elements.
    let mut frame = vec![0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    frame.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(matches!(
        decode_request(Bytes::from(frame)),
        Err(DecodeError::Malformed { .. })
    ));
}

/// A Metadata v1 request of `topics` empty topic names.
fn empty_topic_names(topics: i32) -> Bytes {
    let mut frame = vec![0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff];
    frame.extend_from_slice(&topics.to_be_bytes());
    frame.resize(frame.len() + 2 * topics as usize, 0);
    Bytes::from(frame)
}

/// Counts a frame can hold are still refused past the limit: 2 bytes
/// of wire are ~90 decoded.
#[test]
fn array_elements_are_bounded_per_request() {
    assert!(matches!(
        decode_request_limited(empty_topic_names(1001), 1000),
        Err(DecodeError::TooManyElements { limit: 1000, .. })
    ));
    let (frame, elements) = decode_request_limited(empty_topic_names(1000), 1000).unwrap();
    assert_eq!(elements, 1000);
    let Frame::Request(request) = frame else {
        panic!("{frame:?}")
    };
    let RequestKind::Metadata(metadata) = request.body else {
        panic!("not Metadata")
    };
    assert_eq!(metadata.topics.map(|t| t.len()), Some(1000));
}

/// Unknown tagged fields count as elements too: each becomes an entry
/// of a map.
#[test]
fn tagged_fields_are_bounded_per_request() {
    // Metadata v9 (flexible): header v2 (null client id, no tags),
    // null topics, three booleans, then 2000 tagged fields of 0 bytes.
    let mut frame = vec![0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 1, 0, 0];
    frame.extend_from_slice(&[0x80 | (2000 & 0x7f) as u8, (2000 >> 7) as u8]);
    for tag in 0..2000u32 {
        frame.extend_from_slice(&[0x80 | (tag & 0x7f) as u8, (tag >> 7) as u8, 0]);
    }
    assert!(matches!(
        decode_request_limited(Bytes::from(frame.clone()), 1000),
        Err(DecodeError::TooManyElements { .. })
    ));
    assert!(matches!(
        decode_request_limited(Bytes::from(frame), 5000),
        Ok((Frame::Request(_), 2000))
    ));
}

#[test]
fn versions_are_checked_before_decoding() {
    let frame = Bytes::from_static(&[0, 3, 0, 99, 0, 0, 0, 1]);
    assert!(matches!(
        decode_request(frame),
        Err(DecodeError::UnsupportedVersion { .. })
    ));
    let frame = Bytes::from_static(&[0, 18, 0, 99, 0, 0, 0, 7]);
    assert!(matches!(
        decode_request(frame),
        Ok(Frame::UnsupportedApiVersions { correlation_id: 7 })
    ));
    let frame = Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1]);
    assert!(matches!(
        decode_request(frame),
        Err(DecodeError::UnknownApiKey(_))
    ));
}
