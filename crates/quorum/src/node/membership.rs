//! Changes of the voter set (KIP-853 on raft-rs configuration changes) and the controllers'
//! address book: AddRaftVoter as a learner first, promotion once caught up, RemoveRaftVoter
//! with a hand-over when the leader is the one removed, and the committed changes applied on
//! every node.

use std::collections::BTreeMap;

use protobuf::Message as PbMessage;
use raft::prelude::{ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType};
use raft::StateRole;
use tokio::sync::oneshot;

use super::Driver;
use crate::error::{MembershipError, QuorumError};
use crate::StateMachine;

/// How long an AddRaftVoter may wait for the new voter to catch up (Kafka answers
/// REQUEST_TIMED_OUT and leaves it an observer).
const CATCH_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Marks a voter change's context: the address book after the change follows.
const VOTERS_CONTEXT: &[u8] = b"odradek-voters:";

/// The one voter change under way (raft-rs allows one at a time).
pub(super) enum Stage {
    /// Waiting for the learner change to apply.
    AddLearner(u64),
    /// A learner; promoted once it has the committed log.
    CatchUp(u64),
    /// Waiting for the promotion to apply.
    Promote(u64),
    /// Waiting for the removal to apply.
    Remove(u64),
}

pub(super) struct Membership {
    stage: Stage,
    reply: oneshot::Sender<Result<(), QuorumError>>,
    deadline: tokio::time::Instant,
}

fn encode_book(book: &BTreeMap<u64, String>) -> Vec<u8> {
    let mut out = VOTERS_CONTEXT.to_vec();
    for (id, a) in book {
        out.extend_from_slice(format!("{id}={a}\n").as_bytes());
    }
    out
}

fn decode_book(context: &[u8]) -> Option<BTreeMap<u64, String>> {
    let text = std::str::from_utf8(context.strip_prefix(VOTERS_CONTEXT)?).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .filter_map(|(id, a)| Some((id.parse().ok()?, a.to_string())))
            .collect(),
    )
}

fn single(change_type: ConfChangeType, node_id: u64) -> ConfChangeV2 {
    let mut c = ConfChangeSingle::default();
    c.set_change_type(change_type);
    c.node_id = node_id;
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![c].into());
    cc
}

impl<S: StateMachine> Driver<S> {
    /// An address a peer's own messages name: used only for a node whose address nothing
    /// authoritative (the configuration, a committed voter change, AddRaftVoter) gave, so a
    /// misconfigured node cannot redirect another's traffic.
    pub(super) fn learn_address(&mut self, id: u64, address: String) {
        if self.trusted.contains(&id) && self.addresses.contains_key(&id) {
            return;
        }
        self.set_address(id, address, false);
    }

    pub(super) fn set_address(&mut self, id: u64, address: String, trusted: bool) {
        if trusted {
            self.trusted.insert(id);
        }
        if id == self.config.node_id
            || self.addresses.get(&id) == Some(&address)
            || !crate::config::valid_address(&address)
        {
            return;
        }
        tracing::info!(node_id = self.config.node_id, peer = id, %address, "learned a controller's address");
        self.addresses.insert(id, address);
        if let Err(e) = self.storage.set_addresses(&self.addresses) {
            tracing::warn!(error = %e, "cannot persist controller addresses");
        }
    }

    pub(super) fn not_leader(&self) -> Option<QuorumError> {
        (self.node.raft.state != StateRole::Leader).then(|| QuorumError::NotLeader {
            leader_id: self.leader_id(),
        })
    }

    /// Proposes a voter change. raft-rs turns a change proposed while another is unapplied
    /// (always so on a new leader until it has applied its log) into an empty entry without
    /// saying so: that case is refused here, retriably.
    fn propose_change(&mut self, cc: ConfChangeV2) -> Result<(), QuorumError> {
        if self.node.raft.has_pending_conf() {
            return Err(QuorumError::ProposalDropped(
                "a voter change is still being applied; retry".into(),
            ));
        }
        self.node
            .propose_conf_change(encode_book(&self.authoritative_book()), cc)
            .map_err(|e| QuorumError::ProposalDropped(e.to_string()))
    }

    /// The addresses of the current voters and observers, as voter changes carry them.
    fn authoritative_book(&self) -> BTreeMap<u64, String> {
        let conf = self.node.raft.prs().conf().to_conf_state();
        self.addresses
            .iter()
            .filter(|(id, _)| {
                conf.voters.contains(id) || conf.learners.contains(id) || self.trusted.contains(id)
            })
            .map(|(id, a)| (*id, a.clone()))
            .collect()
    }

