//! KIP-932 share groups' membership, the third sibling beside the classic and consumer
//! protocols: members heartbeat with ShareGroupHeartbeat and get partitions from the broker's
//! `simple` assignor. There is no revocation: partitions may be shared by several members (a
//! share-partition hands each record to one member at a time), so a member moves straight to
//! its target. Kafka's group states are Empty and Stable.

mod assignor;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use bytes::Bytes;
use odradek_common::{ErrorCode, Uuid};

use super::consumer::{Assignment, TopicView};
use super::{Group, GroupState, Groups, Output};
use crate::records::share_group::{self as rec, ShareKey, ShareMemberValue, ShareValue};

/// A ShareGroupHeartbeat request (v1). `None` fields are unchanged.
#[derive(Debug, Clone, Default)]
pub struct ShareHeartbeat {
    /// Group id.
    pub group_id: String,
    /// Member id, chosen by the client.
    pub member_id: String,
    /// 0 to join, -1 to leave, else the member's epoch.
    pub member_epoch: i32,
    /// Rack.
    pub rack_id: Option<String>,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Client id (from the request header).
    pub client_id: String,
    /// Client host.
    pub client_host: String,
}

/// A ShareGroupHeartbeat answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeartbeatResponse {
    /// Error.
    pub error: ErrorCode,
    /// Why.
    pub error_message: Option<String>,
    /// The member's id.
    pub member_id: Option<String>,
    /// Its epoch.
    pub member_epoch: i32,
    /// How often to heartbeat (ms).
    pub heartbeat_interval_ms: i32,
    /// Its partitions, on a join, a subscription, or a change.
    pub assignment: Option<Assignment>,
}

impl ShareHeartbeatResponse {
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

/// A member of a share group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareMember {
    /// Member epoch.
    pub member_epoch: i32,
    /// Epoch before.
    pub previous_member_epoch: i32,
    /// Who it is and what it subscribes to.
    pub metadata: ShareMemberValue,
    /// Its partitions.
    pub assigned: Assignment,
    session_deadline: i64,
}

/// The share-group half of a group id.
#[derive(Debug, Clone, Default)]
pub struct ShareGroup {
    /// Group epoch.
    pub group_epoch: i32,
    /// The group epoch the target was computed at.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ShareMember>,
    /// Target assignment by member.
    pub target: BTreeMap<String, Assignment>,
    subscribed: Option<BTreeMap<String, (Uuid, i32)>>,
    subscribed_version: i64,
}

impl ShareGroup {
    /// "Empty" or "Stable", as Kafka names a share group's state.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }
}

type Reject = (ErrorCode, String);

impl ShareHeartbeat {
    /// Kafka's checks of the request (INVALID_REQUEST with Kafka's messages).
    pub fn validate(&self) -> Result<(), Reject> {
        let invalid = |m: &str| Err((ErrorCode::InvalidRequest, m.to_string()));
        if self.member_id.trim().is_empty() {
            return invalid("MemberId can't be empty.");
        }
        if self.member_id.len() > 36 {
            return invalid("MemberId can't be longer than 36 characters.");
        }
        if self.group_id.trim().is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if self.group_id.len() > i16::MAX as usize {
            return invalid("GroupId must be at most 32767 bytes.");
        }
        if self.rack_id.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return invalid("RackId can't be empty.");
        }
        if self.member_epoch == 0
            && self
                .subscribed_topic_names
                .as_ref()
                .is_none_or(|s| s.is_empty())
        {
            return invalid("SubscribedTopicNames cannot be null or empty when MemberEpoch is 0.");
        }
        if self.member_epoch < -1 {
            return invalid("MemberEpoch is invalid.");
        }
        Ok(())
    }
}

impl Groups {
    /// ShareGroupHeartbeat: the answer, and the records to append before sending it.
    pub fn share_heartbeat(
        &mut self,
        now: i64,
        req: ShareHeartbeat,
        topics: &dyn TopicView,
    ) -> (ShareHeartbeatResponse, Output) {
        let mut out = Output::default();
        match self.share_heartbeat_inner(now, req, topics, &mut out) {
            Ok(r) => (r, out),
            Err((e, m)) => (ShareHeartbeatResponse::error(e, m), Output::default()),
        }
    }

