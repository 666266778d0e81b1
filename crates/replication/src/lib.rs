//! `odradek-replication`: partition replicas (layer L1: synchronous, no async runtime, time
//! passed in as `now_ms`, effects returned as values).
//!
//! # What it owns
//! A [`Partition`] owns one hosted replica's log, its role (leader, follower or leaderless)
//! under a leader epoch, the replica set and committed ISR from metadata, and, as leader, each
//! follower's log end offset and last caught-up time, the high watermark (HW = min log end
//! offset over the maximal ISR; it never moves back) and the ISR changes to propose. Inputs:
//! [`Partition::apply`] (the registration from a metadata delta), appends as leader, followers'
//! fetches (offset + last fetched epoch), appends as follower (of batches validated before
//! the caller's lock: [`odradek_log::ValidatedBatches`]), time. Outputs: whether the HW
//! advanced (complete acks=all waiters and consumer fetches), [`IsrProposal`]s for the
//! controller (AlterPartition), [`EpochEndOffset`]s where a follower diverges, and truncation.
//! [`checkpoint`] reads and writes Kafka's `replication-offset-checkpoint`.
//!
//! It depends on `odradek-common` and `odradek-log` only.
//!
//! # Threading
//! A `Partition` is used through `&mut self` by one owner at a time (the broker keeps it under
//! a short lock). Readers that must not take that lock read the log through a `LogReader` and
//! the HW through [`Partition::high_watermark_handle`].
//!
//! ```
//! use odradek_log::records::{encode_batch, Compression, NewRecord};
//! use odradek_log::{AppendRules, Log, LogConfig, ValidatedBatches};
//! use odradek_replication::{Partition, PartitionState, Role};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), LogConfig::default(), 0).unwrap();
//! // Broker 1 leads; broker 2 is in the ISR.
//! let mut p = Partition::new("orders", 0, 1, log, None).unwrap();
//! let state = PartitionState { leader: 1, leader_epoch: 0, partition_epoch: 0,
//!     replicas: vec![1, 2], isr: vec![1, 2] };
//! p.apply(state, 0);
//! assert_eq!(p.role(), Role::Leader);
//! let batch = encode_batch(&[NewRecord::value("a", 0)], Compression::None).unwrap();
//! // Checked (CRC, counts, size) before the broker takes the partition's lock.
//! let batches = ValidatedBatches::for_leader(&batch, AppendRules::of(p.log().config())).unwrap();
//! let appended = p.append_as_leader(batches, -1, 2, 0).unwrap();
//! assert_eq!(p.high_watermark(), 0, "not committed until broker 2 has it");
//! // Broker 2 fetches from offset 1: it has the record, so the HW moves past it.
//! let fetch = p.follower_fetch(2, 1, 0, 0, 10).unwrap();
//! assert!(fetch.high_watermark_advanced);
//! assert_eq!(p.acks_all_outcome(appended.leader_epoch, appended.info.last_offset, 2).map(|r| r.is_ok()), Some(true));
//! ```

pub mod checkpoint;
mod error;
mod partition;
pub mod producer;

pub use error::{ReplicationError, Result};
pub use partition::{
    EpochEndOffset, FollowerFetch, IsrProposal, LeaderAppend, Partition, PartitionState, Role,
    Transition, NO_LEADER,
};
