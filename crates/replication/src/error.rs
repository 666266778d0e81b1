//! The crate's one error type.

use odradek_common::{ErrorCode, ToErrorCode};
use odradek_log::LogError;

/// Why a replica refused an operation.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// This broker does not lead the partition (or does not host it as the caller assumed).
    #[error("broker {broker} is not the {role} of {topic}-{partition}")]
    NotLeaderOrFollower {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// This broker.
        broker: i32,
        /// What the caller needed it to be.
        role: &'static str,
    },
    /// The request carries an older leader epoch than the replica's.
    #[error("leader epoch {request} of {topic}-{partition} is fenced by the current {current}")]
    FencedLeaderEpoch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The request's epoch.
        request: i32,
        /// The replica's epoch.
        current: i32,
    },
    /// The request carries a newer leader epoch than this replica knows yet.
    #[error("leader epoch {request} of {topic}-{partition} is newer than the known {current}")]
    UnknownLeaderEpoch {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The request's epoch.
        request: i32,
        /// The replica's epoch.
        current: i32,
    },
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`.
    #[error("{topic}-{partition} has {isr} in-sync replicas; min.insync.replicas is {min}")]
    NotEnoughReplicas {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The ISR's size.
        isr: usize,
        /// `min.insync.replicas`.
        min: usize,
    },
    /// The batch is committed but the ISR shrank below `min.insync.replicas` meanwhile.
    #[error("{topic}-{partition} has {isr} in-sync replicas after the append; min.insync.replicas is {min}")]
    NotEnoughReplicasAfterAppend {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The ISR's size.
        isr: usize,
        /// `min.insync.replicas`.
        min: usize,
    },
    /// A fetch from a broker that is not a replica of the partition.
    #[error("broker {replica} is not a replica of {topic}-{partition}")]
    UnknownReplica {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The fetching broker.
        replica: i32,
    },
    /// DeleteRecords on a topic whose `cleanup.policy` does not include `delete`.
    #[error(
        "records of {topic}-{partition} cannot be deleted: cleanup.policy does not include delete"
    )]
    DeletePolicyViolation {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// An idempotent producer's batch does not follow its last one (a gap, or a new epoch that
    /// does not start at sequence 0).
    #[error("{message}")]
    OutOfOrderSequence {
        /// What was expected.
        message: String,
    },
    /// An idempotent producer's batch carries an epoch older than the producer's.
    #[error("{message}")]
    InvalidProducerEpoch {
        /// The epochs.
        message: String,
    },
    /// A non-transactional batch from a producer with an open transaction.
    #[error("{message}")]
    InvalidTxnState {
        /// What is wrong.
        message: String,
    },
    /// A transaction marker from a coordinator older than the last one seen.
    #[error("{message}")]
    CoordinatorFenced {
        /// The epochs.
        message: String,
    },
    /// A batch with a producer id but no valid sequence.
    #[error("{message}")]
    InvalidProducerBatch {
        /// What is wrong.
        message: String,
    },
    /// A producer state snapshot could not be read, written or deleted.
    #[error("producer state snapshot {}: {source}", path.display())]
    ProducerSnapshot {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The log refused.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl ToErrorCode for ReplicationError {
    fn error_code(&self) -> ErrorCode {
        match self {
            ReplicationError::NotLeaderOrFollower { .. }
            | ReplicationError::UnknownReplica { .. } => ErrorCode::NotLeaderOrFollower,
            ReplicationError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            ReplicationError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            ReplicationError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
            ReplicationError::NotEnoughReplicasAfterAppend { .. } => {
                ErrorCode::NotEnoughReplicasAfterAppend
            }
            ReplicationError::DeletePolicyViolation { .. } => ErrorCode::PolicyViolation,
            ReplicationError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            ReplicationError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            ReplicationError::InvalidProducerBatch { .. } => ErrorCode::InvalidRecord,
            ReplicationError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
            ReplicationError::CoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
            ReplicationError::ProducerSnapshot { .. } => ErrorCode::KafkaStorageError,
            ReplicationError::Log(e) => e.error_code(),
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ReplicationError>;