    fn share_heartbeat_inner(
        &mut self,
        now: i64,
        req: ShareHeartbeat,
        topics: &dyn TopicView,
        out: &mut Output,
    ) -> Result<ShareHeartbeatResponse, Reject> {
        req.validate()?;
        let session = i64::from(self.group_int(
            &req.group_id,
            odradek_common::group_configs::SHARE_SESSION_TIMEOUT_MS,
            self.config.share_session_timeout_ms,
        ));
        let interval = self.group_int(
            &req.group_id,
            odradek_common::group_configs::SHARE_HEARTBEAT_INTERVAL_MS,
            self.config.share_heartbeat_interval_ms,
        );
        let max_size = self.config.share_max_size;
        let group_id = req.group_id.clone();
        let not_found = |why: &str| {
            (
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} {why}."),
            )
        };
        if !self.groups.contains_key(&group_id) {
            if req.member_epoch != 0 {
                return Err(not_found("not found"));
            }
            self.groups.insert(group_id.clone(), Group::new(now));
        }
        let g = self
            .groups
            .get_mut(&group_id)
            .ok_or_else(|| not_found("not found"))?;
        let other_kind = g.consumer.is_some()
            || !g.members.is_empty()
            || g.state != GroupState::Empty
            || g.protocol_type.is_some()
            || !g.offsets.is_empty();
        if g.share.is_none() && (other_kind || req.member_epoch != 0) {
            return Err(not_found("is not a share group"));
        }
        let sg = g.share.get_or_insert_with(ShareGroup::default);
        let unknown = || {
            (
                ErrorCode::UnknownMemberId,
                format!("Member {} is not in group {group_id}.", req.member_id),
            )
        };
        if req.member_epoch == -1 {
            if sg.members.remove(&req.member_id).is_none() {
                return Err(unknown());
            }
            remove_member(sg, &group_id, &req.member_id, out);
            return Ok(ShareHeartbeatResponse {
                error: ErrorCode::None,
                error_message: None,
                member_id: Some(req.member_id),
                member_epoch: -1,
                heartbeat_interval_ms: interval,
                assignment: None,
            });
        }
        let joining = req.member_epoch == 0;
        let mut member = match sg.members.get(&req.member_id) {
            Some(m) => {
                let current = req.member_epoch == m.member_epoch
                    || req.member_epoch == m.previous_member_epoch
                    || joining;
                if !current {
                    return Err((
                        ErrorCode::FencedMemberEpoch,
                        format!(
                            "The member epoch {} is fenced; the member's epoch is {}.",
                            req.member_epoch, m.member_epoch
                        ),
                    ));
                }
                m.clone()
            }
            None if joining => {
                if sg.members.len() >= max_size {
                    return Err((
                        ErrorCode::GroupMaxSizeReached,
                        format!("The share group has reached its maximum capacity of {max_size} members."),
                    ));
                }
                ShareMember {
                    previous_member_epoch: -1,
                    ..ShareMember::default()
                }
            }
            None => return Err(unknown()),
        };
        let before = member.metadata.clone();
        member.metadata.client_id = req.client_id.clone();
        member.metadata.client_host = req.client_host.clone();
        if req.rack_id.is_some() {
            member.metadata.rack_id = req.rack_id.clone();
        }
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.metadata.subscribed_topic_names = names;
        }
        let new_member = !sg.members.contains_key(&req.member_id);
        let mut bump =
            new_member || before.subscribed_topic_names != member.metadata.subscribed_topic_names;
        if new_member || before != member.metadata {
            out.records
                .push(rec::member(&group_id, &req.member_id, &member.metadata));
        }
        sg.members.insert(req.member_id.clone(), member);
        // Measured again only when the metadata or the subscriptions moved.
        let version = topics.version();
        if bump
            || sg.subscribed.is_none()
            || sg.subscribed_version != version
            || sg.group_epoch > sg.assignment_epoch
        {
            let subscribed = subscribed_topics(sg, topics);
            // After a load the topics are not known: one bump, so a change meanwhile is seen.
            if sg.subscribed.as_ref() != Some(&subscribed) {
                bump = true;
            }
            sg.subscribed = Some(subscribed);
            sg.subscribed_version = version;
        }
        if bump {
            sg.group_epoch += 1;
            out.records
                .push(rec::group_metadata(&group_id, sg.group_epoch));
        }
        if sg.group_epoch > sg.assignment_epoch {
            compute_target(sg, &group_id, out);
        }
        let m = sg.members.get_mut(&req.member_id).ok_or_else(unknown)?;
        let target = sg.target.get(&req.member_id).cloned().unwrap_or_default();
        let changed = m.member_epoch != sg.assignment_epoch || m.assigned != target;
        if changed {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = sg.assignment_epoch;
            m.assigned = target;
            out.records.push(rec::current(
                &group_id,
                &req.member_id,
                m.member_epoch,
                m.previous_member_epoch,
                &m.assigned,
            ));
        }
        m.session_deadline = now + session;
        let send = joining || req.subscribed_topic_names.is_some() || changed;
        Ok(ShareHeartbeatResponse {
            error: ErrorCode::None,
            error_message: None,
            member_id: Some(req.member_id),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: interval,
            assignment: send.then(|| m.assigned.clone()),
        })
    }

    /// Share group members whose session ended are removed.
    pub(crate) fn share_tick(&mut self, now: i64, out: &mut Output) {
        for (id, g) in self.groups.iter_mut() {
            let Some(sg) = g.share.as_mut() else {
                continue;
            };
            let expired: Vec<String> = sg
                .members
                .iter()
                .filter(|(_, m)| m.session_deadline < now)
                .map(|(m, _)| m.clone())
                .collect();
            for m in expired {
                sg.members.remove(&m);
                remove_member(sg, id, &m, out);
            }
        }
    }

    /// ShareGroupDescribe of one group: GROUP_ID_NOT_FOUND for an unknown id or another kind.
    pub fn describe_share(&self, group: &str) -> Result<ShareGroup, Reject> {
        let g = self.groups.get(group).ok_or_else(|| {
            (
                ErrorCode::GroupIdNotFound,
                format!("Group {group} not found."),
            )
        })?;
        g.share.clone().ok_or_else(|| {
            (
                ErrorCode::GroupIdNotFound,
                format!("Group {group} is not a share group."),
            )
        })
    }

    /// Applies one share group record while loading the partition.
    pub(crate) fn replay_share(
        &mut self,
        now: i64,
        group: String,
        key: ShareKey,
        value: Option<Bytes>,
    ) {
        let session = i64::from(self.group_int(
            &group,
            odradek_common::group_configs::SHARE_SESSION_TIMEOUT_MS,
            self.config.share_session_timeout_ms,
        ));
        let value = match value.map(|v| rec::decode_value(&key, v)) {
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return,
            None => None,
        };
        if value.is_none() && key == ShareKey::Metadata {
            if let Some(g) = self.groups.get_mut(&group) {
                g.share = None;
                if g.offsets.is_empty() && g.members.is_empty() && g.consumer.is_none() {
                    self.groups.remove(&group);
                }
            }
            return;
        }
        let g = self.groups.entry(group).or_insert_with(|| Group::new(now));
        let sg = g.share.get_or_insert_with(ShareGroup::default);
        match (key, value) {
            (ShareKey::Metadata, Some(ShareValue::Epoch(e))) => sg.group_epoch = e,
            (ShareKey::TargetMetadata, Some(ShareValue::Epoch(e))) => sg.assignment_epoch = e,
            (ShareKey::Member(m), Some(ShareValue::Member(v))) => {
                let member = sg.members.entry(m).or_default();
                member.metadata = v;
                member.session_deadline = now + session;
            }
            (ShareKey::Member(m), None) => {
                sg.members.remove(&m);
            }
            (ShareKey::TargetMember(m), Some(ShareValue::Target(a))) => {
                sg.target.insert(m, a);
            }
            (ShareKey::TargetMember(m), None) => {
                sg.target.remove(&m);
            }
            (ShareKey::CurrentAssignment(m), Some(ShareValue::Current(e, p, a))) => {
                let member = sg.members.entry(m).or_default();
                member.member_epoch = e;
                member.previous_member_epoch = p;
                member.assigned = a;
                member.session_deadline = now + session;
            }
            _ => {}
        }
    }
}

