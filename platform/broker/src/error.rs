//! The broker's error type, and the one place where the errors of the
//! layers below the request handlers (log, partition, producer state,
//! group coordinator, authorisation, SASL) become Kafka error codes.
//! Handlers call these mappings; the layers themselves never deal in codes.
//! `LocalError`, the in-process API's error, is here too, so its codes come
//! from the same mappings.

use std::path::PathBuf;

use fjord_log::{LogError, RecordError};
use kafka_protocol::ResponseError;

use crate::auth::AuthError;
use crate::producer_state::SequenceError;
use crate::sasl::SaslError;

/// What can stop the broker from starting, persisting metadata or shutting
/// down cleanly. Errors a client causes never become a `BrokerError`: they
/// are answered with a Kafka error code or end that one connection.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration is unusable (bad listener address, bad values).
    #[error("invalid broker configuration: {0}")]
    Config(String),
    /// Binding or accepting on the listener failed.
    #[error("listener {addr}: {source}")]
    Listen {
        /// The address we tried to bind.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A metadata file (topic definitions, cluster id) could not be read or
    /// written.
    #[error("metadata file {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A partition log failed to open, flush or close.
    #[error("log {path}: {source}")]
    Log {
        /// The partition directory.
        path: PathBuf,
        /// The log's error.
        source: LogError,
    },
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// Another broker process has the data directory open.
    #[error(
        "data directory {path} is in use by another fjord server{holder}; stop it, or give this one another data directory"
    )]
    DataDirInUse {
        /// The data directory.
        path: PathBuf,
        /// ` (pid N)` when the lock file says.
        holder: String,
    },
}

