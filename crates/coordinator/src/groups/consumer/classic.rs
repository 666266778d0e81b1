//! Classic members inside a consumer group: Kafka 4's online upgrade and downgrade.
//!
//! - **Upgrade.** A consumer-protocol member joining a classic group with members turns it into
//!   a consumer group. Each classic member keeps its assignment, at member epoch = the classic
//!   generation, and stays a classic member.
//! - **Classic members.** They speak JoinGroup / SyncGroup / Heartbeat / LeaveGroup to the
//!   consumer group. The broker-side assignor assigns them, and they reconcile incrementally
//!   like the others:
//!   - a JoinGroup is answered at once, its generation being the member's epoch;
//!   - SyncGroup hands out what the member holds;
//!   - Heartbeat says REBALANCE_IN_PROGRESS when the member must come back with a JoinGroup
//!     to move on.
//! - **Downgrade.** When the last consumer-protocol member leaves and classic members remain,
//!   the group becomes a classic group again (generation = group epoch) and rebalances.
//!
//! `group.consumer.migration.policy` says which conversions of groups with members are
//! allowed. Empty groups change kind freely.

use std::collections::BTreeMap;

use bytes::Bytes;
use odradek_common::ErrorCode;

use super::embedded::{
    decode_assignment, decode_subscription, encode_assignment, version_of, NamedPartitions,
};
use super::heartbeat::remove_records;
use super::reconcile::next_state;
use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState, TopicView};
use crate::groups::{
    Group, GroupConfig, GroupState, Groups, JoinRequest, JoinResponse, Member, Output, Reply,
    SyncRequest, SyncResponse, Token,
};
use crate::records::consumer::{self as rec, ClassicMemberMetadata, MemberMetadataValue};
use crate::records::{encode_group, encode_key, RecordKey};

/// `group.consumer.migration.policy`: which groups with members may change protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    /// Both ways (Kafka 4's default).
    #[default]
    Bidirectional,
    /// Classic groups may become consumer groups.
    Upgrade,
    /// Consumer groups may become classic groups.
    Downgrade,
    /// Neither.
    Disabled,
}

impl MigrationPolicy {
    /// The policy named `name` (case-insensitive), as Kafka spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "bidirectional" => Some(Self::Bidirectional),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    fn upgrades(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Upgrade)
    }

    fn downgrades(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Downgrade)
    }
}

type Reject = (ErrorCode, String);

