//! The log's one error enum, and its mapping to Kafka error codes.

use std::path::PathBuf;

use odradek_common::{ErrorCode, ToErrorCode};

/// Everything that can go wrong in the segment log. Appends that fail leave the log unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch whose bytes do not add up: bad CRC, a length that runs past the buffer, a header
    /// that cannot be a record batch.
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptRecord {
        /// Byte position of the batch within the appended buffer or segment file.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// A well-formed batch that the log refuses: wrong magic, inconsistent record count, a
    /// keyless record on a compacted topic.
    #[error("invalid record batch at byte {position}: {reason}")]
    InvalidRecord {
        /// Byte position of the batch within the appended buffer.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    RecordTooLarge {
        /// Size of the batch in bytes.
        size: u64,
        /// The configured limit.
        max: u64,
    },
    /// A read or truncation target outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The requested offset.
        offset: i64,
        /// The log start offset at the time of the request.
        log_start_offset: i64,
        /// The log end offset at the time of the request.
        log_end_offset: i64,
    },
    /// A follower append whose offsets do not continue the log.
    #[error("follower append at offset {first_offset} does not continue the log ending at {log_end_offset}")]
    UnexpectedAppendOffset {
        /// The first offset of the appended batches.
        first_offset: i64,
        /// The log end offset it should have been at or above.
        log_end_offset: i64,
    },
    /// A configuration value that is out of range or unparsable; names the key.
    #[error("invalid value {value:?} for configuration {key}: {reason}")]
    InvalidConfig {
        /// The Kafka configuration key.
        key: String,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// An I/O error on a log file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(position: u64, reason: impl Into<String>) -> Self {
        LogError::CorruptRecord {
            position,
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(position: u64, reason: impl Into<String>) -> Self {
        LogError::InvalidRecord {
            position,
            reason: reason.into(),
        }
    }
}

impl ToErrorCode for LogError {
    fn error_code(&self) -> ErrorCode {
        match self {
            LogError::CorruptRecord { .. } => ErrorCode::CorruptMessage,
            LogError::InvalidRecord { .. } => ErrorCode::InvalidRecord,
            LogError::RecordTooLarge { .. } => ErrorCode::MessageTooLarge,
            LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            LogError::UnexpectedAppendOffset { .. } => ErrorCode::UnknownServerError,
            LogError::InvalidConfig { .. } => ErrorCode::InvalidConfig,
            LogError::Io { .. } => ErrorCode::KafkaStorageError,
        }
    }
}

/// Shorthand for results of log operations.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
