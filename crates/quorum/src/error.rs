//! The quorum's error enum.

use std::path::PathBuf;

/// What can go wrong in the quorum.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This voter is not the leader; `leader_id` is the one it knows of, if any.
    #[error("not the quorum leader (leader: {leader_id:?})")]
    NotLeader {
        /// The current leader's node id, when known.
        leader_id: Option<u64>,
    },
    /// The proposal was dropped (leadership changed before it committed, or raft refused it).
    #[error("proposal dropped: {0}")]
    ProposalDropped(String),
    /// The quorum task has stopped.
    #[error("the quorum has shut down")]
    Shutdown,
    /// `controller.quorum.voters` or another setting is invalid; names the key.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// The offending value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store under `metadata.log.dir` failed.
    #[error("metadata log store at {}: {message}", path.display())]
    Storage {
        /// The store directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The store is not formatted, or was formatted for another cluster or node.
    #[error("{0}")]
    NotFormatted(String),
    /// A Raft-level error.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// The transport could not bind or serve.
    #[error("transport: {0}")]
    Transport(String),
}