    /// A voter the leader can hand over to: recently active, with the most of the log.
    fn handover_target(&self, excluding: u64) -> Option<u64> {
        let conf = self.node.raft.prs().conf().to_conf_state();
        self.node
            .raft
            .prs()
            .iter()
            .filter(|(v, p)| **v != excluding && conf.voters.contains(v) && p.recent_active)
            .max_by_key(|(v, p)| (p.matched, std::cmp::Reverse(**v)))
            .map(|(v, _)| *v)
    }

    /// Whether the voters left after removing `id` would have a majority recently heard from
    /// (this leader counts).
    fn remaining_majority_active(&self, id: u64) -> bool {
        let conf = self.node.raft.prs().conf().to_conf_state();
        let remaining: Vec<u64> = conf.voters.iter().copied().filter(|v| *v != id).collect();
        let active = remaining
            .iter()
            .filter(|v| {
                **v == self.config.node_id
                    || self
                        .node
                        .raft
                        .prs()
                        .get(**v)
                        .is_some_and(|p| p.recent_active)
            })
            .count();
        active * 2 > remaining.len()
    }

    pub(super) fn add_voter(
        &mut self,
        id: u64,
        address: String,
        reply: oneshot::Sender<Result<(), QuorumError>>,
    ) {
        let conf = self.node.raft.prs().conf().to_conf_state();
        let refused = if let Some(e) = self.not_leader() {
            Some(e)
        } else if self.membership.is_some() {
            Some(QuorumError::Membership(MembershipError::InProgress))
        } else if conf.voters.contains(&id) {
            Some(QuorumError::Membership(MembershipError::DuplicateVoter(id)))
        } else if !crate::config::valid_address(&address) {
            Some(QuorumError::Membership(MembershipError::BadAddress(
                address.clone(),
            )))
        } else {
            None
        };
        if let Some(e) = refused {
            let _ = reply.send(Err(e));
            return;
        }
        self.set_address(id, address, true);
        let stage = if conf.learners.contains(&id) {
            Stage::CatchUp(id)
        } else {
            if let Err(e) = self.propose_change(single(ConfChangeType::AddLearnerNode, id)) {
                let _ = reply.send(Err(e));
                return;
            }
            Stage::AddLearner(id)
        };
        tracing::info!(
            node_id = self.config.node_id,
            new_voter = id,
            "adding a voter: as an observer first"
        );
        self.membership = Some(Membership {
            stage,
            reply,
            deadline: tokio::time::Instant::now() + CATCH_UP_TIMEOUT,
        });
    }

    pub(super) fn remove_voter(
        &mut self,
        id: u64,
        reply: oneshot::Sender<Result<(), QuorumError>>,
    ) {
        let conf = self.node.raft.prs().conf().to_conf_state();
        let refused = if let Some(e) = self.not_leader() {
            Some(e)
        } else if self.membership.is_some() {
            Some(QuorumError::Membership(MembershipError::InProgress))
        } else if !conf.voters.contains(&id) && !conf.learners.contains(&id) {
            Some(QuorumError::Membership(MembershipError::VoterNotFound(id)))
        } else if conf.voters == [id] {
            Some(QuorumError::Membership(MembershipError::LastVoter(id)))
        } else if !self.remaining_majority_active(id) {
            // raft-rs applies a change once the old voters commit it; the voters left must
            // still have a live majority.
            Some(QuorumError::Membership(MembershipError::NoQuorumLeft(id)))
        } else {
            None
        };
        if let Some(e) = refused {
            let _ = reply.send(Err(e));
            return;
        }
        if id == self.config.node_id {
            // The leader does not remove itself: it hands leadership to the voter with the most
            // of the log, and the request goes there (the caller follows the hint).
            let Some(t) = self.handover_target(id) else {
                let _ = reply.send(Err(QuorumError::Membership(MembershipError::NoQuorumLeft(
                    id,
                ))));
                return;
            };
            tracing::info!(
                node_id = self.config.node_id,
                to = t,
                "handing over leadership before this voter is removed"
            );
            self.node.transfer_leader(t);
            let _ = reply.send(Err(QuorumError::NotLeader { leader_id: Some(t) }));
            return;
        }
        if let Err(e) = self.propose_change(single(ConfChangeType::RemoveNode, id)) {
            let _ = reply.send(Err(e));
            return;
        }
        tracing::info!(
            node_id = self.config.node_id,
            voter = id,
            "removing a voter"
        );
        self.membership = Some(Membership {
            stage: Stage::Remove(id),
            reply,
            deadline: tokio::time::Instant::now() + CATCH_UP_TIMEOUT,
        });
    }

