//! KIP-848 consumer groups, the sibling of the classic protocol: members heartbeat with
//! ConsumerGroupHeartbeat, the coordinator computes the target assignment with a broker-side
//! assignor and reconciles each member towards it incrementally (revoke before assign), with a
//! group epoch, a target assignment epoch and an epoch per member.
//!
//! A group id is either classic or a consumer group; its committed offsets live beside either
//! (in [`super::Group`]). The group's state is kept in `__consumer_offsets` as Kafka keeps it:
//! the consumer group metadata (group epoch), one member metadata record per member, the target
//! assignment (its epoch, one record per member) and each member's current assignment.

mod assignor;
mod classic;
#[cfg(test)]
mod classic_tests;
mod embedded;
mod heartbeat;
mod reconcile;
mod regex;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use odradek_common::Uuid;

pub(crate) use assignor::AssignorMember;
pub use assignor::{Assignment, ServerAssignor};
pub use classic::MigrationPolicy;
pub use heartbeat::{ConsumerHeartbeat, ConsumerHeartbeatResponse, TopicView};

use bytes::Bytes;

use crate::groups::{Group, Groups};
use crate::records::consumer::{
    decode_value, ConsumerKey, ConsumerValue, CurrentAssignmentValue, MemberMetadataValue,
};

/// `member_epoch` of a heartbeat that leaves the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// `member_epoch` of a static member's heartbeat that leaves for now, keeping its place.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Where a member is in its reconciliation, with Kafka's names and record values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    /// Has its target assignment, at the target epoch.
    #[default]
    Stable,
    /// Must give back partitions its target no longer holds.
    UnrevokedPartitions,
    /// Waits for partitions other members have not given back yet.
    UnreleasedPartitions,
    /// Not known (a record of a newer version).
    Unknown,
}

impl MemberState {
    /// The value in the current assignment record.
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// The state of a record value.
    pub fn from_value(v: i8) -> Self {
        match v {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }

    /// Kafka's name, as ConsumerGroupDescribe and tools show it.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
            MemberState::Unknown => "UNKNOWN",
        }
    }
}

/// A consumer group's state, as ListGroups and ConsumerGroupDescribe name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// The target assignment is behind the group epoch.
    Assigning,
    /// Some member is not at the target assignment yet.
    Reconciling,
    /// Every member holds its target assignment.
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerMember {
    /// Its epoch: the target epoch it last reached.
    pub member_epoch: i32,
    /// The epoch before (a heartbeat at it is still accepted if the answer bumping it was
    /// lost).
    pub previous_member_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// What it subscribes to, and who it is.
    pub metadata: MemberMetadataValue,
    /// Partitions it holds.
    pub assigned: Assignment,
    /// Partitions it must give back.
    pub pending_revocation: Assignment,
    /// When its session expires (not persisted; restarts on load).
    pub(crate) session_deadline: i64,
    /// When it must have given back `pending_revocation` (UNREVOKED_PARTITIONS only).
    pub(crate) revocation_deadline: Option<i64>,
    /// A classic member's join or sync deadline: its rebalance timeout to come back with a
    /// JoinGroup after being told to rejoin, or with a SyncGroup after joining.
    pub(crate) classic_deadline: Option<i64>,
}

impl ConsumerMember {
    /// Whether it speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat).
    pub fn is_classic(&self) -> bool {
        self.metadata.classic.is_some()
    }

    /// Its session timeout (ms): a classic member's own, else the group's `default`.
    fn session_ms(&self, default: i64) -> i64 {
        self.metadata
            .classic
            .as_ref()
            .map_or(default, |c| i64::from(c.session_timeout_ms))
    }

    fn current_value(&self) -> CurrentAssignmentValue {
        CurrentAssignmentValue {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.value(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }
}

/// The consumer-protocol half of a group id.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    /// Bumped on every change of membership, subscriptions or subscribed topics' metadata.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member id.
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics (name -> id and partition count) the group epoch reflects;
    /// `None` after a load, until the first heartbeat measures it (without a bump).
    subscribed: Option<BTreeMap<String, (Uuid, i32)>>,
    /// The metadata version `subscribed` was measured at.
    subscribed_version: i64,
    /// When the group last changed state (ms), for offsets retention of an empty group.
    pub(crate) state_timestamp: i64,
    /// The members' regular expressions with the topics each matched (not persisted: resolved
    /// again after a load).
    resolved: BTreeMap<String, regex::Resolved>,
}

impl ConsumerGroup {
    /// The group's state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The member holding static instance `iid`.
    pub fn static_member(&self, iid: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(_, m)| m.metadata.instance_id.as_deref() == Some(iid))
            .map(|(id, _)| id.as_str())
    }

