//! The simulated broker: the real `odradek-replication` partitions over real `odradek-log` logs
//! in this broker's directory, driven the way `odradek-server` drives them (its replica manager,
//! replica fetchers, produce and fetch handlers, ISR proposals and lifecycle), but with every
//! input a message or a timer of the simulation. Where the server's glue is mirrored rather than
//! called, the code says which part of the server it mirrors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use odradek_common::{ErrorCode, ToErrorCode, Uuid};
use odradek_controller::pb;
use odradek_log::{AppendRules, BatchHeader, Log, LogConfig, ValidatedBatches};
use odradek_metadata::{MetadataChanges, MetadataDelta, MetadataImage};
use odradek_replication::{IsrProposal, Partition, PartitionState, Role, Transition};

use crate::message::{Message, Node, TopicPartition};
use crate::rng::SimRng;

mod coordinator;
mod isr;
mod replication;
mod txn;

/// The cluster id every node is formatted with.
pub const CLUSTER_ID: &str = "odradek-sim";

/// Broker settings (Kafka's names; values scaled down so a short run sees their effects).
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// `replica.fetch.backoff.ms`, also the pause of a follower that got nothing new.
    pub fetch_backoff_ms: i64,
    /// `request.timeout.ms` of a produce, and of any request a broker waits on.
    pub request_timeout_ms: i64,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub hw_checkpoint_interval_ms: i64,
    /// The topics' log configuration.
    pub log: LogConfig,
    /// [`crate::world::Hazard::AckBeforeReplication`]: answer produces at once.
    pub ack_before_replication: bool,
    /// [`crate::world::Hazard::ReadUncommitted`]: consumers read up to the log end.
    pub read_uncommitted: bool,
    /// [`crate::world::Hazard::CommitBeforeReplication`]: offset commits answered at once.
    pub commit_before_replication: bool,
    /// [`crate::world::Hazard::ReadCommittedWithoutAbortedList`]: read_committed fetches are
    /// answered without their aborted transactions.
    pub ignore_aborted_transactions: bool,
    /// [`crate::world::Hazard::ActBeforeRegistration`]: a restarted broker acts on images
    /// that predate its registration.
    pub act_before_registration: bool,
}

/// A produce waiting for the high watermark (the server's delayed produce, `handlers/acks.rs`).
#[derive(Debug, Clone)]
struct Waiter {
    client: Node,
    request_id: u64,
    partition: TopicPartition,
    leader_epoch: i32,
    first_offset: i64,
    last_offset: i64,
    deadline_ms: i64,
}

/// A hosted replica and its fetch state.
#[derive(Debug)]
pub struct Replica {
    /// The replication core.
    pub partition: Partition,
    fetch_sent_ms: Option<i64>,
    /// The id of the last fetch sent.
    fetch_id: u64,
    next_fetch_ms: i64,
}

/// An AlterPartition sent and not answered (the server's `isr.rs`).
#[derive(Debug, Clone)]
struct SentProposal {
    partition: TopicPartition,
    proposal: IsrProposal,
    /// The broker epoch it was sent under (kept for its retries, as the server does; -1 when
    /// not registered: the controller refuses it and the proposal is dropped).
    broker_epoch: i64,
    sent_ms: i64,
}

