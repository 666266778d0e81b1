//! The driver: one task owns the `RawNode` and runs the raft-rs loop (tick, step, `Ready`:
//! persist, send, apply, advance). Everything else talks to it through a bounded command
//! channel; status is published through a `watch`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use protobuf::Message as PbMessage;
use raft::prelude::{
    ConfChange, ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry, EntryType, Message,
    MessageType,
};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::QuorumConfig;
use crate::error::{MembershipError, QuorumError};
use crate::storage::RocksStorage;
use crate::transport::{self, TransportService};
use crate::{QuorumDescription, QuorumStatus, Role, StateMachine, VoterSet, VoterState};

/// Messages to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Propose {
        data: Vec<u8>,
        reply: oneshot::Sender<Result<u64, QuorumError>>,
    },
    Step(Box<Message>),
    Unreachable(u64),
    SnapshotSent {
        to: u64,
        ok: bool,
    },
    Describe(oneshot::Sender<QuorumDescription>),
    /// A peer's controller address, from its messages.
    LearnAddress {
        id: u64,
        address: String,
    },
    /// AddRaftVoter: as a learner (observer) first, a voter once caught up.
    AddVoter {
        id: u64,
        address: String,
        reply: oneshot::Sender<Result<(), QuorumError>>,
    },
    /// RemoveRaftVoter.
    RemoveVoter {
        id: u64,
        reply: oneshot::Sender<Result<(), QuorumError>>,
    },
    /// UpdateRaftVoter: a voter's new address.
    UpdateVoter {
        id: u64,
        address: String,
        reply: oneshot::Sender<Result<(), QuorumError>>,
    },
    Shutdown,
}

/// How long an AddRaftVoter may wait for the new voter to catch up (Kafka answers
/// REQUEST_TIMED_OUT and leaves it an observer).
const CATCH_UP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Marks a voter change's context: the address book after the change follows.
const VOTERS_CONTEXT: &[u8] = b"odradek-voters:";

/// The one voter change under way (raft-rs allows one at a time).
enum Stage {
    /// Waiting for the learner change to apply.
    AddLearner(u64),
    /// A learner; promoted once it has the committed log.
    CatchUp(u64),
    /// Waiting for the promotion to apply.
    Promote(u64),
    /// Waiting for the removal to apply.
    Remove(u64),
}

