//! The driver: one task owns the `RawNode` and runs the raft-rs loop (tick, step, `Ready`:
//! persist, send, apply, advance). Everything else talks to it through a bounded command
//! channel; status is published through a `watch`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use raft::prelude::{Entry, EntryType, Message, MessageType};
use raft::{Config, RawNode, SnapshotStatus, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::QuorumConfig;
use crate::error::QuorumError;
use crate::storage::RocksStorage;
use crate::transport::{self, TransportService};
use crate::{QuorumDescription, QuorumStatus, Role, StateMachine, VoterState};

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
    Shutdown,
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
    peers: HashMap<u64, mpsc::Sender<Message>>,
    pending: BTreeMap<u64, Pending>,
    next_proposal: u64,
    applied: u64,
    status: watch::Sender<QuorumStatus>,
}

/// A driver ready to run, with what its handle and server need.
pub(crate) struct Built<S: StateMachine> {
    pub driver: Driver<S>,
    pub commands: mpsc::Sender<Command>,
    pub service: TransportService,
    pub status: watch::Receiver<QuorumStatus>,
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
    let peers = config
        .voters
        .iter()
        .filter(|(id, _)| **id != config.node_id)
        .map(|(id, addr)| {
            let q = transport::spawn_peer(
                config.node_id,
                *id,
                addr.clone(),
                config.cluster_id.clone(),
                config.peer_queue,
                tx.clone(),
            );
            (*id, q)
        })
        .collect();
    let (status_tx, status_rx) = watch::channel(QuorumStatus {
        node_id: config.node_id,
        leader_id: None,
        term: storage.hard_state().term,
        role: Role::Follower,
        commit_index: storage.hard_state().commit,
        applied_index: applied,
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
        peers,
        pending: BTreeMap::new(),
        next_proposal: 0,
        applied,
        status: status_tx,
    };
    Ok(Built {
        driver,
        commands: tx,
        service,
        status: status_rx,
        storage,
    })
}

impl<S: StateMachine> Driver<S> {
    pub(crate) async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(node_id = self.config.node_id, voters = ?self.config.voters.keys().collect::<Vec<_>>(), "quorum voter started");
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

    fn send(&mut self, messages: Vec<Message>) {
        for m in messages {
            let to = m.to;
            let snapshot = m.get_msg_type() == MessageType::MsgSnapshot;
            match self.peers.get(&to) {
                Some(q) => {
                    if q.try_send(m).is_err() {
                        self.node.report_unreachable(to);
                        if snapshot {
                            self.node.report_snapshot(to, SnapshotStatus::Failure);
                        }
                    }
                }
                None => tracing::warn!(to, "message for a node that is not a voter"),
            }
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                self.state_machine.apply(e.index, &e.data);
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
        let snapshot_index = self.storage.latest_snapshot().get_metadata().index;
        if self.applied >= snapshot_index + self.config.snapshot_interval_entries {
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

    fn publish_status(&self) {
        let role = match self.node.raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
            StateRole::Follower => Role::Follower,
        };
        let status = QuorumStatus {
            node_id: self.config.node_id,
            leader_id: self.leader_id(),
            term: self.node.raft.term,
            role,
            commit_index: self.node.raft.raft_log.committed,
            applied_index: self.applied,
        };
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }

    fn describe(&self) -> QuorumDescription {
        let raft = &self.node.raft;
        let last_index = raft.raft_log.last_index();
        let is_leader = raft.state == StateRole::Leader;
        let voters = self
            .config
            .voters
            .keys()
            .map(|id| {
                let log_end = if *id == self.config.node_id {
                    Some(last_index)
                } else if is_leader {
                    raft.prs().get(*id).map(|p| p.matched)
                } else {
                    None
                };
                VoterState {
                    node_id: *id,
                    log_end_offset: log_end,
                }
            })
            .collect();
        QuorumDescription {
            leader_id: self.leader_id(),
            term: raft.term,
            high_watermark: raft.raft_log.committed,
            voters: Arc::new(voters),
        }
    }
}
