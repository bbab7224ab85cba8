//! Shared test helpers: an in-process broker on 127.0.0.1:0 with a tempdir,
//! and a raw blocking Kafka client for protocol-level tests.
#![allow(dead_code)]

pub mod wire;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use fjord_broker::{Broker, BrokerConfig};
use fjord_log::BatchBuilder;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A broker running on its own runtime, so tests can block freely.
pub struct TestBroker {
    pub runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
    pub addr: SocketAddr,
}

impl TestBroker {
    pub fn start(data_dir: &Path) -> TestBroker {
        Self::start_with(BrokerConfig::ephemeral(data_dir))
    }

    pub fn start_with(config: BrokerConfig) -> TestBroker {
        init_tracing();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let broker = runtime
            .block_on(Broker::start(config))
            .expect("broker starts");
        let addr = broker.local_addr();
        TestBroker {
            runtime,
            broker: Some(broker),
            addr,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The address the listener `name` is bound to.
    pub fn listener(&self, name: &str) -> SocketAddr {
        self.broker
            .as_ref()
            .and_then(|b| b.listener_addr(name))
            .expect("a listener of that name")
    }

    /// In-process access to the broker (what the pipeline runtime and the
    /// admin API use).
    pub fn local(&self) -> fjord_broker::LocalBroker {
        self.broker.as_ref().expect("running").local()
    }

    /// Graceful shutdown: logs flushed and checkpointed.
    pub fn stop(mut self) {
        if let Some(broker) = self.broker.take() {
            self.runtime
                .block_on(broker.shutdown())
                .expect("clean shutdown");
        }
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A blocking raw Kafka client speaking through `kafka-protocol`.
pub struct Raw {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Raw {
            stream,
            correlation_id: 0,
        }
    }

    /// A client over an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            correlation_id: 0,
        }
    }

    /// Encodes a request frame without sending it.
    pub fn frame(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> (i32, Vec<u8>) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("header encodes");
        body.encode(&mut buf, version).expect("body encodes");
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        (self.correlation_id, buf.to_vec())
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Reads one response frame; `None` when the broker closed the socket.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    pub fn read_response(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> ResponseKind {
        let mut frame = self.read_frame().expect("a response");
        let header_version = if api_key == ApiKey::ApiVersions {
            0
        } else {
            api_key.response_header_version(version)
        };
        let header = ResponseHeader::decode(&mut frame, header_version).expect("header");
        assert_eq!(header.correlation_id, correlation_id, "responses in order");
        ResponseKind::decode(api_key, &mut frame, version).expect("response decodes")
    }

    pub fn call(&mut self, api_key: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
        let (id, frame) = self.frame(api_key, version, &body);
        self.send_bytes(&frame);
        self.read_response(api_key, version, id)
    }

    /// True when the broker has closed this connection.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// One RecordBatch v2 of `count` records, values `value_len` bytes.
pub fn batch(count: usize, value_len: usize, first_timestamp: i64) -> Vec<u8> {
    let mut batch = BatchBuilder::with_capacity(count);
    for i in 0..count {
        batch.push(
            first_timestamp + i as i64,
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(vec![b'v'; value_len])),
        );
    }
    batch.build().expect("batch encodes")
}

/// The base offset of the first batch in fetched bytes.
pub fn first_base_offset(records: &Bytes) -> Option<i64> {
    (records.len() >= 8).then(|| records.clone().get_i64())
}
