//! One real request of every (API, version) pair the broker advertises, to
//! a real server over a socket: nothing is advertised that does not work.
//! The pairs come from the server's ApiVersions answer, not from
//! `versions.rs`, so every version added there is covered by this test
//! (each API needs a request in `request::samples`).
//!
//! Each pair is sent on a new connection (SASL requests change its state)
//! and must get a response that decodes at that version, whole, with the
//! request's correlation id; then the connection must still serve an
//! ApiVersions, except after the SASL APIs, which may close it as Kafka
//! does. Error codes in the answers are allowed: the samples name groups
//! and members that do not exist, and some are refused on purpose. A
//! version advertised below the crate's range (`ADVERTISED_BELOW`) must be
//! answered UNSUPPORTED_VERSION (Produce v0–2) or, for the old versions
//! served by hand (ListOffsets v0, OffsetCommit v1, DescribeConfigs v0),
//! answered in that version's layout with the connection serving on; the
//! version above each advertised range must close the connection
//! unanswered.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::BrokerConfig;
use crate::request::samples::sample;
use crate::server::Broker;
use crate::versions::{ADVERTISED_BELOW, REFUSED_BELOW, supported_range};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Long enough for a slow CI machine, short enough that a request that
/// is never answered fails the test instead of hanging it.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Result<Client, std::io::Error> {
        Ok(Client {
            stream: TcpStream::connect(addr).await?,
            correlation_id: 0x5eed,
        })
    }

    /// A request frame of `body` at `version`, and its correlation id.
    fn frame(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &RequestKind,
    ) -> Result<(i32, BytesMut), Box<dyn std::error::Error>> {
        self.correlation_id += 7;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("every-version")));
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        header.encode(&mut frame, api.request_header_version(version))?;
        body.encode(&mut frame, version)
            .map_err(|e| format!("the sample does not encode: {e}"))?;
        let length = i32::try_from(frame.len() - 4)?;
        frame[..4].copy_from_slice(&length.to_be_bytes());
        Ok((self.correlation_id, frame))
    }

    async fn send(&mut self, frame: &[u8]) -> Result<(), std::io::Error> {
        self.stream.write_all(frame).await
    }

    /// The next response frame; `None` when the server closed the
    /// connection.
    async fn read_frame(&mut self) -> Result<Option<Bytes>, Box<dyn std::error::Error>> {
        let read = async {
            let mut length = [0u8; 4];
            if self.stream.read_exact(&mut length).await.is_err() {
                return Ok::<_, std::io::Error>(None);
            }
            let length = usize::try_from(i32::from_be_bytes(length)).unwrap_or(0);
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).await?;
            Ok(Some(Bytes::from(body)))
        };
        Ok(tokio::time::timeout(ANSWER_WITHIN, read)
            .await
            .map_err(|_| "no answer in time")??)
    }

    /// Sends `body` and returns the decoded answer, checking its
    /// correlation id and that the whole frame was read.
    async fn call(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &RequestKind,
    ) -> Result<ResponseKind, Box<dyn std::error::Error>> {
        let (id, frame) = self.frame(api, version, body)?;
        self.send(&frame).await?;
        let mut answer = self
            .read_frame()
            .await?
            .ok_or("the connection closed unanswered")?;
        // ApiVersions answers with header v0 whatever its version.
        let header_version = if api == ApiKey::ApiVersions {
            0
        } else {
            api.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut answer, header_version)?;
        if header.correlation_id != id {
            return Err(
                format!("correlation id {} for request {id}", header.correlation_id).into(),
            );
        }
        let response = ResponseKind::decode(api, &mut answer, version)
            .map_err(|e| format!("the answer does not decode: {e}"))?;
        if answer.has_remaining() {
            return Err(format!("{} bytes left after the answer", answer.remaining()).into());
        }
        Ok(response)
    }
}

fn api_versions_request() -> RequestKind {
    RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("every-version"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    )
}

