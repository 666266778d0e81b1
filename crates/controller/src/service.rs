//! The gRPC `ControllerService`: unary calls go to the active controller's command loop; a
//! standby answers UNAVAILABLE "NOT_CONTROLLER" naming the leader. FetchMetadata streams the
//! committed log from any controller.

use std::pin::Pin;

use odradek_common::ErrorCode;
use odradek_quorum::{MembershipError, QuorumError, QuorumHandle, VoterState};
use raft::StorageError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::active::{Command, Reply};
use crate::pb::{self, controller_service_server::ControllerService};

/// Metadata key naming the active controller's id in a NOT_CONTROLLER status.
pub const LEADER_ID_KEY: &str = "odradek-leader-id";

/// Metadata key naming the active controller's address in a NOT_CONTROLLER status.
pub const LEADER_ADDRESS_KEY: &str = "odradek-leader-address";

/// How often an idle FetchMetadata stream carries a marker (no records, the commit): a broker
/// that hears nothing for several of these takes the voter for gone and streams from another.
pub const METADATA_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a metadata stream goes on while its controller knows no leader.
const LEADERLESS_STREAM_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The service.
#[derive(Debug, Clone)]
pub struct ControllerServiceImpl {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) quorum: QuorumHandle,
    pub(crate) cluster_id: String,
    /// Turns true when the controller stops: open metadata streams end and calls waiting for
    /// a commit answer UNAVAILABLE, so the gRPC server's graceful shutdown does not wait for
    /// brokers to go away.
    pub(crate) stop: watch::Receiver<bool>,
    /// Notes brokers' metadata offsets from their heartbeats.
    pub(crate) metrics: crate::metrics::ControllerMetrics,
}

fn not_controller(leader_id: Option<u64>, quorum: &QuorumHandle) -> Status {
    let voters = quorum.voter_set().addresses;
    let address = leader_id.and_then(|id| voters.get(&id)).cloned();
    let mut status = Status::unavailable(match (&leader_id, &address) {
        (Some(id), Some(a)) => format!("NOT_CONTROLLER: the active controller is {id} at {a}"),
        _ => "NOT_CONTROLLER: no active controller is known yet".to_string(),
    });
    if let (Some(id), Some(a)) = (leader_id, address) {
        if let (Ok(id), Ok(a)) = (id.to_string().parse(), a.parse()) {
            status.metadata_mut().insert(LEADER_ID_KEY, id);
            status.metadata_mut().insert(LEADER_ADDRESS_KEY, a);
        }
    }
    status
}

impl ControllerServiceImpl {
    async fn call<Req, Resp>(
        &self,
        req: Req,
        make: fn(Req, Reply<Resp>) -> Command,
    ) -> Result<Response<Resp>, Status> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(req, tx))
            .await
            .map_err(|_| Status::unavailable("controller shutting down"))?;
        let mut stop = self.stop.clone();
        let reply = tokio::select! {
            r = rx => r.map_err(|_| Status::unavailable("controller shutting down"))?,
            _ = stop.wait_for(|s| *s) => return Err(Status::unavailable("controller shutting down")),
        };
        match reply {
            Ok(resp) => Ok(Response::new(resp)),
            Err(QuorumError::NotLeader { leader_id }) => {
                Err(not_controller(leader_id, &self.quorum))
            }
            Err(QuorumError::ProposalDropped(m)) => {
                Err(not_controller(self.quorum.status().leader_id, &self.quorum).tap_message(m))
            }
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }
}

trait TapMessage {
    fn tap_message(self, extra: String) -> Self;
}

impl TapMessage for Status {
    fn tap_message(self, extra: String) -> Self {
        let mut s = Status::new(self.code(), format!("{} ({extra})", self.message()));
        *s.metadata_mut() = self.metadata().clone();
        s
    }
}

type MetadataStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::MetadataUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl ControllerService for ControllerServiceImpl {
    async fn register_broker(
        &self,
        r: Request<pb::RegisterBrokerRequest>,
    ) -> Result<Response<pb::RegisterBrokerResponse>, Status> {
        self.call(r.into_inner(), Command::RegisterBroker).await
    }

    async fn broker_heartbeat(
        &self,
        r: Request<pb::BrokerHeartbeatRequest>,
    ) -> Result<Response<pb::BrokerHeartbeatResponse>, Status> {
        let r = r.into_inner();
        self.metrics
            .heartbeat(r.broker_id, r.current_metadata_offset);
        self.call(r, Command::Heartbeat).await
    }

    type FetchMetadataStream = MetadataStream;

    async fn fetch_metadata(
        &self,
        r: Request<pb::FetchMetadataRequest>,
    ) -> Result<Response<Self::FetchMetadataStream>, Status> {
        let req = r.into_inner();
        let status = self.quorum.status();
        if !status.is_voter || status.leader_id.is_none() {
            // An observer (joining), a removed controller, or one that knows no leader may be
            // behind: brokers go elsewhere.
            return Err(not_controller(self.quorum.status().leader_id, &self.quorum)
                .tap_message("this controller is not a voter".into()));
        }
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(stream_metadata(
            self.quorum.clone(),
            req.from_offset.max(0) as u64,
            tx,
            self.stop.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn alter_partition(
        &self,
        r: Request<pb::AlterPartitionRequest>,
    ) -> Result<Response<pb::AlterPartitionResponse>, Status> {
        self.call(r.into_inner(), Command::AlterPartition).await
    }

    async fn create_topics(
        &self,
        r: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        self.call(r.into_inner(), Command::CreateTopics).await
    }

    async fn delete_topics(
        &self,
        r: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        self.call(r.into_inner(), Command::DeleteTopics).await
    }

    async fn create_partitions(
        &self,
        r: Request<pb::CreatePartitionsRequest>,
    ) -> Result<Response<pb::CreatePartitionsResponse>, Status> {
        self.call(r.into_inner(), Command::CreatePartitions).await
    }

    async fn incremental_alter_configs(
        &self,
        r: Request<pb::IncrementalAlterConfigsRequest>,
    ) -> Result<Response<pb::IncrementalAlterConfigsResponse>, Status> {
        self.call(r.into_inner(), Command::AlterConfigs).await
    }

    async fn allocate_producer_ids(
        &self,
        r: Request<pb::AllocateProducerIdsRequest>,
    ) -> Result<Response<pb::AllocateProducerIdsResponse>, Status> {
        self.call(r.into_inner(), Command::AllocateProducerIds)
            .await
    }

    async fn alter_partition_reassignments(
        &self,
        r: Request<pb::AlterPartitionReassignmentsRequest>,
    ) -> Result<Response<pb::AlterPartitionReassignmentsResponse>, Status> {
        self.call(r.into_inner(), Command::AlterReassignments).await
    }

    async fn list_partition_reassignments(
        &self,
        r: Request<pb::ListPartitionReassignmentsRequest>,
    ) -> Result<Response<pb::ListPartitionReassignmentsResponse>, Status> {
        self.call(r.into_inner(), Command::ListReassignments).await
    }

    async fn envelope(
        &self,
        r: Request<pb::EnvelopeRequest>,
    ) -> Result<Response<pb::EnvelopeResponse>, Status> {
        self.call(r.into_inner(), Command::Envelope).await
    }

    async fn elect_leaders(
        &self,
        r: Request<pb::ElectLeadersRequest>,
    ) -> Result<Response<pb::ElectLeadersResponse>, Status> {
        self.call(r.into_inner(), Command::ElectLeaders).await
    }

    async fn unregister_broker(
        &self,
        r: Request<pb::UnregisterBrokerRequest>,
    ) -> Result<Response<pb::UnregisterBrokerResponse>, Status> {
        self.call(r.into_inner(), Command::UnregisterBroker).await
    }

    async fn describe_quorum(
        &self,
        _r: Request<pb::DescribeQuorumRequest>,
    ) -> Result<Response<pb::DescribeQuorumResponse>, Status> {
        let d = self
            .quorum
            .describe()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let leader_end = d
            .voters
            .iter()
            .filter_map(|v| v.log_end_offset)
            .max()
            .unwrap_or(0);
        let info = |v: &VoterState| pb::VoterInfo {
            voter_id: v.node_id as i32,
            log_end_offset: v.log_end_offset.map_or(-1, |o| o as i64),
            lag: v
                .log_end_offset
                .map_or(-1, |o| leader_end.saturating_sub(o) as i64),
            last_fetch_timestamp: v.last_fetch_ms.unwrap_or(-1),
            last_caught_up_timestamp: v.last_caught_up_ms.unwrap_or(-1),
            address: v.address.clone().unwrap_or_default(),
        };
        Ok(Response::new(pb::DescribeQuorumResponse {
            cluster_id: self.cluster_id.clone(),
            leader_id: d.leader_id.map_or(-1, |l| l as i32),
            leader_epoch: d.term as i64,
            high_watermark: d.high_watermark as i64,
            voters: d.voters.iter().map(info).collect(),
            observers: d.observers.iter().map(info).collect(),
        }))
    }

    async fn add_raft_voter(
        &self,
        r: Request<pb::AddRaftVoterRequest>,
    ) -> Result<Response<pb::RaftVoterResponse>, Status> {
        let r = r.into_inner();
        let id =
            u64::try_from(r.voter_id).map_err(|_| Status::invalid_argument("negative voter id"))?;
        self.voter_change(self.quorum.add_voter(id, r.address).await)
    }

    async fn remove_raft_voter(
        &self,
        r: Request<pb::RemoveRaftVoterRequest>,
    ) -> Result<Response<pb::RaftVoterResponse>, Status> {
        let r = r.into_inner();
        let id =
            u64::try_from(r.voter_id).map_err(|_| Status::invalid_argument("negative voter id"))?;
        self.voter_change(self.quorum.remove_voter(id).await)
    }

    async fn update_raft_voter(
        &self,
        r: Request<pb::UpdateRaftVoterRequest>,
    ) -> Result<Response<pb::RaftVoterResponse>, Status> {
        let r = r.into_inner();
        let id =
            u64::try_from(r.voter_id).map_err(|_| Status::invalid_argument("negative voter id"))?;
        self.voter_change(self.quorum.update_voter(id, r.address).await)
    }
}

impl ControllerServiceImpl {
    /// A voter change's outcome: Kafka's error codes for refusals, NOT_CONTROLLER (with the
    /// leader hint the broker follows) on a non-leader.
    fn voter_change(
        &self,
        result: Result<(), QuorumError>,
    ) -> Result<Response<pb::RaftVoterResponse>, Status> {
        let (code, message) = match result {
            Ok(()) => (ErrorCode::None, String::new()),
            Err(QuorumError::NotLeader { leader_id }) => {
                return Err(not_controller(leader_id, &self.quorum))
            }
            Err(QuorumError::ProposalDropped(m)) => {
                return Err(
                    not_controller(self.quorum.status().leader_id, &self.quorum).tap_message(m)
                )
            }
            Err(QuorumError::Membership(e)) => {
                let code = match &e {
                    MembershipError::DuplicateVoter(_) => ErrorCode::DuplicateVoter,
                    MembershipError::VoterNotFound(_) => ErrorCode::VoterNotFound,
                    MembershipError::InProgress => ErrorCode::RequestTimedOut,
                    MembershipError::LastVoter(_)
                    | MembershipError::NoQuorumLeft(_)
                    | MembershipError::BadAddress(_) => ErrorCode::InvalidRequest,
                };
                (code, e.to_string())
            }
            Err(e @ QuorumError::CatchUpTimeout(_)) => (ErrorCode::RequestTimedOut, e.to_string()),
            Err(e) => return Err(Status::internal(e.to_string())),
        };
        Ok(Response::new(pb::RaftVoterResponse {
            error_code: i32::from(code.code()),
            error_message: message,
        }))
    }
}

/// Streams committed metadata from `from`: the snapshot first when the log no longer holds
/// `from` (or the caller starts from 0 and a bootstrap snapshot exists), then every committed
/// batch, waiting for commits as they happen. Ends when the client goes away.
async fn stream_metadata(
    quorum: QuorumHandle,
    from: u64,
    tx: mpsc::Sender<Result<pb::MetadataUpdate, Status>>,
    mut stop: watch::Receiver<bool>,
) {
    let storage = quorum.storage().clone();
    let mut status = quorum.watch_status();
    let snapshot = storage.latest_snapshot();
    let mut next = from.max(1);
    let mut marked = 0;
    let mut idle = false;
    if from <= snapshot.get_metadata().index || (from == 0 && !snapshot.get_data().is_empty()) {
        next = snapshot.get_metadata().index + 1;
        let update = pb::MetadataUpdate {
            update: Some(pb::metadata_update::Update::Snapshot(
                snapshot.get_data().to_vec(),
            )),
            high_watermark: status.borrow().commit_index as i64,
        };
        if tx.send(Ok(update)).await.is_err() {
            return;
        }
    }
    let mut leaderless_since: Option<std::time::Instant> = None;
    loop {
        let commit = status.borrow_and_update().commit_index;
        // A voter that has heard from no leader for a while (cut off, or removed without
        // knowing it) serves a log that may have moved on without it: the broker goes
        // elsewhere.
        let leaderless = status.borrow().leader_id.is_none();
        let since = *leaderless_since.get_or_insert_with(std::time::Instant::now);
        if !leaderless {
            leaderless_since = None;
        } else if since.elapsed() > LEADERLESS_STREAM_LIMIT {
            let _ = tx
                .send(Err(Status::unavailable(
                    "NOT_CONTROLLER: this controller has known no leader for 5 s",
                )))
                .await;
            return;
        }
        if !status.borrow().is_voter {
            // Removed from the voters: this log stops growing; the broker goes elsewhere.
            let _ = tx
                .send(Err(Status::unavailable(
                    "NOT_CONTROLLER: this controller is no longer a voter",
                )))
                .await;
            return;
        }
        while next <= commit {
            match storage.committed_entries(next, commit + 1, 1 << 20) {
                Ok(entries) if !entries.is_empty() => {
                    for e in entries {
                        next = e.index + 1;
                        if e.data.is_empty() {
                            continue;
                        }
                        let update = pb::MetadataUpdate {
                            update: Some(pb::metadata_update::Update::Entry(pb::MetadataEntry {
                                offset: e.index as i64,
                                records: e.data.to_vec(),
                            })),
                            high_watermark: commit as i64,
                        };
                        if tx.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => break,
                Err(raft::Error::Store(StorageError::Compacted)) => {
                    let snapshot = storage.latest_snapshot();
                    next = snapshot.get_metadata().index + 1;
                    let update = pb::MetadataUpdate {
                        update: Some(pb::metadata_update::Update::Snapshot(
                            snapshot.get_data().to_vec(),
                        )),
                        high_watermark: commit as i64,
                    };
                    if tx.send(Ok(update)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!(
                            "reading the metadata log: {e}"
                        ))))
                        .await;
                    return;
                }
            }
        }
        // Entries without records (Raft's no-ops) are not sent: tell the broker it has
        // everything up to the commit, so it knows when it has caught up. Also sent every
        // METADATA_KEEPALIVE while idle, so a broker can tell a live stream from a voter that
        // stopped answering (and go to another).
        if next > commit && (marked < commit || idle) {
            marked = commit;
            let update = pb::MetadataUpdate {
                update: None,
                high_watermark: commit as i64,
            };
            if tx.send(Ok(update)).await.is_err() {
                return;
            }
        }
        idle = false;
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(METADATA_KEEPALIVE) => idle = true,
            _ = tx.closed() => return,
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
