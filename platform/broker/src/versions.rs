//! The API versions this broker implements, and so advertises.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// `(api, min, max)` of every implemented API. Only whole ranges are listed:
/// every version in a range is implemented (see `KAFKA-COMPAT.md`).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// APIs advertised from a version below the range the crate's (Kafka 4.1)
/// schemas hold, each handled by hand in `request.rs`:
/// - Produce from v0, as Kafka 4.0 advertises it although it answers v0–2
///   with UNSUPPORTED_VERSION (KAFKA-18659): librdkafka before 2.6.1 (Debian
///   12 ships 2.0.2, and so its kcat) will not compress with gzip, snappy or
///   lz4 unless the broker's lowest Produce version is 0. Answered, never
///   served.
/// - ListOffsets v0, which Kafka 4 removed: Burrow 1.2 (Debian 12's) asks
///   end offsets with nothing else. Served (`legacy_list_offsets`).
/// - OffsetCommit v1, which Kafka 4 removed: Sarama 1.22 (Debian 12's)
///   commits with it by default. Served as v2 (`legacy_offset_commit`).
/// - DescribeConfigs v0, which Kafka 4 removed: Sarama 1.22's ListTopics
///   and DescribeConfig send it. Served (`legacy_describe_configs`).
pub const ADVERTISED_BELOW: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 0),
    (ApiKey::ListOffsets, 0),
    (ApiKey::OffsetCommit, 1),
    (ApiKey::DescribeConfigs, 0),
];

/// The range ApiVersions advertises for `api` (see [`ADVERTISED_BELOW`]).
pub fn advertised_range(api: ApiKey) -> Option<VersionRange> {
    let mut range = supported_range(api)?;
    if let Some(&(_, min)) = ADVERTISED_BELOW.iter().find(|(key, _)| *key == api) {
        range.min = range.min.min(min);
    }
    Some(range)
}

/// The implemented range of `api`, or `None` when it is not implemented.
pub fn supported_range(api: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| VersionRange { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_ranges_are_within_the_crates_schemas() {
        for &(api, min, max) in SUPPORTED_APIS {
            let valid = api.valid_versions();
            assert!(min >= valid.min && max <= valid.max, "{api:?}");
        }
    }
}