/// A Produce frame below v3, which the crate cannot encode: v3's with its
/// transactional id (the one field v3 added to the request) taken out.
fn legacy_produce_frame(
    client: &mut Client,
    version: i16,
) -> Result<(i32, BytesMut), Box<dyn std::error::Error>> {
    let (id, v3) = client.frame(ApiKey::Produce, 3, &sample(ApiKey::Produce, 3))?;
    // length, key, version, correlation id, client id (2 + its length).
    let body = 4 + 2 + 2 + 4 + 2 + "every-version".len();
    if v3.get(body..body + 2) != Some(&[0xff, 0xff][..]) {
        return Err("the Produce sample has a transactional id".into());
    }
    let mut frame = BytesMut::from(&v3[..body]);
    frame.extend_from_slice(&v3[body + 2..]);
    frame[6..8].copy_from_slice(&version.to_be_bytes());
    let length = i32::try_from(frame.len() - 4)?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok((id, frame))
}

/// The first partition's error code in a Produce v0–2 answer (after the
/// correlation id): topic count, name, partition count, index, error.
fn first_produce_error(mut answer: Bytes) -> Result<i16, Box<dyn std::error::Error>> {
    let need = |answer: &Bytes, n: usize| -> Result<(), Box<dyn std::error::Error>> {
        if answer.remaining() < n {
            return Err("a truncated Produce answer".into());
        }
        Ok(())
    };
    need(&answer, 4 + 2)?;
    if answer.get_i32() < 1 {
        return Err("a Produce answer without topics".into());
    }
    let name = usize::try_from(answer.get_i16())?;
    need(&answer, name + 4 + 4 + 2)?;
    answer.advance(name);
    if answer.get_i32() < 1 {
        return Err("a Produce answer without partitions".into());
    }
    answer.advance(4);
    Ok(answer.get_i16())
}

/// A frame of an old version the crate has no schema for: header v1
/// (key, version, correlation id, client id), then `body`.
fn hand_made_frame(client: &mut Client, api: ApiKey, version: i16, body: &[u8]) -> (i32, Vec<u8>) {
    client.correlation_id += 7;
    let client_id = b"every-version";
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    frame.put_i16(api as i16);
    frame.put_i16(version);
    frame.put_i32(client.correlation_id);
    frame.put_i16(client_id.len() as i16);
    frame.put_slice(client_id);
    frame.put_slice(body);
    let length = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    (client.correlation_id, frame.to_vec())
}

/// An old version served by hand (`legacy_*` modules): a request with no
/// topics or resources is answered whole in that version's layout (after
/// the correlation id: `answer`), and the connection serves on.
/// `tests/legacy_versions.rs` and the Burrow and Sarama suites check what
/// these versions answer for real topics.
async fn check_served_by_hand(addr: SocketAddr, api: ApiKey, version: i16) -> TestResult {
    let mut request = BytesMut::new();
    let answer: &[u8] = match (api, version) {
        // Replica id (a consumer), no topics; answered: no topics.
        (ApiKey::ListOffsets, 0) => {
            request.put_i32(-1);
            request.put_i32(0);
            &[0, 0, 0, 0]
        }
        // Group, generation -1 (outside the group protocol), member "", no
        // topics; answered: no topics (v1 has no throttle time).
        (ApiKey::OffsetCommit, 1) => {
            request.put_i16(5);
            request.put_slice(b"group");
            request.put_i32(-1);
            request.put_i16(0);
            request.put_i32(0);
            &[0, 0, 0, 0]
        }
        // No resources; answered: throttle time 0, no results.
        (ApiKey::DescribeConfigs, 0) => {
            request.put_i32(0);
            &[0, 0, 0, 0, 0, 0, 0, 0]
        }
        _ => return Err("advertised below the crate's range: add a check for it here".into()),
    };
    let mut client = Client::connect(addr).await?;
    let (id, frame) = hand_made_frame(&mut client, api, version, &request);
    client.send(&frame).await?;
    let mut got = client
        .read_frame()
        .await?
        .ok_or("the connection closed unanswered")?;
    if got.remaining() < 4 || got.get_i32() != id {
        return Err(format!("not the answer to request {id}").into());
    }
    if &got[..] != answer {
        return Err(format!("answered {:?}, not {answer:?}", &got[..]).into());
    }
    client
        .call(ApiKey::ApiVersions, 3, &api_versions_request())
        .await
        .map_err(|e| format!("the ApiVersions after it: {e}"))?;
    Ok(())
}