fn subscribed_topics(sg: &ShareGroup, topics: &dyn TopicView) -> BTreeMap<String, (Uuid, i32)> {
    let mut out = BTreeMap::new();
    for m in sg.members.values() {
        for name in &m.metadata.subscribed_topic_names {
            if !out.contains_key(name) {
                if let Some(t) = topics.topic(name) {
                    out.insert(name.clone(), t);
                }
            }
        }
    }
    out
}

fn compute_target(sg: &mut ShareGroup, group_id: &str, out: &mut Output) {
    let subscribed = sg.subscribed.clone().unwrap_or_default();
    let members: Vec<(String, Vec<Uuid>)> = sg
        .members
        .iter()
        .map(|(id, m)| {
            let topics = m
                .metadata
                .subscribed_topic_names
                .iter()
                .filter_map(|n| subscribed.get(n).map(|(t, _)| *t))
                .collect();
            (id.clone(), topics)
        })
        .collect();
    let partitions: BTreeMap<Uuid, i32> = subscribed.values().copied().collect();
    let target = assignor::simple(&members, &partitions, &sg.target);
    for (id, a) in &target {
        if sg.target.get(id) != Some(a) {
            out.records.push(rec::target_member(group_id, id, a));
        }
    }
    sg.target = target;
    sg.assignment_epoch = sg.group_epoch;
    out.records
        .push(rec::target_metadata(group_id, sg.assignment_epoch));
}

/// A member left or was expired: its records are tombstoned (current assignment, target,
/// metadata) and the group epoch moves.
fn remove_member(sg: &mut ShareGroup, group_id: &str, member: &str, out: &mut Output) {
    sg.target.remove(member);
    out.records.push((rec::current_key(group_id, member), None));
    out.records
        .push((rec::target_member_key(group_id, member), None));
    out.records.push((rec::member_key(group_id, member), None));
    sg.group_epoch += 1;
    out.records
        .push(rec::group_metadata(group_id, sg.group_epoch));
}
