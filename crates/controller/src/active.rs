//! The active controller: one task that turns commands into records with the control managers,
//! appends them to the quorum's log, and answers once they commit.
//!
//! Commands are pipelined, as Kafka's `QuorumController` does: a command runs against the image
//! that includes every record appended before it (committed or not, the *speculative* image),
//! its records are appended without waiting for the commit, and the loop goes on to the next
//! command. Each answer waits on its own until its records commit; an answer without records
//! waits until everything appended before it commits, since it was computed from that state.
//! So every command sees the effects of the previous one, and a burst of commands shares
//! commit round trips instead of paying one each.
//!
//! The speculative image is only valid within one leadership: when this controller becomes
//! active it first commits an empty entry (a barrier), so that its committed image holds every
//! entry of earlier terms, and it drops the speculative image whenever the term changes.

use std::sync::Arc;
use std::time::Duration;

use odradek_common::{Clock, ErrorCode, Uuid};
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{encode_batch, MetadataDelta, MetadataImage};
use odradek_quorum::{Appended, QuorumError, QuorumHandle, Role};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::managers::cluster::{self, BrokerSessions};
use crate::managers::{
    configs, elections, producer_ids, reassignment, replication, ControllerResult,
    ControllerSettings,
};
use crate::pb;

/// A command for the active controller.
#[derive(Debug)]
pub enum Command {
    /// RegisterBroker.
    RegisterBroker(pb::RegisterBrokerRequest, Reply<pb::RegisterBrokerResponse>),
    /// BrokerHeartbeat.
    Heartbeat(
        pb::BrokerHeartbeatRequest,
        Reply<pb::BrokerHeartbeatResponse>,
    ),
    /// AlterPartition.
    AlterPartition(pb::AlterPartitionRequest, Reply<pb::AlterPartitionResponse>),
    /// CreateTopics.
    CreateTopics(pb::CreateTopicsRequest, Reply<pb::CreateTopicsResponse>),
    /// DeleteTopics.
    DeleteTopics(pb::DeleteTopicsRequest, Reply<pb::DeleteTopicsResponse>),
    /// CreatePartitions.
    CreatePartitions(
        pb::CreatePartitionsRequest,
        Reply<pb::CreatePartitionsResponse>,
    ),
    /// IncrementalAlterConfigs.
    AlterConfigs(
        pb::IncrementalAlterConfigsRequest,
        Reply<pb::IncrementalAlterConfigsResponse>,
    ),
    /// AllocateProducerIds.
    AllocateProducerIds(
        pb::AllocateProducerIdsRequest,
        Reply<pb::AllocateProducerIdsResponse>,
    ),
    /// AlterPartitionReassignments.
    AlterReassignments(
        pb::AlterPartitionReassignmentsRequest,
        Reply<pb::AlterPartitionReassignmentsResponse>,
    ),
    /// ListPartitionReassignments.
    ListReassignments(
        pb::ListPartitionReassignmentsRequest,
        Reply<pb::ListPartitionReassignmentsResponse>,
    ),
    /// ElectLeaders.
    ElectLeaders(pb::ElectLeadersRequest, Reply<pb::ElectLeadersResponse>),
    /// UnregisterBroker.
    UnregisterBroker(
        pb::UnregisterBrokerRequest,
        Reply<pb::UnregisterBrokerResponse>,
    ),
    /// A forwarded Kafka admin request (CreateAcls, DeleteAcls, AlterUserScramCredentials,
    /// AlterClientQuotas).
    Envelope(pb::EnvelopeRequest, Reply<pb::EnvelopeResponse>),
}

/// Where a command's answer goes.
pub type Reply<T> = oneshot::Sender<Result<T, QuorumError>>;

