//! The broker's transaction coordinator and transaction markers, as `odradek-server` does them
//! (`transactions.rs`, `handlers/txn.rs`): the leader of `__transaction_state`-0 loads the real
//! `odradek-coordinator` [`Transactions`] by replaying the partition's log, appends each
//! transition as the partition's leader and applies it once the ISR has it; a committed
//! PrepareCommit/PrepareAbort becomes a marker job that sends WriteTxnMarkers to every
//! partition's leader until each has the marker in its ISR, then writes the Complete state.
//! Open transactions past their timeout are aborted under a bumped epoch.
//!
//! A partition's leader writes a marker with `append_marker_as_leader`; on
//! `__consumer_offsets` through the loaded group coordinator, whose transactional offset
//! commits take effect (or are dropped) once the marker is committed.

use std::collections::{BTreeMap, BTreeSet};

use odradek_common::{ErrorCode, ToErrorCode};
use odradek_coordinator::txn::{
    FollowUp, InitResult, Transactions, Transition, TxnConfig, TRANSACTION_STATE_TOPIC,
};
use odradek_coordinator::OFFSETS_TOPIC;
use odradek_log::records::{encode_batch, Compression, NewRecord};
use odradek_log::{AppendRules, ControlRecord, ValidatedBatches};

use super::{Out, SimBroker};
use crate::message::{Message, Node, ProducerIdEpoch, TopicPartition};

/// How often open transactions are checked against their timeout (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, scaled down).
const EXPIRE_INTERVAL_MS: i64 = 500;

/// The transaction coordinator of `__transaction_state`-0, while this broker leads it.
#[derive(Debug)]
pub struct TxnCoordinator {
    partition: TopicPartition,
    leader_epoch: i32,
    txns: Transactions,
    /// Transitions appended and not yet known to be committed.
    writes: Vec<TxnWrite>,
    /// Markers being written.
    jobs: Vec<MarkerJob>,
    next_expire_ms: i64,
}

/// Whom a transition's commit answers, and with what.
#[derive(Debug, Clone)]
enum Reply {
    /// Nobody (a timeout's abort, a Complete state).
    None,
    /// InitProducerId: the result decided when the transition was made.
    Init(Node, u64, InitResult),
    /// AddPartitionsToTxn or EndTxn: 0 once committed.
    Txn(Node, u64),
}

#[derive(Debug)]
struct TxnWrite {
    transition: Transition,
    leader_epoch: i32,
    last_offset: i64,
    deadline_ms: i64,
    reply: Reply,
}

/// The markers of one transaction.
#[derive(Debug)]
struct MarkerJob {
    transactional_id: String,
    producer: ProducerIdEpoch,
    commit: bool,
    /// Partitions still without the marker.
    left: BTreeSet<(String, i32)>,
    /// WriteTxnMarker requests in flight: request id -> (partition, sent at).
    in_flight: BTreeMap<u64, ((String, i32), i64)>,
    next_send_ms: i64,
    backoff_ms: i64,
    /// The Complete transition was appended and waits in `writes`.
    completing: bool,
    done: bool,
}

/// A marker appended as a partition's leader, answered once the ISR has it.
#[derive(Debug)]
pub struct MarkerWaiter {
    coordinator: Node,
    request_id: u64,
    partition: TopicPartition,
    leader_epoch: i32,
    last_offset: i64,
    deadline_ms: i64,
    producer_id: i64,
    commit: bool,
}

/// The producer id a transactional id gets when it is new. The server allocates blocks from
/// the controller (AllocateProducerIds); the simulation derives one per transactional id,
/// which is just as unique (each id names one copy loop) and keeps the controller's log to
/// the metadata the other invariants compare.
fn producer_id_for(transactional_id: &str) -> i64 {
    let hash = transactional_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    100_000 + (hash % 1_000_000) as i64
}

