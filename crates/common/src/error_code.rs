//! Kafka's numeric error codes (from the protocol's error table) and the one trait that maps each
//! crate's error enum onto them.

/// The Kafka error codes Odradek returns. Values are the protocol's; names follow Kafka's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    /// UNKNOWN_SERVER_ERROR
    UnknownServerError = -1,
    /// NONE
    None = 0,
    /// OFFSET_OUT_OF_RANGE
    OffsetOutOfRange = 1,
    /// CORRUPT_MESSAGE
    CorruptMessage = 2,
    /// UNKNOWN_TOPIC_OR_PARTITION
    UnknownTopicOrPartition = 3,
    /// INVALID_FETCH_SIZE
    InvalidFetchSize = 4,
    /// LEADER_NOT_AVAILABLE
    LeaderNotAvailable = 5,
    /// NOT_LEADER_OR_FOLLOWER
    NotLeaderOrFollower = 6,
    /// REQUEST_TIMED_OUT
    RequestTimedOut = 7,
    /// MESSAGE_TOO_LARGE
    MessageTooLarge = 10,
    /// RECORD_LIST_TOO_LARGE
    RecordListTooLarge = 18,
    /// NOT_ENOUGH_REPLICAS
    NotEnoughReplicas = 19,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND
    NotEnoughReplicasAfterAppend = 20,
    /// INVALID_TIMESTAMP
    InvalidTimestamp = 32,
    /// UNSUPPORTED_VERSION
    UnsupportedVersion = 35,
    /// INVALID_CONFIG
    InvalidConfig = 40,
    /// POLICY_VIOLATION
    PolicyViolation = 44,
    /// OUT_OF_ORDER_SEQUENCE_NUMBER
    OutOfOrderSequenceNumber = 45,
    /// INVALID_PRODUCER_EPOCH
    InvalidProducerEpoch = 47,
    /// INVALID_TXN_STATE
    InvalidTxnState = 48,
    /// INVALID_PRODUCER_ID_MAPPING
    InvalidProducerIdMapping = 49,
    /// INVALID_TRANSACTION_TIMEOUT
    InvalidTransactionTimeout = 50,
    /// CONCURRENT_TRANSACTIONS
    ConcurrentTransactions = 51,
    /// TRANSACTION_COORDINATOR_FENCED
    TransactionCoordinatorFenced = 52,
    /// PRODUCER_FENCED
    ProducerFenced = 90,
    /// KAFKA_STORAGE_ERROR
    KafkaStorageError = 56,
    /// UNKNOWN_PRODUCER_ID
    UnknownProducerId = 59,
    /// FENCED_LEADER_EPOCH
    FencedLeaderEpoch = 74,
    /// UNKNOWN_LEADER_EPOCH
    UnknownLeaderEpoch = 75,
    /// OFFSET_NOT_AVAILABLE
    OffsetNotAvailable = 78,
    /// INVALID_TOPIC_EXCEPTION
    InvalidTopicException = 17,
    /// TOPIC_ALREADY_EXISTS
    TopicAlreadyExists = 36,
    /// INVALID_PARTITIONS
    InvalidPartitions = 37,
    /// INVALID_REPLICATION_FACTOR
    InvalidReplicationFactor = 38,
    /// INVALID_REPLICA_ASSIGNMENT
    InvalidReplicaAssignment = 39,
    /// NOT_CONTROLLER
    NotController = 41,
    /// INVALID_REQUEST
    InvalidRequest = 42,
    /// STALE_BROKER_EPOCH
    StaleBrokerEpoch = 77,
    /// INVALID_RECORD
    InvalidRecord = 87,
    /// INVALID_UPDATE_VERSION
    InvalidUpdateVersion = 95,
    /// DUPLICATE_BROKER_REGISTRATION
    DuplicateBrokerRegistration = 101,
    /// BROKER_ID_NOT_REGISTERED
    BrokerIdNotRegistered = 102,
    /// INCONSISTENT_CLUSTER_ID
    InconsistentClusterId = 104,
    /// INELIGIBLE_REPLICA
    IneligibleReplica = 107,
    /// OFFSET_METADATA_TOO_LARGE
    OffsetMetadataTooLarge = 12,
    /// COORDINATOR_LOAD_IN_PROGRESS
    CoordinatorLoadInProgress = 14,
    /// COORDINATOR_NOT_AVAILABLE
    CoordinatorNotAvailable = 15,
    /// NOT_COORDINATOR
    NotCoordinator = 16,
    /// ILLEGAL_GENERATION
    IllegalGeneration = 22,
    /// INCONSISTENT_GROUP_PROTOCOL
    InconsistentGroupProtocol = 23,
    /// INVALID_GROUP_ID
    InvalidGroupId = 24,
    /// UNKNOWN_MEMBER_ID
    UnknownMemberId = 25,
    /// INVALID_SESSION_TIMEOUT
    InvalidSessionTimeout = 26,
    /// REBALANCE_IN_PROGRESS
    RebalanceInProgress = 27,
    /// NON_EMPTY_GROUP
    NonEmptyGroup = 68,
    /// GROUP_ID_NOT_FOUND
    GroupIdNotFound = 69,
    /// MEMBER_ID_REQUIRED
    MemberIdRequired = 79,
    /// GROUP_MAX_SIZE_REACHED
    GroupMaxSizeReached = 81,
    /// FENCED_INSTANCE_ID
    FencedInstanceId = 82,
    /// FENCED_MEMBER_EPOCH (KIP-848)
    FencedMemberEpoch = 110,
    /// UNRELEASED_INSTANCE_ID (KIP-848)
    UnreleasedInstanceId = 111,
    /// UNSUPPORTED_ASSIGNOR (KIP-848)
    UnsupportedAssignor = 112,
    /// STALE_MEMBER_EPOCH (KIP-848)
    StaleMemberEpoch = 113,
    /// INVALID_REGULAR_EXPRESSION (KIP-848)
    InvalidRegularExpression = 128,
    /// UNKNOWN_TOPIC_ID
    UnknownTopicId = 100,
    /// INVALID_RECORD_STATE (KIP-932)
    InvalidRecordState = 121,
    /// SHARE_SESSION_NOT_FOUND (KIP-932)
    ShareSessionNotFound = 122,
    /// INVALID_SHARE_SESSION_EPOCH (KIP-932)
    InvalidShareSessionEpoch = 123,
    /// FENCED_STATE_EPOCH (KIP-932)
    FencedStateEpoch = 124,
    /// SHARE_SESSION_LIMIT_REACHED (KIP-932)
    ShareSessionLimitReached = 133,
    /// PREFERRED_LEADER_NOT_AVAILABLE
    PreferredLeaderNotAvailable = 80,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE
    EligibleLeadersNotAvailable = 83,
    /// ELECTION_NOT_NEEDED
    ElectionNotNeeded = 84,
    /// NO_REASSIGNMENT_IN_PROGRESS
    NoReassignmentInProgress = 85,
    /// LOG_DIR_NOT_FOUND
    LogDirNotFound = 57,
    /// DUPLICATE_VOTER
    DuplicateVoter = 126,
    /// VOTER_NOT_FOUND
    VoterNotFound = 127,
    /// TOPIC_AUTHORIZATION_FAILED
    TopicAuthorizationFailed = 29,
    /// GROUP_AUTHORIZATION_FAILED
    GroupAuthorizationFailed = 30,
    /// CLUSTER_AUTHORIZATION_FAILED
    ClusterAuthorizationFailed = 31,
    /// UNSUPPORTED_SASL_MECHANISM
    UnsupportedSaslMechanism = 33,
    /// ILLEGAL_SASL_STATE
    IllegalSaslState = 34,
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    TransactionalIdAuthorizationFailed = 53,
    /// SECURITY_DISABLED
    SecurityDisabled = 54,
    /// SASL_AUTHENTICATION_FAILED
    SaslAuthenticationFailed = 58,
    /// INVALID_PRINCIPAL_TYPE
    InvalidPrincipalType = 67,
    /// RESOURCE_NOT_FOUND
    ResourceNotFound = 91,
    /// DUPLICATE_RESOURCE
    DuplicateResource = 92,
    /// UNACCEPTABLE_CREDENTIAL
    UnacceptableCredential = 93,
}

