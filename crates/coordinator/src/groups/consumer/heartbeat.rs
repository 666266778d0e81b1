//! ConsumerGroupHeartbeat: join, heartbeat, leave; the deadlines of consumer groups; and the
//! member-epoch checks of OffsetCommit and OffsetFetch.

use std::collections::BTreeMap;

use odradek_common::{ErrorCode, Uuid};

use super::assignor::{Assignment, AssignorMember, ServerAssignor};
use super::reconcile::next_state;
use super::{
    ConsumerGroup, ConsumerMember, MemberState, LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use crate::groups::{Group, GroupConfig, GroupState, Groups, Output};
use crate::records::consumer::{self as rec, MemberMetadataValue};
use crate::records::{encode_key, RecordKey};

/// The topics of the cluster, as the coordinator needs them.
pub trait TopicView {
    /// The id and partition count of topic `name`, if it exists.
    fn topic(&self, name: &str) -> Option<(Uuid, i32)>;
    /// Every topic's name (to resolve subscriptions by regular expression).
    fn names(&self) -> Vec<String>;
    /// A number that grows whenever the set of topics may have changed (the metadata offset):
    /// a resolved regular expression is kept until it moves.
    fn version(&self) -> i64;
    /// The name of the topic with id `id`, if it exists.
    fn name(&self, id: &Uuid) -> Option<String> {
        self.names()
            .into_iter()
            .find(|n| self.topic(n).is_some_and(|(t, _)| t == *id))
    }
}

/// A fixed set of topics (tests and tools): name -> (id, partitions).
impl TopicView for BTreeMap<String, (Uuid, i32)> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        self.get(name).copied()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }

    fn version(&self) -> i64 {
        // Content-addressed: any change of names or sizes gives another version.
        let mut h: i64 = 17;
        for (n, (_, p)) in self {
            for b in n.bytes() {
                h = h.wrapping_mul(31).wrapping_add(i64::from(b));
            }
            h = h.wrapping_mul(31).wrapping_add(i64::from(*p));
        }
        h
    }
}

/// A ConsumerGroupHeartbeat request. `None` fields are unchanged since the last heartbeat.
#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeat {
    /// Group id.
    pub group_id: String,
    /// Member id: chosen by the client (v1), or "" to be given one (v0, epoch 0).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member to leave for now, else its epoch.
    pub member_epoch: i32,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout (ms; -1 unchanged).
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regex (refused: not implemented).
    pub subscribed_topic_regex: Option<String>,
    /// The broker-side assignor the member asks for.
    pub server_assignor: Option<String>,
    /// The partitions the client owns.
    pub owned: Option<Assignment>,
    /// Client id (from the request header).
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// The request's version: from v1 (KIP-1082) the client names itself, even to join.
    pub api_version: i16,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerHeartbeatResponse {
    /// Error.
    pub error: ErrorCode,
    /// Why, for the client's log.
    pub error_message: Option<String>,
    /// The member's id.
    pub member_id: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// How often to heartbeat (ms).
    pub heartbeat_interval_ms: i32,
    /// Its partitions, when they changed (or it joined or sent what it owns).
    pub assignment: Option<Assignment>,
}

