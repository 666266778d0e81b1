//! Kafka's classic group protocol for the groups of one `__consumer_offsets` partition:
//! JoinGroup / SyncGroup / Heartbeat / LeaveGroup drive each group through Empty ->
//! PreparingRebalance -> CompletingRebalance -> Stable, and OffsetCommit / OffsetFetch keep the
//! committed offsets.
//!
//! Nothing here waits or does I/O. A JoinGroup or SyncGroup that must wait is parked under the
//! caller's [`Token`]; every call returns an [`Output`] with the replies now due (to this request
//! or to parked ones) and the records to append to the partition. Time comes in as `now` (ms) and
//! [`Groups::tick`] fires rebalance and session deadlines.

use std::collections::BTreeMap;

use bytes::Bytes;
use odradek_common::ErrorCode;

mod configs;
pub(crate) mod consumer;
mod membership;
mod offsets;
pub(crate) mod share;

use crate::records::{
    decode_group, decode_key, decode_offset, GroupValue, MemberValue, OffsetValue, RecordKey,
};

/// Identifies a parked request; chosen by the caller, unique among parked requests.
pub type Token = u64;

/// The broker settings the coordinator follows (Kafka's names and defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms` (3000): how long the first rebalance of an empty
    /// group waits for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (unbounded).
    pub max_size: usize,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.session.timeout.ms` (45000): a consumer-protocol member that does not
    /// heartbeat for this long is removed.
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.max.size` (unbounded).
    pub consumer_max_size: usize,
    /// `group.consumer.assignors` (`uniform,range`): the first is the default.
    pub consumer_assignors: Vec<consumer::ServerAssignor>,
    /// `group.consumer.migration.policy` (`bidirectional`): which groups with members may change
    /// between the classic and the consumer protocol.
    pub consumer_migration_policy: consumer::MigrationPolicy,
    /// `group.share.session.timeout.ms` (45000).
    pub share_session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms` (5000).
    pub share_heartbeat_interval_ms: i32,
    /// `group.share.max.size` (200).
    pub share_max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: usize::MAX,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_max_size: usize::MAX,
            consumer_assignors: vec![
                consumer::ServerAssignor::Uniform,
                consumer::ServerAssignor::Range,
            ],
            consumer_migration_policy: consumer::MigrationPolicy::Bidirectional,
            share_session_timeout_ms: 45_000,
            share_heartbeat_interval_ms: 5_000,
            share_max_size: 200,
        }
    }
}

/// A group's state, named as Kafka's DescribeGroups and ListGroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned and heartbeating.
    Stable,
    /// Removed.
    Dead,
}

impl GroupState {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id ("" for a new member).
    pub member_id: String,
    /// `group.instance.id`: a static member (KIP-345) keeps its place across restarts.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Protocol type ("consumer").
    pub protocol_type: String,
    /// Supported protocols in preference order, with the member's metadata for each.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED and its id (KIP-394).
    pub require_known_member: bool,
}

/// A member as JoinGroup tells the leader about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinMember {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// Error.
    pub error: ErrorCode,
    /// Generation (-1 on error).
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member, for the leader only.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    /// A failed join of `member_id`.
    pub fn error(error: ErrorCode, member_id: &str) -> Self {
        Self {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    /// Error.
    pub error: ErrorCode,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

impl SyncResponse {
    /// A failed sync.
    pub fn error(error: ErrorCode) -> Self {
        Self {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A reply now due to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To a JoinGroup.
    Join(Token, JoinResponse),
    /// To a SyncGroup.
    Sync(Token, SyncResponse),
}

impl Reply {
    /// The token of the request this answers.
    pub fn token(&self) -> Token {
        match self {
            Reply::Join(t, _) | Reply::Sync(t, _) => *t,
        }
    }

    /// The same request answered with `error` instead (when the records it depends on could
    /// not be appended).
    pub fn failed(&self, error: ErrorCode) -> Reply {
        match self {
            Reply::Join(t, j) => Reply::Join(*t, JoinResponse::error(error, &j.member_id)),
            Reply::Sync(t, _) => Reply::Sync(*t, SyncResponse::error(error)),
        }
    }
}

/// What a call produced: replies to send once `records` are appended to the partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Replies, in order.
    pub replies: Vec<Reply>,
    /// Records (key, value; `None` is a tombstone) to append before replying.
    pub records: Vec<(Bytes, Option<Bytes>)>,
    /// Rebalances this call completed (a group became Stable with the leader's assignment, as
    /// Kafka counts them), for the metrics.
    pub completed_rebalances: u32,
}

/// A SyncGroup request.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    /// Group id.
    pub group_id: String,
    /// Generation.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` (v3+): a static member replaced by a newer one is fenced.
    pub group_instance_id: Option<String>,
    /// Protocol type (v5+, checked when present).
    pub protocol_type: Option<String>,
    /// Protocol name (v5+, checked when present).
    pub protocol_name: Option<String>,
    /// The leader's assignment per member (empty from followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// One partition's offset in an OffsetCommit.
