//! Consumers of a group, each assigned one partition (Kafka's `assign()`): on start it asks the
//! group's coordinator for the committed offset (OffsetFetch), reads from there in order below
//! the high watermark, and commits its position every so often (OffsetCommit, acknowledged
//! once the commit is in the offsets topic's ISR). A consumer may restart, forgetting its
//! position; it then resumes from the committed offset, reading some records again (at least
//! once), never skipping any.

use bytes::Bytes;
use odradek_log::BatchHeader;

use crate::message::{Message, Node, TopicPartition};
use crate::rng::SimRng;

/// How often a consumer commits its position.
const COMMIT_INTERVAL_MS: i64 = 400;

/// What a consumer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Nothing,
    /// OffsetFetch.
    CommittedOffset {
        request_id: u64,
        sent_ms: i64,
    },
    Records {
        request_id: u64,
        sent_ms: i64,
    },
}

/// What a consumer saw that the checker must judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Batches read at `position`, in order.
    Read {
        /// Its position when they arrived.
        position: i64,
        /// Their headers.
        batches: Vec<BatchHeader>,
    },
    /// The coordinator answered OffsetFetch with `offset`; before the fetch was sent, the
    /// latest commit acknowledged was `acknowledged`, and `unanswered` commits had been sent
    /// without an acknowledgement (any of them may still land after it, as a zombie's would).
    Fetched {
        /// The committed offset returned.
        offset: Option<i64>,
        /// The latest commit acknowledged before.
        acknowledged: Option<i64>,
        /// Commits sent and never acknowledged, before.
        unanswered: Vec<i64>,
        /// The `__consumer_offsets` leader epoch the answering coordinator was loaded under.
        coordinator_epoch: i32,
    },
    /// A commit of `offset` was acknowledged by coordinator `broker`.
    Committed {
        /// The offset committed.
        offset: i64,
        /// The broker that answered.
        broker: i32,
    },
}

/// One consumer.
#[derive(Debug)]
pub struct Consumer {
    /// Its index (`Node::Consumer(index)`).
    pub index: usize,
    /// Its group.
    pub group: String,
    partition: TopicPartition,
    offsets_partition: TopicPartition,
    position: Option<i64>,
    leader: Option<i32>,
    coordinator: Option<i32>,
    waiting: Waiting,
    commit_in_flight: Option<(u64, i64, i64)>,
    next_commit_ms: i64,
    next_ask_ms: i64,
    next_request_id: u64,
    timeout_ms: i64,
    /// The latest commit acknowledged to it (any incarnation).
    pub acknowledged_commit: Option<i64>,
    /// Commits sent and not acknowledged (any incarnation), by request id.
    unanswered_commits: std::collections::BTreeMap<u64, i64>,
    /// What was known of commits when the pending OffsetFetch was sent.
    fetch_snapshot: (Option<i64>, Vec<i64>),
    /// Batches read.
    pub batches_read: u64,
    /// Restarts.
    pub restarts: u64,
    /// `isolation.level=read_committed`.
    read_committed: bool,
    /// Transactional data batches handed to the application: (base offset, producer id).
    pub delivered_transactional: Vec<(i64, i64)>,
}

impl Consumer {
    /// Consumer `index` of `group`, reading `partition`; the group's coordinator leads
    /// `offsets_partition`.
    pub fn new(
        index: usize,
        group: &str,
        partition: TopicPartition,
        offsets_partition: TopicPartition,
        timeout_ms: i64,
    ) -> Self {
        Self {
            index,
            group: group.to_string(),
            partition,
            offsets_partition,
            position: None,
            leader: None,
            coordinator: None,
            waiting: Waiting::Nothing,
            commit_in_flight: None,
            next_commit_ms: 0,
            next_ask_ms: 0,
            next_request_id: 0,
            timeout_ms,
            acknowledged_commit: None,
            unanswered_commits: std::collections::BTreeMap::new(),
            fetch_snapshot: (None, Vec::new()),
            batches_read: 0,
            restarts: 0,
            read_committed: false,
            delivered_transactional: Vec::new(),
        }
    }

