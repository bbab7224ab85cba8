//! `fjord group …`: list, describe, reset the offsets of and delete
//! consumer groups, through librdkafka like any Kafka tool.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::ClientArgs;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `fjord group …`
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// Groups the broker knows, with their state.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// State, members and assignments of a group, and per partition its
    /// committed offset, the log end offset and the lag.
    Describe {
        /// Group id.
        group: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set a group's committed offsets for a topic (the group must have no
    /// active members).
    ResetOffsets {
        /// Group id.
        group: String,
        /// Topic whose offsets are set (every partition).
        #[arg(long)]
        topic: String,
        /// The first offset still in the log.
        #[arg(long, group = "to")]
        to_earliest: bool,
        /// The log end offset (skip everything stored).
        #[arg(long, group = "to")]
        to_latest: bool,
        /// This offset in every partition.
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
        /// The first offset at or after this time: ms since the epoch, or
        /// RFC 3339 like 2026-01-31T12:00:00Z.
        #[arg(long, group = "to")]
        to_datetime: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a group with no active members, and its committed offsets.
    Delete {
        /// Group id.
        group: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

pub async fn run(command: GroupCommand) -> Result<()> {
    match command {
        GroupCommand::List { client } => tokio::task::block_in_place(|| list(&client)),
        GroupCommand::Describe { group, client } => {
            tokio::task::block_in_place(|| describe(&client, &group))
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            client,
        } => {
            let target = match (to_earliest, to_latest, to_offset, to_datetime) {
                (true, _, _, _) => Target::Earliest,
                (_, true, _, _) => Target::Latest,
                (_, _, Some(o), _) => Target::Offset(o),
                (_, _, _, Some(t)) => Target::Time(parse_time(&t)?),
                _ => {
                    bail!("say where to: --to-earliest, --to-latest, --to-offset or --to-datetime")
                }
            };
            tokio::task::block_in_place(|| reset(&client, &group, &topic, target))
        }
        GroupCommand::Delete { group, client } => delete(&client, &group).await,
    }
}

/// A consumer of `group` that never subscribes: it only fetches and
/// commits offsets.
fn group_consumer(client: &ClientArgs, group: &str) -> Result<BaseConsumer> {
    client
        .config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("could not create the consumer")
}

fn list(client: &ClientArgs) -> Result<()> {
    let consumer: BaseConsumer = client.config().create()?;
    let groups = consumer
        .fetch_group_list(None, TIMEOUT)
        .context("ListGroups failed")?;
    let mut rows: Vec<_> = groups
        .groups()
        .iter()
        .map(|g| {
            (
                g.name().to_string(),
                g.state().to_string(),
                g.members().len(),
            )
        })
        .collect();
    rows.sort();
    println!("{:<40} {:<22} MEMBERS", "GROUP", "STATE");
    for (name, state, members) in rows {
        println!("{name:<40} {state:<22} {members}");
    }
    Ok(())
}

/// `(topic, partition)` pairs of a consumer-protocol assignment.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if buf.len() < n {
            return None;
        }
        let (head, tail) = buf.split_at(n);
        *buf = tail;
        Some(head)
    }
    fn i16_(buf: &mut &[u8]) -> Option<i16> {
        take(buf, 2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32_(buf: &mut &[u8]) -> Option<i32> {
        take(buf, 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    let mut out = Vec::new();
    let mut buf = bytes;
    let parse = |buf: &mut &[u8], out: &mut Vec<(String, i32)>| -> Option<()> {
        i16_(buf)?;
        for _ in 0..i32_(buf)?.max(0) {
            let len = usize::try_from(i16_(buf)?).ok()?;
            let topic = String::from_utf8_lossy(take(buf, len)?).into_owned();
            for _ in 0..i32_(buf)?.max(0) {
                out.push((topic.clone(), i32_(buf)?));
            }
        }
        Some(())
    };
    let _ = parse(&mut buf, &mut out);
    out
}

fn describe(client: &ClientArgs, group: &str) -> Result<()> {
    let consumer = group_consumer(client, group)?;
    let groups = consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .context("DescribeGroups failed")?;
    let Some(info) = groups.groups().iter().find(|g| g.name() == group) else {
        bail!("group {group} not found");
    };
    println!("group:    {group}");
    println!("state:    {}", info.state());
    println!("protocol: {} {}", info.protocol_type(), info.protocol());
    println!("members:  {}", info.members().len());
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    for member in info.members() {
        let assigned = member
            .assignment()
            .map(decode_assignment)
            .unwrap_or_default();
        println!(
            "  {} client={} host={} partitions={}",
            member.id(),
            member.client_id(),
            member.client_host(),
            assigned
                .iter()
                .map(|(t, p)| format!("{t}-{p}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        for key in assigned {
            owner.insert(key, member.id().to_string());
        }
    }
    // Committed offsets of every topic the group has offsets for or is
    // assigned: OffsetFetch with all topics is not exposed by librdkafka,
    // so ask for the partitions of every topic in the cluster.
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .context("Metadata request failed")?;
    let mut all = TopicPartitionList::new();
    for topic in metadata.topics() {
        if topic.name().starts_with("__") {
            continue;
        }
        for p in topic.partitions() {
            all.add_partition(topic.name(), p.id());
        }
    }
    let committed = consumer
        .committed_offsets(all, TIMEOUT)
        .context("OffsetFetch failed")?;
    println!(
        "{:<30} {:>9} {:>12} {:>12} {:>8}  MEMBER",
        "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"
    );
    for e in committed.elements() {
        let key = (e.topic().to_string(), e.partition());
        let offset = match e.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        if offset.is_none() && !owner.contains_key(&key) {
            continue;
        }
        let (_, end) = consumer
            .fetch_watermarks(e.topic(), e.partition(), TIMEOUT)
            .context("ListOffsets failed")?;
        let lag = offset.map_or("-".to_string(), |o| (end - o).max(0).to_string());
        println!(
            "{:<30} {:>9} {:>12} {:>12} {:>8}  {}",
            e.topic(),
            e.partition(),
            offset.map_or("-".to_string(), |o| o.to_string()),
            end,
            lag,
            owner.get(&key).map_or("-", String::as_str)
        );
    }
    Ok(())
}

enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
}

/// Milliseconds since the epoch, or RFC 3339 (UTC `Z` or `±hh:mm`).
pub(crate) fn parse_time(text: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "--to-datetime {text:?}: expected ms or YYYY-MM-DDTHH:MM:SS[.fff](Z|±hh:mm)"
        )
    };
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = match (d.next(), d.next(), d.next()) {
        (Some(Ok(y)), Some(Ok(m)), Some(Ok(day))) => (y, m, day),
        _ => return Err(bad()),
    };
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (c, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, mi) = zone[1..].split_once(':').ok_or_else(bad)?;
        (c, sign * (h.parse::<i64>()? * 60 + mi.parse::<i64>()?))
    } else {
        return Err(bad());
    };
    let mut parts = clock.split(':');
    let (h, mi, s) = match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(mi), Some(s)) => (h.parse::<i64>()?, mi.parse::<i64>()?, s.parse::<f64>()?),
        _ => return Err(bad()),
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + h * 3600 + mi * 60 - offset_min * 60;
    Ok(seconds * 1000 + (s * 1000.0).round() as i64)
}

fn reset(client: &ClientArgs, group: &str, topic: &str, target: Target) -> Result<()> {
    let consumer = group_consumer(client, group)?;
    let groups = consumer
        .fetch_group_list(Some(group), TIMEOUT)
        .context("DescribeGroups failed")?;
    if let Some(info) = groups.groups().iter().find(|g| g.name() == group)
        && !info.members().is_empty()
    {
        bail!(
            "group {group} has {} active members; stop them first",
            info.members().len()
        );
    }
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .context("Metadata request failed")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .filter(|t| t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .context("no such topic")?;
    let mut offsets = TopicPartitionList::new();
    if let Target::Time(ms) = target {
        let mut times = TopicPartitionList::new();
        for &p in &partitions {
            times.add_partition_offset(topic, p, Offset::Offset(ms))?;
        }
        let found = consumer
            .offsets_for_times(times, TIMEOUT)
            .context("ListOffsets by time failed")?;
        for e in found.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                // No record at or after the time: the end.
                _ => consumer.fetch_watermarks(topic, e.partition(), TIMEOUT)?.1,
            };
            offsets.add_partition_offset(topic, e.partition(), Offset::Offset(offset))?;
        }
    } else {
        for &p in &partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .context("ListOffsets failed")?;
            let offset = match target {
                Target::Earliest => low,
                Target::Latest => high,
                Target::Offset(o) => o.clamp(low, high),
                Target::Time(_) => unreachable!("handled above"),
            };
            offsets.add_partition_offset(topic, p, Offset::Offset(offset))?;
        }
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .context("OffsetCommit failed")?;
    for e in offsets.elements() {
        if let Offset::Offset(o) = e.offset() {
            println!("{topic}-{} -> {o}", e.partition());
        }
    }
    Ok(())
}

async fn delete(client: &ClientArgs, group: &str) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client.config().create()?;
    let results = admin
        .delete_groups(
            &[group],
            &AdminOptions::new().request_timeout(Some(TIMEOUT)),
        )
        .await
        .context("DeleteGroups failed")?;
    for result in results {
        match result {
            Ok(name) => println!("deleted group {name}"),
            Err((name, code)) => bail!("group {name}: {code}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_time("1700000000000").ok(), Some(1_700_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:00Z").ok(), Some(0));
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").ok(),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-15T00:13:20.5+02:00").ok(),
            Some(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn assignments_decode() {
        // v0, one topic "t" with partitions 1 and 4, no user data.
        let bytes = [
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0,
        ];
        assert_eq!(
            decode_assignment(&bytes),
            vec![("t".to_string(), 1), ("t".to_string(), 4)]
        );
        assert!(decode_assignment(&[0, 0, 0]).is_empty());
    }
}