struct Membership {
    stage: Stage,
    reply: oneshot::Sender<Result<(), QuorumError>>,
    deadline: tokio::time::Instant,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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

struct Pending {
    reply: oneshot::Sender<Result<u64, QuorumError>>,
}

pub(crate) struct Driver<S: StateMachine> {
    config: QuorumConfig,
    node: RawNode<RocksStorage>,
    storage: RocksStorage,
    state_machine: S,
    commands: mpsc::Receiver<Command>,
    /// Queues to peers, with the address each was started for; made as addresses are known.
    peers: HashMap<u64, (String, mpsc::Sender<Message>)>,
    /// The sender of this node's own messages (id, cluster, address), and the driver's queue.
    sender: transport::Sender,
    own_commands: mpsc::Sender<Command>,
    /// Every node's controller address as known: the configured voters, then what was learned
    /// from voter changes and from peers' messages (persisted).
    addresses: BTreeMap<u64, String>,
    membership: Option<Membership>,
    /// Nodes whose address came from the configuration, a committed voter change or an
    /// AddRaftVoter / UpdateRaftVoter request (not only from their own messages).
    trusted: std::collections::BTreeSet<u64>,
    /// When each peer was last heard from, and (on the leader) last had the whole log, in
    /// milliseconds since the epoch: DescribeQuorum's LastFetchTimestamp and
    /// LastCaughtUpTimestamp.
    last_heard_ms: HashMap<u64, i64>,
    last_caught_up_ms: HashMap<u64, i64>,
    pending: BTreeMap<u64, Pending>,
    next_proposal: u64,
    applied: u64,
    status: watch::Sender<QuorumStatus>,
    voter_set: watch::Sender<VoterSet>,
}

/// A driver ready to run, with what its handle and server need.
pub(crate) struct Built<S: StateMachine> {
    pub driver: Driver<S>,
    pub commands: mpsc::Sender<Command>,
    pub service: TransportService,
    pub status: watch::Receiver<QuorumStatus>,
    pub voter_set: watch::Receiver<VoterSet>,
    pub storage: RocksStorage,
}

/// Opens the store, restores the state machine from the latest snapshot and builds the driver.
pub(crate) fn build<S: StateMachine>(
    config: QuorumConfig,
    mut state_machine: S,
) -> Result<Built<S>, QuorumError> {
    let (storage, identity) = RocksStorage::open(&config.data_dir)?;
    if identity.cluster_id != config.cluster_id || identity.node_id != config.node_id {
        return Err(QuorumError::NotFormatted(format!(
            "{} was formatted for cluster {} node {}, not cluster {} node {}",
            config.data_dir.display(),
            identity.cluster_id,
            identity.node_id,
            config.cluster_id,
            config.node_id
        )));
    }
    let snapshot = storage.latest_snapshot();
    let applied = snapshot.get_metadata().index;
    if !snapshot.get_data().is_empty() {
        state_machine.restore(applied, snapshot.get_data());
    }
    let raft_config = Config {
        id: config.node_id,
        election_tick: config.election_ticks,
        heartbeat_tick: config.heartbeat_ticks,
        applied,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        pre_vote: true,
        check_quorum: true,
        ..Config::default()
    };
    raft_config.validate()?;
    let logger = slog::Logger::root(
        crate::log::TracingDrain,
        slog::o!("node_id" => config.node_id),
    );
    let node = RawNode::new(&raft_config, storage.clone(), &logger)?;
    let (tx, rx) = mpsc::channel(4096);
    let mut addresses = config.voters.clone();
    addresses.extend(storage.addresses());
    let own_address = config
        .address
        .clone()
        .or_else(|| addresses.get(&config.node_id).cloned())
        .unwrap_or_default();
    if !own_address.is_empty() {
        addresses.insert(config.node_id, own_address.clone());
    }
    let sender = transport::Sender {
        from: config.node_id,
        cluster_id: config.cluster_id.clone(),
        address: own_address,
    };
    let conf = node.raft.prs().conf().to_conf_state();
    let is_voter = conf.voters.contains(&config.node_id);
    let trusted = config.voters.keys().copied().collect();
    let (status_tx, status_rx) = watch::channel(QuorumStatus {
        node_id: config.node_id,
        leader_id: None,
        term: storage.hard_state().term,
        role: Role::Follower,
        commit_index: storage.hard_state().commit,
        applied_index: applied,
        is_voter,
    });
    let (voter_set_tx, voter_set_rx) = watch::channel(VoterSet {
        voters: conf.voters.clone(),
        observers: conf.learners.clone(),
        addresses: Arc::new(addresses.clone()),
    });
    let service = TransportService {
        node_id: config.node_id,
        cluster_id: config.cluster_id.clone(),
        commands: tx.clone(),
    };
    let driver = Driver {
        config,
        node,
        storage: storage.clone(),
        state_machine,
        commands: rx,
        peers: HashMap::new(),
        sender,
        own_commands: tx.clone(),
        addresses,
        membership: None,
        trusted,
        last_heard_ms: HashMap::new(),
        last_caught_up_ms: HashMap::new(),
        pending: BTreeMap::new(),
        next_proposal: 0,
        applied,
        status: status_tx,
        voter_set: voter_set_tx,
    };
    Ok(Built {
        driver,
        commands: tx,
        service,
        status: status_rx,
        voter_set: voter_set_rx,
        storage,
    })
}

impl<S: StateMachine> Driver<S> {
    pub(crate) async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(node_id = self.config.node_id, voters = ?self.node.raft.prs().conf().to_conf_state().voters, "quorum node started");
        loop {
            tokio::select! {
                _ = ticker.tick() => { self.node.tick(); }
                cmd = self.commands.recv() => {
                    let Some(cmd) = cmd else { break };
                    if !self.handle(cmd) { break; }
                    // Take what else is queued before processing the Ready: batching.
                    let mut stop = false;
                    for _ in 0..1024 {
                        match self.commands.try_recv() {
                            Ok(c) => if !self.handle(c) { stop = true; break; },
                            Err(_) => break,
                        }
                    }
                    if stop { break; }
                }
            }
            if let Err(e) = self.on_ready() {
                tracing::error!(node_id = self.config.node_id, error = %e, "metadata log store failed; this voter stops");
                break;
            }
            self.advance_membership();
            self.publish_status();
        }
        self.fail_pending(QuorumError::Shutdown);
        tracing::info!(node_id = self.config.node_id, "quorum voter stopped");
    }