impl SimBroker {
    /// Loads the transaction coordinator when this broker leads `__transaction_state`-0 under
    /// a new epoch (transactions found in a Prepare state get their markers written again),
    /// drops it when it no longer does (waiting calls are answered NOT_COORDINATOR).
    pub(super) fn follow_txn_coordinator(&mut self, now: i64, out: &mut Out) {
        let Some((tp, led)) = self.led_internal_partition(TRANSACTION_STATE_TOPIC) else {
            return;
        };
        let current = self.txn_coordinator.as_ref().map(|c| c.leader_epoch);
        if led == current {
            return;
        }
        if let Some(old) = self.txn_coordinator.take() {
            for w in old.writes {
                answer(&w.reply, ErrorCode::NotCoordinator.code(), out);
            }
        }
        let Some(leader_epoch) = led else { return };
        let mut txns = Transactions::new(TxnConfig::default());
        let partition = &self.replicas[&tp].partition;
        for r in read_records(partition.log(), &mut self.errors) {
            if let Some(k) = r.key.filter(|_| !r.control) {
                txns.replay(&k, r.value.as_deref());
            }
        }
        let jobs = txns
            .unfinished()
            .into_iter()
            .filter_map(|f| job_for(f, now))
            .collect();
        self.txn_coordinator = Some(TxnCoordinator {
            partition: tp,
            leader_epoch,
            txns,
            writes: Vec::new(),
            jobs,
            next_expire_ms: now + EXPIRE_INTERVAL_MS,
        });
    }