/// The partitions of `named` by topic id; topics that do not exist are left out.
fn by_id(named: &NamedPartitions, topics: &dyn TopicView) -> Assignment {
    let mut a = Assignment::new();
    for (name, ps) in named {
        if let Some((id, count)) = topics.topic(name) {
            let ps = ps.iter().copied().filter(|p| (0..count).contains(p));
            a.entry(id).or_default().extend(ps);
        }
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

/// The partitions of `a` by topic name; `name` finds a topic's name.
fn by_name(
    a: &Assignment,
    name: impl Fn(&odradek_common::Uuid) -> Option<String>,
) -> NamedPartitions {
    a.iter()
        .filter_map(|(t, ps)| Some((name(t)?, ps.iter().copied().collect())))
        .collect()
}

/// Turns the non-empty classic group `g` into a consumer group, its members kept as classic
/// members with what they hold. Refused with GROUP_ID_NOT_FOUND, as Kafka refuses it, when the
/// policy forbids it, the group is not a consumer group or is too large, or a member's
/// subscription or assignment cannot be read (or carries a client-side assignor's user data).
pub(super) fn upgrade(
    config: &GroupConfig,
    g: &mut Group,
    group_id: &str,
    topics: &dyn TopicView,
    now: i64,
    out: &mut Output,
) -> Result<(), Reject> {
    let cannot = |why: String| {
        (
            ErrorCode::GroupIdNotFound,
            format!("Cannot upgrade classic group {group_id} to consumer group because {why}."),
        )
    };
    if !config.consumer_migration_policy.upgrades() {
        return Err(cannot("online upgrade is disabled".into()));
    }
    if g.protocol_type.as_deref() != Some("consumer") {
        return Err(cannot(
            "the group does not use the consumer embedded protocol".into(),
        ));
    }
    if g.members.len() > config.consumer_max_size {
        return Err(cannot(format!(
            "its {} members exceed group.consumer.max.size ({})",
            g.members.len(),
            config.consumer_max_size
        )));
    }
    // Members waiting in JoinGroup or SyncGroup come back to the consumer group.
    for (id, m) in g.members.iter_mut() {
        if let Some(t) = m.join.take() {
            out.replies.push(Reply::Join(
                t,
                JoinResponse::error(ErrorCode::RebalanceInProgress, id),
            ));
        }
        if let Some(t) = m.sync.take() {
            out.replies.push(Reply::Sync(
                t,
                SyncResponse::error(ErrorCode::RebalanceInProgress),
            ));
        }
    }
    let protocol = g
        .protocol
        .clone()
        .ok_or_else(|| cannot("its first rebalance has not completed".into()))?;
    let malformed = || cannot("the embedded consumer protocol is malformed".into());
    let generation = g.generation;
    let mut cg = ConsumerGroup {
        group_epoch: generation,
        assignment_epoch: generation,
        state_timestamp: now,
        ..ConsumerGroup::default()
    };
    for (id, m) in &g.members {
        let sub = decode_subscription(m.metadata(&protocol)).map_err(|_| malformed())?;
        let held = decode_assignment(m.assignment.clone()).map_err(|_| malformed())?;
        if !held.user_data.is_empty() {
            return Err(cannot("an unsupported custom assignor is in use".into()));
        }
        let assigned = by_id(&held.partitions, topics);
        let mut names = sub.topics;
        names.sort();
        names.dedup();
        let member = ConsumerMember {
            member_epoch: generation,
            previous_member_epoch: generation,
            state: MemberState::Stable,
            metadata: MemberMetadataValue {
                instance_id: m.group_instance_id.clone(),
                rack_id: sub.rack,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: names,
                subscribed_topic_regex: None,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                server_assignor: None,
                classic: Some(ClassicMemberMetadata {
                    session_timeout_ms: m.session_timeout_ms,
                    protocols: m.protocols.clone(),
                }),
            },
            assigned: assigned.clone(),
            pending_revocation: Assignment::new(),
            session_deadline: now + i64::from(m.session_timeout_ms),
            revocation_deadline: None,
            classic_deadline: None,
        };
        cg.target.insert(id.clone(), assigned);
        cg.members.insert(id.clone(), member);
    }
    // Kafka's order: the classic group's tombstone, the members, the group epoch, the target
    // assignment and its epoch, the members' current assignments.
    out.records.push((
        encode_key(&RecordKey::Group {
            group: group_id.to_string(),
        }),
        None,
    ));
    for (id, m) in &cg.members {
        out.records
            .push(rec::member_metadata(group_id, id, &m.metadata));
    }
    out.records.push(rec::group_metadata(group_id, generation));
    for (id, a) in &cg.target {
        out.records.push(rec::target_member(group_id, id, a));
    }
    out.records.push(rec::target_metadata(group_id, generation));
    for (id, m) in &cg.members {
        out.records
            .push(rec::current_assignment(group_id, id, &m.current_value()));
    }
    g.members.clear();
    g.pending.clear();
    g.generation = 0;
    g.protocol_type = None;
    g.protocol = None;
    g.leader = None;
    g.set_state(GroupState::Empty, now);
    g.consumer = Some(cg);
    Ok(())
}

/// Removes `fenced` from `g`'s consumer group (a leave, a session or rebalance timeout), with
/// one group epoch bump. When only classic members would remain and the policy allows it, the
/// group becomes a classic group instead and rebalances.
pub(super) fn fence(
    config: &GroupConfig,
    g: &mut Group,
    group_id: &str,
    fenced: &[String],
    now: i64,
    out: &mut Output,
) {
    let Some(cg) = g.consumer.as_mut() else {
        return;
    };
    let remaining: Vec<&ConsumerMember> = cg
        .members
        .iter()
        .filter(|(id, _)| !fenced.contains(id))
        .map(|(_, m)| m)
        .collect();
    if !remaining.is_empty()
        && remaining.len() <= config.max_size
        && remaining.iter().all(|m| m.is_classic())
        && config.consumer_migration_policy.downgrades()
    {
        downgrade(config, g, group_id, fenced, now, out);
        return;
    }
    let mut removed = false;
    for id in fenced {
        if cg.members.remove(id).is_some() {
            cg.target.remove(id);
            remove_records(group_id, id, out);
            removed = true;
        }
    }
    if removed {
        cg.group_epoch += 1;
        cg.state_timestamp = now;
        out.records
            .push(rec::group_metadata(group_id, cg.group_epoch));
    }
}

/// The consumer group of `g` becomes a classic group of its classic members other than
/// `fenced`: generation = the group epoch, each member's assignment its target (as far as the
/// coordinator knows the topics' names), then a rebalance.
fn downgrade(
    config: &GroupConfig,
    g: &mut Group,
    group_id: &str,
    fenced: &[String],
    now: i64,
    out: &mut Output,
) {
    let Some(cg) = g.consumer.take() else {
        return;
    };
    // Every record of the consumer group goes, in Kafka's order.
    for id in cg.members.keys() {
        out.records
            .push((rec::current_assignment_key(group_id, id), None));
    }
    for id in cg.members.keys() {
        out.records
            .push((rec::target_member_key(group_id, id), None));
    }
    let [target_epoch, group_epoch] = super::group_tombstones(group_id);
    out.records.push(target_epoch);
    for id in cg.members.keys() {
        out.records
            .push((rec::member_metadata_key(group_id, id), None));
    }
    out.records.push(group_epoch);

    let names: BTreeMap<_, _> = cg
        .subscribed
        .iter()
        .flatten()
        .map(|(name, (id, _))| (*id, name.clone()))
        .collect();
    let empty = Assignment::new();
    let mut targets = BTreeMap::new();
    g.members.clear();
    for (id, m) in &cg.members {
        let Some(classic) = m.metadata.classic.as_ref().filter(|_| !fenced.contains(id)) else {
            continue;
        };
        let target = cg.target.get(id).unwrap_or(&empty);
        targets.insert(id.clone(), by_name(target, |t| names.get(t).cloned()));
        g.members.insert(
            id.clone(),
            Member {
                group_instance_id: m.metadata.instance_id.clone(),
                client_id: m.metadata.client_id.clone(),
                client_host: m.metadata.client_host.clone(),
                session_timeout_ms: classic.session_timeout_ms,
                rebalance_timeout_ms: m.metadata.rebalance_timeout_ms,
                protocols: classic.protocols.clone(),
                assignment: Bytes::new(),
                join: None,
                sync: None,
                heartbeat_deadline: now + i64::from(classic.session_timeout_ms),
            },
        );
    }
    g.generation = cg.group_epoch;
    g.protocol_type = Some("consumer".into());
    g.protocol = g.select_protocol();
    g.leader = g.members.keys().next().cloned();
    let protocol = g.protocol.clone().unwrap_or_default();
    for (id, m) in g.members.iter_mut() {
        let version = version_of(&m.metadata(&protocol));
        m.assignment = encode_assignment(version, &targets[id]);
    }
    g.set_state(GroupState::Stable, now);
    out.records.push((
        encode_key(&RecordKey::Group {
            group: group_id.to_string(),
        }),
        Some(encode_group(&g.value(now))),
    ));
    Groups::prepare_rebalance(g, now, config.initial_rebalance_delay_ms, out);
}

/// Whether every classic member of `cg` supports one of `protocols` (any do when there is no
/// classic member yet).
fn supports_classic_protocols(cg: &ConsumerGroup, protocols: &[(String, Bytes)]) -> bool {
    let classic: Vec<&ClassicMemberMetadata> = cg
        .members
        .values()
        .filter_map(|m| m.metadata.classic.as_ref())
        .collect();
    !protocols.is_empty()
        && protocols.iter().any(|(name, _)| {
            classic
                .iter()
                .all(|c| c.protocols.iter().any(|(n, _)| n == name))
        })
}

/// A classic member's request names member `member_id` and maybe instance `instance`: the
/// member, or UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID as Kafka answers.
fn classic_member<'a>(
    cg: &'a mut ConsumerGroup,
    member_id: &str,
    instance: Option<&str>,
) -> Result<&'a mut ConsumerMember, ErrorCode> {
    if let Some(iid) = instance {
        match cg.static_member(iid) {
            None => return Err(ErrorCode::UnknownMemberId),
            Some(id) if id != member_id => return Err(ErrorCode::FencedInstanceId),
            Some(_) => {}
        }
    }
    match cg.members.get_mut(member_id) {
        Some(m) if m.is_classic() => Ok(m),
        _ => Err(ErrorCode::UnknownMemberId),
    }
}

