//! The pure request path: frame bytes in, a decoded request (or a reason to
//! refuse it) out; and response encoding. No sockets here, so the decoder
//! can be fed arbitrary bytes in tests.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, ProduceRequest, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::limits::decode_with_element_limit;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::versions::{advertised_range, supported_range};

/// A decoded request.
#[derive(Debug)]
pub struct DecodedRequest {
    /// The request header (correlation id, client id, …).
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// The version, within the advertised range.
    pub version: i16,
    /// The body.
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Frame {
    /// A request to handle.
    Request(Box<DecodedRequest>),
    /// An ApiVersions request of a version this broker does not know: it is
    /// answered in v0 with `UNSUPPORTED_VERSION` and the broker's ranges,
    /// so the client retries lower.
    UnsupportedApiVersions {
        /// Echoed in the answer.
        correlation_id: i32,
    },
    /// A DescribeConfigs v0 (see `legacy_describe_configs`): served by the
    /// v1 handler, answered in v0's layout.
    LegacyDescribeConfigs(Box<crate::legacy_describe_configs::LegacyDescribeConfigs>),
    /// A ListOffsets v0 (see `legacy_list_offsets`): served by the v1
    /// handler, answered in v0's layout.
    LegacyListOffsets(Box<crate::legacy_list_offsets::LegacyListOffsets>),
    /// A Produce v0–2: advertised (see `versions::ADVERTISED_BELOW`) but
    /// not served. Answered with UNSUPPORTED_VERSION for every partition it
    /// names (nothing when `acks` is 0), as Kafka 4.0 does.
    LegacyProduce {
        /// Echoed in the answer.
        correlation_id: i32,
        /// 0, 1 or 2.
        version: i16,
        /// The request (decoded as v3: its body is v3's without the
        /// transactional id).
        request: Box<ProduceRequest>,
    },
}

/// Why a frame is refused; the connection is closed after a log line.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the 8 bytes of api key, version and correlation id.
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A known API this broker does not implement.
    #[error("API {0:?} is not supported")]
    UnsupportedApi(ApiKey),
    /// A version outside the advertised range.
    #[error("{api:?} version {version} is not supported (supported: {min}..={max})")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
    },
    /// The request holds more array elements and tagged fields than
    /// `request.max.array.elements`; decoding stopped before allocating them.
    #[error(
        "{api:?} v{version} request holds more than {limit} array elements and tagged fields (request.max.array.elements)"
    )]
    TooManyElements {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The limit.
        limit: usize,
    },
    /// The header or body does not decode.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
}

/// `request.max.array.elements`' default.
pub const DEFAULT_MAX_ELEMENTS: usize = 100_000;

/// Decodes one request frame (without its length prefix) with at most
/// [`DEFAULT_MAX_ELEMENTS`] array elements and tagged fields; see
/// [`decode_request_limited`].
pub fn decode_request(frame: Bytes) -> Result<Frame, DecodeError> {
    decode_request_limited(frame, DEFAULT_MAX_ELEMENTS).map(|(frame, _)| frame)
}