    /// InitProducerId with a transactional id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn init_producer_id(
        &mut self,
        client: Node,
        request_id: u64,
        transactional_id: &str,
        expected: ProducerIdEpoch,
        timeout_ms: i32,
        now: i64,
        out: &mut Out,
    ) {
        let Some(c) = self.txn_coordinator.as_mut() else {
            let result = Err(ErrorCode::NotCoordinator.code());
            out.push((client, Message::InitProducerIdAnswer { request_id, result }));
            return;
        };
        let fresh = c
            .txns
            .needs_new_producer_id(transactional_id)
            .then(|| producer_id_for(transactional_id));
        let (result, transition) =
            c.txns
                .init_producer_id(now, transactional_id, timeout_ms, expected, fresh);
        match transition {
            None => {
                let reply = Reply::Init(client, request_id, result);
                answer(&reply, 0, out);
            }
            Some(t) => self.write_transition(t, Reply::Init(client, request_id, result), now, out),
        }
    }

    /// AddPartitionsToTxn (AddOffsetsToTxn with the group's partition) and EndTxn.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn txn_call(
        &mut self,
        client: Node,
        request_id: u64,
        transactional_id: &str,
        producer: ProducerIdEpoch,
        call: TxnCall,
        now: i64,
        out: &mut Out,
    ) {
        let reply = Reply::Txn(client, request_id);
        let Some(c) = self.txn_coordinator.as_mut() else {
            answer(&reply, ErrorCode::NotCoordinator.code(), out);
            return;
        };
        let (pid, epoch) = producer;
        let result = match call {
            TxnCall::Add(partitions) => {
                c.txns
                    .add_partitions(now, transactional_id, pid, epoch, &partitions)
            }
            TxnCall::End { commit } => c.txns.end_txn(now, transactional_id, pid, epoch, commit),
        };
        match result {
            Ok(None) => answer(&reply, 0, out),
            Ok(Some(t)) => self.write_transition(t, reply, now, out),
            Err(code) => answer(&reply, code.code(), out),
        }
    }

    /// Appends a transition to `__transaction_state`-0 (acks=all); it is applied, and the
    /// caller answered, once committed.
    fn write_transition(&mut self, transition: Transition, reply: Reply, now: i64, out: &mut Out) {
        let min_isr = self.settings.min_insync_replicas;
        let deadline_ms = now + self.settings.request_timeout_ms;
        let Some(c) = self.txn_coordinator.as_mut() else {
            answer(&reply, ErrorCode::NotCoordinator.code(), out);
            return;
        };
        let appended = self
            .replicas
            .get_mut(&c.partition)
            .ok_or(ErrorCode::NotCoordinator)
            .and_then(|r| {
                let (k, v) = transition.record();
                append_records(&mut r.partition, &[(k, v)], min_isr, now)
            });
        match appended {
            Ok((leader_epoch, last_offset)) => c.writes.push(TxnWrite {
                transition,
                leader_epoch,
                last_offset,
                deadline_ms,
                reply,
            }),
            Err(code) => {
                c.txns.fail(&transition);
                answer(&reply, code.code(), out);
            }
        }
    }

    /// The coordinator's timers and completions: transitions the ISR has (or that failed),
    /// marker requests to send or resend, Complete states to write, timed-out transactions.
    pub(super) fn tick_txn_coordinator(&mut self, now: i64, out: &mut Out) {
        let min_isr = self.settings.min_insync_replicas;
        let Some(c) = self.txn_coordinator.as_mut() else {
            return;
        };
        let Some(r) = self.replicas.get(&c.partition) else {
            return;
        };
        // Transitions whose fate is known.
        let mut completed = Vec::new();
        c.writes.retain(|w| {
            let code = match r
                .partition
                .acks_all_outcome(w.leader_epoch, w.last_offset, min_isr)
            {
                Some(Ok(())) => 0,
                Some(Err(e)) if e.error_code() == ErrorCode::NotLeaderOrFollower => {
                    ErrorCode::NotCoordinator.code()
                }
                Some(Err(_)) => ErrorCode::CoordinatorNotAvailable.code(),
                None if now >= w.deadline_ms => ErrorCode::CoordinatorNotAvailable.code(),
                None => return true,
            };
            completed.push((w.transition.clone(), w.reply.clone(), code));
            false
        });
        for (transition, reply, code) in completed {
            if code == 0 {
                if let Some(job) = job_for(c.txns.complete(&transition), now) {
                    c.jobs.push(job);
                }
            } else {
                c.txns.fail(&transition);
            }
            let target = &transition.target;
            for job in c.jobs.iter_mut().filter(|j| {
                j.completing
                    && j.transactional_id == target.transactional_id
                    && j.producer == (target.producer_id, target.producer_epoch)
            }) {
                // The Complete state is written (done) or must be tried again.
                job.completing = false;
                job.done = code == 0;
                job.next_send_ms = now + job.backoff_ms;
            }
            answer(&reply, code, out);
        }
        c.jobs.retain(|j| !j.done);
        // Markers.
        let image = std::sync::Arc::clone(&self.image);
        let coordinator_epoch = c.leader_epoch;
        let timeout = self.settings.request_timeout_ms;
        let mut complete = Vec::new();
        for (i, job) in c.jobs.iter_mut().enumerate() {
            job.in_flight.retain(|_, (_, sent)| now - *sent <= timeout);
            if job.left.is_empty() {
                if !job.completing && now >= job.next_send_ms {
                    complete.push(i);
                }
                continue;
            }
            if now < job.next_send_ms {
                continue;
            }
            job.next_send_ms = now + job.backoff_ms;
            job.backoff_ms = (job.backoff_ms * 2).min(1000);
            let pending: Vec<(String, i32)> = job
                .left
                .iter()
                .filter(|p| !job.in_flight.values().any(|(q, _)| q == *p))
                .cloned()
                .collect();
            for (topic, index) in pending {
                // A partition whose topic is gone needs no marker.
                let Some(t) = image.topics.get_by_name(&topic) else {
                    job.left.remove(&(topic, index));
                    continue;
                };
                let Some(reg) = t.partitions.get(&index) else {
                    job.left.remove(&(topic, index));
                    continue;
                };
                if reg.leader < 0 {
                    continue;
                }
                self.next_marker_request += 1;
                let request_id = self.next_marker_request;
                job.in_flight
                    .insert(request_id, ((topic.clone(), index), now));
                out.push((
                    Node::Broker(reg.leader),
                    Message::WriteTxnMarker {
                        request_id,
                        partition: (t.id, index),
                        producer: job.producer,
                        commit: job.commit,
                        coordinator_epoch,
                    },
                ));
            }
        }
        for i in complete {
            let job = &mut c.jobs[i];
            let (pid, epoch) = job.producer;
            match c
                .txns
                .markers_written(now, &job.transactional_id, pid, epoch)
            {
                None => job.done = true,
                Some(t) => {
                    job.completing = true;
                    self.pending_transitions.push(t);
                }
            }
        }
        c.jobs.retain(|j| !j.done);
        if now >= c.next_expire_ms {
            c.next_expire_ms = now + EXPIRE_INTERVAL_MS;
            let (aborts, _tombstones) = c.txns.expire(now);
            self.pending_transitions.extend(aborts);
        }
        for t in std::mem::take(&mut self.pending_transitions) {
            self.write_transition(t, Reply::None, now, out);
        }
    }

    /// A partition leader's answer to a WriteTxnMarker this coordinator sent.
    pub(super) fn on_marker_answer(&mut self, request_id: u64, error_code: i16, now: i64) {
        let Some(c) = self.txn_coordinator.as_mut() else {
            return;
        };
        for job in &mut c.jobs {
            if let Some((partition, _)) = job.in_flight.remove(&request_id) {
                if error_code == 0 {
                    job.left.remove(&partition);
                    if job.left.is_empty() {
                        job.next_send_ms = now;
                    }
                }
            }
        }
    }

    /// WriteTxnMarker as the partition's leader: the marker is appended (on
    /// `__consumer_offsets` only while the group coordinator is loaded) and answered once the
    /// ISR has it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_marker(
        &mut self,
        coordinator: Node,
        request_id: u64,
        tp: TopicPartition,
        producer: ProducerIdEpoch,
        commit: bool,
        coordinator_epoch: i32,
        now: i64,
    ) -> Result<(), i16> {
        let min_isr = self.settings.min_insync_replicas;
        let offsets = self.image.topics.get_by_name(OFFSETS_TOPIC).map(|t| t.id) == Some(tp.0);
        if offsets && !self.coordinator_loaded(tp) {
            return Err(ErrorCode::CoordinatorLoadInProgress.code());
        }
        let r = self
            .replicas
            .get_mut(&tp)
            .ok_or(ErrorCode::NotLeaderOrFollower.code())?;
        let marker = ControlRecord {
            commit,
            coordinator_epoch,
        };
        let appended = r
            .partition
            .append_marker_as_leader(producer.0, producer.1, marker, min_isr, now)
            .map_err(|e| e.error_code().code())?;
        self.marker_waiters.push(MarkerWaiter {
            coordinator,
            request_id,
            partition: tp,
            leader_epoch: appended.leader_epoch,
            last_offset: appended.info.last_offset,
            deadline_ms: now + self.settings.request_timeout_ms,
            producer_id: producer.0,
            commit,
        });
        Ok(())
    }

    /// Answers the markers whose fate is known; a committed marker on `__consumer_offsets`
    /// ends the transaction's offset commits in the group coordinator.
    pub(super) fn complete_markers(&mut self, now: i64, out: &mut Out) {
        let min_isr = self.settings.min_insync_replicas;
        let mut ended = Vec::new();
        let replicas = &self.replicas;
        self.marker_waiters.retain(|w| {
            let outcome = match replicas.get(&w.partition) {
                Some(r) => r
                    .partition
                    .acks_all_outcome(w.leader_epoch, w.last_offset, min_isr)
                    .map(|o| o.map_err(|e| e.error_code().code())),
                None => Some(Err(ErrorCode::NotLeaderOrFollower.code())),
            };
            let code = match outcome {
                Some(Ok(())) => {
                    ended.push((w.partition, w.producer_id, w.commit));
                    0
                }
                Some(Err(code)) => code,
                None if now >= w.deadline_ms => ErrorCode::RequestTimedOut.code(),
                None => return true,
            };
            out.push((
                w.coordinator,
                Message::WriteTxnMarkerAnswer {
                    request_id: w.request_id,
                    error_code: code,
                },
            ));
            false
        });
        for (tp, producer_id, commit) in ended {
            self.complete_offsets_transaction(tp, producer_id, commit);
        }
    }
}