/// One broker.
#[derive(Debug)]
pub struct SimBroker {
    /// Its id.
    pub id: i32,
    dir: PathBuf,
    settings: BrokerSettings,
    /// Running (not crashed).
    pub up: bool,
    /// Bumped at every start: messages to an earlier incarnation are lost.
    pub incarnation: u64,
    /// Paused (SIGSTOP) until then: it handles nothing, messages wait.
    pub paused_until_ms: i64,
    /// Its clock's offset from the simulation's.
    pub clock_skew_ms: i64,
    incarnation_id: Uuid,
    broker_epoch: Option<i64>,
    fenced: bool,
    /// The Kafka listener is open: set once the controller unfenced this incarnation and its
    /// own image shows it (the server's `runtime.rs` waits for both before serving anything,
    /// replica fetches included), and kept for the incarnation.
    serving: bool,
    /// Its metadata image.
    pub image: Arc<MetadataImage>,
    catch_up_to: Option<i64>,
    /// Every committed entry up to this offset has been replayed (a controller's answer
    /// vouches for it, as the real stream's markers do).
    complete_through: i64,
    /// Changes replayed and not yet applied to the replicas (the server's change feed).
    pending_changes: MetadataChanges,
    metadata_sent_ms: Option<i64>,
    /// Hosted replicas.
    pub replicas: BTreeMap<TopicPartition, Replica>,
    /// `replication-offset-checkpoint`: durable, written every checkpoint interval.
    hw_checkpoint: BTreeMap<TopicPartition, i64>,
    waiters: Vec<Waiter>,
    /// The group coordinator, while this broker leads `__consumer_offsets`-0.
    coordinator: Option<coordinator::Coordinator>,
    /// The transaction coordinator, while this broker leads `__transaction_state`-0.
    txn_coordinator: Option<txn::TxnCoordinator>,
    /// Transaction markers appended as leader, answered once committed.
    marker_waiters: Vec<txn::MarkerWaiter>,
    /// Transitions the transaction coordinator decided inside a borrow, written after it.
    pending_transitions: Vec<odradek_coordinator::txn::Transition>,
    next_marker_request: u64,
    /// Answers decided inside a call that returns no messages, sent at its end.
    pending_answers: Vec<(Node, Message)>,
    proposals: Vec<SentProposal>,
    refused: Vec<(i64, SentProposal)>,
    next_register_ms: i64,
    next_heartbeat_ms: i64,
    next_metadata_ms: i64,
    next_checkpoint_ms: i64,
    next_isr_check_ms: i64,
    /// The controllers, and the one requests go to (the active one, as far as it knows).
    controllers: Vec<u64>,
    controller: u64,
    last_controller_answer_ms: i64,
    /// High watermarks this broker had as a leader, since the checker last took them: (partition,
    /// high watermark). Noted after every message and timer, so a leader that becomes a
    /// follower within one step is not missed.
    pub leader_high_watermarks: Vec<(TopicPartition, i64)>,
    /// Problems the cores reported that a correct cluster never has (a log that cannot be
    /// opened after a crash, a replicated batch that cannot be appended).
    pub errors: Vec<String>,
}

type Out = Vec<(Node, Message)>;

