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

use crate::records::{
    decode_group, decode_key, decode_offset, encode_group, encode_key, encode_offset, GroupValue,
    MemberValue, OffsetValue, RecordKey,
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
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: usize::MAX,
            offset_metadata_max_bytes: 4096,
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
    fn error(error: ErrorCode, member_id: &str) -> Self {
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
    fn error(error: ErrorCode) -> Self {
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

/// What a call produced: replies to send once `records` are appended to the partition.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Replies, in order.
    pub replies: Vec<Reply>,
    /// Records (key, value; `None` is a tombstone) to append before replying.
    pub records: Vec<(Bytes, Option<Bytes>)>,
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
#[derive(Debug)]
pub struct Groups {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    member_seed: String,
    next_member: u64,
}

impl Groups {
    /// No groups yet; member ids are `<client.id>-<member_seed>-<n>`, so `member_seed` should be
    /// unique per load (a random id).
    pub fn new(config: GroupConfig, member_seed: impl Into<String>) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            member_seed: member_seed.into(),
            next_member: 0,
        }
    }

    /// Applies one record of the partition: while loading, or after appending the records an
    /// [`Output`] asked for. Offsets are set or removed; a group record restores the group when
    /// it is newer than what is in memory.
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
                if let Some(g) = self.groups.get_mut(&group) {
                    g.offsets.remove(&(topic, partition));
                }
            }
            (RecordKey::Group { group }, Some(v)) => {
                let Ok(v) = decode_group(v) else {
                    return;
                };
                let g = self.groups.entry(group).or_insert_with(|| Group::new(now));
                if v.generation <= g.generation && !(g.members.is_empty() && g.generation == 0) {
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
            (RecordKey::Group { group }, None) => {
                if self
                    .groups
                    .get(&group)
                    .is_some_and(|g| g.members.is_empty())
                {
                    self.groups.remove(&group);
                }
            }
        }
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_member += 1;
        format!("{client_id}-{}-{}", self.member_seed, self.next_member)
    }

    /// JoinGroup. The reply comes in this call's output or a later one, under `token`.
    pub fn join(&mut self, now: i64, token: Token, req: JoinRequest) -> Output {
        let mut out = Output::default();
        let reject = |out: &mut Output, e: ErrorCode| {
            out.replies
                .push(Reply::Join(token, JoinResponse::error(e, &req.member_id)));
        };
        if req.group_id.is_empty() {
            reject(&mut out, ErrorCode::InvalidGroupId);
            return out;
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            reject(&mut out, ErrorCode::InvalidSessionTimeout);
            return out;
        }
        if !req.member_id.is_empty() && !self.groups.contains_key(&req.group_id) {
            reject(&mut out, ErrorCode::UnknownMemberId);
            return out;
        }
        let max_size = self.config.max_size;
        let delay = self.config.initial_rebalance_delay_ms;
        let new_id = req
            .member_id
            .is_empty()
            .then(|| self.new_member_id(&req.client_id));
        let g = self
            .groups
            .entry(req.group_id.clone())
            .or_insert_with(|| Group::new(now));
        if g.state == GroupState::Dead {
            reject(&mut out, ErrorCode::CoordinatorNotAvailable);
            return out;
        }
        if !g.supports(&req.protocol_type, &req.protocols) {
            reject(&mut out, ErrorCode::InconsistentGroupProtocol);
            return out;
        }
        g.pending.retain(|_, expiry| *expiry > now);
        let member = |req: &JoinRequest| Member {
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            join: Some(token),
            sync: None,
            heartbeat_deadline: now + i64::from(req.session_timeout_ms),
        };
        if let Some(iid) = req.group_instance_id.clone() {
            match (g.static_member(&iid), new_id.clone()) {
                (Some(current), None) if current != req.member_id => {
                    reject(&mut out, ErrorCode::FencedInstanceId);
                    return out;
                }
                (Some(old), Some(id)) => {
                    Self::replace_static(g, &req, old, id, token, now, delay, &mut out);
                    return out;
                }
                (None, Some(id)) => {
                    // Static members skip the member-id round trip (KIP-394 exempts them).
                    if g.members.len() + g.pending.len() >= max_size {
                        reject(&mut out, ErrorCode::GroupMaxSizeReached);
                        return out;
                    }
                    g.protocol_type = Some(req.protocol_type.clone());
                    g.members.insert(id, member(&req));
                    Self::member_joined(g, now, delay, &mut out);
                    return out;
                }
                _ => {}
            }
        }
        if let Some(id) = new_id {
            if g.members.len() + g.pending.len() >= max_size {
                reject(&mut out, ErrorCode::GroupMaxSizeReached);
                return out;
            }
            if req.require_known_member {
                g.pending
                    .insert(id.clone(), now + i64::from(req.session_timeout_ms));
                out.replies.push(Reply::Join(
                    token,
                    JoinResponse::error(ErrorCode::MemberIdRequired, &id),
                ));
                return out;
            }
            g.protocol_type = Some(req.protocol_type.clone());
            g.members.insert(id, member(&req));
            Self::member_joined(g, now, delay, &mut out);
            return out;
        }
        let id = req.member_id.clone();
        if g.pending.remove(&id).is_some() {
            g.protocol_type = Some(req.protocol_type.clone());
            g.members.insert(id, member(&req));
            Self::member_joined(g, now, delay, &mut out);
            return out;
        }
        let Some(existing) = g.members.get_mut(&id) else {
            reject(&mut out, ErrorCode::UnknownMemberId);
            return out;
        };
        let same = existing.protocols == req.protocols;
        existing.heartbeat_deadline = now + i64::from(req.session_timeout_ms);
        existing.session_timeout_ms = req.session_timeout_ms;
        existing.rebalance_timeout_ms = req.rebalance_timeout_ms;
        match g.state {
            GroupState::PreparingRebalance => {
                existing.protocols = req.protocols.clone();
                if let Some(old) = existing.join.replace(token) {
                    out.replies.push(Reply::Join(
                        old,
                        JoinResponse::error(ErrorCode::RebalanceInProgress, &id),
                    ));
                }
                Self::try_complete_join(g, now, &mut out);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if same
                    && (g.state == GroupState::CompletingRebalance
                        || g.leader.as_deref() != Some(id.as_str())) =>
            {
                // A repeated join with nothing new: the current generation stands.
                out.replies.push(Reply::Join(token, g.join_response(&id)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                existing.protocols = req.protocols.clone();
                existing.join = Some(token);
                Self::prepare_rebalance(g, now, delay, &mut out);
            }
            GroupState::Empty | GroupState::Dead => {
                reject(&mut out, ErrorCode::UnknownMemberId);
            }
        }
        out
    }

    /// A static member rejoining without its member id (its process restarted): the new member
    /// id takes the old one's place and assignment; the old id is fenced. Nothing changed ->
    /// no rebalance, the current generation is returned (KIP-345).
    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        g: &mut Group,
        req: &JoinRequest,
        old: String,
        id: String,
        token: Token,
        now: i64,
        delay: i64,
        out: &mut Output,
    ) {
        let Some(mut m) = g.members.remove(&old) else {
            return;
        };
        if let Some(t) = m.join.take() {
            out.replies.push(Reply::Join(
                t,
                JoinResponse::error(ErrorCode::FencedInstanceId, &old),
            ));
        }
        if let Some(t) = m.sync.take() {
            out.replies.push(Reply::Sync(
                t,
                SyncResponse::error(ErrorCode::FencedInstanceId),
            ));
        }
        let same = m.protocols == req.protocols;
        m.protocols = req.protocols.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.heartbeat_deadline = now + i64::from(req.session_timeout_ms);
        if g.leader.as_deref() == Some(old.as_str()) {
            g.leader = Some(id.clone());
        }
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance if same => {
                g.members.insert(id.clone(), m);
                out.replies.push(Reply::Join(token, g.join_response(&id)));
                if g.state == GroupState::Stable {
                    out.records.push((
                        encode_key(&RecordKey::Group {
                            group: req.group_id.clone(),
                        }),
                        Some(encode_group(&g.value(now))),
                    ));
                }
            }
            GroupState::PreparingRebalance => {
                m.join = Some(token);
                g.members.insert(id, m);
                Self::try_complete_join(g, now, out);
            }
            _ => {
                m.join = Some(token);
                g.members.insert(id, m);
                Self::prepare_rebalance(g, now, delay, out);
            }
        }
    }

    fn member_joined(g: &mut Group, now: i64, delay: i64, out: &mut Output) {
        if g.state == GroupState::PreparingRebalance {
            if g.initial_join {
                g.join_deadline = now.saturating_add(delay).min(g.initial_join_limit);
            }
            Self::try_complete_join(g, now, out);
        } else {
            Self::prepare_rebalance(g, now, delay, out);
        }
    }

    fn prepare_rebalance(g: &mut Group, now: i64, delay: i64, out: &mut Output) {
        if g.state == GroupState::CompletingRebalance {
            for m in g.members.values_mut() {
                m.assignment = Bytes::new();
                if let Some(t) = m.sync.take() {
                    out.replies.push(Reply::Sync(
                        t,
                        SyncResponse::error(ErrorCode::RebalanceInProgress),
                    ));
                }
            }
        }
        let rebalance = g.max_rebalance_timeout();
        g.initial_join = g.state == GroupState::Empty && delay > 0;
        g.initial_join_limit = now.saturating_add(rebalance.max(delay));
        g.join_deadline = if g.initial_join {
            now.saturating_add(delay.min(rebalance.max(delay)))
        } else {
            now + rebalance
        };
        g.set_state(GroupState::PreparingRebalance, now);
        Self::try_complete_join(g, now, out);
    }

    /// Completes PreparingRebalance when every member rejoined (after the initial delay), or at
    /// the deadline without the members that did not.
    fn try_complete_join(g: &mut Group, now: i64, out: &mut Output) {
        if g.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = g.members.values().all(|m| m.join.is_some()) && g.pending.is_empty();
        let ready = if g.initial_join {
            now >= g.join_deadline
        } else {
            all_joined || now >= g.join_deadline
        };
        if !ready {
            return;
        }
        g.members.retain(|_, m| m.join.is_some());
        g.pending.clear();
        g.initial_join = false;
        g.generation += 1;
        if g.members.is_empty() {
            g.protocol = None;
            g.leader = None;
            // The caller writes the empty group's record (it knows the group id).
            g.set_state(GroupState::Empty, now);
            return;
        }
        g.protocol = g.select_protocol();
        if !g.leader.as_ref().is_some_and(|l| g.members.contains_key(l)) {
            g.leader = g.members.keys().next().cloned();
        }
        g.set_state(GroupState::CompletingRebalance, now);
        g.sync_deadline = now + g.max_rebalance_timeout();
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let response = g.join_response(&id);
            if let Some(m) = g.members.get_mut(&id) {
                m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
                if let Some(t) = m.join.take() {
                    out.replies.push(Reply::Join(t, response));
                }
            }
        }
    }

    /// SyncGroup. The reply comes in this call's output or a later one, under `token`.
    pub fn sync(&mut self, now: i64, token: Token, req: SyncRequest) -> Output {
        let mut out = Output::default();
        let reply = |out: &mut Output, r: SyncResponse| out.replies.push(Reply::Sync(token, r));
        let Some(g) = self.groups.get_mut(&req.group_id) else {
            reply(&mut out, SyncResponse::error(ErrorCode::UnknownMemberId));
            return out;
        };
        if g.state == GroupState::Dead {
            reply(
                &mut out,
                SyncResponse::error(ErrorCode::CoordinatorNotAvailable),
            );
            return out;
        }
        if g.fenced(&req.member_id, req.group_instance_id.as_deref()) {
            reply(&mut out, SyncResponse::error(ErrorCode::FencedInstanceId));
            return out;
        }
        if !g.members.contains_key(&req.member_id) {
            reply(&mut out, SyncResponse::error(ErrorCode::UnknownMemberId));
            return out;
        }
        if req.generation != g.generation {
            reply(&mut out, SyncResponse::error(ErrorCode::IllegalGeneration));
            return out;
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != g.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != g.protocol.as_ref())
        {
            reply(
                &mut out,
                SyncResponse::error(ErrorCode::InconsistentGroupProtocol),
            );
            return out;
        }
        let success = |g: &Group, id: &str| SyncResponse {
            error: ErrorCode::None,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            assignment: g
                .members
                .get(id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        };
        match g.state {
            GroupState::PreparingRebalance => {
                reply(
                    &mut out,
                    SyncResponse::error(ErrorCode::RebalanceInProgress),
                );
            }
            GroupState::Stable => {
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
                }
                let r = success(g, &req.member_id);
                reply(&mut out, r);
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
                    if let Some(old) = m.sync.replace(token) {
                        out.replies.push(Reply::Sync(
                            old,
                            SyncResponse::error(ErrorCode::RebalanceInProgress),
                        ));
                    }
                }
                if g.leader.as_deref() == Some(req.member_id.as_str()) {
                    for m in g.members.values_mut() {
                        m.assignment = Bytes::new();
                    }
                    for (id, a) in req.assignments {
                        if let Some(m) = g.members.get_mut(&id) {
                            m.assignment = a;
                        }
                    }
                    g.set_state(GroupState::Stable, now);
                    out.records.push((
                        encode_key(&RecordKey::Group {
                            group: req.group_id.clone(),
                        }),
                        Some(encode_group(&g.value(now))),
                    ));
                    let ids: Vec<String> = g.members.keys().cloned().collect();
                    for id in ids {
                        let r = success(g, &id);
                        if let Some(t) = g.members.get_mut(&id).and_then(|m| m.sync.take()) {
                            out.replies.push(Reply::Sync(t, r));
                        }
                    }
                }
            }
            GroupState::Empty | GroupState::Dead => {
                reply(&mut out, SyncResponse::error(ErrorCode::UnknownMemberId));
            }
        }
        out
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: i64,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> ErrorCode {
        let Some(g) = self.groups.get_mut(group) else {
            return ErrorCode::UnknownMemberId;
        };
        if g.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if g.fenced(member, instance) {
            return ErrorCode::FencedInstanceId;
        }
        let Some(m) = g.members.get_mut(member) else {
            return ErrorCode::UnknownMemberId;
        };
        m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
        if generation != g.generation {
            return ErrorCode::IllegalGeneration;
        }
        match g.state {
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
        }
    }

    /// LeaveGroup of `members` (member id, and `group.instance.id` for static members; an empty
    /// member id with an instance id names that instance's member): an error per member, and
    /// what the departures set off.
    pub fn leave(
        &mut self,
        now: i64,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> (Vec<ErrorCode>, Output) {
        let mut out = Output::default();
        let delay = self.config.initial_rebalance_delay_ms;
        let Some(g) = self.groups.get_mut(group) else {
            return (vec![ErrorCode::UnknownMemberId; members.len()], out);
        };
        let mut errors = Vec::new();
        let mut removed = false;
        for (member, instance) in members {
            let id = match instance.as_deref() {
                Some(iid) if member.is_empty() => g.static_member(iid).unwrap_or_default(),
                Some(_) if g.fenced(member, instance.as_deref()) => {
                    errors.push(ErrorCode::FencedInstanceId);
                    continue;
                }
                _ => member.clone(),
            };
            let id = &id;
            if g.pending.remove(id).is_some() {
                errors.push(ErrorCode::None);
                continue;
            }
            match g.members.remove(id) {
                Some(m) => {
                    Self::answer_removed(id, m, &mut out);
                    errors.push(ErrorCode::None);
                    removed = true;
                }
                None => errors.push(ErrorCode::UnknownMemberId),
            }
        }
        if removed {
            Self::after_removal(group, g, now, delay, &mut out);
        }
        (errors, out)
    }

    fn answer_removed(id: &str, m: Member, out: &mut Output) {
        if let Some(t) = m.join {
            out.replies.push(Reply::Join(
                t,
                JoinResponse::error(ErrorCode::UnknownMemberId, id),
            ));
        }
        if let Some(t) = m.sync {
            out.replies.push(Reply::Sync(
                t,
                SyncResponse::error(ErrorCode::UnknownMemberId),
            ));
        }
    }

    fn after_removal(group: &str, g: &mut Group, now: i64, delay: i64, out: &mut Output) {
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                Self::prepare_rebalance(g, now, delay, out);
            }
            GroupState::PreparingRebalance => Self::try_complete_join(g, now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
        if g.state == GroupState::Empty {
            // The group record of an empty group: generation moved on, nobody in it.
            out.records.push((
                encode_key(&RecordKey::Group {
                    group: group.to_string(),
                }),
                Some(encode_group(&g.value(now))),
            ));
        }
    }

    /// Fires deadlines: members whose session expired leave, rebalances whose time is up
    /// complete, and a leader that never sent its assignment sets off a new rebalance.
    pub fn tick(&mut self, now: i64) -> Output {
        let mut out = Output::default();
        let delay = self.config.initial_rebalance_delay_ms;
        for (id, g) in self.groups.iter_mut() {
            g.pending.retain(|_, expiry| *expiry > now);
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(_, m)| m.join.is_none() && m.sync.is_none() && m.heartbeat_deadline < now)
                .map(|(id, _)| id.clone())
                .collect();
            let before = g.state;
            for member in &expired {
                if let Some(m) = g.members.remove(member) {
                    Self::answer_removed(member, m, &mut out);
                }
            }
            if !expired.is_empty() {
                Self::after_removal(id, g, now, delay, &mut out);
            } else if g.state == GroupState::PreparingRebalance {
                Self::try_complete_join(g, now, &mut out);
                if before != g.state && g.state == GroupState::Empty {
                    out.records.push((
                        encode_key(&RecordKey::Group { group: id.clone() }),
                        Some(encode_group(&g.value(now))),
                    ));
                }
            } else if g.state == GroupState::CompletingRebalance && now >= g.sync_deadline {
                let missing: Vec<String> = g
                    .members
                    .iter()
                    .filter(|(_, m)| m.sync.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                for member in &missing {
                    if let Some(m) = g.members.remove(member) {
                        Self::answer_removed(member, m, &mut out);
                    }
                }
                Self::after_removal(id, g, now, delay, &mut out);
            }
        }
        out
    }

    /// OffsetCommit: an error per offset, and the records to append (then [`Groups::replay`])
    /// for the accepted ones.
    pub fn commit(
        &mut self,
        now: i64,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        offsets: &[CommitOffset],
    ) -> (Vec<ErrorCode>, Output) {
        let all = |e: ErrorCode| (vec![e; offsets.len()], Output::default());
        if group.is_empty() {
            return all(ErrorCode::InvalidGroupId);
        }
        match self.groups.get_mut(group) {
            None if generation >= 0 => return all(ErrorCode::IllegalGeneration),
            None => {}
            Some(g) => {
                if g.state == GroupState::Dead {
                    return all(ErrorCode::CoordinatorNotAvailable);
                }
                if g.fenced(member, instance) {
                    return all(ErrorCode::FencedInstanceId);
                }
                let simple = generation < 0 && g.state == GroupState::Empty;
                if !simple {
                    if g.state == GroupState::CompletingRebalance {
                        return all(ErrorCode::RebalanceInProgress);
                    }
                    let Some(m) = g.members.get_mut(member) else {
                        return all(ErrorCode::UnknownMemberId);
                    };
                    m.heartbeat_deadline = now + i64::from(m.session_timeout_ms);
                    if generation != g.generation {
                        return all(ErrorCode::IllegalGeneration);
                    }
                }
            }
        }
        let mut out = Output::default();
        let errors = offsets
            .iter()
            .map(|o| {
                let metadata = o.metadata.clone().unwrap_or_default();
                if metadata.len() > self.config.offset_metadata_max_bytes {
                    return ErrorCode::OffsetMetadataTooLarge;
                }
                out.records.push((
                    encode_key(&RecordKey::Offset {
                        group: group.to_string(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                    }),
                    Some(encode_offset(&OffsetValue {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata,
                        commit_timestamp: now,
                    })),
                ));
                ErrorCode::None
            })
            .collect();
        (errors, out)
    }

    /// The committed offsets of `group` for `partitions` (all committed ones when `None`);
    /// `None` where nothing is committed.
    pub fn fetch(
        &self,
        group: &str,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, i32, Option<OffsetValue>)> {
        let offsets = self.groups.get(group).map(|g| &g.offsets);
        match partitions {
            Some(list) => list
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .map(|(t, p)| {
                    let v = offsets.and_then(|o| o.get(&(t.clone(), p))).cloned();
                    (t, p, v)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|((t, p), v)| (t.clone(), *p, Some(v.clone())))
                .collect(),
        }
    }

    /// Every group: (id, protocol type, state).
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        self.groups
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect()
    }

    /// DescribeGroups of one group (`None`: unknown here).
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group)?;
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

    /// Offsets retention (`offsets.retention.minutes`, KIP-211): the offsets of a group that
    /// has been Empty for `retention_ms` expire, and so do those of a group that never had
    /// members (assign-mode commits) once `retention_ms` passed since their commit; groups of
    /// members keep theirs. A group left with neither members nor offsets is removed. Returns the
    /// tombstones to append (then replay).
    pub fn expire_offsets(&mut self, now: i64, retention_ms: i64) -> Output {
        let mut out = Output::default();
        for (id, g) in &self.groups {
            let expired: Vec<&(String, i32)> = match (g.state, &g.protocol_type) {
                (GroupState::Empty, Some(_)) => {
                    if g.state_timestamp.saturating_add(retention_ms) <= now {
                        g.offsets.keys().collect()
                    } else {
                        Vec::new()
                    }
                }
                (_, None) => g
                    .offsets
                    .iter()
                    .filter(|(_, v)| v.commit_timestamp.saturating_add(retention_ms) <= now)
                    .map(|(k, _)| k)
                    .collect(),
                _ => Vec::new(),
            };
            for (topic, partition) in &expired {
                out.records.push((
                    encode_key(&RecordKey::Offset {
                        group: id.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                    }),
                    None,
                ));
            }
            if g.members.is_empty()
                && g.state == GroupState::Empty
                && expired.len() == g.offsets.len()
                && (!expired.is_empty() || g.generation > 0)
            {
                out.records
                    .push((encode_key(&RecordKey::Group { group: id.clone() }), None));
            }
        }
        out
    }

    /// DeleteGroups of one group: the tombstones to append (then replay), or why not.
    pub fn delete(&mut self, group: &str) -> Result<Vec<(Bytes, Option<Bytes>)>, ErrorCode> {
        let g = self.groups.get(group).ok_or(ErrorCode::GroupIdNotFound)?;
        match g.state {
            GroupState::Dead => return Err(ErrorCode::GroupIdNotFound),
            GroupState::Empty => {}
            _ => return Err(ErrorCode::NonEmptyGroup),
        }
        let mut records: Vec<(Bytes, Option<Bytes>)> = g
            .offsets
            .keys()
            .map(|(t, p)| {
                (
                    encode_key(&RecordKey::Offset {
                        group: group.to_string(),
                        topic: t.clone(),
                        partition: *p,
                    }),
                    None,
                )
            })
            .collect();
        records.push((
            encode_key(&RecordKey::Group {
                group: group.to_string(),
            }),
            None,
        ));
        if let Some(g) = self.groups.get_mut(group) {
            g.offsets.clear();
        }
        Ok(records)
    }
}
