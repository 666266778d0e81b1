//! Transactional copy loops: Kafka's consume-transform-produce with exactly-once semantics, as
//! a Kafka Streams task or a `sendOffsetsToTransaction` loop does it. Each session starts with
//! InitProducerId for its transactional id (fencing any earlier session and aborting its open
//! transaction), fetches the group's committed offset of its input partition, then repeats:
//! read records (read_committed), AddPartitionsToTxn for the output, produce them there as one
//! transactional batch, AddOffsetsToTxn, TxnOffsetCommit of the next input offset, EndTxn. Most
//! transactions commit; some abort, and the loop then reads again from its committed offset.
//! A fatal error (fenced, a timeout's abort) starts a new session, as an application
//! recreates its producer. A restart forgets everything but the transactional id.

use std::collections::BTreeMap;

use bytes::Bytes;
use odradek_common::ErrorCode;
use odradek_log::records::{encode_producer_batch, Compression, NewRecord, ProducerBatch};

use crate::message::{Message, Node, ProducerIdEpoch, TopicPartition};
use crate::rng::SimRng;

/// `transaction.timeout.ms` of the copy loops (scaled down from Kafka's 60 s).
pub const TRANSACTION_TIMEOUT_MS: i32 = 4000;

/// Records copied per transaction, at most.
const MAX_RECORDS_PER_TXN: usize = 10;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Init,
    FetchOffset,
    Read,
    AddOutput,
    Produce,
    AddOffsets,
    CommitOffsets,
    End,
}

/// The open transaction.
#[derive(Debug, Clone)]
struct Txn {
    /// The input offset after the records copied.
    next_offset: i64,
    /// The transactional batch of copies (kept for retries: the same sequence).
    batch: Option<Bytes>,
    records: i32,
    commit: bool,
}

/// One copy loop.
#[derive(Debug)]
pub struct Copier {
    /// Its index (`Node::Copier(index)`).
    pub index: usize,
    /// Its `transactional.id`.
    pub transactional_id: String,
    /// Its consumer group.
    pub group: String,
    /// The partition it copies from.
    pub input: TopicPartition,
    /// The partition it copies to.
    pub output: TopicPartition,
    output_topic: String,
    offsets_topic: String,
    /// `__consumer_offsets`-0 (its group's coordinator leads it).
    offsets: TopicPartition,
    /// `__transaction_state`-0 (its transaction coordinator leads it).
    txn_state: TopicPartition,
    leaders: BTreeMap<TopicPartition, i32>,
    next_ask_ms: i64,
    /// The session's producer id and epoch.
    producer: Option<ProducerIdEpoch>,
    /// The producer id its transactional id was given (kept across sessions and restarts).
    pub producer_id: Option<i64>,
    sequence: i32,
    position: Option<i64>,
    committed_position: Option<i64>,
    phase: Phase,
    txn: Option<Txn>,
    /// (request id, sent at, the partition whose leader it went to).
    in_flight: Option<(u64, i64, TopicPartition)>,
    next_request_id: u64,
    next_action_ms: i64,
    timeout_ms: i64,
    /// Input offsets up to which a commit was acknowledged (EndTxn answered), in order.
    pub acknowledged_commits: Vec<i64>,
    /// Transactions committed and aborted (acknowledged), sessions started.
    pub commits: u64,
    /// Aborts acknowledged.
    pub aborts: u64,
    /// Sessions started (InitProducerId answered).
    pub sessions: u64,
    /// Why the last session ended, for the trace.
    pub ended_by: Option<String>,
}

/// Errors after which the same call is retried (a coordinator or leader moved, or is busy).
fn retriable(code: i16) -> bool {
    [
        ErrorCode::NotCoordinator,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::ConcurrentTransactions,
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::RequestTimedOut,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::KafkaStorageError,
        ErrorCode::UnknownTopicOrPartition,
    ]
    .iter()
    .any(|c| c.code() == code)
        || code == 88 // UNSTABLE_OFFSET_COMMIT
}