    /// Whether a member other than `except` holds `t`-`p` (assigned or pending revocation).
    fn held_by_other(
        owners: &HashMap<(Uuid, i32), String>,
        except: &str,
        t: &Uuid,
        p: i32,
    ) -> bool {
        owners.get(&(*t, p)).is_some_and(|m| m != except)
    }

    /// Who holds each partition now.
    fn owners(&self) -> HashMap<(Uuid, i32), String> {
        let mut owners = HashMap::new();
        for (id, m) in &self.members {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in a {
                    for &p in ps {
                        owners.insert((*t, p), id.clone());
                    }
                }
            }
        }
        owners
    }
}

/// A consumer group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    /// State name.
    pub state: &'static str,
    /// The assignor the target assignment is computed with.
    pub assignor: &'static str,
    /// The group.
    pub group: ConsumerGroup,
}

impl Groups {
    /// ConsumerGroupDescribe of one group: GROUP_ID_NOT_FOUND (with why) for an unknown id or
    /// a classic group.
    pub fn describe_consumer(
        &self,
        group: &str,
    ) -> Result<ConsumerGroupDescription, (odradek_common::ErrorCode, String)> {
        let not_found = |why: &str| {
            (
                odradek_common::ErrorCode::GroupIdNotFound,
                format!("Group {group} {why}."),
            )
        };
        let g = self
            .groups
            .get(group)
            .ok_or_else(|| not_found("not found"))?;
        let cg = g
            .consumer
            .as_ref()
            .ok_or_else(|| not_found("is not a consumer group"))?;
        Ok(ConsumerGroupDescription {
            state: cg.state().name(),
            assignor: heartbeat::preferred_assignor(cg)
                .unwrap_or(self.config.consumer_assignors[0])
                .name(),
            group: cg.clone(),
        })
    }

    /// Applies one consumer group record while loading the partition.
    pub(crate) fn replay_consumer(
        &mut self,
        now: i64,
        group: String,
        key: ConsumerKey,
        value: Option<Bytes>,
    ) {
        let session = i64::from(self.group_int(
            &group,
            odradek_common::group_configs::CONSUMER_SESSION_TIMEOUT_MS,
            self.config.consumer_session_timeout_ms,
        ));
        let value = match value.map(|v| decode_value(&key, v)) {
            Some(Ok(v)) => Some(v),
            // A value we cannot read is skipped, as an unknown record is.
            Some(Err(_)) => return,
            None => None,
        };
        if value.is_none() && key == ConsumerKey::Metadata {
            // The group's tombstone: its consumer half is gone.
            if let Some(g) = self.groups.get_mut(&group) {
                g.consumer = None;
                if g.offsets.is_empty() && g.members.is_empty() {
                    self.groups.remove(&group);
                }
            }
            return;
        }
        let g = self.groups.entry(group).or_insert_with(|| Group::new(now));
        let cg = g.consumer.get_or_insert_with(ConsumerGroup::default);
        cg.state_timestamp = now;
        match (key, value) {
            (ConsumerKey::Metadata, Some(ConsumerValue::Epoch(e))) => cg.group_epoch = e,
            (ConsumerKey::TargetMetadata, Some(ConsumerValue::Epoch(e))) => cg.assignment_epoch = e,
            (ConsumerKey::Member(m), Some(ConsumerValue::Member(v))) => {
                let member = cg.members.entry(m).or_default();
                member.metadata = v;
                member.session_deadline = now + member.session_ms(session);
            }
            (ConsumerKey::Member(m), None) => {
                cg.members.remove(&m);
            }
            (ConsumerKey::TargetMember(m), Some(ConsumerValue::Target(a))) => {
                cg.target.insert(m, a);
            }
            (ConsumerKey::TargetMember(m), None) => {
                cg.target.remove(&m);
            }
            (ConsumerKey::CurrentAssignment(m), Some(ConsumerValue::Current(c))) => {
                let member = cg.members.entry(m).or_default();
                member.member_epoch = c.member_epoch;
                member.previous_member_epoch = c.previous_member_epoch;
                member.state = MemberState::from_value(c.state);
                member.assigned = c.assigned;
                member.pending_revocation = c.pending_revocation;
                member.session_deadline = now + member.session_ms(session);
                member.revocation_deadline = (member.state == MemberState::UnrevokedPartitions)
                    .then(|| now + i64::from(member.metadata.rebalance_timeout_ms));
            }
            _ => {}
        }
    }
}

/// The tombstones that delete an empty consumer group's records: the target assignment's epoch,
/// then the group epoch (the last one read on load removes the group).
pub(crate) fn group_tombstones(group: &str) -> [(Bytes, Option<Bytes>); 2] {
    let key = |key| {
        crate::records::encode_key(&crate::records::RecordKey::Consumer {
            group: group.to_string(),
            key,
        })
    };
    [
        (key(ConsumerKey::TargetMetadata), None),
        (key(ConsumerKey::Metadata), None),
    ]
}