    /// With `isolation.level=read_committed`: it reads below the last stable offset and drops
    /// the batches of aborted transactions, as Kafka's consumer does.
    pub fn read_committed(mut self) -> Self {
        self.read_committed = true;
        self
    }

    /// Its partition.
    pub fn partition(&self) -> TopicPartition {
        self.partition
    }

    /// The partition of `__consumer_offsets` its group's coordinator leads.
    pub fn offsets_partition(&self) -> TopicPartition {
        self.offsets_partition
    }

    /// The process restarts: its position and requests are forgotten.
    pub fn restart(&mut self) {
        self.position = None;
        self.waiting = Waiting::Nothing;
        self.commit_in_flight = None;
        self.restarts += 1;
    }

    fn request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    /// Sends what is due.
    pub fn tick(&mut self, now: i64, brokers: &[i32], rng: &mut SimRng) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        // Unanswered requests are given up after the timeout (the broker may be gone).
        match self.waiting {
            Waiting::CommittedOffset { sent_ms, .. } | Waiting::Records { sent_ms, .. }
                if now - sent_ms > self.timeout_ms =>
            {
                self.waiting = Waiting::Nothing;
                self.leader = None;
                self.coordinator = None;
            }
            _ => {}
        }
        if self
            .commit_in_flight
            .is_some_and(|(_, sent, _)| now - sent > self.timeout_ms)
        {
            self.commit_in_flight = None;
            self.coordinator = None;
        }
        if (self.coordinator.is_none() || self.leader.is_none()) && now >= self.next_ask_ms {
            self.next_ask_ms = now + 100;
            let broker = *rng.pick(brokers);
            let tp = if self.coordinator.is_none() {
                self.offsets_partition
            } else {
                self.partition
            };
            out.push((Node::Broker(broker), Message::WhoLeads(tp)));
        }
        if self.waiting == Waiting::Nothing {
            match (self.position, self.coordinator, self.leader) {
                (None, Some(coordinator), _) => {
                    let request_id = self.request_id();
                    self.waiting = Waiting::CommittedOffset {
                        request_id,
                        sent_ms: now,
                    };
                    self.fetch_snapshot = (
                        self.acknowledged_commit,
                        self.unanswered_commits.values().copied().collect(),
                    );
                    out.push((
                        Node::Broker(coordinator),
                        Message::OffsetFetch {
                            request_id,
                            group: self.group.clone(),
                            partition: self.partition,
                        },
                    ));
                }
                (Some(offset), _, Some(leader)) => {
                    let request_id = self.request_id();
                    self.waiting = Waiting::Records {
                        request_id,
                        sent_ms: now,
                    };
                    out.push((
                        Node::Broker(leader),
                        Message::ConsumerFetch {
                            request_id,
                            partition: self.partition,
                            offset,
                            read_committed: self.read_committed,
                        },
                    ));
                }
                _ => {}
            }
        }
        if let (Some(position), Some(coordinator), None) =
            (self.position, self.coordinator, self.commit_in_flight)
        {
            if now >= self.next_commit_ms {
                self.next_commit_ms = now + COMMIT_INTERVAL_MS;
                let request_id = self.request_id();
                self.commit_in_flight = Some((request_id, now, position));
                self.unanswered_commits.insert(request_id, position);
                out.push((
                    Node::Broker(coordinator),
                    Message::OffsetCommit {
                        request_id,
                        group: self.group.clone(),
                        partition: self.partition,
                        offset: position,
                    },
                ));
            }
        }
        out
    }

    /// Handles an answer; returns what the checker must judge.
    pub fn handle(&mut self, now: i64, from: Node, message: Message) -> Option<Observation> {
        match message {
            Message::Leader(tp, leader) if leader >= 0 => {
                if tp == self.offsets_partition {
                    self.coordinator = Some(leader);
                }
                if tp == self.partition {
                    self.leader = Some(leader);
                }
                None
            }
            Message::OffsetFetchAnswer { request_id, result } => {
                let Waiting::CommittedOffset {
                    request_id: expected,
                    ..
                } = self.waiting
                else {
                    return None;
                };
                if request_id != expected {
                    return None;
                }
                self.waiting = Waiting::Nothing;
                match result {
                    Ok((offset, coordinator_epoch)) => {
                        self.position = Some(offset.unwrap_or(0));
                        let (acknowledged, unanswered) = std::mem::take(&mut self.fetch_snapshot);
                        Some(Observation::Fetched {
                            offset,
                            acknowledged,
                            unanswered,
                            coordinator_epoch,
                        })
                    }
                    Err(_) => {
                        self.coordinator = None;
                        self.next_ask_ms = now + 50;
                        None
                    }
                }
            }
            Message::ConsumerFetchAnswer { request_id, result } => {
                let Waiting::Records {
                    request_id: expected,
                    ..
                } = self.waiting
                else {
                    return None;
                };
                if request_id != expected {
                    return None;
                }
                self.waiting = Waiting::Nothing;
                let position = self.position?;
                match result {
                    Ok((bytes, aborted)) => {
                        let batches = headers(&bytes);
                        if let Some(last) = batches.last() {
                            self.position = Some(last.next_offset());
                            self.batches_read += batches.len() as u64;
                        }
                        if self.read_committed {
                            let delivered = deliverable(&bytes, &aborted);
                            self.delivered_transactional.extend(delivered);
                        }
                        Some(Observation::Read { position, batches })
                    }
                    Err(_) => {
                        self.leader = None;
                        self.next_ask_ms = now + 50;
                        None
                    }
                }
            }
            Message::OffsetCommitAnswer {
                request_id,
                error_code,
            } => {
                let (expected, _, offset) = self.commit_in_flight?;
                if request_id != expected {
                    return None;
                }
                self.commit_in_flight = None;
                if error_code == 0 {
                    // An error leaves the commit unanswered: it may have been appended and
                    // still become committed.
                    self.acknowledged_commit = Some(offset);
                    self.unanswered_commits.remove(&request_id);
                    let Node::Broker(broker) = from else {
                        return None;
                    };
                    return Some(Observation::Committed { offset, broker });
                }
                self.coordinator = None;
                None
            }
            _ => None,
        }
    }
}

