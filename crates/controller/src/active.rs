//! The active controller: one task that turns commands into records with the control managers,
//! proposes them, and answers once they commit. Commands run one at a time against the latest
//! committed image, so every command sees the effects of the previous one.

use std::sync::Arc;
use std::time::Duration;

use odradek_common::{Clock, ErrorCode, Uuid};
use odradek_metadata::proto::MetadataRecord;
use odradek_metadata::{encode_batch, MetadataImage};
use odradek_quorum::{QuorumError, QuorumHandle, Role};
use tokio::sync::{mpsc, oneshot, watch};

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

/// Runs the command loop until the channel closes.
pub async fn run(
    mut commands: mpsc::Receiver<Command>,
    quorum: QuorumHandle,
    images: watch::Receiver<Arc<MetadataImage>>,
    settings: ControllerSettings,
    clock: Arc<dyn Clock>,
) {
    let mut sessions = BrokerSessions::default();
    let mut was_leader = false;
    let mut fencing = tokio::time::interval(Duration::from_millis(500));
    fencing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut balancing = tokio::time::interval(Duration::from_secs(
        settings.leader_imbalance_check_interval_seconds,
    ));
    balancing.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    balancing.tick().await;
    let mut ctx = Ctx {
        quorum,
        images,
        settings,
        clock,
    };
    loop {
        let is_leader = ctx.quorum.status().role == Role::Leader;
        if is_leader && !was_leader {
            // A new active controller gives every broker a full session before fencing it.
            sessions.reset(&ctx.image(), ctx.clock.now_ms());
            tracing::info!("this controller is now active");
        }
        was_leader = is_leader;
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
                        if let Err(e) = ctx.commit(records).await {
                            tracing::warn!(error = %e, "could not commit fencing");
                        }
                    }
                }
            }
            _ = balancing.tick() => {
                if is_leader && ctx.settings.auto_leader_rebalance_enable {
                    let records = elections::balance_leaders(&ctx.image(), ctx.settings.leader_imbalance_per_broker_percentage);
                    if !records.is_empty() {
                        tracing::info!(elections = records.len(), "auto leader rebalance: electing preferred leaders");
                        if let Err(e) = ctx.commit(records).await {
                            tracing::warn!(error = %e, "could not commit the leader rebalance");
                        }
                    }
                }
            }
        }
    }
}

struct Ctx {
    quorum: QuorumHandle,
    images: watch::Receiver<Arc<MetadataImage>>,
    settings: ControllerSettings,
    clock: Arc<dyn Clock>,
}

impl Ctx {
    fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    fn not_leader(&self) -> Option<QuorumError> {
        let s = self.quorum.status();
        (s.role != Role::Leader).then_some(QuorumError::NotLeader {
            leader_id: s.leader_id,
        })
    }

    /// Proposes the records as one batch and waits until they are committed and applied here.
    async fn commit(&self, records: Vec<MetadataRecord>) -> Result<u64, QuorumError> {
        let index = self.quorum.propose(encode_batch(&records)).await?;
        let mut images = self.images.clone();
        // The driver applies before it answers the proposal, but the image is published through
        // the watch: wait for it so the next command sees these records.
        let _ = images.wait_for(|i| i.offset >= index as i64).await;
        Ok(index)
    }

    async fn finish<T>(&self, result: ControllerResult<T>, reply: Reply<T>) {
        let out = if result.records.is_empty() {
            Ok(result.response)
        } else {
            self.commit(result.records).await.map(|_| result.response)
        };
        let _ = reply.send(out);
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
                self.finish(result, reply).await;
            }
            Command::Heartbeat(req, reply) => {
                leader_or_reply!(reply);
                let result = cluster::heartbeat(&image, &req, &self.settings);
                if result.response.error_code == 0 {
                    sessions.touch(req.broker_id, now);
                }
                self.finish(result, reply).await;
            }
            Command::AlterPartition(req, reply) => {
                leader_or_reply!(reply);
                self.finish(replication::alter_partition(&image, &req), reply)
                    .await;
            }
            Command::CreateTopics(req, reply) => {
                leader_or_reply!(reply);
                let result =
                    replication::create_topics(&image, &req, &self.settings, &mut Uuid::random);
                self.finish(result, reply).await;
            }
            Command::DeleteTopics(req, reply) => {
                leader_or_reply!(reply);
                self.finish(replication::delete_topics(&image, &req), reply)
                    .await;
            }
            Command::CreatePartitions(req, reply) => {
                leader_or_reply!(reply);
                self.finish(replication::create_partitions(&image, &req), reply)
                    .await;
            }
            Command::AlterConfigs(req, reply) => {
                leader_or_reply!(reply);
                self.finish(configs::incremental_alter_configs(&image, &req), reply)
                    .await;
            }
            Command::AllocateProducerIds(req, reply) => {
                leader_or_reply!(reply);
                self.finish(
                    producer_ids::allocate_producer_ids(&image, &req, &self.settings),
                    reply,
                )
                .await;
            }
            Command::AlterReassignments(req, reply) => {
                leader_or_reply!(reply);
                let result =
                    reassignment::alter_partition_reassignments(&image, &req, &self.settings);
                self.finish(result, reply).await;
            }
            Command::ListReassignments(req, reply) => {
                leader_or_reply!(reply);
                let _ = reply.send(Ok(reassignment::list_partition_reassignments(&image, &req)));
            }
            Command::ElectLeaders(req, reply) => {
                leader_or_reply!(reply);
                self.finish(elections::elect_leaders(&image, &req), reply)
                    .await;
            }
            Command::UnregisterBroker(req, reply) => {
                leader_or_reply!(reply);
                let result = cluster::unregister_broker(&image, &req, &self.settings);
                self.finish(result, reply).await;
            }
            Command::Envelope(req, reply) => {
                leader_or_reply!(reply);
                let result = crate::envelope::handle(&image, &req, &mut Uuid::random);
                let mut response = result.response;
                let out = if result.records.is_empty() {
                    response.committed_offset = -1;
                    Ok(response)
                } else {
                    self.commit(result.records).await.map(|index| {
                        response.committed_offset = index as i64;
                        response
                    })
                };
                let _ = reply.send(out);
            }
        }
    }
}

/// The Kafka error a quorum error becomes for a caller.
pub fn error_code(e: &QuorumError) -> ErrorCode {
    match e {
        QuorumError::NotLeader { .. } => ErrorCode::NotController,
        QuorumError::ProposalDropped(_) => ErrorCode::NotController,
        _ => ErrorCode::UnknownServerError,
    }
}