impl SimBroker {
    /// A broker (not started) keeping its logs under `dir`.
    pub fn new(id: i32, dir: PathBuf, settings: BrokerSettings) -> Self {
        Self {
            id,
            dir,
            settings,
            up: false,
            incarnation: 0,
            paused_until_ms: 0,
            clock_skew_ms: 0,
            incarnation_id: Uuid([0; 16]),
            broker_epoch: None,
            fenced: true,
            serving: false,
            image: Arc::new(MetadataImage::empty()),
            catch_up_to: None,
            complete_through: 0,
            pending_changes: MetadataChanges::default(),
            metadata_sent_ms: None,
            replicas: BTreeMap::new(),
            hw_checkpoint: BTreeMap::new(),
            waiters: Vec::new(),
            coordinator: None,
            txn_coordinator: None,
            marker_waiters: Vec::new(),
            pending_transitions: Vec::new(),
            next_marker_request: 0,
            pending_answers: Vec::new(),
            proposals: Vec::new(),
            refused: Vec::new(),
            next_register_ms: 0,
            next_heartbeat_ms: 0,
            next_metadata_ms: 0,
            next_checkpoint_ms: 0,
            next_isr_check_ms: 0,
            controllers: Vec::new(),
            controller: 0,
            last_controller_answer_ms: 0,
            leader_high_watermarks: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The controller quorum's voters (`controller.quorum.voters`).
    pub fn with_controllers(mut self, controllers: Vec<u64>) -> Self {
        self.controller = controllers.first().copied().unwrap_or(0);
        self.controllers = controllers;
        self
    }

    fn controller(&self) -> Node {
        Node::Controller(self.controller)
    }

    /// The next controller, after a silence or a refusal without a hint.
    fn next_controller(&mut self) {
        if let Some(i) = self.controllers.iter().position(|c| *c == self.controller) {
            self.controller = self.controllers[(i + 1) % self.controllers.len()];
        }
    }

    /// Starts (or restarts) the process: a new incarnation that registers, catches up with
    /// metadata, then opens (recovers) its replicas.
    pub fn start(&mut self, now_ms: i64, rng: &mut SimRng) {
        self.up = true;
        self.incarnation += 1;
        self.incarnation_id = Uuid(rng.bytes16());
        self.broker_epoch = None;
        self.fenced = true;
        self.serving = false;
        self.image = Arc::new(MetadataImage::empty());
        self.catch_up_to = None;
        self.complete_through = 0;
        self.pending_changes = MetadataChanges::default();
        self.metadata_sent_ms = None;
        self.replicas.clear();
        self.waiters.clear();
        self.coordinator = None;
        self.txn_coordinator = None;
        self.marker_waiters.clear();
        self.pending_transitions.clear();
        self.proposals.clear();
        self.refused.clear();
        self.paused_until_ms = 0;
        self.next_register_ms = now_ms;
        self.next_heartbeat_ms = now_ms;
        self.next_metadata_ms = now_ms;
        self.next_checkpoint_ms = now_ms + self.settings.hw_checkpoint_interval_ms;
        self.next_isr_check_ms = now_ms;
        self.last_controller_answer_ms = now_ms;
    }

    /// kill -9: every replica is dropped without a clean close (no clean-shutdown marker).
    /// With `power_loss`, what was not fsynced is lost too (see [`crate::disk`]).
    pub fn crash(&mut self, power_loss: bool, rng: &mut SimRng) -> Vec<String> {
        let mut torn = Vec::new();
        if power_loss {
            for ((id, index), r) in &self.replicas {
                let log = r.partition.log();
                let lost = crate::disk::lose_unsynced(log, rng);
                // Half the time the crash also cut an append short (where the tail was synced:
                // a lost tail already ends in whatever the disk had, torn or not).
                let cut = if matches!(lost, Ok(None)) && rng.chance(0.5) {
                    crate::disk::tear_in_flight_write(log, rng)
                } else {
                    Ok(None)
                };
                for result in [lost, cut] {
                    match result {
                        Ok(Some(what)) => torn.push(format!("{id}-{index}: {what}")),
                        Ok(None) => {}
                        Err(e) => self.errors.push(format!("cannot simulate power loss: {e}")),
                    }
                }
            }
        } else if rng.chance(0.2) && !self.replicas.is_empty() {
            // kill -9 in the middle of a large vectored write: part of a batch is in the
            // page cache after the log's end.
            let i = rng.below(self.replicas.len() as u64) as usize;
            if let Some(((id, index), r)) = self.replicas.iter().nth(i) {
                match crate::disk::tear_in_flight_write(r.partition.log(), rng) {
                    Ok(Some(what)) => torn.push(format!("{id}-{index}: {what}")),
                    Ok(None) => {}
                    Err(e) => self
                        .errors
                        .push(format!("cannot simulate a torn write: {e}")),
                }
            }
        }
        self.up = false;
        self.replicas.clear();
        self.waiters.clear();
        self.coordinator = None;
        self.txn_coordinator = None;
        self.marker_waiters.clear();
        torn
    }

    /// A clean stop (SIGTERM): every log is flushed and closed with its clean-shutdown
    /// marker, so the next start trusts the indexes (controlled shutdown is not simulated:
    /// the controller learns of the stop when the session expires).
    pub fn stop(&mut self) {
        for (_, r) in std::mem::take(&mut self.replicas) {
            if let Err(e) = r.partition.into_log().close() {
                self.errors
                    .push(format!("broker {}: cannot close a log: {e}", self.id));
            }
        }
        self.up = false;
        self.waiters.clear();
        self.coordinator = None;
        self.txn_coordinator = None;
        self.marker_waiters.clear();
    }

    /// Whether it is up and not paused at `now_ms`.
    pub fn is_running(&self, now_ms: i64) -> bool {
        self.up && now_ms >= self.paused_until_ms
    }

    fn now(&self, sim_now_ms: i64) -> i64 {
        sim_now_ms + self.clock_skew_ms
    }

    /// Caught up to the offset the controller had committed when this incarnation first
    /// asked, and past this incarnation's own registration (which moved its old leaderships
    /// away): before it, the image may still name this broker leader under an epoch of its
    /// previous incarnation, whose log tail the ISR may never have had (the server's change
    /// feed waits the same way, as Kafka's broker waits to be caught up past its registration).
    fn caught_up(&self) -> bool {
        self.catch_up_to.is_some_and(|c| self.complete_through >= c)
            && (self.settings.act_before_registration
                || self
                    .image
                    .cluster
                    .brokers
                    .get(&self.id)
                    .is_some_and(|b| b.incarnation_id == self.incarnation_id))
    }

    fn update_serving(&mut self) {
        let unfenced_here = self
            .image
            .cluster
            .brokers
            .get(&self.id)
            .is_some_and(|b| !b.fenced);
        if !self.fenced && unfenced_here && self.caught_up() {
            self.serving = true;
        }
    }

    /// Handles one message.
    pub fn handle(&mut self, sim_now_ms: i64, from: Node, message: Message) -> Out {
        let now = self.now(sim_now_ms);
        let mut out = Vec::new();
        if let Node::Controller(_) = from {
            self.last_controller_answer_ms = now;
        }
        self.update_serving();
        let kafka_request = matches!(
            message,
            Message::Fetch(_)
                | Message::Produce { .. }
                | Message::WhoLeads(_)
                | Message::ConsumerFetch { .. }
                | Message::OffsetCommit { .. }
                | Message::OffsetFetch { .. }
                | Message::InitProducerId { .. }
                | Message::AddPartitionsToTxn { .. }
                | Message::EndTxn { .. }
                | Message::TxnOffsetCommit { .. }
                | Message::WriteTxnMarker { .. }
        );
        if kafka_request && !self.serving {
            // The listener is not open yet: the connection is refused.
            return out;
        }
        match message {
            Message::NotController { leader } => match leader {
                Some(l) if l != self.controller => self.controller = l,
                _ => self.next_controller(),
            },
            Message::Registered(r) if r.error_code == 0 => {
                self.broker_epoch = Some(r.broker_epoch);
                self.next_heartbeat_ms = now;
            }
            Message::HeartbeatAnswer(r) => {
                if r.error_code == 0 {
                    self.fenced = r.is_fenced;
                } else if r.error_code == i32::from(ErrorCode::StaleBrokerEpoch.code())
                    || r.error_code == i32::from(ErrorCode::BrokerIdNotRegistered.code())
                {
                    self.broker_epoch = None;
                }
            }
            Message::Metadata {
                entries,
                through,
                committed,
            } => {
                self.metadata_sent_ms = None;
                self.replay_metadata(entries, through, committed, now, &mut out);
            }
            Message::AlterPartitionAnswer(req, resp) => self.on_alter_partition(req, resp, now),
            Message::Fetch(req) => {
                let answer = self.serve_fetch(&req, now, &mut out);
                out.push((from, Message::FetchAnswer(req, answer)));
            }
            Message::FetchAnswer(req, answer) => self.on_fetch_answer(from, req, answer, now),
            Message::Produce {
                request_id,
                partition,
                batch,
            } => {
                if let Err(code) = self.produce(from, request_id, partition, &batch, now) {
                    out.push((
                        from,
                        Message::ProduceAnswer {
                            request_id,
                            result: Err(code),
                        },
                    ));
                }
                self.complete_waiters(now, &mut out);
            }
            Message::ConsumerFetch {
                request_id,
                partition,
                offset,
                read_committed,
            } => {
                let result = self.consumer_fetch(partition, offset, read_committed);
                out.push((from, Message::ConsumerFetchAnswer { request_id, result }));
            }
            Message::OffsetCommit {
                request_id,
                group,
                partition,
                offset,
            } => {
                let commit = (request_id, group.as_str(), partition, offset, None);
                self.commit_and_answer(from, commit, now, &mut out);
            }
            Message::TxnOffsetCommit {
                request_id,
                group,
                producer,
                partition,
                offset,
            } => {
                let commit = (
                    request_id,
                    group.as_str(),
                    partition,
                    offset,
                    Some(producer),
                );
                self.commit_and_answer(from, commit, now, &mut out);
            }
            Message::OffsetFetch {
                request_id,
                group,
                partition,
            } => {
                let result = self.offset_fetch(&group, partition);
                out.push((from, Message::OffsetFetchAnswer { request_id, result }));
            }
            Message::InitProducerId {
                request_id,
                transactional_id,
                expected,
                timeout_ms,
            } => {
                self.init_producer_id(
                    from,
                    request_id,
                    &transactional_id,
                    expected,
                    timeout_ms,
                    now,
                    &mut out,
                );
                self.tick_txn_coordinator(now, &mut out);
            }
            Message::AddPartitionsToTxn {
                request_id,
                transactional_id,
                producer,
                partitions,
            } => {
                let call = txn::TxnCall::Add(partitions);
                self.txn_call(
                    from,
                    request_id,
                    &transactional_id,
                    producer,
                    call,
                    now,
                    &mut out,
                );
                self.tick_txn_coordinator(now, &mut out);
            }
            Message::EndTxn {
                request_id,
                transactional_id,
                producer,
                commit,
            } => {
                let call = txn::TxnCall::End { commit };
                self.txn_call(
                    from,
                    request_id,
                    &transactional_id,
                    producer,
                    call,
                    now,
                    &mut out,
                );
                self.tick_txn_coordinator(now, &mut out);
            }
            Message::WriteTxnMarker {
                request_id,
                partition,
                producer,
                commit,
                coordinator_epoch,
            } => {
                let written = self.write_marker(
                    from,
                    request_id,
                    partition,
                    producer,
                    commit,
                    coordinator_epoch,
                    now,
                );
                if let Err(error_code) = written {
                    out.push((
                        from,
                        Message::WriteTxnMarkerAnswer {
                            request_id,
                            error_code,
                        },
                    ));
                }
                self.complete_markers(now, &mut out);
            }
            Message::WriteTxnMarkerAnswer {
                request_id,
                error_code,
            } => {
                self.on_marker_answer(request_id, error_code, now);
                self.tick_txn_coordinator(now, &mut out);
            }
            Message::WhoLeads(tp) => {
                let leader = self
                    .image
                    .topics
                    .by_id
                    .get(&tp.0)
                    .and_then(|t| t.partitions.get(&tp.1))
                    .map_or(-1, |p| p.leader);
                out.push((from, Message::Leader(tp, leader)));
            }
            _ => {}
        }
        self.note_leader_high_watermarks();
        out
    }

    /// OffsetCommit or TxnOffsetCommit (request id, group, partition, offset, producer): an
    /// error is answered at once, a commit once the ISR has it.
    fn commit_and_answer(
        &mut self,
        from: Node,
        commit: (
            u64,
            &str,
            TopicPartition,
            i64,
            Option<crate::message::ProducerIdEpoch>,
        ),
        now: i64,
        out: &mut Out,
    ) {
        let (request_id, group, partition, offset, producer) = commit;
        let committed =
            self.offset_commit(from, request_id, group, partition, offset, producer, now);
        if let Err(error_code) = committed {
            out.push((
                from,
                Message::OffsetCommitAnswer {
                    request_id,
                    error_code,
                },
            ));
        }
        self.complete_commits(now, out);
        out.append(&mut self.pending_answers);
    }

    /// Partition 0 of the internal topic `topic`, and the leader epoch under which this broker
    /// leads it (`None`: it does not); `None` while the topic does not exist.
    fn led_internal_partition(&self, topic: &str) -> Option<(TopicPartition, Option<i32>)> {
        let tp = (self.image.topics.get_by_name(topic)?.id, 0);
        let led = self
            .replicas
            .get(&tp)
            .filter(|r| r.partition.role() == Role::Leader)
            .map(|r| r.partition.leader_epoch());
        Some((tp, led))
    }

    fn note_leader_high_watermarks(&mut self) {
        for (tp, r) in &self.replicas {
            if r.partition.role() == Role::Leader {
                let hw = r.partition.high_watermark();
                if self.leader_high_watermarks.last() != Some(&(*tp, hw)) {
                    self.leader_high_watermarks.push((*tp, hw));
                }
            }
        }
    }

    /// Timers: registration, heartbeats, metadata, replica fetches, ISR shrinks, acks=all
    /// deadlines, the high watermark checkpoint.
    pub fn tick(&mut self, sim_now_ms: i64) -> Out {
        let now = self.now(sim_now_ms);
        let mut out = Vec::new();
        let timeout = self.settings.request_timeout_ms;
        if now - self.last_controller_answer_ms > timeout {
            // The controller went quiet (down, or cut off): ask another.
            self.last_controller_answer_ms = now;
            self.next_controller();
            self.metadata_sent_ms = None;
        }
        if self.broker_epoch.is_none() && now >= self.next_register_ms {
            self.next_register_ms = now + 500;
            out.push((self.controller(), Message::Register(self.registration())));
        }
        if let Some(epoch) = self.broker_epoch {
            if now >= self.next_heartbeat_ms {
                self.next_heartbeat_ms = now + self.settings.heartbeat_interval_ms;
                out.push((
                    self.controller(),
                    Message::Heartbeat(pb::BrokerHeartbeatRequest {
                        broker_id: self.id,
                        broker_epoch: epoch,
                        current_metadata_offset: self.image.offset.max(0),
                        ..Default::default()
                    }),
                ));
            }
        }
        let metadata_lost = self.metadata_sent_ms.is_some_and(|t| now - t > timeout);
        if (self.metadata_sent_ms.is_none() || metadata_lost) && now >= self.next_metadata_ms {
            self.metadata_sent_ms = Some(now);
            self.next_metadata_ms = now + 20;
            out.push((
                self.controller(),
                Message::FetchMetadata {
                    from_offset: self.image.offset.max(0) + 1,
                },
            ));
        }
        self.send_fetches(now, &mut out);
        if now >= self.next_isr_check_ms {
            // The server checks every replica.lag.time.max.ms / 2.
            self.next_isr_check_ms = now + self.settings.replica_lag_time_max_ms / 2;
            let lag = self.settings.replica_lag_time_max_ms;
            let shrinks: Vec<(TopicPartition, IsrProposal)> = self
                .replicas
                .iter_mut()
                .filter_map(|(tp, r)| Some((*tp, r.partition.maybe_shrink_isr(now, lag)?)))
                .collect();
            for (tp, proposal) in shrinks {
                self.propose(tp, proposal, now, &mut out);
            }
        }
        self.retry_proposals(now, &mut out);
        self.complete_waiters(now, &mut out);
        self.complete_commits(now, &mut out);
        self.complete_markers(now, &mut out);
        self.tick_txn_coordinator(now, &mut out);
        if now >= self.next_checkpoint_ms {
            self.next_checkpoint_ms = now + self.settings.hw_checkpoint_interval_ms;
            // Merged: replicas not opened yet keep their entries (the server's checkpoint).
            for (tp, r) in &self.replicas {
                self.hw_checkpoint.insert(*tp, r.partition.high_watermark());
            }
        }
        self.note_leader_high_watermarks();
        out
    }

    fn registration(&self) -> pb::RegisterBrokerRequest {
        pb::RegisterBrokerRequest {
            broker_id: self.id,
            cluster_id: CLUSTER_ID.to_string(),
            incarnation_id: self.incarnation_id.as_bytes().to_vec(),
            listeners: vec![pb::Listener {
                name: "PLAINTEXT".into(),
                host: format!("broker-{}", self.id),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            ..Default::default()
        }
    }

    /// Replays committed entries into the image (the server's metadata follower), merging
    /// their changes, then, once caught up to the offset committed when it started, hands the
    /// changes to the replicas (the server's change feed and replica manager).
    fn replay_metadata(
        &mut self,
        entries: Vec<(i64, Vec<odradek_metadata::proto::MetadataRecord>)>,
        through: i64,
        committed: i64,
        now: i64,
        out: &mut Out,
    ) {
        self.catch_up_to.get_or_insert(committed);
        let mut changed = false;
        for (offset, records) in entries {
            // Entries come in log order; their offsets are raft indexes, with gaps where the
            // quorum wrote entries of its own.
            if offset <= self.image.offset {
                continue;
            }
            let mut delta = MetadataDelta::new(Arc::clone(&self.image));
            for r in &records {
                if let Err(e) = delta.replay(offset, r) {
                    self.errors
                        .push(format!("metadata record at {offset} does not replay: {e}"));
                }
            }
            self.pending_changes.merge(delta.changes());
            let mut image = delta.apply();
            image.offset = offset;
            self.image = Arc::new(image);
            changed = true;
        }
        if through > self.complete_through && through >= self.image.offset {
            self.complete_through = through;
            changed = true;
        }
        if changed && self.caught_up() {
            self.apply_image(now, out);
        }
    }

    /// The replica manager's `apply`: for the topics the changes name, opens replicas assigned
    /// here, applies each partition's registration, and starts or stops following.
    fn apply_image(&mut self, now: i64, out: &mut Out) {
        let image = Arc::clone(&self.image);
        let changes = std::mem::take(&mut self.pending_changes);
        let scope: Vec<Uuid> = if changes.everything {
            image.topics.by_id.keys().copied().collect()
        } else {
            changes.topics.into_iter().collect()
        };
        for t in scope.iter().filter_map(|id| image.topics.by_id.get(id)) {
            for (index, reg) in &t.partitions {
                if !reg.replicas.contains(&self.id) {
                    continue;
                }
                let tp = (t.id, *index);
                if !self.replicas.contains_key(&tp) {
                    match self.open(&t.name, tp, now) {
                        Ok(r) => {
                            self.replicas.insert(tp, r);
                        }
                        Err(e) => {
                            self.errors.push(e);
                            continue;
                        }
                    }
                }
                let state = PartitionState {
                    leader: reg.leader,
                    leader_epoch: reg.leader_epoch,
                    partition_epoch: reg.partition_epoch,
                    replicas: reg.replicas.clone(),
                    isr: reg.isr.clone(),
                };
                let r = self.replicas.get_mut(&tp).expect("opened above");
                if r.partition.state() != &state {
                    let (transition, _) = r.partition.apply(state, now);
                    if transition != Transition::Updated {
                        // A new role or epoch: the fetcher starts over (an ISR-only change
                        // leaves a fetch in flight alone, as the server's fetchers do).
                        r.fetch_sent_ms = None;
                        r.next_fetch_ms = now;
                    }
                }
            }
        }
        self.follow_coordinator(now, out);
        self.follow_txn_coordinator(now, out);
        self.complete_waiters(now, out);
        self.complete_commits(now, out);
        self.complete_markers(now, out);
    }

    fn open(&self, topic: &str, tp: TopicPartition, now: i64) -> Result<Replica, String> {
        let dir = self.dir.join(format!("{topic}-{}", tp.1));
        let log = Log::open(&dir, self.settings.log.clone(), now)
            .map_err(|e| format!("broker {}: cannot open {}: {e}", self.id, dir.display()))?;
        let hw = self.hw_checkpoint.get(&tp).copied();
        let partition = Partition::new(topic, tp.1, self.id, log, hw).map_err(|e| {
            format!(
                "broker {}: cannot load {topic}-{}'s producer state: {e}",
                self.id, tp.1
            )
        })?;
        Ok(Replica {
            partition,
            fetch_sent_ms: None,
            fetch_id: 0,
            next_fetch_ms: now,
        })
    }

    /// A produce as leader (the server's `handlers/produce.rs`), acks=all.
    fn produce(
        &mut self,
        client: Node,
        request_id: u64,
        tp: TopicPartition,
        batch: &[u8],
        now: i64,
    ) -> Result<(), i16> {
        let min_isr = self.settings.min_insync_replicas;
        let r = self
            .replicas
            .get_mut(&tp)
            .ok_or(ErrorCode::NotLeaderOrFollower.code())?;
        r.partition
            .check_leader(-1)
            .map_err(|e| e.error_code().code())?;
        let validated =
            ValidatedBatches::for_leader(batch, AppendRules::of(r.partition.log().config()))
                .map_err(|e| e.error_code().code())?;
        let appended = r
            .partition
            .append_as_leader(validated, -1, min_isr, now)
            .map_err(|e| e.error_code().code())?;
        let deadline_ms = if self.settings.ack_before_replication {
            now
        } else {
            now + self.settings.request_timeout_ms
        };
        self.waiters.push(Waiter {
            client,
            request_id,
            partition: tp,
            leader_epoch: appended.leader_epoch,
            first_offset: appended.info.first_offset,
            last_offset: appended.info.last_offset,
            deadline_ms,
        });
        Ok(())
    }

    /// Answers the acks=all produces whose fate is known.
    fn complete_waiters(&mut self, now: i64, out: &mut Out) {
        let min_isr = self.settings.min_insync_replicas;
        let ack_early = self.settings.ack_before_replication;
        let replicas = &self.replicas;
        self.waiters.retain(|w| {
            let outcome = match replicas.get(&w.partition) {
                Some(r) => r
                    .partition
                    .acks_all_outcome(w.leader_epoch, w.last_offset, min_isr)
                    .map(|o| o.map_err(|e| e.error_code().code())),
                None => Some(Err(ErrorCode::NotLeaderOrFollower.code())),
            };
            let result = match outcome {
                Some(Ok(())) => Ok(w.first_offset),
                Some(Err(code)) => Err(code),
                None if ack_early => Ok(w.first_offset),
                None if now >= w.deadline_ms => Err(ErrorCode::RequestTimedOut.code()),
                None => return true,
            };
            out.push((
                w.client,
                Message::ProduceAnswer {
                    request_id: w.request_id,
                    result,
                },
            ));
            false
        });
    }
}

/// The batch headers of `log` from `from` up to `upper` (exclusive).
pub fn batch_headers(log: &Log, from: i64, upper: i64) -> odradek_log::Result<Vec<BatchHeader>> {
    let mut out = Vec::new();
    let mut next = from.max(log.log_start_offset());
    while next < upper {
        let bytes = log.read(next, 1 << 20, upper)?.to_bytes()?;
        if bytes.is_empty() {
            break;
        }
        let mut at = 0usize;
        while let Some(h) = BatchHeader::parse(&bytes[at..]) {
            at += h.size() as usize;
            next = h.next_offset();
            out.push(h);
            if at >= bytes.len() {
                break;
            }
        }
    }
    Ok(out)
}
