//! KIP-932 share groups: the share-partition state machine that a partition's leader keeps for
//! each share group reading it, and the records of `__share_group_state` that persist it.
//! The share coordinator's state machine ([`coordinator`]) keeps those states for the leaders.
//! The broker (`odradek-server`) serves ShareFetch and ShareAcknowledge on these cores, and the
//! group coordinator's share group membership ([`crate::ShareHeartbeat`]).

pub mod coordinator;
pub mod partition;
pub mod records;

pub use partition::{
    AcknowledgeType, AcquiredRecords, RecordState, ShareConfig, SharePartition, ShareState,
    StateBatch,
};