/// Commands whose answers may wait for their commit at once; the loop stops taking commands
/// while this many are waiting.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Runs the command loop until the channel closes.
pub async fn run(
    mut commands: mpsc::Receiver<Command>,
    quorum: QuorumHandle,
    images: watch::Receiver<Arc<MetadataImage>>,
    settings: ControllerSettings,
    clock: Arc<dyn Clock>,
) {
    let mut sessions = BrokerSessions::default();
    let mut fencing = tokio::time::interval(Duration::from_millis(500));
    fencing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut balancing = tokio::time::interval(Duration::from_secs(
        settings.leader_imbalance_check_interval_seconds,
    ));
    balancing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    balancing.tick().await;
    let mut status = quorum.watch_status();
    let mut ctx = Ctx {
        quorum,
        images,
        settings,
        clock,
        active_term: None,
        speculative: None,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    };
    loop {
        // Noted before acting on it, so a change while claiming wakes the select below.
        let seen = {
            let s = status.borrow_and_update();
            (s.role, s.term)
        };
        ctx.claim_or_resign(&mut sessions).await;
        let is_leader = ctx.active_term.is_some();
        tokio::select! {
            cmd = commands.recv() => {
                let Some(cmd) = cmd else { break };
                ctx.handle(cmd, &mut sessions).await;
            }
            _ = fencing.tick() => {
                if is_leader {
                    let image = ctx.image();
                    let records = cluster::fence_expired(&image, &sessions, &ctx.settings, ctx.clock.now_ms());
                    if !records.is_empty() {
                        ctx.append_in_background(&image, records, "fencing").await;
                    }
                }
            }
            _ = balancing.tick() => {
                if is_leader && ctx.settings.auto_leader_rebalance_enable {
                    let image = ctx.image();
                    let records = elections::balance_leaders(&image, ctx.settings.leader_imbalance_per_broker_percentage);
                    if !records.is_empty() {
                        tracing::info!(elections = records.len(), "auto leader rebalance: electing preferred leaders");
                        ctx.append_in_background(&image, records, "the leader rebalance").await;
                    }
                }
            }
            // A change of role or term is acted on at the top of the loop.
            _ = async { drop(status.wait_for(|s| (s.role, s.term) != seen).await) } => {}
        }
    }
}

/// Records appended in this leadership and not yet committed, and the image they make.
struct Speculative {
    term: u64,
    /// The index of the last entry appended.
    index: u64,
    image: Arc<MetadataImage>,
}

struct Ctx {
    quorum: QuorumHandle,
    images: watch::Receiver<Arc<MetadataImage>>,
    settings: ControllerSettings,
    clock: Arc<dyn Clock>,
    /// The term in which this controller is active (leader, barrier committed).
    active_term: Option<u64>,
    speculative: Option<Speculative>,
    /// One permit per answer waiting for a commit.
    in_flight: Arc<Semaphore>,
}

impl Ctx {
    /// Becomes active on a new leadership (after a barrier entry commits, so the committed
    /// image holds every earlier entry), or stops being active on losing it.
    async fn claim_or_resign(&mut self, sessions: &mut BrokerSessions) {
        let status = self.quorum.status();
        if status.role != Role::Leader {
            self.active_term = None;
            self.speculative = None;
            return;
        }
        if self.active_term == Some(status.term) {
            return;
        }
        self.active_term = None;
        self.speculative = None;
        match self.quorum.propose(Vec::new()).await {
            Ok(_) if self.quorum.status().term == status.term => {
                self.active_term = Some(status.term);
                // A new active controller gives every broker a full session before fencing it.
                sessions.reset(&self.image(), self.clock.now_ms());
                tracing::info!(term = status.term, "this controller is now active");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "could not become the active controller"),
        }
    }

    /// The image commands run against: the speculative one while appended records are not all
    /// committed, else the committed one.
    fn image(&mut self) -> Arc<MetadataImage> {
        let committed = Arc::clone(&self.images.borrow());
        match &self.speculative {
            Some(s) if Some(s.term) == self.active_term && committed.offset < s.index as i64 => {
                Arc::clone(&s.image)
            }
            _ => {
                self.speculative = None;
                committed
            }
        }
    }

    fn not_leader(&self) -> Option<QuorumError> {
        let s = self.quorum.status();
        (s.role != Role::Leader || self.active_term != Some(s.term)).then_some(
            QuorumError::NotLeader {
                leader_id: s.leader_id,
            },
        )
    }