impl BrokerError {
    pub(crate) fn metadata(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        BrokerError::Metadata {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Why a partition did not serve or store what it was asked: the
/// partition layer's error. [`partition_error_code`] gives the
/// Kafka code a client gets for each.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// This broker does not lead the partition (or, in a cluster, has no
    /// current session with the quorum), found before serving a request.
    #[error("{topic}-{partition} is led by another broker")]
    NotLeader { topic: String, partition: i32 },
    /// An append reached a partition this broker does not lead: an
    /// in-process writer (pipelines, the group coordinator), or a Produce
    /// whose leadership moved after its check.
    #[error("{topic}-{partition} is led by another broker")]
    NotLeaderAtAppend { topic: String, partition: i32 },
    /// The client names a leader epoch older than this leader's.
    #[error("leader epoch {client} is older than the current {current}")]
    FencedLeaderEpoch { client: i32, current: i32 },
    /// The client names a leader epoch this broker has not reached yet.
    #[error("leader epoch {client} is newer than the current {current}")]
    UnknownLeaderEpoch { client: i32, current: i32 },
    /// Leadership moved while an acks=all append waited for its in-sync
    /// replicas.
    #[error("leadership moved before the in-sync replicas confirmed offset {offset}")]
    LeadershipMoved { offset: i64 },
    /// The in-sync replicas did not confirm an acks=all append in time.
    #[error("the in-sync replicas did not confirm offset {offset} in time")]
    NotConfirmed { offset: i64 },
    /// The producer's sequence or epoch does not fit.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// The blocking thread doing the append (or rebuilding the producer
    /// state) panicked or was cancelled.
    #[error("{0}")]
    Interrupted(String),
    /// The log refused the batch or failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl PartitionError {
    /// The records at fault, for a Produce answer (KIP-467).
    pub(crate) fn record_errors(&self) -> &[RecordError] {
        match self {
            PartitionError::Log(e) => e.record_errors(),
            _ => &[],
        }
    }
}

/// Why the group coordinator refused a request, or could not store what
/// it accepted in `__consumer_offsets`: the group layer's error.
/// [`group_error_code`] gives the Kafka code a client gets for each.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// The group id is empty.
    #[error("the group id is empty")]
    InvalidGroupId,
    /// A JoinGroup's session timeout is outside
    /// `group.min/max.session.timeout.ms`.
    #[error("the session timeout is outside the broker's limits")]
    InvalidSessionTimeout,
    /// A joining member shares no protocol (or not the protocol type)
    /// with the group's members.
    #[error("no protocol in common with the group")]
    InconsistentGroupProtocol,
    /// A first JoinGroup (v4+) without member id: the client joins again
    /// with the id it is given (KIP-394).
    #[error("the member has to join again with the id it was given")]
    MemberIdRequired,
    /// The group is being deleted.
    #[error("the group is dead")]
    Dead,
    /// A static member the group names is not among its members (a broken
    /// invariant, not a client error).
    #[error("the static member is missing from its group")]
    StaticMemberMissing,
    /// The coordinator has no such group (DescribeGroups v6, DeleteGroups,
    /// OffsetDelete).
    #[error("no such group")]
    GroupIdNotFound,
    /// DeleteGroups of a group that has members or rebalances.
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// OffsetDelete of a topic the group's live members are subscribed to.
    #[error("the group is subscribed to the topic")]
    SubscribedToTopic,
    /// OffsetCommit of a partition that does not exist.
    #[error("no such topic or partition")]
    UnknownTopicOrPartition,
    /// OffsetCommit with metadata over `offset.metadata.max.bytes`.
    #[error("the offset metadata is too large")]
    OffsetMetadataTooLarge,
    /// A new member would take the group over `group.max.size`.
    #[error("the group has reached group.max.size members")]
    GroupMaxSizeReached,
    /// A JoinGroup's protocols weigh more than
    /// `group.protocol.metadata.max.bytes`.
    #[error("the JoinGroup protocol metadata is over group.protocol.metadata.max.bytes")]
    ProtocolMetadataTooLarge,
    /// No such member in the group (or no such group).
    #[error("unknown member")]
    UnknownMember,
    /// Another instance took the member's static instance id.
    #[error("the member's instance id is fenced")]
    FencedInstance,
    /// The member names a generation other than the group's.
    #[error("not the group's current generation")]
    IllegalGeneration,
    /// The group is rebalancing: the member rejoins.
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// Another broker coordinates the group.
    #[error("this broker does not coordinate the group")]
    NotCoordinator,
    /// This broker coordinates the group but is still loading its offsets.
    #[error("the group's offsets are still loading")]
    LoadInProgress,
    /// `__consumer_offsets` does not exist yet and cannot be created now.
    #[error("__consumer_offsets is not available")]
    CoordinatorNotAvailable,
    /// A batch of offsets records could not be built.
    #[error("cannot encode an offsets batch: {0}")]
    Encode(#[source] LogError),
    /// The group's partition of `__consumer_offsets` refused the append.
    #[error("offsets not persisted: {0}")]
    NotPersisted(#[source] PartitionError),
    /// The in-sync replicas did not confirm the append.
    #[error("offsets not replicated: {0}")]
    NotReplicated(#[source] PartitionError),
    /// A malformed KIP-848 heartbeat: why.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A subscription regex that does not compile (or is too large): why.
    #[error("invalid regular expression: {0}")]
    InvalidRegex(String),
    /// A server assignor this coordinator does not have.
    #[error("unsupported assignor {0:?} (uniform, range)")]
    UnsupportedAssignor(String),
    /// A consumer-protocol heartbeat for a group with live classic members.
    #[error("the group is not a consumer group: it has classic members")]
    NotConsumerGroup,
    /// A static member joins while another member holds its instance id.
    #[error("the instance id is still used by another member")]
    UnreleasedInstanceId,
    /// A KIP-848 member heartbeats with an epoch the coordinator fenced.
    #[error("the member epoch is fenced")]
    FencedMemberEpoch,
    /// A KIP-848 member commits or fetches with an epoch not its current one.
    #[error("the member epoch is stale")]
    StaleMemberEpoch,
}

impl GroupError {
    /// Whether the coordinator accepted the request but could not store it
    /// in `__consumer_offsets` (rather than refusing it).
    pub(crate) fn is_storage(&self) -> bool {
        matches!(
            self,
            GroupError::CoordinatorNotAvailable
                | GroupError::NotCoordinator
                | GroupError::Encode(_)
                | GroupError::NotPersisted(_)
                | GroupError::NotReplicated(_)
        )
    }
}

/// Why the transaction coordinator refused a request, or could not store
/// what it accepted in `__transaction_state`. [`txn_error_code`] gives the
/// Kafka code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxnError {
    /// Another broker coordinates the transactional id.
    #[error("this broker does not coordinate the transactional id")]
    NotCoordinator,
    /// `__transaction_state` does not exist yet and cannot be created now.
    #[error("__transaction_state is not available")]
    CoordinatorNotAvailable,
    /// This broker leads the id's partition of `__transaction_state` but
    /// is still loading its ids (a new leader): the client retries.
    #[error("the transactional ids of this partition are still loading")]
    LoadInProgress,
    /// A commit or abort of the id is being completed, or an open
    /// transaction is being aborted before a new producer takes over.
    #[error("a transaction of this id is completing")]
    ConcurrentTransactions,
    /// The request names another producer id than the id's current one.
    #[error("the producer id is not the transactional id's")]
    InvalidProducerIdMapping,
    /// The request's epoch is not the current one: a newer producer of the
    /// same transactional id took over.
    #[error("the producer was fenced by a newer one of the same transactional id")]
    ProducerFenced,
    /// The request does not fit the transaction's state (ending a
    /// transaction that was not begun, committing an aborting one).
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    /// `transaction.timeout.ms` over `transaction.max.timeout.ms` (or not
    /// positive).
    #[error("the transaction timeout is over transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
    /// The id's partition of `__transaction_state` refused the write, or
    /// its in-sync replicas did not confirm it.
    #[error("transaction state not persisted: {0}")]
    NotPersisted(String),
}

/// Why a partition leader did not get the transaction coordinator's word
/// that a producer's partition is in its open transaction (KIP-890 part 1,
/// `crate::txn::verify`).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The coordinator answered: the partition is not in the producer's
    /// open transaction (or no transaction is open).
    #[error("the partition was not added to the producer's open transaction")]
    NotInTransaction,
    /// This broker is the coordinator and refused.
    #[error(transparent)]
    Local(#[from] TxnError),
    /// The coordinator's broker refused with this Kafka code.
    #[error("the transaction coordinator answered error code {0}")]
    Coordinator(i16),
    /// No broker leads the id's partition of `__transaction_state`, or the
    /// topic does not exist.
    #[error("the transaction coordinator is not available")]
    CoordinatorUnavailable,
    /// The coordinator's broker could not be asked.
    #[error("the transaction coordinator could not be asked: {0}")]
    Unreachable(String),
}

/// Whether a Kafka code from a coordinator means "ask again later".
fn coordinator_busy(code: i16) -> bool {
    code == ResponseError::NotCoordinator.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::CoordinatorLoadInProgress.code()
        || code == ResponseError::ConcurrentTransactions.code()
}

/// The Kafka code of a failed verification. As Kafka's ReplicaManager: a
/// partition not in the transaction is INVALID_TXN_STATE, a fenced
/// producer INVALID_PRODUCER_EPOCH, and a coordinator that could not
/// answer is `retriable` (NOT_ENOUGH_REPLICAS for Produce, which every
/// producer retries; COORDINATOR_NOT_AVAILABLE for TxnOffsetCommit).
pub(crate) fn verify_error_code(error: &VerifyError, retriable: i16) -> i16 {
    let code = match error {
        VerifyError::NotInTransaction => return ResponseError::InvalidTxnState.code(),
        VerifyError::CoordinatorUnavailable | VerifyError::Unreachable(_) => return retriable,
        VerifyError::Local(e) => txn_error_code(e, true),
        VerifyError::Coordinator(code) => *code,
    };
    if code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else if coordinator_busy(code) {
        retriable
    } else {
        code
    }
}

/// The Kafka code of a transaction coordinator refusal. `fenced_known`:
/// the request version knows PRODUCER_FENCED (KIP-588); older ones get
/// INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub(crate) fn txn_error_code(error: &TxnError, fenced_known: bool) -> i16 {
    match error {
        TxnError::NotCoordinator => ResponseError::NotCoordinator.code(),
        TxnError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable.code(),
        TxnError::LoadInProgress => ResponseError::CoordinatorLoadInProgress.code(),
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions.code(),
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping.code(),
        TxnError::ProducerFenced if fenced_known => ResponseError::ProducerFenced.code(),
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch.code(),
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState.code(),
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout.code(),
        // Kafka maps a failed state append to NOT_COORDINATOR (the client
        // looks the coordinator up again and retries).
        TxnError::NotPersisted(_) => ResponseError::NotCoordinator.code(),
    }
}

/// The Kafka error code a client gets when the group coordinator refuses
/// its request or cannot store its commit.
pub(crate) fn group_error_code(error: &GroupError) -> i16 {
    match error {
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId.code(),
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout.code(),
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol.code(),
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired.code(),
        GroupError::Dead => ResponseError::CoordinatorNotAvailable.code(),
        GroupError::StaticMemberMissing => ResponseError::UnknownServerError.code(),
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound.code(),
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup.code(),
        GroupError::SubscribedToTopic => ResponseError::GroupSubscribedToTopic.code(),
        GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition.code(),
        GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge.code(),
        GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached.code(),
        GroupError::ProtocolMetadataTooLarge => ResponseError::InvalidRequest.code(),
        GroupError::UnknownMember => ResponseError::UnknownMemberId.code(),
        GroupError::FencedInstance => ResponseError::FencedInstanceId.code(),
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration.code(),
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress.code(),
        GroupError::NotCoordinator => ResponseError::NotCoordinator.code(),
        GroupError::LoadInProgress => ResponseError::CoordinatorLoadInProgress.code(),
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable.code(),
        GroupError::Encode(_) => ResponseError::UnknownServerError.code(),
        // Whatever the partition said, as it always was.
        GroupError::NotPersisted(_) => ResponseError::KafkaStorageError.code(),
        // Leadership of the group's partition moved, and with it the
        // coordination: the client finds the new coordinator.
        GroupError::NotReplicated(PartitionError::LeadershipMoved { .. }) => {
            ResponseError::NotCoordinator.code()
        }
        GroupError::NotReplicated(e) => partition_error_code(e),
        GroupError::InvalidRequest(_) => ResponseError::InvalidRequest.code(),
        GroupError::InvalidRegex(_) => ResponseError::InvalidRegularExpression.code(),
        GroupError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor.code(),
        // As Kafka answers a consumer heartbeat for a classic group.
        GroupError::NotConsumerGroup => ResponseError::GroupIdNotFound.code(),
        GroupError::UnreleasedInstanceId => ResponseError::UnreleasedInstanceId.code(),
        GroupError::FencedMemberEpoch => ResponseError::FencedMemberEpoch.code(),
        GroupError::StaleMemberEpoch => ResponseError::StaleMemberEpoch.code(),
    }
}

/// Why an in-process operation of [`LocalBroker`](crate::LocalBroker) (and
/// the admin calls built on it) failed. Each variant stands for the Kafka
/// error a client making the matching request would have got
/// ([`LocalError::code`]); it displays as `what went wrong (KafkaErrorName)`.
#[derive(Debug)]
#[non_exhaustive]
pub enum LocalError {
    /// The metadata frontend refused a topic operation, as CreateTopics,
    /// DeleteTopics or IncrementalAlterConfigs would have been refused: its
    /// Kafka code (the frontend answers in codes) and message.
    Metadata {
        /// The Kafka error code.
        code: i16,
        /// What went wrong.
        message: String,
    },
    /// A topic config is not valid: what is wrong with it.
    InvalidConfig(String),
    /// The named topic does not exist.
    UnknownTopic(String),
    /// The group coordinator refused a member-less commit of `group` (it
    /// has members).
    CommitRefused {
        /// The group.
        group: String,
        /// The coordinator's refusal.
        source: GroupError,
    },
    /// The commit was accepted but `__consumer_offsets` did not store it.
    CommitNotStored {
        /// The group.
        group: String,
        /// Why it was not stored.
        source: GroupError,
    },
    /// An in-process transaction ([`TransactionalWriter`](crate::TransactionalWriter))
    /// was refused: its id, the Kafka code a client would have got, and
    /// what went wrong.
    Transaction {
        /// The transactional id.
        id: String,
        /// The Kafka error code.
        code: i16,
        /// What went wrong.
        message: String,
    },
    /// Not a Kafka error (a thread that could not start, a topic that was
    /// not created): what went wrong.
    Other(String),
}

impl LocalError {
    /// An error that is not a Kafka error (a thread that could not start).
    pub fn from_message(message: impl Into<String>) -> Self {
        LocalError::Other(message.into())
    }

    /// The Kafka error code a client would have got.
    pub fn code(&self) -> i16 {
        match self {
            LocalError::Metadata { code, .. } | LocalError::Transaction { code, .. } => *code,
            LocalError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
            LocalError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition.code(),
            LocalError::CommitRefused { source, .. }
            | LocalError::CommitNotStored { source, .. } => group_error_code(source),
            LocalError::Other(_) => ResponseError::UnknownServerError.code(),
        }
    }

    /// The name of the Kafka error (`UnknownTopicOrPartition`, …).
    pub fn code_name(&self) -> String {
        let code = self.code();
        match ResponseError::try_from_code(code) {
            Some(e) => format!("{e:?}"),
            None => format!("error code {code}"),
        }
    }

    /// What went wrong, for a log line or a status page (without the
    /// error's name).
    pub fn message(&self) -> String {
        match self {
            LocalError::Metadata { message, .. }
            | LocalError::InvalidConfig(message)
            | LocalError::Other(message) => message.clone(),
            LocalError::UnknownTopic(topic) => format!("topic {topic:?} does not exist"),
            LocalError::Transaction { id, message, .. } => {
                format!("transaction {id}: {message}")
            }
            LocalError::CommitRefused { group, .. } => format!("group {group} refused the commit"),
            LocalError::CommitNotStored { group, .. } => {
                format!("offsets of group {group} not stored")
            }
        }
    }
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message(), self.code_name())
    }
}