/// A call on an open transaction.
#[derive(Debug, Clone)]
pub enum TxnCall {
    /// AddPartitionsToTxn.
    Add(Vec<(String, i32)>),
    /// EndTxn.
    End {
        /// Commit (true) or abort.
        commit: bool,
    },
}

fn answer(reply: &Reply, code: i16, out: &mut Out) {
    match reply {
        Reply::None => {}
        Reply::Init(client, request_id, result) => {
            let result = match (code, result) {
                (0, InitResult::Write(pid, epoch)) => Ok((*pid, *epoch)),
                (0, InitResult::Error(e)) => Err(e.code()),
                (code, _) => Err(code),
            };
            out.push((
                *client,
                Message::InitProducerIdAnswer {
                    request_id: *request_id,
                    result,
                },
            ));
        }
        Reply::Txn(client, request_id) => out.push((
            *client,
            Message::TxnAnswer {
                request_id: *request_id,
                error_code: code,
            },
        )),
    }
}

fn job_for(follow: FollowUp, now: i64) -> Option<MarkerJob> {
    let FollowUp::WriteMarkers {
        transactional_id,
        producer_id,
        producer_epoch,
        commit,
        partitions,
    } = follow
    else {
        return None;
    };
    Some(MarkerJob {
        transactional_id,
        producer: (producer_id, producer_epoch),
        commit,
        left: partitions.into_iter().collect(),
        in_flight: BTreeMap::new(),
        next_send_ms: now,
        backoff_ms: 50,
        completing: false,
        done: false,
    })
}

