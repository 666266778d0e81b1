//! A simulated controller quorum voter: tikv's raft-rs `RawNode`, driven as `odradek-quorum`'s
//! driver drives it (tick, step, `Ready`: send, install snapshot, apply committed, persist
//! entries and hard state, send persisted messages, advance, apply the light ready), over a
//! `MemStorage` that stands for the voter's RocksDB store. The store survives a crash whole:
//! the real store writes every `Ready` in one synced batch before the messages that depend on
//! it leave. The state machine is the metadata log: committed entries are replayed into images
//! through `MetadataDelta`, one image per entry, exactly as the controller's state machine does.
//!
//! Not simulated: snapshots and log compaction (the log stays whole), membership changes.

use std::sync::Arc;

use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{decode_batch, MetadataDelta, MetadataImage};
use raft::prelude::{ConfState, Entry, EntryType, Message as RaftMessage};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

/// Ticks every this many simulated ms (the quorum's default tick).
pub const TICK_MS: i64 = 50;

/// One voter.
pub struct SimVoter {
    /// Its raft id.
    pub id: u64,
    voters: Vec<u64>,
    /// The durable store.
    storage: MemStorage,
    /// The running raft node; `None` while crashed.
    node: Option<RawNode<MemStorage>>,
    /// Committed metadata entries applied, in order: (raft index, records).
    pub entries: Vec<(i64, Vec<MetadataRecord>)>,
    /// The image after each applied metadata entry, by raft index.
    pub images: std::collections::BTreeMap<i64, Arc<MetadataImage>>,
    /// Proposals applied since the caller last took them: (context, index).
    pub applied_proposals: Vec<(Vec<u8>, u64)>,
    /// The last raft index applied (metadata entries and the quorum's own).
    pub applied_index: u64,
    next_tick_ms: i64,
    logger: slog::Logger,
    /// Records that did not replay (a bug in a control manager or in replay).
    pub errors: Vec<String>,
}

impl std::fmt::Debug for SimVoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimVoter")
            .field("id", &self.id)
            .field("up", &self.node.is_some())
            .field("applied_entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl SimVoter {
    /// A voter of the quorum `voters`, formatted (an empty store) and started.
    pub fn new(id: u64, voters: Vec<u64>, election_tick: usize) -> Self {
        let storage = MemStorage::new_with_conf_state(ConfState::from((voters.clone(), vec![])));
        let mut v = Self {
            id,
            voters,
            storage,
            node: None,
            entries: Vec::new(),
            images: std::collections::BTreeMap::new(),
            applied_proposals: Vec::new(),
            applied_index: 0,
            next_tick_ms: 0,
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            errors: Vec::new(),
        };
        v.start(0, election_tick);
        v
    }

    /// Starts the voter over its store: the state machine is rebuilt by applying the committed
    /// log again (there are no snapshots here). raft-rs draws its election timeout from a
    /// thread-local generator; the simulation fixes it per start from its own seed instead
    /// (`election_tick` ticks, 20 to 39, as raft-rs would draw), so a seed replays exactly.
    pub fn start(&mut self, now_ms: i64, election_tick: usize) {
        let config = Config {
            id: self.id,
            election_tick: 20,
            min_election_tick: election_tick,
            max_election_tick: election_tick + 1,
            heartbeat_tick: 4,
            applied: 0,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            pre_vote: true,
            check_quorum: true,
            ..Config::default()
        };
        let node = RawNode::new(&config, self.storage.clone(), &self.logger)
            .expect("a valid raft config over a formatted store");
        self.node = Some(node);
        self.entries.clear();
        self.images.clear();
        self.applied_proposals.clear();
        self.applied_index = 0;
        self.next_tick_ms = now_ms + TICK_MS;
        let _ = &self.voters;
    }

    /// kill -9: the node goes, the store stays.
    pub fn crash(&mut self) {
        self.node = None;
    }

    /// Whether it runs.
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// Whether it leads.
    pub fn is_leader(&self) -> bool {
        self.node
            .as_ref()
            .is_some_and(|n| n.raft.state == StateRole::Leader)
    }

    /// The leader it knows of.
    pub fn leader(&self) -> Option<u64> {
        let l = self.node.as_ref()?.raft.leader_id;
        (l != raft::INVALID_ID).then_some(l)
    }

    /// The quorum's commit index as this voter knows it.
    pub fn commit_index(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.raft.raft_log.committed)
    }

    /// Its raft term.
    pub fn term(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.raft.term)
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.images
            .values()
            .next_back()
            .cloned()
            .unwrap_or_else(|| Arc::new(MetadataImage::empty()))
    }

    /// Proposes `data` with `context` (leader only).
    pub fn propose(&mut self, context: Vec<u8>, data: Vec<u8>) -> bool {
        match self.node.as_mut() {
            Some(n) if n.raft.state == StateRole::Leader => n.propose(context, data).is_ok(),
            _ => false,
        }
    }

    /// A raft message from another voter.
    pub fn step(&mut self, m: RaftMessage) {
        if let Some(n) = self.node.as_mut() {
            // Messages from an old term or a stranger are dropped by raft; nothing to report.
            let _ = n.step(m);
        }
    }

    /// Ticks as due, then processes the `Ready`; returns the messages to send.
    pub fn drive(&mut self, now_ms: i64) -> Vec<RaftMessage> {
        let Some(node) = self.node.as_mut() else {
            return Vec::new();
        };
        while now_ms >= self.next_tick_ms {
            node.tick();
            self.next_tick_ms += TICK_MS;
        }
        self.on_ready()
    }

    fn on_ready(&mut self) -> Vec<RaftMessage> {
        let mut out = Vec::new();
        let Some(node) = self.node.as_mut() else {
            return out;
        };
        if !node.has_ready() {
            return out;
        }
        let mut ready = node.ready();
        out.extend(ready.take_messages());
        assert!(
            ready.snapshot().is_empty(),
            "voter {}: no snapshots are taken in the simulation",
            self.id
        );
        let committed = ready.take_committed_entries();
        if !ready.entries().is_empty() {
            self.storage
                .wl()
                .append(ready.entries())
                .expect("entries follow the log");
        }
        if let Some(hs) = ready.hs() {
            self.storage.wl().set_hardstate(hs.clone());
        }
        out.extend(ready.take_persisted_messages());
        let mut light = node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().set_commit(commit);
        }
        out.extend(light.take_messages());
        let more = light.take_committed_entries();
        node.advance_apply();
        self.apply(committed);
        self.apply(more);
        out
    }

    /// The state machine: a metadata entry is replayed into the next image.
    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            self.applied_index = self.applied_index.max(e.index);
            if e.get_entry_type() != EntryType::EntryNormal || e.data.is_empty() {
                continue;
            }
            let offset = e.index as i64;
            let records = match decode_batch(&e.data) {
                Ok(r) => r,
                Err(err) => {
                    self.errors
                        .push(format!("voter {}: entry {offset}: {err}", self.id));
                    continue;
                }
            };
            let mut delta = MetadataDelta::new(self.image());
            for r in &records {
                if let Err(err) = delta.replay(offset, r) {
                    self.errors.push(format!(
                        "voter {}: record at {offset} does not replay: {err}",
                        self.id
                    ));
                }
            }
            let mut image = delta.apply();
            image.offset = offset;
            self.images.insert(offset, Arc::new(image));
            self.entries.push((offset, records));
            if !e.context.is_empty() {
                self.applied_proposals.push((e.context.to_vec(), e.index));
            }
        }
    }
}
