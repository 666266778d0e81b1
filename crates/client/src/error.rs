//! The client's errors, with Kafka's error names.

use odradek_common::ErrorCode;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection failed.
    #[error("cannot reach {addr}: {source}")]
    Io {
        /// The broker address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The broker answered something the client cannot use.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A client setting that cannot work, naming its key.
    #[error("invalid client configuration {0}")]
    Config(String),
    /// The broker refused the request with a Kafka error code.
    #[error("{}{}", code_name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The Kafka error code.
        code: i16,
        /// The broker's message, when it sent one.
        message: Option<String>,
    },
}

fn code_name(code: i16) -> String {
    ErrorCode::from_code(code)
        .map_or_else(|| format!("Kafka error {code}"), |c| c.name().to_string())
}

impl ClientError {
    /// Whether retrying (after refreshing metadata or finding the coordinator again) can
    /// succeed, as Kafka's `RetriableException`s: a lost connection, a leader or coordinator
    /// that moved or is being elected, not enough replicas for now, a timeout.
    pub fn is_retriable(&self) -> bool {
        use odradek_common::ErrorCode as E;
        match self {
            ClientError::Io { .. } => true,
            ClientError::Kafka { code, .. } => matches!(
                E::from_code(*code),
                Some(
                    E::UnknownTopicOrPartition
                        | E::LeaderNotAvailable
                        | E::NotLeaderOrFollower
                        | E::RequestTimedOut
                        | E::NotEnoughReplicas
                        | E::NotEnoughReplicasAfterAppend
                        | E::KafkaStorageError
                        | E::FencedLeaderEpoch
                        | E::UnknownLeaderEpoch
                        | E::OffsetNotAvailable
                        | E::CoordinatorLoadInProgress
                        | E::CoordinatorNotAvailable
                        | E::NotCoordinator
                )
            ),
            ClientError::Protocol(_) | ClientError::Config(_) => false,
        }
    }

    /// `Err(Kafka)` unless `code` is 0.
    pub fn check(code: i16, message: Option<String>) -> Result<(), ClientError> {
        if code == 0 {
            Ok(())
        } else {
            Err(ClientError::Kafka { code, message })
        }
    }
}