/// A version below the crate's range: answered UNSUPPORTED_VERSION for
/// the APIs of `REFUSED_BELOW` (Produce v0–2), else served by hand.
async fn check_below_range(addr: SocketAddr, api: ApiKey, version: i16) -> TestResult {
    if !REFUSED_BELOW.contains(&api) {
        return check_served_by_hand(addr, api, version).await;
    }
    let mut client = Client::connect(addr).await?;
    let (id, frame) = legacy_produce_frame(&mut client, version)?;
    client.send(&frame).await?;
    let mut answer = client
        .read_frame()
        .await?
        .ok_or("the connection closed unanswered")?;
    if answer.remaining() < 4 || answer.get_i32() != id {
        return Err(format!("not the answer to request {id}").into());
    }
    let error = first_produce_error(answer)?;
    if error != kafka_protocol::ResponseError::UnsupportedVersion.code() {
        return Err(format!("error {error}, not UNSUPPORTED_VERSION").into());
    }
    Ok(())
}

/// A served version: answered, and (but for SASL) the connection serves on.
async fn check_served(addr: SocketAddr, api: ApiKey, version: i16) -> TestResult {
    let body = sample(api, version);
    // `sample` falls back to another API's request for an API it does not
    // know, which the broker would refuse to decode.
    if !format!("{body:?}").starts_with(&format!("{api:?}(")) {
        return Err("no request for this API in request::samples: add one".into());
    }
    let mut client = Client::connect(addr).await?;
    client.call(api, version, &body).await?;
    if matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
        return Ok(());
    }
    client
        .call(ApiKey::ApiVersions, 3, &api_versions_request())
        .await
        .map_err(|e| format!("the ApiVersions after it: {e}"))?;
    Ok(())
}

/// The version above the advertised range closes the connection
/// unanswered (where the crate can encode it at all).
async fn check_above_range(addr: SocketAddr, api: ApiKey, max: i16) -> TestResult {
    let version = max + 1;
    if version > api.valid_versions().max || api == ApiKey::ApiVersions {
        return Ok(());
    }
    let mut client = Client::connect(addr).await?;
    let body = sample(api, max);
    let Ok((_, frame)) = client.frame(api, version, &body) else {
        return Ok(());
    };
    client.send(&frame).await?;
    if client.read_frame().await?.is_some() {
        return Err(format!("{api:?} v{version} is not advertised but was answered").into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_is_answered_over_a_socket() -> TestResult {
    let dir = tempfile::tempdir()?;
    let broker = Broker::start(BrokerConfig::ephemeral(dir.path())).await?;
    let addr = broker.local_addr();

    let mut client = Client::connect(addr).await?;
    let ResponseKind::ApiVersions(versions) = client
        .call(ApiKey::ApiVersions, 3, &api_versions_request())
        .await?
    else {
        return Err("not an ApiVersions answer".into());
    };
    assert_eq!(versions.error_code, 0);
    assert!(!versions.api_keys.is_empty());

    let mut failures = Vec::new();
    let mut pairs = 0;
    for advertised in &versions.api_keys {
        let api = ApiKey::try_from(advertised.api_key)
            .map_err(|()| format!("unknown api key {} advertised", advertised.api_key))?;
        let served = supported_range(api).ok_or_else(|| format!("{api:?} advertised"))?;
        for version in advertised.min_version..=advertised.max_version {
            pairs += 1;
            let outcome = if version < served.min {
                check_below_range(addr, api, version).await
            } else {
                check_served(addr, api, version).await
            };
            if let Err(e) = outcome {
                failures.push(format!("{api:?} v{version}: {e}"));
            }
        }
        if let Err(e) = check_above_range(addr, api, advertised.max_version).await {
            failures.push(e.to_string());
        }
    }
    // Every version advertised below a served range is one of these.
    for &(api, min) in ADVERTISED_BELOW {
        let advertised = versions
            .api_keys
            .iter()
            .find(|k| k.api_key == api as i16)
            .ok_or_else(|| format!("{api:?} is not advertised"))?;
        assert_eq!(advertised.min_version, min, "{api:?}");
    }
    broker.shutdown().await?;
    assert!(
        failures.is_empty(),
        "{} of {pairs} (API, version) pairs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
