//! A simulated controller node: a quorum voter ([`crate::quorum`]) and, while that voter
//! leads, the active controller of `odradek-controller`'s `active.rs`: commands run one at a
//! time against the latest applied image through the real control managers (registration,
//! heartbeats, fencing, AlterPartition, topic creation), their records are proposed as one
//! entry, and the answer goes out once the entry is applied. Broker sessions live only in the
//! active controller's memory; a voter that becomes leader gives every broker a fresh session.
//! Any controller serves committed metadata to brokers.

use std::collections::VecDeque;
use std::sync::Arc;

use odradek_common::Uuid;
use odradek_controller::managers::cluster::{self, BrokerSessions};
use odradek_controller::managers::{replication, ControllerResult, ControllerSettings};
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{encode_batch, MetadataImage};

use crate::message::{Message, Node};
use crate::quorum::SimVoter;
use crate::rng::SimRng;

/// Entries sent per metadata fetch.
const MAX_ENTRIES_PER_FETCH: usize = 64;

/// How often expired broker sessions are fenced (the real controller's 500 ms tick).
const FENCE_CHECK_MS: i64 = 500;

/// Commands waiting for the one in flight, at most.
const MAX_QUEUED: usize = 256;

/// A command's records proposed, its answer waiting for them to be applied.
#[derive(Debug)]
struct InFlight {
    context: Vec<u8>,
    reply_to: Option<Node>,
    answer: Message,
}

/// One controller node.
#[derive(Debug)]
pub struct SimController {
    /// The quorum voter.
    pub voter: SimVoter,
    settings: ControllerSettings,
    sessions: BrokerSessions,
    was_leader: bool,
    in_flight: Option<InFlight>,
    queue: VecDeque<(Node, Message)>,
    proposals: u64,
    next_fence_check_ms: i64,
    rng: SimRng,
}

impl SimController {
    /// Controller `id` of the quorum `voters`.
    pub fn new(id: u64, voters: Vec<u64>, settings: ControllerSettings, seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let election_tick = rng.between(20, 39) as usize;
        Self {
            voter: SimVoter::new(id, voters, election_tick),
            settings,
            sessions: BrokerSessions::default(),
            was_leader: false,
            in_flight: None,
            queue: VecDeque::new(),
            proposals: 0,
            next_fence_check_ms: 0,
            rng,
        }
    }

    /// Its node.
    pub fn node(&self) -> Node {
        Node::Controller(self.voter.id)
    }

    /// kill -9: the voter's store stays; the active controller's memory goes.
    pub fn crash(&mut self) {
        self.voter.crash();
        self.sessions = BrokerSessions::default();
        self.was_leader = false;
        self.in_flight = None;
        self.queue.clear();
    }

    /// Starts again over its store.
    pub fn restart(&mut self, now_ms: i64) {
        let election_tick = self.rng.between(20, 39) as usize;
        self.voter.start(now_ms, election_tick);
    }

