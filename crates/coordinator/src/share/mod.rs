//! KIP-932 share groups: the share-partition state machine that a partition's leader keeps for
//! each share group reading it, and the records of `__share_group_state` that persist it.
//!
//! Not served yet: the brokers do not answer ShareGroupHeartbeat, ShareGroupDescribe,
//! ShareFetch or ShareAcknowledge; these are the cores they will run.

pub mod coordinator;
pub mod partition;
pub mod records;

pub use partition::{
    AcknowledgeType, AcquiredRecords, RecordState, ShareConfig, SharePartition, ShareState,
    StateBatch,
};