    /// Moves the voter change under way on: a learner that caught up is promoted; a change
    /// past its deadline, or on a voter that lost leadership, is answered.
    pub(super) fn advance_membership(&mut self) {
        let Some(m) = &self.membership else { return };
        if let Some(e) = self.not_leader() {
            if let Some(m) = self.membership.take() {
                let _ = m.reply.send(Err(e));
            }
            return;
        }
        if let Stage::CatchUp(id) = m.stage {
            let committed = self.node.raft.raft_log.committed;
            let caught_up = self
                .node
                .raft
                .prs()
                .get(id)
                .is_some_and(|p| p.matched >= committed);
            if caught_up && !self.node.raft.has_pending_conf() {
                match self.propose_change(single(ConfChangeType::AddNode, id)) {
                    Ok(()) => {
                        tracing::info!(
                            node_id = self.config.node_id,
                            new_voter = id,
                            "the observer caught up; promoting it to voter"
                        );
                        if let Some(m) = self.membership.as_mut() {
                            m.stage = Stage::Promote(id);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "promotion not proposed yet"),
                }
                return;
            }
        }
        if tokio::time::Instant::now() > m.deadline {
            if let Some(m) = self.membership.take() {
                let e = match m.stage {
                    Stage::AddLearner(id) | Stage::CatchUp(id) => QuorumError::CatchUpTimeout(id),
                    Stage::Promote(_) | Stage::Remove(_) => QuorumError::ProposalDropped(
                        "the voter change did not commit in time; it may still take effect".into(),
                    ),
                };
                let _ = m.reply.send(Err(e));
            }
        }
    }

    /// Applies a committed voter change (on every node): raft's configuration, the store's
    /// next snapshot, the addresses it carries; on the leader, the change under way moves on.
    pub(super) fn apply_conf_change(&mut self, e: &Entry) {
        let cc = if e.get_entry_type() == EntryType::EntryConfChangeV2 {
            ConfChangeV2::parse_from_bytes(&e.data)
        } else {
            ConfChange::parse_from_bytes(&e.data).map(|c| single(c.get_change_type(), c.node_id))
        };
        let cc = match cc {
            Ok(cc) => cc,
            Err(err) => {
                tracing::error!(index = e.index, error = %err, "undecodable voter change in the metadata log");
                return;
            }
        };
        match self.node.apply_conf_change(&cc) {
            Ok(cs) => {
                tracing::info!(node_id = self.config.node_id, index = e.index, voters = ?cs.voters, observers = ?cs.learners, "voter set changed");
                let removed_leader = self.node.raft.state == StateRole::Leader
                    && !cs.voters.contains(&self.config.node_id);
                self.storage.set_conf_state(cs);
                if removed_leader {
                    // raft-rs 0.7 leaves a removed leader leading (and dropping every
                    // proposal): hand over, or step down.
                    match self.handover_target(self.config.node_id) {
                        Some(t) => self.node.transfer_leader(t),
                        None => {
                            let term = self.node.raft.term;
                            self.node.raft.become_follower(term, raft::INVALID_ID);
                        }
                    }
                    tracing::warn!(
                        node_id = self.config.node_id,
                        "this leader was removed from the voters; it steps down"
                    );
                }
            }
            Err(err) => {
                tracing::error!(index = e.index, error = %err, "cannot apply a voter change");
                return;
            }
        }
        if let Some(book) = decode_book(&e.context) {
            for (id, address) in book {
                self.set_address(id, address, true);
            }
        }
        self.publish_voter_set();
        let changed: Vec<(ConfChangeType, u64)> = cc
            .get_changes()
            .iter()
            .map(|c| (c.get_change_type(), c.node_id))
            .collect();
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        match m.stage {
            Stage::AddLearner(id) if changed.contains(&(ConfChangeType::AddLearnerNode, id)) => {
                m.stage = Stage::CatchUp(id);
                // The new node gets a snapshot that includes the change, never the log from
                // its start (which it could replay against a voter set it was not formatted
                // with).
                let data = self.state_machine.snapshot();
                if let Err(err) = self.storage.compact_to_snapshot(e.index, data) {
                    tracing::warn!(error = %err, "cannot take the snapshot for the new observer");
                }
            }
            Stage::Promote(id) if changed.contains(&(ConfChangeType::AddNode, id)) => {
                if let Some(m) = self.membership.take() {
                    let _ = m.reply.send(Ok(()));
                }
            }
            Stage::Remove(id) if changed.contains(&(ConfChangeType::RemoveNode, id)) => {
                if let Some(m) = self.membership.take() {
                    let _ = m.reply.send(Ok(()));
                }
            }
            _ => {}
        }
    }
}
