//! The controller quorum: DescribeQuorum (for `__cluster_metadata`-0: leader, epoch, high
//! watermark, each voter's and observer's log end, last fetch and last caught-up times, and
//! from v2 their endpoints), and KIP-853's AddRaftVoter and RemoveRaftVoter, forwarded to the
//! active controller (UpdateRaftVoter is controller-only in Kafka: a controller's gRPC service
//! takes it).

use std::time::Duration;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, BrokerId, DescribeQuorumRequest,
    DescribeQuorumResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_frontend::RequestContext;

use super::Broker;

fn replica(version: i16, v: &pb::VoterInfo) -> ReplicaState {
    let r = ReplicaState::default()
        .with_replica_id(BrokerId(v.voter_id))
        .with_log_end_offset(v.log_end_offset);
    // The timestamps exist from v1.
    if version >= 1 {
        r.with_last_fetch_timestamp(v.last_fetch_timestamp)
            .with_last_caught_up_timestamp(v.last_caught_up_timestamp)
    } else {
        r
    }
}

fn node(v: &pb::VoterInfo) -> Option<Node> {
    let (host, port) = v.address.rsplit_once(':')?;
    Some(
        Node::default()
            .with_node_id(BrokerId(v.voter_id))
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_string(host.to_string()))
                .with_port(port.parse().ok()?)]),
    )
}

pub(super) async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    _req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let topic = TopicName(StrBytes::from_static_str("__cluster_metadata"));
    let v = ctx.api_version;
    match broker
        .controller
        .call(Duration::from_secs(10), |mut c| async move {
            c.describe_quorum(pb::DescribeQuorumRequest {}).await
        })
        .await
    {
        Ok(d) => {
            let partition = PartitionData::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(d.leader_id))
                .with_leader_epoch(d.leader_epoch as i32)
                .with_high_watermark(d.high_watermark)
                .with_current_voters(d.voters.iter().map(|r| replica(v, r)).collect())
                .with_observers(d.observers.iter().map(|r| replica(v, r)).collect());
            let r = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
                .with_topic_name(topic)
                .with_partitions(vec![partition])]);
            if v >= 2 {
                r.with_nodes(
                    d.voters
                        .iter()
                        .chain(&d.observers)
                        .filter_map(node)
                        .collect(),
                )
            } else {
                r
            }
        }
        Err(e) => {
            let r =
                DescribeQuorumResponse::default().with_error_code(ErrorCode::NotController.code());
            if v >= 2 {
                r.with_error_message(Some(StrBytes::from_string(e.message().to_string())))
            } else {
                r
            }
        }
    }
}

/// (error code, message) of a voter change, REQUEST_TIMED_OUT when the controller is away.
async fn voter_change<F, Fut>(broker: &Broker, timeout: Duration, f: F) -> (i16, Option<StrBytes>)
where
    F: Fn(
        odradek_controller::pb::controller_service_client::ControllerServiceClient<
            tonic::transport::Channel,
        >,
    ) -> Fut,
    Fut:
        std::future::Future<Output = Result<tonic::Response<pb::RaftVoterResponse>, tonic::Status>>,
{
    match broker.controller.call(timeout, f).await {
        Ok(r) => (
            r.error_code as i16,
            (!r.error_message.is_empty()).then(|| StrBytes::from_string(r.error_message)),
        ),
        Err(e) => (
            ErrorCode::RequestTimedOut.code(),
            Some(StrBytes::from_string(format!(
                "controller unavailable: {}",
                e.message()
            ))),
        ),
    }
}

fn wrong_cluster(
    broker: &Broker,
    cluster_id: &Option<StrBytes>,
) -> Option<(i16, Option<StrBytes>)> {
    let id = cluster_id.as_ref()?;
    (id.as_str() != broker.cluster_id).then(|| {
        (
            ErrorCode::InconsistentClusterId.code(),
            Some(StrBytes::from_string(format!(
                "this is cluster {}, not {id}",
                broker.cluster_id
            ))),
        )
    })
}

pub(super) async fn add_raft_voter(
    broker: &Broker,
    req: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    // The controller listener of the new voter: the one named CONTROLLER, else the first.
    let listener = req
        .listeners
        .iter()
        .find(|l| l.name.as_str() == "CONTROLLER")
        .or_else(|| req.listeners.first());
    let (code, message) = if let Some(e) = wrong_cluster(broker, &req.cluster_id) {
        e
    } else if let Some(l) = listener {
        let call = pb::AddRaftVoterRequest {
            voter_id: req.voter_id,
            address: format!("{}:{}", l.host, l.port),
        };
        // The new voter catches up first: up to 30 s on the controller.
        let timeout = Duration::from_millis(req.timeout_ms.clamp(5_000, 120_000) as u64);
        voter_change(broker, timeout, |mut c| {
            let r = call.clone();
            async move { c.add_raft_voter(r).await }
        })
        .await
    } else {
        (
            ErrorCode::InvalidRequest.code(),
            Some(StrBytes::from_static_str("the new voter has no listener")),
        )
    };
    AddRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}

pub(super) async fn remove_raft_voter(
    broker: &Broker,
    req: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let (code, message) = match wrong_cluster(broker, &req.cluster_id) {
        Some(e) => e,
        None => {
            let call = pb::RemoveRaftVoterRequest {
                voter_id: req.voter_id,
            };
            voter_change(broker, Duration::from_secs(30), |mut c| async move {
                c.remove_raft_voter(call).await
            })
            .await
        }
    };
    RemoveRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(message)
}
