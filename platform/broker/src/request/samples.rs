//! Requests of every supported API for tests (fuzzing, encoding checks).

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use kafka_protocol::protocol::StrBytes;

/// A request of each supported API with some nested content, so
/// mutations land inside arrays, strings and tagged fields.
pub(crate) fn sample(api: ApiKey, version: i16) -> RequestKind {
    use kafka_protocol::messages::*;
    let name = || TopicName(StrBytes::from_static_str("topic"));
    let id = || uuid::Uuid::from_u128(0x5eed);
    let text = |s: &'static str| StrBytes::from_static_str(s);
    match api {
        // v13+ name topics by id (a random one: unknown to the broker).
        ApiKey::Produce => {
            RequestKind::Produce(ProduceRequest::default().with_acks(1).with_topic_data(vec![
                if version >= 13 {
                    produce_request::TopicProduceData::default().with_topic_id(id())
                } else {
                    produce_request::TopicProduceData::default().with_name(name())
                }
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_records(Some(Bytes::from_static(&[0u8; 70]))),
                ]),
            ]))
        }
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_topics(vec![
                    if version >= 13 {
                        fetch_request::FetchTopic::default().with_topic_id(id())
                    } else {
                        fetch_request::FetchTopic::default().with_topic(name())
                    }
                    .with_partitions(vec![fetch_request::FetchPartition::default()]),
                ]),
        ),
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                list_offsets_request::ListOffsetsTopic::default()
                    .with_name(name())
                    .with_partitions(vec![Default::default()]),
            ]))
        }
        ApiKey::Metadata => {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(name())),
            ])))
        }
        ApiKey::ApiVersions => RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(text("fuzz"))
                .with_client_software_version(text("1")),
        ),
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                create_topics_request::CreatableTopic::default()
                    .with_name(name())
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(text("retention.ms"))
                            .with_value(Some(text("1"))),
                    ]),
            ]))
        }
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(
            DeleteTopicsRequest::default().with_topic_names(vec![name()]),
        ),
        ApiKey::DeleteRecords => {
            RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_offset(0),
                    ]),
            ]))
        }
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(
            DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(text("topic")),
            ]),
        ),
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_name(text("topic"))
                    .with_configs(vec![Default::default()]),
            ]))
        }
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default().with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(name())
                    .with_count(3),
            ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_name(text("topic"))
                    .with_configs(vec![Default::default()]),
            ]),
        ),
        ApiKey::InitProducerId => RequestKind::InitProducerId(
            InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        ),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(if version >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![text("group"), text("other")])
        } else {
            FindCoordinatorRequest::default().with_key(text("group"))
        }),
        // A session timeout under the broker's minimum: answered at once
        // (INVALID_SESSION_TIMEOUT) instead of parking for a rebalance.
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_session_timeout_ms(1)
                .with_protocol_type(text("consumer"))
                .with_protocols(vec![
                    join_group_request::JoinGroupRequestProtocol::default()
                        .with_name(text("range"))
                        .with_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 0])),
                ]),
        ),
        ApiKey::SyncGroup => RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_member_id(text("member"))
                .with_assignments(vec![
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(text("member"))
                        .with_assignment(Bytes::from_static(&[0, 1])),
                ]),
        ),
        ApiKey::Heartbeat => RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_member_id(text("member")),
        ),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(if version >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_members(vec![
                    leave_group_request::MemberIdentity::default()
                        .with_member_id(text("member")),
                ])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_member_id(text("member"))
        }),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(text("group")), GroupId(text("none"))]),
        ),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("none"))]),
        ),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_committed_offset(5)
                                .with_committed_metadata(Some(text("m"))),
                        ]),
                ]),
        ),
        ApiKey::OffsetFetch if version < 8 => RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name())
                        .with_partition_indexes(vec![0, 1]),
                ])),
        ),
        ApiKey::OffsetFetch => {
            RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(text("group")))
                        .with_topics(Some(vec![
                            offset_fetch_request::OffsetFetchRequestTopics::default()
                                .with_name(name())
                                .with_partition_indexes(vec![0]),
                        ])),
                ]))
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(name())
                        .with_partitions(vec![Default::default()]),
                ]),
        ),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(
            kafka_protocol::messages::DescribeProducersRequest::default().with_topics(vec![
                kafka_protocol::messages::describe_producers_request::TopicRequest::default()
                    .with_name(name())
                    .with_partition_indexes(vec![0]),
            ]),
        ),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
            kafka_protocol::messages::OffsetForLeaderEpochRequest::default().with_topics(vec![
                kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(name())
                    .with_partitions(vec![Default::default()]),
            ]),
        ),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(
            ElectLeadersRequest::default()
                .with_election_type(if version >= 1 { 1 } else { 0 })
                .with_topic_partitions(Some(vec![
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(name())
                        .with_partitions(vec![0, 1]),
                ])),
        ),
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(name())
                    .with_partitions(vec![
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_replicas(Some(vec![BrokerId(1), BrokerId(2)])),
                        alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(1)
                            .with_replicas(None),
                    ]),
            ]),
        ),
        ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(
            ListPartitionReassignmentsRequest::default().with_topics(Some(vec![
                list_partition_reassignments_request::ListPartitionReassignmentsTopics::default()
                    .with_name(name())
                    .with_partition_indexes(vec![0]),
            ])),
        ),
        ApiKey::UnregisterBroker => RequestKind::UnregisterBroker(
            UnregisterBrokerRequest::default().with_broker_id(BrokerId(2)),
        ),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(
            DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(text("alice")),
            ])),
        ),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(
            AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(text("bob"))
                        .with_mechanism(1),
                ])
                .with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(text("alice"))
                        .with_mechanism(2)
                        .with_iterations(4096)
                        .with_salt(Bytes::from_static(&[1; 16]))
                        .with_salted_password(Bytes::from_static(&[2; 64])),
                ]),
        ),
        ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(
            DescribeClientQuotasRequest::default().with_components(vec![
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(text("user"))
                    .with_match_type(0)
                    .with_match(Some(text("alice"))),
            ]),
        ),
        ApiKey::AlterClientQuotas => RequestKind::AlterClientQuotas(
            AlterClientQuotasRequest::default().with_entries(vec![
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![
                        alter_client_quotas_request::EntityData::default()
                            .with_entity_type(text("client-id"))
                            .with_entity_name(Some(text("app"))),
                    ])
                    .with_ops(vec![
                        alter_client_quotas_request::OpData::default()
                            .with_key(text("producer_byte_rate"))
                            .with_value(1048576.0),
                    ]),
            ]),
        ),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
        ),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"\0fjord-internal\0password")),
        ),
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
            create_acls_request::AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(text("topic"))
                .with_resource_pattern_type(3)
                .with_principal(text("User:alice"))
                .with_host(text("*"))
                .with_operation(3)
                .with_permission_type(3),
        ])),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(
            DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        ),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(text("topic")))
                .with_pattern_type_filter(3)
                .with_principal_filter(Some(text("User:alice")))
                .with_operation(1)
                .with_permission_type(1),
        ])),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default()
                .with_topics(vec![
                    describe_topic_partitions_request::TopicRequest::default()
                        .with_name(name()),
                ])
                .with_cursor(Some(
                    describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(name())
                        .with_partition_index(1),
                )),
        ),
        ApiKey::DescribeLogDirs => {
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(Some(
                vec![
                    describe_log_dirs_request::DescribableLogDirTopic::default()
                        .with_topic(name())
                        .with_partitions(vec![0, 1]),
                ],
            )))
        }
        ApiKey::AlterReplicaLogDirs => {
            RequestKind::AlterReplicaLogDirs(AlterReplicaLogDirsRequest::default().with_dirs(
                vec![
                    alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                        .with_path(text("/elsewhere"))
                        .with_topics(vec![
                            alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                                .with_name(name())
                                .with_partitions(vec![0]),
                        ]),
                ],
            ))
        }
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(text("group")))
                .with_member_id(text("member"))
                .with_rebalance_timeout_ms(1000)
                .with_subscribed_topic_names(Some(vec![name()]))
                .with_topic_partitions(Some(vec![])),
        ),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
            ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![GroupId(text("group")), GroupId(text("none"))]),
        ),
        _ => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    }
}
