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
    /// KAFKA_STORAGE_ERROR
    KafkaStorageError = 56,
    /// FENCED_LEADER_EPOCH
    FencedLeaderEpoch = 74,
    /// UNKNOWN_LEADER_EPOCH
    UnknownLeaderEpoch = 75,
    /// INVALID_RECORD
    InvalidRecord = 87,
}

impl ErrorCode {
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
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

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
        assert_eq!(ErrorCode::InvalidRecord.to_string(), "INVALID_RECORD (87)");
    }
}