impl std::error::Error for LocalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LocalError::CommitRefused { source, .. }
            | LocalError::CommitNotStored { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The Kafka error code a client gets for a log error: CORRUPT_MESSAGE
/// (retriable) only for bytes that do not match their CRC; a batch whose
/// CRC matches but whose records are wrong is INVALID_RECORD (not
/// retriable: the producer wrote it so), decompressing past
/// `message.max.decompressed.bytes` and an unknown codec included.
pub(crate) fn log_error_code(error: &LogError) -> i16 {
    match error {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage.code(),
        LogError::InvalidRecord { .. } => ResponseError::InvalidRecord.code(),
        LogError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp.code(),
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::Io(_) | LogError::TooManyOpenFiles { .. } => {
            ResponseError::KafkaStorageError.code()
        }
        _ => ResponseError::UnknownServerError.code(),
    }
}

/// The Kafka error code a client gets when a partition does not serve or
/// store its request.
pub(crate) fn partition_error_code(error: &PartitionError) -> i16 {
    match error {
        PartitionError::NotLeader { .. } => ResponseError::NotLeaderOrFollower.code(),
        // Leadership moved between the handler's check and the append:
        // the client refreshes its metadata and retries at the new leader
        // (KAFKA_STORAGE_ERROR would say this broker's disk failed).
        PartitionError::NotLeaderAtAppend { .. } => ResponseError::NotLeaderOrFollower.code(),
        PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch.code(),
        PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch.code(),
        PartitionError::LeadershipMoved { .. } => ResponseError::NotLeaderOrFollower.code(),
        PartitionError::NotConfirmed { .. } => ResponseError::RequestTimedOut.code(),
        PartitionError::Sequence(e) => sequence_error_code(e),
        // A panicked or cancelled append thread: the storage layer's code,
        // as when it travelled as a log I/O error.
        PartitionError::Interrupted(_) => ResponseError::KafkaStorageError.code(),
        PartitionError::Log(e) => log_error_code(e),
    }
}

/// Whether a Produce answer refusing an append carries the partition's
/// log start offset: Kafka's `ReplicaManager.appendToLocalLog` answers it
/// for a refusal of the records' contents (INVALID_RECORD,
/// INVALID_TIMESTAMP) or of the producer's sequence, and -1 for one of the
/// partition, its disk, or the batch's bytes or size (NOT_LEADER_OR_FOLLOWER,
/// KAFKA_STORAGE_ERROR, CORRUPT_MESSAGE, MESSAGE_TOO_LARGE).
pub(crate) fn answers_log_start(error: &PartitionError) -> bool {
    matches!(
        error,
        PartitionError::Sequence(_)
            | PartitionError::Log(
                LogError::InvalidRecord { .. } | LogError::InvalidTimestamp { .. }
            )
    )
}

/// The Kafka error code of an idempotent batch whose sequence or epoch does
/// not fit.
pub(crate) fn sequence_error_code(error: &SequenceError) -> i16 {
    match error {
        SequenceError::InvalidEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
        SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
        SequenceError::UnknownProducer { .. } => ResponseError::UnknownProducerId.code(),
        SequenceError::NotTransactional { .. } => ResponseError::InvalidTxnState.code(),
        SequenceError::NotVerified { .. } => ResponseError::InvalidTxnState.code(),
    }
}

/// The Kafka error code of an ACL binding or filter the authorizer cannot
/// take (CreateAcls, DescribeAcls, DeleteAcls): INVALID_REQUEST, as
/// Kafka's `AclControlManager` answers.
pub(crate) fn acl_error_code(_error: &crate::authorizer::AclError) -> i16 {
    ResponseError::InvalidRequest.code()
}

/// The Kafka error code a client gets for a request its principal may not
/// make (Kafka refuses appends to its internal topics with the same code).
pub(crate) fn auth_error_code(error: &AuthError) -> i16 {
    match error {
        AuthError::InternalTopic { .. } => ResponseError::InvalidTopicException.code(),
        AuthError::Cluster { .. } => ResponseError::ClusterAuthorizationFailed.code(),
    }
}

/// The Kafka error code of a refused SASL step.
pub(crate) fn sasl_error_code(error: &SaslError) -> i16 {
    match error {
        SaslError::UnsupportedMechanism { .. } => ResponseError::UnsupportedSaslMechanism.code(),
        SaslError::IllegalState(_) => ResponseError::IllegalSaslState.code(),
        SaslError::Failed
        | SaslError::TooManyAttempts
        | SaslError::InvalidToken(_)
        | SaslError::Reauthentication(_) => ResponseError::SaslAuthenticationFailed.code(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fjord_log::{BatchBuilder, Log, LogConfig};

    use super::*;
    use crate::partition::Partition;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn batch() -> Result<Vec<u8>, LogError> {
        let mut batch = BatchBuilder::with_capacity(1);
        batch.push(0, None, Some(bytes::Bytes::from_static(b"v")));
        batch.build()
    }

    fn replicated(dir: &std::path::Path) -> Result<Partition, LogError> {
        Ok(Partition::replicated(
            "t",
            0,
            Log::open(dir, LogConfig::default())?,
            0,
        ))
    }

    /// A follower refuses requests with NOT_LEADER_OR_FOLLOWER, and an
    /// append that reaches a follower (leadership moved after the
    /// handler's check) too, so the client refreshes its metadata and
    /// retries at the new leader; a client's leader epoch is checked
    /// against the current one.
    #[tokio::test]
    async fn partition_errors_keep_their_kafka_codes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let partition = replicated(dir.path())?;

        let refused = partition
            .check_leader(-1)
            .err()
            .ok_or("a follower served")?;
        assert!(matches!(refused, PartitionError::NotLeader { .. }));
        assert_eq!(
            partition_error_code(&refused),
            ResponseError::NotLeaderOrFollower.code()
        );
        let appended = partition
            .append(batch()?)
            .await
            .err()
            .ok_or("a follower appended")?;
        assert_eq!(appended.to_string(), "t-0 is led by another broker");
        assert_eq!(
            partition_error_code(&appended),
            ResponseError::NotLeaderOrFollower.code()
        );

        partition.become_leader(1, 5, vec![1, 2], vec![1, 2], 0);
        assert!(partition.check_leader(5).is_ok());
        let fenced = partition
            .check_leader(4)
            .err()
            .ok_or("older epoch served")?;
        assert_eq!(
            partition_error_code(&fenced),
            ResponseError::FencedLeaderEpoch.code()
        );
        let unknown = partition
            .check_leader(6)
            .err()
            .ok_or("newer epoch served")?;
        assert_eq!(
            partition_error_code(&unknown),
            ResponseError::UnknownLeaderEpoch.code()
        );
        Ok(())
    }

    /// An acks=all append that broker 2 never confirms times out with
    /// REQUEST_TIMED_OUT, and one whose leadership moves meanwhile fails
    /// with NOT_LEADER_OR_FOLLOWER.
    #[tokio::test]
    async fn unconfirmed_appends_keep_their_kafka_codes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let partition = std::sync::Arc::new(replicated(dir.path())?);
        partition.become_leader(1, 0, vec![1, 2], vec![1, 2], 0);
        let info = partition.append(batch()?).await?;
        let end = info.last_offset + 1;

        let timed_out = partition
            .wait_committed(end, Duration::from_millis(50))
            .await
            .err()
            .ok_or("committed without broker 2")?;
        assert_eq!(
            partition_error_code(&timed_out),
            ResponseError::RequestTimedOut.code()
        );

        let waiting = std::sync::Arc::clone(&partition);
        let wait =
            tokio::spawn(async move { waiting.wait_committed(end, Duration::from_secs(60)).await });
        // The waiter sees the move whenever it runs: before it subscribes
        // (the epoch it reads is already the new one, but it is no longer
        // leader) or after (the change wakes it).
        partition.become_follower(1);
        let moved = wait.await?.err().ok_or("committed without broker 2")?;
        assert!(matches!(moved, PartitionError::LeadershipMoved { .. }));
        assert_eq!(
            partition_error_code(&moved),
            ResponseError::NotLeaderOrFollower.code()
        );
        Ok(())
    }

    /// The coordinator's refusals carry the codes the handlers sent when
    /// they were raw codes.
    #[test]
    fn group_refusals_keep_their_kafka_codes() {
        let cases = [
            (GroupError::InvalidGroupId, 24),
            (GroupError::InvalidSessionTimeout, 26),
            (GroupError::InconsistentGroupProtocol, 23),
            (GroupError::MemberIdRequired, 79),
            (GroupError::Dead, 15),
            (GroupError::StaticMemberMissing, -1),
            (GroupError::GroupIdNotFound, 69),
            (GroupError::NonEmptyGroup, 68),
            (GroupError::SubscribedToTopic, 86),
            (GroupError::UnknownTopicOrPartition, 3),
            (GroupError::OffsetMetadataTooLarge, 12),
            (GroupError::GroupMaxSizeReached, 81),
            (GroupError::ProtocolMetadataTooLarge, 42),
            (GroupError::UnknownMember, 25),
            (GroupError::FencedInstance, 82),
            (GroupError::IllegalGeneration, 22),
            (GroupError::RebalanceInProgress, 27),
        ];
        for (error, code) in cases {
            assert_eq!(group_error_code(&error), code, "{error}");
        }
    }

    /// An offsets commit that cannot be stored answers as it always did:
    /// KAFKA_STORAGE_ERROR when the append fails (a follower's included),
    /// NOT_COORDINATOR when leadership moves before the replicas confirm,
    /// REQUEST_TIMED_OUT when they do not confirm in time.
    #[test]
    fn unstored_commits_keep_their_kafka_codes() {
        let moved = PartitionError::LeadershipMoved { offset: 1 };
        let not_leader = PartitionError::NotLeaderAtAppend {
            topic: "__consumer_offsets".into(),
            partition: 0,
        };
        let cases = [
            (
                GroupError::NotPersisted(not_leader),
                ResponseError::KafkaStorageError,
            ),
            (
                GroupError::NotReplicated(moved),
                ResponseError::NotCoordinator,
            ),
            (
                GroupError::NotReplicated(PartitionError::NotConfirmed { offset: 1 }),
                ResponseError::RequestTimedOut,
            ),
            (
                GroupError::LoadInProgress,
                ResponseError::CoordinatorLoadInProgress,
            ),
            (GroupError::UnknownMember, ResponseError::UnknownMemberId),
        ];
        for (error, code) in cases {
            assert_eq!(group_error_code(&error), code.code(), "{error}");
        }
    }
}