#[derive(Debug, Clone)]
pub struct CommitOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch (-1 unknown).
    pub leader_epoch: i32,
    /// Metadata.
    pub metadata: Option<String>,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata for the chosen protocol.
    pub metadata: Bytes,
    /// Assignment.
    pub assignment: Bytes,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("consumer" for consumer groups of either protocol; "" for a group with
    /// only offsets).
    pub protocol_type: String,
    /// State, by Kafka's name for the group's kind.
    pub state: &'static str,
    /// "classic", "consumer" or "share" (ListGroups v5).
    pub group_type: &'static str,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: GroupState,
    /// Protocol type ("" when none).
    pub protocol_type: String,
    /// Chosen protocol ("" when none).
    pub protocol: String,
    /// Members (only in CompletingRebalance/Stable do they carry metadata and assignments).
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
struct Member {
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    join: Option<Token>,
    sync: Option<Token>,
    heartbeat_deadline: i64,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
struct Group {
    state: GroupState,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, not joined yet, with their expiry.
    pending: BTreeMap<String, i64>,
    /// When PreparingRebalance completes at the latest.
    join_deadline: i64,
    /// The first rebalance of an empty group waits for the initial delay.
    initial_join: bool,
    /// When the initial delay may extend to at the latest.
    initial_join_limit: i64,
    /// When CompletingRebalance gives up on the leader.
    sync_deadline: i64,
    state_timestamp: i64,
    offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Set when the id is a KIP-848 consumer group (then the classic half is Empty).
    consumer: Option<consumer::ConsumerGroup>,
    /// Set when the id is a KIP-932 share group (then the classic half is Empty).
    share: Option<share::ShareGroup>,
}

impl Group {
    fn new(now: i64) -> Self {
        Self {
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            join_deadline: 0,
            initial_join: false,
            initial_join_limit: 0,
            sync_deadline: 0,
            state_timestamp: now,
            offsets: BTreeMap::new(),
            consumer: None,
            share: None,
        }
    }

    /// The member holding static instance `iid`.
    fn static_member(&self, iid: &str) -> Option<String> {
        self.members
            .iter()
            .find(|(_, m)| m.group_instance_id.as_deref() == Some(iid))
            .map(|(id, _)| id.clone())
    }

    /// A request from `member` carrying instance `iid` that a newer member of that instance
    /// replaced: Kafka answers FENCED_INSTANCE_ID so the old process stops.
    fn fenced(&self, member: &str, iid: Option<&str>) -> bool {
        iid.and_then(|i| self.static_member(i))
            .is_some_and(|current| current != member)
    }

    fn set_state(&mut self, state: GroupState, now: i64) {
        self.state = state;
        self.state_timestamp = now;
    }

    fn max_rebalance_timeout(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Protocols every member supports.
    fn candidates(&self) -> Vec<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut c: Vec<String> = first.protocols.iter().map(|p| p.0.clone()).collect();
        for m in it {
            c.retain(|p| m.protocols.iter().any(|q| &q.0 == p));
        }
        c
    }

    /// Kafka's vote: each member votes for its most preferred candidate; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        // Ties go to the earliest candidate in the first member's order.
        candidates
            .iter()
            .max_by_key(|c| {
                (
                    votes.get(c.as_str()).copied().unwrap_or(0),
                    std::cmp::Reverse(candidates.iter().position(|x| x == *c)),
                )
            })
            .cloned()
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && self
                .candidates()
                .iter()
                .any(|c| protocols.iter().any(|(p, _)| p == c))
    }

    fn value(&self, now: i64) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now,
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberValue {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        JoinResponse {
            error: ErrorCode::None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            member_id: member_id.to_string(),
            members: if leader == member_id {
                self.members
                    .iter()
                    .map(|(id, m)| JoinMember {
                        member_id: id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            leader,
        }
    }
}

/// The groups of one `__consumer_offsets` partition.
#[derive(Debug, Clone)]
pub struct Groups {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    /// Offset commits appended but not yet committed (at or past the partition's high
    /// watermark), by log offset: (group, topic-partition, value). OffsetFetch does not see them
    /// until then (Kafka's pending commits).
    pending_offsets: BTreeMap<i64, PendingCommit>,
    /// Transactional offset commits (TxnOffsetCommit) by producer id, waiting for their
    /// transaction's commit marker (applied) or abort marker (dropped).
    txn_offsets: std::collections::HashMap<i64, Vec<PendingCommit>>,
    member_seed: String,
    next_member: u64,
    /// Group configs by group id (`configs.rs`).
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
}

/// An offset commit appended but not yet committed.
#[derive(Debug, Clone)]
struct PendingCommit {
    group: String,
    partition: (String, i32),
    value: OffsetValue,
}

impl Groups {
    /// No groups yet; member ids are `<client.id>-<member_seed>-<n>`, so `member_seed` should be
    /// unique per load (a random id).
    pub fn new(config: GroupConfig, member_seed: impl Into<String>) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            pending_offsets: BTreeMap::new(),
            txn_offsets: std::collections::HashMap::new(),
            member_seed: member_seed.into(),
            next_member: 0,
            group_configs: BTreeMap::new(),
        }
    }

    /// Applies one record this coordinator appended at `log_offset` (the records an
    /// [`Output`] asked for): as [`Groups::replay`], except that an offset commit stays pending,
    /// unseen by OffsetFetch, until [`Groups::commit_pending_offsets`] is told the high
    /// watermark passed it (if it never does, this broker loses the partition and unloads it).
    pub fn replay_appended(&mut self, now: i64, key: Bytes, value: Option<Bytes>, log_offset: i64) {
        if let (
            Ok(RecordKey::Offset {
                group,
                topic,
                partition,
            }),
            Some(v),
        ) = (decode_key(key.clone()), &value)
        {
            if let Ok(value) = decode_offset(v.clone()) {
                self.groups
                    .entry(group.clone())
                    .or_insert_with(|| Group::new(now));
                self.pending_offsets.insert(
                    log_offset,
                    PendingCommit {
                        group,
                        partition: (topic, partition),
                        value,
                    },
                );
            }
            return;
        }
        if let Ok(RecordKey::Consumer { .. } | RecordKey::Share { .. }) = decode_key(key.clone()) {
            // The consumer or share group state machine applied it when it wrote it.
            return;
        }
        self.replay(now, key, value);
    }

    /// Applies one offset commit record of a transaction of `producer_id` (appended by
    /// TxnOffsetCommit, or met while loading): it waits for the transaction's marker.
    pub fn replay_transactional(
        &mut self,
        now: i64,
        producer_id: i64,
        key: Bytes,
        value: Option<Bytes>,
    ) {
        let (
            Ok(RecordKey::Offset {
                group,
                topic,
                partition,
            }),
            Some(v),
        ) = (decode_key(key), value)
        else {
            return;
        };
        let Ok(value) = decode_offset(v) else { return };
        self.groups
            .entry(group.clone())
            .or_insert_with(|| Group::new(now));
        self.txn_offsets
            .entry(producer_id)
            .or_default()
            .push(PendingCommit {
                group,
                partition: (topic, partition),
                value,
            });
    }

    /// The transaction of `producer_id` ended (its marker is committed in this partition):
    /// its offset commits take effect, or are dropped on abort.
    pub fn complete_transaction(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.txn_offsets.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for c in pending {
            if let Some(g) = self.groups.get_mut(&c.group) {
                g.offsets.insert(c.partition, c.value);
            }
        }
    }

    /// Whether a transaction holds an offset commit of `group` for `topic`-`partition` not
    /// yet ended (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT).
    pub fn has_unstable_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets
            .values()
            .flatten()
            .any(|c| c.group == group && c.partition.0 == topic && c.partition.1 == partition)
    }

    /// The partition's high watermark is `high_watermark`: pending offset commits below it are
    /// committed, in log order.
    pub fn commit_pending_offsets(&mut self, high_watermark: i64) {
        while let Some(entry) = self.pending_offsets.first_entry() {
            if *entry.key() >= high_watermark {
                break;
            }
            let c = entry.remove();
            // A group deleted since (its offsets tombstoned) takes its pending commits along.
            if let Some(g) = self.groups.get_mut(&c.group) {
                g.offsets.insert(c.partition, c.value);
            }
        }
    }

    /// Applies one record of the partition while loading it. Offsets are set or removed; a
    /// group record restores the group when it is newer than what is in memory.
    pub fn replay(&mut self, now: i64, key: Bytes, value: Option<Bytes>) {
        let Ok(key) = decode_key(key) else {
            return;
        };
        match (key, value) {
            (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                Some(v),
            ) => {
                if let Ok(v) = decode_offset(v) {
                    self.groups
                        .entry(group)
                        .or_insert_with(|| Group::new(now))
                        .offsets
                        .insert((topic, partition), v);
                }
            }
            (
                RecordKey::Offset {
                    group,
                    topic,
                    partition,
                },
                None,
            ) => {
                let tp = (topic, partition);
                self.pending_offsets
                    .retain(|_, c| c.group != group || c.partition != tp);
                if let Some(g) = self.groups.get_mut(&group) {
                    g.offsets.remove(&tp);
                }
            }
            (RecordKey::Group { group }, Some(v)) => {
                let Ok(v) = decode_group(v) else {
                    return;
                };
                let g = self.groups.entry(group).or_insert_with(|| Group::new(now));
                // Our own record, replayed after appending it, is not newer than the group.
                if v.generation <= g.generation {
                    return;
                }
                g.generation = v.generation;
                g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
                g.protocol = v.protocol.clone();
                g.leader = v.leader;
                g.members = v
                    .members
                    .into_iter()
                    .map(|m| {
                        (
                            m.member_id,
                            Member {
                                group_instance_id: m.group_instance_id,
                                client_id: m.client_id,
                                client_host: m.client_host,
                                session_timeout_ms: m.session_timeout_ms,
                                rebalance_timeout_ms: m.rebalance_timeout_ms,
                                protocols: vec![(
                                    v.protocol.clone().unwrap_or_default(),
                                    m.subscription,
                                )],
                                assignment: m.assignment,
                                join: None,
                                sync: None,
                                heartbeat_deadline: now + i64::from(m.session_timeout_ms),
                            },
                        )
                    })
                    .collect();
                let state = if g.members.is_empty() {
                    GroupState::Empty
                } else {
                    GroupState::Stable
                };
                g.set_state(state, now);
                if v.current_state_timestamp >= 0 {
                    g.state_timestamp = v.current_state_timestamp;
                }
            }
            (RecordKey::Consumer { group, key }, value) => {
                self.replay_consumer(now, group, key, value)
            }
            (RecordKey::Share { group, key }, value) => self.replay_share(now, group, key, value),
            (RecordKey::Group { group }, None) => {
                let Some(g) = self.groups.get_mut(&group) else {
                    return;
                };
                if g.offsets.is_empty() && g.consumer.is_none() && g.share.is_none() {
                    self.groups.remove(&group);
                } else {
                    // The classic half is gone (the group became a consumer group, its
                    // members with it); its offsets and its consumer half stay.
                    g.members.clear();
                    g.generation = 0;
                    g.protocol_type = None;
                    g.protocol = None;
                    g.leader = None;
                    g.set_state(GroupState::Empty, now);
                }
            }
        }
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        format!("{client_id}-{}-{}", self.member_seed, self.next_member)
    }

    /// Every group, classic and consumer, as ListGroups shows them.
    pub fn list(&self) -> Vec<GroupListing> {
        self.groups
            .iter()
            .map(|(id, g)| match &g.consumer {
                _ if g.share.is_some() => GroupListing {
                    group_id: id.clone(),
                    protocol_type: "share".into(),
                    state: g.share.as_ref().map_or("Empty", |s| s.state()),
                    group_type: "share",
                },
                Some(cg) => GroupListing {
                    group_id: id.clone(),
                    protocol_type: "consumer".into(),
                    state: cg.state().name(),
                    group_type: "consumer",
                },
                None => GroupListing {
                    group_id: id.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state.name(),
                    group_type: "classic",
                },
            })
            .collect()
    }

    /// Every committed offset of every group: (group, topic, partition, offset).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.groups
            .iter()
            .flat_map(|(id, g)| {
                g.offsets
                    .iter()
                    .map(move |((t, p), v)| (id.clone(), t.clone(), *p, v.offset))
            })
            .collect()
    }

    /// DescribeGroups of one group (`None`: unknown here).
    /// A consumer group is not described here (Kafka answers it as Dead before v6):
    /// ConsumerGroupDescribe describes it.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let g = self
            .groups
            .get(group)
            .filter(|g| g.consumer.is_none() && g.share.is_none())?;
        let protocol = g.protocol.clone().unwrap_or_default();
        let assigned = matches!(
            g.state,
            GroupState::Stable | GroupState::CompletingRebalance
        );
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if assigned {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if assigned {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if g.state == GroupState::Stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }
}