impl ErrorCode {
    /// The code for a wire value, if Odradek knows it.
    pub fn from_code(code: i16) -> Option<ErrorCode> {
        ALL.iter().copied().find(|e| e.code() == code)
    }

    /// The code as it goes on the wire.
    pub fn code(self) -> i16 {
        self as i16
    }

    /// Kafka's name for the code, as clients and operators know it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::UnknownServerError => "UNKNOWN_SERVER_ERROR",
            ErrorCode::None => "NONE",
            ErrorCode::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorCode::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorCode::UnknownTopicOrPartition => "UNKNOWN_TOPIC_OR_PARTITION",
            ErrorCode::InvalidFetchSize => "INVALID_FETCH_SIZE",
            ErrorCode::LeaderNotAvailable => "LEADER_NOT_AVAILABLE",
            ErrorCode::NotLeaderOrFollower => "NOT_LEADER_OR_FOLLOWER",
            ErrorCode::RequestTimedOut => "REQUEST_TIMED_OUT",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::RecordListTooLarge => "RECORD_LIST_TOO_LARGE",
            ErrorCode::NotEnoughReplicas => "NOT_ENOUGH_REPLICAS",
            ErrorCode::NotEnoughReplicasAfterAppend => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
            ErrorCode::InvalidTimestamp => "INVALID_TIMESTAMP",
            ErrorCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::KafkaStorageError => "KAFKA_STORAGE_ERROR",
            ErrorCode::FencedLeaderEpoch => "FENCED_LEADER_EPOCH",
            ErrorCode::UnknownLeaderEpoch => "UNKNOWN_LEADER_EPOCH",
            ErrorCode::InvalidRecord => "INVALID_RECORD",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::OffsetNotAvailable => "OFFSET_NOT_AVAILABLE",
            ErrorCode::InvalidTopicException => "INVALID_TOPIC_EXCEPTION",
            ErrorCode::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorCode::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorCode::InvalidReplicationFactor => "INVALID_REPLICATION_FACTOR",
            ErrorCode::InvalidReplicaAssignment => "INVALID_REPLICA_ASSIGNMENT",
            ErrorCode::NotController => "NOT_CONTROLLER",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::StaleBrokerEpoch => "STALE_BROKER_EPOCH",
            ErrorCode::InvalidUpdateVersion => "INVALID_UPDATE_VERSION",
            ErrorCode::DuplicateBrokerRegistration => "DUPLICATE_BROKER_REGISTRATION",
            ErrorCode::BrokerIdNotRegistered => "BROKER_ID_NOT_REGISTERED",
            ErrorCode::InconsistentClusterId => "INCONSISTENT_CLUSTER_ID",
            ErrorCode::IneligibleReplica => "INELIGIBLE_REPLICA",
            ErrorCode::OffsetMetadataTooLarge => "OFFSET_METADATA_TOO_LARGE",
            ErrorCode::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
            ErrorCode::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
            ErrorCode::OutOfOrderSequenceNumber => "OUT_OF_ORDER_SEQUENCE_NUMBER",
            ErrorCode::InvalidProducerEpoch => "INVALID_PRODUCER_EPOCH",
            ErrorCode::InvalidTxnState => "INVALID_TXN_STATE",
            ErrorCode::InvalidProducerIdMapping => "INVALID_PRODUCER_ID_MAPPING",
            ErrorCode::InvalidTransactionTimeout => "INVALID_TRANSACTION_TIMEOUT",
            ErrorCode::ConcurrentTransactions => "CONCURRENT_TRANSACTIONS",
            ErrorCode::TransactionCoordinatorFenced => "TRANSACTION_COORDINATOR_FENCED",
            ErrorCode::ProducerFenced => "PRODUCER_FENCED",
            ErrorCode::UnknownProducerId => "UNKNOWN_PRODUCER_ID",
            ErrorCode::NotCoordinator => "NOT_COORDINATOR",
            ErrorCode::IllegalGeneration => "ILLEGAL_GENERATION",
            ErrorCode::InconsistentGroupProtocol => "INCONSISTENT_GROUP_PROTOCOL",
            ErrorCode::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorCode::UnknownMemberId => "UNKNOWN_MEMBER_ID",
            ErrorCode::InvalidSessionTimeout => "INVALID_SESSION_TIMEOUT",
            ErrorCode::RebalanceInProgress => "REBALANCE_IN_PROGRESS",
            ErrorCode::NonEmptyGroup => "NON_EMPTY_GROUP",
            ErrorCode::GroupIdNotFound => "GROUP_ID_NOT_FOUND",
            ErrorCode::MemberIdRequired => "MEMBER_ID_REQUIRED",
            ErrorCode::GroupMaxSizeReached => "GROUP_MAX_SIZE_REACHED",
            ErrorCode::FencedMemberEpoch => "FENCED_MEMBER_EPOCH",
            ErrorCode::UnreleasedInstanceId => "UNRELEASED_INSTANCE_ID",
            ErrorCode::UnsupportedAssignor => "UNSUPPORTED_ASSIGNOR",
            ErrorCode::StaleMemberEpoch => "STALE_MEMBER_EPOCH",
            ErrorCode::InvalidRegularExpression => "INVALID_REGULAR_EXPRESSION",
            ErrorCode::UnknownTopicId => "UNKNOWN_TOPIC_ID",
            ErrorCode::InvalidRecordState => "INVALID_RECORD_STATE",
            ErrorCode::ShareSessionNotFound => "SHARE_SESSION_NOT_FOUND",
            ErrorCode::InvalidShareSessionEpoch => "INVALID_SHARE_SESSION_EPOCH",
            ErrorCode::FencedStateEpoch => "FENCED_STATE_EPOCH",
            ErrorCode::ShareSessionLimitReached => "SHARE_SESSION_LIMIT_REACHED",
            ErrorCode::FencedInstanceId => "FENCED_INSTANCE_ID",
            ErrorCode::PreferredLeaderNotAvailable => "PREFERRED_LEADER_NOT_AVAILABLE",
            ErrorCode::EligibleLeadersNotAvailable => "ELIGIBLE_LEADERS_NOT_AVAILABLE",
            ErrorCode::ElectionNotNeeded => "ELECTION_NOT_NEEDED",
            ErrorCode::NoReassignmentInProgress => "NO_REASSIGNMENT_IN_PROGRESS",
            ErrorCode::LogDirNotFound => "LOG_DIR_NOT_FOUND",
            ErrorCode::DuplicateVoter => "DUPLICATE_VOTER",
            ErrorCode::VoterNotFound => "VOTER_NOT_FOUND",
            ErrorCode::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
            ErrorCode::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
            ErrorCode::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
            ErrorCode::UnsupportedSaslMechanism => "UNSUPPORTED_SASL_MECHANISM",
            ErrorCode::IllegalSaslState => "ILLEGAL_SASL_STATE",
            ErrorCode::TransactionalIdAuthorizationFailed => {
                "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
            }
            ErrorCode::SecurityDisabled => "SECURITY_DISABLED",
            ErrorCode::SaslAuthenticationFailed => "SASL_AUTHENTICATION_FAILED",
            ErrorCode::InvalidPrincipalType => "INVALID_PRINCIPAL_TYPE",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::DuplicateResource => "DUPLICATE_RESOURCE",
            ErrorCode::UnacceptableCredential => "UNACCEPTABLE_CREDENTIAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

const ALL: &[ErrorCode] = &[
    ErrorCode::UnknownServerError,
    ErrorCode::None,
    ErrorCode::OffsetOutOfRange,
    ErrorCode::CorruptMessage,
    ErrorCode::UnknownTopicOrPartition,
    ErrorCode::InvalidFetchSize,
    ErrorCode::LeaderNotAvailable,
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::RequestTimedOut,
    ErrorCode::MessageTooLarge,
    ErrorCode::InvalidTopicException,
    ErrorCode::RecordListTooLarge,
    ErrorCode::NotEnoughReplicas,
    ErrorCode::NotEnoughReplicasAfterAppend,
    ErrorCode::InvalidTimestamp,
    ErrorCode::UnsupportedVersion,
    ErrorCode::TopicAlreadyExists,
    ErrorCode::InvalidPartitions,
    ErrorCode::InvalidReplicationFactor,
    ErrorCode::InvalidReplicaAssignment,
    ErrorCode::InvalidConfig,
    ErrorCode::PolicyViolation,
    ErrorCode::NotController,
    ErrorCode::InvalidRequest,
    ErrorCode::KafkaStorageError,
    ErrorCode::OutOfOrderSequenceNumber,
    ErrorCode::InvalidProducerEpoch,
    ErrorCode::InvalidTxnState,
    ErrorCode::InvalidProducerIdMapping,
    ErrorCode::InvalidTransactionTimeout,
    ErrorCode::ConcurrentTransactions,
    ErrorCode::TransactionCoordinatorFenced,
    ErrorCode::ProducerFenced,
    ErrorCode::UnknownProducerId,
    ErrorCode::FencedLeaderEpoch,
    ErrorCode::UnknownLeaderEpoch,
    ErrorCode::OffsetNotAvailable,
    ErrorCode::StaleBrokerEpoch,
    ErrorCode::InvalidRecord,
    ErrorCode::InvalidUpdateVersion,
    ErrorCode::DuplicateBrokerRegistration,
    ErrorCode::BrokerIdNotRegistered,
    ErrorCode::InconsistentClusterId,
    ErrorCode::IneligibleReplica,
    ErrorCode::OffsetMetadataTooLarge,
    ErrorCode::CoordinatorLoadInProgress,
    ErrorCode::CoordinatorNotAvailable,
    ErrorCode::NotCoordinator,
    ErrorCode::IllegalGeneration,
    ErrorCode::InconsistentGroupProtocol,
    ErrorCode::InvalidGroupId,
    ErrorCode::UnknownMemberId,
    ErrorCode::InvalidSessionTimeout,
    ErrorCode::RebalanceInProgress,
    ErrorCode::NonEmptyGroup,
    ErrorCode::GroupIdNotFound,
    ErrorCode::MemberIdRequired,
    ErrorCode::GroupMaxSizeReached,
    ErrorCode::FencedMemberEpoch,
    ErrorCode::UnreleasedInstanceId,
    ErrorCode::UnsupportedAssignor,
    ErrorCode::StaleMemberEpoch,
    ErrorCode::InvalidRegularExpression,
    ErrorCode::UnknownTopicId,
    ErrorCode::InvalidRecordState,
    ErrorCode::ShareSessionNotFound,
    ErrorCode::InvalidShareSessionEpoch,
    ErrorCode::FencedStateEpoch,
    ErrorCode::ShareSessionLimitReached,
    ErrorCode::FencedInstanceId,
    ErrorCode::PreferredLeaderNotAvailable,
    ErrorCode::EligibleLeadersNotAvailable,
    ErrorCode::ElectionNotNeeded,
    ErrorCode::NoReassignmentInProgress,
    ErrorCode::LogDirNotFound,
    ErrorCode::DuplicateVoter,
    ErrorCode::VoterNotFound,
    ErrorCode::TopicAuthorizationFailed,
    ErrorCode::GroupAuthorizationFailed,
    ErrorCode::ClusterAuthorizationFailed,
    ErrorCode::UnsupportedSaslMechanism,
    ErrorCode::IllegalSaslState,
    ErrorCode::TransactionalIdAuthorizationFailed,
    ErrorCode::SecurityDisabled,
    ErrorCode::SaslAuthenticationFailed,
    ErrorCode::InvalidPrincipalType,
    ErrorCode::ResourceNotFound,
    ErrorCode::DuplicateResource,
    ErrorCode::UnacceptableCredential,
];

/// Implemented by every library crate's error enum: which Kafka error a client should see.
pub trait ToErrorCode {
    /// The Kafka error code for this error.
    fn error_code(&self) -> ErrorCode;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_kafka_protocol_table() {
        assert_eq!(ErrorCode::CorruptMessage.code(), 2);
        assert_eq!(ErrorCode::MessageTooLarge.code(), 10);
        assert_eq!(ErrorCode::KafkaStorageError.code(), 56);
        assert_eq!(ErrorCode::InvalidRecord.code(), 87);
        assert_eq!(ErrorCode::UnknownServerError.code(), -1);
        assert_eq!(ErrorCode::TopicAlreadyExists.code(), 36);
        assert_eq!(ErrorCode::InvalidReplicationFactor.code(), 38);
        assert_eq!(ErrorCode::NotController.code(), 41);
        assert_eq!(ErrorCode::StaleBrokerEpoch.code(), 77);
        assert_eq!(ErrorCode::InvalidUpdateVersion.code(), 95);
        assert_eq!(ErrorCode::InconsistentClusterId.code(), 104);
        assert_eq!(ErrorCode::IneligibleReplica.code(), 107);
        assert_eq!(ErrorCode::PreferredLeaderNotAvailable.code(), 80);
        assert_eq!(ErrorCode::ElectionNotNeeded.code(), 84);
        assert_eq!(ErrorCode::NoReassignmentInProgress.code(), 85);
        assert_eq!(ErrorCode::TopicAuthorizationFailed.code(), 29);
        assert_eq!(ErrorCode::SaslAuthenticationFailed.code(), 58);
        assert_eq!(ErrorCode::UnacceptableCredential.code(), 93);
        assert_eq!(ErrorCode::InvalidRecord.to_string(), "INVALID_RECORD (87)");
    }
}
