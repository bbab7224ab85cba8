//! `fjord bench consume --consumer fjord`: a minimal Kafka consumer speaking
//! the wire protocol through `kafka-protocol` — Metadata, ListOffsets, then
//! Fetch requests back to back — that decodes every record it receives.
//!
//! It measures what the broker delivers to a client that does no more than
//! decode each record, without librdkafka's per-message work (its prefetch
//! queue, one `poll` per message), which on this machine is the limit of a
//! librdkafka consumer before the broker is. It is a load tool, not a
//! consumer for applications: no groups, no commits, one connection.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::raw::Connection;

/// Versions every Kafka broker since 2.x answers, Fjord included.
const METADATA_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 2;
const FETCH_VERSION: i16 = 11;

/// Reads `topic` from the log start to the end of every partition as it
/// was when the run started, or `limit` records; the records and their
/// value bytes.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    limit: Option<u64>,
    max_bytes: i32,
) -> Result<(u64, u64, Duration)> {
    let mut conn = Connection::open_any(bootstrap, "fjord-bench")?;
    let name = TopicName(StrBytes::from_string(topic.to_owned()));
    let metadata: MetadataResponse = conn.call(
        METADATA_VERSION,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name.clone())),
        ])),
    )?;
    let partitions: Vec<i32> = metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    let offsets = |conn: &mut Connection, timestamp: i64| -> Result<Vec<i64>> {
        let response: ListOffsetsResponse = conn.call(
            LIST_OFFSETS_VERSION,
            &ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name.clone())
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        ),
                ]),
        )?;
        let by_partition: std::collections::HashMap<i32, i64> = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.offset)))
            .collect();
        Ok(partitions
            .iter()
            .map(|p| by_partition.get(p).copied().unwrap_or(0))
            .collect())
    };
    let mut next = offsets(&mut conn, -2)?;
    let end = offsets(&mut conn, -1)?;

    let start = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    while next.iter().zip(&end).any(|(n, e)| n < e) && limit.is_none_or(|l| records < l) {
        let wanted: Vec<FetchPartition> = partitions
            .iter()
            .zip(next.iter().zip(&end))
            .filter(|(_, (n, e))| n < e)
            .map(|(&p, (&n, _))| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(n)
                    .with_partition_max_bytes(max_bytes)
            })
            .collect();
        let response: FetchResponse = conn.call(
            FETCH_VERSION,
            &FetchRequest::default()
                .with_replica_id((-1).into())
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(name.clone())
                        .with_partitions(wanted),
                ]),
        )?;
        for t in response.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    bail!(
                        "fetch of partition {} failed: error code {}",
                        p.partition_index,
                        p.error_code
                    );
                }
                let Some(i) = partitions.iter().position(|&x| x == p.partition_index) else {
                    continue;
                };
                let Some(mut data) = p.records else { continue };
                // Whole batches only: one cut at the end of the response
                // comes again in the next fetch.
                while data.len() >= 12 {
                    let size = 12
                        + i32::from_be_bytes([data[8], data[9], data[10], data[11]]).max(0)
                            as usize;
                    if data.len() < size {
                        break;
                    }
                    let mut batch = data.split_to(size);
                    let sets = RecordBatchDecoder::decode_all(&mut batch)
                        .map_err(|e| anyhow::anyhow!("undecodable batch: {e}"))?;
                    for set in sets {
                        for r in set.records {
                            if r.offset >= next[i] {
                                records += 1;
                                bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64;
                                next[i] = r.offset + 1;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok((records, bytes, start.elapsed()))
}