    /// Returns false to stop.
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Propose { data, reply } => self.propose(data, reply),
            Command::Step(m) => {
                self.last_heard_ms.insert(m.from, now_ms());
                if let Err(e) = self.node.step(*m) {
                    tracing::debug!(error = %e, "dropped raft message");
                }
            }
            Command::Unreachable(to) => self.node.report_unreachable(to),
            Command::SnapshotSent { to, ok } => {
                let status = if ok {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                };
                self.node.report_snapshot(to, status);
            }
            Command::Describe(reply) => {
                let _ = reply.send(self.describe());
            }
            Command::LearnAddress { id, address } => self.learn_address(id, address),
            Command::AddVoter { id, address, reply } => self.add_voter(id, address, reply),
            Command::RemoveVoter { id, reply } => self.remove_voter(id, reply),
            Command::UpdateVoter { id, address, reply } => {
                let conf = self.node.raft.prs().conf().to_conf_state();
                let result = if let Some(e) = self.not_leader() {
                    Err(e)
                } else if !conf.voters.contains(&id) {
                    Err(QuorumError::Membership(MembershipError::VoterNotFound(id)))
                } else if !crate::config::valid_address(&address) {
                    Err(QuorumError::Membership(MembershipError::BadAddress(
                        address,
                    )))
                } else {
                    self.set_address(id, address, true);
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Command::Shutdown => return false,
        }
        true
    }

    fn leader_id(&self) -> Option<u64> {
        let l = self.node.raft.leader_id;
        (l != raft::INVALID_ID).then_some(l)
    }

    fn propose(&mut self, data: Vec<u8>, reply: oneshot::Sender<Result<u64, QuorumError>>) {
        if self.node.raft.state != StateRole::Leader {
            let _ = reply.send(Err(QuorumError::NotLeader {
                leader_id: self.leader_id(),
            }));
            return;
        }
        self.next_proposal += 1;
        let id = self.next_proposal;
        let mut context = self.config.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        match self.node.propose(context, data) {
            Ok(()) => {
                self.pending.insert(id, Pending { reply });
            }
            Err(e) => {
                let _ = reply.send(Err(QuorumError::ProposalDropped(e.to_string())));
            }
        }
    }