/// Decodes one request frame (without its length prefix). Checks the API
/// and version against the advertised ranges *before* decoding, and never
/// panics, whatever the bytes. Every array's and tagged-field section's
/// count is charged against `max_elements` before its elements are built
/// (the element count a frame may hold is no bound: an empty topic name is
/// 2 bytes on the wire and ~90 decoded); also returns how many were built.
pub fn decode_request_limited(
    frame: Bytes,
    max_elements: usize,
) -> Result<(Frame, usize), DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let mut peek = &frame[..8];
    let key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let api_key = ApiKey::try_from(key).map_err(|()| DecodeError::UnknownApiKey(key))?;
    let range = supported_range(api_key).ok_or(DecodeError::UnsupportedApi(api_key))?;
    let advertised = advertised_range(api_key).unwrap_or(range);
    if api_key == ApiKey::Produce && (advertised.min..range.min).contains(&version) {
        let (decoded, count) = decode_with_element_limit(max_elements, || {
            decode_legacy_produce(frame, version, correlation_id)
        });
        if count.exceeded {
            return Err(DecodeError::TooManyElements {
                api: api_key,
                version,
                limit: max_elements,
            });
        }
        return decoded.map(|frame| (frame, count.used));
    }
    if api_key == ApiKey::OffsetCommit && (advertised.min..range.min).contains(&version) {
        return crate::legacy_offset_commit::decode(frame, max_elements)
            .map(|(request, used)| (Frame::Request(Box::new(request)), used));
    }
    if api_key == ApiKey::DescribeConfigs && (advertised.min..range.min).contains(&version) {
        return crate::legacy_describe_configs::decode(frame, max_elements)
            .map(|(legacy, used)| (Frame::LegacyDescribeConfigs(Box::new(legacy)), used));
    }
    if api_key == ApiKey::ListOffsets && (advertised.min..range.min).contains(&version) {
        return crate::legacy_list_offsets::decode(frame, max_elements)
            .map(|(legacy, used)| (Frame::LegacyListOffsets(Box::new(legacy)), used));
    }
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions && version > range.max {
            return Ok((Frame::UnsupportedApiVersions { correlation_id }, 0));
        }
        return Err(DecodeError::UnsupportedVersion {
            api: api_key,
            version,
            min: range.min,
            max: range.max,
        });
    }
    let malformed = |reason: String| DecodeError::Malformed {
        api: api_key,
        version,
        reason,
    };
    let mut buf = frame;
    let header_version = api_key.request_header_version(version);
    let (decoded, count) = decode_with_element_limit(max_elements, || {
        let header = RequestHeader::decode(&mut buf, header_version)
            .map_err(|e| malformed(format!("header: {e}")))?;
        let body = RequestKind::decode(api_key, &mut buf, version)
            .map_err(|e| malformed(format!("body: {e}")))?;
        Ok((header, body))
    });
    if count.exceeded {
        return Err(DecodeError::TooManyElements {
            api: api_key,
            version,
            limit: max_elements,
        });
    }
    let (header, body) = decoded?;
    Ok((
        Frame::Request(Box::new(DecodedRequest {
            header,
            api_key,
            version,
            body,
        })),
        count.used,
    ))
}

/// Decodes a Produce v0–2 to refuse it: its header is v1, and its body is
/// v3's without the leading nullable transactional id, so it is decoded as
/// v3 behind a null one.
fn decode_legacy_produce(
    frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<Frame, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        api: ApiKey::Produce,
        version,
        reason,
    };
    let mut buf = frame;
    RequestHeader::decode(&mut buf, 1).map_err(|e| malformed(format!("header: {e}")))?;
    let mut body = BytesMut::with_capacity(buf.len() + 2);
    body.put_i16(-1);
    body.put_slice(&buf);
    let request = ProduceRequest::decode(&mut body.freeze(), 3)
        .map_err(|e| malformed(format!("body: {e}")))?;
    Ok(Frame::LegacyProduce {
        correlation_id,
        version,
        request: Box::new(request),
    })
}

/// The answer to a Produce v0–2 ([`Frame::LegacyProduce`]): every
/// partition UNSUPPORTED_VERSION, in the v0–2 layout (which the crate's
/// schemas no longer hold): per partition index, error code, base offset
/// (-1) and from v2 the log append time (-1); from v1 a throttle time.
pub fn encode_legacy_produce_refusal(
    correlation_id: i32,
    version: i16,
    request: &ProduceRequest,
) -> BytesMut {
    let code = kafka_protocol::ResponseError::UnsupportedVersion.code();
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(request.topic_data.len() as i32);
    for topic in &request.topic_data {
        let name = topic.name.as_bytes();
        buf.put_i16(name.len() as i16);
        buf.put_slice(name);
        buf.put_i32(topic.partition_data.len() as i32);
        for partition in &topic.partition_data {
            buf.put_i32(partition.index);
            buf.put_i16(code);
            buf.put_i64(-1);
            if version >= 2 {
                buf.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0);
    }
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    buf
}

/// Encodes a response frame, length prefix included. ApiVersions always
/// gets response header v0.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<BytesMut, String> {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| format!("response header: {e}"))?;
    response
        .encode(&mut buf, version)
        .map_err(|e| format!("{api_key:?} v{version} response: {e}"))?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf)
}

/// The v0 ApiVersions answer to an ApiVersions request of unknown version.
pub fn encode_unsupported_api_versions(
    correlation_id: i32,
    response: &ApiVersionsResponse,
) -> Result<BytesMut, String> {
    encode_response(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &ResponseKind::ApiVersions(response.clone()),
    )
}

/// Requests of every supported API for tests (fuzzing, encoding checks).
#[cfg(test)]
pub(crate) mod samples {
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
}

#[cfg(test)]
mod tests {
    use super::samples::sample;
    use super::*;
    use crate::versions::SUPPORTED_APIS;
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
}