    /// Appends the records as one entry on top of `base` (the image they were computed from)
    /// and makes the image they produce the speculative one.
    async fn append(
        &mut self,
        base: &Arc<MetadataImage>,
        records: &[MetadataRecord],
    ) -> Result<Appended, QuorumError> {
        let term = self.active_term.ok_or_else(|| self.not_leader_error())?;
        let appended = self.quorum.append(encode_batch(records)).await?;
        let offset = appended.index as i64;
        // The same replay the state machine will do when the entry commits.
        let mut delta = MetadataDelta::new(Arc::clone(base));
        for r in records {
            if let Err(e) = delta.replay(offset, r) {
                tracing::error!(offset, error = %e, "an appended record does not replay");
            }
        }
        let mut image = delta.apply();
        image.offset = offset;
        self.speculative = Some(Speculative {
            term,
            index: appended.index,
            image: Arc::new(image),
        });
        Ok(appended)
    }

    fn not_leader_error(&self) -> QuorumError {
        QuorumError::NotLeader {
            leader_id: self.quorum.status().leader_id,
        }
    }

    /// Appends records nobody waits for; a failure to commit is logged.
    async fn append_in_background(
        &mut self,
        base: &Arc<MetadataImage>,
        records: Vec<MetadataRecord>,
        what: &'static str,
    ) {
        match self.append(base, &records).await {
            Ok(appended) => {
                tokio::spawn(async move {
                    if let Err(e) = appended.committed().await {
                        tracing::warn!(error = %e, "could not commit {what}");
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not commit {what}"),
        }
    }

    /// What an answer waits for before it goes out: its own entry's commit, or, without
    /// records, the commit of everything appended before it.
    async fn settle(&mut self, records: &[MetadataRecord], base: &Arc<MetadataImage>) -> Settle {
        if !records.is_empty() {
            return match self.append(base, records).await {
                Ok(appended) => Settle::Entry(appended),
                Err(e) => Settle::Failed(e),
            };
        }
        match &self.speculative {
            Some(s) if s.image.offset > self.images.borrow().offset => Settle::Offset {
                term: s.term,
                index: s.index,
            },
            _ => Settle::Now,
        }
    }

    /// Sends `response` once `settle` allows, without holding up the loop.
    async fn answer<T: Send + 'static>(
        &mut self,
        settle: Settle,
        response: T,
        reply: Reply<T>,
        with_index: fn(T, u64) -> T,
    ) {
        let waiting = match settle {
            Settle::Now => {
                let _ = reply.send(Ok(with_index(response, 0)));
                return;
            }
            Settle::Failed(e) => {
                let _ = reply.send(Err(e));
                return;
            }
            other => other,
        };
        let permit: OwnedSemaphorePermit = match Arc::clone(&self.in_flight).acquire_owned().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let mut images = self.images.clone();
        let mut status = self.quorum.watch_status();
        tokio::spawn(async move {
            let out = match waiting {
                Settle::Entry(appended) => {
                    let index = appended.index;
                    appended.committed().await.map(|_| index)
                }
                Settle::Offset { term, index } => {
                    tokio::select! {
                        _ = images.wait_for(|i| i.offset >= index as i64) => Ok(index),
                        s = status.wait_for(|s| s.term != term || s.role != Role::Leader) => {
                            let leader_id = s.ok().and_then(|s| s.leader_id);
                            Err(QuorumError::NotLeader { leader_id })
                        }
                    }
                }
                Settle::Now | Settle::Failed(_) => unreachable!("answered above"),
            };
            if let Ok(index) = out {
                // The driver applies before it answers, but images go out through the watch:
                // wait for this one so the caller's next command sees these records.
                let _ = images.wait_for(|i| i.offset >= index as i64).await;
            }
            let _ = reply.send(out.map(|index| with_index(response, index)));
            drop(permit);
        });
    }

    async fn finish<T: Send + 'static>(
        &mut self,
        base: &Arc<MetadataImage>,
        result: ControllerResult<T>,
        reply: Reply<T>,
    ) {
        let settle = self.settle(&result.records, base).await;
        self.answer(settle, result.response, reply, |r, _| r).await;
    }

    async fn handle(&mut self, cmd: Command, sessions: &mut BrokerSessions) {
        macro_rules! leader_or_reply {
            ($reply:expr) => {
                if let Some(e) = self.not_leader() {
                    let _ = $reply.send(Err(e));
                    return;
                }
            };
        }
        let image = self.image();
        let now = self.clock.now_ms();
        match cmd {
            Command::RegisterBroker(req, reply) => {
                leader_or_reply!(reply);
                let result = cluster::register_broker(&image, &req, &self.settings, sessions, now);
                if result.response.error_code == 0 {
                    sessions.touch(req.broker_id, now);
                }
                self.finish(&image, result, reply).await;
            }
            Command::Heartbeat(req, reply) => {
                leader_or_reply!(reply);
                let result = cluster::heartbeat(&image, &req, &self.settings);
                if result.response.error_code == 0 {
                    sessions.touch(req.broker_id, now);
                }
                self.finish(&image, result, reply).await;
            }
            Command::AlterPartition(req, reply) => {
                leader_or_reply!(reply);
                let result = replication::alter_partition(&image, &req);
                self.finish(&image, result, reply).await;
            }
            Command::CreateTopics(req, reply) => {
                leader_or_reply!(reply);
                let result =
                    replication::create_topics(&image, &req, &self.settings, &mut Uuid::random);
                self.finish(&image, result, reply).await;
            }
            Command::DeleteTopics(req, reply) => {
                leader_or_reply!(reply);
                let result = replication::delete_topics(&image, &req);
                self.finish(&image, result, reply).await;
            }
            Command::CreatePartitions(req, reply) => {
                leader_or_reply!(reply);
                let result = replication::create_partitions(&image, &req);
                self.finish(&image, result, reply).await;
            }
            Command::AlterConfigs(req, reply) => {
                leader_or_reply!(reply);
                let result = configs::incremental_alter_configs(&image, &req);
                self.finish(&image, result, reply).await;
            }
            Command::AllocateProducerIds(req, reply) => {
                leader_or_reply!(reply);
                let result = producer_ids::allocate_producer_ids(&image, &req, &self.settings);
                self.finish(&image, result, reply).await;
            }
            Command::AlterReassignments(req, reply) => {
                leader_or_reply!(reply);
                let result =
                    reassignment::alter_partition_reassignments(&image, &req, &self.settings);
                self.finish(&image, result, reply).await;
            }
            Command::ListReassignments(req, reply) => {
                leader_or_reply!(reply);
                let response = reassignment::list_partition_reassignments(&image, &req);
                let settle = self.settle(&[], &image).await;
                self.answer(settle, response, reply, |r, _| r).await;
            }
            Command::ElectLeaders(req, reply) => {
                leader_or_reply!(reply);
                let result = elections::elect_leaders(&image, &req);
                self.finish(&image, result, reply).await;
            }
            Command::UnregisterBroker(req, reply) => {
                leader_or_reply!(reply);
                let result = cluster::unregister_broker(&image, &req, &self.settings);
                self.finish(&image, result, reply).await;
            }
            Command::Envelope(req, reply) => {
                leader_or_reply!(reply);
                let result = crate::envelope::handle(&image, &req, &mut Uuid::random);
                let mut response = result.response;
                if result.records.is_empty() {
                    response.committed_offset = -1;
                    let _ = reply.send(Ok(response));
                    return;
                }
                let settle = self.settle(&result.records, &image).await;
                self.answer(settle, response, reply, |mut r, index| {
                    r.committed_offset = index as i64;
                    r
                })
                .await;
            }
        }
    }
}

/// What an answer waits for.
enum Settle {
    /// Nothing: nothing it depends on is uncommitted.
    Now,
    /// Its records could not be appended.
    Failed(QuorumError),
    /// The commit of its own entry.
    Entry(Appended),
    /// The commit of the entry at `index` (appended in `term`) that it was computed after.
    Offset { term: u64, index: u64 },
}

/// The Kafka error a quorum error becomes for a caller.
pub fn error_code(e: &QuorumError) -> ErrorCode {
    match e {
        QuorumError::NotLeader { .. } => ErrorCode::NotController,
        QuorumError::ProposalDropped(_) => ErrorCode::NotController,
        _ => ErrorCode::UnknownServerError,
    }
}
