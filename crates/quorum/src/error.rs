//! The quorum's error enum.

use std::path::PathBuf;

/// Why a change of the voter set was refused (Kafka's KIP-853 errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Another change has not committed yet.
    #[error("another voter change is under way")]
    InProgress,
    /// The node is a voter already (Kafka's DUPLICATE_VOTER).
    #[error("node {0} is already a voter")]
    DuplicateVoter(u64),
    /// The node is not a voter (Kafka's VOTER_NOT_FOUND).
    #[error("node {0} is not a voter")]
    VoterNotFound(u64),
    /// Removing it would leave no voter.
    #[error("node {0} is the only voter")]
    LastVoter(u64),
    /// The voters left would not have a live majority (or no live voter can take over).
    #[error("removing node {0} would leave no live majority of voters")]
    NoQuorumLeft(u64),
    /// The address is not host:port.
    #[error("{0:?} is not host:port")]
    BadAddress(String),
}

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
    /// A change of the voter set was refused: another is under way, the voter is already one,
    /// is unknown, or is the last one.
    #[error("voter change refused: {0}")]
    Membership(MembershipError),
    /// A new voter did not catch up with the log in time (it stays an observer).
    #[error("voter {0} did not catch up with the metadata log in time; it stays an observer")]
    CatchUpTimeout(u64),
    /// The transport could not bind or serve.
    #[error("transport: {0}")]
    Transport(String),
}
