//! Odradek's group coordinator (layer L1: synchronous, no I/O, time passed in).
//!
//! Consumer groups of both protocols (the classic JoinGroup/SyncGroup one, and KIP-848's
//! ConsumerGroupHeartbeat with broker-side assignment, [`Groups::consumer_heartbeat`]) and
//! KIP-932 share groups' membership ([`Groups::share_heartbeat`]) live in the internal compacted
//! topic `__consumer_offsets`; [`share`] holds the share-partition and share coordinator state
//! machines. Groups: the group for id
//! `g` belongs to partition `abs(java_hash(g)) % offsets.topic.num.partitions`, and the broker
//! leading that partition is its coordinator. For each partition it leads, a broker keeps one
//! [`Groups`]: it replays the partition's records into it on becoming leader, feeds it
//! JoinGroup/SyncGroup/Heartbeat/LeaveGroup/OffsetCommit/OffsetFetch/... requests, appends the
//! records each call returns, then sends the replies it returns.
//!
//! ```
//! use bytes::Bytes;
//! use odradek_coordinator::{GroupConfig, Groups, JoinRequest, Reply, SyncRequest};
//!
//! let config = GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() };
//! let mut groups = Groups::new(config, "seed");
//! // The cluster's topics (name -> id, partitions), which consumer groups assign.
//! let topics = std::collections::BTreeMap::<String, (odradek_common::Uuid, i32)>::new();
//! let out = groups.join(0, 1, JoinRequest {
//!     group_id: "g".into(),
//!     client_id: "c".into(),
//!     session_timeout_ms: 10_000,
//!     rebalance_timeout_ms: 10_000,
//!     protocol_type: "consumer".into(),
//!     protocols: vec![("range".into(), Bytes::new())],
//!     ..JoinRequest::default()
//! }, &topics);
//! let Reply::Join(1, joined) = &out.replies[0] else { panic!() };
//! assert_eq!((joined.generation, &joined.leader), (1, &joined.member_id));
//! let out = groups.sync(0, 2, SyncRequest {
//!     group_id: "g".into(),
//!     generation: 1,
//!     member_id: joined.member_id.clone(),
//!     assignments: vec![(joined.member_id.clone(), Bytes::from_static(b"all"))],
//!     ..SyncRequest::default()
//! }, &topics);
//! assert!(matches!(&out.replies[0], Reply::Sync(2, s) if s.assignment == "all"));
//! assert_eq!(out.records.len(), 1); // the group's record, to append before replying
//! ```

mod groups;
pub mod records;
pub mod share;
pub mod txn;

pub use groups::consumer::{
    Assignment, ConsumerGroup, ConsumerGroupDescription, ConsumerGroupState, ConsumerHeartbeat,
    ConsumerHeartbeatResponse, ConsumerMember, MemberState, MigrationPolicy, ServerAssignor,
    TopicView,
};
pub use groups::share::{ShareGroup, ShareHeartbeat, ShareHeartbeatResponse, ShareMember};
pub use groups::{
    CommitOffset, GroupConfig, GroupDescription, GroupListing, GroupState, Groups, JoinMember,
    JoinRequest, JoinResponse, MemberDescription, Output, Reply, SyncRequest, SyncResponse, Token,
};

/// The internal topic holding groups and offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The `__consumer_offsets` partition of `group`: Java's `String.hashCode`, made non-negative
/// as Kafka's `Utils.abs` does, modulo the partition count.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::partition_for;

    #[test]
    fn partition_follows_java_string_hash() {
        // "hello".hashCode() == 99162322; 99162322 % 50 == 22.
        assert_eq!(partition_for("hello", 50), 22);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE: Kafka's abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
    }
}