/// Appends a coordinator's records in one batch as the partition's leader (the server's
/// `append_records`, acks=all); returns (leader epoch, last offset).
pub(super) fn append_records(
    partition: &mut odradek_replication::Partition,
    records: &[(bytes::Bytes, Option<bytes::Bytes>)],
    min_isr: usize,
    now: i64,
) -> Result<(i32, i64), ErrorCode> {
    let records: Vec<NewRecord> = records
        .iter()
        .map(|(k, v)| NewRecord {
            key: Some(k.clone()),
            value: v.clone(),
            timestamp_ms: now,
            ..NewRecord::default()
        })
        .collect();
    let batch = encode_batch(&records, Compression::None)
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
    let validated = ValidatedBatches::for_leader(&batch, AppendRules::of(partition.log().config()))
        .map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
    let appended = partition
        .append_as_coordinator(validated, -1, min_isr, now)
        .map_err(|e| match e.error_code() {
            ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch => {
                ErrorCode::NotCoordinator
            }
            _ => ErrorCode::CoordinatorNotAvailable,
        })?;
    Ok((appended.leader_epoch, appended.info.last_offset))
}

/// Every record of `log`, in order (a coordinator's load); unreadable batches are reported.
pub(super) fn read_records(
    log: &odradek_log::Log,
    errors: &mut Vec<String>,
) -> Vec<odradek_log::records::Record> {
    let mut out = Vec::new();
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, end);
        let Ok(Some(slice)) = read.map(|r| r.records) else {
            break;
        };
        offset = slice.last_offset() + 1;
        match slice
            .read_to_bytes()
            .and_then(odradek_log::records::decode_batches)
        {
            Ok(records) => out.extend(records),
            Err(e) => errors.push(format!("cannot load a coordinator's partition: {e}")),
        }
    }
    out
}