impl Groups {
    /// Whether `group` is a consumer group with members, which classic requests then go to.
    pub(crate) fn is_live_consumer_group(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .and_then(|g| g.consumer.as_ref())
            .is_some_and(|cg| !cg.members.is_empty())
    }

    /// JoinGroup to a consumer group with members: the member (new or known) is updated from
    /// its subscription, the target assignment follows, and the member reconciles towards it
    /// with what its subscription says it owns. Answered at once, the generation being the
    /// member's epoch; it is never the leader.
    pub(crate) fn classic_join_consumer(
        &mut self,
        now: i64,
        token: Token,
        req: JoinRequest,
        topics: &dyn TopicView,
    ) -> Output {
        let mut out = Output::default();
        let member_id = if req.member_id.is_empty() {
            self.new_member_id(&req.client_id)
        } else {
            req.member_id.clone()
        };
        let reply = match self.classic_join_inner(now, &member_id, &req, topics, &mut out) {
            Ok(r) => r,
            Err(e) => {
                out.records.clear();
                // Only MEMBER_ID_REQUIRED hands out the id (Kafka's errors carry the request's).
                let id = if e == ErrorCode::MemberIdRequired {
                    &member_id
                } else {
                    &req.member_id
                };
                JoinResponse::error(e, id)
            }
        };
        out.replies.push(Reply::Join(token, reply));
        out
    }

