//! Membership: JoinGroup (with the member-id round trip and static members), SyncGroup,
//! Heartbeat, LeaveGroup, and the deadlines `tick` fires.

use bytes::Bytes;
use odradek_common::ErrorCode;

use super::consumer::TopicView;
use super::{
    Group, GroupState, Groups, JoinRequest, JoinResponse, Member, Output, Reply, SyncRequest,
    SyncResponse, Token,
};
use crate::records::{encode_group, encode_key, RecordKey};

impl Groups {
    /// JoinGroup. The reply comes in this call's output or a later one, under `token`.
    /// A consumer group with members takes the member in as a classic member; `topics` serves
    /// its subscription there.
    pub fn join(
        &mut self,
        now: i64,
        token: Token,
        req: JoinRequest,
        topics: &dyn TopicView,
    ) -> Output {
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
        if self.is_live_consumer_group(&req.group_id) {
            return self.classic_join_consumer(now, token, req, topics);
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
        if g.share.is_some() {
            reject(&mut out, ErrorCode::InconsistentGroupProtocol);
            return out;
        }
        if g.consumer.is_some() {
            // An empty consumer group becomes a classic one.
            out.records
                .extend(super::consumer::group_tombstones(&req.group_id));
            g.consumer = None;
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

    pub(super) fn prepare_rebalance(g: &mut Group, now: i64, delay: i64, out: &mut Output) {
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
    /// A classic member of a consumer group gets what it holds; `topics` names its partitions.
    pub fn sync(
        &mut self,
        now: i64,
        token: Token,
        req: SyncRequest,
        topics: &dyn TopicView,
    ) -> Output {
        let mut out = Output::default();
        let reply = |out: &mut Output, r: SyncResponse| out.replies.push(Reply::Sync(token, r));
        if self.is_live_consumer_group(&req.group_id) {
            reply(&mut out, self.classic_sync_consumer(now, &req, topics));
            return out;
        }
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
                    out.completed_rebalances += 1;
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
        if self.is_live_consumer_group(group) {
            return self.classic_heartbeat_consumer(now, group, generation, member, instance);
        }
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
        if self.is_live_consumer_group(group) {
            return self.classic_leave_consumer(now, group, members);
        }
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
        self.consumer_tick(now, &mut out);
        self.share_tick(now, &mut out);
        out
    }
}