    /// Handles a message; returns what to send.
    pub fn handle(&mut self, now_ms: i64, from: Node, message: Message) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        if !self.voter.is_up() {
            return out;
        }
        match message {
            Message::Raft(m) => self.voter.step(*m),
            Message::FetchMetadata { from_offset } => {
                // A voter that knows no leader may serve a log that moved on without it: the
                // broker goes elsewhere (the real service ends such a stream).
                if self.voter.leader().is_none() {
                    out.push((from, Message::NotController { leader: None }));
                    return out;
                }
                let entries: Vec<_> = self
                    .voter
                    .entries
                    .iter()
                    .filter(|(o, _)| *o >= from_offset)
                    .take(MAX_ENTRIES_PER_FETCH)
                    .cloned()
                    .collect();
                let through = if entries.len() == MAX_ENTRIES_PER_FETCH {
                    entries.last().map_or(0, |(o, _)| *o)
                } else {
                    self.voter.applied_index as i64
                };
                out.push((
                    from,
                    Message::Metadata {
                        entries,
                        through,
                        committed: self.voter.commit_index() as i64,
                    },
                ));
            }
            m @ (Message::Register(_)
            | Message::Heartbeat(_)
            | Message::AlterPartition(_)
            | Message::CreateTopics(_)) => {
                self.follow_leadership(now_ms, &mut out);
                if !self.voter.is_leader() {
                    out.push((
                        from,
                        Message::NotController {
                            leader: self.voter.leader(),
                        },
                    ));
                } else if self.queue.len() < MAX_QUEUED {
                    self.queue.push_back((from, m));
                }
                self.run_commands(now_ms, &mut out);
            }
            _ => {}
        }
        out
    }

    /// Raft ticks and `Ready`, leadership changes, answers of applied commands, fencing.
    pub fn tick(&mut self, now_ms: i64) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        if !self.voter.is_up() {
            return out;
        }
        for m in self.voter.drive(now_ms) {
            out.push((Node::Controller(m.to), Message::Raft(Box::new(m))));
        }
        self.follow_leadership(now_ms, &mut out);
        let leader = self.voter.is_leader();
        let applied = std::mem::take(&mut self.voter.applied_proposals);
        if let Some(f) = &self.in_flight {
            if applied.iter().any(|(c, _)| *c == f.context) {
                let f = self.in_flight.take().expect("checked above");
                out.extend(f.reply_to.map(|to| (to, f.answer)));
            }
        }
        if leader && self.in_flight.is_none() && now_ms >= self.next_fence_check_ms {
            self.next_fence_check_ms = now_ms + FENCE_CHECK_MS;
            let records =
                cluster::fence_expired(&self.voter.image(), &self.sessions, &self.settings, now_ms);
            self.propose(records, None, Message::NotController { leader: None });
        }
        self.run_commands(now_ms, &mut out);
        out
    }

    /// Becoming active resets every broker's session before any command runs (as `active.rs`
    /// does at the top of its loop); losing it answers what waits NOT_CONTROLLER.
    fn follow_leadership(&mut self, now_ms: i64, out: &mut Vec<(Node, Message)>) {
        let leader = self.voter.is_leader();
        if leader && !self.was_leader {
            self.sessions.reset(&self.voter.image(), now_ms);
            self.next_fence_check_ms = now_ms + FENCE_CHECK_MS;
        }
        if !leader && self.was_leader {
            // Proposals of a deposed leader may or may not commit: their callers retry.
            let hint = self.voter.leader();
            if let Some(f) = self.in_flight.take() {
                out.extend(
                    f.reply_to
                        .map(|to| (to, Message::NotController { leader: hint })),
                );
            }
            for (to, _) in self.queue.drain(..) {
                out.push((to, Message::NotController { leader: hint }));
            }
        }
        self.was_leader = leader;
    }

    /// Runs queued commands, one at a time, each against the image the previous one made.
    fn run_commands(&mut self, now_ms: i64, out: &mut Vec<(Node, Message)>) {
        while self.in_flight.is_none() {
            let Some((from, command)) = self.queue.pop_front() else {
                return;
            };
            let image = self.voter.image();
            let (records, answer) = self.command(&image, from, command, now_ms);
            if records.is_empty() {
                out.push((from, answer));
            } else if !self.propose(records, Some(from), answer) {
                out.push((
                    from,
                    Message::NotController {
                        leader: self.voter.leader(),
                    },
                ));
            }
        }
    }

    fn command(
        &mut self,
        image: &Arc<MetadataImage>,
        from: Node,
        command: Message,
        now_ms: i64,
    ) -> (Vec<MetadataRecord>, Message) {
        fn split<T>(
            r: ControllerResult<T>,
            wrap: impl FnOnce(T) -> Message,
        ) -> (Vec<MetadataRecord>, Message) {
            (r.records, wrap(r.response))
        }
        let _ = from;
        match command {
            Message::Register(req) => {
                let r =
                    cluster::register_broker(image, &req, &self.settings, &self.sessions, now_ms);
                if r.response.error_code == 0 {
                    self.sessions.touch(req.broker_id, now_ms);
                }
                split(r, Message::Registered)
            }
            Message::Heartbeat(req) => {
                let r = cluster::heartbeat(image, &req, &self.settings);
                if r.response.error_code == 0 {
                    self.sessions.touch(req.broker_id, now_ms);
                }
                split(r, Message::HeartbeatAnswer)
            }
            Message::AlterPartition(req) => {
                let r = replication::alter_partition(image, &req);
                split(r, |resp| Message::AlterPartitionAnswer(req, resp))
            }
            Message::CreateTopics(req) => {
                let rng = &mut self.rng;
                let r = replication::create_topics(image, &req, &self.settings, &mut || {
                    Uuid(rng.bytes16())
                });
                split(r, Message::CreateTopicsAnswer)
            }
            other => (Vec::new(), other),
        }
    }

    /// Proposes `records` as one entry; false if this voter cannot propose.
    fn propose(
        &mut self,
        records: Vec<MetadataRecord>,
        reply_to: Option<Node>,
        answer: Message,
    ) -> bool {
        if records.is_empty() {
            return true;
        }
        self.proposals += 1;
        let mut context = self.voter.id.to_be_bytes().to_vec();
        context.extend_from_slice(&self.voter.term().to_be_bytes());
        context.extend_from_slice(&self.proposals.to_be_bytes());
        if !self.voter.propose(context.clone(), encode_batch(&records)) {
            return false;
        }
        self.in_flight = Some(InFlight {
            context,
            reply_to,
            answer,
        });
        true
    }
}
