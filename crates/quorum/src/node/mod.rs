//! The driver: one task owns the `RawNode` and runs the raft-rs loop (tick, step, `Ready`:
//! persist, send, apply, advance). Everything else talks to it through a bounded command
//! channel; status is published through a `watch`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use raft::prelude::{Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::QuorumConfig;
use crate::error::{MembershipError, QuorumError};

mod membership;
use crate::storage::RocksStorage;
use crate::transport::{self, TransportService};
use crate::{QuorumDescription, QuorumStatus, Role, StateMachine, VoterSet, VoterState};
use membership::Membership;

/// Messages to the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Propose {
        data: Vec<u8>,
        /// The entry's index once the leader's log holds it.
        appended: oneshot::Sender<Result<u64, QuorumError>>,
        /// The index again once the entry is committed and applied.
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
    /// Bytes of entries applied since the latest snapshot. At start-up the entries after the
    /// stored snapshot are applied again, so the count survives a restart.
    bytes_since_snapshot: u64,
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
        tls: config.tls.clone(),
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
        bytes_since_snapshot: 0,
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
            Command::Propose {
                data,
                appended,
                reply,
            } => self.propose(data, appended, reply),
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

    fn propose(
        &mut self,
        data: Vec<u8>,
        appended: oneshot::Sender<Result<u64, QuorumError>>,
        reply: oneshot::Sender<Result<u64, QuorumError>>,
    ) {
        if self.node.raft.state != StateRole::Leader {
            let _ = appended.send(Err(QuorumError::NotLeader {
                leader_id: self.leader_id(),
            }));
            return;
        }
        self.next_proposal += 1;
        let id = self.next_proposal;
        let mut context = self.config.node_id.to_be_bytes().to_vec();
        context.extend_from_slice(&id.to_be_bytes());
        let before = self.node.raft.raft_log.last_index();
        match self.node.propose(context, data) {
            Ok(()) => {
                // A leader appends a proposal to its log at once, as the next entry.
                let index = self.node.raft.raft_log.last_index();
                debug_assert_eq!(index, before + 1, "a proposal is the leader's next entry");
                self.pending.insert(id, Pending { reply });
                let _ = appended.send(Ok(index));
            }
            Err(e) => {
                let _ = appended.send(Err(QuorumError::ProposalDropped(e.to_string())));
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

    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() => {
                    self.state_machine.apply(e.index, &e.data);
                    self.bytes_since_snapshot += e.data.len() as u64;
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
            self.bytes_since_snapshot = 0;
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
        let due = self.applied
            >= snapshot_index.saturating_add(self.config.snapshot_interval_entries)
            || self.bytes_since_snapshot >= self.config.snapshot_interval_bytes;
        if stale || (due && self.applied > snapshot_index) {
            self.bytes_since_snapshot = 0;
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
