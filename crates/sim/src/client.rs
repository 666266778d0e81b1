//! Producers with acks=all: plain ones (a retry may duplicate a batch that was appended but
//! not acknowledged, as in Kafka) and idempotent ones (a producer id, an epoch and sequences,
//! so a retry is recognised and never duplicated). Each sends one batch at a time to the
//! partition's leader as some broker's metadata names it, retries on retriable errors and on
//! timeouts, and remembers every batch acknowledged to it: what the invariants check.

use bytes::Bytes;
use odradek_common::ErrorCode;
use odradek_log::records::{
    encode_batch, encode_producer_batch, Compression, NewRecord, ProducerBatch,
};
use odradek_log::BatchHeader;

use crate::message::{Message, Node, TopicPartition};
use crate::rng::SimRng;

/// A batch the cluster acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// Its base offset, as acknowledged.
    pub offset: i64,
    /// Its records.
    pub record_count: i32,
    /// Its CRC-32C (the leader rewrites only fields outside it).
    pub crc: u32,
    /// (producer id, base sequence) of an idempotent batch.
    pub sequence: Option<(i64, i32)>,
}

#[derive(Debug, Clone)]
struct InFlight {
    request_id: u64,
    batch: Bytes,
    header: BatchHeader,
    sent_ms: i64,
}

/// One producer, writing to one partition.
#[derive(Debug)]
pub struct Producer {
    /// Its index (its node is `Node::Client(index)`).
    pub index: usize,
    partition: TopicPartition,
    /// (producer id, epoch, next sequence) for an idempotent producer.
    idempotence: Option<(i64, i16, i32)>,
    batches: u64,
    next_request_id: u64,
    in_flight: Option<InFlight>,
    leader: Option<i32>,
    next_send_ms: i64,
    asked_leader_ms: i64,
    timeout_ms: i64,
    /// Acknowledged batches, in order.
    pub acked: Vec<Acked>,
    /// Batches given up on (a non-retriable error), with the error.
    pub failed: Vec<(i64, i16)>,
    /// Retries sent.
    pub retries: u64,
}

/// Errors after which the same batch is sent again (to the leader as metadata names it).
fn retriable(code: i16) -> bool {
    [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::NotEnoughReplicas,
        ErrorCode::NotEnoughReplicasAfterAppend,
        ErrorCode::RequestTimedOut,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::KafkaStorageError,
    ]
    .iter()
    .any(|c| c.code() == code)
}

impl Producer {
    /// A producer writing to `partition`; idempotent with `producer_id` if given.
    pub fn new(
        index: usize,
        partition: TopicPartition,
        producer_id: Option<i64>,
        timeout_ms: i64,
    ) -> Self {
        Self {
            index,
            partition,
            idempotence: producer_id.map(|id| (id, 0, 0)),
            batches: 0,
            next_request_id: 0,
            in_flight: None,
            leader: None,
            next_send_ms: 0,
            asked_leader_ms: i64::MIN / 2,
            timeout_ms,
            acked: Vec::new(),
            failed: Vec::new(),
            retries: 0,
        }
    }

    /// The partition it writes to.
    pub fn partition(&self) -> TopicPartition {
        self.partition
    }

    /// Whether a batch is waiting for its answer.
    pub fn is_waiting(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Sends a new batch, a retry, or a metadata request, as due. `stop_new` keeps it from
    /// starting new batches (the quiet end of a run).
    pub fn tick(
        &mut self,
        now: i64,
        brokers: &[i32],
        stop_new: bool,
        rng: &mut SimRng,
    ) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        if now < self.next_send_ms {
            return out;
        }
        let Some(leader) = self.leader else {
            if now - self.asked_leader_ms > 100 {
                self.asked_leader_ms = now;
                let broker = *rng.pick(brokers);
                out.push((Node::Broker(broker), Message::WhoLeads(self.partition)));
            }
            return out;
        };
        let retry = match &self.in_flight {
            Some(f) if now - f.sent_ms > self.timeout_ms => {
                self.leader = None;
                self.retries += 1;
                true
            }
            Some(_) => return out,
            None if stop_new => return out,
            None => {
                self.in_flight = Some(self.new_batch(now, rng));
                false
            }
        };
        if retry {
            // Ask who leads now; the batch goes again once it is known.
            return out;
        }
        self.send(now, leader, &mut out);
        out
    }

    fn send(&mut self, now: i64, leader: i32, out: &mut Vec<(Node, Message)>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        self.next_request_id += 1;
        f.request_id = self.next_request_id;
        f.sent_ms = now;
        out.push((
            Node::Broker(leader),
            Message::Produce {
                request_id: f.request_id,
                partition: self.partition,
                batch: f.batch.clone(),
            },
        ));
    }

    fn new_batch(&mut self, now: i64, rng: &mut SimRng) -> InFlight {
        self.batches += 1;
        let n = rng.between(1, 3);
        let records: Vec<NewRecord> = (0..n)
            .map(|i| NewRecord::value(format!("p{}-{}-{i}", self.index, self.batches), now))
            .collect();
        let batch = match self.idempotence {
            Some((producer_id, producer_epoch, base_sequence)) => encode_producer_batch(
                &records,
                Compression::None,
                ProducerBatch {
                    producer_id,
                    producer_epoch,
                    base_sequence,
                    transactional: false,
                },
            ),
            None => encode_batch(&records, Compression::None),
        }
        .expect("a small batch encodes");
        let header = BatchHeader::parse(&batch).expect("our own batch parses");
        InFlight {
            request_id: 0,
            batch,
            header,
            sent_ms: now,
        }
    }

    /// Handles a broker's answer.
    pub fn handle(&mut self, now: i64, message: Message) -> Vec<(Node, Message)> {
        let mut out = Vec::new();
        match message {
            Message::Leader(tp, leader) if tp == self.partition && leader >= 0 => {
                self.leader = Some(leader);
                let resend = self.in_flight.as_ref().is_some_and(|f| {
                    now - f.sent_ms > self.timeout_ms || f.request_id == 0 || f.sent_ms < 0
                });
                if resend {
                    self.send(now, leader, &mut out);
                }
            }
            Message::ProduceAnswer { request_id, result } => {
                let Some(f) = self.in_flight.clone() else {
                    return out;
                };
                if f.request_id != request_id {
                    return out;
                }
                match result {
                    Ok(offset) => {
                        self.acked.push(Acked {
                            offset,
                            record_count: f.header.record_count,
                            crc: f.header.crc,
                            sequence: self
                                .idempotence
                                .map(|(id, _, _)| (id, f.header.base_sequence)),
                        });
                        if let Some((_, _, seq)) = self.idempotence.as_mut() {
                            *seq += f.header.record_count;
                        }
                        self.in_flight = None;
                    }
                    Err(code) if retriable(code) => {
                        self.retries += 1;
                        self.leader = None;
                        self.next_send_ms = now + 50;
                        // Marked so that the next leader answer sends it again.
                        if let Some(f) = self.in_flight.as_mut() {
                            f.sent_ms = -1;
                        }
                    }
                    Err(code) => {
                        // Given up, as a client surfaces it to the application; an idempotent
                        // producer starts a new epoch so later batches are in sequence again.
                        self.failed.push((now, code));
                        self.in_flight = None;
                        if let Some((_, epoch, seq)) = self.idempotence.as_mut() {
                            *epoch += 1;
                            *seq = 0;
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }
}