impl Copier {
    /// Copy loop `index`, copying `input` to `output` (of topic `output_topic`) in `group`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        input: TopicPartition,
        output: TopicPartition,
        output_topic: &str,
        offsets: TopicPartition,
        txn_state: TopicPartition,
        timeout_ms: i64,
    ) -> Self {
        Self {
            index,
            transactional_id: format!("copier-{index}"),
            group: format!("copier-group-{index}"),
            input,
            output,
            output_topic: output_topic.to_string(),
            offsets_topic: odradek_coordinator::OFFSETS_TOPIC.to_string(),
            offsets,
            txn_state,
            leaders: BTreeMap::new(),
            next_ask_ms: 0,
            producer: None,
            producer_id: None,
            sequence: 0,
            position: None,
            committed_position: None,
            phase: Phase::Init,
            txn: None,
            in_flight: None,
            next_request_id: 0,
            next_action_ms: 0,
            timeout_ms,
            acknowledged_commits: Vec::new(),
            commits: 0,
            aborts: 0,
            sessions: 0,
            ended_by: None,
        }
    }

    /// The process restarts: it keeps only its transactional id and group.
    pub fn restart(&mut self) {
        self.ended_by = Some("restart".into());
        self.new_session(0);
        self.leaders.clear();
    }

    /// A new session: InitProducerId again (fencing this one), then the committed offset.
    fn new_session(&mut self, now: i64) {
        self.phase = Phase::Init;
        self.producer = None;
        self.sequence = 0;
        self.position = None;
        self.committed_position = None;
        self.txn = None;
        self.in_flight = None;
        self.next_action_ms = now;
    }

    /// Whether it is inside a transaction (the quiet end waits for it to end).
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    fn destination(&self) -> TopicPartition {
        match self.phase {
            Phase::Init | Phase::AddOutput | Phase::AddOffsets | Phase::End => self.txn_state,
            Phase::FetchOffset | Phase::CommitOffsets => self.offsets,
            Phase::Read => self.input,
            Phase::Produce => self.output,
        }
    }

    /// Sends what is due. `stop_new` keeps it from opening new transactions.
    pub fn tick(
        &mut self,
        now: i64,
        brokers: &[i32],
        stop_new: bool,
        rng: &mut SimRng,
    ) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        if let Some((_, sent, to)) = self.in_flight {
            if now - sent <= self.timeout_ms {
                return out;
            }
            // No answer: the leader may be gone; ask again and resend.
            self.in_flight = None;
            self.leaders.remove(&to);
        }
        if now < self.next_action_ms {
            return out;
        }
        if stop_new && self.phase == Phase::Read && self.txn.is_none() {
            return out;
        }
        let to = self.destination();
        let Some(&leader) = self.leaders.get(&to) else {
            if now >= self.next_ask_ms {
                self.next_ask_ms = now + 100;
                out.push((Node::Broker(*rng.pick(brokers)), Message::WhoLeads(to)));
            }
            return out;
        };
        let Some(message) = self.request(now) else {
            return out;
        };
        out.push((Node::Broker(leader), message));
        out
    }

    fn request(&mut self, now: i64) -> Option<Message> {
        self.next_request_id += 1;
        let request_id = self.next_request_id;
        let producer = self.producer.unwrap_or((-1, -1));
        let message = match self.phase {
            Phase::Init => Message::InitProducerId {
                request_id,
                transactional_id: self.transactional_id.clone(),
                expected: (-1, -1),
                timeout_ms: TRANSACTION_TIMEOUT_MS,
            },
            Phase::FetchOffset => Message::OffsetFetch {
                request_id,
                group: self.group.clone(),
                partition: self.input,
            },
            Phase::Read => Message::ConsumerFetch {
                request_id,
                partition: self.input,
                offset: self.position?,
                read_committed: true,
            },
            Phase::AddOutput | Phase::AddOffsets => Message::AddPartitionsToTxn {
                request_id,
                transactional_id: self.transactional_id.clone(),
                producer,
                partitions: vec![if self.phase == Phase::AddOutput {
                    (self.output_topic.clone(), self.output.1)
                } else {
                    (self.offsets_topic.clone(), self.offsets.1)
                }],
            },
            Phase::Produce => Message::Produce {
                request_id,
                partition: self.output,
                batch: self.txn.as_ref()?.batch.clone()?,
            },
            Phase::CommitOffsets => Message::TxnOffsetCommit {
                request_id,
                group: self.group.clone(),
                producer,
                partition: self.input,
                offset: self.txn.as_ref()?.next_offset,
            },
            Phase::End => Message::EndTxn {
                request_id,
                transactional_id: self.transactional_id.clone(),
                producer,
                commit: self.txn.as_ref()?.commit,
            },
        };
        self.in_flight = Some((request_id, now, self.destination()));
        Some(message)
    }

    /// Handles an answer.
    pub fn handle(&mut self, now: i64, message: Message, rng: &mut SimRng) {
        if let Message::Leader(tp, leader) = message {
            if leader >= 0 {
                self.leaders.insert(tp, leader);
            }
            return;
        }
        let (request_id, code) = match &message {
            Message::InitProducerIdAnswer { request_id, result } => {
                (*request_id, result.err().unwrap_or(0))
            }
            Message::OffsetFetchAnswer { request_id, result } => {
                (*request_id, result.err().unwrap_or(0))
            }
            Message::ConsumerFetchAnswer { request_id, result } => {
                (*request_id, result.as_ref().err().copied().unwrap_or(0))
            }
            Message::TxnAnswer {
                request_id,
                error_code,
            }
            | Message::OffsetCommitAnswer {
                request_id,
                error_code,
            } => (*request_id, *error_code),
            Message::ProduceAnswer { request_id, result } => {
                (*request_id, result.err().unwrap_or(0))
            }
            _ => return,
        };
        let Some((expected, _, to)) = self.in_flight else {
            return;
        };
        if request_id != expected {
            return;
        }
        self.in_flight = None;
        if code != 0 {
            if retriable(code) || matches!(self.phase, Phase::Init | Phase::FetchOffset) {
                if code != ErrorCode::ConcurrentTransactions.code() && code != 88 {
                    self.leaders.remove(&to);
                }
                self.next_action_ms = now + 50;
            } else {
                // Fenced, or the transaction was aborted under it: a new session.
                self.ended_by = Some(format!("{:?} answered {code}", self.phase));
                self.new_session(now + 50);
            }
            return;
        }
        match message {
            Message::InitProducerIdAnswer {
                result: Ok(producer),
                ..
            } => {
                self.producer = Some(producer);
                self.producer_id = Some(producer.0);
                self.sequence = 0;
                self.sessions += 1;
                self.phase = Phase::FetchOffset;
            }
            Message::OffsetFetchAnswer {
                result: Ok((offset, _)),
                ..
            } => {
                let offset = offset.unwrap_or(0);
                self.position = Some(offset);
                self.committed_position = Some(offset);
                self.phase = Phase::Read;
            }
            Message::ConsumerFetchAnswer {
                result: Ok((bytes, _)),
                ..
            } => self.on_records(now, bytes, rng),
            Message::TxnAnswer { .. } if self.phase == Phase::AddOutput => {
                self.phase = Phase::Produce;
            }
            Message::ProduceAnswer { .. } => {
                if let Some(t) = &self.txn {
                    self.sequence += t.records;
                }
                self.phase = Phase::AddOffsets;
            }
            Message::TxnAnswer { .. } if self.phase == Phase::AddOffsets => {
                self.phase = Phase::CommitOffsets;
            }
            Message::OffsetCommitAnswer { .. } => self.phase = Phase::End,
            Message::TxnAnswer { .. } if self.phase == Phase::End => {
                let Some(t) = self.txn.take() else { return };
                if t.commit {
                    self.commits += 1;
                    self.acknowledged_commits.push(t.next_offset);
                    self.committed_position = Some(t.next_offset);
                } else {
                    self.aborts += 1;
                    self.position = self.committed_position;
                }
                self.phase = Phase::Read;
            }
            _ => {}
        }
    }

    /// Records read: up to a few of them are copied in a new transaction.
    fn on_records(&mut self, now: i64, bytes: Bytes, rng: &mut SimRng) {
        let (Some(position), Some((producer_id, producer_epoch))) = (self.position, self.producer)
        else {
            return;
        };
        let records = odradek_log::records::decode_batches(bytes).unwrap_or_default();
        let taken: Vec<_> = records
            .iter()
            .filter(|r| !r.control && r.offset >= position)
            .take(MAX_RECORDS_PER_TXN)
            .collect();
        let Some(last) = taken.last().map(|r| r.offset) else {
            // Nothing new yet.
            self.next_action_ms = now + 20;
            return;
        };
        let copies: Vec<NewRecord> = taken
            .iter()
            .map(|r| {
                let mut v = format!("{}:", r.offset).into_bytes();
                v.extend_from_slice(r.value.as_deref().unwrap_or_default());
                NewRecord::value(v, now)
            })
            .collect();
        let batch = encode_producer_batch(
            &copies,
            Compression::None,
            ProducerBatch {
                producer_id,
                producer_epoch,
                base_sequence: self.sequence,
                transactional: true,
            },
        )
        .ok();
        self.position = Some(last + 1);
        self.txn = Some(Txn {
            next_offset: last + 1,
            batch,
            records: copies.len() as i32,
            commit: rng.chance(0.8),
        });
        self.phase = Phase::AddOutput;
    }
}

/// The input offset a copy was made from (its value starts with `offset:`).
pub fn copied_from(value: &[u8]) -> Option<i64> {
    let end = value.iter().position(|b| *b == b':')?;
    std::str::from_utf8(&value[..end]).ok()?.parse().ok()
}