impl ConsumerHeartbeat {
    /// Kafka's checks of a request, before any group is looked at (so a broker may run them
    /// before its coordinator is loaded): INVALID_REQUEST with Kafka's messages,
    /// INVALID_REGULAR_EXPRESSION, UNSUPPORTED_ASSIGNOR.
    pub fn validate(&self, config: &GroupConfig) -> Result<(), (ErrorCode, String)> {
        let req = self;
        let leaving = req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH;
        // Ids are written as Kafka strings (int16 lengths) in the group's records.
        if req.member_id.len() > i16::MAX as usize || req.group_id.len() > i16::MAX as usize {
            return Err(invalid("MemberId and GroupId must be at most 32767 bytes."));
        }
        if req.member_id.trim().is_empty()
            && (req.api_version >= 1 || req.member_epoch > 0 || leaving)
        {
            return Err(invalid("MemberId can't be empty."));
        }
        if req.group_id.trim().is_empty() {
            return Err(invalid("GroupId can't be empty."));
        }
        if req.instance_id.as_deref() == Some("") {
            return Err(invalid("InstanceId can't be empty."));
        }
        if req.rack_id.as_deref() == Some("") {
            return Err(invalid("RackId can't be empty."));
        }
        match req.member_epoch {
            0 => {
                if req.rebalance_timeout_ms <= 0 {
                    return Err(invalid(
                        "RebalanceTimeoutMs must be provided in first request.",
                    ));
                }
                if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                    return Err(invalid("TopicPartitions must be empty when (re-)joining."));
                }
                if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                    return Err(invalid(
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                    ));
                }
            }
            e if e < LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                return Err(invalid(format!("MemberEpoch {e} is invalid.")))
            }
            _ => {}
        }
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH && req.instance_id.is_none() {
            return Err(invalid(
                "InstanceId can't be null when leaving as a static member.",
            ));
        }
        if let Some(r) = req.subscribed_topic_regex.as_deref() {
            if let Err(e) = super::regex::compile(r) {
                return Err((
                    ErrorCode::InvalidRegularExpression,
                    format!("SubscribedTopicRegex `{r}` is not a valid regular expression: {e}"),
                ));
            }
        }
        if let Some(a) = req.server_assignor.as_deref() {
            let known = ServerAssignor::from_name(a)
                .is_some_and(|a| config.consumer_assignors.contains(&a));
            if !known {
                return Err((
                    ErrorCode::UnsupportedAssignor,
                    format!("ServerAssignor {a} is not supported."),
                ));
            }
        }
        Ok(())
    }
}