/// The headers of the whole batches in `bytes`.
fn headers(bytes: &Bytes) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(h) = bytes.get(at..).and_then(BatchHeader::parse) {
        let size = h.size() as usize;
        if at + size > bytes.len() {
            break;
        }
        at += size;
        out.push(h);
    }
    out
}

/// The transactional data batches of `bytes` a read_committed consumer hands to the
/// application, as Kafka's consumer decides (`CompletedFetch`): a producer id enters the
/// aborted set when the fetch's aborted list says its transaction began at or before the
/// batch's last offset, and leaves it at its abort marker; transactional batches of producers
/// in the set are dropped, control batches are never delivered.
fn deliverable(bytes: &Bytes, aborted: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut aborted = aborted.to_vec();
    aborted.sort_by_key(|(_, first)| *first);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborting = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(h) = bytes.get(at..).and_then(BatchHeader::parse) {
        let size = h.size() as usize;
        if at + size > bytes.len() {
            break;
        }
        let batch = bytes.slice(at..at + size);
        at += size;
        if h.producer_id >= 0 {
            while let Some((pid, _)) = aborted.next_if(|(_, first)| *first <= h.last_offset()) {
                aborting.insert(pid);
            }
            if h.is_control() {
                if is_abort_marker(batch) {
                    aborting.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() {
                if !aborting.contains(&h.producer_id) {
                    out.push((h.base_offset, h.producer_id));
                }
                continue;
            }
        }
    }
    out
}

/// Whether a control batch holds an abort marker (key: version, then type 0 abort / 1 commit).
fn is_abort_marker(batch: Bytes) -> bool {
    odradek_log::records::decode_batches(batch)
        .ok()
        .and_then(|records| records.into_iter().next())
        .and_then(|r| r.key)
        .is_some_and(|k| k.len() >= 4 && k[3] == 0)
}