    fn classic_join_inner(
        &mut self,
        now: i64,
        member_id: &str,
        req: &JoinRequest,
        topics: &dyn TopicView,
        out: &mut Output,
    ) -> Result<JoinResponse, ErrorCode> {
        let config = &self.config;
        let group_id = req.group_id.as_str();
        let cg = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.consumer.as_mut())
            .ok_or(ErrorCode::UnknownMemberId)?;
        if !cg.members.contains_key(member_id) && cg.members.len() >= config.consumer_max_size {
            return Err(ErrorCode::GroupMaxSizeReached);
        }
        if req.protocol_type != "consumer" || !supports_classic_protocols(cg, &req.protocols) {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        if req.group_instance_id.is_none() && req.member_id.is_empty() && req.require_known_member {
            // KIP-394: the member comes back with the id it is given.
            return Err(ErrorCode::MemberIdRequired);
        }
        let (first_name, first_metadata) = req.protocols[0].clone();
        let sub = decode_subscription(first_metadata)
            .map_err(|_| ErrorCode::InconsistentGroupProtocol)?;

        // The member: new, known, or a static member's new incarnation taking its place.
        let mut replaced = false;
        let existing = match req.group_instance_id.as_deref() {
            Some(iid) if req.member_id.is_empty() => match cg.static_member(iid) {
                Some(old) => {
                    let old = old.to_string();
                    let mut m = cg.members.remove(&old).unwrap_or_default();
                    remove_records(group_id, &old, out);
                    if let Some(t) = cg.target.remove(&old) {
                        out.records
                            .push(rec::target_member(group_id, member_id, &t));
                        cg.target.insert(member_id.to_string(), t);
                    }
                    m.member_epoch = 0;
                    m.previous_member_epoch = 0;
                    replaced = true;
                    Some(m)
                }
                None => None,
            },
            Some(iid) => match cg.static_member(iid) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(id) if id != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => cg.members.get(member_id).cloned(),
            },
            None => cg.members.get(member_id).cloned(),
        };
        let joining = existing.is_none() || replaced;
        let mut member = existing.unwrap_or_else(|| ConsumerMember {
            previous_member_epoch: -1,
            ..ConsumerMember::default()
        });
        let before = member.metadata.clone();
        let mut names = sub.topics.clone();
        names.sort();
        names.dedup();
        member.metadata = MemberMetadataValue {
            instance_id: req.group_instance_id.clone(),
            rack_id: sub.rack.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            subscribed_topic_names: names,
            subscribed_topic_regex: None,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            server_assignor: None,
            classic: Some(ClassicMemberMetadata {
                session_timeout_ms: req.session_timeout_ms,
                protocols: req.protocols.clone(),
            }),
        };
        let bump = (joining && !replaced)
            || before.subscribed_topic_names != member.metadata.subscribed_topic_names
            || before.subscribed_topic_regex != member.metadata.subscribed_topic_regex;
        if joining || before != member.metadata {
            out.records
                .push(rec::member_metadata(group_id, member_id, &member.metadata));
        }
        cg.members.insert(member_id.to_string(), member);
        cg.refresh_target(
            group_id,
            bump,
            topics,
            config.consumer_assignors[0],
            now,
            out,
        );