impl ConsumerHeartbeatResponse {
    /// A refused heartbeat.
    pub fn error(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            error_message: Some(message.into()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

type Reject = (ErrorCode, String);

fn invalid(message: impl Into<String>) -> Reject {
    (ErrorCode::InvalidRequest, message.into())
}

impl Groups {
    /// ConsumerGroupHeartbeat: the answer, and the records to append before sending it.
    pub fn consumer_heartbeat(
        &mut self,
        now: i64,
        req: ConsumerHeartbeat,
        topics: &dyn TopicView,
    ) -> (ConsumerHeartbeatResponse, Output) {
        let mut out = Output::default();
        // A join may upgrade a classic group: if the heartbeat is then refused, the group
        // stays as it was (its waiting JoinGroups and SyncGroups were told to rejoin anyway).
        let classic = (req.member_epoch == 0)
            .then(|| {
                self.groups
                    .get(&req.group_id)
                    .filter(|g| g.consumer.is_none() && !g.members.is_empty())
                    .cloned()
            })
            .flatten();
        let group_id = req.group_id.clone();
        let resp = match self.consumer_heartbeat_inner(now, req, topics, &mut out) {
            Ok(r) => r,
            Err((e, message)) => {
                // Nothing is written for a refused heartbeat.
                out.records.clear();
                if let Some(mut g) = classic {
                    let answered: Vec<_> = out.replies.iter().map(|r| r.token()).collect();
                    for m in g.members.values_mut() {
                        m.join = m.join.filter(|t| !answered.contains(t));
                        m.sync = m.sync.filter(|t| !answered.contains(t));
                    }
                    self.groups.insert(group_id, g);
                }
                ConsumerHeartbeatResponse::error(e, message)
            }
        };
        (resp, out)
    }

    fn consumer_heartbeat_inner(
        &mut self,
        now: i64,
        mut req: ConsumerHeartbeat,
        topics: &dyn TopicView,
        out: &mut Output,
    ) -> Result<ConsumerHeartbeatResponse, Reject> {
        req.validate(&self.config)?;
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.consumer_leave(now, &req, out);
        }
        let interval = self.group_int(
            &req.group_id,
            odradek_common::group_configs::CONSUMER_HEARTBEAT_INTERVAL_MS,
            self.config.consumer_heartbeat_interval_ms,
        );
        let session = i64::from(self.group_int(
            &req.group_id,
            odradek_common::group_configs::CONSUMER_SESSION_TIMEOUT_MS,
            self.config.consumer_session_timeout_ms,
        ));
        let max_size = self.config.consumer_max_size;
        let default_assignor = self.config.consumer_assignors[0];
        if req.member_epoch == 0 && req.member_id.is_empty() {
            req.member_id = self.new_consumer_member_id();
        }
        let group_id = req.group_id.clone();
        let g = self.consumer_group_mut(now, &group_id, req.member_epoch == 0, topics, out)?;
        let cg = g.consumer.get_or_insert_with(ConsumerGroup::default);
        let joining = req.member_epoch == 0;
        let mut replaced = false;
        let mut member = if joining {
            let (m, r) = Self::joining_member(cg, &group_id, &req, max_size, out)?;
            replaced = r;
            m
        } else {
            let m = cg.members.get(&req.member_id).ok_or_else(|| {
                (
                    ErrorCode::UnknownMemberId,
                    format!("member {} is not in group {group_id}", req.member_id),
                )
            })?;
            check_member_epoch(m, req.member_epoch, req.owned.as_ref())?;
            m.clone()
        };

        // The member's metadata, with what this heartbeat changed.
        let before = member.metadata.clone();
        let md = &mut member.metadata;
        md.client_id = req.client_id.clone();
        md.client_host = req.client_host.clone();
        // A member that heartbeats speaks the consumer protocol from now on.
        md.classic = None;
        if req.instance_id.is_some() {
            md.instance_id = req.instance_id.clone();
        }
        if req.rack_id.is_some() {
            md.rack_id = req.rack_id.clone();
        }
        if req.rebalance_timeout_ms > 0 {
            md.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            md.subscribed_topic_names = names;
        }
        if let Some(r) = &req.subscribed_topic_regex {
            md.subscribed_topic_regex = Some(r.clone());
        }
        if req.server_assignor.is_some() {
            md.server_assignor = req.server_assignor.clone();
        }
        let bump = (joining && !replaced)
            || before.subscribed_topic_names != member.metadata.subscribed_topic_names
            || before.subscribed_topic_regex != member.metadata.subscribed_topic_regex
            || before.server_assignor != member.metadata.server_assignor;
        if joining || before != member.metadata {
            out.records.push(rec::member_metadata(
                &group_id,
                &req.member_id,
                &member.metadata,
            ));
        }
        cg.members.insert(req.member_id.clone(), member);
        cg.refresh_target(&group_id, bump, topics, default_assignor, now, out);

        // Reconcile this member towards its target. Who holds what is only worked out when a
        // partition is about to move to it.
        let owners = std::cell::OnceCell::new();
        let member = &cg.members[&req.member_id];
        let empty = Assignment::new();
        let target = cg.target.get(&req.member_id).unwrap_or(&empty);
        let mut next = next_state(
            member,
            cg.assignment_epoch,
            target,
            req.owned.as_ref(),
            |t, p| {
                let owners = owners.get_or_init(|| cg.owners());
                ConsumerGroup::held_by_other(owners, &req.member_id, t, p)
            },
        );
        let changed = next != *member;
        next.session_deadline = now + session;
        next.revocation_deadline = match next.state {
            MemberState::UnrevokedPartitions => Some(
                member
                    .revocation_deadline
                    .filter(|_| member.state == MemberState::UnrevokedPartitions)
                    .unwrap_or(now + i64::from(next.metadata.rebalance_timeout_ms)),
            ),
            _ => None,
        };
        if changed || joining {
            out.records.push(rec::current_assignment(
                &group_id,
                &req.member_id,
                &next.current_value(),
            ));
        }
        // Kafka's rule: on a join, on a full request (the client restating everything, as after
        // a new coordinator), or when the partitions changed. A smaller set is how the client
        // learns what to revoke.
        let full = req.rebalance_timeout_ms != -1
            && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
            && req.owned.is_some();
        let send_assignment = joining || full || next.assigned != member.assigned;
        let resp = ConsumerHeartbeatResponse {
            error: ErrorCode::None,
            error_message: None,
            member_id: Some(req.member_id.clone()),
            member_epoch: next.member_epoch,
            heartbeat_interval_ms: interval,
            assignment: send_assignment.then(|| next.assigned.clone()),
        };
        cg.members.insert(req.member_id.clone(), next);
        Ok(resp)
    }

    /// The group of a heartbeat: created for a joining member, refused when the id belongs to a
    /// classic group with members.
    fn consumer_group_mut(
        &mut self,
        now: i64,
        group_id: &str,
        create: bool,
        topics: &dyn TopicView,
        out: &mut Output,
    ) -> Result<&mut Group, Reject> {
        if !self.groups.contains_key(group_id) {
            if !create {
                return Err((
                    ErrorCode::GroupIdNotFound,
                    format!("Group {group_id} not found."),
                ));
            }
            self.groups.insert(group_id.to_string(), Group::new(now));
        }
        let g = self.groups.get_mut(group_id).ok_or_else(|| {
            (
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} not found."),
            )
        })?;
        let classic_in_use =
            g.consumer.is_none() && (!g.members.is_empty() || g.state != GroupState::Empty);
        if g.share.is_some() || (classic_in_use && !create) {
            return Err((
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} is not a consumer group."),
            ));
        }
        if classic_in_use {
            // A consumer-protocol member joins a classic group with members: Kafka 4's online
            // upgrade turns it into a consumer group whose classic members stay.
            super::classic::upgrade(&self.config, g, group_id, topics, now, out)?;
            return Ok(g);
        }
        if g.consumer.is_none() && !create {
            return Err((
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} not found."),
            ));
        }
        if g.consumer.is_none() && (g.generation > 0 || g.protocol_type.is_some()) {
            // An empty classic group becomes a consumer group; its offsets stay.
            out.records.push((
                encode_key(&RecordKey::Group {
                    group: group_id.to_string(),
                }),
                None,
            ));
            g.generation = 0;
            g.protocol_type = None;
            g.protocol = None;
            g.leader = None;
        }
        Ok(g)
    }

    /// The member a joining heartbeat creates, and whether it takes the place of a static
    /// member that left for now (then the group epoch stays: the new member inherits the
    /// target assignment, and the partitions come back to it without moving anyone else's).
    fn joining_member(
        cg: &mut ConsumerGroup,
        group_id: &str,
        req: &ConsumerHeartbeat,
        max_size: usize,
        out: &mut Output,
    ) -> Result<(ConsumerMember, bool), Reject> {
        let fresh = |md: MemberMetadataValue| ConsumerMember {
            metadata: MemberMetadataValue {
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                subscribed_topic_regex: md.subscribed_topic_regex.or(Some(String::new())),
                ..md
            },
            previous_member_epoch: -1,
            ..ConsumerMember::default()
        };
        if let Some(iid) = req.instance_id.as_deref() {
            if let Some(old_id) = cg.static_member(iid).map(str::to_string) {
                let old = cg.members.remove(&old_id).unwrap_or_default();
                // Kafka 4: a consumer-protocol member always takes a classic member's place
                // (classic static members do not leave when they stop: a rolling upgrade).
                if old.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH
                    && old_id != req.member_id
                    && !old.is_classic()
                {
                    cg.members.insert(old_id.clone(), old);
                    return Err((
                        ErrorCode::UnreleasedInstanceId,
                        format!("Static member {old_id} with instance id {iid} is still active."),
                    ));
                }
                remove_records(group_id, &old_id, out);
                if let Some(t) = cg.target.remove(&old_id) {
                    out.records
                        .push(rec::target_member(group_id, &req.member_id, &t));
                    cg.target.insert(req.member_id.clone(), t);
                }
                return Ok((fresh(old.metadata), true));
            }
        }
        if cg.members.remove(&req.member_id).is_none() && cg.members.len() >= max_size {
            return Err((
                ErrorCode::GroupMaxSizeReached,
                format!(
                    "The consumer group has reached its maximum capacity of {max_size} members."
                ),
            ));
        }
        // A member joining again under its id gives up what it held.
        Ok((fresh(MemberMetadataValue::default()), false))
    }

    /// A heartbeat with epoch -1 (leave) or -2 (a static member leaves for now).
    fn consumer_leave(
        &mut self,
        now: i64,
        req: &ConsumerHeartbeat,
        out: &mut Output,
    ) -> Result<ConsumerHeartbeatResponse, Reject> {
        let unknown = || {
            (
                ErrorCode::UnknownMemberId,
                format!("member {} is not in group {}", req.member_id, req.group_id),
            )
        };
        let not_found = || {
            (
                ErrorCode::GroupIdNotFound,
                format!("Group {} is not a consumer group.", req.group_id),
            )
        };
        let config = &self.config;
        let g = self.groups.get_mut(&req.group_id).ok_or_else(not_found)?;
        let cg = g.consumer.as_mut().ok_or_else(not_found)?;
        if let Some(iid) = req.instance_id.as_deref() {
            match cg.static_member(iid) {
                None => return Err(unknown()),
                Some(id) if id != req.member_id => {
                    return Err((
                        ErrorCode::FencedInstanceId,
                        format!("Instance {iid} is held by member {id}."),
                    ))
                }
                Some(_) => {}
            }
        }
        let m = cg.members.get_mut(&req.member_id).ok_or_else(unknown)?;
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // It keeps its place and assignment until its session ends.
            m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            m.pending_revocation.clear();
            m.revocation_deadline = None;
            out.records.push(rec::current_assignment(
                &req.group_id,
                &req.member_id,
                &m.current_value(),
            ));
        } else {
            super::classic::fence(
                config,
                g,
                &req.group_id,
                std::slice::from_ref(&req.member_id),
                now,
                out,
            );
        }
        Ok(ConsumerHeartbeatResponse {
            error: ErrorCode::None,
            error_message: None,
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    fn new_consumer_member_id(&mut self) -> String {
        self.next_member += 1;
        let n = self.next_member.to_be_bytes();
        let mut b = [0u8; 16];
        let seed = self.member_seed.as_bytes();
        for (i, x) in b.iter_mut().enumerate().take(8) {
            *x = seed.get(i).copied().unwrap_or(0);
        }
        b[8..].copy_from_slice(&n);
        Uuid(b).to_string()
    }

    /// Fires the deadlines of consumer groups: a member whose session ended, or that did not
    /// give back its revoked partitions within its rebalance timeout, is removed.
    pub(crate) fn consumer_tick(&mut self, now: i64, out: &mut Output) {
        for (id, g) in self.groups.iter_mut() {
            let Some(cg) = g.consumer.as_mut() else {
                continue;
            };
            let expired: Vec<String> = cg
                .members
                .iter()
                .filter(|(_, m)| {
                    m.session_deadline < now
                        || m.revocation_deadline.is_some_and(|d| d < now)
                        || m.classic_deadline.is_some_and(|d| d < now)
                })
                .map(|(m, _)| m.clone())
                .collect();
            if !expired.is_empty() {
                super::classic::fence(&self.config, g, id, &expired, now, out);
            }
        }
    }

    /// OffsetCommit's check for a consumer group: a member commits at its current epoch
    /// (STALE_MEMBER_EPOCH otherwise); a commit without an epoch (an admin tool, or a consumer
    /// that assigns partitions itself) is taken only while the group has no members.
    pub(crate) fn check_consumer_commit(
        cg: &ConsumerGroup,
        member: &str,
        epoch: i32,
    ) -> Result<(), ErrorCode> {
        if epoch < 0 && cg.members.is_empty() {
            return Ok(());
        }
        let m = cg.members.get(member).ok_or(ErrorCode::UnknownMemberId)?;
        if epoch != m.member_epoch {
            // A classic member commits at its generation, which is its member epoch.
            return Err(if m.metadata.classic.is_some() {
                ErrorCode::IllegalGeneration
            } else {
                ErrorCode::StaleMemberEpoch
            });
        }
        Ok(())
    }
}

impl Groups {
    /// OffsetFetch v9's check: `member` (id, epoch) must be a member of a consumer group at
    /// its current epoch; a fetch without a member (admins, librdkafka) is not checked, nor
    /// is one for a classic group.
    pub fn check_offset_fetch(
        &self,
        group: &str,
        member: Option<(&str, i32)>,
    ) -> Result<(), ErrorCode> {
        let Some((member, epoch)) = member else {
            return Ok(());
        };
        let Some(cg) = self.groups.get(group).and_then(|g| g.consumer.as_ref()) else {
            return Ok(());
        };
        if epoch < 0 && member.is_empty() {
            return Ok(());
        }
        let m = cg.members.get(member).ok_or(ErrorCode::UnknownMemberId)?;
        if m.member_epoch != epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }
}

/// Kafka's member epoch check: a newer epoch than the member's is fenced; an older one is
/// accepted only if it is the member's previous epoch and the client owns no more than the
/// member is assigned (the answer that bumped the epoch was lost).
fn check_member_epoch(
    m: &ConsumerMember,
    epoch: i32,
    owned: Option<&Assignment>,
) -> Result<(), Reject> {
    let fenced = || {
        Err((
            ErrorCode::FencedMemberEpoch,
            format!(
                "The member epoch {epoch} is fenced; the member's epoch is {}.",
                m.member_epoch
            ),
        ))
    };
    if epoch > m.member_epoch {
        return fenced();
    }
    if epoch < m.member_epoch {
        let subset = owned.is_some_and(|o| {
            o.iter()
                .all(|(t, ps)| ps.is_empty() || m.assigned.get(t).is_some_and(|a| ps.is_subset(a)))
        });
        if epoch != m.previous_member_epoch || !subset {
            return fenced();
        }
    }
    Ok(())
}

impl ConsumerGroup {
    /// Brings the target assignment up to date after a member joined or changed (`bump`): the
    /// subscribed topics as they are now (a topic created, deleted or grown bumps the group
    /// epoch, so the target follows), then the target when it is behind the group epoch.
    /// The topics are measured again only when the metadata or the subscriptions moved (a
    /// steady heartbeat of a large group does not walk every member's topics).
    pub(super) fn refresh_target(
        &mut self,
        group_id: &str,
        mut bump: bool,
        topics: &dyn TopicView,
        default_assignor: ServerAssignor,
        now: i64,
        out: &mut Output,
    ) {
        let version = topics.version();
        if bump
            || self.subscribed.is_none()
            || self.subscribed_version != version
            || self.group_epoch > self.assignment_epoch
        {
            self.resolve_regexes(topics);
            let subscribed = subscribed_topics(self, topics);
            // After a load the topics are not known (Kafka keeps their hash in the group's
            // record; Odradek does not): one bump, so a change while the coordinator moved is
            // not missed.
            if self.subscribed.as_ref() != Some(&subscribed) {
                bump = true;
            }
            self.subscribed = Some(subscribed);
            self.subscribed_version = version;
        }
        if bump {
            self.group_epoch += 1;
            self.state_timestamp = now;
            out.records
                .push(rec::group_metadata(group_id, self.group_epoch));
        }
        if self.group_epoch > self.assignment_epoch {
            compute_target(self, group_id, default_assignor, out);
        }
    }
}

/// The topics the group's members subscribe to (by name or regular expression) that exist,
/// with their ids and sizes.
fn subscribed_topics(cg: &ConsumerGroup, topics: &dyn TopicView) -> BTreeMap<String, (Uuid, i32)> {
    let mut out = BTreeMap::new();
    for m in cg.members.values() {
        for name in cg.member_topics(m) {
            if out.contains_key(name) {
                continue;
            }
            if let Some(t) = topics.topic(name) {
                out.insert(name.clone(), t);
            }
        }
    }
    out
}

/// Computes the target assignment at the group epoch, writing the members' targets that
/// changed and then the target's epoch.
fn compute_target(
    cg: &mut ConsumerGroup,
    group_id: &str,
    default: ServerAssignor,
    out: &mut Output,
) {
    let subscribed = cg.subscribed.clone().unwrap_or_default();
    let assignor = preferred_assignor(cg).unwrap_or(default);
    let empty = Assignment::new();
    let members: Vec<AssignorMember<'_>> = cg
        .members
        .iter()
        .map(|(id, m)| AssignorMember {
            id,
            topics: cg
                .member_topics(m)
                .filter_map(|n| subscribed.get(n).map(|(t, _)| *t))
                .collect(),
            current: cg.target.get(id).unwrap_or(&empty),
        })
        .collect();
    let partitions = subscribed.values().copied().collect();
    let target = assignor.assign(&members, &partitions);
    for (id, a) in &target {
        if cg.target.get(id) != Some(a) {
            out.records.push(rec::target_member(group_id, id, a));
        }
    }
    cg.target = target;
    cg.assignment_epoch = cg.group_epoch;
    out.records
        .push(rec::target_metadata(group_id, cg.assignment_epoch));
}

/// The assignor most members ask for (ties to the name first in order), if any asks.
pub(super) fn preferred_assignor(cg: &ConsumerGroup) -> Option<ServerAssignor> {
    let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
    for m in cg.members.values() {
        if let Some(a) = m.metadata.server_assignor.as_deref() {
            *votes.entry(a).or_default() += 1;
        }
    }
    let best = votes.iter().max_by_key(|(_, n)| **n)?;
    ServerAssignor::from_name(best.0)
}

/// Tombstones a member's records: its current assignment, target and metadata (in that order,
/// as Kafka writes them).
pub(super) fn remove_records(group_id: &str, member: &str, out: &mut Output) {
    out.records
        .push((rec::current_assignment_key(group_id, member), None));
    out.records
        .push((rec::target_member_key(group_id, member), None));
    out.records
        .push((rec::member_metadata_key(group_id, member), None));
}