    /// The queue to `to`, started (or restarted, when its address changed) from the address
    /// book; `None` while its address is unknown.
    fn peer(&mut self, to: u64) -> Option<&mpsc::Sender<Message>> {
        let addr = self.addresses.get(&to)?.clone();
        let stale = self.peers.get(&to).is_none_or(|(a, _)| *a != addr);
        if stale {
            let q = transport::spawn_peer(
                self.sender.clone(),
                to,
                addr.clone(),
                self.config.peer_queue,
                self.own_commands.clone(),
            );
            self.peers.insert(to, (addr, q));
        }
        self.peers.get(&to).map(|(_, q)| q)
    }

    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            let to = m.to;
            let snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            let sent = match self.peer(to) {
                Some(q) => q.try_send(m).is_ok(),
                None => {
                    tracing::debug!(to, "no address for this node yet; message dropped");
                    false
                }
            };
            if !sent {
                self.node.report_unreachable(to);
                if snapshot {
                    self.node.report_snapshot(to, SnapshotStatus::Failure);
                }
            }
        }
    }

    /// An address a peer's own messages name: used only for a node whose address nothing
    /// authoritative (the configuration, a committed voter change, AddRaftVoter) gave, so a
    /// misconfigured node cannot redirect another's traffic.
    fn learn_address(&mut self, id: u64, address: String) {
        if self.trusted.contains(&id) && self.addresses.contains_key(&id) {
            return;
        }
        self.set_address(id, address, false);
    }

    fn set_address(&mut self, id: u64, address: String, trusted: bool) {
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

    fn not_leader(&self) -> Option<QuorumError> {
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

    fn add_voter(
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

    fn remove_voter(&mut self, id: u64, reply: oneshot::Sender<Result<(), QuorumError>>) {
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
    fn advance_membership(&mut self) {
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
    fn apply_conf_change(&mut self, e: &Entry) {
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

    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() => {
                    self.state_machine.apply(e.index, &e.data);
                }
                EntryType::EntryNormal => {}
                EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                    self.apply_conf_change(&e);
                }
            }
            self.applied = e.index;
            if e.context.len() == 16 && e.context[..8] == self.config.node_id.to_be_bytes() {
                let mut id = [0u8; 8];
                id.copy_from_slice(&e.context[8..]);
                if let Some(p) = self.pending.remove(&u64::from_be_bytes(id)) {
                    let _ = p.reply.send(Ok(e.index));
                }
            }
        }
    }

    fn on_ready(&mut self) -> raft::Result<()> {
        if !self.node.has_ready() {
            return Ok(());
        }
        let mut ready = self.node.ready();
        if let Some(ss) = ready.ss() {
            if ss.raft_state != StateRole::Leader && !self.pending.is_empty() {
                let leader = (ss.leader_id != raft::INVALID_ID).then_some(ss.leader_id);
                self.fail_pending(QuorumError::NotLeader { leader_id: leader });
            }
        }
        let messages = ready.take_messages();
        self.send(messages);
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.storage.apply_snapshot(&snapshot)?;
            let index = snapshot.get_metadata().index;
            self.state_machine.restore(index, snapshot.get_data());
            self.applied = index;
            tracing::info!(
                node_id = self.config.node_id,
                index,
                "installed snapshot from the leader"
            );
        }
        let committed = ready.take_committed_entries();
        self.apply(committed);
        if !ready.entries().is_empty() || ready.hs().is_some() {
            self.storage.append(ready.entries(), ready.hs())?;
        }
        let persisted = ready.take_persisted_messages();
        self.send(persisted);
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.set_commit(commit)?;
        }
        let messages = light.take_messages();
        self.send(messages);
        let committed = light.take_committed_entries();
        self.apply(committed);
        self.node.advance_apply();
        self.maybe_snapshot()
    }

    fn maybe_snapshot(&mut self) -> raft::Result<()> {
        let snapshot = self.storage.latest_snapshot();
        let snapshot_index = snapshot.get_metadata().index;
        // A leader whose latest snapshot predates a member (an observer added under an earlier
        // leader) takes a new one: raft-rs refuses to install a snapshot that leaves the
        // receiver out, and would be sent it again forever.
        let members = self.node.raft.prs().conf().to_conf_state();
        let in_snapshot = snapshot.get_metadata().get_conf_state();
        let stale = self.node.raft.state == StateRole::Leader
            && self.applied > snapshot_index
            && members
                .voters
                .iter()
                .chain(&members.learners)
                .any(|m| !in_snapshot.voters.contains(m) && !in_snapshot.learners.contains(m));
        if stale || self.applied >= snapshot_index + self.config.snapshot_interval_entries {
            let data = self.state_machine.snapshot();
            self.storage.compact_to_snapshot(self.applied, data)?;
            tracing::debug!(
                node_id = self.config.node_id,
                index = self.applied,
                "snapshot taken, log compacted"
            );
        }
        Ok(())
    }

    fn fail_pending(&mut self, error: QuorumError) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let e = match &error {
                QuorumError::NotLeader { leader_id } => QuorumError::NotLeader {
                    leader_id: *leader_id,
                },
                QuorumError::Shutdown => QuorumError::Shutdown,
                other => QuorumError::ProposalDropped(other.to_string()),
            };
            let _ = p.reply.send(Err(e));
        }
    }

    fn publish_status(&mut self) {
        let role = match self.node.raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
            StateRole::Follower => Role::Follower,
        };
        let conf = self.node.raft.prs().conf().to_conf_state();
        let status = QuorumStatus {
            node_id: self.config.node_id,
            leader_id: self.leader_id(),
            term: self.node.raft.term,
            role,
            commit_index: self.node.raft.raft_log.committed,
            applied_index: self.applied,
            is_voter: conf.voters.contains(&self.config.node_id),
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
        self.publish_voter_set();
        if self.node.raft.state == StateRole::Leader {
            let last = self.node.raft.raft_log.last_index();
            let now = now_ms();
            for (id, p) in self.node.raft.prs().iter() {
                if p.matched >= last {
                    self.last_caught_up_ms.insert(*id, now);
                }
            }
        }
    }

    fn publish_voter_set(&self) {
        let conf = self.node.raft.prs().conf().to_conf_state();
        self.voter_set.send_if_modified(|v| {
            let changed = v.voters != conf.voters
                || v.observers != conf.learners
                || *v.addresses != self.addresses;
            if changed {
                *v = VoterSet {
                    voters: conf.voters.clone(),
                    observers: conf.learners.clone(),
                    addresses: Arc::new(self.addresses.clone()),
                };
            }
            changed
        });
    }

    fn describe(&self) -> QuorumDescription {
        let raft = &self.node.raft;
        let last_index = raft.raft_log.last_index();
        let is_leader = raft.state == StateRole::Leader;
        let now = now_ms();
        let state = |id: &u64| {
            let me = *id == self.config.node_id;
            let log_end = if me {
                Some(last_index)
            } else if is_leader {
                raft.prs().get(*id).map(|p| p.matched)
            } else {
                None
            };
            VoterState {
                node_id: *id,
                log_end_offset: log_end,
                last_fetch_ms: if me {
                    Some(now)
                } else {
                    self.last_heard_ms.get(id).copied()
                },
                last_caught_up_ms: if me {
                    Some(now)
                } else {
                    self.last_caught_up_ms.get(id).copied()
                },
                address: self.addresses.get(id).cloned(),
            }
        };
        let conf = raft.prs().conf().to_conf_state();
        let mut voters = conf.voters.clone();
        voters.sort_unstable();
        let mut observers = conf.learners.clone();
        observers.sort_unstable();
        QuorumDescription {
            leader_id: self.leader_id(),
            term: raft.term,
            high_watermark: raft.raft_log.committed,
            voters: Arc::new(voters.iter().map(state).collect()),
            observers: Arc::new(observers.iter().map(state).collect()),
        }
    }
}