        // Reconcile with what the subscription says the member owns (an eager member owns
        // nothing when it rejoins).
        let owned = by_id(&sub.owned, topics);
        let owners = cg.owners();
        let member = &cg.members[member_id];
        let empty = Assignment::new();
        let target = cg.target.get(member_id).unwrap_or(&empty);
        let mut next = next_state(member, cg.assignment_epoch, target, Some(&owned), |t, p| {
            ConsumerGroup::held_by_other(&owners, member_id, t, p)
        });
        if joining || next != *member {
            out.records.push(rec::current_assignment(
                group_id,
                member_id,
                &next.current_value(),
            ));
        }
        next.session_deadline = now + i64::from(req.session_timeout_ms);
        next.revocation_deadline = None;
        // The SyncGroup must follow within the rebalance timeout.
        next.classic_deadline = Some(now + i64::from(req.rebalance_timeout_ms));
        let generation = next.member_epoch;
        cg.members.insert(member_id.to_string(), next);
        Ok(JoinResponse {
            error: ErrorCode::None,
            generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(first_name),
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        })
    }

    /// SyncGroup of a classic member of a consumer group: what it holds now (partitions being
    /// revoked left out), or REBALANCE_IN_PROGRESS when it must join again first.
    pub(crate) fn classic_sync_consumer(
        &mut self,
        now: i64,
        req: &SyncRequest,
        topics: &dyn TopicView,
    ) -> SyncResponse {
        let Some(cg) = self
            .groups
            .get_mut(&req.group_id)
            .and_then(|g| g.consumer.as_mut())
        else {
            return SyncResponse::error(ErrorCode::UnknownMemberId);
        };
        let group_epoch = cg.group_epoch;
        let m = match classic_member(cg, &req.member_id, req.group_instance_id.as_deref()) {
            Ok(m) => m,
            Err(e) => return SyncResponse::error(e),
        };
        if req.generation != m.member_epoch {
            return SyncResponse::error(ErrorCode::IllegalGeneration);
        }
        let protocols = m
            .metadata
            .classic
            .as_ref()
            .map(|c| c.protocols.clone())
            .unwrap_or_default();
        let first = protocols.first().cloned().unwrap_or_default();
        if req
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != "consumer")
            || req.protocol_name.as_ref().is_some_and(|p| *p != first.0)
        {
            return SyncResponse::error(ErrorCode::InconsistentGroupProtocol);
        }
        if group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            m.classic_deadline
                .get_or_insert(now + i64::from(m.metadata.rebalance_timeout_ms));
            return SyncResponse::error(ErrorCode::RebalanceInProgress);
        }
        m.classic_deadline = None;
        m.session_deadline = now + m.session_ms(0);
        let held = by_name(&m.assigned, |t| topics.name(t));
        SyncResponse {
            error: ErrorCode::None,
            protocol_type: req.protocol_type.clone(),
            protocol_name: req.protocol_name.clone(),
            assignment: encode_assignment(version_of(&first.1), &held),
        }
    }

    /// Heartbeat of a classic member of a consumer group: REBALANCE_IN_PROGRESS when it must
    /// come back with a JoinGroup (the group moved on, it has partitions to give back, or
    /// partitions it waits for were released).
    pub(crate) fn classic_heartbeat_consumer(
        &mut self,
        now: i64,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> ErrorCode {
        let Some(cg) = self.groups.get_mut(group).and_then(|g| g.consumer.as_mut()) else {
            return ErrorCode::UnknownMemberId;
        };
        let group_epoch = cg.group_epoch;
        let owners = cg.owners();
        let target = cg.target.get(member).cloned().unwrap_or_default();
        let m = match classic_member(cg, member, instance) {
            Ok(m) => m,
            Err(e) => return e,
        };
        if generation != m.member_epoch {
            return ErrorCode::IllegalGeneration;
        }
        m.session_deadline = now + m.session_ms(0);
        let waiting = target.iter().any(|(t, ps)| {
            ps.iter().any(|p| {
                !m.assigned.get(t).is_some_and(|a| a.contains(p))
                    && ConsumerGroup::held_by_other(&owners, member, t, *p)
            })
        });
        let rejoin = m.member_epoch < group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !waiting);
        if rejoin {
            m.classic_deadline
                .get_or_insert(now + i64::from(m.metadata.rebalance_timeout_ms));
            return ErrorCode::RebalanceInProgress;
        }
        ErrorCode::None
    }

    /// LeaveGroup on a consumer group: any of its members (classic or not) named by id or
    /// instance leaves, all together, which may turn the group back into a classic group.
    pub(crate) fn classic_leave_consumer(
        &mut self,
        now: i64,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> (Vec<ErrorCode>, Output) {
        let mut out = Output::default();
        let config = &self.config;
        let Some(g) = self.groups.get_mut(group) else {
            return (vec![ErrorCode::UnknownMemberId; members.len()], out);
        };
        let Some(cg) = g.consumer.as_ref() else {
            return (vec![ErrorCode::UnknownMemberId; members.len()], out);
        };
        let mut fenced = Vec::new();
        let errors = members
            .iter()
            .map(|(id, instance)| {
                let found = match instance.as_deref() {
                    Some(iid) => match cg.static_member(iid) {
                        None => Err(ErrorCode::UnknownMemberId),
                        Some(held) if !id.is_empty() && held != id => {
                            Err(ErrorCode::FencedInstanceId)
                        }
                        Some(held) => Ok(held.to_string()),
                    },
                    None if cg.members.contains_key(id) => Ok(id.clone()),
                    None => Err(ErrorCode::UnknownMemberId),
                };
                match found {
                    Ok(id) => {
                        fenced.push(id);
                        ErrorCode::None
                    }
                    Err(e) => e,
                }
            })
            .collect();
        if !fenced.is_empty() {
            fence(config, g, group, &fenced, now, &mut out);
        }
        (errors, out)
    }
}
